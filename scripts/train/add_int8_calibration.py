"""Give a model folder trained before int8 calibrations existed its int8 calibration.

Training writes `int8_calibration.safetensors` itself (models.train.write_int8_calibration);
this measures the same ranges for an older model, on the training data its own
`train_config.toml` names (which must still be the data it was trained on), writes the
file into the folder and rewrites the folder's manifest. With it, `auto` precision runs the
model in int8, smoothed (docs/performance.md).

    .venv/bin/python scripts/train/add_int8_calibration.py MODEL_DIR
"""
from __future__ import annotations

import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from models.artifact import CONFIG_FILE, load_model_dir, write_manifest
from models.config import TrainConfig
from models.int8_smoothing import RANGES_FILE
from models.train import int8_calibration_items, prepare_data, write_int8_calibration


def main(folder: Path) -> None:
    import torch

    loaded = load_model_dir(folder)
    if (folder / RANGES_FILE).exists():
        sys.exit(f"{folder / RANGES_FILE} exists already")
    config = TrainConfig.model_validate(tomllib.loads((folder / CONFIG_FILE).read_text()))
    torch.set_num_threads(config.num_threads)  # as training measures them
    data = prepare_data(config.model_copy(update={"evaluate_test": False}), loaded.schema)
    written = write_int8_calibration(loaded.net, loaded.tokenizer, int8_calibration_items(data.train, config.seed),
                                     loaded.spec.max_length, loaded.spec.context_tokens, folder)
    if not written:
        sys.exit(f"{loaded.spec.ref}: its encoder is not BERT-shaped; nothing written")
    write_manifest(folder)
    print(f"{folder / RANGES_FILE} written; manifest updated")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(Path(sys.argv[1]))
