"""Load (RELIABILITY F32-F33): peak memory does not grow with the number of transcripts,
a 3-hour (30k-word) transcript completes, a pathological 1M-character single turn is split
(never an out-of-memory kill).

Each run is the real command (`annotate --no-prefect`, the weight-free HashTagger) in a
fresh process that reports its own peak resident memory (ru_maxrss).
"""
from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from tests.trust.conftest import FACTORY, clean_env

MEASURE = """
import resource, runpy, sys
sys.argv = ["epistance", *sys.argv[1:]]
code = 0
try:
    runpy.run_module("pipeline.cli", run_name="__main__")
except SystemExit as exit:
    code = exit.code or 0
print("PEAK_RSS_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
sys.exit(code)
"""
WORDS = ["the", "ward", "was", "busy", "and", "I", "felt", "that", "nobody", "listened", "to", "me", "when", "I", "asked", "about", "my", "medication", "so", "I", "spoke", "to", "the", "nurse", "who", "said", "the", "guideline", "changes", "every", "year", "honestly", "it", "was", "hard"]


def annotate_measured(inputs: Path, out: Path, cwd: Path, timeout: float = 600) -> tuple[int, int, str]:
    """(exit code, peak RSS in KiB, output) of `annotate --no-prefect` in a fresh process."""
    done = subprocess.run([sys.executable, "-c", MEASURE, "annotate", str(inputs), "--out", str(out), "--no-prefect",
                           "--tagger-factory", FACTORY], env=clean_env(), cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, check=False)
    peak = int(done.stderr.rsplit("PEAK_RSS_KB", 1)[1].split()[0])
    return done.returncode, peak, done.stdout + done.stderr


def sentences(rng: random.Random, count: int) -> str:
    return " ".join(" ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 18))).capitalize() + "."
                    for _ in range(count))


def write_small_corpus(folder: Path, transcripts: int, seed: int = 0) -> Path:
    rng = random.Random(seed)
    folder.mkdir(parents=True)
    for index in range(transcripts):
        turns = [f"{'Interviewer' if t % 2 == 0 else 'P01'}: {sentences(rng, rng.randint(1, 4))}" for t in range(12)]
        (folder / f"int{index:04d}.txt").write_text("\n".join(turns) + "\n")
    return folder


def test_peak_memory_is_flat_when_the_corpus_grows_tenfold(tmp_path: Path) -> None:
    small = write_small_corpus(tmp_path / "small", 10)
    large = write_small_corpus(tmp_path / "large", 100, seed=1)
    code_small, peak_small, out_small = annotate_measured(small, tmp_path / "out-small", tmp_path)
    code_large, peak_large, out_large = annotate_measured(large, tmp_path / "out-large", tmp_path)
    assert code_small == 0 and code_large == 0, out_small + out_large
    def count(name: str) -> int:
        return len((tmp_path / name / "sentences.jsonl").read_text().splitlines())

    assert count("out-large") > 5 * count("out-small")
    print(f"peak RSS: 10 transcripts {peak_small / 1024:.0f} MiB, 100 transcripts {peak_large / 1024:.0f} MiB, "
          f"ratio {peak_large / peak_small:.3f}")
    assert peak_large <= 1.2 * peak_small


@pytest.mark.slow
def test_a_30k_word_transcript_completes(tmp_path: Path) -> None:
    rng = random.Random(3)
    folder = tmp_path / "in"
    folder.mkdir()
    lines, words = [], 0
    while words < 30_000:
        text = sentences(rng, rng.randint(1, 6))
        words += len(text.split())
        lines.append(f"{'Interviewer' if len(lines) % 2 == 0 else 'P01'}: {text}")
    (folder / "three_hours.txt").write_text("\n".join(lines) + "\n")
    code, peak, output = annotate_measured(folder, tmp_path / "out", tmp_path)
    assert code == 0, output
    record = json.loads((tmp_path / "out" / "run.json").read_text())
    assert record["turns"] == len(lines) and record["sentences"] > 1000
    print(f"30k words: {record['sentences']} sentences, {record['duration_s']} s, peak RSS {peak / 1024:.0f} MiB")


@pytest.mark.slow
@pytest.mark.parametrize("shape", ["prose", "no-spaces"])
def test_a_one_million_character_single_turn_is_split_not_fatal(tmp_path: Path, shape: str) -> None:
    rng = random.Random(4)
    if shape == "prose":
        body = ""
        while len(body) < 1_000_000:
            body += sentences(rng, 50) + " "
        body = body[:1_000_000]
    else:
        body = "x" * 1_000_000
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "one_turn.txt").write_text(f"P01: {body}\n")
    code, peak, output = annotate_measured(folder, tmp_path / "out", tmp_path)
    assert code == 0, output
    rows = [json.loads(line) for line in (tmp_path / "out" / "sentences.jsonl").read_text().splitlines()]
    assert len(rows) > 100 and max(len(r["text"]) for r in rows) <= 5000  # split, every character kept
    assert sum(len("".join(r["text"].split())) for r in rows) == len("".join(body.split()))
    print(f"1M characters ({shape}): {len(rows)} sentences, peak RSS {peak / 1024:.0f} MiB")
    assert peak < 3 * 1024 * 1024  # KiB: far from what the machine has
