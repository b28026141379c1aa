"""Model-based tests of group differences for one label, and multiplicity correction.

Three methods, each reported in its own rows of tests.csv:

* `gee_exchangeable` (primary): logistic GEE with one mean per group, exchangeable
  working correlation within speaker, bias-reduced (Mancl-DeRouen) sandwich covariance,
  and t / F reference distributions with (speakers - groups) denominator degrees of
  freedom. Population-averaged odds ratios. Only groups with at least `min_speakers`
  speakers and with both outcomes present enter it: a group with one speaker has no
  between-speaker variance of its own, and the sandwich would call its mean exact.
* `glmm_random_intercept`: random-intercept logistic regression by maximum likelihood
  (see glmm.py). Speaker-specific ("typical speaker") odds ratios. It assumes one
  between-speaker variance shared by all groups, which lets it include groups with one
  or two speakers (flagged). Wald t / F with the same degrees of freedom as GEE.
* `cluster_bootstrap`: difference in classify-and-count proportions with a percentile
  interval and the p value obtained by inverting it (see bootstrap.py).
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
from scipy import stats

from pipeline.compare.bootstrap import bootstrap_p_value, percentile_interval
from pipeline.compare.glmm import fit_random_intercept
from pipeline.compare.layers import LayerData, Units
from pipeline.compare.result import InferenceRow


@dataclass(frozen=True)
class CellMeansFit:
    """Log-odds per included group with their covariance and residual df."""

    method: str
    groups: tuple[int, ...]  # indices into LayerData.groups
    beta: np.ndarray
    cov: np.ndarray
    df: int
    n_clusters: int
    notes: list[str] = field(default_factory=list)


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm step-down adjusted p values; None/NaN entries are left out and stay None."""
    present = [(i, float(p)) for i, p in enumerate(p_values) if p is not None and not np.isnan(p)]
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    m = len(present)
    for rank, (i, p) in enumerate(sorted(present, key=lambda item: item[1])):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted


