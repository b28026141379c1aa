"""One annotation layer as arrays: which sentences were tagged, their 0/1 labels and
probabilities, and the (cluster, group) units the bootstrap resamples."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.errors import CorpusError

AFFECT_LABEL = "affect_focus"


@dataclass(frozen=True)
class LayerData:
    """Tagged sentences of one layer. `y` and `prob` are (n_sentences, n_labels)."""

    layer: str
    labels: tuple[str, ...]
    exclusive: bool  # one label per sentence (stance)
    groups: tuple[str, ...]
    clusters: tuple[str, ...]
    sentence_ids: np.ndarray
    speakers: np.ndarray
    group_index: np.ndarray  # per sentence, into groups
    cluster_index: np.ndarray  # per sentence, into clusters
    y: np.ndarray
    prob: np.ndarray  # NaN where the model gave no probability

    @property
    def n(self) -> int:
        return int(self.y.shape[0])


@dataclass(frozen=True)
class Units:
    """Sentences summed per (cluster, group): the rows the cluster bootstrap draws."""

    cluster: np.ndarray  # (U,) into clusters
    group: np.ndarray  # (U,) into groups
    totals: np.ndarray  # (U,) tagged sentences
    counts: np.ndarray  # (U, L) sentences with each label
    probsum: np.ndarray  # (U, L) sum of probabilities (NaN skipped)
    probn: np.ndarray  # (U, L) sentences with a probability


def build_layer(frame: pd.DataFrame, layer: str, labels: tuple[str, ...], groups: tuple[str, ...],
                clusters: tuple[str, ...]) -> LayerData:
    """`frame` has `group` and `cluster` columns (see corpus.assign_groups), no missing groups."""
    group_pos = {g: i for i, g in enumerate(groups)}
    cluster_pos = {c: i for i, c in enumerate(clusters)}
    if layer == "stance":
        tagged = frame[frame["stance"].notna()]
        unknown = sorted(set(tagged["stance"]) - set(labels))
        if unknown:
            raise CorpusError(f"stance labels {unknown} are not in the label schema {list(labels)}",
                              hint="compare with the label schema the corpus was tagged with")
        y = np.stack([(tagged["stance"] == label).to_numpy(float) for label in labels], axis=1)
        probs = tagged["stance_probs"]
        exclusive = True
    elif layer == "emotions":
        tagged = frame[frame["emotions"].notna()]
        y = np.stack([tagged["emotions"].map(lambda e, lab=label: lab in e).to_numpy(float) for label in labels],
                     axis=1)
        probs = tagged["emotion_probs"]
        exclusive = False
    elif layer == "affect_focus":
        tagged = frame[frame["affect_focus"].notna()]
        y = tagged["affect_focus"].astype(bool).to_numpy(float)[:, None]
        probs = tagged["affect_focus_prob"].map(lambda p: None if p is None or pd.isna(p) else {AFFECT_LABEL: p})
        exclusive = False
        labels = (AFFECT_LABEL,)
    else:
        raise ValueError(f"unknown layer {layer}")
    prob = np.array([[np.nan if not isinstance(p, dict) or p.get(label) is None else float(p[label])
                      for label in labels] for p in probs], dtype=float).reshape(len(tagged), len(labels))
    return LayerData(
        layer=layer, labels=tuple(labels), exclusive=exclusive, groups=groups, clusters=clusters,
        sentence_ids=tagged["sentence_id"].to_numpy(str), speakers=tagged["speaker"].to_numpy(str),
        group_index=tagged["group"].map(group_pos).to_numpy(int),
        cluster_index=tagged["cluster"].map(cluster_pos).to_numpy(int),
        y=y.reshape(len(tagged), len(labels)), prob=prob,
    )


def unit_table(data: LayerData) -> Units:
    n_clusters = len(data.clusters)
    key = data.group_index * n_clusters + data.cluster_index
    unique, inverse = np.unique(key, return_inverse=True)
    n_units = len(unique)
    totals = np.bincount(inverse, minlength=n_units).astype(float)
    counts = np.zeros((n_units, len(data.labels)))
    probsum = np.zeros_like(counts)
    probn = np.zeros_like(counts)
    np.add.at(counts, inverse, data.y)
    has = ~np.isnan(data.prob)
    np.add.at(probsum, inverse, np.where(has, data.prob, 0.0))
    np.add.at(probn, inverse, has.astype(float))
    return Units(cluster=unique % n_clusters, group=unique // n_clusters, totals=totals, counts=counts,
                 probsum=probsum, probn=probn)
