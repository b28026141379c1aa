"""Training configuration: TOML in configs/train/, validated once into frozen pydantic models.

Relative paths in a config are relative to the repository root (``PROJECT_ROOT``), not
to the working directory, so the same file gives the same run from anywhere.
"""
from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from models.base import DEFAULT_BASE

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TRAIN_CONFIG = PROJECT_ROOT / "configs" / "train" / "default.toml"


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class BaseConfig(_Strict):
    """Which pretrained encoder to start from (see models.base)."""

    model: str = DEFAULT_BASE
    #: sha256 of the base's model.safetensors; known bases (the default) are pinned in code
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    revision: str | None = None
    allow_download: bool = False


class DataConfig(_Strict):
    gold: Path = Path("data/annotation/gold.jsonl")
    goemotions_dir: Path = Path("../shared/data/goemotions/ekman")
    label_schema: Path = Path("configs/labels/v1.toml")
    #: cap on GoEmotions train items used (seeded subsample); 0 means none at all
    goemotions_train_max: int = Field(default=20000, ge=0)
    #: expected share of in-domain items in each training batch (the rest is GoEmotions)
    indomain_share: float = Field(default=0.3, gt=0.0, le=1.0)
    #: GoEmotions dev items watched for early stopping (0 = all); calibration uses all
    goemotions_dev_max: int = Field(default=0, ge=0)


class ModelConfig(_Strict):
    finetune: Literal["lora", "full"] = "lora"
    lora_r: int = Field(default=16, ge=1)
    lora_alpha: float = 32.0
    lora_dropout: float = Field(default=0.1, ge=0.0, lt=1.0)
    lora_targets: tuple[str, ...] = ("query", "key", "value", "dense")
    #: full fine-tuning only: keep the word-embedding matrix frozen (half of MiniLM's weights)
    freeze_word_embeddings: bool = True
    #: adapt only transformer layers with index >= this (0 = all). In full mode the
    #: embeddings and lower layers are frozen; in LoRA mode they get no adapters. Gradients
    #: then stop at that layer, which makes CPU training faster.
    train_layers_from: int = Field(default=0, ge=0)
    #: dtype of the stored trained tensors; the trained weights are rounded to it before
    #: calibration and evaluation, so the figures describe exactly the stored model
    store_dtype: Literal["float32", "float16"] = "float32"
    head_dropout: float = Field(default=0.1, ge=0.0, lt=1.0)
    max_length: int = Field(default=128, ge=8, le=512)
    #: tokens of the preceding talk (end of the previous turn and of this turn before the
    #: sentence) read after each sentence; 0 = the sentence alone. The codebook reads every
    #: sentence in its turn and the turn before, so short replies ("Massive.") need it.
    context_tokens: int = Field(default=0, ge=0, le=256)
    #: training only: the share of in-domain training items read without their context,
    #: drawn afresh at every step, so the model also labels a sentence given alone
    #: (`epistance tag` without "context", notebooks) about as well as one that never read context
    context_dropout: float = Field(default=0.0, ge=0.0, le=1.0)
    #: the seed of the heads' initial weights (default: drawn from the run's seed, as
    #: always). Runs that differ only in ``seed`` but share this start their heads alike,
    #: which keeps their weights averageable (docs/model.md, "Averaging seeds")
    head_init_seed: int | None = None


