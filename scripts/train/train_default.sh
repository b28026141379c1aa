#!/usr/bin/env bash
# Reproduce the shipped default tagger: models/registry/epistance-tagger/<version>/
# from configs/train/default.toml (needs data/annotation/gold.jsonl and
# ../shared/data/goemotions/ekman/). Runs offline on CPU; about 15-25 minutes on 2 cores.
# Same machine, thread count and config give the same weights and metrics.
#
#   scripts/train/train_default.sh [CONFIG] [OUTPUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
CONFIG="${1:-configs/train/default.toml}"
OUT="${2:-}"
exec .venv/bin/python - "$CONFIG" "$OUT" <<'PY'
import sys
from pathlib import Path
from models.commands import train
config, out = sys.argv[1], sys.argv[2]
print(train(Path(config), output_dir=Path(out) if out else None))
PY
