"""CSV round trip for spreadsheet users (Excel, LibreOffice, Google Sheets).

Export: one row per sentence with ids, speaker, the text and its sha256, the model's
labels and probabilities (`model_*` columns, for reference), and three empty columns to
fill in: `stance` (objective | experiential | none), `emotions` (`neutral`, or emotions
separated by `;`), `affect_focus` (yes | no), plus `annotator` and `note`. With
`prefill`, the three columns start with the model's labels (faster, but anchors the
annotator on the model; leave it off for agreement studies).

The file is UTF-8 with a byte-order mark so Excel opens it as UTF-8. Cells that a
spreadsheet would run as a formula (starting with = + - @, tab or carriage return) are
written with a leading apostrophe; import removes it again.

Import: rows with all three label columns empty are skipped (not annotated); an empty
column in an annotated row is a layer not annotated (null). Each row's text must still
match its sha256 (and, with a corpus, the corpus row).
"""
from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.labels import AFFECT_FOCUS, EMOTIONS, STANCE, LabelSchema, load_label_schema
from pipeline.atomic import write_bytes_atomic
from pipeline.interop.annotations import (
    Place,
    check_annotator,
    check_text,
    check_unique,
    gold_row,
    load_corpus_index,
    parse_labels,
)
from pipeline.interop.codebook import NEUTRAL, NO, YES
from pipeline.interop.corpus import corpus_model, group_of, iter_transcripts, text_sha256
from pipeline.interop.errors import AnnotationTextChangedError, InteropError

COLUMNS = ["sentence_id", "transcript_id", "speaker_id", "role", "group", "text", "text_sha256", "model",
           "model_stance", "model_stance_prob", "model_emotions", "model_affect_focus", "model_affect_focus_prob",
           STANCE, EMOTIONS, AFFECT_FOCUS, "annotator", "note"]
REQUIRED = ["sentence_id", "transcript_id", "text", "text_sha256", STANCE, EMOTIONS, AFFECT_FOCUS]
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
SEPARATOR = ";"


@dataclass(frozen=True)
class CsvImportSummary:
    rows: list[dict[str, Any]]
    lines: int
    skipped_unannotated: int
    annotators: dict[str, int]


def _guard(value: str) -> str:
    return f"'{value}" if value.startswith(FORMULA_START) else value


def _unguard(value: str) -> str:
    return value[1:] if value.startswith("'") and value[1:].startswith(FORMULA_START) else value


def export_csv(corpus_dir: Path, out_path: Path, only: Sequence[str] | None = None, group_by: str = "profession",
               prefill: bool = False) -> int:
    """Write the sentences to annotate as CSV; returns the number of rows."""
    model_ref = corpus_model(corpus_dir)
    wanted = set(only) if only is not None else None
    rows: dict[str, list[str]] = {}
    for transcript in iter_transcripts(corpus_dir):
        for row in transcript.rows:
            if (wanted is None and not row.tagged) or (wanted is not None and row.sentence_id not in wanted):
                continue
            emotions = SEPARATOR.join(row.emotions or []) or NEUTRAL
            affect = (YES if row.affect_focus else NO) if row.tagged else ""
            rows[row.sentence_id] = [
                row.sentence_id, row.transcript_id, _guard(row.speaker_id), row.role, _guard(group_of(row, group_by)),
                _guard(row.text), text_sha256(row.text), model_ref if row.tagged else "", row.stance or "",
                f"{max((row.stance_probs or {}).values(), default=0):.3f}" if row.tagged else "",
                emotions if row.tagged else "", affect,
                f"{row.affect_focus_prob:.3f}" if row.affect_focus_prob is not None else "",
                (row.stance or "") if prefill else "", emotions if prefill and row.tagged else "",
                affect if prefill else "", "", ""]
    if only is not None:
        missing = [sid for sid in only if sid not in rows]
        if missing:
            raise InteropError(f"{len(missing)} selected sentence id(s) are not in the corpus, first {missing[0]!r}",
                               path=corpus_dir, hint="select from the same corpus you export from")
        ordered = [rows[sid] for sid in dict.fromkeys(only)]
    else:
        ordered = list(rows.values())
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    writer.writerows(ordered)
    write_bytes_atomic(out_path, buffer.getvalue().encode("utf-8-sig"))
    return len(ordered)


