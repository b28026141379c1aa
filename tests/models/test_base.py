"""The pinned base encoder: hash check of the installed package, refusal of other bytes."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from models.base import DEFAULT_BASE, PINNED_BASE_SHA256, base_folder, resolve_base, sha256_file
from models.errors import BaseModelError

PINNED = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"


def test_pin_is_the_upstream_hash() -> None:
    assert PINNED_BASE_SHA256[DEFAULT_BASE] == PINNED


def test_installed_default_base_matches_the_pin() -> None:
    weights = base_folder(DEFAULT_BASE) / "model.safetensors"
    assert sha256_file(weights) == PINNED
    assert resolve_base().sha256 == PINNED


def test_wrong_pin_is_refused(tiny_base: Path) -> None:
    with pytest.raises(BaseModelError, match="expected"):
        resolve_base(str(tiny_base), expected_sha256="0" * 64)
    assert resolve_base(str(tiny_base)).sha256 == sha256_file(tiny_base / "model.safetensors")


def test_folder_without_safetensors_is_refused(tiny_base: Path, tmp_path: Path) -> None:
    folder = tmp_path / "pickled"
    shutil.copytree(tiny_base, folder)
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
    with pytest.raises(BaseModelError, match="safetensors"):
        resolve_base(str(folder))


def test_missing_package_and_hub_without_download_are_clear_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(BaseModelError, match="not installed"):
        resolve_base("package:no_such_model_package_xyz")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(BaseModelError, match="download"):
        resolve_base("no-such-org/no-such-model-xyz")
