"""Throughput benchmark: the naive pipeline vs epistance end to end vs the model's ceiling.

    .venv/bin/python benchmarks/bench_pipeline.py [--quick] [--runs N]

Everything is measured in this one process, one path after the other, on the same data
(PriMock57: 57 consultations; --quick: the first 5). Loading spaCy and the model is timed
on its own line and left out of every rate (a user pays it once per run, whatever the size).

(a) naive: what a user would write. spaCy's full default pipeline called per turn
    (nlp(turn)), then the tagger in float32 one sentence at a time (batch size 1), given the
    same context as epistance gives it.
(b) epistance: pipeline.annotate.annotate_corpus (ingest, segment, tag, write JSONL, Parquet,
    DocBin, manifest) with the default run config (precision "auto", two lanes; --precision
    to run (b) and (c) in another). On Linux its corpus files are written by a process it
    forks (pipeline.corpus_writer) while it tags; its time counts in (b)'s wall time.
(c) ceiling: the default tagger's forward pass alone (tagger.logits, length-sorted token-budget
    batches) on (b)'s own sentences and contexts, run two ways: one call on every core, and
    in (b)'s lanes (calls of SENTENCES_PER_GROUP sentences from two threads, the cores shared
    among them). The fastest of two runs of each, and of the default precision's predict()
    below. (b)'s first run comes first (it records the sentences); its later runs alternate
    with (c)'s.

Then the labels of (b) are compared with the float32 model's on every sentence, per layer,
and each precision (float32, bfloat16, int8) runs tagger.predict on (b)'s sentences: its
speed and its agreement with float32. (a) and (b) each run --runs times (default 2) and
count their fastest run, as (c) does: single runs on a shared machine vary by about 10%.
The naive path's time is split into spaCy and model, and c/a is printed: the b/a a
pipeline costing nothing around the model would reach. Peak RSS is (b)'s own: on Linux the
peak restarts after loading, whose own peak is printed apart (higher the first time a
model runs in int8: the network is exported and quantised, then cached). The last line is
RESULT {json}.
"""
from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse
import json
import platform
import re
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, get_args

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.offline import enforce_offline
from pipeline.precision import Precision

enforce_offline()

DATA = ROOT.parent / "shared" / "data" / "primock57" / "transcripts"
QUICK_CONSULTATIONS = 5


def peak_rss_mb() -> float:
    """This process's peak RSS since it started, or since the last `restart_peak_rss()`."""
    try:  # Linux: VmHWM, the peak that /proc/self/clear_refs restarts
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux, since start


def restart_peak_rss() -> bool:
    """Start the peak over from the current RSS, so that a one-off peak while loading (the
    int8 network exported and quantised when its cache is cold: about 300 MB more) is not
    counted as (b)'s. False where the kernel does not allow it (the peak then includes it)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def choose_inputs(quick: bool) -> tuple[list[Path], list[str]]:
    files = sorted(DATA.glob("*.TextGrid"))
    if not files:
        raise SystemExit(f"no PriMock57 TextGrids under {DATA}")
    consultations = sorted({re.sub(r"_(doctor|patient)$", "", p.stem) for p in files})
    if quick:
        consultations = consultations[:QUICK_CONSULTATIONS]
    keep = set(consultations)
    return [p for p in files if re.sub(r"_(doctor|patient)$", "", p.stem) in keep], consultations


def timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    value = fn(*args, **kwargs)
    return value, time.perf_counter() - start


def naive_pipeline(inputs: list[Path], nlp: Any, tagger: Any, split: dict[str, float]) -> int:
    """(a): per turn, the full spaCy pipeline; per sentence, one model call. Adds the
    seconds spent in spaCy and in the model to `split`."""
    from pipeline.context import preceding_context
    from pipeline.ingest import discover_inputs, read_unit
    from pipeline.ingest.markup import strip_markup
    from pipeline.ingest.metadata import SpeakerTable

    n = 0
    for unit in discover_inputs(inputs):
        previous = None
        for turn in read_unit(unit, SpeakerTable()).turns:
            text = strip_markup(turn.text)
            doc, seconds = timed(nlp, text)
            split["spacy"] += seconds
            for sent in doc.sents:
                if sent.text.strip():
                    split["model"] += timed(tagger.predict, [sent.text],
                                            [preceding_context(previous, text, sent.start_char)])[1]
                    n += 1
            previous = text
    return n


class Recorder:
    """The tagger (b) uses, passed through: keeps what (b) asked and answered, so (c) and the
    float32 reference run on exactly (b)'s sentences and contexts. (b)'s lanes call it from
    two threads: each call's texts, contexts and labels are kept together under a lock."""

    def __init__(self, tagger: Any) -> None:
        self._tagger = tagger
        self.model_ref, self.schema = tagger.model_ref, tagger.schema
        self.texts: list[str] = []
        self.contexts: list[str] = []
        self.predictions: list[Any] = []
        self._lock = threading.Lock()

    def _keep(self, texts: Any, contexts: Any, out: Any) -> None:
        with self._lock:
            self.texts.extend(texts)
            self.contexts.extend(contexts if contexts is not None else [""] * len(texts))
            self.predictions.extend(out)

    def predict(self, texts: Any, contexts: Any = None) -> Any:
        out = self._tagger.predict(texts, contexts)
        self._keep(texts, contexts, out)
        return out

    def predict_windowed(self, texts: Any, contexts: Any = None) -> Any:
        out, windowed = self._tagger.predict_windowed(texts, contexts)
        self._keep(texts, contexts, out)
        return out, windowed

    def lanes(self, count: int) -> Any:  # (b) shares the tagger's threads among its lanes
        return self._tagger.lanes(count)

    @property
    def batch_invariant(self) -> bool:  # (b) groups transcripts per call as the tagger allows
        return bool(getattr(self._tagger, "batch_invariant", False))


