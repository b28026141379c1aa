"""Golden output for data_samples/: sentence ids, offsets, speakers, roles and which
sentences are tagged. Labels are left out (they belong to the model, tested elsewhere).

Regenerate after an intended change with:  EPISTANCE_REGOLD=1 .venv/bin/python -m pytest tests/test_golden.py
and review the diff of tests/golden/data_samples_segments.jsonl.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pipeline.annotate import annotate_corpus
from pipeline.config import RunConfig
from pipeline.corpus_io import read_sentences
from pipeline.ingest.metadata import load_speaker_table
from pipeline.segment import Segmenter
from pipeline.tag import LoadedTagger
from tests.conftest import SAMPLES
from tests.fakes import HashTagger

GOLDEN = Path(__file__).parent / "golden" / "data_samples_segments.jsonl"
FIELDS = ("sentence_id", "speaker_id", "role", "attributes", "start", "end", "text", "tagged")


def test_data_samples_match_golden(tmp_path: Path, segmenter: Segmenter) -> None:
    if not SAMPLES.is_dir():
        pytest.skip("data_samples/ missing")
    summary = annotate_corpus([SAMPLES], tmp_path / "out", RunConfig(), LoadedTagger(HashTagger()),
                              load_speaker_table(SAMPLES / "speakers.csv"), segmenter=segmenter)
    assert summary.transcripts_failed == 0
    rows = [json.dumps({f: getattr(r, f) for f in FIELDS}, ensure_ascii=False) for r in read_sentences(tmp_path / "out")]
    if os.environ.get("EPISTANCE_REGOLD"):
        GOLDEN.write_text("\n".join(rows) + "\n", encoding="utf-8")
    assert rows == GOLDEN.read_text(encoding="utf-8").splitlines()
    assert {r.transcript_id for r in read_sentences(tmp_path / "out")} == {
        "int01_psychiatrist", "int02_nurse", "int03_psychologist", "int04_social_worker",
        "int05_occupational_therapist", "int06_peer_worker", "day1_consultation01", "day2_consultation03"}
