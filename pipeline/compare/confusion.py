"""Held-out confusion matrices and adjusted classify-and-count (ACC) shares.

A classifier's raw share of a label ("classify and count") is biased whenever it makes
errors: it is q = M^T p, where p is the true distribution and M[i, j] = P(pred j | true i)
estimated on held-out data. ACC solves that system for p, clips to [0, 1] and (for the
single-label stance layer) renormalises to sum 1. Binary layers use the familiar
p = (q - fpr) / (tpr - fpr).

The matrices come from the model's metrics.json; the structure read is:

    {"stance": {"labels": ["objective", "experiential", "none"],
                "confusion": [[...], [...], [...]]},          # rows true, columns predicted
     "emotions": {"anger": {"confusion": [[tn, fp], [fn, tp]]}, ...},
     "affect_focus": {"confusion": [[tn, fp], [fn, tp]]}}

Counts or row proportions are both accepted; other keys in the file are ignored. The
same three keys may also sit under a top-level "confusion" object.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from pipeline.errors import ConfigError

#: Below this tpr - fpr (Youden's J) a binary correction divides by noise: not applied.
MIN_YOUDEN = 0.05


class BinaryConfusion(BaseModel):
    """[[tn, fp], [fn, tp]]: rows true (no, yes), columns predicted (no, yes)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    confusion: tuple[tuple[float, float], tuple[float, float]]

    @field_validator("confusion")
    @classmethod
    def _non_negative(cls, value: tuple[tuple[float, float], tuple[float, float]]) -> Any:
        if any(v < 0 for row in value for v in row):
            raise ValueError("confusion counts must be non-negative")
        return value

    @property
    def tpr(self) -> float | None:
        (_, _), (fn, tp) = self.confusion
        return tp / (tp + fn) if tp + fn > 0 else None

    @property
    def fpr(self) -> float | None:
        (tn, fp), (_, _) = self.confusion
        return fp / (fp + tn) if fp + tn > 0 else None


class MultiClassConfusion(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    labels: tuple[str, ...]
    confusion: tuple[tuple[float, ...], ...]

    @field_validator("confusion")
    @classmethod
    def _square(cls, value: tuple[tuple[float, ...], ...]) -> Any:
        if any(len(row) != len(value) for row in value):
            raise ValueError("confusion must be square")
        if any(v < 0 for row in value for v in row):
            raise ValueError("confusion counts must be non-negative")
        return value

    def rates(self, labels: tuple[str, ...]) -> np.ndarray:
        """P(pred j | true i), rows and columns in the order of `labels`."""
        if set(labels) != set(self.labels) or len(labels) != len(self.labels):
            raise ConfigError(f"confusion labels {list(self.labels)} differ from the corpus labels {list(labels)}",
                              hint="use the metrics.json of the model that tagged this corpus")
        order = [self.labels.index(label) for label in labels]
        matrix = np.asarray(self.confusion, dtype=float)[np.ix_(order, order)]
        sums = matrix.sum(axis=1, keepdims=True)
        if (sums <= 0).any():
            raise ConfigError("a confusion row has no held-out examples; ACC cannot be computed",
                              hint="evaluate the model on a test set with every label")
        return matrix / sums


class ConfusionMatrices(BaseModel):
    """Held-out confusion matrices per layer; any may be absent."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    stance: MultiClassConfusion | None = None
    emotions: dict[str, BinaryConfusion] | None = None
    affect_focus: BinaryConfusion | None = None


def load_confusion(path: Path) -> ConfusionMatrices:
    """Read the confusion matrices from a model's metrics.json (structure in the module doc)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("metrics file not found", path=path) from None
    except ValueError:
        raise ConfigError("metrics file is not valid JSON", path=path) from None
    if isinstance(data, dict) and isinstance(data.get("confusion"), dict):
        data = data["confusion"]
    if not isinstance(data, dict):
        raise ConfigError("metrics file should hold a JSON object", path=path)
    emotions = data.get("emotions")
    if isinstance(emotions, dict):  # keep only per-label entries that carry a confusion matrix
        emotions = {k: v for k, v in emotions.items() if isinstance(v, dict) and "confusion" in v} or None
    stance = data.get("stance")
    if isinstance(stance, dict) and "confusion" not in stance:
        stance = None
    affect = data.get("affect_focus")
    if isinstance(affect, dict) and "confusion" not in affect:
        affect = None
    try:
        return ConfusionMatrices.model_validate({"stance": stance, "emotions": emotions, "affect_focus": affect})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"confusion matrices malformed ({problems})", path=path,
                          hint="see docs/compare.md for the expected structure") from None


def acc_multiclass(observed: np.ndarray, rates: np.ndarray) -> np.ndarray:
    """Solve rates^T p = observed for p; clip to [0, 1] and renormalise along the last axis.

    `observed` has shape (..., L) (predicted shares); works on a stack of bootstrap
    replicates at once. A singular system falls back to least squares.
    """
    observed = np.asarray(observed, dtype=float)
    flat = observed.reshape(-1, observed.shape[-1])
    solution, *_ = np.linalg.lstsq(rates.T, flat.T, rcond=None)
    corrected = np.clip(solution.T, 0.0, 1.0)
    totals = corrected.sum(axis=1, keepdims=True)
    corrected = np.divide(corrected, totals, out=flat.copy(), where=totals > 0)
    return corrected.reshape(observed.shape)


def acc_binary(observed: np.ndarray | float, tpr: float, fpr: float) -> np.ndarray:
    """p = (q - fpr) / (tpr - fpr), clipped to [0, 1]."""
    return np.clip((np.asarray(observed, dtype=float) - fpr) / (tpr - fpr), 0.0, 1.0)


def binary_rates(confusion: BinaryConfusion | None) -> tuple[float, float] | None:
    """(tpr, fpr) when the correction is usable, else None."""
    if confusion is None or confusion.tpr is None or confusion.fpr is None:
        return None
    if confusion.tpr - confusion.fpr < MIN_YOUDEN:
        return None
    return confusion.tpr, confusion.fpr
