"""The on-disk cache of int8 models: a second load skips the export and quantisation (and
the torch network), a damaged entry is rebuilt, and a cache that is off or unwritable only
costs time."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models import onnx_int8
from models.onnx_cache import CACHE_ENV, cache_dir
from models.registry import clear_cache, load_tagger

TEXTS = ["i was scared and worried", "the trial evidence on risk is clear"]


@pytest.fixture
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    clear_cache()
    yield tmp_path / "cache" / "int8"
    clear_cache()


def _count_quantisations(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = onnx_int8.quantised_model

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(onnx_int8, "quantised_model", counting)
    return calls


def _logits(tagger) -> np.ndarray:  # type: ignore[no-untyped-def]
    out = tagger.logits(TEXTS)
    return np.concatenate([out[k].reshape(len(TEXTS), -1) for k in sorted(out)], axis=1)


def test_a_second_load_comes_from_the_cache_with_the_same_numbers(trained_model: Path, own_cache: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _count_quantisations(monkeypatch)
    first = _logits(load_tagger(str(trained_model), precision="int8"))
    clear_cache()
    second = _logits(load_tagger(str(trained_model), precision="int8"))
    assert len(calls) == 1
    assert len(list(own_cache.glob("*.onnx"))) == 1
    np.testing.assert_array_equal(first, second)


def test_a_cached_load_builds_no_torch_network_and_still_verifies_the_folder(
        trained_model: Path, own_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from models.errors import ModelIntegrityError

    folder = tmp_path / "model"
    shutil.copytree(trained_model, folder)
    first = _logits(load_tagger(str(folder), precision="int8"))
    clear_cache()

    def no_network(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("the torch network was built")

    monkeypatch.setattr(onnx_int8, "load_model_dir", no_network)
    np.testing.assert_array_equal(_logits(load_tagger(str(folder), precision="int8")), first)
    clear_cache()
    (folder / "tagger.json").write_text((folder / "tagger.json").read_text().replace("{", "{ ", 1))
    with pytest.raises(ModelIntegrityError):  # the manifest is checked before the cache is asked
        load_tagger(str(folder), precision="int8")


def test_a_damaged_entry_is_rebuilt(trained_model: Path, own_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _count_quantisations(monkeypatch)
    load_tagger(str(trained_model), precision="int8")
    entry = next(own_cache.glob("*.onnx"))
    entry.write_bytes(entry.read_bytes()[:100])  # truncated
    clear_cache()
    load_tagger(str(trained_model), precision="int8").predict(TEXTS)
    assert len(calls) == 2
    assert len(entry.read_bytes()) > 100


def test_off_or_unwritable_only_costs_time(trained_model: Path, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _count_quantisations(monkeypatch)
    monkeypatch.setenv(CACHE_ENV, "off")
    assert cache_dir() is None
    clear_cache()
    load_tagger(str(trained_model), precision="int8")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(CACHE_ENV, str(blocker))  # its int8 folder cannot be made
    clear_cache()
    load_tagger(str(trained_model), precision="int8").predict(TEXTS)
    clear_cache()
    assert len(calls) == 2


def test_another_model_folder_is_another_entry(trained_model: Path, own_cache: Path, tmp_path: Path) -> None:
    import shutil

    from models.artifact import write_manifest

    load_tagger(str(trained_model), precision="int8")
    other = tmp_path / "other"
    shutil.copytree(trained_model, other)
    (other / "MODEL_CARD.md").write_text("edited card\n")
    write_manifest(other)
    clear_cache()
    load_tagger(str(other), precision="int8")
    assert len(list(own_cache.glob("*.onnx"))) == 2


def test_entries_unused_for_a_month_are_removed_when_one_is_stored(own_cache: Path) -> None:
    import os
    import time

    from models.onnx_cache import UNUSED_DAYS, cached

    day = 86400
    ages = {"old": UNUSED_DAYS + 1, "used-again": UNUSED_DAYS + 1, "recent": UNUSED_DAYS - 1}
    for key in ages:
        cached(key, lambda key=key: f"model {key}".encode())
    for key, age in ages.items():  # as if stored and last used `age` days ago
        then = time.time() - age * day
        os.utime(own_cache / f"{key}.onnx", (then, then))
    assert cached("used-again", lambda: b"not rebuilt") == b"model used-again"  # a use renews it
    cached("new", lambda: b"model new")
    kept = {path.stem for path in own_cache.glob("*.onnx")}
    assert kept == {"used-again", "recent", "new"}  # "old" is gone, with its checksum
    assert {path.stem for path in own_cache.glob("*.sha256")} == kept
