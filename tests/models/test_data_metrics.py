"""Splits, data loading errors, config validation and the metrics' conventions."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from pydantic import ValidationError

from models.config import DEFAULT_TRAIN_CONFIG, TrainConfig, load_train_config
from models.data import Example, assign_split, load_goemotions, load_gold
from models.errors import DataError
from models.evaluate import compute_metrics
from models.labels import load_label_schema
from pipeline.tag import SentencePrediction

CANARY = "zqxcanary"  # the same marker conftest puts in the tiny gold data

SCHEMA = load_label_schema()


def test_assign_split_is_deterministic_and_roughly_70_10_20() -> None:
    counts = Counter(assign_split(f"interview-{i}") for i in range(20000))
    assert set(counts) == {"train", "dev", "test"}
    assert abs(counts["train"] / 20000 - 0.7) < 0.02
    assert abs(counts["dev"] / 20000 - 0.1) < 0.02
    assert abs(counts["test"] / 20000 - 0.2) < 0.02
    assert assign_split("day1_consultation01") == assign_split("day1_consultation01")


def test_gold_errors_cite_line_and_field_but_not_text(tmp_path: Path) -> None:
    good = {"id": "a", "text": f"fine {CANARY}", "source": "s", "transcript": "t", "speaker": "doctor",
            "split": "train", "stance": "objective", "emotions": [], "affect_focus": False}
    path = tmp_path / "gold.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps({**good, "id": "b", "stance": "subjective"}) + "\n")
    with pytest.raises(DataError) as err:
        load_gold(path, SCHEMA)
    assert ":2:" in str(err.value) and "stance" in str(err.value) and CANARY not in str(err.value)
    path.write_text(json.dumps({**good, "emotions": ["joy", "boredom"]}) + "\n")
    with pytest.raises(DataError, match="emotions"):
        load_gold(path, SCHEMA)
    path.write_text(json.dumps({k: v for k, v in good.items() if k != "split"}) + "\n")
    with pytest.raises(DataError, match="split"):
        load_gold(path, SCHEMA)


def test_gold_layers_may_be_absent(tmp_path: Path) -> None:
    row = {"id": "a", "text": "x", "source": "s", "transcript": "t", "split": "dev",
           "stance": None, "emotions": ["joy"], "affect_focus": None}
    path = tmp_path / "gold.jsonl"
    path.write_text(json.dumps(row) + "\n")
    (ex,) = load_gold(path, SCHEMA)
    assert ex.stance is None and ex.emotions == ("joy",) and ex.affect_focus is None
    assert load_gold(path, SCHEMA, splits=["train"]) == []


def test_goemotions_neutral_is_the_empty_set(tiny_data: dict[str, Path]) -> None:
    examples = load_goemotions(tiny_data["goemotions"], "dev", SCHEMA)
    by_id = {ex.transcript: ex for ex in examples}
    assert by_id["devn00"].emotions == ()
    assert by_id["devmulti0"].emotions == ("joy", "surprise")
    assert all(ex.stance is None and ex.affect_focus is None for ex in examples)
    kept = load_goemotions(tiny_data["goemotions"], "dev", SCHEMA, exclude_ids={"devmulti0"})
    assert len(kept) == len(examples) - 1


def test_default_config_loads_and_unknown_keys_are_rejected(tmp_path: Path) -> None:
    config = load_train_config(DEFAULT_TRAIN_CONFIG)
    assert config.model.finetune in ("lora", "full")
    bad = tmp_path / "bad.toml"
    bad.write_text(DEFAULT_TRAIN_CONFIG.read_text() + "\nlearning_rate = 0.1\n")
    with pytest.raises(ValidationError):
        load_train_config(bad)
    with pytest.raises(ValidationError):
        TrainConfig.model_validate({"optim": {"batch_sise": 3}})


def test_config_round_trips_through_toml(tmp_path: Path) -> None:
    config = load_train_config(DEFAULT_TRAIN_CONFIG)
    path = tmp_path / "c.toml"
    path.write_text(config.to_toml())
    assert load_train_config(path) == config


def _pred(stance: str, emotions: list[str], affect: bool) -> SentencePrediction:
    probs = {e: (0.9 if e in emotions else 0.1) for e in SCHEMA.emotion_labels}
    return SentencePrediction(
        stance=stance, stance_probs={s: (0.8 if s == stance else 0.1) for s in SCHEMA.stance_labels},
        emotions=emotions, emotion_probs=probs, affect_focus=affect, affect_focus_prob=0.9 if affect else 0.1,
    )


def test_metrics_conventions() -> None:
    ex = [
        Example("1", "t", "a", "test", speaker="doctor", stance="objective", emotions=(), affect_focus=False),
        Example("2", "t", "a", "test", speaker="patient", stance="experiential", emotions=("joy",), affect_focus=True),
        Example("3", "t", "b", "test", speaker="patient", stance="none", emotions=("fear",), affect_focus=True),
        Example("4", "t", "b", "test", speaker="doctor", stance=None, emotions=None, affect_focus=None),
    ]
    preds = [
        _pred("objective", [], False),
        _pred("experiential", ["joy"], True),
        _pred("experiential", [], False),
        _pred("none", [], False),
    ]
    m = compute_metrics(ex, preds, SCHEMA)
    assert m["stance"]["n"] == 3  # the row without stance is not scored
    assert m["stance"]["accuracy"] == pytest.approx(2 / 3, abs=1e-4)
    assert m["stance"]["confusion_matrix"]["matrix"] == [[1, 0, 0], [0, 1, 0], [0, 1, 0]]
    em = m["emotions"]
    # neutral: gold on row 1, predicted on rows 1 and 3 -> P 0.5, R 1
    assert em["per_class"]["neutral"]["precision"] == 0.5 and em["per_class"]["neutral"]["recall"] == 1.0
    assert em["per_class"]["joy"]["f1"] == 1.0 and em["per_class"]["fear"]["f1"] == 0.0
    assert em["confusion_matrix_single_label"]["matrix"][2][6] == 1  # gold fear, predicted neutral
    # macro over all 6 emotions (absent ones score 0) vs over 7 with neutral
    assert em["macro_f1_6"] == pytest.approx(1 / 6, abs=1e-4)
    assert em["macro_f1_7"] == pytest.approx((1 + 2 / 3) / 7, abs=1e-4)
    assert m["affect_focus"]["f1"] == pytest.approx(2 / 3, abs=1e-4)
    assert set(m["by_speaker"]) == {"doctor", "patient"} and m["by_source"]["b"]["n"] == 2
