"""Blind comparison of two ways of finding sentence boundaries, for a human judge.

    .venv/bin/python scripts/segmentation/blind_pairs.py write OUT_DIR [--items 100]
    .venv/bin/python scripts/segmentation/blind_pairs.py score OUT_DIR

`write` segments every PriMock57 turn with the senter (the default) and with the parser,
samples turns where they differ (seeded), and writes OUT_DIR/pairs.md (each turn split
both ways, as A and B in a random order per item) and OUT_DIR/key.json (which is which).
A judge who has not seen the key writes OUT_DIR/judgments.tsv: `item<TAB>A|B|tie<TAB>reason`.
`score` decodes the judgments with the key and prints how often each way was preferred.
How this was used, and the result: docs/performance.md, "Segmentation".
"""
from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

SAMPLE_SEED, ORDER_SEED = 7, 2026
WAYS = ("senter", "parser")


def turn_sentences(boundaries: str) -> dict[str, list[str]]:
    """Every PriMock57 turn's sentences, found by `boundaries`, by turn id."""
    from benchmarks.bench_pipeline import choose_inputs
    from pipeline.config import load_run_config
    from pipeline.ingest import discover_inputs, read_unit
    from pipeline.ingest.metadata import SpeakerTable
    from pipeline.segment import SegmentConfig, Segmenter, segment_transcript

    inputs, _ = choose_inputs(quick=False)
    config = load_run_config()
    segmenter = Segmenter(SegmentConfig(**{**config.segment.model_dump(), "sentence_boundaries": boundaries}))
    found: dict[str, list[str]] = {}
    for unit in discover_inputs(inputs):
        for sentence in segment_transcript(read_unit(unit, SpeakerTable()), segmenter, config.tag.tag_roles):
            found.setdefault(sentence.turn_id, []).append(sentence.text)
    return found


def write(out: Path, items: int) -> None:
    by_way = {way: turn_sentences(way) for way in WAYS}
    differing = [turn for turn in by_way["parser"] if by_way["parser"][turn] != by_way["senter"].get(turn)]
    total = {way: sum(map(len, found.values())) for way, found in by_way.items()}
    print(f"turns: {len(by_way['parser'])}; differing: {len(differing)}; sentences: {total}")
    sample = random.Random(SAMPLE_SEED).sample(differing, min(items, len(differing)))
    order = random.Random(ORDER_SEED)
    out.mkdir(parents=True, exist_ok=True)
    key: dict[str, dict[str, str]] = {}
    text = ""
    for item, turn in enumerate(sample, 1):
        first = "senter" if order.random() < 0.5 else "parser"
        second = "parser" if first == "senter" else "senter"
        key[str(item)] = {"A": first, "B": second, "turn": turn}
        text += f"## Item {item}\n\n"
        for label, way in (("A", first), ("B", second)):
            text += f"{label}:\n" + "".join(f"  [{i}] {s}\n" for i, s in enumerate(by_way[way][turn], 1)) + "\n"
    (out / "pairs.md").write_text(text, encoding="utf-8")
    (out / "key.json").write_text(json.dumps(key, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {out / 'pairs.md'} ({len(sample)} items) and {out / 'key.json'}")


def score(out: Path) -> Counter[str]:
    """How often each way (or a tie) was preferred, the judgments decoded with the key."""
    key = json.loads((out / "key.json").read_text(encoding="utf-8"))
    preferred: Counter[str] = Counter()
    for line in (out / "judgments.tsv").read_text(encoding="utf-8").splitlines():
        item, verdict = line.split("\t")[:2]
        preferred["tie" if verdict == "tie" else key[item][verdict]] += 1
    return preferred


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["write", "score"])
    parser.add_argument("out", type=Path)
    parser.add_argument("--items", type=int, default=100)
    args = parser.parse_args()
    if args.command == "write":
        write(args.out, args.items)
    else:
        preferred = score(args.out)
        print("preferred: " + ", ".join(f"{way} {preferred[way]}" for way in (*WAYS, "tie")))


if __name__ == "__main__":
    main()
