"""The speaker sidecar: who each speaker is (role, profession, any attribute).

CSV or YAML with `transcript, speaker, role` plus attribute columns. `transcript` may be
`*` for every transcript; a row naming the transcript wins over a `*` row. Speaker labels
match case-insensitively with whitespace folded.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from pipeline.errors import MetadataError
from pipeline.schema import ROLES, Speaker

REQUIRED = ("transcript", "speaker", "role")


def _norm(label: str) -> str:
    return " ".join(label.split()).casefold()


class SpeakerTable(BaseModel):
    """Rows keyed by (transcript, normalised speaker)."""

    model_config = ConfigDict(frozen=True)

    rows: dict[str, dict[str, dict[str, str]]] = {}

    def lookup(self, transcript_id: str, speaker: str) -> Speaker:
        key = _norm(speaker)
        row = self.rows.get(transcript_id, {}).get(key) or self.rows.get("*", {}).get(key)
        if row is None:
            return Speaker(speaker_id=speaker, role="unknown", known=False)
        attributes = {k: v for k, v in row.items() if k not in REQUIRED and v != ""}
        return Speaker(speaker_id=speaker, role=row["role"], attributes=attributes)  # type: ignore[arg-type]


def _validate(records: list[dict], path: Path, place: str) -> SpeakerTable:
    rows: dict[str, dict[str, dict[str, str]]] = {}
    for number, record in enumerate(records, start=2 if place == "row" else 1):
        record = {str(k).strip().lower(): ("" if v is None else str(v).strip()) for k, v in record.items()}
        missing = [c for c in REQUIRED if not record.get(c)]
        if missing:
            raise MetadataError(f"missing value for {', '.join(missing)}", path=path, where=f"{place} {number}",
                                hint="every row needs transcript, speaker and role")
        if record["role"] not in ROLES:
            raise MetadataError(f"role must be one of {', '.join(ROLES)}; found another value", path=path,
                                where=f"{place} {number}")
        key = _norm(record["speaker"])
        if key in rows.setdefault(record["transcript"], {}):
            # the label is not echoed: speaker labels may be names
            raise MetadataError(f"a speaker is listed twice for transcript {record['transcript']!r}",
                                path=path, where=f"{place} {number}")
        rows[record["transcript"]][key] = record
    return SpeakerTable(rows=rows)


def load_speaker_table(path: Path | None) -> SpeakerTable:
    if path is None:
        return SpeakerTable()
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise MetadataError(f"cannot read the sidecar ({type(exc).__name__})", path=path) from None
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError:
            raise MetadataError("invalid YAML", path=path) from None
        records = data.get("speakers", data) if isinstance(data, dict) else data
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise MetadataError("expected a list of speaker rows (or a 'speakers:' list)", path=path)
        return _validate(records, path, "entry")
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or not set(REQUIRED) <= {f.strip().lower() for f in reader.fieldnames}:
        raise MetadataError(f"expected columns {', '.join(REQUIRED)}", path=path, where="header",
                            hint="add a header row: transcript,speaker,role[,profession,...]")
    return _validate(list(reader), path, "row")
