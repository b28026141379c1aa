"""The versioned label schema shared by models, corpora and comparisons.

The schema is data (configs/labels/v1.toml); every trained model and every annotated
corpus records it, and loading a model whose schema differs is a hard error.
"""
from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs" / "labels"
DEFAULT_SCHEMA_FILE = CONFIG_DIR / "v1.toml"

LayerKind = Literal["single", "multi", "binary"]
STANCE, EMOTIONS, AFFECT_FOCUS = "stance", "emotions", "affect_focus"
LAYER_NAMES = (STANCE, EMOTIONS, AFFECT_FOCUS)


class LayerSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: LayerKind
    labels: tuple[str, ...]


class LabelSchema(BaseModel):
    """Labels per layer; `fingerprint` identifies the schema independently of file layout."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str
    layers: dict[str, LayerSpec]

    @property
    def stance_labels(self) -> tuple[str, ...]:
        return self.layers[STANCE].labels

    @property
    def emotion_labels(self) -> tuple[str, ...]:
        return self.layers[EMOTIONS].labels

    @property
    def fingerprint(self) -> str:
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    @property
    def ref(self) -> str:
        """`v<version>:<fingerprint>`, recorded in manifests and model directories."""
        return f"v{self.version}:{self.fingerprint}"


class LabelSchemaMismatch(ValueError):
    """A model or corpus was made with another label schema than the one configured."""


def load_label_schema(path: Path = DEFAULT_SCHEMA_FILE) -> LabelSchema:
    with open(path, "rb") as handle:
        return LabelSchema.model_validate(tomllib.load(handle))


def check_same_schema(expected: LabelSchema, found: LabelSchema, where: str) -> None:
    if expected.fingerprint != found.fingerprint:
        raise LabelSchemaMismatch(
            f"{where}: label schema {found.ref} differs from the configured {expected.ref}; "
            "retrain the model or configure its schema explicitly"
        )
