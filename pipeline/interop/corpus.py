"""An annotated corpus read back for export: transcripts, turns (with their full text) and
sentence rows, plus the small helpers the interop modules share.

Turn texts come from docs.spacy (one Doc per turn, exact text); without it they are
rebuilt from the sentence rows, with the gaps between sentences filled by spaces, so
every sentence still sits at its own offsets (`turn.text[row.start:row.end] == row.text`).
"""
from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pipeline.corpus_io import DOCBIN, SENTENCES_JSONL, SentenceRecord, read_manifest, read_sentences
from pipeline.interop.errors import CorpusMismatchError, InteropError

UNKNOWN_GROUP = "(unknown)"
#: group keys that are fields of a row rather than speaker attributes
ROW_GROUPS = ("role", "speaker", "transcript")


@dataclass(frozen=True)
class TurnView:
    turn_id: str
    speaker_id: str
    role: str
    attributes: dict[str, str]
    text: str
    start_time: float | None
    end_time: float | None
    rows: tuple[SentenceRecord, ...]


@dataclass(frozen=True)
class TranscriptView:
    transcript_id: str
    turns: tuple[TurnView, ...]

    @property
    def rows(self) -> Iterator[SentenceRecord]:
        for turn in self.turns:
            yield from turn.rows


def text_sha256(text: str) -> str:
    """The fingerprint exported beside each sentence, checked again on import."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def corpus_model(corpus_dir: Path) -> str:
    """`id@version` of the model that tagged the corpus (from its manifest)."""
    manifest = read_manifest(corpus_dir)
    return manifest.model if manifest is not None else "unknown"


def group_of(row: SentenceRecord, by: str) -> str:
    """A row's group: `role`, `speaker` (transcript/speaker), `transcript` or a speaker attribute."""
    if by == "role":
        return row.role
    if by == "speaker":
        return f"{row.transcript_id}/{row.speaker_id}"
    if by == "transcript":
        return row.transcript_id
    return row.attributes.get(by) or UNKNOWN_GROUP


def _docbin_turn_texts(corpus_dir: Path) -> dict[str, str]:
    path = corpus_dir / DOCBIN
    if not path.is_file():
        return {}
    import spacy
    from spacy.tokens import DocBin

    texts: dict[str, str] = {}
    try:
        docbin = DocBin(store_user_data=True).from_bytes(path.read_bytes())
        for doc in docbin.get_docs(spacy.blank("en").vocab):
            turn_id = doc.user_data.get("turn_id")
            if isinstance(turn_id, str):
                texts[turn_id] = doc.text
    except (ValueError, KeyError, OSError):
        raise InteropError("docs.spacy cannot be read", path=path,
                           hint="rerun `epistance annotate`, or remove docs.spacy to rebuild turns from the rows")
    return texts


def _rebuilt_text(rows: Iterable[SentenceRecord]) -> str:
    chars: list[str] = []
    for row in rows:
        if len(chars) < row.start:
            chars.extend(" " * (row.start - len(chars)))
        chars[row.start:row.end] = row.text
    return "".join(chars)


def iter_transcripts(corpus_dir: Path, only: set[str] | None = None) -> Iterator[TranscriptView]:
    """Transcripts in corpus order, each with its turns' full text and sentence rows."""
    texts = _docbin_turn_texts(corpus_dir)
    rows_path = corpus_dir / SENTENCES_JSONL
    for transcript_id, rows in itertools.groupby(read_sentences(corpus_dir), key=lambda r: r.transcript_id):
        if only is not None and transcript_id not in only:
            continue
        turns = []
        for turn_id, turn_rows in itertools.groupby(rows, key=lambda r: r.turn_id):
            members = tuple(turn_rows)
            text = texts.get(turn_id)
            if text is None:
                text = _rebuilt_text(members)
            for row in members:
                if text[row.start:row.end] != row.text:
                    raise CorpusMismatchError(
                        "docs.spacy and sentences.jsonl disagree on a sentence's offsets", path=rows_path,
                        where=f"sentence {row.sentence_id}", hint="rerun `epistance annotate` to rebuild both")
            first = members[0]
            turns.append(TurnView(turn_id=turn_id, speaker_id=first.speaker_id, role=first.role,
                                  attributes=dict(first.attributes), text=text, start_time=first.turn_start,
                                  end_time=first.turn_end, rows=members))
        yield TranscriptView(transcript_id=transcript_id, turns=tuple(turns))


def read_id_file(path: Path) -> list[str]:
    """Sentence ids listed in a JSON-lines file (`sentence_id` or `id` per row), in order:
    a batch from `epistance select`, or a gold/annotation file."""
    ids: list[str] = []
    try:
        with open(path, encoding="utf-8-sig") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    value = row.get("sentence_id", row.get("id")) if isinstance(row, dict) else None
                except ValueError:
                    value = None
                if not isinstance(value, str):
                    raise InteropError("expected a JSON object with a string 'sentence_id' (or 'id')", path=path,
                                       where=f"line {number}")
                ids.append(value)
    except (OSError, UnicodeDecodeError) as error:
        raise InteropError(f"cannot read the id list ({type(error).__name__})", path=path) from None
    return ids
