"""Pools of interview sentences (data/interviews/ and the data_samples/ interviews, written
for this project) for annotation.

Sentences come from the real segmenter, each with its turn and the previous turn.
All participant sentences are taken and one interviewer sentence in six (interviewer
talk is mostly questions). Nothing here assigns labels.

The first pool (iv01-iv14 and the data_samples interviews -> batch6-9, ids i00000...)
was made by an earlier version of this script (see git history) with the segmenter of
that time; it is kept as written (today's segmenter would cut a few sentences
differently). This script now makes the second pool: iv15-iv22, written later about
the same services with more talk about emotional work -> batch11-14 (ids k00000...)
and double_interviews2 (its first 150 items, for a second, independent annotator).
"""
from __future__ import annotations

import json
import random
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from pipeline.ingest import discover_inputs, read_unit
from pipeline.ingest.metadata import SpeakerTable
from pipeline.segment import Segmenter

POOL = REPO / "data" / "annotation" / "pool"

SECOND_POOL = re.compile(r"^iv(1[5-9]|2[0-2])_")
FIRST_BATCH, ID_PREFIX, SEED, DOUBLE = 11, "k", 15, 150


def interview_items(pattern: re.Pattern[str], rng: random.Random) -> list[dict]:
    segmenter = Segmenter()
    items = []
    units = discover_inputs([REPO / "data" / "interviews", REPO / "data_samples"])
    for unit in [u for u in units if pattern.match(u.transcript_id)]:
        transcript = read_unit(unit, SpeakerTable())
        sentences = segmenter.sentence_offsets(t.text for t in transcript.turns)
        for index, (turn, offsets) in enumerate(zip(transcript.turns, sentences)):
            previous = transcript.turns[index - 1] if index else None
            interviewer = turn.speaker_id.lower().startswith(("interviewer", "int"))
            for start, end in offsets:
                if interviewer and rng.random() > 1 / 6:
                    continue
                items.append({"source": "interviews", "transcript": unit.transcript_id, "turn_index": index,
                              "speaker": "interviewer" if interviewer else "participant",
                              "prev_turn": f"{previous.speaker_id}: {previous.text}" if previous else "",
                              "turn": turn.text, "sentence": turn.text[start:end]})
    return items


def write_jsonl(path: Path, items: list[dict]) -> None:
    with open(path, "w", encoding="utf-8") as out:
        out.writelines(json.dumps(item, ensure_ascii=False) + "\n" for item in items)


def main(batches: int = 4) -> None:
    rng = random.Random(SEED)
    items = interview_items(SECOND_POOL, rng)
    for n, item in enumerate(items):
        item["item_id"] = f"{ID_PREFIX}{n:05d}"
    rng.shuffle(items)
    for b in range(batches):
        write_jsonl(POOL / f"batch{FIRST_BATCH + b}.jsonl", items[b::batches])
    write_jsonl(POOL / "double_interviews2.jsonl", items[:DOUBLE])
    print(len(items), "items")


if __name__ == "__main__":
    main()
