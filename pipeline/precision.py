"""Which numeric precision the tagger runs in on this machine.

- ``float32``: the model exactly as trained.
- ``bfloat16``: matrix products in bfloat16 (torch autocast). On CPUs with native bfloat16
  instructions (AVX512-BF16 or AMX) about 2.5x faster than float32 here, with labels equal
  to float32's on nearly every sentence (docs/performance.md); on other CPUs it is emulated
  and slower, so it is never chosen automatically there.
- ``int8``: the network run by ONNX Runtime with its matrix products quantised to int8
  per output channel (models/onnx_int8.py), smoothed first where the model folder has an
  int8 calibration (models/int8_smoothing.py). The fastest on both CPUs measured; with the
  calibration its labels equal float32's on at least 99% of in-domain test sentences per
  layer and its held-out F1 is within 0.01 of float32's (docs/performance.md).
- ``auto`` (the default): ``int8`` for a model with an int8 calibration (the shipped one);
  otherwise ``bfloat16`` where the CPU has native bfloat16, else ``float32``.

Detection reads the CPU flags from /proc/cpuinfo and the model folder's file list (no
torch import: a rerun with nothing to do must not pay for it); elsewhere ``auto`` without
a calibration means ``float32``.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Literal

Precision = Literal["auto", "bfloat16", "int8", "float32"]
ResolvedPrecision = Literal["bfloat16", "int8", "float32"]
NATIVE_BF16_FLAGS = {"avx512_bf16", "amx_bf16"}


@functools.cache
def native_bfloat16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """True when the CPU reports bfloat16 instructions (Linux); False when unknown."""
    try:
        text = cpuinfo.read_text(encoding="ascii", errors="replace")
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("flags"):
            return bool(NATIVE_BF16_FLAGS & set(line.partition(":")[2].split()))
    return False


def resolve_precision(requested: str, int8_calibrated: bool = False) -> ResolvedPrecision:
    """The precision ``requested`` means on this machine (``auto`` resolved) for a model
    that has (``int8_calibrated``) or lacks an int8 calibration."""
    if requested == "auto":
        if int8_calibrated:
            return "int8"
        return "bfloat16" if native_bfloat16() else "float32"
    if requested in ("bfloat16", "int8", "float32"):
        return requested  # type: ignore[return-value]
    raise ValueError(f"precision {requested!r}: expected one of auto, bfloat16, int8, float32")


def model_has_int8_calibration(ref: str | None) -> bool:
    """Whether the registry model (or model folder) ``ref`` carries an int8 calibration;
    False when it cannot be resolved (loading it will say why)."""
    from models.artifact import has_int8_calibration
    from models.errors import ModelError
    from models.registry import resolve_ref

    try:
        _, folder = resolve_ref(ref)
    except ModelError:
        return False
    return has_int8_calibration(folder)
