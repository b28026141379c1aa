"""Ingest: find transcripts, pick a reader by suffix and content, attach speaker metadata.

`discover_inputs` turns paths and folders into `InputUnit`s (a TextGrid channel pair is
one unit); `read_unit` returns a `Transcript` or raises a PipelineError.
"""
from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from pipeline.errors import BinaryInputError, UnsupportedFormatError
from pipeline.ingest.decode import DEFAULT_MAX_BYTES, read_bytes, sniff_binary
from pipeline.ingest.docx_reader import read_docx
from pipeline.ingest.markup import find_markup
from pipeline.ingest.metadata import SpeakerTable
from pipeline.ingest.plain_text import read_plain_text
from pipeline.ingest.speaker_lines import DEFAULT_LABEL_PATTERN
from pipeline.ingest.subtitles import read_subtitles
from pipeline.ingest.textgrid import read_textgrid, read_textgrid_channels
from pipeline.ingest.turn_table import read_csv_table, read_jsonl_table
from pipeline.schema import RawTranscript, Transcript, Turn

SUFFIXES = {".txt": "text", ".text": "text", ".docx": "docx", ".vtt": "vtt", ".srt": "srt",
            ".textgrid": "textgrid", ".csv": "csv", ".tsv": "csv", ".jsonl": "jsonl"}
CHANNEL_FILE = re.compile(r"^(?P<stem>.+)_(?P<channel>[A-Za-z]+)$")
SIDECAR_NAMES = {"speakers.csv", "speakers.yaml", "speakers.yml"}


class IngestConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    speaker_label_pattern: str = DEFAULT_LABEL_PATTERN
    max_file_bytes: int = DEFAULT_MAX_BYTES


class InputUnit(BaseModel):
    """One transcript to read: a file, or the files of one TextGrid channel pair."""

    model_config = ConfigDict(frozen=True)

    transcript_id: str
    paths: tuple[Path, ...]
    channels: tuple[str, ...] = ()  # speaker per path for channel pairs

    def content_hash(self) -> str:
        """sha256 of the bytes (and channel names): the same content gives the same hash
        whatever the file is called, so a renamed file is not redone."""
        digest = hashlib.sha256()
        for channel, path in sorted(zip(self.channels or ("",) * len(self.paths), self.paths)):
            digest.update(channel.encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
        return digest.hexdigest()

    @property
    def display_path(self) -> str:
        return str(self.paths[0].parent / f"{self.transcript_id}_*.TextGrid") if self.channels else str(self.paths[0])


def discover_inputs(paths: Iterable[Path]) -> list[InputUnit]:
    """Expand folders (recursively, hidden files skipped) and group TextGrid channel pairs."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.is_file() and not any(
                part.startswith(".") for part in p.relative_to(path).parts))
        else:
            files.append(path)
    files = [f for f in files if f.name.lower() not in SIDECAR_NAMES and f.suffix.lower() not in (".md", ".yaml", ".yml")]
    grids: dict[tuple[Path, str], list[tuple[str, Path]]] = defaultdict(list)
    units: list[InputUnit] = []
    for file in files:
        match = CHANNEL_FILE.match(file.stem)
        if file.suffix.lower() == ".textgrid" and match:
            grids[(file.parent, match.group("stem"))].append((match.group("channel").lower(), file))
        else:
            units.append(InputUnit(transcript_id=file.stem, paths=(file,)))
    for (_parent, stem), members in grids.items():
        if len(members) >= 2:
            members.sort()
            units.append(InputUnit(transcript_id=stem, paths=tuple(p for _, p in members),
                                   channels=tuple(c for c, _ in members)))
        else:
            units += [InputUnit(transcript_id=p.stem, paths=(p,)) for _, p in members]
    return sorted(units, key=lambda u: (u.transcript_id, str(u.paths[0])))


def _format_of(path: Path, data: bytes) -> str:
    suffix = path.suffix.lower()
    kind = sniff_binary(data)
    if suffix == ".docx":
        if not data.startswith(b"PK"):
            raise BinaryInputError("a .docx must be a zip container; this is not one", path=path,
                                   hint="re-save the document from Word as .docx") if kind else \
                UnsupportedFormatError("a .docx must be a zip container; found text", path=path,
                                       hint="rename the file to .txt if it is plain text")
        return "docx"
    if suffix not in SUFFIXES:
        if data.lstrip(b"\xef\xbb\xbf").startswith(b"WEBVTT"):
            return "vtt"
        raise UnsupportedFormatError(f"unknown transcript suffix {suffix or '(none)'!r}", path=path,
                                     hint=f"use one of {', '.join(sorted(SUFFIXES))}")
    return SUFFIXES[suffix]


def read_raw(unit: InputUnit, config: IngestConfig) -> RawTranscript:
    if unit.channels:
        channels = {c: (p, read_bytes(p, config.max_file_bytes)) for c, p in zip(unit.channels, unit.paths)}
        return read_textgrid_channels(channels, unit.transcript_id)
    path = unit.paths[0]
    data = read_bytes(path, config.max_file_bytes)
    kind = _format_of(path, data)
    if kind == "docx":
        return read_docx(path, data, unit.transcript_id, config.speaker_label_pattern)
    if kind == "text":
        return read_plain_text(path, data, unit.transcript_id, config.speaker_label_pattern)
    if kind in ("vtt", "srt"):
        return read_subtitles(path, data, unit.transcript_id, kind)
    if kind == "textgrid":
        return read_textgrid(path, data, unit.transcript_id)
    if kind == "csv":
        return read_csv_table(path, data, unit.transcript_id)
    return read_jsonl_table(path, data, unit.transcript_id)


def build_transcript(raw: RawTranscript, speakers: SpeakerTable) -> Transcript:
    """Attach speaker metadata and markup spans; number the turns."""
    turns = tuple(
        Turn(turn_id=f"{raw.transcript_id}/t{index:04d}", index=index, speaker_id=t.speaker, text=t.text,
             start_time=t.start_time, end_time=t.end_time, markup=find_markup(t.text))
        for index, t in enumerate(raw.turns)
    )
    found = {t.speaker_id: speakers.lookup(raw.transcript_id, t.speaker_id) for t in turns}
    return Transcript(transcript_id=raw.transcript_id, source_format=raw.source_format, encoding=raw.encoding,
                      speakers=found, turns=turns, skipped=raw.skipped)


def read_unit(unit: InputUnit, speakers: SpeakerTable, config: IngestConfig | None = None) -> Transcript:
    return build_transcript(read_raw(unit, config or IngestConfig()), speakers)
