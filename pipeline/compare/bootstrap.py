"""Cluster bootstrap over speakers (or transcripts), stratified, vectorised.

Each replicate draws clusters with replacement *within strata*, a stratum being the set of
groups a cluster has sentences in. For groups fixed by design (one profession per
speaker) that is the usual stratified cluster bootstrap; for a person seen in two waves
it resamples the person once for both, so contrasts keep the pairing. All groups come
from the same replicates, so differences between groups get their intervals too.

Groups with too few speakers for the cluster bootstrap to mean anything (one speaker:
every replicate identical) get a two-stage bootstrap: clusters, then sentences within a
drawn cluster. That interval describes *these* speakers only.
"""
from __future__ import annotations

import warnings

import numpy as np

from pipeline.compare.layers import Units

ALPHA = 0.05


def resample_weights(cluster: np.ndarray, group: np.ndarray, n_clusters: int, n_boot: int,
                     rng: np.random.Generator) -> np.ndarray:
    """(n_boot, n_clusters) multiplicities of each cluster in each replicate.

    `cluster` and `group` describe the units (one per cluster and group).
    """
    signatures: dict[int, set[int]] = {}
    for c, g in zip(cluster.tolist(), group.tolist(), strict=True):
        signatures.setdefault(c, set()).add(g)
    strata: dict[tuple[int, ...], list[int]] = {}
    for c, groups in sorted(signatures.items()):
        strata.setdefault(tuple(sorted(groups)), []).append(c)
    weights = np.zeros((n_boot, n_clusters))
    rows = np.arange(n_boot)[:, None]
    for members in strata.values():
        index = np.asarray(members)
        drawn = index[rng.integers(0, len(index), size=(n_boot, len(index)))]
        np.add.at(weights, (np.broadcast_to(rows, drawn.shape), drawn), 1.0)
    return weights


def bootstrap_group_counts(units: Units, n_groups: int, n_clusters: int, inner_groups: np.ndarray,
                           exclusive: bool, n_boot: int,
                           rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Replicated label counts (B, G, L) and sentence totals (B, G) per group.

    `inner_groups` (G,) bool: groups whose units also resample sentences (two-stage).
    The sum of w independent resamples of a unit's n sentences is one draw of w*n
    sentences, so the inner stage is one binomial (multinomial when `exclusive`) draw.
    """
    weights = resample_weights(units.cluster, units.group, n_clusters, n_boot, rng)
    unit_weights = weights[:, units.cluster]  # (B, U)
    onehot = np.zeros((len(units.group), n_groups))
    onehot[np.arange(len(units.group)), units.group] = 1.0
    totals = (unit_weights * units.totals) @ onehot
    n_labels = units.counts.shape[1]
    counts = np.zeros((n_boot, n_groups, n_labels))
    inner = inner_groups[units.group]
    outer = ~inner
    if outer.any():
        design = (units.counts[outer][:, :, None] * onehot[outer][:, None, :]).reshape(outer.sum(), -1)
        counts += (unit_weights[:, outer] @ design).reshape(n_boot, n_labels, n_groups).transpose(0, 2, 1)
    if inner.any():
        trials = np.rint(unit_weights[:, inner] * units.totals[inner]).astype(np.int64)  # (B, Ui)
        shares = units.counts[inner] / units.totals[inner][:, None]  # (Ui, L)
        if exclusive:
            draws = rng.multinomial(trials, shares / shares.sum(axis=1, keepdims=True))
        else:
            draws = rng.binomial(trials[:, :, None], shares[None, :, :])
        counts += np.einsum("bul,ug->bgl", draws, onehot[inner])
    return counts, totals


def percentile_interval(samples: np.ndarray, alpha: float = ALPHA) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval along axis 0 (NaN replicates ignored; all-NaN columns give NaN)."""
    with warnings.catch_warnings():  # an all-NaN column (label absent everywhere) is expected, not news
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = np.nanquantile(samples, [alpha / 2, 1 - alpha / 2], axis=0)
    return low, high


def bootstrap_p_value(differences: np.ndarray) -> float:
    """Two-sided p for 'difference = 0' by inverting the percentile interval."""
    d = differences[~np.isnan(differences)]
    if d.size == 0:
        return float("nan")
    below = (np.sum(d <= 0) + 1) / (d.size + 1)
    above = (np.sum(d >= 0) + 1) / (d.size + 1)
    return float(min(1.0, 2 * min(below, above)))


def exact_zero_bound(n: float, alpha: float = ALPHA) -> float:
    """Clopper-Pearson upper bound of a proportion with 0 events in n (two-sided alpha)."""
    return float(1 - (alpha / 2) ** (1 / n)) if n > 0 else 1.0
