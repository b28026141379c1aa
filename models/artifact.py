"""A trained model on disk: what a model directory holds, and how it is checked and loaded.

```
<model dir>/
  weights.safetensors   trained parameters only: LoRA adapters (or fine-tuned encoder
                        weights) and the three heads; the base encoder is the pinned one
  tagger.json           everything needed to rebuild the network: base ref + sha256,
                        encoder config, adapter settings, calibration, schema fingerprint
  tokenizer/            tokenizer files (JSON/text)
  label_schema.toml     copy of the label schema the model was trained with
  train_config.toml     the resolved training config
  metrics.json          dev and test metrics
  MODEL_CARD.md         generated model card
  int8_calibration.safetensors  optional: per-channel input ranges for the int8 path
                        (models/int8_smoothing.py); `auto` precision runs int8 with it
  manifest.json         sha256 and size of every other file
```

Loading verifies the manifest first (no missing, altered or unlisted file, no pickle
file anywhere, no links), then the label schema, then the base encoder's hash.
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from models.base import PICKLE_SUFFIXES, resolve_base, sha256_file
from models.errors import ModelIntegrityError
from models.labels import LabelSchema, check_same_schema, load_label_schema

log = logging.getLogger(__name__)

FORMAT = "epistance-tagger/1"
WEIGHTS_FILE = "weights.safetensors"
SPEC_FILE = "tagger.json"
SCHEMA_FILE = "label_schema.toml"
CONFIG_FILE = "train_config.toml"
METRICS_FILE = "metrics.json"
CARD_FILE = "MODEL_CARD.md"
MANIFEST_FILE = "manifest.json"
TOKENIZER_DIR = "tokenizer"


class Calibration(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    stance_temperature: float = 1.0
    emotion_thresholds: dict[str, float]
    affect_focus_threshold: float = 0.5


class TaggerSpec(BaseModel):
    """Contents of tagger.json."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal["epistance-tagger/1"] = "epistance-tagger/1"
    model_id: str
    version: str
    base_model: str
    base_sha256: str
    base_revision: str | None = None
    encoder_config: dict[str, Any]
    hidden_size: int
    finetune: Literal["lora", "full"]
    lora_r: int | None = None
    lora_alpha: float | None = None
    lora_targets: list[str] | None = None
    lora_layers_from: int | None = None
    max_length: int
    #: tokens of preceding talk read after each sentence (0: the sentence alone; see
    #: models.tagger.attach_context)
    context_tokens: int = 0
    #: names of the tensors in weights.safetensors, all of which must load
    trained_tensors: list[str]
    schema_version: str
    schema_fingerprint: str
    calibration: Calibration
    train_config_fingerprint: str

    @property
    def ref(self) -> str:
        return f"{self.model_id}@{self.version}"


# --------------------------------------------------------------------------- manifest


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() or p.is_symlink())


def write_manifest(folder: Path) -> Path:
    """Record sha256 and size of every file in ``folder`` (except the manifest itself)."""
    entries = {}
    for path in _files(folder):
        rel = path.relative_to(folder).as_posix()
        if rel == MANIFEST_FILE:
            continue
        entries[rel] = {"sha256": sha256_file(path), "size": path.stat().st_size}
    target = folder / MANIFEST_FILE
    target.write_text(json.dumps({"format": FORMAT, "files": entries}, indent=2, sort_keys=True) + "\n")
    return target


