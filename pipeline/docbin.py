"""docs.spacy: one spaCy Doc per turn with sentence boundaries and a span group per layer.

Rebuilt from the sentence records with a blank English tokenizer, so no trained pipeline
is needed to write or read it. Span groups: `stance` and `emotions` (label = the label),
`affect_focus` (label "yes"); Doc.user_data holds the transcript, turn and speaker ids.
"""
from __future__ import annotations

import contextlib
import functools
import struct
import tempfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Self

from pipeline.atomic import write_atomic
from pipeline.corpus_io import SentenceRecord


def _turn_doc(nlp, turn_text: str, rows: list[SentenceRecord]):  # type: ignore[no-untyped-def]
    import numpy
    from spacy.attrs import SENT_START
    from spacy.tokens import Span

    doc = nlp.make_doc(turn_text)
    starts = set()
    groups: dict[str, list] = {"stance": [], "emotions": [], "affect_focus": []}
    for row in rows:
        span = doc.char_span(row.start, row.end, alignment_mode="expand")
        if span is None or len(span) == 0:
            continue
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


@contextlib.contextmanager
def docbin_writer(path: Path) -> Iterator[Callable[[str, list[SentenceRecord]], None]]:
    """A function that adds a turn (its text and sentence records, in corpus order) to the
    DocBin file at `path`, written and published when the block ends.

    Streams: spaCy's DocBin keeps every Doc's arrays in memory until `to_bytes`, which
    then copies them twice more, so its memory grows with the corpus. Here each Doc's
    arrays go to anonymous temp files beside the output as it is made, and the file is
    assembled from them through a streaming compressor: the same bytes as
    `DocBin(store_user_data=True)` with the same Docs would write (tests/test_docbin_stream.py),
    in memory only the string table and one number per Doc.
    """
    import spacy
    from spacy.tokens import DocBin

    nlp = spacy.blank("en")
    layout = DocBin(store_user_data=True)  # the format's version and attribute list
    attr_ids = [int(attr) for attr in layout.attrs]  # attribute IDs (spaCy annotates them as str)
    with _msgpack_extensions_looked_up_once(), _Spill(path.parent, nlp.vocab) as spill:

        def add(turn_text: str, rows: list[SentenceRecord]) -> None:
            if rows:
                spill.add(_turn_doc(nlp, turn_text, rows), attr_ids)

        yield add
        write_atomic(path, lambda handle: spill.write(handle, layout.version, attr_ids))


def write_docbin(path: Path, turns: Iterable[tuple[str, list[SentenceRecord]]]) -> None:
    """`turns` yields (turn text, its sentence records) in corpus order (`docbin_writer`)."""
    with docbin_writer(path) as add:
        for turn_text, rows in turns:
            add(turn_text, rows)


#: the token attributes whose strings DocBin.add keeps
_TOKEN_STRINGS = ["ORTH", "TAG", "LEMMA", "NORM", "MORPH", "DEP", "ENT_TYPE", "ENT_KB_ID", "ENT_ID"]


@functools.cache
def _string_columns(attrs: tuple[int, ...]) -> list[int]:
    """Where the `_TOKEN_STRINGS` are among a DocBin's attributes (all of them are there)."""
    from spacy.attrs import IDS

    return [attrs.index(IDS[name]) for name in _TOKEN_STRINGS]


class _Spill:
    """The columns of a DocBin message, written Doc by Doc to unlinked temp files."""

    COLUMNS = ("tokens", "spaces", "cats", "flags", "span_groups", "user_data")

    def __init__(self, folder: Path, vocab: Any) -> None:
        self._folder = folder
        self._vocab = vocab  # the Docs' vocab: it decodes the token strings' hashes at the end

    def __enter__(self) -> Self:
        from srsly.msgpack import Packer

        # unlinked at once: nothing is left behind if the run is killed; closed in __exit__
        self.files = {name: tempfile.TemporaryFile(dir=self._folder) for name in self.COLUMNS}  # noqa: SIM115
        self.lengths: list[int] = []
        self.strings: set[str] = set()
        # the token strings' hashes, over all Docs: each distinct one is looked up once, at
        # the end, rather than once per Doc that holds it
        self.string_hashes: set[int] = set()
        # one packer for every message (srsly's msgpack_dumps builds a new one per call)
        self.pack = Packer(use_bin_type=True).pack
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self.files.values():
            handle.close()

    def add(self, doc: Any, attrs: list[int]) -> None:
        """What DocBin.add keeps of a Doc, in the same form."""
        import numpy
        from spacy.attrs import SPACY

        pack = self.pack
        array = doc.to_array(attrs)
        if len(array.shape) == 1:
            array = array.reshape((array.shape[0], 1))
        spaces = numpy.asarray(doc.to_array(SPACY).reshape((-1, 1)), dtype=bool)
        self.files["tokens"].write(array.tobytes("C"))
        self.files["spaces"].write(spaces.tobytes("C"))
        self.lengths.append(len(array))
        # DocBin.add keeps each token's text, tag, lemma, norm, morph, dep and entity strings;
        # read as hashes from one array instead of Token by Token (a third of the write)
        if len(doc):
            self.string_hashes.update(numpy.unique(array[:, _string_columns(tuple(attrs))]).tolist())
        for group in doc.spans.values():
            for span in group:
                self.strings.add(span.label_)
        self.files["cats"].write(pack(doc.cats))
        self.files["flags"].write(pack({"has_unknown_spaces": doc.has_unknown_spaces}))
        self.files["span_groups"].write(pack(doc.spans.to_bytes()))
        self.files["user_data"].write(pack(pack(doc.user_data)))

    def write(self, handle: Any, version: str, attrs: list[int]) -> None:
        """The zlib-compressed msgpack map DocBin.to_bytes makes, in the same key order."""
        import numpy
        import srsly

        compressor = zlib.compressobj()

        def out(data: bytes) -> None:
            handle.write(compressor.compress(data))

        def copy(name: str) -> None:
            source = self.files[name]
            source.seek(0)
            while chunk := source.read(1 << 20):
                out(chunk)

        def binary(name: str) -> None:
            out(_bin_header(self.files[name].tell()))
            copy(name)

        pack = srsly.msgpack_dumps
        n = len(self.lengths)
        out(b"\x8a")  # a map of 10 entries
        out(pack("version") + pack(version) + pack("attrs") + pack(attrs))
        out(pack("tokens"))
        binary("tokens")
        out(pack("spaces"))
        binary("spaces")
        out(pack("lengths") + pack(numpy.asarray(self.lengths, dtype="int32").tobytes("C")))
        strings = self.strings | {self._vocab.strings[h] for h in self.string_hashes}
        out(pack("strings") + pack(sorted(strings)))
        for key, name in (("cats", "cats"), ("flags", "flags"), ("span_groups", "span_groups"),
                          ("user_data", "user_data")):
            out(pack(key) + _array_header(n))
            copy(name)
        handle.write(compressor.flush())


def _bin_header(size: int) -> bytes:
    """msgpack's smallest header for a binary of ``size`` bytes (as msgpack itself picks)."""
    if size < 1 << 8:
        return b"\xc4" + struct.pack(">B", size)
    if size < 1 << 16:
        return b"\xc5" + struct.pack(">H", size)
    return b"\xc6" + struct.pack(">I", size)


def _array_header(count: int) -> bytes:
    if count < 16:
        return bytes([0x90 | count])
    if count < 1 << 16:
        return b"\xdc" + struct.pack(">H", count)
    return b"\xdd" + struct.pack(">I", count)
