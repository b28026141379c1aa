"""Shares per group (raw, confusion-corrected, mean probability) with bootstrap intervals;
per-speaker profiles; the example sentence ids shown in the report."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.compare.bootstrap import bootstrap_group_counts, exact_zero_bound, percentile_interval
from pipeline.compare.confusion import ConfusionMatrices, acc_binary, acc_multiclass, binary_rates
from pipeline.compare.layers import LayerData, Units
from pipeline.compare.result import ExampleRef, ShareRow


@dataclass(frozen=True)
class LayerShares:
    rows: list[ShareRow]
    proportions: np.ndarray  # (B, G, L) bootstrap replicates of the raw shares
    corrected: bool
    notes: list[str]


def _correction(data: LayerData, confusion: ConfusionMatrices | None) -> tuple[object | None, list[str]]:
    """What to correct with: a rate matrix (stance) or per-label (tpr, fpr) (binary layers)."""
    if confusion is None:
        return None, []
    if data.layer == "stance":
        if confusion.stance is None:
            return None, ["no stance confusion matrix: corrected stance shares omitted"]
        return confusion.stance.rates(data.labels), []
    if data.layer == "emotions":
        rates = {label: binary_rates((confusion.emotions or {}).get(label)) for label in data.labels}
        missing = [label for label, r in rates.items() if r is None]
        notes = [(f"emotions without a usable confusion matrix (absent, or tpr - fpr < 0.05): {', '.join(missing)}; "
                  "their corrected shares are empty")] if missing else []
        return (rates if len(missing) < len(rates) else None), notes
    rate = binary_rates(confusion.affect_focus)
    if rate is None:
        return None, ["no usable affect_focus confusion matrix: corrected affect shares omitted"]
    return {data.labels[0]: rate}, []


def _apply_correction(correction: object, labels: tuple[str, ...], shares: np.ndarray) -> np.ndarray:
    if isinstance(correction, np.ndarray):
        return acc_multiclass(shares, correction)
    out = np.full_like(shares, np.nan)
    for i, label in enumerate(labels):
        rate = correction.get(label)  # type: ignore[attr-defined]
        if rate is not None:
            out[..., i] = acc_binary(shares[..., i], *rate)
    return out


def compute_shares(data: LayerData, units: Units, n_speakers: np.ndarray, small: np.ndarray,
                   confusion: ConfusionMatrices | None, n_boot: int, rng: np.random.Generator,
                   cluster_word: str = "speakers") -> LayerShares:
    """`n_speakers` and `small` are per group of data.groups (speaker counts, small-group flags)."""
    n_groups, n_labels = len(data.groups), len(data.labels)
    replicate_counts, replicate_totals = bootstrap_group_counts(
        units, n_groups, len(data.clusters), small, data.exclusive, n_boot, rng)
    with np.errstate(invalid="ignore", divide="ignore"):
        proportions = replicate_counts / replicate_totals[:, :, None]
    onehot = np.zeros((len(units.group), n_groups))
    onehot[np.arange(len(units.group)), units.group] = 1.0
    totals = units.totals @ onehot
    counts = (units.counts.T @ onehot).T  # (G, L)
    with np.errstate(invalid="ignore", divide="ignore"):
        point = counts / totals[:, None]
        unit_shares = units.counts / units.totals[:, None]
        speaker_mean = (unit_shares.T @ onehot).T / onehot.sum(axis=0)[:, None]
        probn = (units.probn.T @ onehot).T
        meanprob = np.where(probn > 0, (units.probsum.T @ onehot).T / probn, np.nan)
    low, high = percentile_interval(proportions)
    correction, notes = _correction(data, confusion)
    if correction is not None:
        acc_point = _apply_correction(correction, data.labels, point)
        acc_low, acc_high = percentile_interval(_apply_correction(correction, data.labels, proportions))
    rows: list[ShareRow] = []
    for g in range(n_groups):
        base = (f"two-stage bootstrap ({cluster_word}, then sentences); fewer than the minimum {cluster_word}"
                if small[g] else f"cluster bootstrap over {cluster_word} (percentile)")
        for i in range(n_labels):
            lo, hi, method = float(low[g, i]), float(high[g, i]), base
            if counts[g, i] == 0:
                hi, method = max(hi, exact_zero_bound(totals[g])), base + "; no positives: exact binomial upper bound"
            elif counts[g, i] == totals[g]:
                lo, method = min(lo, 1 - exact_zero_bound(totals[g])), base + "; all positive: exact binomial lower bound"
            extra: dict[str, float | None] = {}
            if correction is not None and not np.isnan(acc_point[g, i]):
                extra = {"proportion_acc": float(acc_point[g, i]), "acc_ci_low": float(acc_low[g, i]),
                         "acc_ci_high": float(acc_high[g, i])}
            rows.append(ShareRow(
                layer=data.layer, group=data.groups[g], label=data.labels[i],  # type: ignore[arg-type]
                proportion=float(point[g, i]), ci_low=lo, ci_high=hi, ci_method=method,
                proportion_speaker_mean=float(speaker_mean[g, i]),
                proportion_meanprob=None if np.isnan(meanprob[g, i]) else float(meanprob[g, i]),
                n_positive=int(counts[g, i]), n_speakers=int(n_speakers[g]), n_sentences=int(totals[g]), **extra))
    return LayerShares(rows=rows, proportions=proportions, corrected=correction is not None, notes=notes)


def speaker_shares(data: LayerData) -> dict[tuple[str, str], tuple[int, dict[str, float]]]:
    """(speaker, group) -> (tagged sentences, share per label) for one layer."""
    speakers, speaker_index = np.unique(data.speakers, return_inverse=True)
    key = speaker_index * len(data.groups) + data.group_index
    unique, inverse = np.unique(key, return_inverse=True)
    totals = np.bincount(inverse, minlength=len(unique))
    sums = np.zeros((len(unique), len(data.labels)))
    np.add.at(sums, inverse, data.y)
    out: dict[tuple[str, str], tuple[int, dict[str, float]]] = {}
    for k, value in enumerate(unique):
        speaker, group = divmod(int(value), len(data.groups))
        out[(str(speakers[speaker]), data.groups[group])] = (
            int(totals[k]), {label: float(sums[k, i] / totals[k]) for i, label in enumerate(data.labels)})
    return out


def pick_examples(data: LayerData, n_examples: int) -> list[ExampleRef]:
    """Per group and label: the sentences tagged with the label at the highest probability,
    at most one per speaker while other speakers have candidates."""
    refs: list[ExampleRef] = []
    if n_examples <= 0:
        return refs
    for g, group in enumerate(data.groups):
        for i, label in enumerate(data.labels):
            candidates = np.flatnonzero((data.group_index == g) & (data.y[:, i] == 1))
            if candidates.size == 0:
                continue
            prob = np.nan_to_num(data.prob[candidates, i], nan=-1.0)
            order = candidates[np.lexsort((data.sentence_ids[candidates], -prob))]
            chosen: list[int] = []
            seen: set[str] = set()
            for index in order:
                if data.speakers[index] not in seen:
                    chosen.append(int(index))
                    seen.add(str(data.speakers[index]))
                if len(chosen) == n_examples:
                    break
            for index in order:
                if len(chosen) >= n_examples:
                    break
                if int(index) not in chosen:
                    chosen.append(int(index))
            chosen.sort(key=lambda j: (-np.nan_to_num(data.prob[j, i], nan=-1.0), data.sentence_ids[j]))
            for j in chosen:
                p = data.prob[j, i]
                refs.append(ExampleRef(group=group, layer=data.layer, label=label,  # type: ignore[arg-type]
                                       sentence_id=str(data.sentence_ids[j]), speaker=str(data.speakers[j]),
                                       probability=None if np.isnan(p) else float(p)))
    return refs
