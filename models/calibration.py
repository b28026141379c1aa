"""Calibration on the dev split: a temperature for stance, decision thresholds for sigmoids.

Pure numpy, deterministic (grid searches, fixed tie-breaking), so the same dev
predictions always give the same calibration.
"""
from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

THRESHOLD_GRID = np.round(np.arange(0.05, 0.951, 0.01), 2)


def softmax(logits: ArrayLike, temperature: float = 1.0) -> NDArray[np.float64]:
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def sigmoid(logits: ArrayLike) -> NDArray[np.float64]:
    z = np.asarray(logits, dtype=np.float64)
    return np.where(z >= 0, 1.0 / (1.0 + np.exp(-np.abs(z))), np.exp(-np.abs(z)) / (1.0 + np.exp(-np.abs(z))))


def nll(logits: ArrayLike, labels: ArrayLike, temperature: float) -> float:
    """Mean negative log-likelihood of integer ``labels`` under softmax(logits / T)."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    y = np.asarray(labels, dtype=np.int64)
    z = z - z.max(axis=-1, keepdims=True)
    log_probs = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    return float(-log_probs[np.arange(len(y)), y].mean())


def fit_temperature(logits: ArrayLike, labels: ArrayLike, low: float = 0.05, high: float = 20.0) -> float:
    """The temperature T minimising dev NLL (log-grid, then golden-section refinement).

    Returns 1.0 when there is nothing to fit on.
    """
    y = np.asarray(labels)
    if y.size == 0:
        return 1.0
    grid = np.exp(np.linspace(np.log(low), np.log(high), 200))
    losses = [nll(logits, y, t) for t in grid]
    best = int(np.argmin(losses))
    a = np.log(grid[max(best - 1, 0)])
    b = np.log(grid[min(best + 1, len(grid) - 1)])
    ratio = (np.sqrt(5.0) - 1.0) / 2.0
    for _ in range(60):
        c, d = b - ratio * (b - a), a + ratio * (b - a)
        if nll(logits, y, float(np.exp(c))) <= nll(logits, y, float(np.exp(d))):
            b = d
        else:
            a = c
    return float(np.exp((a + b) / 2.0))


def f1_at(probs: ArrayLike, truth: ArrayLike, threshold: float) -> float:
    p = np.asarray(probs) >= threshold
    t = np.asarray(truth).astype(bool)
    tp = float(np.sum(p & t))
    denom = float(np.sum(p) + np.sum(t))
    return 2.0 * tp / denom if denom else 0.0


def best_threshold(probs: ArrayLike, truth: ArrayLike, grid: ArrayLike = THRESHOLD_GRID) -> float:
    """The grid threshold with the highest F1 on dev; ties go to the one nearest 0.5.

    With no positive example to learn from, 0.5 is returned.
    """
    t = np.asarray(truth).astype(bool)
    if t.size == 0 or not t.any():
        return 0.5
    candidates = [(f1_at(probs, t, float(g)), -abs(float(g) - 0.5), float(g)) for g in np.asarray(grid)]
    return max(candidates)[2]


def expected_calibration_error(confidence: ArrayLike, correct: ArrayLike, n_bins: int = 10) -> float:
    """ECE: |accuracy - confidence| per equal-width bin, weighted by the bin's share.

    For a softmax layer pass the top-class probability and whether it was right; for
    sigmoid layers pass each probability and whether the label was present.
    """
    conf = np.asarray(confidence, dtype=np.float64)
    hit = np.asarray(correct, dtype=np.float64)
    if conf.size == 0:
        return 0.0
    bins = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    total = 0.0
    for b in range(n_bins):
        in_bin = bins == b
        if in_bin.any():
            total += in_bin.mean() * abs(hit[in_bin].mean() - conf[in_bin].mean())
    return float(total)


def macro_f1_with_neutral(probs: ArrayLike, truth: ArrayLike, thresholds: ArrayLike) -> float:
    """Macro-F1 over the labels plus a "neutral" class (no label at or above its threshold)."""
    p = np.asarray(probs) >= np.asarray(thresholds)[None, :]
    t = np.asarray(truth).astype(bool)
    p = np.concatenate([p, ~p.any(1, keepdims=True)], axis=1)
    t = np.concatenate([t, ~t.any(1, keepdims=True)], axis=1)
    tp = (p & t).sum(0).astype(float)
    denom = (p.sum(0) + t.sum(0)).astype(float)
    return float(np.mean(np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)))


def joint_thresholds(
    probs: ArrayLike,
    truth: ArrayLike,
    start: ArrayLike,
    grid: ArrayLike = THRESHOLD_GRID,
    passes: int = 3,
    tune: ArrayLike | None = None,
) -> NDArray[np.float64]:
    """Per-label thresholds that maximise macro-F1 over the labels plus neutral.

    Per-label F1 alone pushes thresholds down and starves the neutral class; this
    coordinate ascent (from ``start``, labels in order, ties kept at the current value)
    trades them off. Only labels where ``tune`` is true move (default: all). Deterministic.
    """
    p, t = np.asarray(probs), np.asarray(truth)
    current = np.asarray(start, dtype=np.float64).copy()
    movable = np.ones(len(current), dtype=bool) if tune is None else np.asarray(tune, dtype=bool)
    best = macro_f1_with_neutral(p, t, current)
    for _ in range(passes):
        changed = False
        for j in np.flatnonzero(movable):
            for g in np.asarray(grid, dtype=np.float64):
                trial = current.copy()
                trial[j] = g
                score = macro_f1_with_neutral(p, t, trial)
                if score > best + 1e-12:
                    best, current, changed = score, trial, True
        if not changed:
            break
    return current
