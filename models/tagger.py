"""Inference: a loaded model directory as a `pipeline.tag.Tagger`.

Texts are tokenized, sorted by length and run in batches under `torch.inference_mode`;
results come back in input order. Inputs longer than the model's ``max_length`` tokens
are scored in overlapping windows (stance logits averaged, emotion and affect-focus
logits maximised); `predict_windowed` says which, for the run report. A model trained with
context (``context_tokens`` > 0) reads the end of the preceding talk after each sentence.
"""
from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from models.artifact import Calibration, LoadedModel
from models.calibration import sigmoid, softmax
from models.labels import AFFECT_FOCUS, EMOTIONS, STANCE, LabelSchema
from pipeline.tag import DEFAULT_BATCH_SIZE, SentencePrediction

PROB_DIGITS = 6


def encode(tokenizer: Any, texts: Sequence[str], max_length: int) -> list[list[int]]:
    """Token ids per text, truncated to ``max_length`` (special tokens included)."""
    if not texts:
        return []
    return tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]  # type: ignore[no-any-return]


def attach_context(
    tokenizer: Any, token_ids: Sequence[list[int]], contexts: Sequence[str], max_length: int, context_tokens: int
) -> tuple[list[list[int]], list[int]]:
    """Append the last ``context_tokens`` tokens of each context after its sentence.

    ``[CLS] sentence [SEP]`` becomes ``[CLS] sentence [SEP] context-tail [SEP]``; the
    context is cut from the left (the words nearest the sentence matter most) and never
    pushes the whole input past ``max_length``. Returns the new ids and, per item, the
    length of its sentence part (what the network pools over).
    """
    sentence_lengths = [len(row) for row in token_ids]
    if context_tokens <= 0 or not token_ids:
        return [list(row) for row in token_ids], sentence_lengths
    # a context token is rarely shorter than 2 characters: cut long contexts before tokenizing
    clipped = [c[-context_tokens * 12:] for c in contexts]
    context_ids = tokenizer(clipped, add_special_tokens=False)["input_ids"]
    sep = int(tokenizer.sep_token_id)
    rows = []
    for row, ctx in zip(token_ids, context_ids):
        room = min(context_tokens, max_length - len(row) - 1)
        tail = ctx[-room:] if room > 0 and ctx else []
        rows.append([*row, *tail, sep] if tail else list(row))
    return rows, sentence_lengths


def batched_logits(
    net: Any, token_ids: Sequence[Sequence[int]], pad_id: int, batch_size: int = 64,
    sentence_lengths: Sequence[int] | None = None, one_width: bool = True, device: Any = None,
) -> dict[str, np.ndarray]:
    """Run the network over all items (length-sorted batches); logits in input order.

    ``sentence_lengths`` (from `attach_context`) marks where each item's context begins;
    ``one_width`` as in `token_budget_batches`; ``device``: where the network's weights are
    (training on a GPU), None for the CPU.
    """
    import torch

    n = len(token_ids)
    out = {
        STANCE: np.zeros((n, net.heads[STANCE].out_features), dtype=np.float32),
        EMOTIONS: np.zeros((n, net.heads[EMOTIONS].out_features), dtype=np.float32),
        AFFECT_FOCUS: np.zeros((n,), dtype=np.float32),
    }
    order = sorted(range(n), key=lambda i: (len(token_ids[i]), i))
    # a network may ask for its own padding step (the int8 one on ONNX Runtime: exact widths)
    multiple = getattr(net, "pad_multiple", PAD_MULTIPLE)
    was_training = net.training
    net.eval()
    try:
        with torch.inference_mode():
            for idx in token_budget_batches(order, [len(token_ids[i]) for i in order], batch_size, one_width,
                                            pad_multiple=multiple):
                lengths = [sentence_lengths[i] for i in idx] if sentence_lengths is not None else None
                batch: tuple[Any, ...] = pad_batch([token_ids[i] for i in idx], pad_id, lengths,
                                                   pad_multiple=multiple)
                if device is not None:
                    batch = tuple(None if x is None else x.to(device) for x in batch)
                logits = net(*batch)
                for name, arr in out.items():
                    arr[idx] = logits[name].float().cpu().numpy()
    finally:
        net.train(was_training)
    return out


PAD_MULTIPLE = 8

#: padded tokens per batch, as a multiple of the batch size: short sentences fill whole
#: batches, long ones (with context, up to max_length) come in fewer rows, so the largest
#: activations, and with them peak memory, stay the same whatever the corpus holds
TOKENS_PER_ROW = 40


