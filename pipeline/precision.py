"""Which numeric precision the tagger runs in on this machine.

- ``float32``: the model exactly as trained.
- ``bfloat16``: matrix products in bfloat16 (torch autocast). On CPUs with native bfloat16
  instructions (AVX512-BF16 or AMX) about 2.5x faster than float32 here, with labels equal
  to float32's on nearly every sentence (docs/performance.md); on other CPUs it is emulated
  and slower, so it is never chosen automatically there.
- ``int8``: the network run by ONNX Runtime with its matrix products quantised to int8
  per output channel (models/onnx_int8.py). The fastest here; its labels differ from
  float32's on a little over 1% of sentences for stance (docs/performance.md): opt-in only.
- ``auto`` (the default): ``bfloat16`` where the CPU has native bfloat16, else ``float32``.

Detection reads the CPU flags from /proc/cpuinfo (no torch import: a rerun with nothing to
do must not pay for it); elsewhere ``auto`` means ``float32``.
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


def resolve_precision(requested: str) -> ResolvedPrecision:
    """The precision ``requested`` means on this machine (``auto`` resolved)."""
    if requested == "auto":
        return "bfloat16" if native_bfloat16() else "float32"
    if requested in ("bfloat16", "int8", "float32"):
        return requested  # type: ignore[return-value]
    raise ValueError(f"precision {requested!r}: expected one of auto, bfloat16, int8, float32")