def _group_stats(data: LayerData, label: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per group: clusters, sentences, positives."""
    n_groups = len(data.groups)
    n = np.bincount(data.group_index, minlength=n_groups).astype(float)
    events = np.bincount(data.group_index, weights=data.y[:, label], minlength=n_groups)
    clusters = np.array([len(np.unique(data.cluster_index[data.group_index == g])) for g in range(n_groups)])
    return clusters, n, events


def gee_covariances(beta: np.ndarray, rho: float, cluster: np.ndarray, group: np.ndarray, n: np.ndarray,
                    y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Robust and bias-reduced (Mancl-DeRouen) sandwich covariances of a cell-means logistic
    GEE with exchangeable working correlation, from counts per (cluster, group) unit.

    With R^-1 = (I - c 11')/(1 - rho), c = rho / (1 + (m - 1) rho), each cluster's bread
    B_i and score U_i need only its sentences and positives per group. Mancl-DeRouen
    replaces r_i by (I - H_ii)^-1 r_i; by Woodbury that turns U_i into B (B - B_i)^-1 U_i,
    so cov_bc = sum_i (B - B_i)^-1 U_i U_i' (B - B_i)^-1: p x p algebra per cluster, where
    statsmodels solves an n_i x n_i system (minutes for long interviews). The scale
    parameter cancels. Raises LinAlgError when a group rests on one cluster.
    """
    p = len(beta)
    clusters, index = np.unique(cluster, return_inverse=True)
    n_cg = np.zeros((len(clusters), p))
    y_cg = np.zeros((len(clusters), p))
    np.add.at(n_cg, (index, group), n)
    np.add.at(y_cg, (index, group), y)
    mu = 1 / (1 + np.exp(-beta))
    v = mu * (1 - mu)
    sv = np.sqrt(v)
    m = n_cg.sum(axis=1)
    c = rho / (1 + (m - 1) * rho)
    s = n_cg * sv
    bread_i = (np.einsum("cg,gh->cgh", n_cg * v, np.eye(p)) - c[:, None, None] * s[:, :, None] * s[:, None, :]) \
        / (1 - rho)
    t = y_cg - n_cg * mu
    total = (t / sv).sum(axis=1)
    score = (t - c[:, None] * s * total[:, None]) / (1 - rho)
    bread = bread_i.sum(axis=0)
    inverse = np.linalg.inv(bread)
    robust = inverse @ (score.T @ score) @ inverse
    adjusted = np.linalg.solve(bread[None, :, :] - bread_i, score[:, :, None])[:, :, 0]
    return robust, adjusted.T @ adjusted


def fit_gee(data: LayerData, label: int, groups: Sequence[int]) -> CellMeansFit | None:
    import statsmodels.api as sm
    from statsmodels.tools.sm_exceptions import ConvergenceWarning

    keep = np.isin(data.group_index, groups)
    position = np.full(len(data.groups), -1)
    position[list(groups)] = np.arange(len(groups))
    g_index = position[data.group_index[keep]]
    exog = np.zeros((keep.sum(), len(groups)))
    exog[np.arange(keep.sum()), g_index] = 1.0
    clusters = data.cluster_index[keep]
    y = data.y[keep, label]
    notes: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model = sm.GEE(y, exog, groups=clusters, family=sm.families.Binomial(),
                           cov_struct=sm.cov_struct.Exchangeable())
            result = model.fit(cov_type="naive", maxiter=100)  # covariance computed below
        except (np.linalg.LinAlgError, ValueError, ZeroDivisionError):
            return None
    if result is None or not np.all(np.isfinite(result.params)):
        return None
    if any(issubclass(w.category, ConvergenceWarning) for w in caught):
        notes.append("GEE convergence warning")
    rho = float(np.asarray(model.cov_struct.dep_params))
    try:
        _, cov = gee_covariances(np.asarray(result.params), rho, clusters, g_index, np.ones_like(y), y)
    except np.linalg.LinAlgError:
        return None
    n_clusters = len(np.unique(clusters))
    notes.append(f"within-speaker correlation {rho:.2f}")
    return CellMeansFit("gee_exchangeable", tuple(groups), np.asarray(result.params), cov,
                        n_clusters - len(groups), n_clusters, notes)


def fit_glmm(units: Units, label: int, groups: Sequence[int]) -> CellMeansFit | None:
    keep = np.isin(units.group, groups)
    position = {g: i for i, g in enumerate(groups)}
    g_index = np.array([position[g] for g in units.group[keep]])
    with np.errstate(all="ignore"):
        fit = fit_random_intercept(units.cluster[keep], g_index, units.totals[keep], units.counts[keep, label],
                                   len(groups))
    n_clusters = len(np.unique(units.cluster[keep]))
    if not np.all(np.isfinite(fit.cov)):
        return None
    notes = [f"between-speaker SD (logit) {fit.sigma:.2f}"]
    if not fit.converged:
        notes.append("optimiser did not fully converge")
    return CellMeansFit("glmm_random_intercept", tuple(groups), fit.beta, fit.cov,
                        n_clusters - len(groups), n_clusters, notes)


def _wald_rows(fit: CellMeansFit, data: LayerData, label: int, names: tuple[str, ...],
               small: set[int]) -> tuple[InferenceRow | None, dict[tuple[int, int], InferenceRow]]:
    layer, label_name = data.layer, data.labels[label]
    k = len(fit.groups)
    df = max(fit.df, 1)
    contrast = np.zeros((k - 1, k))
    contrast[:, 0] = 1.0
    contrast[np.arange(k - 1), np.arange(1, k)] = -1.0
    diff = contrast @ fit.beta
    middle = contrast @ fit.cov @ contrast.T
    omnibus = None
    try:
        wald = float(diff @ np.linalg.solve(middle, diff))
        f_stat = wald / (k - 1)
        omnibus = InferenceRow(
            layer=layer, label=label_name, test="omnibus", method=fit.method,  # type: ignore[arg-type]
            statistic=f_stat, statistic_kind="F", df=f"{k - 1}, {df}",
            p_value=float(stats.f.sf(f_stat, k - 1, df)), groups_tested=[names[g] for g in fit.groups],
            n_speakers=fit.n_clusters, note="; ".join(fit.notes))
    except np.linalg.LinAlgError:
        pass
    pairs: dict[tuple[int, int], InferenceRow] = {}
    quantile = stats.t.ppf(0.975, df)
    for (i, a), (j, b) in combinations(enumerate(fit.groups), 2):
        est = fit.beta[i] - fit.beta[j]
        variance = float(fit.cov[i, i] + fit.cov[j, j] - 2 * fit.cov[i, j])
        if not np.isfinite(variance) or variance <= 1e-12:
            continue  # reported as not tested: degenerate variance (speakers identical)
        se = float(np.sqrt(variance))
        t_stat = est / se
        notes = list(fit.notes)
        if a in small or b in small:
            notes.append("a group has fewer speakers than the minimum: relies on the between-speaker variance of "
                         "the other groups")
        pairs[(a, b)] = InferenceRow(
            layer=layer, label=label_name, test="pairwise", method=fit.method,  # type: ignore[arg-type]
            group_a=names[a], group_b=names[b], estimate=float(np.exp(est)), estimate_kind="odds_ratio",
            ci_low=float(np.exp(est - quantile * se)), ci_high=float(np.exp(est + quantile * se)),
            statistic=float(t_stat), statistic_kind="t", df=str(df),
            p_value=float(2 * stats.t.sf(abs(t_stat), df)), groups_tested=[names[a], names[b]],
            n_speakers=fit.n_clusters, note="; ".join(notes))
    return omnibus, pairs


def compare_label(data: LayerData, units: Units, label: int, proportions: np.ndarray, min_speakers: int,
               use_glmm: bool = True) -> list[InferenceRow]:
    """Omnibus and pairwise rows for one label. `proportions` is the (B, G) bootstrap."""
    names = data.groups
    n_groups = len(names)
    if n_groups < 2:
        return []
    clusters, n, events = _group_stats(data, label)
    layer, label_name = data.layer, data.labels[label]
    has_both = (events > 0) & (events < n)
    small = {g for g in range(n_groups) if clusters[g] < min_speakers}
    rows: list[InferenceRow] = []
    gee_groups = [g for g in range(n_groups) if has_both[g] and g not in small]
    glmm_groups = [g for g in range(n_groups) if has_both[g]]

    def why_not(g: int, method: str) -> str:
        reasons = []
        if method == "gee_exchangeable" and g in small:
            reasons.append(f"'{names[g]}' has {clusters[g]} speaker(s), fewer than {min_speakers}: not tested by GEE")
        if not has_both[g]:
            reasons.append(f"'{names[g]}' has {'no' if events[g] == 0 else 'only'} sentences with this label: "
                           "odds ratio not estimable")
        return "; ".join(reasons) or "model could not be fitted, or zero variance (speakers identical)"

    fits: list[tuple[str, list[int], CellMeansFit | None]] = []
    fits.append(("gee_exchangeable", gee_groups,
                 fit_gee(data, label, gee_groups) if len(gee_groups) >= 2 else None))
    if use_glmm:
        enough = len(glmm_groups) >= 2 and clusters[glmm_groups].sum() >= len(glmm_groups) + 2 \
            and (clusters[glmm_groups] >= 2).any()
        fits.append(("glmm_random_intercept", glmm_groups,
                     fit_glmm(units, label, glmm_groups) if enough else None))
    for method, included, fit in fits:
        omnibus, pairs = (_wald_rows(fit, data, label, names, small) if fit is not None else (None, {}))
        if omnibus is not None:
            excluded = [names[g] for g in range(n_groups) if g not in fit.groups]  # type: ignore[union-attr]
            if excluded:
                omnibus = omnibus.model_copy(update={"note": "; ".join(
                    filter(None, [omnibus.note, "left out: " + ", ".join(excluded)]))})
            rows.append(omnibus)
        else:
            reason = "fewer than two groups can enter the model" if len(included) < 2 else "model could not be fitted"
            rows.append(InferenceRow(layer=layer, label=label_name, test="omnibus", method=method,  # type: ignore[arg-type]
                                     groups_tested=[names[g] for g in included], note=reason))
        for a, b in combinations(range(n_groups), 2):
            if (a, b) in pairs:
                rows.append(pairs[(a, b)])
                continue
            reasons = [why_not(g, method) for g in (a, b) if g not in included] or [
                "model could not be fitted, or zero variance (speakers identical)"]
            rows.append(InferenceRow(layer=layer, label=label_name, test="pairwise", method=method,  # type: ignore[arg-type]
                                     group_a=names[a], group_b=names[b], note="; ".join(reasons)))
    for a, b in combinations(range(n_groups), 2):
        diff = proportions[:, a] - proportions[:, b]
        low, high = percentile_interval(diff)
        observed = events[a] / n[a] - events[b] / n[b]
        note = "a group has fewer speakers than the minimum: two-stage bootstrap, describes these speakers only" \
            if (a in small or b in small) else ""
        rows.append(InferenceRow(
            layer=layer, label=label_name, test="pairwise", method="cluster_bootstrap",  # type: ignore[arg-type]
            group_a=names[a], group_b=names[b], estimate=float(observed), estimate_kind="difference_in_proportions",
            ci_low=float(low), ci_high=float(high), p_value=bootstrap_p_value(diff),
            groups_tested=[names[a], names[b]], n_speakers=int(clusters[a] + clusters[b]), note=note))
    return rows


def adjust_holm(rows: list[InferenceRow]) -> list[InferenceRow]:
    """Holm within each family: pairwise = (layer, label, method); omnibus = (layer, method)."""
    families: dict[tuple[str, ...], list[int]] = {}
    for i, row in enumerate(rows):
        key = (row.test, row.layer, row.method) + ((row.label,) if row.test == "pairwise" else ())
        families.setdefault(key, []).append(i)
    out = list(rows)
    for members in families.values():
        adjusted = holm([rows[i].p_value for i in members])
        for i, p in zip(members, adjusted, strict=True):
            out[i] = rows[i].model_copy(update={"p_holm": p})
    return out
