"""Shared pieces of the flow tests: a weight-free tagger factory workers can import, a
small corpus with canary identifiers, and tree snapshots for byte-for-byte comparisons."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from pipeline.tag import LoadedTagger
from tests.fakes import HashTagger

REPO = Path(__file__).resolve().parents[2]
FACTORY = "tests.flows.helpers:hash_tagger_source"
CANARY = "Zebulon Quartermaine-Xyq"  # a fake name that must never leave the corpus files
CANARY_PHONE = "07700 900461"


def hash_tagger_source(model: str | None = None, batch_size: int = 64, precision: str = "auto") -> LoadedTagger:
    """TaggerSource factory (importable on any worker): a HashTagger, no weights."""
    return LoadedTagger(HashTagger(model or "hash-tagger@0.0.1"))


TRANSCRIPTS = {
    "int_a.txt": "Interviewer: How do you work with peer workers?\n"
                 f"P01: When I was first admitted I didn't sleep for a week. My name is {CANARY}.\n"
                 "Interviewer: Mm-hm.\n"
                 f"P01: The trials show peer support reduces readmissions. Call me on {CANARY_PHONE}.\n",
    "int_b.txt": "Interviewer: What does your day look like?\n"
                 "NURSE: Every referral goes through the duty team first. I was so proud of her.\n",
    "int_c.txt": "Interviewer: Tell me about the ward.\n"
                 "P02: It felt like nobody was listening. Lithium levels need checking every three months.\n"
                 "Interviewer: And the staff?\nP02: They were kind. Mostly.\n",
    "int_d.txt": "Interviewer: Anything else?\n"
                 "P03: I always check the care plan. Honestly, I was terrified the first time.\n",
}


SIDECAR = ("transcript,speaker,role,profession\n*,Interviewer,interviewer,researcher\n"
           "int_a,P01,participant,peer worker\nint_b,NURSE,participant,nurse\n")


def write_corpus(folder: Path, bad: bool = False) -> Path:
    """The transcripts in `folder`, and their speaker sidecar beside it (speakers.csv)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder.parent / "speakers.csv").write_text(SIDECAR)
    for name, text in TRANSCRIPTS.items():
        (folder / name).write_text(text)
    if bad:
        (folder / "scan.txt").write_bytes(b"%PDF-1.5 binary")
    return folder


def tree(out: Path) -> dict[str, bytes]:
    """Every file under `out` but the run record (timestamps) and the lock (a pid)."""
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and p.name not in ("run.json", "lock")}


def child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(extra)
    return env


PYTHON = sys.executable


LOAD_LOG = "EPISTANCE_TEST_LOAD_LOG"


class _CountingSource(LoadedTagger):
    """Appends this process's pid to the file named by $EPISTANCE_TEST_LOAD_LOG at each load."""

    def load(self):  # type: ignore[no-untyped-def]
        log = os.environ.get(LOAD_LOG)
        if log:
            with open(log, "a") as handle:
                handle.write(f"{os.getpid()}\n")
        return super().load()


def counting_tagger_source(model: str | None = None, batch_size: int = 64, precision: str = "auto") -> LoadedTagger:
    """Like hash_tagger_source, recording each model load (tests of once-per-process loading)."""
    return _CountingSource(HashTagger(model or "hash-tagger@0.0.1"))


COUNTING_FACTORY = "tests.flows.helpers:counting_tagger_source"


PRECISIONS_ASKED: list[str] = []


def precision_recording_source(model: str | None = None, batch_size: int = 64, precision: str = "auto") -> LoadedTagger:
    """Like hash_tagger_source, noting the precision each source is built with."""
    PRECISIONS_ASKED.append(precision)
    return LoadedTagger(HashTagger(model or "hash-tagger@0.0.1"))
