"""Fixtures for the interop tests: annotated corpora made with deterministic fake taggers,
a corpus whose text is full of characters that need escaping, and a tiny trained model."""
from __future__ import annotations

import hashlib
import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest

from pipeline.annotate import annotate_corpus
from pipeline.config import RunConfig
from pipeline.ingest.metadata import load_speaker_table
from pipeline.segment import Segmenter
from pipeline.tag import LoadedTagger, SentencePrediction
from tests.fakes import HashTagger

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "data_samples"
SAMPLE_FILES = ("int01_psychiatrist.txt", "int02_nurse.docx", "int03_psychologist.vtt", "int04_social_worker.csv",
                "int05_occupational_therapist.srt", "int06_peer_worker.jsonl")

TRICKY = """Interviewer: Shall we start? <b>bold</b> & "quotes" 'too'
P9: I wrote <script>alert('x')</script> in the notes & nobody noticed. It felt like \u00abnobody\u00bb was listening \U0001F622.
Interviewer: ]]> </Project> &amp; =SUM(A1) ok?
P9: -5 mg was the dose. I was terrified; the café was closed.
"""
TRICKY_SIDECAR = "transcript,speaker,role,profession\ntricky,Interviewer,interviewer,researcher\ntricky,P9,participant,nurse & <midwife>\n"


class SaltedTagger(HashTagger):
    """Like HashTagger, but another model: labels from a salted hash, so some change."""

    def __init__(self, model_ref: str = "salted-tagger@0.0.2", salt: str = "v2") -> None:
        super().__init__(model_ref)
        self.salt = salt

    def predict(self, texts: Sequence[str], contexts: Sequence[str] | None = None) -> list[SentencePrediction]:
        out = []
        for text, base in zip(texts, super().predict(texts)):
            if hashlib.sha256((self.salt + text).encode()).digest()[0] < 90:  # about a third change
                base = super().predict([self.salt + text])[0]
            out.append(base)
        return out


def annotate(inputs: Path, out: Path, segmenter: Segmenter, tagger: HashTagger, sidecar: Path | None) -> Path:
    speakers = load_speaker_table(sidecar) if sidecar else load_speaker_table(None)
    annotate_corpus([inputs], out, RunConfig(), LoadedTagger(tagger), speakers, segmenter=segmenter)
    return out


@pytest.fixture(scope="session")
def sample_inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("samples")
    for name in SAMPLE_FILES:
        shutil.copyfile(SAMPLES / name, folder / name)
    return folder


@pytest.fixture(scope="session")
def corpus(sample_inputs: Path, segmenter: Segmenter, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The six sample interviews, tagged by HashTagger, with speaker attributes."""
    return annotate(sample_inputs, tmp_path_factory.mktemp("corpus") / "out", segmenter, HashTagger(),
                    SAMPLES / "speakers.csv")


@pytest.fixture(scope="session")
def corpus_v2(sample_inputs: Path, segmenter: Segmenter, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same interviews tagged by another (fake) model version."""
    return annotate(sample_inputs, tmp_path_factory.mktemp("corpus_v2") / "out", segmenter, SaltedTagger(),
                    SAMPLES / "speakers.csv")


@pytest.fixture(scope="session")
def tricky_corpus(segmenter: Segmenter, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Markup-like text, quotes, ampersands, CDATA ends, a formula, non-ASCII and an emoji."""
    root = tmp_path_factory.mktemp("tricky")
    (root / "in").mkdir()
    (root / "in" / "tricky.txt").write_text(TRICKY, encoding="utf-8")
    (root / "speakers.csv").write_text(TRICKY_SIDECAR, encoding="utf-8")
    return annotate(root / "in", root / "out", segmenter, HashTagger(), root / "speakers.csv")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny real model directory (random 1-layer encoder, a few training steps)."""
    from tests.interop.tiny_model import train_tiny

    return train_tiny(tmp_path_factory.mktemp("tiny"))
