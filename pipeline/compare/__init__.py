"""Compare stance, emotions and affect focus between groups of speakers (profession, role,
site, wave: any speaker attribute), with speaker-clustered statistics.

Public entry points:
    compare_corpus(corpus_dir, by, where, out_dir, confusion=None, include_interviewers=False,
                   seed=0, n_boot=2000) -> ComparisonResult
    load_confusion(metrics_json) -> ConfusionMatrices
    load_result(out_dir) -> ComparisonResult
See docs/compare.md for the methods and how to read the report.
"""
from __future__ import annotations

from pipeline.compare.confusion import ConfusionMatrices, load_confusion
from pipeline.compare.result import (
    CompareOptions,
    ComparisonResult,
    ExampleRef,
    GroupSummary,
    InferenceRow,
    ShareRow,
    SpeakerProfile,
)
from pipeline.compare.run import compare_corpus, load_result

__all__ = [
    "CompareOptions",
    "ComparisonResult",
    "ConfusionMatrices",
    "ExampleRef",
    "GroupSummary",
    "InferenceRow",
    "ShareRow",
    "SpeakerProfile",
    "compare_corpus",
    "load_confusion",
    "load_result",
]
