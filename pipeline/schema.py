"""The domain data model: the contract between ingest, segmentation, tagging and output.

Frozen pydantic models with stable hierarchical ids (`<transcript>/t0007/s002`) that
re-running segmentation reproduces. Character offsets always round-trip:
`turn.text[s.start:s.end] == s.text`.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["interviewer", "participant", "other", "unknown"]
ROLES: tuple[str, ...] = ("interviewer", "participant", "other")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class MarkupSpan(_Frozen):
    """Transcriber markup kept in the text ([inaudible], <UNSURE>…) but ignored by tagging."""

    start: int
    end: int
    kind: str


class RawTurn(_Frozen):
    """A turn as a reader found it: speaker label as written, text, optional timing."""

    speaker: str
    text: str
    start_time: float | None = None
    end_time: float | None = None
    source_place: str | None = None  # "line 12", "cue 7", "row 3": for error messages


class RawTranscript(_Frozen):
    """What every reader returns; the ingest layer turns it into a Transcript."""

    transcript_id: str
    source_format: str
    encoding: str | None
    turns: tuple[RawTurn, ...]
    skipped: int = 0  # cues/rows without text, reported not hidden


class Speaker(_Frozen):
    speaker_id: str  # the label as written in the transcript
    role: Role
    attributes: dict[str, str] = Field(default_factory=dict)
    known: bool = True  # False: no sidecar row matched; kept and flagged, never dropped


class Turn(_Frozen):
    turn_id: str  # "<transcript>/t0007"
    index: int
    speaker_id: str
    text: str
    start_time: float | None = None
    end_time: float | None = None
    markup: tuple[MarkupSpan, ...] = ()


class Transcript(_Frozen):
    transcript_id: str
    source_format: str
    encoding: str | None
    speakers: dict[str, Speaker]
    turns: tuple[Turn, ...]
    skipped: int = 0


class Sentence(_Frozen):
    sentence_id: str  # "<transcript>/t0007/s002"
    turn_id: str
    index: int
    start: int  # offset in the turn's text
    end: int
    text: str
    taggable: bool  # False for markup-only sentences and untagged roles


class Annotation(_Frozen):
    """Stand-off label of one sentence in one layer, by a model or a human."""

    target_id: str
    layer: Literal["stance", "emotions", "affect_focus"]
    label: str
    probability: float | None = None
    producer: str  # "model:<id>@<version>" or "human:<annotator>"
