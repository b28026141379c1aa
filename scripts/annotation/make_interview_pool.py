"""Pool of interview sentences (data/interviews/ and the data_samples/ interviews, written
for this project) for annotation.

Sentences come from the real segmenter, each with its turn and the previous turn.
All participant sentences are taken and one interviewer sentence in six (interviewer
talk is mostly questions). Nothing here assigns labels.
"""
from __future__ import annotations

import json
import random
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from pipeline.ingest import discover_inputs, read_unit  # noqa: E402
from pipeline.ingest.metadata import SpeakerTable  # noqa: E402
from pipeline.segment import Segmenter  # noqa: E402

POOL = REPO / "data" / "annotation" / "pool"


def main(batches: int = 4) -> None:
    rng = random.Random(14)
    segmenter = Segmenter()
    items = []
    units = discover_inputs([REPO / "data" / "interviews", REPO / "data_samples"])
    for unit in [u for u in units if u.transcript_id.startswith(("iv", "int"))]:
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
    for n, item in enumerate(items):
        item["item_id"] = f"i{n:05d}"
    rng.shuffle(items)
    for b in range(batches):
        with open(POOL / f"batch{6 + b}.jsonl", "w", encoding="utf-8") as out:
            for item in items[b::batches]:
                out.write(json.dumps(item, ensure_ascii=False) + "\n")
    print(len(items), "items")


if __name__ == "__main__":
    main()
