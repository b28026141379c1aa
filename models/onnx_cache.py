"""On-disk cache of quantised int8 models: a run loads the int8 network it quantised before
instead of exporting and quantising it again (about 8 s at every load otherwise).

An entry is keyed by the model folder's manifest (which pins every file of the model, its
weights and int8 calibration included), the int8 scheme and the versions of torch, onnx and
onnxruntime; its bytes are checked against the sha256 stored beside them, and an entry that
does not match is rebuilt. The cache lives in ``$EPISTANCE_CACHE_DIR`` (``off`` turns it off),
else ``$XDG_CACHE_HOME/epistance``, else ``~/.cache/epistance``. A cache that cannot be read or
written only costs the time it would have saved. An entry is about 59 MB for the shipped
model and every model or library upgrade makes a new one, so storing an entry removes those
unused for `UNUSED_DAYS` days (an entry in use is never removed, however many there are).
"""
from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from pipeline.atomic import atomic_file

log = logging.getLogger(__name__)

CACHE_ENV = "EPISTANCE_CACHE_DIR"
#: entries unused this long are removed when a new one is stored (their file's
#: modification time is renewed at every use)
UNUSED_DAYS = 30


def cache_dir() -> Path | None:
    """Where int8 models are cached, or None when the cache is off."""
    configured = os.environ.get(CACHE_ENV)
    if configured is not None:
        return None if configured.strip().lower() in ("", "off", "none", "0") else Path(configured).expanduser() / "int8"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "epistance" / "int8"


def cache_key(manifest: bytes, scheme: str) -> str:
    """Key of the int8 model for a model folder's manifest bytes and an int8 scheme."""
    import onnx
    import onnxruntime
    import torch

    material = b"\0".join([manifest, scheme.encode(), torch.__version__.encode(), onnx.__version__.encode(),
                           onnxruntime.__version__.encode()])
    return hashlib.sha256(material).hexdigest()


def cached(key: str, build: Callable[[], bytes]) -> bytes:
    """The cached bytes for `key`, else `build()`'s, stored for next time."""
    folder = cache_dir()
    if folder is None:
        return build()
    model_path, digest_path = folder / f"{key}.onnx", folder / f"{key}.sha256"
    try:
        data = model_path.read_bytes()
        if hashlib.sha256(data).hexdigest() == digest_path.read_text().strip():
            log.info("int8 model from the cache (%s)", model_path)
            _mark_used(model_path)
            return data
        log.warning("int8 cache entry %s does not match its checksum: rebuilding it", model_path)
    except OSError:
        pass  # not cached yet (or unreadable): build it
    data = build()
    try:
        for path, content in ((model_path, data), (digest_path, hashlib.sha256(data).hexdigest().encode())):
            with atomic_file(path) as out:
                out.write(content)
    except OSError as error:
        log.warning("cannot write the int8 cache in %s (%s): the next load quantises again", folder,
                    type(error).__name__)
        return data
    _remove_unused(folder, UNUSED_DAYS * 86400)
    return data


def _mark_used(model_path: Path) -> None:
    try:
        os.utime(model_path)
    except OSError:
        pass  # a read-only cache still serves; its entries just age as written


def _remove_unused(folder: Path, max_age_s: float) -> None:
    """Remove the entries unused for longer than `max_age_s`. A load reading an entry removed
    meanwhile finds it missing and rebuilds it, as for any entry not cached."""
    oldest_kept = time.time() - max_age_s
    for entry in folder.glob("*.onnx"):
        try:
            if entry.stat().st_mtime >= oldest_kept:
                continue
            entry.unlink(missing_ok=True)
            entry.with_suffix(".sha256").unlink(missing_ok=True)
        except OSError:
            continue  # another process removed it, or the cache is read-only
        log.info("int8 cache: removed %s, unused for over %d days", entry.name, max_age_s // 86400)