def verify_model_dir(folder: Path) -> None:
    """Raise ModelIntegrityError unless ``folder`` matches its manifest exactly."""
    if not folder.is_dir():
        raise ModelIntegrityError(f"model directory {folder} does not exist")
    present = _files(folder)
    pickles = [p.relative_to(folder).as_posix() for p in present if p.suffix.lower() in PICKLE_SUFFIXES]
    if pickles:
        raise ModelIntegrityError(
            f"{folder}: refusing to load, it contains pickle-format files {pickles}; only "
            "safetensors weights are accepted (pickles can run code when loaded)"
        )
    links = [p.relative_to(folder).as_posix() for p in present if p.is_symlink()]
    if links:
        raise ModelIntegrityError(f"{folder}: symbolic links are not allowed in a model directory: {links}")
    manifest_path = folder / MANIFEST_FILE
    if not manifest_path.is_file():
        raise ModelIntegrityError(f"{folder}: no {MANIFEST_FILE}; a model directory must carry one")
    try:
        manifest = json.loads(manifest_path.read_text())
        listed: dict[str, dict[str, Any]] = manifest["files"]
    except (json.JSONDecodeError, KeyError, TypeError):
        raise ModelIntegrityError(f"{manifest_path}: not a valid manifest (expected JSON with 'files')") from None
    problems: list[str] = []
    for rel, entry in sorted(listed.items()):
        path = folder / rel
        if rel.startswith("/") or ".." in Path(rel).parts:
            problems.append(f"{rel}: path escapes the model directory")
        elif not path.is_file():
            problems.append(f"{rel}: missing")
        elif path.stat().st_size != entry.get("size") or sha256_file(path) != entry.get("sha256"):
            problems.append(f"{rel}: sha256 differs from the manifest (file altered)")
    unlisted = sorted({p.relative_to(folder).as_posix() for p in present} - set(listed) - {MANIFEST_FILE})
    problems.extend(f"{rel}: not in the manifest" for rel in unlisted)
    if problems:
        raise ModelIntegrityError(
            f"{folder}: manifest check failed: {'; '.join(problems)}; fix: restore the model "
            "directory from the registry or retrain it"
        )


# --------------------------------------------------------------------------- save / load


def save_weights(state: dict[str, Any], path: Path, metadata: dict[str, str] | None = None) -> None:
    from safetensors.torch import save_file

    save_file({k: v.detach().contiguous().cpu() for k, v in state.items()}, str(path), metadata=metadata)
    os.chmod(path, 0o644)  # model files hold no transcript text; same mode as the rest of the directory


def write_spec(folder: Path, spec: TaggerSpec) -> None:
    (folder / SPEC_FILE).write_text(json.dumps(spec.model_dump(mode="json"), indent=2, sort_keys=True) + "\n")


def read_spec(folder: Path) -> TaggerSpec:
    try:
        return TaggerSpec.model_validate_json((folder / SPEC_FILE).read_text())
    except (OSError, ValueError) as exc:
        raise ModelIntegrityError(f"{folder / SPEC_FILE}: unreadable or invalid ({type(exc).__name__})") from None


@dataclass
class LoadedModel:
    path: Path
    spec: TaggerSpec
    schema: LabelSchema
    net: Any  # models.architecture.TaggerNet
    tokenizer: Any
    #: models.int8_smoothing ranges when the folder has them (int8_calibration.safetensors)
    int8_ranges: dict[str, Any] | None = None


def read_model_dir(folder: Path, expected_schema: LabelSchema | None = None) -> tuple[TaggerSpec, LabelSchema]:
    """Verify a model directory (its manifest, spec and label schema) without loading its
    network; refuses tampering and a schema mismatch.

    ``expected_schema`` defaults to the configured schema (configs/labels/v1.toml).
    """
    folder = Path(folder)
    verify_model_dir(folder)
    spec = read_spec(folder)
    schema = load_label_schema(folder / SCHEMA_FILE)
    if schema.fingerprint != spec.schema_fingerprint:
        raise ModelIntegrityError(
            f"{folder}: {SCHEMA_FILE} has fingerprint {schema.fingerprint}, tagger.json records "
            f"{spec.schema_fingerprint}"
        )
    check_same_schema(expected_schema or load_label_schema(), schema, where=str(folder))
    return spec, schema


