"""Typed options and results of a comparison. No transcript text in any of them.

`ComparisonResult` is what `compare_corpus` returns and writes as result.json: the tables
(as rows), warnings, notes, the example sentence *ids* (the report looks their text up)
and the files written.
"""
from __future__ import annotations

import hashlib
import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Layer = Literal["stance", "emotions", "affect_focus"]
LAYERS: tuple[Layer, ...] = ("stance", "emotions", "affect_focus")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CompareOptions(_Frozen):
    """The resolved settings of one comparison, recorded with its hash."""

    by: tuple[str, ...]
    where: dict[str, str] = Field(default_factory=dict)
    include_interviewers: bool = False
    seed: int = 0
    n_boot: int = Field(default=2000, ge=50)
    cluster: Literal["speaker", "transcript"] = "speaker"
    min_speakers: int = Field(default=3, ge=2, description="groups with fewer speakers are flagged and left out of GEE tests")
    n_examples: int = Field(default=3, ge=0)
    fit_glmm: bool = True
    prefer: Literal["parquet", "jsonl"] = "parquet"

    def options_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()[:16]


class GroupSummary(_Frozen):
    group: str
    values: dict[str, str]
    n_speakers: int
    n_transcripts: int
    n_sentences: int
    small: bool


class ShareRow(_Frozen):
    """One group's share of one label in one layer."""

    layer: Layer
    group: str
    label: str
    proportion: float  # classify-and-count: tagged sentences with the label / tagged sentences
    ci_low: float
    ci_high: float
    ci_method: str
    proportion_speaker_mean: float  # mean over speakers of each speaker's share
    proportion_acc: float | None = None  # adjusted classify-and-count (confusion-corrected)
    acc_ci_low: float | None = None
    acc_ci_high: float | None = None
    proportion_meanprob: float | None = None  # mean of the model's probability for the label
    n_positive: int
    n_speakers: int
    n_sentences: int


class InferenceRow(_Frozen):
    """A model-based or bootstrap test; omnibus (all groups) or a pairwise contrast."""

    layer: Layer
    label: str
    test: Literal["omnibus", "pairwise"]
    method: Literal["gee_exchangeable", "glmm_random_intercept", "cluster_bootstrap"]
    group_a: str | None = None
    group_b: str | None = None
    estimate: float | None = None
    estimate_kind: str | None = None  # odds_ratio | difference_in_proportions
    ci_low: float | None = None
    ci_high: float | None = None
    statistic: float | None = None
    statistic_kind: str | None = None  # F | chi2 | t | z
    df: str | None = None  # "q" or "q, d"
    p_value: float | None = None
    p_holm: float | None = None
    groups_tested: list[str] = Field(default_factory=list)
    n_speakers: int = 0
    note: str = ""


class SpeakerProfile(_Frozen):
    """One speaker's shares within one group (a person in two waves has two profiles)."""

    speaker: str
    group: str
    transcripts: list[str]
    n_sentences: dict[str, int]  # tagged sentences per layer
    shares: dict[str, float | None]  # "<layer>:<label>" -> share


class ExampleRef(_Frozen):
    group: str
    layer: Layer
    label: str
    sentence_id: str
    speaker: str
    probability: float | None


class ComparisonResult(_Frozen):
    corpus_dir: str
    out_dir: str
    model: str | None
    options: CompareOptions
    options_hash: str
    labels: dict[str, list[str]]
    n_sentences: int
    n_speakers: int
    groups: list[GroupSummary]
    shares: list[ShareRow]
    tests: list[InferenceRow]
    speakers: list[SpeakerProfile]
    examples: list[ExampleRef]
    corrected: bool  # whether confusion-corrected (ACC) shares were computed
    warnings: list[str]
    notes: list[str]
    files: dict[str, str]  # name -> path relative to out_dir
