"""train_tagger_flow and compare_flow: thin wrappers that pass paths and return summaries."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from prefect.settings import PREFECT_API_URL, temporary_settings


def test_train_flow_wraps_models_commands_train(tmp_path: Path, prefect_api: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from models import commands
    from pipeline.flows.train import train_tagger_flow

    seen = {}

    def fake_train(config_path, output_dir=None, registry_dir=None, device="cpu"):  # type: ignore[no-untyped-def]
        seen.update(config=config_path, out=output_dir, device=device)
        output_dir.mkdir(parents=True)
        (output_dir / "metrics.json").write_text(json.dumps({"stance": {"macro_f1": 0.71}, "n": 5, "note": "x"}))
        return output_dir

    monkeypatch.setattr(commands, "train", fake_train)
    with temporary_settings(updates={PREFECT_API_URL: prefect_api}):
        summary = train_tagger_flow(config_path=tmp_path / "train.toml", output_dir=tmp_path / "model",
                                    device="cuda:1")
    assert seen == {"config": tmp_path / "train.toml", "out": tmp_path / "model", "device": "cuda:1"}
    assert summary.model_dir == str(tmp_path / "model")
    assert summary.metrics == {"n": 5.0, "stance.macro_f1": 0.71}


def test_compare_flow_wraps_compare_corpus(tmp_path: Path, prefect_api: str) -> None:
    from pipeline.compare.simulate import GroupSpec, SimulationSpec, simulate_corpus
    from pipeline.flows.compare import compare_flow

    corpus = simulate_corpus(SimulationSpec(groups={
        "nurse": GroupSpec(n_speakers=3, stance={"objective": 0.6, "experiential": 0.2, "none": 0.2}),
        "peer worker": GroupSpec(n_speakers=3, stance={"objective": 0.2, "experiential": 0.6, "none": 0.2}),
    }, sentences_per_speaker=15, seed=1), tmp_path / "corpus")
    with temporary_settings(updates={PREFECT_API_URL: prefect_api}):
        summary = compare_flow(corpus, ["profession"], tmp_path / "compare", n_boot=50, write_report=False)
    assert {g["group"] for g in summary.groups} == {"nurse", "peer worker"}
    assert summary.n_speakers == 6 and summary.files
    assert all((tmp_path / "compare" / name).exists() for name in summary.files)