def load_tokenizer(folder: Path) -> Any:
    """The tokenizer a model directory carries (local files only, no remote code)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(Path(folder) / TOKENIZER_DIR), local_files_only=True,
                                         trust_remote_code=False)


def load_model_dir(folder: Path, expected_schema: LabelSchema | None = None) -> LoadedModel:
    """Verify and load a model directory; refuses pickles, tampering and a schema mismatch.

    ``expected_schema`` defaults to the configured schema (configs/labels/v1.toml).
    """
    import torch
    from safetensors.torch import load_file

    from models.architecture import TaggerNet, add_lora, load_encoder

    folder = Path(folder)
    spec, schema = read_model_dir(folder, expected_schema)
    base = resolve_base(spec.base_model, expected_sha256=spec.base_sha256, revision=spec.base_revision)
    encoder = load_encoder(base.path, spec.encoder_config)
    if spec.finetune == "lora":
        assert spec.lora_r is not None and spec.lora_alpha is not None and spec.lora_targets is not None
        encoder = add_lora(encoder, spec.lora_r, spec.lora_alpha, 0.0, spec.lora_targets, spec.lora_layers_from or 0)
    net = TaggerNet(encoder, spec.hidden_size, schema, head_dropout=0.0)
    try:
        state = load_file(str(folder / WEIGHTS_FILE))
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own SafetensorError (bad header, truncation, dtype)
        raise ModelIntegrityError(
            f"{folder / WEIGHTS_FILE}: not a readable safetensors file ({type(exc).__name__})"
        ) from None
    own = dict(net.named_parameters())
    unknown = sorted(set(state) - set(own))
    if unknown:
        raise ModelIntegrityError(f"{folder / WEIGHTS_FILE}: {len(unknown)} tensors do not fit the network")
    if set(state) != set(spec.trained_tensors):
        raise ModelIntegrityError(
            f"{folder / WEIGHTS_FILE}: holds {len(state)} tensors, tagger.json lists {len(spec.trained_tensors)}"
        )
    expected = {n for n, p in own.items() if n.startswith("heads.") or "lora_" in n}
    missing = sorted(expected - set(state))
    if missing:
        raise ModelIntegrityError(f"{folder / WEIGHTS_FILE}: missing {len(missing)} trained tensors")
    with torch.no_grad():
        for name, tensor in state.items():
            if own[name].shape != tensor.shape:
                raise ModelIntegrityError(f"{folder / WEIGHTS_FILE}: tensor {name} has the wrong shape")
            own[name].copy_(tensor)
    if spec.finetune == "lora":
        net.encoder = net.encoder.merge_and_unload()  # plain encoder: faster inference
    net.eval()
    log.info("loaded model %s from %s", spec.ref, folder)
    return LoadedModel(path=folder, spec=spec, schema=schema, net=net, tokenizer=load_tokenizer(folder),
                       int8_ranges=_int8_ranges(folder, net))


def _int8_ranges(folder: Path, net: Any) -> dict[str, Any] | None:
    """The folder's int8 calibration (checked against the network), or None without one."""
    from models.int8_smoothing import RANGES_FILE, check_ranges, load_ranges

    path = folder / RANGES_FILE
    if not path.is_file():
        return None
    try:
        ranges = load_ranges(path)
        check_ranges(net, ranges, str(path))
    except ValueError as error:
        raise ModelIntegrityError(str(error)) from None
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own SafetensorError
        raise ModelIntegrityError(f"{path}: not a readable safetensors file ({type(exc).__name__})") from None
    return ranges


def has_int8_calibration(folder: Path) -> bool:
    """Whether a model folder carries an int8 calibration (a file check: no torch import)."""
    from models.int8_smoothing import RANGES_FILE

    return (Path(folder) / RANGES_FILE).is_file()


def dir_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def publish_dir(staging: Path, target: Path) -> None:
    """Move a finished model directory into place; never overwrite an existing version."""
    if target.exists():
        raise FileExistsError(f"{target} already exists; choose a new version in the training config")
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staging, target)
