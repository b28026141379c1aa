"""The talk before a sentence: built once, the same way for the gold data and the pipeline."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pipeline.annotate import annotate_corpus
from pipeline.config import RunConfig
from pipeline.context import CONTEXT_CHARS, preceding_context
from pipeline.ingest.metadata import SpeakerTable
from pipeline.segment import Segmenter
from pipeline.tag import LoadedTagger, SentencePrediction
from tests.fakes import HashTagger

INTERVIEW = """Interviewer: How did that feel?
P01: Massive. [pause] It was   the worst week of my life.
Interviewer: Mm.
P01: I still carry it.
"""


def test_previous_turn_then_the_turn_so_far() -> None:
    turn = "Massive. It was the worst week."
    assert preceding_context("How did that feel?", turn, 0) == "How did that feel?"
    assert preceding_context("How did that feel?", turn, turn.index("It")) == "How did that feel? Massive."
    assert preceding_context(None, turn, 0) == ""
    assert preceding_context("  a\n b ", "", 0) == "a b"  # whitespace folded
    long = "word " * 1000
    assert len(preceding_context(long, turn, 0)) == CONTEXT_CHARS


class ContextRecordingTagger(HashTagger):
    def __init__(self) -> None:
        super().__init__()
        self.seen: dict[str, str] = {}

    def predict(self, texts: Sequence[str], contexts: Sequence[str] | None = None) -> list[SentencePrediction]:
        assert contexts is not None and len(contexts) == len(texts)
        self.seen.update(zip(texts, contexts))
        return super().predict(texts, contexts)


def test_annotate_gives_each_sentence_its_context(tmp_path: Path, segmenter: Segmenter) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "iv.txt").write_text(INTERVIEW)
    tagger = ContextRecordingTagger()
    annotate_corpus([folder], tmp_path / "out", RunConfig(), LoadedTagger(tagger), SpeakerTable(),
                    segmenter=segmenter)
    assert tagger.seen["Massive."] == "How did that feel?"
    # markup hidden and whitespace folded, as in the sentence text the tagger sees
    assert tagger.seen["It was the worst week of my life."] == "How did that feel? Massive."
    assert tagger.seen["I still carry it."] == "Mm."
