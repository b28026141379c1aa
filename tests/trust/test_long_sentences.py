"""RELIABILITY C21: a sentence longer than the model's window is scored in overlapping
windows (no token dropped) and counted in the run record; ordinary sentences score
exactly as before."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from models.artifact import load_model_dir
    from tests.interop.tiny_model import train_tiny

    folder = train_tiny(tmp_path_factory.mktemp("tiny"))
    return folder, load_model_dir(folder)


LONG = " ".join(["the ward was busy and I was scared"] * 30)


def test_windows_cover_every_token_and_short_texts_are_unchanged(tiny) -> None:  # type: ignore[no-untyped-def]
    from models.tagger import batched_logits, encode, encode_windows, pool_windows

    _, loaded = tiny
    texts = ["I was scared on the ward.", LONG, ""]
    windows, counts = encode_windows(loaded.tokenizer, texts, loaded.spec.max_length)
    assert counts[0] == 1 and counts[1] > 1 and counts[2] == 1
    assert all(len(w) <= loaded.spec.max_length for w in windows)
    body = loaded.tokenizer([LONG], add_special_tokens=False)["input_ids"][0]
    assert set(body) <= {t for w in windows[1:1 + counts[1]] for t in w}
    old_ids = encode(loaded.tokenizer, texts, loaded.spec.max_length)
    assert windows[0] == old_ids[0] and windows[-1] == old_ids[2]  # what fits is encoded exactly as before
    pad = loaded.tokenizer.pad_token_id or 0
    before = batched_logits(loaded.net, old_ids, pad)
    after = pool_windows(batched_logits(loaded.net, windows, pad), counts)
    for layer in before:  # equal up to float noise from other batch mates (as today)
        assert after[layer].shape == before[layer].shape
        assert np.allclose(before[layer][[0, 2]], after[layer][[0, 2]], atol=1e-5)


def test_windowed_sentences_are_counted_in_the_run_record(tiny, tmp_path: Path, segmenter) -> None:  # type: ignore[no-untyped-def]
    from models.registry import load_tagger
    from pipeline.annotate import annotate_corpus
    from pipeline.config import RunConfig
    from pipeline.ingest.metadata import SpeakerTable
    from pipeline.tag import LoadedTagger

    folder, _ = tiny
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "long.txt").write_text(f"P01: {LONG}\nP01: Short one.\n")
    summary = annotate_corpus([inputs], tmp_path / "out", RunConfig(), LoadedTagger(load_tagger(str(folder))),
                              SpeakerTable(), segmenter=segmenter)
    assert summary.sentences_windowed == 1
    assert json.loads((tmp_path / "out" / "run.json").read_text())["sentences_windowed"] == 1


def test_windowed_counts_stay_with_their_transcript_when_tagged_together(tiny, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                                        segmenter) -> None:
    from models.registry import load_tagger
    from pipeline.annotate import annotate_corpus
    from pipeline.config import OrchestrationConfig, RunConfig
    from pipeline.ingest.metadata import SpeakerTable
    from pipeline.tag import LoadedTagger

    folder, _ = tiny
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "a_long.txt").write_text(f"P01: {LONG}\nP01: Short one.\n")
    (inputs / "b_short.txt").write_text("P02: Another short one. And one more.\n")
    config = RunConfig(orchestration=OrchestrationConfig(max_workers=1))  # one lane: one group, one model call
    source = LoadedTagger(load_tagger(str(folder)))
    first = annotate_corpus([inputs], tmp_path / "out", config, source, SpeakerTable(), segmenter=segmenter)
    assert first.transcripts_processed == 2 and first.sentences_windowed == 1
    (inputs / "a_long.txt").unlink()
    again = annotate_corpus([inputs], tmp_path / "out", config, source, SpeakerTable(), segmenter=segmenter)
    assert again.transcripts_processed == 0 and again.sentences_windowed == 0  # b_short's cached part has none


def test_the_tagger_says_which_texts_it_windowed_and_shares_its_threads(tiny) -> None:  # type: ignore[no-untyped-def]
    import torch

    from models.registry import load_tagger

    folder, _ = tiny
    tagger = load_tagger(str(folder))
    texts, contexts = ["I was scared on the ward.", LONG], ["We talked.", "We talked."]
    predictions, windowed = tagger.predict_windowed(texts, contexts)
    assert windowed == [False, True] and predictions == tagger.predict(texts, contexts)
    original = torch.get_num_threads()
    try:
        torch.set_num_threads(4)
        with tagger.lanes(2):
            assert torch.get_num_threads() == 2  # each of two lanes on its share of the cores
        assert torch.get_num_threads() == 4
        with tagger.lanes(8):
            assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(original)
