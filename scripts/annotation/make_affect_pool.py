"""A second pool, sampled to hold more talk about feelings (affect_focus is rare in PriMock57).

Sampling only: sentences that mention feelings are drawn from GoEmotions train and EmoBank
train by a word list; every label is still assigned by annotators reading each item.
"""
from __future__ import annotations

import csv
import json
import random
import re
import sys
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
POOL = Path(__file__).resolve().parents[2] / "data" / "annotation" / "pool"
FEELING_WORDS = re.compile(
    r"\b(feel|feels|felt|feeling|emotion\w*|upset|scared|afraid|angry|anger|sad|sadness|happy|anxious|anxiety|"
    r"worr\w+|cry|cried|crying|lonely|ashamed|guilt\w*|frustrat\w+|stress\w*|grief|hurt|depress\w+|calm|panic\w*|"
    r"comfort\w*|distress\w*|mood|tears|nervous|overwhelm\w*|empath\w*|listen\w*)\b", re.IGNORECASE)


def main(n_per_source: int = 150) -> None:
    rng = random.Random(5)
    existing = set()
    for path in POOL.glob("*.jsonl"):
        existing |= {json.loads(line)["transcript"] for line in path.read_text().splitlines()}
    items = []
    with open(SHARED / "goemotions/ekman/train.tsv", encoding="utf-8") as handle:
        ge = [r for r in csv.reader(handle, delimiter="\t") if FEELING_WORDS.search(r[0]) and r[2] not in existing]
    for text, _labels, cid in rng.sample(ge, n_per_source):
        items.append(("goemotions_train", cid, text))
    with open(SHARED / "emobank/emobank.csv", encoding="utf-8") as handle:
        eb = [r for r in csv.DictReader(handle)
              if r["split"] == "train" and FEELING_WORDS.search(r["text"]) and r["id"] not in existing]
    for r in rng.sample(eb, n_per_source):
        items.append(("emobank_train", r["id"], r["text"]))
    rng.shuffle(items)
    with open(POOL / "batch5.jsonl", "w", encoding="utf-8") as out:
        for n, (source, doc_id, text) in enumerate(items):
            out.write(json.dumps({"source": source, "transcript": doc_id, "turn_index": 0, "speaker": "writer",
                                  "prev_turn": "", "turn": text, "sentence": text, "item_id": f"a{n:05d}"},
                                 ensure_ascii=False) + "\n")
    print(len(items))


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:]))