def _split_emotions(cell: str) -> list[str] | None:
    parts = [p.strip().lower() for p in cell.replace(",", SEPARATOR).split(SEPARATOR)]
    parts = [p for p in parts if p]
    return parts or None


def import_csv(path: Path, corpus_dir: Path | None = None, annotator: str | None = None,
               source: str = "interviews", schema: LabelSchema | None = None) -> CsvImportSummary:
    """Filled-in rows of an exported CSV as gold-format rows."""
    schema = schema or load_label_schema()
    try:
        content = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError):
        raise InteropError("cannot read the CSV as UTF-8", path=path,
                           hint="save it as 'CSV UTF-8 (comma delimited)'") from None
    reader = csv.DictReader(io.StringIO(content, newline=""))
    header = reader.fieldnames or []
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise InteropError(f"missing column(s) {missing}", path=path, where="row 1",
                           hint="keep the header row of `epistance export csv` (columns may be reordered)")
    corpus = load_corpus_index(corpus_dir)
    rows: list[dict[str, Any]] = []
    places: list[Place] = []
    annotators: dict[str, int] = {}
    skipped = lines = 0
    for record in reader:
        lines += 1
        sentence_id = (record.get("sentence_id") or "").strip()
        # the spreadsheet's row number (header = row 1), whatever line breaks the cells hold
        place = Place(path, f"row {lines + 1}" + (f", sentence {sentence_id}" if sentence_id else ""))
        if None in record:
            raise InteropError("row has more cells than the header", path=path, where=place.where)
        stance = (record.get(STANCE) or "").strip().lower()
        emotions = _split_emotions(record.get(EMOTIONS) or "")
        affect = (record.get(AFFECT_FOCUS) or "").strip().lower()
        if not stance and emotions is None and not affect:
            skipped += 1
            continue
        if not sentence_id:
            raise InteropError("row has no sentence_id", path=path, where=place.where)
        raw = record.get("text") or ""
        expected = (record.get("text_sha256") or "").strip() or None
        if expected is None and corpus is None:
            raise AnnotationTextChangedError("row has no text_sha256 to check the text against", path=path,
                                             where=place.where, hint="keep the text_sha256 column, or pass --corpus")
        text = raw
        for candidate in dict.fromkeys([raw, _unguard(raw)]):  # the apostrophe export added, if any
            known = corpus.get(sentence_id) if corpus is not None else None
            if (expected and text_sha256(candidate) == expected) or (not expected and known and known.text == candidate):
                text = candidate
                break
        corpus_row = check_text(sentence_id, text, expected, corpus, place)
        labels = parse_labels(stance or None, emotions, affect or None, schema, place)
        name = (record.get("annotator") or "").strip() or annotator
        if not name:
            raise InteropError("no annotator for this row", path=path, where=place.where,
                               hint="fill the annotator column or pass --annotator NAME")
        name = check_annotator(name, place)
        transcript_id = (record.get("transcript_id") or "").strip() or (corpus_row.transcript_id if corpus_row else "")
        if not transcript_id:
            raise InteropError("row has no transcript_id", path=path, where=place.where)
        speaker_id = _unguard(record.get("speaker_id") or "") or (corpus_row.speaker_id if corpus_row else None)
        rows.append(gold_row(sentence_id, text, transcript_id, speaker_id, labels, name, source))
        places.append(place)
        annotators[name] = annotators.get(name, 0) + 1
    check_unique(rows, places)
    return CsvImportSummary(rows=rows, lines=lines, skipped_unannotated=skipped,
                            annotators=dict(sorted(annotators.items())))
