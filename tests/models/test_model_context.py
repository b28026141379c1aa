"""Context after the sentence: encoding, batching, training and inference with it."""
from __future__ import annotations

from pathlib import Path

import pytest

from models.registry import clear_cache, load_tagger
from models.tagger import attach_context, encode, pad_batch

SENTENCES = ["i was scared and worried", "mm okay", "the trial evidence on risk is clear"]
CONTEXTS = ["how do you feel ?", "", "when i was in the ward i felt scared " * 20]


@pytest.fixture(scope="module")
def tokenizer(tiny_base: Path):  # type: ignore[no-untyped-def]
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_base), local_files_only=True)


@pytest.fixture(scope="module")
def context_model(make_config, tmp_path_factory: pytest.TempPathFactory) -> Path:  # type: ignore[no-untyped-def]
    from models.train import train_model

    config = make_config(version="0.0.2", model={"finetune": "full", "context_tokens": 8})
    return train_model(config, tmp_path_factory.mktemp("ctx") / "tiny-tagger-ctx")


def test_context_tail_follows_the_sentence_within_max_length(tokenizer) -> None:  # type: ignore[no-untyped-def]
    ids = encode(tokenizer, SENTENCES, 16)
    rows, lengths = attach_context(tokenizer, ids, CONTEXTS, 16, 8)
    assert lengths == [len(r) for r in ids]
    for row, sentence, length in zip(rows, ids, lengths):
        assert row[:length] == sentence  # the sentence part is untouched
        assert len(row) <= 16
    assert rows[1] == ids[1]  # no context, nothing added
    # the tail of the context (the words nearest the sentence), closed by [SEP]
    scared = tokenizer.convert_tokens_to_ids("scared")
    assert rows[2][-1] == tokenizer.sep_token_id and rows[2][-2] == scared
    assert len(rows[2]) == 16  # cut to the room left, not past max_length
    rows0, _ = attach_context(tokenizer, ids, CONTEXTS, 16, 0)
    assert rows0 == ids


def test_pad_batch_marks_context_as_type_one_and_pools_the_sentence(tokenizer) -> None:  # type: ignore[no-untyped-def]
    ids = encode(tokenizer, SENTENCES, 32)
    rows, lengths = attach_context(tokenizer, ids, CONTEXTS, 32, 6)
    _ids, mask, types, pool = pad_batch(rows, 0, lengths)
    for i, (row, n) in enumerate(zip(rows, lengths)):
        assert mask[i].sum() == len(row)
        assert pool[i].sum() == n and bool(pool[i, :n].all())
        assert types[i, :n].sum() == 0 and types[i, n:len(row)].sum() == len(row) - n
        assert types[i, len(row):].sum() == 0  # padding is neither
    assert pad_batch(ids, 0, [len(r) for r in ids])[2] is None  # no context anywhere: plain batch


def test_model_trained_with_context_reads_it(context_model: Path) -> None:
    clear_cache()
    tagger = load_tagger(str(context_model))
    assert tagger.context_tokens == 8
    alone = tagger.predict(SENTENCES)
    empty = tagger.predict(SENTENCES, ["", "", ""])
    assert [p.stance_probs for p in alone] == [p.stance_probs for p in empty]
    with_context = tagger.predict(SENTENCES, CONTEXTS)
    assert with_context[0].stance_probs != alone[0].stance_probs  # the context changed what it saw
    assert with_context[1].stance_probs == alone[1].stance_probs  # "" is no context
    with pytest.raises(ValueError, match="contexts"):
        tagger.predict(SENTENCES, ["one"])


def test_model_without_context_ignores_it(trained_model: Path) -> None:
    tagger = load_tagger(str(trained_model))
    assert tagger.context_tokens == 0
    assert tagger.predict(SENTENCES, CONTEXTS) == tagger.predict(SENTENCES)


def test_int8_precision_is_a_separate_valid_tagger(context_model: Path) -> None:
    clear_cache()
    exact = load_tagger(str(context_model))
    fast = load_tagger(str(context_model), precision="int8")
    assert fast is not exact and (fast.precision, exact.precision) == ("int8", "float32")
    assert load_tagger(str(context_model), precision="int8") is fast  # cached per precision
    preds = fast.predict(SENTENCES, CONTEXTS)
    reference = exact.predict(SENTENCES, CONTEXTS)
    for p, r in zip(preds, reference):
        assert p.stance_probs == pytest.approx(r.stance_probs, abs=0.05)
    for p, r in zip(fast.predict(SENTENCES), exact.predict(SENTENCES)):  # no context: no token types
        assert p.stance_probs == pytest.approx(r.stance_probs, abs=0.05)
    with pytest.raises(ValueError, match="precision"):
        load_tagger(str(context_model), precision="int4")


