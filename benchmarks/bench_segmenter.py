"""Segmenter benchmark: spaCy on thinc's blis (before) vs on numpy's OpenBLAS (epistance's
Segmenter), both sides in this one process, alternating, on the same data.

    .venv/bin/python benchmarks/bench_segmenter.py [--quick] [--rounds N]

On PriMock57 (57 consultations; --quick: the first 5), each round measures
(1) segmentation alone: `segment_transcript` over every transcript, and
(2) `annotate_corpus` end to end (default run config, models loaded, a new corpus folder
    each time), once with each segmenter.
Sentences from both segmenters are compared (offsets must be identical). Each side counts
its fastest round. The last line is RESULT {json} with the seconds and the ratios.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# importing the pipeline benchmark sets the offline environment and enforces it
from benchmarks.bench_pipeline import QUICK_CONSULTATIONS, choose_inputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help=f"only the first {QUICK_CONSULTATIONS} consultations")
    parser.add_argument("--rounds", type=int, default=2, help="rounds; each side counts its fastest (default 2)")
    args = parser.parse_args()

    from models.registry import load_tagger
    from pipeline.annotate import annotate_corpus
    from pipeline.config import load_run_config
    from pipeline.ingest import discover_inputs, read_unit
    from pipeline.ingest.metadata import SpeakerTable
    from pipeline.segment import Segmenter, segment_transcript
    from pipeline.tag import LoadedTagger

    inputs, consultations = choose_inputs(args.quick)
    config = load_run_config()
    config = config.model_copy(update={"orchestration": config.orchestration.model_copy(update={"orchestrator": "none"})})
    tagger = load_tagger(config.tag.model, precision=config.tag.precision)
    segmenters = {"blis": Segmenter(config.segment, use_blis=True), "openblas": Segmenter(config.segment)}
    transcripts = [read_unit(unit, SpeakerTable()) for unit in discover_inputs(inputs)]
    print(f"data: {len(consultations)} consultations; tagger {tagger.model_ref}", flush=True)

    seconds: dict[str, dict[str, list[float]]] = {name: {"segment": [], "annotate": []} for name in segmenters}
    offsets: dict[str, list[list[tuple[int, int]]]] = {}
    for round_ in range(max(1, args.rounds)):
        for name, segmenter in segmenters.items():
            start = time.perf_counter()
            offsets[name] = [[(s.start, s.end) for s in segment_transcript(t, segmenter, config.tag.tag_roles)]
                             for t in transcripts]
            seconds[name]["segment"].append(time.perf_counter() - start)
            with tempfile.TemporaryDirectory(prefix="epistance-bench-") as tmp:
                start = time.perf_counter()
                annotate_corpus(inputs, Path(tmp) / "corpus", config, LoadedTagger(tagger), SpeakerTable(),
                                segmenter=segmenter)
                seconds[name]["annotate"].append(time.perf_counter() - start)
            print(f"round {round_ + 1} {name:<8} segment {seconds[name]['segment'][-1]:6.2f}s  "
                  f"annotate {seconds[name]['annotate'][-1]:6.2f}s", flush=True)

    best = {name: {stage: min(runs) for stage, runs in stages.items()} for name, stages in seconds.items()}
    same = offsets["blis"] == offsets["openblas"]
    sentences = sum(len(o) for o in offsets["openblas"])
    print()
    print(f"(fastest of {max(1, args.rounds)} rounds)   {'blis':>9} {'openblas':>9} {'blis/openblas':>14}")
    for stage in ("segment", "annotate"):
        print(f"{stage:<22} {best['blis'][stage]:>8.2f}s {best['openblas'][stage]:>8.2f}s "
              f"{best['blis'][stage] / best['openblas'][stage]:>13.2f}x")
    print(f"sentences: {sentences}; identical offsets: {same}")
    result = {"consultations": len(consultations), "sentences": sentences, "identical_offsets": same,
              "seconds": {name: {stage: [round(x, 2) for x in runs] for stage, runs in stages.items()}
                          for name, stages in seconds.items()},
              "segment_speedup": round(best["blis"]["segment"] / best["openblas"]["segment"], 3),
              "annotate_speedup": round(best["blis"]["annotate"] / best["openblas"]["annotate"], 3)}
    print("RESULT " + json.dumps(result))
    if not same:
        raise SystemExit("the two segmenters gave different sentences")


if __name__ == "__main__":
    main()
