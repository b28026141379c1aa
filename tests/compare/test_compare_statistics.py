"""Statistics against known answers on simulated data."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from pipeline.compare.bootstrap import (
    bootstrap_group_counts,
    bootstrap_p_value,
    exact_zero_bound,
    percentile_interval,
    resample_weights,
)
from pipeline.compare.confusion import acc_binary, acc_multiclass
from pipeline.compare.glmm import fit_random_intercept
from pipeline.compare.inference import holm
from pipeline.compare.layers import Units


def clustered_units(rng: np.random.Generator, speakers_per_group: int, sentences: int = 30, sd: float = 1.0,
                    logits: tuple[float, float] = (-0.85, -0.85)) -> Units:
    """Two groups, one label; each speaker has their own logit deviation (SD `sd`)."""
    k = speakers_per_group
    group = np.repeat([0, 1], k)
    p = 1 / (1 + np.exp(-(np.asarray(logits)[group] + rng.normal(0, sd, 2 * k))))
    totals = np.clip(rng.poisson(sentences, 2 * k), 5, None).astype(float)
    counts = rng.binomial(totals.astype(int), p).astype(float)[:, None]
    return Units(cluster=np.arange(2 * k), group=group, totals=totals, counts=counts, probsum=counts,
                 probn=totals[:, None])


def naive_p(units: Units) -> float:
    """Two-proportion z test on sentences, as if they were independent."""
    x = np.array([units.counts[units.group == g, 0].sum() for g in (0, 1)])
    n = np.array([units.totals[units.group == g].sum() for g in (0, 1)])
    pooled = x.sum() / n.sum()
    z = (x[0] / n[0] - x[1] / n[1]) / np.sqrt(pooled * (1 - pooled) * (1 / n[0] + 1 / n[1]))
    return float(2 * stats.norm.sf(abs(z)))


def cluster_p(units: Units, rng: np.random.Generator, n_boot: int = 199) -> float:
    counts, totals = bootstrap_group_counts(units, 2, len(units.cluster), np.zeros(2, bool), False, n_boot, rng)
    share = counts[:, :, 0] / totals
    return bootstrap_p_value(share[:, 0] - share[:, 1])


def test_naive_test_is_overconfident_and_cluster_bootstrap_is_not() -> None:
    """200 datasets, no true difference, strong speaker effects (SD 1 on the logit scale)."""
    rng = np.random.default_rng(20240501)
    naive, cluster = [], []
    for _ in range(200):
        units = clustered_units(rng, speakers_per_group=12)
        naive.append(naive_p(units) < 0.05)
        cluster.append(cluster_p(units, rng) < 0.05)
    naive_rate, cluster_rate = np.mean(naive), np.mean(cluster)
    assert naive_rate > 0.25, naive_rate  # about 40%
    assert cluster_rate <= 0.10, cluster_rate  # about 5% (binomial SE 1.5 points at 200 runs)


def test_gee_false_positive_rate_near_nominal_with_few_speakers() -> None:
    """Bias-reduced GEE with t(speakers - groups) stays near 5% even at 4 speakers per group."""
    from pipeline.compare.inference import fit_gee
    from pipeline.compare.layers import LayerData

    rng = np.random.default_rng(7)
    hits = []
    for _ in range(120):
        units = clustered_units(rng, speakers_per_group=4)
        n = units.totals.astype(int)
        y = np.concatenate([np.r_[np.ones(int(c)), np.zeros(int(t - c))] for c, t in zip(units.counts[:, 0], n,
                                                                                        strict=True)])
        cluster = np.repeat(units.cluster, n)
        data = LayerData(layer="affect_focus", labels=("affect_focus",), exclusive=False, groups=("a", "b"),
                         clusters=tuple(map(str, range(8))), sentence_ids=np.arange(len(y)).astype(str),
                         speakers=cluster.astype(str), group_index=np.repeat(units.group, n), cluster_index=cluster,
                         y=y[:, None], prob=np.full((len(y), 1), np.nan))
        fit = fit_gee(data, 0, [0, 1])
        assert fit is not None
        se = np.sqrt(fit.cov[0, 0] + fit.cov[1, 1] - 2 * fit.cov[0, 1])
        hits.append(2 * stats.t.sf(abs((fit.beta[0] - fit.beta[1]) / se), fit.df) < 0.05)
    assert np.mean(hits) <= 0.11, np.mean(hits)


def test_cluster_bootstrap_has_power_against_a_real_difference() -> None:
    rng = np.random.default_rng(3)
    hits = [cluster_p(clustered_units(rng, 12, logits=(-1.5, 0.0)), rng) < 0.05 for _ in range(40)]
    assert np.mean(hits) > 0.8


def test_bootstrap_replicates_centre_on_pooled_share() -> None:
    rng = np.random.default_rng(0)
    units = clustered_units(rng, 15)
    counts, totals = bootstrap_group_counts(units, 2, 30, np.zeros(2, bool), False, 2000, rng)
    share = counts[:, :, 0] / totals
    pooled = [units.counts[units.group == g, 0].sum() / units.totals[units.group == g].sum() for g in (0, 1)]
    assert np.allclose(share.mean(axis=0), pooled, atol=0.01)
    low, high = percentile_interval(share)
    assert np.all(low < pooled) and np.all(np.array(pooled) < high)


def test_single_speaker_group_gets_within_speaker_interval() -> None:
    """One speaker: the cluster bootstrap would give a zero-width interval; two-stage does not."""
    units = Units(cluster=np.array([0, 1, 2]), group=np.array([0, 0, 1]), totals=np.array([40.0, 40.0, 50.0]),
                  counts=np.array([[10.0], [20.0], [25.0]]), probsum=np.zeros((3, 1)), probn=np.zeros((3, 1)))
    rng = np.random.default_rng(1)
    outer_only = bootstrap_group_counts(units, 2, 3, np.zeros(2, bool), False, 500, rng)
    two_stage = bootstrap_group_counts(units, 2, 3, np.array([False, True]), False, 500, rng)
    assert np.ptp(outer_only[0][:, 1, 0] / outer_only[1][:, 1]) == 0
    share = two_stage[0][:, 1, 0] / two_stage[1][:, 1]
    assert 0.04 < share.std() < 0.1  # binomial SD sqrt(.25/50) = 0.07
    assert abs(share.mean() - 0.5) < 0.02


def test_paired_groups_resample_the_person_once() -> None:
    """A person seen in two waves forms one stratum: both units move together."""
    cluster = np.array([0, 0, 1, 1, 2, 2])
    group = np.array([0, 1, 0, 1, 0, 1])
    weights = resample_weights(cluster, group, 3, 100, np.random.default_rng(0))
    assert weights.shape == (100, 3) and np.all(weights.sum(axis=1) == 3)
    units = Units(cluster=cluster, group=group, totals=np.full(6, 20.0),
                  counts=np.array([[2.0], [4.0], [10.0], [12.0], [16.0], [18.0]]),
                  probsum=np.zeros((6, 1)), probn=np.zeros((6, 1)))
    counts, totals = bootstrap_group_counts(units, 2, 3, np.zeros(2, bool), False, 400, np.random.default_rng(2))
    difference = counts[:, 0, 0] / totals[:, 0] - counts[:, 1, 0] / totals[:, 1]
    assert np.allclose(difference, -0.1)  # every person differs by 2/20 between waves


def test_stratified_groups_keep_their_speaker_counts() -> None:
    cluster = np.arange(5)
    group = np.array([0, 0, 0, 1, 1])
    weights = resample_weights(cluster, group, 5, 200, np.random.default_rng(0))
    assert np.all(weights[:, :3].sum(axis=1) == 3) and np.all(weights[:, 3:].sum(axis=1) == 2)


def test_acc_recovers_true_prevalence_from_misclassified_labels() -> None:
    rng = np.random.default_rng(11)
    rates = np.array([[0.80, 0.12, 0.08], [0.15, 0.75, 0.10], [0.10, 0.10, 0.80]])
    truth = np.array([0.2, 0.6, 0.2])
    true_labels = rng.choice(3, size=20000, p=truth)
    predicted = np.array([rng.choice(3, p=rates[t]) for t in true_labels])
    observed = np.bincount(predicted, minlength=3) / len(predicted)
    assert np.abs(observed - truth).max() > 0.08  # classify-and-count is clearly biased
    corrected = acc_multiclass(observed, rates)
    assert np.allclose(corrected, truth, atol=0.015)
    assert np.isclose(corrected.sum(), 1.0)


def test_acc_with_estimated_confusion_from_a_held_out_set() -> None:
    """Rates estimated from 1000 held-out items per class still correct the bias."""
    rng = np.random.default_rng(5)
    rates = np.array([[0.85, 0.10, 0.05], [0.20, 0.70, 0.10], [0.05, 0.15, 0.80]])
    held_out = np.array([rng.multinomial(1000, row) for row in rates])
    estimated = held_out / held_out.sum(axis=1, keepdims=True)
    truth = np.array([0.5, 0.3, 0.2])
    predicted = np.array([rng.choice(3, p=rates[t]) for t in rng.choice(3, size=20000, p=truth)])
    corrected = acc_multiclass(np.bincount(predicted, minlength=3) / len(predicted), estimated)
    assert np.allclose(corrected, truth, atol=0.03)


def test_acc_binary_recovers_prevalence_and_clips() -> None:
    rng = np.random.default_rng(2)
    truth = rng.random(50000) < 0.15
    said = np.where(truth, rng.random(truth.size) < 0.7, rng.random(truth.size) < 0.05)
    assert abs(float(acc_binary(said.mean(), 0.7, 0.05)) - 0.15) < 0.01
    assert float(acc_binary(0.01, 0.7, 0.05)) == 0.0  # below the false-positive floor
    assert float(acc_binary(0.99, 0.7, 0.05)) == 1.0


def test_acc_clips_and_renormalises_impossible_observations() -> None:
    rates = np.array([[0.9, 0.1, 0.0], [0.1, 0.9, 0.0], [0.0, 0.2, 0.8]])
    corrected = acc_multiclass(np.array([0.95, 0.05, 0.0]), rates)
    assert np.all(corrected >= 0) and np.all(corrected <= 1) and np.isclose(corrected.sum(), 1)
    stacked = acc_multiclass(np.tile([0.4, 0.4, 0.2], (5, 2, 1)), rates)
    assert stacked.shape == (5, 2, 3)


def test_holm_matches_statsmodels() -> None:
    from statsmodels.stats.multitest import multipletests

    p = [0.01, 0.04, 0.03, 0.005, 0.2]
    assert np.allclose(np.array(holm(p), dtype=float), multipletests(p, method="holm")[1])
    assert holm([0.01, None, float("nan"), 0.04]) == [0.02, None, None, 0.04]


def test_glmm_recovers_known_parameters() -> None:
    estimates, sigmas, covered = [], [], []
    truth = np.array([-1.0, 0.5])
    for seed in range(12):
        rng = np.random.default_rng(seed)
        group = np.repeat([0, 1], 30)
        trials = np.full(60, 40.0)
        y = rng.binomial(40, 1 / (1 + np.exp(-(truth[group] + rng.normal(0, 1.0, 60))))).astype(float)
        fit = fit_random_intercept(np.arange(60), group, trials, y, 2)
        assert fit.converged
        estimates.append(fit.beta)
        sigmas.append(fit.sigma)
        se = np.sqrt(np.diag(fit.cov))
        covered.append(np.abs(fit.beta - truth) < 1.96 * se)
    assert np.allclose(np.mean(estimates, axis=0), truth, atol=0.12)
    assert abs(np.mean(sigmas) - 1.0) < 0.12
    assert np.mean(covered) > 0.8


def test_glmm_handles_a_person_in_two_groups() -> None:
    rng = np.random.default_rng(4)
    people = np.repeat(np.arange(20), 2)
    group = np.tile([0, 1], 20)
    effect = rng.normal(0, 1.2, 20)[people]
    y = rng.binomial(30, 1 / (1 + np.exp(-(np.array([-0.5, 0.5])[group] + effect)))).astype(float)
    fit = fit_random_intercept(people, group, np.full(40, 30.0), y, 2)
    assert fit.sigma > 0.6
    assert 0.5 < fit.beta[1] - fit.beta[0] < 1.5


def test_exact_zero_bound() -> None:
    assert exact_zero_bound(100) == pytest.approx(0.0362, abs=1e-3)  # Clopper-Pearson 97.5% one-sided


def test_fast_gee_covariances_match_statsmodels() -> None:
    """Our p x p Mancl-DeRouen algebra equals statsmodels' n_i x n_i version, including a
    person whose sentences fall in two groups."""
    import warnings

    import statsmodels.api as sm

    from pipeline.compare.inference import gee_covariances

    rng = np.random.default_rng(0)
    rows = []
    for cluster in range(12):
        effect = rng.normal(0, 1)
        for g in ([cluster % 3] if cluster < 8 else [0, 2]):
            for _ in range(rng.integers(5, 30)):
                rows.append((cluster, g, rng.random() < 1 / (1 + np.exp(-(-0.5 + 0.4 * g + effect)))))
    table = np.array(rows)
    clusters, group, y = table[:, 0], table[:, 1].astype(int), table[:, 2].astype(float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = sm.GEE(y, np.eye(3)[group], groups=clusters, family=sm.families.Binomial(),
                       cov_struct=sm.cov_struct.Exchangeable())
        reduced = model.fit(cov_type="bias_reduced")
        robust = model.fit(cov_type="robust")
    ours_robust, ours_reduced = gee_covariances(np.asarray(reduced.params), float(model.cov_struct.dep_params),
                                                clusters, group, np.ones_like(y), y)
    assert np.allclose(ours_robust, robust.cov_params(), rtol=1e-8, atol=1e-12)
    assert np.allclose(ours_reduced, reduced.cov_params(), rtol=1e-8, atol=1e-12)


def _gee_and_glmm_p(units: Units) -> tuple[float, float]:
    from pipeline.compare.inference import fit_gee
    from pipeline.compare.layers import LayerData

    n = units.totals.astype(int)
    y = np.concatenate([np.r_[np.ones(int(c)), np.zeros(int(t - c))]
                        for c, t in zip(units.counts[:, 0], n, strict=True)])
    cluster = np.repeat(units.cluster, n)
    data = LayerData(layer="affect_focus", labels=("affect_focus",), exclusive=False, groups=("a", "b"),
                     clusters=tuple(map(str, range(len(units.cluster)))), sentence_ids=np.arange(len(y)).astype(str),
                     speakers=cluster.astype(str), group_index=np.repeat(units.group, n), cluster_index=cluster,
                     y=y[:, None], prob=np.full((len(y), 1), np.nan))
    out = []
    gee = fit_gee(data, 0, [0, 1])
    glmm = fit_random_intercept(units.cluster, units.group, units.totals, units.counts[:, 0], 2)
    for beta, cov, df in ((gee.beta, gee.cov, gee.df), (glmm.beta, glmm.cov, len(units.cluster) - 2)):  # type: ignore[union-attr]
        se = np.sqrt(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
        out.append(float(2 * stats.t.sf(abs((beta[0] - beta[1]) / se), df)))
    return out[0], out[1]


@pytest.mark.slow
def test_calibration_table(capsys: pytest.CaptureFixture[str]) -> None:
    """False-positive rates at the 5% level, no true difference, speaker SD 1 (logit),
    about 30 sentences per speaker; 400 datasets per row. Printed for docs/compare.md."""
    lines = ["| speakers per group | naive sentence z test | cluster bootstrap | GEE (bias-reduced, t) | mixed model (ML, t) |",
             "|---|---|---|---|---|"]
    for k in (3, 5, 10, 20):
        rng = np.random.default_rng(100 + k)
        hits = np.zeros(4)
        for _ in range(400):
            units = clustered_units(rng, k)
            gee_p, glmm_p = _gee_and_glmm_p(units)
            hits += [naive_p(units) < 0.05, cluster_p(units, rng) < 0.05, gee_p < 0.05, glmm_p < 0.05]
        rates = hits / 400
        lines.append(f"| {k} | " + " | ".join(f"{100 * r:.1f}%" for r in rates) + " |")
        if k >= 10:
            assert rates[0] > 0.25 and rates[1] < 0.09 and rates[2] < 0.09
    with capsys.disabled():
        print("\n" + "\n".join(lines))
