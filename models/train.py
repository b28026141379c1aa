"""Joint fine-tuning of the shared encoder and the three heads, with masked losses.

Batches mix in-domain gold sentences (all three layers) with GoEmotions comments
(emotions only) at a configured share; within windows of batches, items are sorted by
length to cut padding. Early stopping watches a dev score (mean of stance macro-F1,
emotions macro-F1 and affect_focus F1 on the dev splits); the best checkpoint is then
calibrated on dev (stance temperature, per-label thresholds) and written as a model
directory (see models.artifact). Seeded; with the same config, data, thread count and
machine the run is repeated exactly.
"""
from __future__ import annotations

import contextlib
import copy
import json
import logging
import random
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models.artifact import (
    CARD_FILE,
    CONFIG_FILE,
    METRICS_FILE,
    SCHEMA_FILE,
    TOKENIZER_DIR,
    WEIGHTS_FILE,
    Calibration,
    TaggerSpec,
    dir_size,
    load_model_dir,
    publish_dir,
    save_weights,
    write_manifest,
    write_spec,
)
from models.base import resolve_base
from models.calibration import best_threshold, f1_at, fit_temperature, joint_thresholds, sigmoid
from models.config import TrainConfig
from models.data import (
    GOEMOTIONS_SOURCE,
    Example,
    gold_goemotions_ids,
    load_goemotions,
    load_gold,
    subsample,
)
from models.errors import DataError
from models.evaluate import compute_metrics, headline
from models.labels import AFFECT_FOCUS, EMOTIONS, STANCE, LabelSchema, load_label_schema
from models.weight_average import WeightAverage

log = logging.getLogger(__name__)

RUN_FILE = "training_run.json"
LOG_EVERY = 50


@dataclass
class TrainingData:
    train: list[Example]
    dev_indomain: list[Example]
    dev_goemotions: list[Example]  # all of it: calibration
    dev_goemotions_watch: list[Example]  # subsample watched for early stopping
    test_indomain: list[Example]
    test_goemotions: list[Example]
    counts: dict[str, int]


def prepare_data(config: TrainConfig, schema: LabelSchema) -> TrainingData:
    """Gold splits plus GoEmotions, with gold's GoEmotions items kept out of GoEmotions train."""
    gold = load_gold(config.resolve(config.data.gold), schema)
    ge_dir = config.resolve(config.data.goemotions_dir)
    shared_ids = gold_goemotions_ids(gold)
    ge_train: list[Example] = []
    if config.data.goemotions_train_max > 0:
        ge_train = subsample(
            load_goemotions(ge_dir, "train", schema, exclude_ids=shared_ids),
            config.data.goemotions_train_max,
            config.seed,
        )
    ge_dev = load_goemotions(ge_dir, "dev", schema)
    ge_test = load_goemotions(ge_dir, "test", schema) if config.evaluate_test else []
    by_split: dict[str, list[Example]] = {"train": [], "dev": [], "test": []}
    for ex in gold:
        by_split[ex.split].append(ex)
    if not by_split["train"]:
        raise DataError(f"{config.resolve(config.data.gold)}: no sentence has split 'train'")
    if not by_split["dev"]:
        raise DataError(f"{config.resolve(config.data.gold)}: no sentence has split 'dev' (needed for early stopping)")
    counts = {
        "gold_train": len(by_split["train"]),
        "gold_dev": len(by_split["dev"]),
        "gold_test": len(by_split["test"]),
        "goemotions_train_used": len(ge_train),
        "goemotions_excluded_as_in_gold": len(shared_ids),
        "goemotions_dev": len(ge_dev),
        "goemotions_test": len(ge_test),
    }
    for ex in gold:
        key = f"gold_{ex.split}_source={ex.source}"
        counts[key] = counts.get(key, 0) + 1
    counts = dict(sorted(counts.items()))
    return TrainingData(
        train=by_split["train"] + ge_train,
        dev_indomain=by_split["dev"],
        dev_goemotions=ge_dev,
        dev_goemotions_watch=subsample(ge_dev, config.data.goemotions_dev_max, config.seed + 1)
        if config.data.goemotions_dev_max else ge_dev,
        test_indomain=by_split["test"],
        test_goemotions=ge_test,
        counts=counts,
    )


