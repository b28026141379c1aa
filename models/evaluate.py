"""Metrics for a tagger on labelled examples: per layer, per class, by speaker role and source.

Works on what any `pipeline.tag.Tagger` returns, so a model is judged through the same
interface the pipeline uses. Each layer is scored on the rows that carry it.

Emotions are scored two ways:
- ``macro_f1_6``: macro-F1 over the six emotion labels as independent yes/no decisions;
- ``macro_f1_7``: the same plus ``neutral`` as a seventh class (gold neutral = empty
  emotion set, predicted neutral = no emotion above its threshold) - the GoEmotions
  Ekman convention, comparable to its published macro-F1.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

from models.calibration import expected_calibration_error
from models.data import NEUTRAL, Example
from models.labels import LabelSchema
from pipeline.tag import SentencePrediction, Tagger

GROUP_KEYS = ("speaker", "source")


def _r(x: float) -> float:
    return round(float(x), 4)


def _per_class(truth: np.ndarray, pred: np.ndarray, labels: Sequence[str]) -> dict[str, dict[str, float]]:
    """Per-class figures; ``truth``/``pred`` are label-index vectors or indicator matrices."""
    p, r, f, s = precision_recall_fscore_support(
        truth, pred, labels=list(range(len(labels))) if truth.ndim == 1 else None,
        zero_division=0, average=None,
    )
    return {
        name: {"precision": _r(p[i]), "recall": _r(r[i]), "f1": _r(f[i]), "support": int(s[i])}
        for i, name in enumerate(labels)
    }


def stance_metrics(
    examples: Sequence[Example], preds: Sequence[SentencePrediction], schema: LabelSchema
) -> dict[str, Any] | None:
    labels = list(schema.stance_labels)
    rows = [(ex, pr) for ex, pr in zip(examples, preds) if ex.stance is not None]
    if not rows:
        return None
    truth = np.array([labels.index(ex.stance) for ex, _ in rows])  # type: ignore[arg-type]
    pred = np.array([labels.index(pr.stance) for _, pr in rows])
    conf = np.array([max(pr.stance_probs.values()) for _, pr in rows])
    present = sorted(set(truth.tolist()))
    return {
        "n": len(rows),
        "accuracy": _r((truth == pred).mean()),
        "macro_f1": _r(f1_score(truth, pred, labels=list(range(len(labels))), average="macro", zero_division=0)),
        "macro_f1_present": _r(f1_score(truth, pred, labels=present, average="macro", zero_division=0)),
        "per_class": _per_class(truth, pred, labels),
        "confusion_matrix": {
            "labels": labels,
            "rows": "gold",
            "columns": "predicted",
            "matrix": confusion_matrix(truth, pred, labels=list(range(len(labels)))).tolist(),
        },
        "ece": _r(expected_calibration_error(conf, truth == pred)),
    }


def emotion_metrics(
    examples: Sequence[Example], preds: Sequence[SentencePrediction], schema: LabelSchema
) -> dict[str, Any] | None:
    labels = list(schema.emotion_labels)
    rows = [(ex, pr) for ex, pr in zip(examples, preds) if ex.emotions is not None]
    if not rows:
        return None
    truth = np.array([[int(e in ex.emotions) for e in labels] for ex, _ in rows])  # type: ignore[operator]
    pred = np.array([[int(e in pr.emotions) for e in labels] for _, pr in rows])
    probs = np.array([[pr.emotion_probs[e] for e in labels] for _, pr in rows])
    truth7 = np.concatenate([truth, (truth.sum(1) == 0)[:, None].astype(int)], axis=1)
    pred7 = np.concatenate([pred, (pred.sum(1) == 0)[:, None].astype(int)], axis=1)
    labels7 = [*labels, NEUTRAL]
    present6 = [i for i in range(len(labels)) if truth[:, i].any()]
    present7 = [i for i in range(len(labels7)) if truth7[:, i].any()]

    # single-label view for a confusion matrix: items with at most one gold emotion;
    # the predicted class is the most probable predicted emotion, or neutral
    single = truth.sum(1) <= 1
    gold1 = np.where(truth.sum(1) == 0, len(labels), truth.argmax(1))[single]
    masked = np.where(pred == 1, probs, -1.0)
    pred1 = np.where(pred.sum(1) == 0, len(labels), masked.argmax(1))[single]

    binary_2x2 = {}
    for i, name in enumerate(labels):
        tn, fp, fn, tp = confusion_matrix(truth[:, i], pred[:, i], labels=[0, 1]).ravel()
        binary_2x2[name] = {"tn": int(tn), "fp": int(fp), "fn": int(fn), "tp": int(tp)}
    return {
        "n": len(rows),
        "macro_f1_6": _r(f1_score(truth, pred, average="macro", zero_division=0)),
        "macro_f1_7": _r(f1_score(truth7, pred7, average="macro", zero_division=0)),
        "macro_f1_6_present": _r(f1_score(truth, pred, labels=present6, average="macro", zero_division=0))
        if present6 else None,
        "macro_f1_7_present": _r(f1_score(truth7, pred7, labels=present7, average="macro", zero_division=0)),
        "micro_f1_6": _r(f1_score(truth, pred, average="micro", zero_division=0)),
        "exact_match": _r((truth == pred).all(1).mean()),
        "per_class": _per_class(truth7, pred7, labels7),
        "per_label_confusion": binary_2x2,
        "confusion_matrix_single_label": {
            "labels": labels7,
            "rows": "gold (items with at most one gold emotion)",
            "columns": "predicted (most probable emotion above threshold, else neutral)",
            "n": int(single.sum()),
            "matrix": confusion_matrix(gold1, pred1, labels=list(range(len(labels7)))).tolist(),
        },
        "ece": _r(expected_calibration_error(probs.ravel(), truth.ravel())),
    }


def affect_metrics(examples: Sequence[Example], preds: Sequence[SentencePrediction]) -> dict[str, Any] | None:
    rows = [(ex, pr) for ex, pr in zip(examples, preds) if ex.affect_focus is not None]
    if not rows:
        return None
    truth = np.array([int(bool(ex.affect_focus)) for ex, _ in rows])
    pred = np.array([int(pr.affect_focus) for _, pr in rows])
    probs = np.array([pr.affect_focus_prob for _, pr in rows])
    p, r, f, s = precision_recall_fscore_support(truth, pred, labels=[1], zero_division=0, average=None)
    tn, fp, fn, tp = confusion_matrix(truth, pred, labels=[0, 1]).ravel()
    return {
        "n": len(rows),
        "precision": _r(p[0]),
        "recall": _r(r[0]),
        "f1": _r(f[0]),
        "support": int(s[0]),
        "accuracy": _r((truth == pred).mean()),
        "confusion": {"tn": int(tn), "fp": int(fp), "fn": int(fn), "tp": int(tp)},
        "ece": _r(expected_calibration_error(probs, truth)),
    }


def _summary(examples: Sequence[Example], preds: Sequence[SentencePrediction], schema: LabelSchema) -> dict[str, Any]:
    out: dict[str, Any] = {"n": len(examples)}
    if (st := stance_metrics(examples, preds, schema)) is not None:
        out["stance_n"] = st["n"]
        out["stance_accuracy"] = st["accuracy"]
        out["stance_macro_f1_present"] = st["macro_f1_present"]
    if (em := emotion_metrics(examples, preds, schema)) is not None:
        out["emotions_macro_f1_7_present"] = em["macro_f1_7_present"]
        out["emotions_exact_match"] = em["exact_match"]
    if (af := affect_metrics(examples, preds)) is not None:
        out["affect_focus_f1"] = af["f1"]
        out["affect_focus_support"] = af["support"]
    return out


def compute_metrics(
    examples: Sequence[Example],
    preds: Sequence[SentencePrediction],
    schema: LabelSchema,
    group_keys: Iterable[str] = GROUP_KEYS,
) -> dict[str, Any]:
    """All metrics for aligned examples and predictions (see module docstring).

    ``by_<key>`` holds compact figures per speaker role / source; macro-F1 there is over
    the classes present in that group's gold labels (``*_present``).
    """
    if len(examples) != len(preds):
        raise ValueError(f"{len(examples)} examples but {len(preds)} predictions")
    out: dict[str, Any] = {"n": len(examples)}
    for name, value in (
        ("stance", stance_metrics(examples, preds, schema)),
        ("emotions", emotion_metrics(examples, preds, schema)),
        ("affect_focus", affect_metrics(examples, preds)),
    ):
        if value is not None:
            out[name] = value
    for key in group_keys:
        values = sorted({getattr(ex, key) for ex in examples if getattr(ex, key) is not None})
        if len(values) < 1 or all(getattr(ex, key) is None for ex in examples):
            continue
        groups: dict[str, Any] = {}
        for value in values:
            idx = [i for i, ex in enumerate(examples) if getattr(ex, key) == value]
            groups[value] = _summary([examples[i] for i in idx], [preds[i] for i in idx], schema)
        out[f"by_{key}"] = groups
    return out


def evaluate_tagger(
    tagger: Tagger,
    examples: Sequence[Example],
    progress: Callable[[int, int], None] | None = None,
    batch_size: int = 256,
) -> dict[str, Any]:
    """Run ``tagger`` over ``examples`` and score it."""
    preds: list[SentencePrediction] = []
    for start in range(0, len(examples), batch_size):
        chunk = examples[start : start + batch_size]
        preds.extend(tagger.predict([ex.text for ex in chunk], [ex.context for ex in chunk]))
        if progress is not None:
            progress(len(preds), len(examples))
    return compute_metrics(examples, preds, tagger.schema)


def headline(metrics: dict[str, Any]) -> dict[str, float]:
    """The few figures the targets are stated in."""
    out: dict[str, float] = {}
    if "stance" in metrics:
        out["stance_macro_f1"] = metrics["stance"]["macro_f1"]
    if "emotions" in metrics:
        out["emotions_macro_f1_7"] = metrics["emotions"]["macro_f1_7"]
        out["emotions_macro_f1_6"] = metrics["emotions"]["macro_f1_6"]
    if "affect_focus" in metrics:
        out["affect_focus_f1"] = metrics["affect_focus"]["f1"]
    return out
