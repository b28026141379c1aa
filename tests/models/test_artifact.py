"""Save/load round trip, manifest checks, pickle and schema refusal, the registry."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from models.artifact import (
    SCHEMA_FILE,
    load_model_dir,
    verify_model_dir,
    write_manifest,
)
from models.errors import ModelIntegrityError, ModelNotFoundError
from models.labels import LabelSchema, LabelSchemaMismatch, load_label_schema
from models.registry import clear_cache, list_versions, load_tagger, resolve_ref
from pipeline.tag import SentencePrediction, Tagger

TEXTS = ["the guideline shows most patients need a blood test", "mm okay", "i was scared and worried", ""]


@pytest.fixture()
def model_copy(trained_model: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(trained_model, target)
    return target


def test_round_trip_predictions_are_valid_and_stable(trained_model: Path) -> None:
    clear_cache()
    tagger = load_tagger(str(trained_model))
    assert isinstance(tagger, Tagger)
    assert tagger.model_ref == "tiny-tagger@0.0.1"
    preds = tagger.predict(TEXTS)
    assert len(preds) == len(TEXTS) and all(isinstance(p, SentencePrediction) for p in preds)
    schema = load_label_schema()
    for p in preds:
        assert p.stance in schema.stance_labels
        assert abs(sum(p.stance_probs.values()) - 1.0) < 1e-4
        assert set(p.emotion_probs) == set(schema.emotion_labels)
        assert set(p.emotions) <= set(schema.emotion_labels)
        assert 0.0 <= p.affect_focus_prob <= 1.0
    # order follows the input whatever the batching; one text alone gives the same result
    single = tagger.predict([TEXTS[2]])[0]
    assert single.stance == preds[2].stance
    assert single.stance_probs == pytest.approx(preds[2].stance_probs, abs=1e-5)
    assert tagger.predict([]) == []


def test_long_input_is_truncated_not_fatal(trained_model: Path) -> None:
    tagger = load_tagger(str(trained_model))
    assert len(tagger.predict(["the dose " * 500])) == 1


@pytest.mark.parametrize("name", ["pytorch_model.bin", "weights.pt", "heads.pkl"])
def test_pickle_files_are_refused_even_when_listed(model_copy: Path, name: str) -> None:
    import pickle

    (model_copy / name).write_bytes(pickle.dumps({"not": "loaded"}))
    write_manifest(model_copy)  # even a manifest that lists it does not make it acceptable
    with pytest.raises(ModelIntegrityError, match="pickle"):
        load_model_dir(model_copy)


def test_schema_mismatch_is_refused(model_copy: Path) -> None:
    schema = load_label_schema()
    other = LabelSchema.model_validate({**schema.model_dump(), "version": "2"})
    with pytest.raises(LabelSchemaMismatch):
        load_model_dir(model_copy, expected_schema=other)


def test_schema_file_swapped_consistently_is_still_refused(model_copy: Path) -> None:
    path = model_copy / SCHEMA_FILE
    path.write_text(path.read_text().replace('"none"]', '"unclear"]'))
    write_manifest(model_copy)
    with pytest.raises(ModelIntegrityError, match="fingerprint"):
        load_model_dir(model_copy)


def test_registry_resolution(trained_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    registry = tmp_path / "registry"
    for version in ("0.0.1", "0.0.9", "0.0.10"):
        target = registry / "tiny-tagger" / version
        shutil.copytree(trained_model, target)
    assert list_versions("tiny-tagger", registry) == ["0.0.1", "0.0.9", "0.0.10"]
    assert resolve_ref("tiny-tagger@0.0.9", registry) == ("tiny-tagger@0.0.9", registry / "tiny-tagger" / "0.0.9")
    assert resolve_ref("tiny-tagger@latest", registry)[0] == "tiny-tagger@0.0.10"
    assert resolve_ref("tiny-tagger", registry)[0] == "tiny-tagger@0.0.10"
    with pytest.raises(ModelNotFoundError):
        resolve_ref("tiny-tagger@9.9.9", registry)
    with pytest.raises(ModelNotFoundError):
        resolve_ref(None, registry)  # no default model in this registry
    shutil.copytree(trained_model, registry / "epistance-tagger" / "0.0.1")
    assert resolve_ref(None, registry)[0] == "epistance-tagger@0.0.1"
    assert resolve_ref("latest", registry)[0] == "epistance-tagger@0.0.1"
    with pytest.raises(ModelNotFoundError):
        resolve_ref("../escape@1", registry)

    clear_cache()
    tagger = load_tagger("tiny-tagger@0.0.1", registry_dir=registry)
    assert tagger.model_ref == "tiny-tagger@0.0.1"
    assert load_tagger("tiny-tagger@0.0.1", registry_dir=registry) is tagger  # loaded once per process
    # a directory filed under another version than the model it holds is refused
    with pytest.raises(ModelNotFoundError, match="misfiled"):
        load_tagger("tiny-tagger@0.0.9", registry_dir=registry)
    # in int8 too, before anything is exported or quantised
    from models import onnx_int8

    def no_export(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("the misfiled model was exported")

    monkeypatch.setattr(onnx_int8, "quantised_model", no_export)
    monkeypatch.setenv("EPISTANCE_CACHE_DIR", str(tmp_path / "empty-cache"))  # no entry to load instead
    with pytest.raises(ModelNotFoundError, match="misfiled"):
        load_tagger("tiny-tagger@0.0.9", registry_dir=registry, precision="int8")


def test_model_card_can_be_regenerated_from_stored_metrics(model_copy: Path) -> None:
    from models.card import refresh_model_card

    card = refresh_model_card(model_copy)
    verify_model_dir(model_copy)  # the manifest was rewritten to match
    text = card.read_text()
    assert "## Intended use" in text and "tiny-tagger@0.0.1" in text
