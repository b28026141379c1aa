"""Dev-only experiment (docs/model.md, "Averaging seeds"): is the tagger limited by the
variance between training runs? Scores models of one recipe trained with other seeds, alone,
with their weights averaged (a uniform "model soup") and with their logits averaged (an
ensemble, which would cost one forward pass per member at run time).

    .venv/bin/python scripts/experiments/seed_average.py CONFIG "DIR[,DIR...][;DIR,...]" [weights|logits]

CONFIG is the members' training config (for the data and the base encoder); each
";"-separated group of model directories is scored once: the members' trained tensors (or
their logits) are averaged, then calibrated on dev (`models.train.calibrate`, as training
does) and scored on the in-domain dev split and GoEmotions dev, with the early-stopping dev
score (`models.train.dev_score`). Members whose weights are averaged must share their
heads' start (`model.head_init_seed`). No test split is read. Not part of the product.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import torch
from safetensors.torch import load_file
from transformers import AutoTokenizer

from models.artifact import WEIGHTS_FILE
from models.base import resolve_base
from models.config import load_train_config
from models.evaluate import compute_metrics, headline
from models.labels import load_label_schema
from models.tagger import attach_context, batched_logits, encode, predictions_from_logits
from models.train import _build_net, calibrate, dev_score, prepare_data


def averaged(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The mean of the members' stored tensors, stored back in their dtype."""
    return {k: torch.stack([s[k].float() for s in states]).mean(0).to(states[0][k].dtype) for k in states[0]}


def main(config_path: str, groups: str, mode: str = "weights") -> None:
    if mode not in ("weights", "logits"):
        raise SystemExit(f"mode must be weights or logits, not {mode!r}")
    torch.set_num_threads(2)
    config = load_train_config(Path(config_path))
    schema = load_label_schema(config.resolve(config.data.label_schema))
    base = resolve_base(config.base.model, config.base.sha256, config.base.revision, config.base.allow_download)
    tokenizer = AutoTokenizer.from_pretrained(str(base.path), local_files_only=True)
    data = prepare_data(config, schema)
    max_len, context_tokens = config.model.max_length, config.model.context_tokens
    indomain = encode(tokenizer, [ex.text for ex in data.dev_indomain], max_len)
    indomain, lengths = attach_context(tokenizer, indomain, [ex.context for ex in data.dev_indomain], max_len,
                                       context_tokens)
    goemotions = encode(tokenizer, [ex.text for ex in data.dev_goemotions], max_len)
    watched = encode(tokenizer, [ex.text for ex in data.dev_goemotions_watch], max_len)
    net, _, _ = _build_net(config, base.path, schema)
    net.eval()
    params = dict(net.named_parameters())

    def logits_of(state: dict[str, torch.Tensor]) -> list[dict[str, Any]]:
        with torch.no_grad():
            for name, tensor in state.items():
                params[name].copy_(tensor)
        return [batched_logits(net, indomain, 0, 128, lengths, one_width=False),
                batched_logits(net, goemotions, 0, 128, one_width=False),
                batched_logits(net, watched, 0, 128, one_width=False)]

    for group in groups.split(";"):
        dirs = [Path(d) for d in group.split(",")]
        states = [load_file(str(d / WEIGHTS_FILE)) for d in dirs]
        runs = [logits_of(averaged(states))] if mode == "weights" else [logits_of(s) for s in states]
        li, lg, lw = ({k: sum(r[i][k] for r in runs) / len(runs) for k in runs[0][i]} for i in range(3))
        score, _ = dev_score(schema, data.dev_indomain, li, data.dev_goemotions_watch, lw,
                             config.optim.min_dev_positives)
        cal = calibrate(schema, data.dev_indomain, li, data.dev_goemotions, lg, config.optim.min_dev_positives)
        dev = headline(compute_metrics(data.dev_indomain, predictions_from_logits(li, schema, cal), schema))
        ge = headline(compute_metrics(data.dev_goemotions, predictions_from_logits(lg, schema, cal), schema))
        print(json.dumps({"members": [d.name for d in dirs], "mode": mode, "dev_score": round(score, 4),
                          "dev": {k: round(v, 4) for k, v in dev.items()},
                          "goemotions_dev_7": round(ge["emotions_macro_f1_7"], 4)}), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