def plan_batches(
    sources: Sequence[Sequence[int]],
    lengths: Sequence[int],
    batch_size: int,
    share: float,
    window: int,
    rng: random.Random,
) -> Iterator[list[int]]:
    """Endless batches of item indices: ``share`` of each window from ``sources[0]`` (in-domain),
    the rest from ``sources[1]``; each source cycles through fresh permutations; items are
    sorted by length within a window and the window's batches shuffled."""

    def cycle(items: Sequence[int]) -> Iterator[int]:
        while True:
            order = list(items)
            rng.shuffle(order)
            yield from order

    indomain, other = sources
    if not other:
        share = 1.0
    if not indomain:
        share = 0.0
    streams = (cycle(indomain) if indomain else None, cycle(other) if other else None)
    total = batch_size * window
    n_in = round(total * share)
    while True:
        items = [next(streams[0]) for _ in range(n_in)] if streams[0] else []  # type: ignore[call-overload]
        items += [next(streams[1]) for _ in range(total - n_in)] if streams[1] else []  # type: ignore[call-overload]
        rng.shuffle(items)
        items.sort(key=lambda i: lengths[i])
        batches = [items[i : i + batch_size] for i in range(0, total, batch_size)]
        rng.shuffle(batches)
        yield from batches


def _targets(examples: Sequence[Example], schema: LabelSchema) -> dict[str, np.ndarray]:
    stance = np.array(
        [schema.stance_labels.index(ex.stance) if ex.stance is not None else -100 for ex in examples],
        dtype=np.int64,
    )
    emotions = np.array(
        [[float(e in (ex.emotions or ())) for e in schema.emotion_labels] for ex in examples], dtype=np.float32
    ).reshape(len(examples), len(schema.emotion_labels))
    return {
        "stance": stance,
        "emotions": emotions,
        "emotions_mask": np.array([ex.emotions is not None for ex in examples], dtype=bool),
        "affect": np.array([float(bool(ex.affect_focus)) for ex in examples], dtype=np.float32),
        "affect_mask": np.array([ex.affect_focus is not None for ex in examples], dtype=bool),
    }


def _threshold(probs: np.ndarray, truth: np.ndarray, min_positives: int) -> float:
    return best_threshold(probs, truth) if truth.sum() >= min_positives else 0.5


def calibrate(
    schema: LabelSchema,
    dev_in: Sequence[Example],
    logits_in: dict[str, np.ndarray],
    dev_ge: Sequence[Example],
    logits_ge: dict[str, np.ndarray],
    min_positives: int = 10,
) -> Calibration:
    """Stance temperature on in-domain dev; emotion thresholds on both devs; affect on in-domain dev.

    Emotion thresholds start at each label's best-F1 value and are then tuned jointly for
    macro-F1 over the six emotions plus neutral (models.calibration.joint_thresholds).
    A threshold is tuned only where dev has at least ``min_positives`` positives; else 0.5.
    """
    t_in, t_ge = _targets(dev_in, schema), _targets(dev_ge, schema)
    rows = t_in["stance"] != -100
    temperature = fit_temperature(logits_in[STANCE][rows], t_in["stance"][rows])
    emo_p, emo_t = _emotion_dev(logits_in, t_in, logits_ge, t_ge)
    start = [_threshold(emo_p[:, j], emo_t[:, j], min_positives) for j in range(emo_t.shape[1])]
    joint = joint_thresholds(emo_p, emo_t, start, tune=emo_t.sum(0) >= min_positives)
    thresholds = {e: round(float(joint[j]), 2) for j, e in enumerate(schema.emotion_labels)}
    aff_rows = t_in["affect_mask"]
    affect = _threshold(sigmoid(logits_in[AFFECT_FOCUS][aff_rows]), t_in["affect"][aff_rows], min_positives)
    if t_in["affect"][aff_rows].sum() < min_positives:
        log.warning(
            "in-domain dev has %d affect_focus positives (< %d): threshold left at 0.5",
            int(t_in["affect"][aff_rows].sum()), min_positives,
        )
    return Calibration(
        stance_temperature=round(temperature, 6),
        emotion_thresholds=thresholds,
        affect_focus_threshold=affect,
    )


