"""docs.spacy: one spaCy Doc per turn with sentence boundaries and a span group per layer.

Rebuilt from the sentence records with a blank English tokenizer, so no trained pipeline
is needed to write or read it. Span groups: `stance` and `emotions` (label = the label),
`affect_focus` (label "yes"); Doc.user_data holds the transcript, turn and speaker ids.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from pathlib import Path

from pipeline.atomic import write_bytes_atomic
from pipeline.corpus_io import SentenceRecord


def _turn_doc(nlp, turn_text: str, rows: list[SentenceRecord]):  # type: ignore[no-untyped-def]
    import numpy
    from spacy.attrs import SENT_START
    from spacy.tokens import Span

    doc = nlp.make_doc(turn_text)
    starts = set()
    groups: dict[str, list] = {"stance": [], "emotions": [], "affect_focus": []}
    sentence_spans = []
    for row in rows:
        span = doc.char_span(row.start, row.end, alignment_mode="expand")
        if span is None or len(span) == 0:
            continue
        sentence_spans.append(span)
        starts.add(span.start)
        # labelled copies from token indices: aligning characters again costs more
        if row.stance is not None:
            groups["stance"].append(Span(doc, span.start, span.end, label=row.stance))
        for emotion in row.emotions or []:
            groups["emotions"].append(Span(doc, span.start, span.end, label=emotion))
        if row.affect_focus:
            groups["affect_focus"].append(Span(doc, span.start, span.end, label="yes"))
    # one array write: setting token.is_sent_start token by token re-scans the Doc each
    # time (quadratic: minutes for a 1M-character turn)
    sent_starts = numpy.full((len(doc), 1), numpy.iinfo(numpy.uint64).max, dtype=numpy.uint64)  # -1: not a start
    sent_starts[[0, *sorted(starts)], 0] = 1
    if len(doc):
        doc.from_array([SENT_START], sent_starts)
    for name, spans in groups.items():
        doc.spans[name] = spans
    first = rows[0]
    doc.user_data.update({"transcript_id": first.transcript_id, "turn_id": first.turn_id,
                          "speaker_id": first.speaker_id, "role": first.role})
    return doc


@contextlib.contextmanager
def _msgpack_extensions_looked_up_once() -> Iterator[None]:
    """srsly finds its msgpack extensions by scanning the installed packages' entry points
    on every pack call, and DocBin.add packs five times per Doc: a quarter of a corpus
    run's time. Scan once for the whole write instead (the entries cannot change meanwhile)."""
    from srsly import msgpack as srsly_msgpack

    registries = (srsly_msgpack.msgpack_encoders, srsly_msgpack.msgpack_decoders)
    for registry in registries:
        entries = registry.get_all()
        registry.get_all = lambda entries=entries: entries  # type: ignore[method-assign]
    try:
        yield
    finally:
        for registry in registries:
            del registry.get_all  # back to the class's method


def write_docbin(path: Path, turns: Iterable[tuple[str, list[SentenceRecord]]]) -> None:
    """`turns` yields (turn text, its sentence records) in corpus order."""
    import spacy
    from spacy.tokens import DocBin

    nlp = spacy.blank("en")
    docbin = DocBin(store_user_data=True)
    with _msgpack_extensions_looked_up_once():
        for turn_text, rows in turns:
            if rows:
                docbin.add(_turn_doc(nlp, turn_text, rows))
        data = docbin.to_bytes()
    write_bytes_atomic(path, data)
