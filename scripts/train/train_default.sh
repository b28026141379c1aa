#!/usr/bin/env bash
# Reproduce the shipped default tagger from configs/train/default.toml (needs
# data/annotation/gold.jsonl and ../shared/data/goemotions/ekman/). Runs offline on CPU:
# about 20 minutes on the 2-core Intel development machine, 34 on a 2-core AMD EPYC.
# Same machine, thread count and config give the same weights and metrics.
#
#   scripts/train/train_default.sh [CONFIG] [OUTPUT_DIR]
#
# Without OUTPUT_DIR the model goes to its registry slot <registry>/<model_id>/<version>/;
# when that slot is taken (the shipped model itself), to out/retrained/<model_id>/<version>/,
# and the new weights and metrics are then compared byte for byte with the shipped ones.
set -euo pipefail
cd "$(dirname "$0")/../.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
CONFIG="${1:-configs/train/default.toml}"
OUT="${2:-}"
exec .venv/bin/python - "$CONFIG" "$OUT" <<'PY'
import sys
from pathlib import Path

from models.artifact import METRICS_FILE, WEIGHTS_FILE
from models.commands import train
from models.config import load_train_config
from models.registry import model_path

config_path, out = Path(sys.argv[1]), sys.argv[2]
config = load_train_config(config_path)
slot = model_path(config.model_id, config.version)
target = Path(out) if out else (Path("out/retrained") / config.model_id / config.version if slot.exists() else None)
if target is not None and target.exists():
    sys.exit(f"{target} already exists: remove it, or pass another OUTPUT_DIR")
written = train(config_path, output_dir=target)
print(written)
if slot.exists() and written.resolve() != slot.resolve():
    for name in (WEIGHTS_FILE, METRICS_FILE):
        same = (written / name).read_bytes() == (slot / name).read_bytes()
        print(f"{name}: {'identical to' if same else 'differs from'} {slot}/{name}")
PY
