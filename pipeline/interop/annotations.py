"""Human annotations coming back from Label Studio or a spreadsheet, as training rows.

A row is written in the gold format of data/annotation/gold.jsonl (see models.data):
`{id, text, source, transcript, speaker, split, stance, emotions, affect_focus}` plus
`annotator`, `producer` (`human:<annotator>`) and `adjudicated` (false). A layer the
annotator left empty is null, so training masks it out. The split is the transcript's
deterministic split (models.data.assign_split), the same for every sentence of a
transcript.

Every imported sentence is checked against what was exported: the text against the
sha256 exported beside it and, when the corpus is given, against the corpus row of the
same sentence id. Errors name the file and the row, never the text.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.labels import AFFECT_FOCUS, EMOTIONS, STANCE, LabelSchema
from pipeline.atomic import write_atomic
from pipeline.corpus_io import SentenceRecord, read_sentences
from pipeline.interop.codebook import NEUTRAL, NO, YES
from pipeline.interop.corpus import text_sha256
from pipeline.interop.errors import AnnotationTextChangedError, InteropError, UnknownLabelError

ANNOTATOR_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$")


@dataclass(frozen=True)
class Place:
    """Where an imported row came from, for error messages: file and row, never text."""

    path: Path
    where: str


@dataclass(frozen=True)
class Labels:
    stance: str | None
    emotions: tuple[str, ...] | None
    affect_focus: bool | None

    @property
    def empty(self) -> bool:
        return self.stance is None and self.emotions is None and self.affect_focus is None


LABEL_LIKE = re.compile(r"[\w.:+-]{1,30}")


def _show(value: object) -> str:
    """A label for an error message: shown when it looks like a label, else only described (an
    annotator may have typed or pasted interview text into a label field)."""
    if isinstance(value, str) and LABEL_LIKE.fullmatch(value):
        return repr(value)
    return f"a {type(value).__name__} value" + (f" of {len(value)} characters" if isinstance(value, str) else "")


def check_annotator(name: str, place: Place) -> str:
    name = name.strip()
    if not ANNOTATOR_PATTERN.match(name):
        raise InteropError("the annotator name must be 1-64 letters, digits or . _ @ + - (a pseudonym, "
                           "not a full name)", path=place.path, where=place.where,
                           hint="pass --annotator NAME or fix the annotator field")
    return name


def parse_labels(stance: object, emotions: object, affect_focus: object, schema: LabelSchema,
                 place: Place) -> Labels:
    """Validate one row's labels: `None`/empty means the layer was not annotated.

    `emotions` is a list of labels, where `neutral` alone means no emotion; `affect_focus`
    is `yes`/`no` (or a bool)."""
    out_stance: str | None = None
    if stance not in (None, "", []):
        value = stance[0] if isinstance(stance, list) and len(stance) == 1 else stance
        if not isinstance(value, str) or value not in schema.layers[STANCE].labels:
            raise UnknownLabelError(f"unknown stance label {_show(value)}; expected one of "
                                    f"{list(schema.layers[STANCE].labels)}", path=place.path, where=place.where,
                                    hint="use the codebook's labels (configs/labels/v1.toml)")
        out_stance = value
    out_emotions: tuple[str, ...] | None = None
    if emotions not in (None, "", []):
        if not isinstance(emotions, list) or not all(isinstance(e, str) for e in emotions):
            raise UnknownLabelError("emotions must be a list of labels", path=place.path, where=place.where)
        allowed = set(schema.layers[EMOTIONS].labels)
        unknown = sorted(set(emotions) - allowed - {NEUTRAL})
        if unknown:
            raise UnknownLabelError(f"unknown emotion label(s) {[_show(u) for u in unknown]}; expected "
                                    f"'{NEUTRAL}' or a subset of {list(schema.layers[EMOTIONS].labels)}",
                                    path=place.path, where=place.where,
                                    hint="use the codebook's labels (configs/labels/v1.toml)")
        if NEUTRAL in emotions and len(set(emotions)) > 1:
            raise UnknownLabelError(f"'{NEUTRAL}' cannot be combined with an emotion", path=place.path,
                                    where=place.where, hint=f"choose either '{NEUTRAL}' or emotions")
        out_emotions = tuple(e for e in schema.layers[EMOTIONS].labels if e in emotions)
    out_affect: bool | None = None
    if affect_focus not in (None, "", []):
        value = affect_focus[0] if isinstance(affect_focus, list) and len(affect_focus) == 1 else affect_focus
        if isinstance(value, bool):
            out_affect = value
        elif isinstance(value, str) and value.strip().lower() in (YES, NO):
            out_affect = value.strip().lower() == YES
        else:
            raise UnknownLabelError(f"unknown affect_focus value {_show(value)}; expected 'yes' or 'no'",
                                    path=place.path, where=place.where)
    return Labels(out_stance, out_emotions, out_affect)


def load_corpus_index(corpus_dir: Path | None) -> dict[str, SentenceRecord] | None:
    if corpus_dir is None:
        return None
    return {row.sentence_id: row for row in read_sentences(corpus_dir)}


def check_text(sentence_id: str, text: str, expected_sha256: str | None, corpus: dict[str, SentenceRecord] | None,
               place: Place) -> SentenceRecord | None:
    """Refuse an annotation whose sentence text changed since export (or is unknown to the corpus)."""
    if expected_sha256 and text_sha256(text) != expected_sha256:
        raise AnnotationTextChangedError(
            f"the text of sentence {sentence_id} differs from the exported text (sha256 mismatch)",
            path=place.path, where=place.where,
            hint="annotate the exported text as it is; re-export the sentence if it must change")
    if corpus is None:
        return None
    row = corpus.get(sentence_id)
    if row is None:
        raise AnnotationTextChangedError(f"sentence {sentence_id} is not in the corpus", path=place.path,
                                         where=place.where, hint="import against the corpus it was exported from")
    if row.text != text:
        raise AnnotationTextChangedError(f"the text of sentence {sentence_id} differs from the corpus",
                                         path=place.path, where=place.where,
                                         hint="annotate the exported text as it is; re-export from this corpus")
    return row


def gold_row(sentence_id: str, text: str, transcript_id: str, speaker_id: str | None, labels: Labels,
             annotator: str, source: str) -> dict[str, Any]:
    from models.data import assign_split

    return {
        "id": sentence_id, "text": text, "source": source, "transcript": transcript_id, "speaker": speaker_id,
        "split": assign_split(transcript_id), "stance": labels.stance,
        "emotions": list(labels.emotions) if labels.emotions is not None else None,
        "affect_focus": labels.affect_focus, "annotator": annotator, "producer": f"human:{annotator}",
        "adjudicated": False,
    }


def check_unique(rows: Sequence[dict[str, Any]], places: Sequence[Place]) -> None:
    seen: dict[str, Place] = {}
    for row, place in zip(rows, places):
        if row["id"] in seen:
            raise InteropError(f"sentence {row['id']} is annotated twice (also at {seen[row['id']].where})",
                               path=place.path, where=place.where,
                               hint="keep one annotation per sentence (Label Studio: --completed-by ID)")
        seen[row["id"]] = place


def read_gold_rows(path: Path) -> list[dict[str, Any]]:
    rows = []
    try:
        with open(path, encoding="utf-8") as handle:
            lines = list(enumerate(handle, start=1))
    except (OSError, UnicodeDecodeError) as error:
        raise InteropError(f"cannot read the gold file ({type(error).__name__})", path=path) from None
    for number, line in lines:
        if line.strip():
            try:
                row = json.loads(line)
            except ValueError:
                raise InteropError("not valid JSON", path=path, where=f"line {number}") from None
            if not isinstance(row, dict) or not isinstance(row.get("id"), str):
                raise InteropError("expected an object with a string 'id'", path=path, where=f"line {number}")
            rows.append(row)
    return rows


def write_gold(path: Path, rows: Iterable[dict[str, Any]], base: Path | None = None) -> tuple[int, int]:
    """Write rows as gold JSONL; with `base`, its rows first (an imported row replaces the
    base row of the same id). Returns (rows written, base rows replaced)."""
    new = list(rows)
    new_ids = {r["id"] for r in new}
    kept = read_gold_rows(base) if base is not None else []
    replaced = sum(r["id"] in new_ids for r in kept)
    out = [r for r in kept if r["id"] not in new_ids] + new

    def write(handle) -> None:  # type: ignore[no-untyped-def]
        for row in out:
            handle.write(json.dumps(row, ensure_ascii=False).encode() + b"\n")

    write_atomic(path, write)
    return len(out), replaced


def layer_labels(row: SentenceRecord) -> dict[str, object]:
    """A corpus row's model labels in the interop value forms."""
    return {STANCE: row.stance, EMOTIONS: list(row.emotions or []) or [NEUTRAL],
            AFFECT_FOCUS: YES if row.affect_focus else NO}
