"""docs.spacy is written streaming, yet byte for byte what spaCy's DocBin would write."""
from __future__ import annotations

import itertools
from pathlib import Path

import spacy
from spacy.tokens import DocBin

from pipeline.annotate import annotate_corpus
from pipeline.config import RunConfig
from pipeline.corpus_io import read_sentences
from pipeline.docbin import _turn_doc, write_docbin
from pipeline.ingest.metadata import SpeakerTable
from pipeline.segment import Segmenter
from pipeline.tag import LoadedTagger
from tests.fakes import HashTagger

DATA_SAMPLES = Path(__file__).resolve().parents[1] / "data_samples"


def test_streamed_docbin_equals_spacys_own(tmp_path: Path, segmenter: Segmenter) -> None:
    out = tmp_path / "out"
    annotate_corpus([DATA_SAMPLES], out, RunConfig(), LoadedTagger(HashTagger()), SpeakerTable(), segmenter=segmenter)
    rows = list(read_sentences(out))
    turns = []
    for _turn_id, group in itertools.groupby(rows, key=lambda r: r.turn_id):
        group_rows = list(group)
        # the turn text is recoverable where sentences tile it; enough for a byte comparison
        text = " " * group_rows[-1].end
        for r in group_rows:
            text = text[: r.start] + r.text + text[r.end :]
        turns.append((text, group_rows))
    assert len(turns) > 300

    write_docbin(tmp_path / "streamed.spacy", turns)
    nlp = spacy.blank("en")
    reference = DocBin(store_user_data=True, docs=[_turn_doc(nlp, text, group) for text, group in turns])
    assert (tmp_path / "streamed.spacy").read_bytes() == reference.to_bytes()

    docs = list(DocBin().from_disk(tmp_path / "streamed.spacy").get_docs(nlp.vocab))
    assert len(docs) == len(turns) and docs[0].user_data["turn_id"] == turns[0][1][0].turn_id
    assert [len(list(d.sents)) for d in docs] == [len(g) for _, g in turns]


def test_empty_corpus_gives_a_readable_empty_docbin(tmp_path: Path) -> None:
    write_docbin(tmp_path / "empty.spacy", [])
    assert (tmp_path / "empty.spacy").read_bytes() == DocBin(store_user_data=True).to_bytes()
    assert len(DocBin().from_disk(tmp_path / "empty.spacy")) == 0
