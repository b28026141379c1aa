"""The interop commands through the `epistance` CLI: outputs, summaries, exit codes, error lines."""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

from typer.testing import CliRunner

from pipeline.cli import app

runner = CliRunner()


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, [str(a) for a in args])


def test_export_commands(corpus: Path, tmp_path: Path) -> None:
    result = invoke("export", "qdpx", corpus, tmp_path / "study.qdpx")
    assert result.exit_code == 0, result.output
    assert "6 transcripts" in result.output and "speaker cases" in result.output
    assert "project.qde" in zipfile.ZipFile(tmp_path / "study.qdpx").namelist()
    result = invoke("export", "labelstudio", corpus, tmp_path / "tasks.json")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "tasks.config.xml").is_file() and json.loads((tmp_path / "tasks.json").read_text())
    result = invoke("export", "csv", corpus, tmp_path / "sheet.csv", "--prefill")
    assert result.exit_code == 0 and "rows to" in result.output
    result = invoke("export", "--help")
    assert all(name in result.output for name in ("qdpx", "labelstudio", "csv"))


def test_select_import_agreement_view(corpus: Path, corpus_v2: Path, tmp_path: Path) -> None:
    batch = tmp_path / "batch.jsonl"
    result = invoke("select", corpus, "--n", "15", "--out", batch, "--by", "profession", "--strategy", "margin")
    assert result.exit_code == 0, result.output
    assert len(batch.read_text().splitlines()) == 15 and "peer_worker" in result.output
    assert invoke("export", "labelstudio", corpus, tmp_path / "tasks.json", "--only", batch).exit_code == 0
    tasks = json.loads((tmp_path / "tasks.json").read_text())
    for number, task in enumerate(tasks, start=1):
        task["id"] = number
        task["annotations"] = [{"id": number, "completed_by": 3, "result": task["predictions"][0]["result"]}]
    (tmp_path / "export.json").write_text(json.dumps(tasks))
    human = tmp_path / "human.jsonl"
    result = invoke("import-annotations", tmp_path / "export.json", "--out", human, "--corpus", corpus,
                    "--annotator", "ann1")
    assert result.exit_code == 0, result.output
    assert "imported 15 annotated sentences" in result.output and "ann1 (15)" in result.output
    result = invoke("agreement", corpus, human, "--out", tmp_path / "agreement.json")
    assert result.exit_code == 0, result.output
    figures = json.loads((tmp_path / "agreement.json").read_text())
    assert figures["stance"]["kappa"] == 1.0 and figures["b"] == "human:ann1"  # the human kept every pre-annotation
    result = invoke("diff", corpus, corpus_v2, "--by", "profession", "--out", tmp_path / "diff.json")
    assert result.exit_code == 0, result.output
    assert "flip rate" in result.output and "hash-tagger@0.0.1" in result.output
    assert json.loads((tmp_path / "diff.json").read_text())["by"] == "profession"
    result = invoke("view", corpus, "--out", tmp_path / "view", "--transcript", "int02_nurse")
    assert result.exit_code == 0 and (tmp_path / "view" / "int02_nurse.html").is_file()


def test_errors_exit_2_naming_file_and_row(corpus: Path, tmp_path: Path) -> None:
    tasks = json.loads(json.dumps([{"data": {"sentence_id": "int01_psychiatrist/t0001/s000", "text": "changed",
                                             "transcript_id": "int01_psychiatrist", "text_sha256": "0" * 64},
                                    "annotations": [{"completed_by": 1, "result": []}]}]))
    (tmp_path / "export.json").write_text(json.dumps(tasks))
    result = invoke("import-annotations", tmp_path / "export.json", "--out", tmp_path / "gold.jsonl")
    assert result.exit_code == 2
    assert "[E601]" in result.output and "export.json, task 1, sentence int01_psychiatrist/t0001/s000" in result.output
    assert not (tmp_path / "gold.jsonl").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    result = invoke("select", empty, "--n", "5", "--out", tmp_path / "b.jsonl")
    assert result.exit_code == 2 and "[E500]" in result.output and "sentences.jsonl" in result.output
