"""The model registry as a TaggerSource: resolved by reference now, loaded on first use.

Resolving reads only folder names and the model spec (no torch), so a rerun with nothing
to tag never loads weights; loading verifies the hash manifest and the label schema.
"""
from __future__ import annotations

from pathlib import Path

from models.labels import LabelSchema, LabelSchemaMismatch, load_label_schema
from pipeline.errors import ModelUnavailableError
from pipeline.tag import DEFAULT_BATCH_SIZE, Tagger


class RegistryTaggerSource:
    def __init__(self, ref: str | None = None, registry_dir: Path | None = None, batch_size: int = DEFAULT_BATCH_SIZE,
                 precision: str = "auto") -> None:
        from models.errors import ModelError
        from models.registry import resolve_ref

        self._requested, self._registry_dir, self._batch_size = ref, registry_dir, batch_size
        self._precision = precision
        try:
            self._ref, self._folder = resolve_ref(ref, registry_dir)
        except ModelError as error:
            raise ModelUnavailableError(str(error), hint="train one with `make train-default`, or pass --model") from None
        self._schema = load_label_schema()

    @property
    def model_ref(self) -> str:
        return self._ref

    @property
    def schema(self) -> LabelSchema:
        return self._schema

    def load(self) -> Tagger:
        from models.errors import ModelError
        from models.registry import load_tagger

        try:
            return load_tagger(self._requested, self._registry_dir, expected_schema=self._schema,
                               batch_size=self._batch_size, precision=self._precision)
        except (ModelError, LabelSchemaMismatch) as error:
            raise ModelUnavailableError(f"cannot load {self._ref}: {error}") from None
