"""The CLI end to end (with a weight-free tagger): exit codes, summary, no tracebacks."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline import cli
from pipeline.tag import LoadedTagger
from tests.fakes import HashTagger

runner = CliRunner()


@pytest.fixture(autouse=True)
def fake_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "_tagger_source", lambda model, batch_size=64, precision="auto": LoadedTagger(HashTagger()))


def write_inputs(folder: Path) -> Path:
    folder.mkdir()
    (folder / "a.txt").write_text("Interviewer: How was it?\nP01: It felt like nobody was listening.\n")
    (folder / "b.jsonl").write_text(json.dumps({"speaker": "P02", "text": "Clozapine needs blood tests."}) + "\n")
    return folder


def test_annotate_all_good_exits_0_with_summary(tmp_path: Path) -> None:
    inputs = write_inputs(tmp_path / "in")
    sidecar = tmp_path / "speakers.csv"
    sidecar.write_text("transcript,speaker,role,profession\n*,Interviewer,interviewer,researcher\n"
                       "a,P01,participant,nurse\nb,P02,participant,psychiatrist\n")
    result = runner.invoke(cli.app, ["annotate", str(inputs), "--out", str(tmp_path / "out"), "--metadata", str(sidecar)])
    assert result.exit_code == 0, result.output
    assert "transcripts" in result.output and "2 processed" in result.output
    assert (tmp_path / "out" / "manifest.json").is_file()
    verify = runner.invoke(cli.app, ["verify", str(tmp_path / "out")])
    assert verify.exit_code == 0 and "match the manifest" in verify.output


def test_annotate_with_a_bad_file_exits_1_and_lists_it(tmp_path: Path) -> None:
    inputs = write_inputs(tmp_path / "in")
    (inputs / "scan.txt").write_bytes(b"%PDF-1.5 binary")
    result = runner.invoke(cli.app, ["annotate", str(inputs), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "scan.txt" in result.output and "E102" in result.output
    assert "Traceback" not in result.output
    assert "2 processed" in result.output


def test_bad_config_is_a_usage_error(tmp_path: Path) -> None:
    inputs = write_inputs(tmp_path / "in")
    config = tmp_path / "run.toml"
    config.write_text("[segment]\nno_such_key = 1\n")
    result = runner.invoke(cli.app, ["annotate", str(inputs), "--out", str(tmp_path / "o"), "--config", str(config)])
    assert result.exit_code == 2 and "no_such_key" in result.output


def test_bad_sidecar_is_a_usage_error(tmp_path: Path) -> None:
    inputs = write_inputs(tmp_path / "in")
    sidecar = tmp_path / "speakers.csv"
    sidecar.write_text("transcript,speaker,role\na,P01,boss\n")
    result = runner.invoke(cli.app, ["annotate", str(inputs), "--out", str(tmp_path / "o"), "--metadata", str(sidecar)])
    assert result.exit_code == 2 and "row 2" in result.output


def test_verify_fails_on_an_altered_file(tmp_path: Path) -> None:
    inputs = write_inputs(tmp_path / "in")
    runner.invoke(cli.app, ["annotate", str(inputs), "--out", str(tmp_path / "out")])
    (tmp_path / "out" / "sentences.jsonl").write_text("{}\n")
    result = runner.invoke(cli.app, ["verify", str(tmp_path / "out")])
    assert result.exit_code == 1 and "sentences.jsonl" in result.output


def test_tag_command_keeps_order_and_reports_bad_lines(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"id": "a", "text": "I was terrified."}\nnot json\n{"id": 7, "text": "Lithium is toxic."}\n')
    result = runner.invoke(cli.app, ["tag", str(source), "--out", str(tmp_path / "out.jsonl")])
    assert result.exit_code == 1 and "line 2" in result.output
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == ["a", 7]
    assert set(rows[0]) == {"id", "stance", "stance_probs", "emotions", "emotion_probs", "affect_focus",
                            "affect_focus_prob"}


def test_tag_command_passes_each_rows_context(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str] | None] = []

    class Recording(HashTagger):
        def predict(self, texts, contexts=None):  # type: ignore[no-untyped-def]
            seen.append(list(contexts) if contexts is not None else None)
            return super().predict(texts, contexts)

    monkeypatch.setattr(cli, "_tagger_source", lambda model, batch_size=64, precision="auto": LoadedTagger(Recording()))
    source = tmp_path / "in.jsonl"
    source.write_text('{"id": 1, "text": "Massive.", "context": "How big a change was it?"}\n'
                      '{"id": 2, "text": "Lithium is toxic."}\n')
    result = runner.invoke(cli.app, ["tag", str(source), "--out", str(tmp_path / "out.jsonl")])
    assert result.exit_code == 0, result.output
    assert seen == [["How big a change was it?", ""]]


def test_compare_writes_the_report_and_rejects_bad_filters(tmp_path: Path) -> None:
    inputs = write_inputs(tmp_path / "in")
    sidecar = tmp_path / "speakers.csv"
    sidecar.write_text("transcript,speaker,role,profession\n*,Interviewer,interviewer,researcher\n"
                       "a,P01,participant,nurse\nb,P02,participant,psychiatrist\n")
    runner.invoke(cli.app, ["annotate", str(inputs), "--out", str(tmp_path / "out"), "--metadata", str(sidecar),
                            "--no-prefect"])
    result = runner.invoke(cli.app, ["compare", str(tmp_path / "out"), "--by", "profession", "--out",
                                     str(tmp_path / "report"), "--n-boot", "50"])
    assert result.exit_code == 0, result.output
    assert "SMALL GROUP" in result.output
    assert (tmp_path / "report" / "report.html").is_file()
    bad = runner.invoke(cli.app, ["compare", str(tmp_path / "out"), "--by", "profession", "--out",
                                  str(tmp_path / "r2"), "--where", "novalue"])
    assert bad.exit_code == 2 and "key=value" in bad.output


def test_model_metrics_become_compare_confusion_matrices() -> None:
    from pipeline.compare_cli import confusion_from_model_metrics

    metrics = {"indomain_test": {
        "stance": {"confusion_matrix": {"labels": ["objective", "experiential", "none"],
                                        "matrix": [[8, 1, 1], [1, 8, 1], [0, 1, 9]]}},
        "emotions": {"per_label_confusion": {"joy": {"tn": 5, "fp": 1, "fn": 2, "tp": 3}}},
        "affect_focus": {"confusion": {"tn": 9, "fp": 1, "fn": 1, "tp": 4}}}}
    converted = confusion_from_model_metrics(metrics)
    assert converted == {"stance": {"labels": ["objective", "experiential", "none"],
                                    "confusion": [[8, 1, 1], [1, 8, 1], [0, 1, 9]]},
                         "emotions": {"joy": {"confusion": [[5, 1], [2, 3]]}},
                         "affect_focus": {"confusion": [[9, 1], [1, 4]]}}
    assert confusion_from_model_metrics({}) is None