def padded_width(length: int, multiple: int = PAD_MULTIPLE) -> int:
    """The width a row of `length` tokens is padded to: by default widths in steps of 8, so
    torch's CPU kernels' per-shape caches stay small."""
    return -(-length // multiple) * multiple


def token_budget_batches(order: Sequence[int], lengths: Sequence[int], batch_size: int,
                         one_width: bool = True, pad_multiple: int = PAD_MULTIPLE) -> list[list[int]]:
    """Split length-sorted ``order`` into batches of at most ``batch_size`` rows and
    ``batch_size * TOKENS_PER_ROW`` padded tokens (``lengths`` align with ``order``).

    With ``one_width`` a batch never mixes rows of different padded widths, so every row is
    padded to its own width whatever else is tagged with it: a sentence's logits then do
    not depend on its neighbours (in bfloat16 the padded width moves logits by up to 0.06;
    the number of rows, their order and the thread count do not move them at all), and the
    same transcript gets the same labels in any run, group or orchestrator.
    """
    budget = batch_size * TOKENS_PER_ROW
    batches: list[list[int]] = []
    current: list[int] = []
    width = 0
    for item, length in zip(order, lengths):
        new_width = one_width and padded_width(length, pad_multiple) != width
        if current and (new_width or len(current) == batch_size or (len(current) + 1) * length > budget):
            batches.append(current)
            current = []
        current.append(item)
        width = padded_width(length, pad_multiple)
    if current:
        batches.append(current)
    return batches


def pad_batch(
    rows: Sequence[Sequence[int]], pad_id: int, sentence_lengths: Sequence[int] | None = None,
    pad_multiple: int = PAD_MULTIPLE,
) -> tuple[Any, Any, Any, Any]:
    """Padded tensors for the network: ids, attention mask, token types, pooling mask.

    Without ``sentence_lengths`` every row is all sentence: token types and pooling mask
    are None (the network then pools over the attention mask).
    """
    import torch

    width = padded_width(max(len(r) for r in rows), pad_multiple)
    row_lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
    # built in numpy and handed to torch without a copy: a tensor per row cost about 3% of a
    # run's tagging time (py-spy on PriMock57)
    positions = np.arange(width)
    filled = positions < row_lengths[:, None]
    mask = filled.astype(np.int64)
    ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    ids[filled] = np.fromiter(itertools.chain.from_iterable(rows), dtype=np.int64, count=int(row_lengths.sum()))
    if sentence_lengths is None or all(n == len(r) for n, r in zip(sentence_lengths, rows)):
        return torch.from_numpy(ids), torch.from_numpy(mask), None, None
    sentence = positions < np.asarray(sentence_lengths, dtype=np.int64)[:, None]
    types = (filled & ~sentence).astype(np.int64)
    return torch.from_numpy(ids), torch.from_numpy(mask), torch.from_numpy(types), torch.from_numpy(sentence.astype(np.int64))


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
                for a, b in itertools.pairwise(bounds)]
        out[name] = np.stack(rows).astype(np.float32) if rows else array[:0]
    return out


class TransformerTagger:
    """A fine-tuned model directory behind the `pipeline.tag.Tagger` protocol."""

    def __init__(self, loaded: LoadedModel, batch_size: int = DEFAULT_BATCH_SIZE, precision: str = "float32"):
        self._loaded = loaded
        self.batch_size = batch_size
        self.precision = precision
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

    @property
    def batch_invariant(self) -> bool:
        """Whether a text's logits are the same whatever else a call holds. In bfloat16 they
        depend only on the text and its padded width (batches of one width, above), not on
        the number of rows, their order, their content or the thread count; in float32 the
        matrix products' blocking follows the number of rows and moves logits by up to 2e-6
        (enough to change a probability's sixth digit), and int8 quantises each batch's
        activations with one scale. Measured with the shipped model on this project's CPU
        (docs/performance.md); `tests/trust/test_same_bytes_real_model.py` checks it where
        it runs."""
        return self.precision == "bfloat16"

    @property
    def context_tokens(self) -> int:
        """How many tokens of preceding talk the model reads with each sentence (0: none)."""
        return self._loaded.spec.context_tokens

    def logits(self, texts: Sequence[str], contexts: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        return self._logits_and_windows(texts, contexts)[0]

    def _logits_and_windows(self, texts: Sequence[str], contexts: Sequence[str] | None
                            ) -> tuple[dict[str, np.ndarray], list[int]]:
        """Logits per text, and how many windows each text was scored in."""
        spec = self._loaded.spec
        ids, counts = encode_windows(self._loaded.tokenizer, texts, spec.max_length)
        lengths = None
        if contexts is not None and spec.context_tokens:
            # a sentence scored in windows fills them itself: only one-window sentences get context
            per_window = [ctx if n == 1 else "" for ctx, n in zip(contexts, counts) for _ in range(n)]
            ids, lengths = attach_context(self._loaded.tokenizer, ids, per_window, spec.max_length,
                                          spec.context_tokens)
        with self._autocast():
            logits = batched_logits(self._loaded.net, ids, self._pad_id, self.batch_size, lengths)
        return pool_windows(logits, counts), counts

    @contextlib.contextmanager
    def lanes(self, count: int) -> Iterator[None]:
        """Inside the block `count` threads call the tagger at once: torch's threads are
        divided among them (a process-wide setting, restored after), so each caller runs on
        its own core(s) instead of all of them contending for every core."""
        import torch

        previous = torch.get_num_threads()
        torch.set_num_threads(max(1, previous // max(1, count)))
        try:
            yield
        finally:
            torch.set_num_threads(previous)

    def _autocast(self) -> Any:
        import torch

        if self.precision == "bfloat16":  # matrix products in bfloat16, sums and softmax in float32
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def predict(self, texts: Sequence[str], contexts: Sequence[str] | None = None) -> list[SentencePrediction]:
        """Labels for ``texts``; ``contexts[i]`` is the talk before ``texts[i]`` (see
        `pipeline.context.preceding_context`), used when the model was trained with it."""
        return self.predict_windowed(texts, contexts)[0]

    def predict_windowed(self, texts: Sequence[str], contexts: Sequence[str] | None = None
                         ) -> tuple[list[SentencePrediction], list[bool]]:
        """`predict`, and for each text whether it was longer than the model's window and so
        scored in overlapping windows (without context). Safe to call from parallel threads."""
        if not texts:
            return [], []
        if contexts is not None and len(contexts) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(contexts)} contexts")
        logits, counts = self._logits_and_windows(texts, contexts)
        return predictions_from_logits(logits, self.schema, self._loaded.spec.calibration), [n > 1 for n in counts]