def _emotion_dev(
    logits_in: dict[str, np.ndarray], t_in: dict[str, np.ndarray],
    logits_ge: dict[str, np.ndarray], t_ge: dict[str, np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    probs = [sigmoid(logits_in[EMOTIONS][t_in["emotions_mask"]])]
    truth = [t_in["emotions"][t_in["emotions_mask"]]]
    if len(t_ge["stance"]):
        probs.append(sigmoid(logits_ge[EMOTIONS][t_ge["emotions_mask"]]))
        truth.append(t_ge["emotions"][t_ge["emotions_mask"]])
    return np.concatenate(probs), np.concatenate(truth)


def dev_score(
    schema: LabelSchema,
    dev_in: Sequence[Example],
    logits_in: dict[str, np.ndarray],
    dev_ge: Sequence[Example],
    logits_ge: dict[str, np.ndarray],
    min_positives: int = 10,
) -> tuple[float, dict[str, float]]:
    """Early-stopping score: mean of stance macro-F1 (argmax), emotions macro-F1 over the six
    labels and affect_focus F1 (each at its best dev threshold). affect_focus counts only
    with at least ``min_positives`` dev positives (a handful would make the score noise)."""
    from sklearn.metrics import f1_score

    t_in, t_ge = _targets(dev_in, schema), _targets(dev_ge, schema)
    parts: dict[str, float] = {}
    rows = t_in["stance"] != -100
    if rows.any():
        pred = logits_in[STANCE][rows].argmax(1)
        parts["stance_macro_f1"] = float(
            f1_score(t_in["stance"][rows], pred, labels=list(range(len(schema.stance_labels))),
                     average="macro", zero_division=0)
        )
    emo_p, emo_t = _emotion_dev(logits_in, t_in, logits_ge, t_ge)
    if len(emo_t):
        parts["emotions_macro_f1_6"] = float(
            np.mean([f1_at(emo_p[:, j], emo_t[:, j], best_threshold(emo_p[:, j], emo_t[:, j]))
                     for j in range(emo_t.shape[1])])
        )
    aff = t_in["affect_mask"]
    if aff.any() and t_in["affect"][aff].sum() >= min_positives:
        p = sigmoid(logits_in[AFFECT_FOCUS][aff])
        parts["affect_focus_f1"] = f1_at(p, t_in["affect"][aff], best_threshold(p, t_in["affect"][aff]))
    parts = {k: round(v, 6) for k, v in parts.items()}
    return (float(np.mean(list(parts.values()))) if parts else 0.0), parts


def _build_net(config: TrainConfig, base_path: Path, schema: LabelSchema) -> tuple[Any, int, dict[str, Any]]:
    from models.architecture import TaggerNet, add_lora, freeze_below, load_encoder

    encoder = load_encoder(base_path)
    hidden = int(encoder.config.hidden_size)
    encoder_config = encoder.config.to_dict()
    m = config.model
    if m.finetune == "lora":
        encoder = add_lora(encoder, m.lora_r, m.lora_alpha, m.lora_dropout, m.lora_targets, m.train_layers_from)
    else:
        freeze_below(encoder, m.train_layers_from, m.freeze_word_embeddings)
    net = TaggerNet(encoder, hidden, schema, head_dropout=m.head_dropout)
    if m.head_init_seed is not None:
        import torch

        # a forked generator: the run's own random stream (dropout, ...) is left as it was
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(m.head_init_seed)
            for head in net.heads.values():
                head.reset_parameters()  # type: ignore[operator]  # nn.Linear's, which mypy cannot see
    return net, hidden, encoder_config


def _optimizer(net: Any, config: TrainConfig) -> tuple[Any, Any]:
    import torch

    o = config.optim
    groups: dict[tuple[bool, bool], list[Any]] = {}
    for name, p in net.named_parameters():
        if not p.requires_grad:
            continue
        is_head = name.startswith("heads.")
        no_decay = p.ndim < 2 or "LayerNorm" in name or "layer_norm" in name
        groups.setdefault((is_head, no_decay), []).append(p)
    params = [
        {
            "params": ps,
            "lr": o.lr_heads if is_head else o.lr_encoder,
            "weight_decay": 0.0 if no_decay else o.weight_decay,
        }
        for (is_head, no_decay), ps in sorted(groups.items())
    ]
    optimizer = torch.optim.AdamW(params)

    def schedule(step: int) -> float:
        if step < o.warmup_steps:
            return (step + 1) / (o.warmup_steps + 1)
        return max(0.0, (o.max_steps - step) / max(1, o.max_steps - o.warmup_steps))

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)


def drop_contexts(
    batch: Sequence[int], rows: Sequence[list[int]], sentence_lengths: Sequence[int], share: float,
    rng: random.Random,
) -> list[list[int]]:
    """The batch's rows, each cut to its sentence (read without its context, exactly as
    `encode` gives the sentence alone) with probability ``share``.

    No random draw at all when ``share`` is 0, so such a run is the same as before the
    option existed.
    """
    if share <= 0:
        return [rows[i] for i in batch]
    return [rows[i][:sentence_lengths[i]] if rng.random() < share else rows[i] for i in batch]


def int8_calibration_items(train: Sequence[Example], seed: int) -> list[Example]:
    """The training items an int8 calibration is measured on: every in-domain item, and a
    seeded sample of GoEmotions comments (models.int8_smoothing.GOEMOTIONS_CALIBRATION_ITEMS)."""
    from models.int8_smoothing import GOEMOTIONS_CALIBRATION_ITEMS

    indomain = [ex for ex in train if ex.source != GOEMOTIONS_SOURCE]
    comments = [ex for ex in train if ex.source == GOEMOTIONS_SOURCE]
    return indomain + subsample(comments, GOEMOTIONS_CALIBRATION_ITEMS, seed)


def write_int8_calibration(net: Any, tokenizer: Any, items: Sequence[Example], max_length: int,
                           context_tokens: int, folder: Path) -> bool:
    """Measure float32 `net`'s input ranges on `items` (read as the tagger reads them) and
    write them to ``folder``'s int8 calibration file; False (nothing written) when the
    encoder is not BERT-shaped, so int8 then runs unsmoothed."""
    from models.int8_smoothing import RANGES_FILE, measure_input_ranges, save_ranges
    from models.tagger import attach_context, encode

    ids = encode(tokenizer, [ex.text for ex in items], max_length)
    ids, lengths = attach_context(tokenizer, ids, [ex.context for ex in items], max_length, context_tokens)
    ranges = measure_input_ranges(net, ids, int(tokenizer.pad_token_id or 0), lengths)
    if not ranges:
        log.warning("the encoder is not BERT-shaped: no int8 calibration written (int8 runs unsmoothed)")
        return False
    save_ranges(ranges, folder / RANGES_FILE)
    return True


def _as_loaded(net: Any, finetune: str) -> Any:
    """`net` as models.artifact.load_model_dir will rebuild it: LoRA adapters merged into the
    encoder (a copy; `net` keeps its adapters)."""
    if finetune != "lora":
        return net
    merged = copy.deepcopy(net)
    merged.encoder = merged.encoder.merge_and_unload()
    return merged


def _set_seed(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def training_device(name: str) -> Any:
    """The torch device to train on: "cpu" (the default, reproducible), or "cuda" / "cuda:N"
    where torch sees that GPU. Anything else, or a GPU torch cannot see, is a ValueError."""
    import torch

    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"unknown training device {name!r}; use cpu or cuda") from None
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"training device {name!r} is not supported; use cpu or cuda")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"training device {name!r}: torch sees no CUDA GPU here (torch {torch.__version__})")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"training device {name!r}: torch sees {torch.cuda.device_count()} GPU(s)")
    return device


