"""CSV and JSONL turn tables: speaker, text, optional start/end."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from pipeline.errors import MalformedInputError
from pipeline.ingest.decode import decode_text
from pipeline.schema import RawTranscript, RawTurn

SPEAKER_COLUMNS = ("speaker", "speaker_id", "name")
TEXT_COLUMNS = ("text", "utterance", "transcript")


def _time(value: object, path: Path, place: str) -> float | None:
    if value in (None, ""):
        return None
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise MalformedInputError("start/end must be seconds as a number", path=path, where=place) from None


def _turn(row: dict, path: Path, place: str) -> RawTurn | None:
    lowered = {str(k).strip().lower(): v for k, v in row.items() if k is not None}
    speaker = next((lowered[c] for c in SPEAKER_COLUMNS if c in lowered), None)
    text = next((lowered[c] for c in TEXT_COLUMNS if c in lowered), None)
    if speaker is None or text is None:
        # the column names are not echoed: in a file without a header row they are transcript text
        missing = " and ".join(repr(c) for c, v in (("speaker", speaker), ("text", text)) if v is None)
        raise MalformedInputError(f"expected columns 'speaker' and 'text'; no {missing} column among the "
                                  f"{len(lowered)} found", path=path, where=place,
                                  hint="add a header row speaker,text[,start,end] (other names for speaker: "
                                       f"{', '.join(SPEAKER_COLUMNS[1:])}; for text: {', '.join(TEXT_COLUMNS[1:])})")
    if not isinstance(text, str) or not isinstance(speaker, (str, int)):
        raise MalformedInputError("speaker and text must be strings", path=path, where=place)
    if not text.strip():
        return None
    return RawTurn(speaker=str(speaker).strip() or "UNKNOWN", text=text.strip(),
                   start_time=_time(lowered.get("start"), path, place), end_time=_time(lowered.get("end"), path, place),
                   source_place=place)


def read_csv_table(path: Path, data: bytes, transcript_id: str) -> RawTranscript:
    text, encoding = decode_text(data, path)
    # The delimiter is read off the header line; csv.Sniffer guesses quoting from the
    # body and gets doubled quotes ("") wrong, so it is not used.
    header = text.split("\n", 1)[0]
    delimiter = max(",;\t", key=header.count)
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    turns, skipped = [], 0
    try:
        for number, row in enumerate(reader, start=2):
            turn = _turn(row, path, f"row {number}")
            if turn is None:
                skipped += 1
            else:
                turns.append(turn)
    except csv.Error as exc:
        raise MalformedInputError(f"malformed CSV ({exc.__class__.__name__})", path=path,
                                  where=f"line {reader.line_num}") from None
    if not turns:
        raise MalformedInputError("the table has no rows with text", path=path, hint="check the export step")
    return RawTranscript(transcript_id=transcript_id, source_format="csv", encoding=encoding, turns=tuple(turns),
                         skipped=skipped)


def read_jsonl_table(path: Path, data: bytes, transcript_id: str) -> RawTranscript:
    text, encoding = decode_text(data, path)
    turns, skipped = [], 0
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise MalformedInputError(f"invalid JSON at column {exc.colno}", path=path, where=f"line {number}") from None
        if not isinstance(row, dict):
            raise MalformedInputError("each line must be a JSON object", path=path, where=f"line {number}")
        turn = _turn(row, path, f"line {number}")
        if turn is None:
            skipped += 1
        else:
            turns.append(turn)
    if not turns:
        raise MalformedInputError("the table has no rows with text", path=path, hint="check the export step")
    return RawTranscript(transcript_id=transcript_id, source_format="jsonl", encoding=encoding, turns=tuple(turns),
                         skipped=skipped)
