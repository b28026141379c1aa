"""Fixtures for the models tests: a tiny randomly initialised BERT built locally (no hub),
tiny synthetic data sets in the gold and GoEmotions formats, and one tiny trained model.

The sentences below were written for these tests; CANARY marks text that must never
reach logs, metrics or model cards.
"""
from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

CANARY = "zqxcanary"

WORDS = ["the", "a", "i", "was", "felt", "it", "is", "she", "he", "we", "they", "and", "to", "of", "in", "that", "my", "not", "you", "what", "how", "very", "so", "dose", "guideline", "trial", "risk", "clinic", "ward", "blood", "test", "shows", "most", "patients", "evidence", "scared", "happy", "angry", "sad", "disgusting", "wow", "sorry", "worried", "glad", "hate", "love", "terrible", "great", "yes", "no", "mm", "okay", "right", "thanks", "when", "remember", "told", "me", "her", "him", "feel", "feeling", "feelings", "sit", "with", "distress", "care", "plan", "review", "zq", "x", "canary"]
LETTERS = "abcdefghijklmnopqrstuvwxyz"
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *dict.fromkeys(WORDS), *LETTERS, *".,?!'",
         *(f"##{c}" for c in LETTERS)]

STANCE_TEXT = {
    "objective": ["the guideline shows most patients need a blood test", "the trial evidence on risk is clear",
                  "every dose is checked in the clinic", "the care plan review is in the ward"],
    "experiential": ["when i was in the ward i felt scared", "she told me her feelings were terrible",
                     "i remember that day very well", "we felt so happy when he came"],
    "none": ["mm okay", "yes right", "how do you feel ?", "thanks so much"],
}
EMOTION_TEXT = {
    "anger": "i hate it so angry", "disgust": "that is disgusting", "fear": "i was scared and worried",
    "joy": "so happy and glad", "sadness": "very sad and sorry", "surprise": "wow what",
}


def _write_tiny_base(folder: Path) -> Path:
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = BertTokenizer(vocab={tok: i for i, tok in enumerate(VOCAB)})
    tokenizer.save_pretrained(str(folder))
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(VOCAB), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)
    BertModel(config).save_pretrained(str(folder))
    return folder


def _gold_rows() -> list[dict[str, object]]:
    rng = random.Random(0)
    rows = []
    n = 0
    for split, transcripts in (("train", 6), ("dev", 2), ("test", 2)):
        for t in range(transcripts):
            for stance, texts in STANCE_TEXT.items():
                for text in texts[:3]:
                    emo = rng.choice([[], [], ["fear"], ["joy"], ["sadness"]])
                    affect = "feel" in text or bool(emo)
                    rows.append({
                        "id": f"g{n:04d}", "text": f"{text} {CANARY}" if n == 0 else text, "source": "synthetic",
                        "transcript": f"{split}{t}", "speaker": "doctor" if t % 2 else "patient", "split": split,
                        "stance": stance, "emotions": emo, "affect_focus": affect,
                        "context": texts[0] if n % 2 else "",  # the talk before, on every other row
                    })
                    n += 1
    return rows


def _write_goemotions(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    names = ["anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise"]
    (folder / "labels.txt").write_text("\n".join(names))
    neutral = ["the clinic is open", "we went to the ward", "it is a test"]
    for split, reps in (("train", 4), ("dev", 2), ("test", 2)):
        lines = []
        for r in range(reps):
            for label, text in EMOTION_TEXT.items():
                lines.append(f"{text}\t{names.index(label)}\t{split}{label}{r}")
            for k, text in enumerate(neutral):
                lines.append(f"{text}\t4\t{split}n{k}{r}")
            lines.append(f"so happy wow\t3,6\t{split}multi{r}")
        (folder / f"{split}.tsv").write_text("\n".join(lines) + "\n")
    return folder


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write_tiny_base(tmp_path_factory.mktemp("tiny") / "base")


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("data")
    gold = root / "gold.jsonl"
    gold.write_text("".join(json.dumps(r) + "\n" for r in _gold_rows()))
    return {"gold": gold, "goemotions": _write_goemotions(root / "goemotions")}


@pytest.fixture(scope="session")
def make_config(tiny_base: Path, tiny_data: dict[str, Path]):  # type: ignore[no-untyped-def]
    from models.config import TrainConfig

    def make(**overrides: object) -> TrainConfig:
        raw: dict[str, object] = {
            "model_id": "tiny-tagger",
            "version": "0.0.1",
            "seed": 7,
            "num_threads": 1,
            "base": {"model": str(tiny_base)},
            "data": {"gold": str(tiny_data["gold"]), "goemotions_dir": str(tiny_data["goemotions"]),
                     "goemotions_train_max": 20, "indomain_share": 0.5},
            "model": {"lora_r": 4, "lora_alpha": 8, "lora_targets": ["query", "value", "dense"]},
            "optim": {"batch_size": 8, "max_steps": 6, "eval_every": 3, "warmup_steps": 1, "patience": 2,
                      "bucket_batches": 2, "lr_encoder": 1e-3, "lr_heads": 1e-2},
        }
        for key, value in overrides.items():
            if isinstance(value, dict):
                raw[key] = {**raw.get(key, {}), **value}  # type: ignore[dict-item]
            else:
                raw[key] = value
        return TrainConfig.model_validate(raw)

    return make


@pytest.fixture(scope="session")
def trained_model(make_config, tmp_path_factory: pytest.TempPathFactory) -> Path:  # type: ignore[no-untyped-def]
    from models.train import train_model

    return train_model(make_config(), tmp_path_factory.mktemp("trained") / "tiny-tagger")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: needs the real base model or a trained default model")