def train_model(config: TrainConfig, output_dir: Path, device: str = "cpu") -> Path:
    """Train, calibrate, evaluate and write a model directory at ``output_dir`` (must not exist).

    Returns ``output_dir``. Test-split metrics are computed only after the model is
    fixed, and only when ``config.evaluate_test`` is set. ``device`` is where the training
    steps and the dev evaluations during training run (`training_device`); calibration,
    the final figures and the written model are computed on the CPU in float32 either
    way. A run is repeated exactly on the CPU; on a GPU, only as closely as its kernels allow.
    """
    import torch
    from transformers import AutoTokenizer

    from models.architecture import Targets, masked_losses, trainable_state
    from models.card import render_model_card
    from models.tagger import (
        TransformerTagger,
        attach_context,
        batched_logits,
        encode,
        pad_batch,
        predictions_from_logits,
    )

    output_dir = Path(output_dir)
    if output_dir.exists():
        raise FileExistsError(f"{output_dir} already exists; choose a new version or output folder")
    train_device = training_device(device)
    started = time.monotonic()
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(config.num_threads)
    try:
        _set_seed(config.seed)
        schema_path = config.resolve(config.data.label_schema)
        schema = load_label_schema(schema_path)
        base = resolve_base(config.base.model, config.base.sha256, config.base.revision, config.base.allow_download)
        log.info("base encoder %s (sha256 %s...) verified", config.base.model, base.sha256[:12])
        tokenizer = AutoTokenizer.from_pretrained(str(base.path), local_files_only=True, trust_remote_code=False)
        pad_id = int(tokenizer.pad_token_id or 0)
        data = prepare_data(config, schema)
        log.info("data: %s", json.dumps(data.counts, sort_keys=True))

        net, hidden, encoder_config = _build_net(config, base.path, schema)
        net.to(train_device)
        n_train = sum(p.numel() for p in net.parameters() if p.requires_grad)
        log.info("trainable parameters: %d (%s fine-tuning)", n_train, config.model.finetune)

        # never beyond what the encoder's position embeddings allow
        max_len = min(config.model.max_length, int(encoder_config.get("max_position_embeddings", 10**6)))
        context_tokens = config.model.context_tokens

        def encoded(examples: Sequence[Example]) -> tuple[list[list[int]], list[int]]:
            ids = encode(tokenizer, [ex.text for ex in examples], max_len)
            return attach_context(tokenizer, ids, [ex.context for ex in examples], max_len, context_tokens)

        train_ids, train_sentence_lengths = encoded(data.train)
        # context dropout draws from its own seeded stream, so a config without it trains
        # exactly as before
        dropout_rng = random.Random(config.seed + 1)
        dev_in_ids, dev_in_lengths = encoded(data.dev_indomain)
        dev_ge_ids = encode(tokenizer, [ex.text for ex in data.dev_goemotions_watch], max_len)
        targets = _targets(data.train, schema)
        lengths = [len(t) for t in train_ids]
        indomain_idx = [i for i, ex in enumerate(data.train) if ex.source != GOEMOTIONS_SOURCE]
        ge_idx = [i for i, ex in enumerate(data.train) if ex.source == GOEMOTIONS_SOURCE]
        batches = plan_batches(
            (indomain_idx, ge_idx), lengths, config.optim.batch_size, config.data.indomain_share,
            config.optim.bucket_batches, random.Random(config.seed),
        )
        optimizer, scheduler = _optimizer(net, config)
        o = config.optim
        weights = {STANCE: o.loss_weight_stance, EMOTIONS: o.loss_weight_emotions, AFFECT_FOCUS: o.loss_weight_affect_focus}

        def evaluate_dev() -> tuple[float, dict[str, float]]:
            # dev batches may mix widths (one_width=False): the dev set is the same at every
            # evaluation, so its logits are reproducible anyway, and 1.2.0 was selected so
            li = batched_logits(net, dev_in_ids, pad_id, 128, dev_in_lengths, one_width=False, device=train_device)
            lg = batched_logits(net, dev_ge_ids, pad_id, 128, one_width=False, device=train_device)
            return dev_score(schema, data.dev_indomain, li, data.dev_goemotions_watch, lg, o.min_dev_positives)

        average = WeightAverage(net, o.ema_decay) if o.ema_decay > 0 else None
        best_score, best_step, best_state, bad = -1.0, 0, trainable_state(net), 0
        curve: list[dict[str, Any]] = []
        running: dict[str, float] = {}
        seen = 0
        tick = time.monotonic()
        net.train()
        step = 0
        stopped_early = False
        for step in range(1, o.max_steps + 1):
            idx = next(batches)
            rows = drop_contexts(idx, train_ids, train_sentence_lengths, config.model.context_dropout, dropout_rng)
            batch = [None if x is None else x.to(train_device)
                     for x in pad_batch(rows, pad_id, [train_sentence_lengths[i] for i in idx])]
            t = Targets(
                stance=torch.from_numpy(targets["stance"][idx]).to(train_device),
                emotions=torch.from_numpy(targets["emotions"][idx]).to(train_device),
                emotions_mask=torch.from_numpy(targets["emotions_mask"][idx]).to(train_device),
                affect_focus=torch.from_numpy(targets["affect"][idx]).to(train_device),
                affect_focus_mask=torch.from_numpy(targets["affect_mask"][idx]).to(train_device),
            )
            with torch.autocast(train_device.type, dtype=torch.bfloat16, enabled=o.bf16):
                logits = net(*batch)
            losses = masked_losses(logits, t, affect_pos_weight=o.affect_focus_pos_weight)
            loss = sum(weights[k] * v for k, v in losses.items())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[union-attr]
            torch.nn.utils.clip_grad_norm_([p for p in net.parameters() if p.requires_grad], o.grad_clip)
            optimizer.step()
            scheduler.step()
            if average is not None:
                average.update(step)
            seen += len(idx)
            for k, v in losses.items():
                running[k] = running.get(k, 0.0) + float(v.detach())
            running["_n"] = running.get("_n", 0.0) + 1
            if step % LOG_EVERY == 0:
                elapsed = time.monotonic() - started
                rate = seen / (time.monotonic() - tick)
                n = running.pop("_n")
                log.info(
                    "step %d/%d  loss %s  %.0f items/s  elapsed %.0fs  eta(max) %.0fs",
                    step, o.max_steps,
                    " ".join(f"{k}={v / n:.3f}" for k, v in sorted(running.items())),
                    rate, elapsed, (o.max_steps - step) * o.batch_size / max(rate, 1e-9),
                )
                running, seen, tick = {}, 0, time.monotonic()
            if step % o.eval_every == 0 or step == o.max_steps:
                with average.swapped_in() if average is not None else contextlib.nullcontext():
                    score, parts = evaluate_dev()
                    improved = score > best_score
                    if improved:  # the weights just evaluated: the average's, when averaging
                        best_score, best_step, best_state, bad = score, step, trainable_state(net), 0
                curve.append({"step": step, "score": round(score, 6), **parts})
                log.info("dev at step %d: score %.4f %s%s", step, score, parts, "  (best)" if improved else "")
                if not improved:
                    bad += 1
                    if bad >= o.patience:
                        log.info("early stop at step %d; best step %d", step, best_step)
                        stopped_early = True
                        break
        train_seconds = time.monotonic() - started
        # calibration, evaluation and writing on the CPU, whatever trained the weights
        net.to("cpu")
        store_dtype = getattr(torch, config.model.store_dtype)
        best_state = {name: t.to("cpu", store_dtype) for name, t in best_state.items()}
        with torch.no_grad():  # from here on the network holds exactly the stored weights
            params = dict(net.named_parameters())
            for name, tensor in best_state.items():
                params[name].copy_(tensor)

        logits_in = batched_logits(net, dev_in_ids, pad_id, 128, dev_in_lengths, one_width=False)
        logits_ge = batched_logits(
            net, encode(tokenizer, [ex.text for ex in data.dev_goemotions], max_len), pad_id, 128, one_width=False
        )
        calibration = calibrate(
            schema, data.dev_indomain, logits_in, data.dev_goemotions, logits_ge, o.min_dev_positives
        )
        log.info("calibration: %s", calibration.model_dump())
        dev_metrics = {
            "indomain": compute_metrics(
                data.dev_indomain, predictions_from_logits(logits_in, schema, calibration), schema
            ),
            "goemotions": compute_metrics(
                data.dev_goemotions, predictions_from_logits(logits_ge, schema, calibration), schema
            ),
        }

        staging = output_dir.parent / f".tmp-{output_dir.name}"
        if staging.exists():
            shutil.rmtree(staging)
        staging.mkdir(parents=True)
        m = config.model
        spec = TaggerSpec(
            model_id=config.model_id,
            version=config.version,
            base_model=config.base.model,
            base_sha256=base.sha256,
            base_revision=config.base.revision,
            encoder_config=encoder_config,
            hidden_size=hidden,
            finetune=m.finetune,
            lora_r=m.lora_r if m.finetune == "lora" else None,
            lora_alpha=m.lora_alpha if m.finetune == "lora" else None,
            lora_targets=list(m.lora_targets) if m.finetune == "lora" else None,
            lora_layers_from=m.train_layers_from if m.finetune == "lora" else None,
            max_length=max_len,
            context_tokens=context_tokens,
            trained_tensors=sorted(best_state),
            schema_version=schema.version,
            schema_fingerprint=schema.fingerprint,
            calibration=calibration,
            train_config_fingerprint=config.fingerprint,
        )
        # one metadata key only: safetensors writes metadata in hash-map order, which varies
        save_weights(best_state, staging / WEIGHTS_FILE, metadata={"format": "pt"})
        write_spec(staging, spec)
        tokenizer.save_pretrained(str(staging / TOKENIZER_DIR))
        write_int8_calibration(_as_loaded(net, m.finetune), tokenizer, int8_calibration_items(data.train, config.seed),
                               max_len, context_tokens, staging)
        shutil.copyfile(schema_path, staging / SCHEMA_FILE)
        (staging / CONFIG_FILE).write_text(config.to_toml())

        metrics: dict[str, Any] = {
            "model": spec.ref,
            "label_schema": schema.ref,
            "train_config_fingerprint": config.fingerprint,
            "data": data.counts,
            "training": {
                "best_step": best_step,
                "last_step": step,
                "stopped_early": stopped_early,
                "best_dev_score": round(best_score, 6),
                "dev_curve": curve,
            },
            "calibration": calibration.model_dump(),
            "dev": dev_metrics,
        }
        if config.evaluate_test:
            write_manifest(staging)
            tagger = TransformerTagger(load_model_dir(staging, expected_schema=schema))
            test: dict[str, Any] = {}
            for name, examples in (("indomain", data.test_indomain), ("goemotions", data.test_goemotions)):
                if examples:
                    predictions = tagger.predict([ex.text for ex in examples], [ex.context for ex in examples])
                    test[name] = compute_metrics(examples, predictions, schema)
                    log.info("test %s: %s", name, headline(test[name]))
            metrics["test"] = test
        (staging / METRICS_FILE).write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
        (staging / CARD_FILE).write_text(render_model_card(spec, config, schema, metrics))
        total_seconds = time.monotonic() - started
        run = {
            "train_seconds": round(train_seconds, 1),
            "total_seconds": round(total_seconds, 1),
            "num_threads": config.num_threads,
            "torch": torch.__version__,
            "device": str(train_device) if train_device.type == "cpu"
            else f"{train_device} ({torch.cuda.get_device_name(train_device)})",
        }
        (staging / RUN_FILE).write_text(json.dumps(run, indent=2, sort_keys=True) + "\n")
        write_manifest(staging)
        publish_dir(staging, output_dir)
        log.info(
            "model %s written to %s (%.1f MB) in %.0fs", spec.ref, output_dir, dir_size(output_dir) / 1e6, total_seconds
        )
        return output_dir
    finally:
        torch.set_num_threads(previous_threads)
