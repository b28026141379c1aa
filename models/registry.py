"""The local model registry: ``<registry>/<id>/<version>/`` model directories.

References:
- ``id@version``: that directory;
- ``id@latest`` or ``id``: the highest version of ``id`` (PEP 440 ordering);
- ``latest`` or ``None``: the highest version of the default model (``DEFAULT_MODEL_ID``);
- a path to a model directory: that directory.

`load_tagger` verifies and loads a model once per process and returns it as a
`pipeline.tag.Tagger`. Resolution itself imports no torch.
"""
from __future__ import annotations

import threading
from pathlib import Path

from packaging.version import InvalidVersion, Version

from models.errors import ModelNotFoundError
from models.labels import LabelSchema
from pipeline.tag import DEFAULT_BATCH_SIZE, Tagger

DEFAULT_REGISTRY = Path(__file__).resolve().parent / "registry"
DEFAULT_MODEL_ID = "epistance-tagger"
LATEST = "latest"

_cache: dict[tuple[str, str, str], Tagger] = {}
_lock = threading.Lock()


def _version_key(version: str) -> tuple[int, Version | str]:
    try:
        return (1, Version(version))
    except InvalidVersion:
        return (0, version)


def list_versions(model_id: str, registry_dir: Path | None = None) -> list[str]:
    """Versions of ``model_id`` present in the registry, lowest first."""
    folder = (registry_dir or DEFAULT_REGISTRY) / model_id
    if not folder.is_dir():
        return []
    names = [p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return sorted(names, key=_version_key)


def list_models(registry_dir: Path | None = None) -> dict[str, list[str]]:
    root = registry_dir or DEFAULT_REGISTRY
    if not root.is_dir():
        return {}
    return {
        p.name: list_versions(p.name, root)
        for p in sorted(root.iterdir())
        if p.is_dir() and not p.name.startswith(".") and list_versions(p.name, root)
    }


def model_path(model_id: str, version: str, registry_dir: Path | None = None) -> Path:
    """Where ``id@version`` lives (or will live) in the registry."""
    return (registry_dir or DEFAULT_REGISTRY) / model_id / version


def _is_path(ref: str | None) -> bool:
    return ref is not None and ("/" in ref or ref.startswith(".")) and Path(ref).is_dir()


def resolve_ref(ref: str | None = None, registry_dir: Path | None = None) -> tuple[str, Path]:
    """``(id@version, directory)`` for a reference (see module docstring)."""
    root = registry_dir or DEFAULT_REGISTRY
    if ref is not None and _is_path(ref):
        from models.artifact import read_spec

        folder = Path(ref).resolve()
        return read_spec(folder).ref, folder
    if ref is None or ref == LATEST:
        model_id, version = DEFAULT_MODEL_ID, LATEST
    elif "@" in ref:
        model_id, version = ref.split("@", 1)
    else:
        model_id, version = ref, LATEST
    if not model_id or not version or "/" in model_id or "/" in version or model_id.startswith("."):
        raise ModelNotFoundError(f"model reference {ref!r} is not of the form <id>@<version>")
    if version == LATEST:
        versions = list_versions(model_id, root)
        if not versions:
            raise ModelNotFoundError(
                f"no versions of model {model_id!r} in registry {root}; train one (see scripts/train/) "
                f"or pass a model directory"
            )
        version = versions[-1]
    folder = model_path(model_id, version, root)
    if not folder.is_dir():
        known = ", ".join(list_versions(model_id, root)) or "none"
        raise ModelNotFoundError(
            f"model {model_id}@{version} not found in registry {root} (versions of {model_id}: {known})"
        )
    return f"{model_id}@{version}", folder


def load_tagger(
    ref: str | None = None,
    registry_dir: Path | None = None,
    expected_schema: LabelSchema | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    precision: str = "float32",
) -> Tagger:
    """Resolve, verify (manifest, schema, base hash) and load a tagger, once per process.

    ``expected_schema`` defaults to the configured schema (configs/labels/v1.toml); a
    model trained with another schema is refused (models.labels.LabelSchemaMismatch).
    ``precision`` (pipeline.precision): "float32" (the library default: the model as
    trained), "bfloat16", "int8", or "auto" (what `epistance annotate` uses by default).
    """
    from models.artifact import has_int8_calibration, load_model_dir, read_spec
    from models.labels import load_label_schema
    from models.tagger import TransformerTagger
    from pipeline.precision import resolve_precision

    resolved, folder = resolve_ref(ref, registry_dir)
    precision = resolve_precision(precision, has_int8_calibration(folder))
    schema = expected_schema or load_label_schema()
    key = (str(folder), schema.fingerprint, precision)
    with _lock:
        tagger = _cache.get(key)
        if tagger is None:
            # refused before loading: an int8 load would export the misfiled model first
            held = read_spec(folder).ref
            if held != resolved and not _is_path(ref):
                raise ModelNotFoundError(f"{folder} holds {held}, not {resolved}; the registry folder is misfiled")
            if precision == "int8":  # from the int8 cache without building the torch network
                from models.onnx_int8 import load_int8

                loaded = load_int8(folder, expected_schema=schema)
            else:
                loaded = load_model_dir(folder, expected_schema=schema)
            tagger = TransformerTagger(loaded, batch_size=batch_size, precision=precision)
            _cache[key] = tagger
        return tagger


def clear_cache() -> None:
    """Forget loaded models (tests; or after replacing a model directory)."""
    with _lock:
        _cache.clear()
