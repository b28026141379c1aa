"""The int8 calibration: measured at training, stored and checked in the model folder,
smoothing that keeps the float logits and cuts int8 error, and `auto` running int8 with it."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from models.artifact import MANIFEST_FILE, load_model_dir, write_manifest
from models.errors import ModelIntegrityError
from models.int8_smoothing import KINDS, RANGES_FILE, measure_input_ranges, save_ranges, smoothed_copy
from models.registry import clear_cache, load_tagger
from models.tagger import attach_context, batched_logits, encode
from pipeline import precision as precision_module

ROOT = Path(__file__).resolve().parents[2]
TEXTS = ["i was scared and worried", "mm okay", "the trial evidence on risk is clear", "so happy and glad",
         "she told me her feelings were terrible", "every dose is checked in the clinic"]
CONTEXTS = ["how do you feel ?", "", "when i was in the ward i felt scared", "", "yes right", "the care plan"]


def _inputs(loaded) -> tuple[list[list[int]], list[int]]:  # type: ignore[no-untyped-def]
    ids = encode(loaded.tokenizer, TEXTS, loaded.spec.max_length)
    return attach_context(loaded.tokenizer, ids, CONTEXTS, loaded.spec.max_length, 8)


def _logits(net, loaded) -> np.ndarray:  # type: ignore[no-untyped-def]
    ids, lengths = _inputs(loaded)
    out = batched_logits(net, ids, int(loaded.tokenizer.pad_token_id), 8, lengths)
    return np.concatenate([out[k].reshape(len(ids), -1) for k in sorted(out)], axis=1)


def _without_calibration(model: Path, tmp_path: Path) -> Path:
    copy = tmp_path / model.name
    shutil.copytree(model, copy)
    (copy / RANGES_FILE).unlink()
    write_manifest(copy)
    return copy


def test_training_writes_a_calibration_the_loader_checks_and_keeps(trained_model: Path) -> None:
    assert RANGES_FILE in json.loads((trained_model / MANIFEST_FILE).read_text())["files"]
    loaded = load_model_dir(trained_model)
    assert loaded.int8_ranges is not None
    assert sorted(loaded.int8_ranges) == sorted(f"layer.{i}.{kind}" for i in range(2) for kind in KINDS)
    assert tuple(loaded.int8_ranges["layer.0.ffn_out_in"].shape) == (64,)  # the tiny BERT's FFN width
    assert all(bool((r > 0).all()) for r in loaded.int8_ranges.values())


def test_smoothing_keeps_the_float_logits_and_leaves_the_network_alone(trained_model: Path) -> None:
    loaded = load_model_dir(trained_model)
    before = {k: v.clone() for k, v in loaded.net.state_dict().items()}
    smoothed = smoothed_copy(loaded.net, loaded.int8_ranges)
    np.testing.assert_allclose(_logits(smoothed, loaded), _logits(loaded.net, loaded), atol=1e-4)
    assert all(torch.equal(v, loaded.net.state_dict()[k]) for k, v in before.items())


def test_smoothing_cuts_the_int8_error_an_outlier_channel_causes(trained_model: Path) -> None:
    from models.onnx_int8 import OnnxInt8Net, quantised_model

    loaded = load_model_dir(trained_model)
    net = loaded.net
    with torch.no_grad():  # one channel of every layer's input 40 times the rest, as in real BERTs
        net.encoder.embeddings.LayerNorm.weight[3] *= 40
        net.encoder.embeddings.LayerNorm.bias[3] += 20
    exact = _logits(net, loaded)
    ids, lengths = _inputs(loaded)
    ranges = measure_input_ranges(net, ids, int(loaded.tokenizer.pad_token_id), lengths)
    plain = np.abs(_logits(OnnxInt8Net(loaded.schema, quantised_model(net)), loaded) - exact).max()
    smoothed = np.abs(_logits(OnnxInt8Net(loaded.schema, quantised_model(net, ranges)), loaded) - exact).max()
    assert smoothed < plain / 2, (smoothed, plain)


def test_with_a_calibration_the_heads_stay_in_float32(trained_model: Path) -> None:
    import onnx

    from models.onnx_int8 import quantised_model

    loaded = load_model_dir(trained_model)
    def ops(model: bytes) -> list[str]:
        return [node.op_type for node in onnx.load_from_string(model).graph.node]
    smoothed, plain = ops(quantised_model(loaded.net, loaded.int8_ranges)), ops(quantised_model(loaded.net))
    # two layers of six int8 products each; without a calibration the three heads too
    assert (smoothed.count("MatMulInteger"), plain.count("MatMulInteger")) == (12, 15)


def test_a_damaged_calibration_is_refused_with_the_file_named(trained_model: Path, tmp_path: Path) -> None:
    model = tmp_path / "m"
    shutil.copytree(trained_model, model)
    save_ranges({"layer.0.ffn_in": torch.ones(5)}, model / RANGES_FILE)
    write_manifest(model)  # consistent manifest: the content itself must be checked
    with pytest.raises(ModelIntegrityError, match=RANGES_FILE):
        load_model_dir(model)


def test_auto_runs_int8_only_for_a_model_with_a_calibration(trained_model: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(precision_module, "native_bfloat16", lambda: False)
    clear_cache()
    try:
        assert load_tagger(str(trained_model), precision="auto").precision == "int8"
        bare = _without_calibration(trained_model, tmp_path)
        assert load_tagger(str(bare), precision="auto").precision == "float32"
        assert not precision_module.model_has_int8_calibration(str(bare))
        assert precision_module.model_has_int8_calibration(str(trained_model))
        assert not precision_module.model_has_int8_calibration("no-such-model@9.9.9")
    finally:
        clear_cache()


def test_the_script_gives_an_older_model_the_calibration_training_would_have(trained_model: Path,
                                                                             tmp_path: Path) -> None:
    bare = _without_calibration(trained_model, tmp_path)
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "train" / "add_int8_calibration.py"), str(bare)],
                          check=False, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (bare / RANGES_FILE).read_bytes() == (trained_model / RANGES_FILE).read_bytes()
    load_model_dir(bare)  # manifest rewritten: the folder verifies
