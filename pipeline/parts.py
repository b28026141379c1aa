"""One processed transcript, cached under its recompute key.

A part holds what segmentation and tagging produced for one input's bytes, without the
transcript id or speaker attributes (applied when the corpus is assembled), so a renamed
but unchanged file reuses its part and a sidecar edit re-tags nothing it does not affect.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from pipeline.atomic import write_bytes_atomic
from pipeline.schema import MarkupSpan
from pipeline.tag import SentencePrediction

PART_FORMAT = 1


class PartSentence(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    start: int
    end: int
    taggable: bool
    prediction: SentencePrediction | None = None


class PartTurn(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    speaker: str
    text: str
    start_time: float | None = None
    end_time: float | None = None
    markup: tuple[MarkupSpan, ...] = ()
    sentences: tuple[PartSentence, ...] = ()


class TranscriptPart(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    format: int = PART_FORMAT
    source_format: str
    encoding: str | None
    skipped: int
    turns: tuple[PartTurn, ...]
    windowed: int = 0  # sentences longer than the model's window, scored in windows (C21)

    @property
    def sentence_count(self) -> int:
        return sum(len(t.sentences) for t in self.turns)

    @property
    def tagged_count(self) -> int:
        return sum(1 for t in self.turns for s in t.sentences if s.prediction is not None)


def recompute_key(content_hash: str, model_ref: str, schema_ref: str, config_hash: str, code_version: str,
                  tagged_speakers: list[str]) -> str:
    """Everything that changes a transcript's sentences or labels, and nothing else."""
    material = json.dumps([content_hash, model_ref, schema_ref, config_hash, code_version, sorted(tagged_speakers)])
    return hashlib.sha256(material.encode()).hexdigest()


def part_path(parts_dir: Path, key: str) -> Path:
    return parts_dir / f"{key[:40]}.json"


def write_part(parts_dir: Path, key: str, part: TranscriptPart) -> None:
    write_bytes_atomic(part_path(parts_dir, key), part.model_dump_json().encode())


def read_part(parts_dir: Path, key: str) -> TranscriptPart | None:
    """The cached part, or None when missing or unreadable (then it is simply redone)."""
    path = part_path(parts_dir, key)
    try:
        part = TranscriptPart.model_validate_json(path.read_bytes())
    except (OSError, ValueError):
        return None
    return part if part.format == PART_FORMAT else None
