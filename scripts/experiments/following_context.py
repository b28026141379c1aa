"""Dev-only experiment (docs/model.md, "Following context"): does reading the rest of the
sentence's own turn help, as well as the talk before it?

    .venv/bin/python scripts/experiments/following_context.py PRE FOL OUT_DIR

Trains configs/train/default.toml on a copy of the gold data whose contexts carry
"preceding\\x00following" (following = the rest of the sentence's turn, from the annotation
pool), with models.tagger.attach_context patched to build
[CLS] sentence [SEP] preceding-tail (PRE tokens) [SEP] following-head (FOL tokens) [SEP],
and prints the dev figures. No test split is scored. Not part of the product: the
pipeline, the gold data and the shipped model are untouched.
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

import models.tagger
from models.config import load_train_config
from models.train import train_model
from pipeline.ingest.markup import strip_markup

ANNOTATION = ROOT / "data" / "annotation"
SEPARATOR = "\x00"


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def write_gold_with_following(target: Path) -> None:
    """gold.jsonl with "preceding<SEP>following" contexts (following: the rest of the turn)."""
    pool = {item["item_id"]: item for path in sorted((ANNOTATION / "pool").glob("batch*.jsonl"))
            for item in read_jsonl(path)}
    with open(target, "w", encoding="utf-8") as out:
        for row in read_jsonl(ANNOTATION / "gold.jsonl"):
            item = pool[row["id"]]
            end = max(item["turn"].find(item["sentence"]), 0) + len(item["sentence"])
            following = " ".join(strip_markup(item["turn"][end:end + 1000]).split())
            row["context"] = row["context"] + SEPARATOR + following
            out.write(json.dumps(row, ensure_ascii=False) + "\n")


def attach_both(pre: int, fol: int):  # type: ignore[no-untyped-def]
    """An attach_context that appends the preceding tail and then the following head."""

    def attach(tokenizer: Any, token_ids: Any, contexts: Any, max_length: int, _tokens: int) -> Any:
        lengths = [len(row) for row in token_ids]
        if not token_ids:
            return [], []
        parts = [(c.split(SEPARATOR, 1) + [""])[:2] for c in contexts]
        before = tokenizer([p[0][-pre * 12:] for p in parts], add_special_tokens=False)["input_ids"]
        after = tokenizer([p[1][:fol * 12] for p in parts], add_special_tokens=False)["input_ids"]
        sep = int(tokenizer.sep_token_id)
        rows = []
        for row, b, a in zip(token_ids, before, after):
            room = max_length - len(row) - 2
            tail = b[-min(pre, room):] if b and room > 0 else []
            room -= len(tail)
            head = a[:min(fol, room)] if a and room > 0 else []
            rows.append([*row, *([*tail, sep] if tail else []), *([*head, sep] if head else [])])
        return rows, lengths

    return attach


def main() -> None:
    pre, fol, out_dir = int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
    out_dir.mkdir(parents=True, exist_ok=True)
    gold = out_dir / "gold_follow.jsonl"
    write_gold_with_following(gold)
    models.tagger.attach_context = attach_both(pre, fol)  # train_model imports it at call time
    config = load_train_config()
    config = config.model_copy(update={
        "version": f"exp-follow-{pre}-{fol}", "evaluate_test": False,
        "data": config.data.model_copy(update={"gold": gold}),
        "model": config.model.model_copy(update={"context_tokens": pre + fol})})
    folder = train_model(config, out_dir / f"follow_{pre}_{fol}")
    with open(folder / "metrics.json", encoding="utf-8") as handle:
        dev = json.load(handle)["dev"]
    indomain = dev["indomain"]
    print(f"dev (in-domain, {indomain['n']}): stance macro-F1 {indomain['stance']['macro_f1']:.4f}, emotions "
          f"macro-F1 (7) {indomain['emotions']['macro_f1_7']:.4f}, affect focus F1 "
          f"{indomain['affect_focus']['f1']:.4f}; GoEmotions dev (7) {dev['goemotions']['emotions']['macro_f1_7']:.4f}")


if __name__ == "__main__":
    main()
