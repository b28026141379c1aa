"""Safe model loading (RELIABILITY D23-D24): safetensors only, a planted malicious pickle
never runs, the hash manifest is verified before anything is read, the label schema
travels with the model and a mismatch is refused.

The malicious pickle's `__reduce__` would create a marker file when unpickled: every test
asserts that the marker never appears, whatever the load path (the model folder, the
registry, the CLI's tagger source, the base encoder).
"""
from __future__ import annotations

import ast
import json
import pickle
import shutil
from pathlib import Path

import pytest

from models.artifact import (
    MANIFEST_FILE,
    SCHEMA_FILE,
    SPEC_FILE,
    WEIGHTS_FILE,
    load_model_dir,
    verify_model_dir,
    write_manifest,
)
from models.errors import ModelError, ModelIntegrityError
from models.labels import LabelSchemaMismatch
from pipeline.errors import ModelUnavailableError

REPO = Path(__file__).resolve().parents[2]


class Exploit:
    """Unpickling this creates `marker` (a harmless stand-in for arbitrary code)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (open, (self.marker, "w"))


def malicious_pickle(marker: Path) -> bytes:
    data = pickle.dumps(Exploit(marker))
    assert not marker.exists()
    return data


def test_the_exploit_works_when_unpickled(tmp_path: Path) -> None:
    """The control: the payload really would run if anything unpickled it."""
    marker = tmp_path / "marker"
    pickle.loads(malicious_pickle(marker))
    assert marker.exists()


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.interop.tiny_model import train_tiny

    return train_tiny(tmp_path_factory.mktemp("tiny"))


@pytest.fixture()
def model_copy(tiny_model: Path, tmp_path: Path) -> Path:
    target = tmp_path / "tiny-tagger" / "0.0.1"
    shutil.copytree(tiny_model, target)
    return target


def _load_every_way(folder: Path) -> list[BaseException]:
    """Load `folder` through the artifact loader, the registry and the CLI's tagger source;
    the errors raised (each must be one of ours)."""
    from models.registry import clear_cache, load_tagger
    from pipeline.tagger_source import RegistryTaggerSource

    errors: list[BaseException] = []
    for load in (lambda: load_model_dir(folder), lambda: load_tagger(str(folder)),
                 lambda: RegistryTaggerSource(str(folder)).load()):
        clear_cache()
        try:
            load()
        except (ModelError, ModelUnavailableError, LabelSchemaMismatch) as error:
            errors.append(error)
    return errors


@pytest.mark.parametrize("name", ["pytorch_model.bin", "weights.pkl", "model.ckpt", "training_args.bin",
                                  "tokenizer/extra.pt"])
@pytest.mark.parametrize("listed", [False, True])
def test_a_planted_pickle_is_refused_and_never_runs(model_copy: Path, tmp_path: Path, name: str, listed: bool) -> None:
    marker = tmp_path / "PWNED"
    (model_copy / name).write_bytes(malicious_pickle(marker))
    if listed:  # the attacker also rewrote the manifest: the pickle is refused by its kind anyway
        write_manifest(model_copy)
    errors = _load_every_way(model_copy)
    assert len(errors) == 3 and all("pickle" in str(e) for e in errors), errors
    assert not marker.exists()


def test_a_pickle_disguised_as_safetensors_is_refused_and_never_runs(model_copy: Path, tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    (model_copy / WEIGHTS_FILE).write_bytes(malicious_pickle(marker))
    with pytest.raises(ModelIntegrityError, match="sha256"):  # the manifest catches the swap first
        load_model_dir(model_copy)
    write_manifest(model_copy)  # the attacker rewrote the manifest too: safetensors cannot parse it
    with pytest.raises(Exception) as info:
        load_model_dir(model_copy)
    assert not isinstance(info.value, pickle.UnpicklingError)
    assert not marker.exists()


def test_nothing_is_unpickled_while_loading_a_good_model(model_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    calls: list[str] = []

    def refuse(name: str):  # type: ignore[no-untyped-def]
        def call(*args, **kwargs):  # type: ignore[no-untyped-def]
            calls.append(name)
            raise AssertionError(f"{name} called while loading a model")
        return call

    monkeypatch.setattr(torch, "load", refuse("torch.load"))
    monkeypatch.setattr(pickle, "load", refuse("pickle.load"))
    monkeypatch.setattr(pickle, "Unpickler", refuse("pickle.Unpickler"))
    loaded = load_model_dir(model_copy)
    assert loaded.spec.ref == "tiny-tagger@0.0.1" and not calls


def test_an_altered_missing_or_unlisted_file_is_refused_before_loading(model_copy: Path) -> None:
    weights = model_copy / WEIGHTS_FILE
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match="altered"):
        load_model_dir(model_copy)  # the loader verifies first
    weights.unlink()
    with pytest.raises(ModelIntegrityError, match="missing"):
        verify_model_dir(model_copy)
    write_manifest(model_copy)
    (model_copy / "notes.txt").write_text("added later")
    with pytest.raises(ModelIntegrityError, match="not in the manifest"):
        verify_model_dir(model_copy)
    (model_copy / MANIFEST_FILE).unlink()
    with pytest.raises(ModelIntegrityError, match="no manifest"):
        verify_model_dir(model_copy)


def test_a_symlink_into_the_model_folder_is_refused(model_copy: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"x")
    (model_copy / "link.json").symlink_to(outside)
    with pytest.raises(ModelIntegrityError):
        verify_model_dir(model_copy)


def test_a_model_trained_with_another_label_schema_is_refused(model_copy: Path) -> None:
    """Schema swapped consistently (schema file, fingerprint in tagger.json, manifest):
    the model is internally coherent, but not the configured schema."""
    from models.labels import load_label_schema

    schema_path = model_copy / SCHEMA_FILE
    text = schema_path.read_text()
    assert "surprise" in text
    schema_path.write_text(text.replace('"surprise"', '"astonishment"').replace("surprise", "astonishment"))
    spec = json.loads((model_copy / SPEC_FILE).read_text())
    spec["schema_fingerprint"] = load_label_schema(schema_path).fingerprint
    (model_copy / SPEC_FILE).write_text(json.dumps(spec, indent=2, sort_keys=True) + "\n")
    write_manifest(model_copy)
    errors = _load_every_way(model_copy)
    assert len(errors) == 3 and all("schema" in str(e).lower() for e in errors), errors


def test_a_base_encoder_with_only_pickled_weights_is_refused(tmp_path: Path) -> None:
    from models.base import check_no_pickles, resolve_base

    marker = tmp_path / "PWNED"
    base = tmp_path / "base"
    base.mkdir()
    (base / "config.json").write_text('{"model_type": "bert"}')
    (base / "pytorch_model.bin").write_bytes(malicious_pickle(marker))
    with pytest.raises(ModelError, match="safetensors"):
        resolve_base(str(base))
    with pytest.raises(ModelError, match="pickle"):
        check_no_pickles(base)
    assert not marker.exists()


def test_the_code_never_unpickles_or_trusts_remote_code() -> None:
    """A static check of the sources: no torch.load, pickle.load(s), trust_remote_code=True,
    and every from_pretrained is local-only."""
    problems = []
    for path in [*REPO.joinpath("pipeline").rglob("*.py"), *REPO.joinpath("models").rglob("*.py")]:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = ast.unparse(node.func)
            if name in ("torch.load", "pickle.load", "pickle.loads", "joblib.load", "np.load", "numpy.load",
                        "dill.load", "cloudpickle.load") or name.endswith("Unpickler"):
                problems.append(f"{path.name}:{node.lineno} {name}")
            for keyword in node.keywords:
                if keyword.arg == "trust_remote_code" and not (isinstance(keyword.value, ast.Constant)
                                                               and keyword.value.value is False):
                    problems.append(f"{path.name}:{node.lineno} trust_remote_code")
            if name.endswith("from_pretrained"):
                keywords = {k.arg: k.value for k in node.keywords}
                local = keywords.get("local_files_only")
                if not (isinstance(local, ast.Constant) and local.value is True):
                    problems.append(f"{path.name}:{node.lineno} from_pretrained without local_files_only=True")
    assert not problems, problems


def test_unreadable_safetensors_is_our_error(model_copy: Path, tmp_path: Path) -> None:
    (model_copy / WEIGHTS_FILE).write_bytes(malicious_pickle(tmp_path / "PWNED"))
    write_manifest(model_copy)
    with pytest.raises(ModelIntegrityError):
        load_model_dir(model_copy)