def logits_in_lanes(tagger: Any, texts: list[str], contexts: list[str], lanes: int, group: int) -> None:
    """The forward pass as (b)'s lanes run it: `lanes` threads, each on its share of the cores,
    taking calls of `group` sentences in (b)'s order."""
    from concurrent.futures import ThreadPoolExecutor

    chunks = [(texts[i:i + group], contexts[i:i + group]) for i in range(0, len(texts), group)]
    with tagger.lanes(lanes), ThreadPoolExecutor(max_workers=lanes) as pool:
        list(pool.map(lambda chunk: tagger.logits(*chunk), chunks))


def agreement(predictions: list[Any], reference: list[Any]) -> dict[str, float]:
    """Share of sentences whose label per layer is the same as the float32 model's."""
    n = max(len(predictions), 1)
    same = {"stance": 0, "emotions": 0, "affect_focus": 0}
    for pred, ref in zip(predictions, reference):
        same["stance"] += pred.stance == ref.stance
        same["emotions"] += sorted(pred.emotions) == sorted(ref.emotions)
        same["affect_focus"] += pred.affect_focus == ref.affect_focus
    return {layer: round(count / n, 4) for layer, count in same.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help=f"only the first {QUICK_CONSULTATIONS} consultations")
    parser.add_argument("--runs", type=int, default=2,
                        help="runs of (a) and of (b); each rate is its fastest run, as for (c) (default 2)")
    parser.add_argument("--precision", choices=get_args(Precision),
                        help="the precision (b) and (c) run in (default: the run config's, auto)")
    args = parser.parse_args()

    import spacy
    import torch

    from models.registry import load_tagger
    from pipeline.annotate import SENTENCES_PER_GROUP, annotate_corpus
    from pipeline.config import load_run_config
    from pipeline.ingest.metadata import SpeakerTable
    from pipeline.segment import Segmenter
    from pipeline.tag import LoadedTagger

    inputs, consultations = choose_inputs(args.quick)
    config = load_run_config()
    if args.precision:
        config = config.model_copy(update={"tag": config.tag.model_copy(update={"precision": args.precision})})
    config = config.model_copy(update={"orchestration": config.orchestration.model_copy(update={"orchestrator": "none"})})
    print(f"data: {len(consultations)} consultations ({len(inputs)} TextGrid files) from {DATA}", flush=True)

    # loading, once per run whatever the corpus size: timed apart from the rates
    segmenter, load_segmenter_s = timed(Segmenter, config.segment)
    # the precision the run config means for this model here (auto: int8 for a calibrated model)
    tagger, load_tagger_s = timed(load_tagger, config.tag.model, precision=config.tag.precision,
                                  batch_size=config.tag.batch_size)
    precision = tagger.precision
    print(f"load: segmenter {load_segmenter_s:.2f}s, tagger ({precision}) {load_tagger_s:.2f}s", flush=True)
    load_rss = peak_rss_mb()
    load_peak_apart = restart_peak_rss()

    # (b) epistance end to end, first: peak RSS read right after it is (b)'s own. Every run
    # writes a new corpus folder (nothing cached); the first one records what was tagged.
    # (b)'s later runs alternate with (c)'s, so that a slower spell of a shared machine
    # falls on both rather than on one
    recorder = Recorder(tagger)
    b_walls: list[float] = []

    def run_b(source_tagger: Any) -> Any:
        with tempfile.TemporaryDirectory(prefix="epistance-bench-") as tmp:
            summary, seconds = timed(annotate_corpus, inputs, Path(tmp) / "corpus", config,
                                     LoadedTagger(source_tagger), SpeakerTable(), segmenter=segmenter)
        b_walls.append(seconds)
        print(f"(b) run {len(b_walls)}: {summary.sentences_tagged} sentences tagged in {seconds:.2f}s", flush=True)
        return summary

    summary = run_b(recorder)
    b_rss = peak_rss_mb()
    # the corpus files are written by a process forked from this one (pipeline.corpus_writer):
    # its peak counts the pages it shares with this process, so it is shown on its own
    writer_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    texts, contexts, predictions = recorder.texts, recorder.contexts, recorder.predictions
    b_n = summary.sentences_tagged

    # (c) the default tagger's forward pass alone on the same sentences, in one call and in
    # lanes: the fastest of two runs of each, as a ceiling should be
    lanes = max(1, config.orchestration.max_workers)
    c_singles: list[float] = []
    c_lanes_runs: list[float] = []
    for _ in range(max(2, args.runs)):
        c_singles.append(timed(tagger.logits, texts, contexts)[1])
        c_lanes_runs.append(timed(logits_in_lanes, tagger, texts, contexts, lanes, SENTENCES_PER_GROUP)[1])
        print(f"(c) run {len(c_singles)}: {len(texts)} sentences in {c_singles[-1]:.2f}s (one call), "
              f"{c_lanes_runs[-1]:.2f}s ({lanes} lanes)", flush=True)
        if len(b_walls) < max(1, args.runs):
            run_b(tagger)
    b_wall = min(b_walls)
    c_single, c_lanes = min(c_singles), min(c_lanes_runs)
    c_wall = min(c_single, c_lanes)

    # every precision on the same sentences; float32 is the reference for label agreement
    # and the naive user's model
    by_precision: dict[str, dict[str, Any]] = {}
    for name in ("float32", "bfloat16", "int8"):
        model, load_s = timed(load_tagger, config.tag.model, precision=name, batch_size=config.tag.batch_size)
        labels, seconds = timed(model.predict, texts, contexts)
        if name == "float32":
            tagger_fp32, load_fp32_s, reference = model, load_s, labels
        by_precision[name] = {"predict_sentences_per_s": round(len(texts) / seconds, 2),
                              "agreement_with_float32": agreement(labels, reference)}
        print(f"{name} predict(): {len(texts)} sentences in {seconds:.2f}s", flush=True)
    agree = agreement(predictions, reference)

    # (a) naive
    nlp, load_nlp_s = timed(spacy.load, config.segment.spacy_model)
    a_runs = []
    for run in range(max(1, args.runs)):
        split = {"spacy": 0.0, "model": 0.0}
        a_n, seconds = timed(naive_pipeline, inputs, nlp, tagger_fp32, split)
        a_runs.append((seconds, split))
        print(f"(a) run {run + 1}: {a_n} sentences in {seconds:.2f}s", flush=True)
    a_wall, a_split = min(a_runs, key=lambda item: item[0])

    # predict() is the forward pass and more, so the default precision's predict() rate is a
    # ceiling too; single runs vary, and the ceiling is the fastest seen
    a_rate, b_rate = a_n / a_wall, b_n / b_wall
    c_rate = max(len(texts) / c_wall, by_precision[precision]["predict_sentences_per_s"])
    print()
    print(f"(fastest of {max(1, args.runs)} runs each for (a) and (b); (c) as described above)")
    print(f"{'path':<58} {'sentences':>9} {'seconds':>8} {'sent/s':>8}")
    print(f"{'(a) naive: spaCy full pipeline per turn + float32 batch 1':<58} {a_n:>9} {a_wall:>8.2f} {a_rate:>8.1f}")
    print(f"{f'(b) epistance end to end ({precision}, models loaded)':<58} {b_n:>9} {b_wall:>8.2f} {b_rate:>8.1f}")
    print(f"{f'(c) ceiling: {precision} forward pass alone (fastest seen)':<58} "
          f"{len(texts):>9} {len(texts) / c_rate:>8.2f} {c_rate:>8.1f}")
    print()
    print(f"{'precision':<10} {'predict() sent/s':>17}  labels = float32 labels (stance / emotion sets / affect_focus)")
    for name, row in by_precision.items():
        same = row["agreement_with_float32"]
        print(f"{name:<10} {row['predict_sentences_per_s']:>17.1f}  "
              f"{same['stance']:.2%} / {same['emotions']:.2%} / {same['affect_focus']:.2%}")
    print()
    print(f"load (not in any rate): segmenter {load_segmenter_s:.2f}s, {precision} tagger "
          f"{load_tagger_s:.2f}s, float32 tagger {load_fp32_s:.2f}s, full spaCy {load_nlp_s:.2f}s")
    print(f"(a) split: spaCy {a_split['spacy']:.1f}s, model {a_split['model']:.1f}s; with no pipeline cost at all "
          f"(b = c), b/a would be {c_rate / a_rate:.2f}x")
    print(f"b/a (speedup vs naive):    {b_rate / a_rate:.2f}x (in seconds for the same corpus, whose two "
          f"segmentations count {a_n} and {b_n} sentences: {a_wall / b_wall:.2f}x)")
    print(f"b/c (fraction of ceiling): {b_rate / c_rate:.2f}")
    print(f"(b)'s labels = float32 labels: stance {agree['stance']:.2%}, emotions (whole set) "
          f"{agree['emotions']:.2%}, affect_focus {agree['affect_focus']:.2%}")
    loading = (f"loading before it: {load_rss:.0f} MB (more when the int8 cache is cold: the export)"
               if load_peak_apart else "loading included (this kernel cannot restart the peak)")
    print(f"peak RSS during (b): {b_rss:.0f} MB (spaCy for segmentation, the {precision} tagger and the run); "
          f"{loading}; whole benchmark, every model loaded: {max(load_rss, peak_rss_mb()):.0f} MB; "
          f"the forked corpus writer: {writer_rss:.0f} MB, counting the pages it shares with the run")
    print(f"machine: os.cpu_count()={os.cpu_count()}, {platform.machine()}, torch threads={torch.get_num_threads()}, "
          f"torch {torch.__version__}, python {platform.python_version()}")
    result = {
        "speedup_vs_naive": round(b_rate / a_rate, 3),
        "fraction_of_ceiling": round(b_rate / c_rate, 3),
        "peak_rss_mb": round(b_rss, 1),
        "load_peak_rss_mb": round(load_rss, 1) if load_peak_apart else None,
        "sentences": b_n,
        "quick": args.quick,
        "consultations": len(consultations),
        "precision": precision,
        "naive_sentences_per_s": round(a_rate, 2),
        "epistance_sentences_per_s": round(b_rate, 2),
        "ceiling_sentences_per_s": round(c_rate, 2),
        "naive_sentences": a_n,
        "runs": max(1, args.runs),
        "seconds": {"naive": [round(x, 2) for x, _ in a_runs], "epistance": [round(x, 2) for x in b_walls]},
        "naive_split_s": {k: round(v, 2) for k, v in a_split.items()},
        "speedup_bound_c_over_a": round(c_rate / a_rate, 3),
        "seconds_ratio_a_over_b": round(a_wall / b_wall, 3),
        "agreement_with_float32": agree,
        "precisions": by_precision,
        "ceiling_s": {"one_call": round(c_single, 2), "lanes": round(c_lanes, 2)},
        "load_s": {"segmenter": round(load_segmenter_s, 2), "tagger": round(load_tagger_s, 2)},
        "model": tagger.model_ref,
    }
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
