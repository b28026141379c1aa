"""What a worker process keeps loaded: the tagger and the spaCy pipeline, once per process.

Tasks receive a `TaggerSpec` (a factory name and a model reference: a few bytes), never a
model; the first task in a process builds the source and later ones reuse it. Prefect-free.
"""
from __future__ import annotations

import importlib
import threading
from collections.abc import Callable

from pydantic import BaseModel, ConfigDict

from pipeline.annotate import Workers
from pipeline.config import RunConfig
from pipeline.errors import ConfigError, ModelUnavailableError
from pipeline.segment import Segmenter
from pipeline.tag import DEFAULT_BATCH_SIZE, TaggerSource

DEFAULT_FACTORY = "pipeline.tagger_source:RegistryTaggerSource"


class TaggerSpec(BaseModel):
    """How a worker gets its tagger: `factory(model, batch_size=..., precision=...)` returns a TaggerSource."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    factory: str = DEFAULT_FACTORY  # "module:callable", importable on every worker
    model: str | None = None  # id@version, id@latest, a model folder; None: the shipped default
    batch_size: int = DEFAULT_BATCH_SIZE
    precision: str = "auto"  # pipeline.config.TagConfig.precision

    @property
    def cache_key(self) -> str:
        return self.model_dump_json()


_lock = threading.Lock()
_sources: dict[str, TaggerSource] = {}
_segmenters: dict[str, Segmenter] = {}
_workers: dict[tuple[str, str], Workers] = {}


def _import_factory(name: str) -> Callable[..., TaggerSource]:
    module_name, _, attribute = name.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError, ValueError):
        raise ConfigError(f"tagger factory {name!r} cannot be imported", hint="give it as 'package.module:callable'"
                          " importable on every worker") from None
    if not callable(factory):
        raise ConfigError(f"tagger factory {name!r} is not callable")
    return factory  # type: ignore[no-any-return]


def use_source(spec: TaggerSpec, source: TaggerSource) -> None:
    """Make this process answer `spec` with a source already built (the CLI, notebooks)."""
    with _lock:
        _sources[spec.cache_key] = source
        for key in [k for k in _workers if k[1] == spec.cache_key]:
            del _workers[key]


def source_for(spec: TaggerSpec) -> TaggerSource:
    """The source for `spec`, built once per process (resolving a reference; no weights)."""
    with _lock:
        source = _sources.get(spec.cache_key)
        if source is None:
            source = _import_factory(spec.factory)(spec.model, batch_size=spec.batch_size,
                                                   precision=spec.precision)
            _sources[spec.cache_key] = source
        return source


def workers_for(config: RunConfig, spec: TaggerSpec, model_ref: str | None = None) -> Workers:
    """This process's Workers for a run config and tagger: the model and spaCy load on first
    use and stay loaded for every later task in the process. `model_ref` is what the run's
    recompute keys were made with; a worker resolving another model refuses to work."""
    source = source_for(spec)
    if model_ref is not None and source.model_ref != model_ref:
        raise ModelUnavailableError(f"this worker resolves {spec.model or 'the default model'} to "
                                    f"{source.model_ref}, the run planned with {model_ref}",
                                    hint="give every worker the same model registry")
    key = (config.model_dump_json(include={"segment", "tag"}), spec.cache_key)
    with _lock:
        workers = _workers.get(key)
        if workers is None:
            workers = Workers(config, source, _segmenters.get(config.segment.model_dump_json()))
            _workers[key] = workers
        return workers


def use_segmenter(segmenter: Segmenter) -> None:
    """Make this process reuse a loaded spaCy pipeline for its segmentation config (tests)."""
    with _lock:
        _segmenters[segmenter.config.model_dump_json()] = segmenter


def clear() -> None:
    """Forget everything loaded in this process (tests)."""
    with _lock:
        _sources.clear()
        _segmenters.clear()
        _workers.clear()
