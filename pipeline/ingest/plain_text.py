"""Plain-text transcripts with speaker labels."""
from __future__ import annotations

from pathlib import Path

from pipeline.ingest.decode import decode_text
from pipeline.ingest.speaker_lines import turns_from_lines
from pipeline.schema import RawTranscript


def read_plain_text(path: Path, data: bytes, transcript_id: str, label_pattern: str) -> RawTranscript:
    text, encoding = decode_text(data, path)
    lines = ((str(number), line) for number, line in enumerate(text.split("\n"), start=1))
    turns = turns_from_lines(lines, path, label_pattern)
    return RawTranscript(transcript_id=transcript_id, source_format="text", encoding=encoding, turns=tuple(turns))
