"""Inference: a loaded model directory as a `pipeline.tag.Tagger`.

Texts are tokenized, sorted by length and run in batches under `torch.inference_mode`;
results come back in input order. Inputs longer than the model's ``max_length`` tokens
are scored in overlapping windows (stance logits averaged, emotion and affect-focus
logits maximised); `windowed_texts` counts them for the run report.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from models.artifact import Calibration, LoadedModel
from models.calibration import sigmoid, softmax
from models.labels import AFFECT_FOCUS, EMOTIONS, STANCE, LabelSchema
from pipeline.tag import SentencePrediction

PROB_DIGITS = 6


def encode(tokenizer: Any, texts: Sequence[str], max_length: int) -> list[list[int]]:
    """Token ids per text, truncated to ``max_length`` (special tokens included)."""
    if not texts:
        return []
    return tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]  # type: ignore[no-any-return]


def batched_logits(
    net: Any, token_ids: Sequence[Sequence[int]], pad_id: int, batch_size: int = 64
) -> dict[str, np.ndarray]:
    """Run the network over all items (length-sorted batches); logits in input order."""
    import torch

    n = len(token_ids)
    out = {
        STANCE: np.zeros((n, net.heads[STANCE].out_features), dtype=np.float32),
        EMOTIONS: np.zeros((n, net.heads[EMOTIONS].out_features), dtype=np.float32),
        AFFECT_FOCUS: np.zeros((n,), dtype=np.float32),
    }
    order = sorted(range(n), key=lambda i: (len(token_ids[i]), i))
    was_training = net.training
    net.eval()
    try:
        with torch.inference_mode():
            for start in range(0, n, batch_size):
                idx = order[start : start + batch_size]
                ids, mask = pad_batch([token_ids[i] for i in idx], pad_id)
                logits = net(ids, mask)
                for name, arr in out.items():
                    arr[idx] = logits[name].float().numpy()
    finally:
        net.train(was_training)
    return out


def pad_batch(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[Any, Any]:
    import torch

    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r, dtype=torch.long)
        mask[i, : len(r)] = 1
    return ids, mask


def predictions_from_logits(
    logits: dict[str, np.ndarray], schema: LabelSchema, calibration: Calibration
) -> list[SentencePrediction]:
    """Calibrated probabilities and decisions for every row of ``logits``."""
    stance_p = softmax(logits[STANCE], calibration.stance_temperature)
    emo_p = sigmoid(logits[EMOTIONS])
    aff_p = sigmoid(logits[AFFECT_FOCUS])
    stance_labels, emo_labels = schema.stance_labels, schema.emotion_labels
    thresholds = np.array([calibration.emotion_thresholds.get(e, 0.5) for e in emo_labels])
    preds = []
    for i in range(len(aff_p)):
        s_probs = {lab: round(float(stance_p[i, j]), PROB_DIGITS) for j, lab in enumerate(stance_labels)}
        e_probs = {lab: round(float(emo_p[i, j]), PROB_DIGITS) for j, lab in enumerate(emo_labels)}
        a_prob = round(float(aff_p[i]), PROB_DIGITS)
        preds.append(
            SentencePrediction(
                stance=stance_labels[int(np.argmax(stance_p[i]))],
                stance_probs=s_probs,
                emotions=[lab for j, lab in enumerate(emo_labels) if emo_p[i, j] >= thresholds[j]],
                emotion_probs=e_probs,
                affect_focus=bool(aff_p[i] >= calibration.affect_focus_threshold),
                affect_focus_prob=a_prob,
            )
        )
    return preds


WINDOW_STRIDE = 32  # tokens shared by consecutive windows


def encode_windows(tokenizer: Any, texts: Sequence[str], max_length: int,
                   stride: int = WINDOW_STRIDE) -> tuple[list[list[int]], list[int]]:
    """Token ids of every window of every text, and how many windows each text has."""
    if not texts:
        return [], []
    stride = min(stride, max_length // 4)  # below the room left by the special tokens
    encoded = tokenizer(list(texts), truncation=True, max_length=max_length, stride=stride,
                        return_overflowing_tokens=True)
    counts = [0] * len(texts)
    for owner in encoded["overflow_to_sample_mapping"]:
        counts[owner] += 1
    return list(encoded["input_ids"]), counts


def pool_windows(logits: dict[str, np.ndarray], counts: Sequence[int]) -> dict[str, np.ndarray]:
    """One row of logits per text: stance averaged over its windows, the others maximised."""
    bounds = np.cumsum([0, *counts])
    out = {}
    for name, array in logits.items():
        rows = [array[a:b].mean(axis=0) if name == STANCE else array[a:b].max(axis=0)
                for a, b in zip(bounds[:-1], bounds[1:])]
        out[name] = np.stack(rows).astype(np.float32) if rows else array[:0]
    return out


class TransformerTagger:
    """A fine-tuned model directory behind the `pipeline.tag.Tagger` protocol."""

    def __init__(self, loaded: LoadedModel, batch_size: int = 64):
        self._loaded = loaded
        self.batch_size = batch_size
        self.windowed_texts = 0  # texts longer than max_length, scored in windows (run report)
        pad = loaded.tokenizer.pad_token_id
        self._pad_id = int(pad) if pad is not None else 0

    @property
    def model_ref(self) -> str:
        return self._loaded.spec.ref

    @property
    def schema(self) -> LabelSchema:
        return self._loaded.schema

    @property
    def path(self) -> Any:
        return self._loaded.path

    @property
    def max_length(self) -> int:
        return self._loaded.spec.max_length

    def logits(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        ids, counts = encode_windows(self._loaded.tokenizer, texts, self._loaded.spec.max_length)
        self.windowed_texts += sum(1 for c in counts if c > 1)
        return pool_windows(batched_logits(self._loaded.net, ids, self._pad_id, self.batch_size), counts)

    def predict(self, texts: Sequence[str]) -> list[SentencePrediction]:
        if not texts:
            return []
        return predictions_from_logits(self.logits(texts), self.schema, self._loaded.spec.calibration)