class OptimConfig(_Strict):
    batch_size: int = Field(default=32, ge=1)
    lr_encoder: float = Field(default=5e-4, gt=0)
    lr_heads: float = Field(default=2e-3, gt=0)
    weight_decay: float = Field(default=0.01, ge=0)
    warmup_steps: int = Field(default=100, ge=0)
    max_steps: int = Field(default=3000, ge=1)
    eval_every: int = Field(default=300, ge=1)
    #: stop after this many evaluations without improvement of the dev score
    patience: int = Field(default=3, ge=1)
    grad_clip: float = Field(default=1.0, gt=0)
    loss_weight_stance: float = Field(default=1.0, ge=0)
    loss_weight_emotions: float = Field(default=1.0, ge=0)
    loss_weight_affect_focus: float = Field(default=1.0, ge=0)
    #: weight of positive affect_focus examples in its loss (positives are rare)
    affect_focus_pos_weight: float = Field(default=1.0, gt=0)
    #: a sigmoid layer's dev F1 counts towards early stopping, and its threshold is tuned
    #: on dev, only with at least this many dev positives; otherwise the threshold is 0.5
    min_dev_positives: int = Field(default=10, ge=1)
    #: batches sorted by length inside windows of this many batches (less padding)
    bucket_batches: int = Field(default=50, ge=1)
    #: bfloat16 autocast for the training forward pass (faster on CPUs with AVX512-BF16/AMX;
    #: inference and calibration always run in float32)
    bf16: bool = False
    #: keep an exponential moving average of the trained weights (this decay per step, with
    #: the usual warm-up min(decay, (1 + step) / (10 + step))) and evaluate, keep and ship
    #: the average instead of the last step's weights; 0 (the default): off, the weights as
    #: trained
    ema_decay: float = Field(default=0.0, ge=0, lt=1)


#: options added after the shipped 1.2.0 was trained; at their defaults (which train as
#: before) they are left out of the fingerprint and the written config
ADDED_LATER: frozenset[tuple[str, str]] = frozenset({("optim", "ema_decay"), ("model", "head_init_seed")})


class TrainConfig(_Strict):
    model_id: str = Field(default="epistance-tagger", pattern=r"^[a-z0-9][a-z0-9._-]*$")
    version: str = Field(default="1.0.0", pattern=r"^[0-9A-Za-z][0-9A-Za-z.+-]*$")
    seed: int = 13
    #: torch intra-op threads; results are reproducible for a fixed value on one machine
    num_threads: int = Field(default=2, ge=1)
    #: evaluate the finished model on the held-out test sets and store the figures
    evaluate_test: bool = True
    base: BaseConfig = BaseConfig()
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    optim: OptimConfig = OptimConfig()

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        if self.optim.eval_every > self.optim.max_steps:
            raise ValueError("optim.eval_every must not exceed optim.max_steps")
        return self

    @property
    def ref(self) -> str:
        return f"{self.model_id}@{self.version}"

    def resolve(self, path: Path) -> Path:
        """A config path made absolute against the repository root."""
        return path if path.is_absolute() else (PROJECT_ROOT / path).resolve()

    def _recorded(self) -> dict[str, Any]:
        """The config as written and fingerprinted: options added after a model was trained
        appear only when set, so that its config keeps its fingerprint and TOML."""
        data = self.model_dump(mode="json")
        for table, key in ADDED_LATER:
            if data[table][key] == type(getattr(self, table)).model_fields[key].default:
                del data[table][key]
        return data

    def canonical_json(self) -> str:
        return json.dumps(self._recorded(), sort_keys=True)

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()[:16]

    def to_toml(self) -> str:
        return dump_toml(self._recorded())


def load_train_config(path: Path = DEFAULT_TRAIN_CONFIG) -> TrainConfig:
    """Read and validate a training config; unknown keys are an error."""
    with open(path, "rb") as handle:
        return TrainConfig.model_validate(tomllib.load(handle))


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def dump_toml(data: dict[str, object]) -> str:
    """A minimal TOML writer for flat tables of scalars/lists (what TrainConfig holds)."""
    lines: list[str] = []
    tables: list[tuple[str, dict[str, object]]] = []
    for key, value in data.items():
        if isinstance(value, dict):
            tables.append((key, value))
        elif value is not None:
            lines.append(f"{key} = {_toml_value(value)}")
    for name, table in tables:
        lines.append("")
        lines.append(f"[{name}]")
        for key, value in table.items():
            if isinstance(value, dict):
                raise TypeError("nested tables deeper than one level are not supported")
            if value is not None:
                lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"
