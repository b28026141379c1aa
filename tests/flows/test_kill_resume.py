"""Kill -9 at random moments, rerun: the run completes, the outputs equal an uninterrupted
run byte for byte, no temp files or duplicate rows remain, and only transcripts whose part
was not yet committed are tagged again (RELIABILITY A1, A2).

A child process (tests/flows/killer.py) runs the core or the flow on a small corpus with
the weight-free HashTagger and SIGKILLs itself at an injected point (before a model batch,
in the middle of an output write, before an fsync, before a rename, before the manifest
is published) or is SIGKILLed by the test after a random delay. The quick test runs a few
fixed points of the core; the slow one runs >= 20 random trials of each of the core and
the flow (`pytest -m slow tests/flows/test_kill_resume.py`).
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline.annotate import annotate_corpus
from pipeline.config import RunConfig
from pipeline.corpus_io import read_sentences, verify_corpus
from pipeline.ingest.metadata import load_speaker_table
from pipeline.segment import Segmenter
from pipeline.tag import LoadedTagger
from tests.fakes import HashTagger
from tests.flows.helpers import FACTORY, PYTHON, REPO, TRANSCRIPTS, child_env, tree, write_corpus

KILLER = REPO / "tests" / "flows" / "killer.py"
UNITS = len(TRANSCRIPTS)


@dataclass
class Trial:
    mode: str
    kill: str  # an injected point, or "delay:SECONDS"
    killed: bool = False
    committed: int = 0
    processed_on_resume: int = 0


def run_child(mode: str, inputs: Path, out: Path, kill: str = "", prefect_home: Path | None = None,
              api: str | None = None) -> tuple[int, str, float]:
    """(return code, stdout, seconds from "go" to exit)."""
    command = [PYTHON, str(KILLER), "--mode", mode, "--inputs", str(inputs), "--out", str(out),
               "--metadata", str(inputs.parent / "speakers.csv")]
    if kill and not kill.startswith("delay:"):
        command += ["--kill", kill]
    if prefect_home:
        command += ["--prefect-home", str(prefect_home)]
    env = child_env(**({"PREFECT_API_URL": api} if api else {}))
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
                             cwd=REPO, start_new_session=True)
    assert child.stdout is not None
    first = child.stdout.readline()
    go = time.monotonic()
    if kill.startswith("delay:") and first.strip() == "go":
        try:
            child.wait(timeout=float(kill.split(":", 1)[1]))
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)  # the run and its corpus writer
    rest, _ = child.communicate(timeout=300)
    return child.returncode, first + rest, time.monotonic() - go


def committed_parts(out: Path) -> int:
    parts = out / ".epistance" / "parts"
    return sum(1 for p in parts.glob("*.json") if not p.name.startswith(".tmp-")) if parts.is_dir() else 0


def resume_in_process(mode: str, inputs: Path, out: Path, segmenter: Segmenter, api: str | None,
                      config: RunConfig):  # type: ignore[no-untyped-def]
    speakers_csv = inputs.parent / "speakers.csv"
    if mode == "core":
        return annotate_corpus([inputs], out, config, LoadedTagger(HashTagger()), load_speaker_table(speakers_csv),
                               segmenter=segmenter)
    from pipeline.flows import workers
    from pipeline.flows.annotate import run_flow

    workers.use_segmenter(segmenter)
    assert api is not None
    return run_flow([inputs], out, config, api_url=api, metadata=speakers_csv, tagger_factory=FACTORY)


def check_trial(trial: Trial, inputs: Path, out: Path, reference: dict[str, bytes], segmenter: Segmenter,
                api: str | None, config: RunConfig) -> None:
    trial.committed = committed_parts(out)
    summary = resume_in_process(trial.mode, inputs, out, segmenter, api, config)
    trial.processed_on_resume = summary.transcripts_processed
    where = f"{trial.mode} killed at {trial.kill}"
    assert summary.transcripts_failed == 0, where
    assert summary.transcripts_processed == UNITS - trial.committed, where  # only missing work is redone
    assert tree(out) == reference, where  # byte for byte
    assert not [p for p in out.rglob("*") if p.name.startswith(".tmp-")], where
    ids = [r.sentence_id for r in read_sentences(out)]
    assert len(ids) == len(set(ids)), where
    assert verify_corpus(out) == [], where


def reference_run(mode: str, tmp_path: Path, prefect_home: Path | None = None,
                  api: str | None = None) -> tuple[Path, dict[str, bytes], dict[str, int], float]:
    inputs = write_corpus(tmp_path / "in")
    code, output, seconds = run_child(mode, inputs, tmp_path / "reference", prefect_home=prefect_home, api=api)
    assert code == 0, output
    counts = json.loads(output.strip().splitlines()[-1])
    return inputs, tree(tmp_path / "reference"), counts, seconds


def random_kills(rng: random.Random, counts: dict[str, int], seconds: float, n: int) -> list[str]:
    points = []
    for index in range(n):
        kind = ["predict", "bytes", "fsync", "replace", "replace-name", "delay"][index % 6]
        if kind == "replace-name":
            points.append(f"replace:{rng.choice(['manifest.json', 'sentences.jsonl', 'sentences.parquet', 'docs.spacy', 'run.json'])}")
        elif kind == "delay":
            points.append(f"delay:{rng.uniform(0.0, seconds * 1.1):.3f}")
        else:
            points.append(f"{kind}:{rng.randint(1, counts[kind])}")
    return points


def run_trials(mode: str, kills: list[str], inputs: Path, reference: dict[str, bytes], tmp_path: Path,
               segmenter: Segmenter, config: RunConfig, prefect_home: Path | None = None,
               api: str | None = None) -> list[Trial]:
    trials = []
    for index, kill in enumerate(kills):
        out = tmp_path / f"out-{index}"
        trial = Trial(mode, kill)
        code, output, _ = run_child(mode, inputs, out, kill, prefect_home=prefect_home, api=api)
        assert code in (0, -signal.SIGKILL), f"{kill}: exit {code}\n{output}"
        trial.killed = code == -signal.SIGKILL
        check_trial(trial, inputs, out, reference, segmenter, api, config)
        trials.append(trial)
    return trials


def test_kill_at_fixed_points_of_the_core_and_resume(tmp_path: Path, segmenter: Segmenter) -> None:
    inputs, reference, counts, _ = reference_run("core", tmp_path)
    # the lanes tag groups of transcripts: one model call or a few for this small corpus
    assert 1 <= counts["predict"] <= UNITS and counts["replace"] == UNITS + 5
    kills = ["predict:1", "replace:2", f"bytes:{counts['bytes'] // 2}", "replace:manifest.json"]
    trials = run_trials("core", kills, inputs, reference, tmp_path, segmenter, RunConfig())
    assert all(t.killed for t in trials)
    # killed at the first model call, nothing is committed yet; before the second rename
    # (renames are one at a time in the killer), one transcript's part is, and only the
    # others are tagged again (check_trial)
    assert trials[0].committed == 0 and trials[1].committed == 1
    assert trials[1].processed_on_resume == UNITS - trials[1].committed


@pytest.mark.slow
def test_kill_the_core_at_random_points_and_resume(tmp_path: Path, segmenter: Segmenter) -> None:
    inputs, reference, counts, seconds = reference_run("core", tmp_path)
    kills = random_kills(random.Random(20261127), counts, seconds, 24)
    trials = run_trials("core", kills, inputs, reference, tmp_path, segmenter, RunConfig())
    print(f"\ncore: {len(trials)} kill/resume trials passed, {sum(t.killed for t in trials)} killed mid-run; "
          f"parts committed before the kill: {[t.committed for t in trials]}")
    assert len(trials) >= 20 and sum(t.killed for t in trials) >= 15


@pytest.mark.slow
def test_kill_the_flow_at_random_points_and_resume(tmp_path: Path, segmenter: Segmenter, prefect_api: str,
                                                   flow_config: RunConfig) -> None:
    home = flow_config.orchestration.prefect_home  # the session's Prefect home
    inputs, reference, counts, seconds = reference_run("flow", tmp_path, home, prefect_api)
    kills = random_kills(random.Random(1127), counts, seconds, 20)
    trials = run_trials("flow", kills, inputs, reference, tmp_path, segmenter, flow_config, home,
                        prefect_api)
    print(f"\nflow: {len(trials)} kill/resume trials passed, {sum(t.killed for t in trials)} killed mid-run; "
          f"parts committed before the kill: {[t.committed for t in trials]}")
    assert len(trials) >= 20 and sum(t.killed for t in trials) >= 12
