"""The int8 export's top layer computes the sentence's tokens only (models.sentence_top):
the same logits as the network, fewer tokens through the top layer, and the plain network
exported where that cannot be had."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from models import sentence_top
from models.artifact import load_model_dir
from models.int8_smoothing import smoothed_copy
from models.onnx_int8 import INPUTS, OUTPUTS, example_inputs, export_onnx
from models.tagger import attach_context, encode, pad_batch

SENTENCES = ["i was scared and worried", "mm okay", "the trial evidence on risk is clear", "so happy"]
CONTEXTS = ["how do you feel ?", "", "when i was in the ward i felt scared " * 5, "yes right"]


def _batch(loaded) -> tuple[torch.Tensor, ...]:  # type: ignore[no-untyped-def]
    ids = encode(loaded.tokenizer, SENTENCES, 64)
    rows, lengths = attach_context(loaded.tokenizer, ids, CONTEXTS, 64, 8)
    batch = pad_batch(rows, int(loaded.tokenizer.pad_token_id), lengths, pad_multiple=1)
    assert batch[3] is not None and int(batch[3].sum(1).max()) < batch[0].shape[1]  # context after every sentence
    return batch


@pytest.mark.parametrize("smoothed", [False, True])
def test_the_narrowed_top_layer_gives_the_networks_logits(trained_model: Path, smoothed: bool) -> None:
    loaded = load_model_dir(trained_model)
    net = (smoothed_copy(loaded.net, loaded.int8_ranges) if smoothed else loaded.net).eval()
    ids, mask, types, pool = _batch(loaded)
    top = sentence_top.sentence_top_net(net, example_inputs(net.encoder.config.vocab_size))
    assert top is not None  # the tiny BERT is BERT-shaped
    narrowed = pool[:, :int(pool.sum(1).max())]
    with torch.no_grad():
        expected = net(ids, mask, types, pool)
        got = top(ids, mask, types, narrowed)
    for name, value in zip(OUTPUTS, got):
        np.testing.assert_allclose(value.numpy(), expected[name].numpy(), atol=1e-5)


def test_a_pooling_mask_that_skips_tokens_keeps_them_all_in_the_top_layer(trained_model: Path) -> None:
    loaded = load_model_dir(trained_model)
    net = loaded.net.eval()
    ids, mask, types, pool = _batch(loaded)
    pool = pool.clone()
    pool[:, 0] = 0  # [CLS] not pooled: the last pooled token is past the row's count of them
    assert sentence_top.pooled_width(pool) == int(pool.sum(1).max()) + 1
    top = sentence_top.sentence_top_net(net, example_inputs(net.encoder.config.vocab_size))
    assert top is not None
    with torch.no_grad():
        expected = net(ids, mask, types, pool)
        got = top(ids, mask, types, pool[:, :sentence_top.pooled_width(pool)])
    for name, value in zip(OUTPUTS, got):
        np.testing.assert_allclose(value.numpy(), expected[name].numpy(), atol=1e-5)
    assert sentence_top.pooled_width(torch.zeros_like(pool)) == 1


def _matmul_token_counts(model: Path, feed: dict[str, np.ndarray], tmp_path: Path) -> set[int]:
    """How many tokens per row the inputs of the model's 3-D matrix products have."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.enable_profiling = True
    options.profile_file_prefix = str(tmp_path / "profile")
    session = onnxruntime.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    session.run(None, feed)
    events = json.loads(Path(session.end_profiling()).read_text())
    counts = set()
    for event in events:
        args = event.get("args", {})
        if args.get("op_name") == "MatMul":
            shape = next(iter(args["input_type_shape"][0].values()))
            if len(shape) == 3:  # [rows, tokens, features]: the projections and feed-forward
                counts.add(shape[1])
    return counts


def test_the_exported_top_layer_computes_only_the_pooled_tokens(trained_model: Path, tmp_path: Path) -> None:
    loaded = load_model_dir(trained_model)
    export_onnx(loaded.net, tmp_path / "exported.onnx")
    ids, mask, types, pool = _batch(loaded)
    width, sentence = ids.shape[1], int(pool.sum(1).max())
    feed = dict(zip(INPUTS, (t.numpy() for t in (ids, mask, types, pool[:, :sentence]))))
    assert _matmul_token_counts(tmp_path / "exported.onnx", feed, tmp_path) == {width, sentence}


def test_an_encoder_the_rewrite_does_not_match_is_exported_whole(trained_model: Path, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import onnxruntime

    loaded = load_model_dir(trained_model)
    real_layer = sentence_top.encoder_layer

    def wrong_layer(layer, states, blocked, queries=None):  # type: ignore[no-untyped-def]
        return real_layer(layer, states, blocked, queries).flip(-1)  # hidden features in reverse

    monkeypatch.setattr(sentence_top, "encoder_layer", wrong_layer)
    net = loaded.net.eval()
    assert sentence_top.sentence_top_net(net, example_inputs(net.encoder.config.vocab_size)) is None
    export_onnx(net, tmp_path / "exported.onnx")
    ids, mask, types, pool = _batch(loaded)
    narrowed = pool[:, :int(pool.sum(1).max())]  # the whole network takes the narrowed mask too
    feed = dict(zip(INPUTS, (t.numpy() for t in (ids, mask, types, narrowed))))
    assert _matmul_token_counts(tmp_path / "exported.onnx", feed, tmp_path) == {ids.shape[1]}
    session = onnxruntime.InferenceSession(str(tmp_path / "exported.onnx"), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        expected = net(ids, mask, types, pool)
    for name, value in zip(OUTPUTS, session.run(None, feed)):
        np.testing.assert_allclose(value, expected[name].numpy(), atol=1e-4)
