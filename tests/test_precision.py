"""Which precision `auto` means on a machine, and that it is part of the recompute key."""
from __future__ import annotations

from pathlib import Path

import pytest

from pipeline import precision as precision_module
from pipeline.config import RunConfig, TagConfig
from pipeline.precision import native_bfloat16, resolve_precision


def cpuinfo(tmp_path: Path, name: str, flags: str) -> Path:
    path = tmp_path / name
    path.write_text(f"processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu sse2 {flags}\n\n")
    return path


def test_native_bfloat16_reads_the_cpu_flags(tmp_path: Path) -> None:
    assert native_bfloat16(cpuinfo(tmp_path, "zen4", "avx2 avx512f avx512_bf16"))
    assert native_bfloat16(cpuinfo(tmp_path, "sapphire-rapids", "amx_bf16 amx_tile"))
    assert not native_bfloat16(cpuinfo(tmp_path, "skylake", "avx2 avx512f avx512bw"))
    assert not native_bfloat16(tmp_path / "missing")  # not Linux: unknown, so no


def test_auto_means_bfloat16_only_with_native_support(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(precision_module, "native_bfloat16", lambda: True)
    assert resolve_precision("auto") == "bfloat16"
    monkeypatch.setattr(precision_module, "native_bfloat16", lambda: False)
    assert resolve_precision("auto") == "float32"
    assert resolve_precision("int8") == "int8"
    with pytest.raises(ValueError, match="precision"):
        resolve_precision("fp8")


def test_auto_means_int8_for_a_model_with_an_int8_calibration(monkeypatch: pytest.MonkeyPatch) -> None:
    for native in (True, False):
        monkeypatch.setattr(precision_module, "native_bfloat16", lambda native=native: native)
        assert resolve_precision("auto", int8_calibrated=True) == "int8"
        assert resolve_precision("float32", int8_calibrated=True) == "float32"  # asked for: as asked


def test_the_resolved_precision_is_in_the_recompute_key(monkeypatch: pytest.MonkeyPatch) -> None:
    import pipeline.config as config_module

    def key(precision: str) -> str:
        return RunConfig(tag=TagConfig(precision=precision)).recompute_hash()  # type: ignore[arg-type]

    # the shipped model has an int8 calibration: auto is int8 (smoothed), whatever the CPU
    assert config_module.model_has_int8_calibration(None)
    smoothed_int8 = key("int8")
    assert key("auto") == smoothed_int8
    monkeypatch.setattr(config_module, "model_has_int8_calibration", lambda ref: False)
    assert key("int8") != smoothed_int8  # int8 without smoothing gives other numbers
    monkeypatch.setattr(precision_module, "native_bfloat16", lambda: False)
    assert key("auto") == key("float32")  # auto means float32 here: the same results, the same key
    assert len({key("float32"), key("bfloat16"), key("int8")}) == 3
    monkeypatch.setattr(precision_module, "native_bfloat16", lambda: True)
    assert key("auto") == key("bfloat16")


def test_a_new_tagging_revision_recomputes_every_precision(monkeypatch: pytest.MonkeyPatch) -> None:
    import pipeline.config as config_module

    keys = {p: RunConfig(tag=TagConfig(precision=p)).recompute_hash() for p in ("float32", "bfloat16", "int8")}
    monkeypatch.setattr(config_module, "TAGGING_REVISION", config_module.TAGGING_REVISION + 1)
    for precision, before in keys.items():
        assert RunConfig(tag=TagConfig(precision=precision)).recompute_hash() != before  # type: ignore[arg-type]