def test_the_exported_network_computes_what_torch_computes(context_model: Path, tmp_path: Path) -> None:
    import numpy as np
    import onnxruntime
    import torch

    from models.artifact import load_model_dir
    from models.onnx_int8 import export_onnx
    from models.tagger import attach_context, encode, pad_batch

    loaded = load_model_dir(context_model)
    net = loaded.net.eval()
    ids = encode(loaded.tokenizer, SENTENCES, 64)
    ids, lengths = attach_context(loaded.tokenizer, ids, CONTEXTS, 64, 8)
    inputs = pad_batch(ids, int(loaded.tokenizer.pad_token_id), lengths)
    assert inputs[2] is not None and inputs[3] is not None  # token types and pooling mask both used
    attention = net.encoder.config._attn_implementation
    export_onnx(net, tmp_path / "exported.onnx")
    assert net.encoder.config._attn_implementation == attention  # exported with eager attention, then restored
    session = onnxruntime.InferenceSession(str(tmp_path / "exported.onnx"), providers=["CPUExecutionProvider"])
    names = ["input_ids", "attention_mask", "token_type_ids", "pool_mask"]
    onnx_logits = session.run(None, {name: t.numpy() for name, t in zip(names, inputs)})
    with torch.inference_mode():
        torch_logits = net(*inputs)
    for name, array in zip(["stance", "emotions", "affect_focus"], onnx_logits):
        np.testing.assert_allclose(array, torch_logits[name].numpy(), atol=1e-4)


def test_int8_runs_one_session_per_thread_count(context_model: Path) -> None:
    import torch

    from models.onnx_int8 import OnnxInt8Net

    clear_cache()
    fast = load_tagger(str(context_model), precision="int8")
    net = fast._loaded.net  # type: ignore[attr-defined]
    assert isinstance(net, OnnxInt8Net)
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        alone = fast.predict(SENTENCES, CONTEXTS)
        with fast.lanes(2):  # type: ignore[attr-defined]
            in_lanes = fast.predict(SENTENCES, CONTEXTS)
    finally:
        torch.set_num_threads(previous)
    assert sorted(net._sessions) == [1, 2]
    assert [p.stance for p in in_lanes] == [p.stance for p in alone]


def test_bfloat16_precision_stays_close_to_float32(context_model: Path) -> None:
    exact = load_tagger(str(context_model)).predict(SENTENCES, CONTEXTS)
    half = load_tagger(str(context_model), precision="bfloat16")
    assert half.precision == "bfloat16"
    for p, r in zip(half.predict(SENTENCES, CONTEXTS), exact):
        assert p.stance_probs == pytest.approx(r.stance_probs, abs=0.05)


def test_context_dropout_reads_a_seeded_share_of_items_alone() -> None:
    import random

    from models.train import drop_contexts

    rows = [[101, i, 102, 7, 102] for i in range(400)]
    lengths = [3] * 400
    bare = [row[:3] for row in rows]
    batch = list(range(400))
    rng = random.Random(5)
    assert drop_contexts(batch, rows, lengths, 0.0, rng) == rows
    assert rng.random() == random.Random(5).random()  # share 0 draws nothing: old runs unchanged
    assert drop_contexts(batch, rows, lengths, 1.0, random.Random(5)) == bare
    some = drop_contexts(batch, rows, lengths, 0.3, random.Random(5))
    assert some == drop_contexts(batch, rows, lengths, 0.3, random.Random(5))  # seeded
    dropped = sum(row == bare[i] for i, row in enumerate(some))
    assert 80 < dropped < 160  # about 30% of 400
    assert all(row in (rows[i], bare[i]) for i, row in enumerate(some))


def test_a_dropped_context_leaves_exactly_the_sentence_alone(tokenizer) -> None:  # type: ignore[no-untyped-def]
    import random

    from models.train import drop_contexts

    ids = encode(tokenizer, SENTENCES, 32)
    rows, lengths = attach_context(tokenizer, ids, CONTEXTS, 32, 6)
    assert drop_contexts(range(3), rows, lengths, 1.0, random.Random(0)) == ids


def test_training_with_context_dropout_keeps_the_context_reader(make_config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from models.train import train_model

    config = make_config(version="0.0.3", model={"finetune": "full", "context_tokens": 8, "context_dropout": 0.5})
    folder = train_model(config, tmp_path / "tiny-tagger-ctx-dropout")
    clear_cache()
    tagger = load_tagger(str(folder))
    assert tagger.context_tokens == 8  # dropout is a training matter: the model still reads context
    assert tagger.predict(SENTENCES, CONTEXTS)[0].stance_probs != tagger.predict(SENTENCES)[0].stance_probs
    assert "context_dropout = 0.5" in (folder / "train_config.toml").read_text()


def test_a_network_that_cannot_be_exported_gives_a_clear_model_error(context_model: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from models import onnx_int8
    from models.errors import ModelError

    def broken_export(net, path):  # type: ignore[no-untyped-def]
        raise RuntimeError("an operator the exporter does not know")

    monkeypatch.setattr(onnx_int8, "export_onnx", broken_export)
    monkeypatch.setenv("EPISTANCE_CACHE_DIR", "off")  # an earlier test's quantised model is not the question
    clear_cache()
    with pytest.raises(ModelError, match="cannot run in int8.*bfloat16 or float32"):
        load_tagger(str(context_model), precision="int8")
