"""The retraining loop end to end, through the CLI, with a tiny real model:
annotate → select → export to Label Studio → import annotations → train → evaluate → diff."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.corpus_io import read_sentences
from tests.interop.tiny_model import write_tiny_config

REPO = Path(__file__).resolve().parents[2]
INPUTS = ("int01_psychiatrist.txt", "int04_social_worker.csv", "int06_peer_worker.jsonl")
runner = CliRunner()


def epistance(*args: object) -> str:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, f"epistance {args[0]}: {result.output}"
    return result.output


def human_labels(text: str, predicted: list[dict]) -> list[dict]:  # type: ignore[type-arg]
    """A stand-in annotator with simple, consistent habits (and a mind of their own)."""
    words = text.lower()
    stance = "experiential" if any(w in words for w in (" i ", "i'", " felt", " my ")) else \
        "none" if text.rstrip().endswith("?") or len(words.split()) < 5 else "objective"
    emotions = ["fear"] if any(w in words for w in ("worr", "scar", "afraid")) else \
        ["sadness"] if any(w in words for w in ("sad", "lost", "hard")) else ["neutral"]
    affect = "yes" if any(w in words for w in ("feel", "felt", "emotion", "upset")) else "no"
    result = json.loads(json.dumps(predicted))
    for item, values in zip(result, ([stance], emotions, [affect])):
        item["value"]["choices"] = values
    return result


def test_annotate_select_export_import_train_evaluate_diff(tiny_model: Path, tmp_path: Path) -> None:
    work = tiny_model.parents[2]  # where the tiny model's base encoder, data and registry live
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for name in INPUTS:
        shutil.copyfile(REPO / "data_samples" / name, inputs / name)
    speakers = REPO / "data_samples" / "speakers.csv"

    # 1. annotate with the current model
    old = tmp_path / "out_v1"
    epistance("annotate", inputs, "--out", old, "--model", tiny_model, "--metadata", speakers)
    tagged = {r.sentence_id: r for r in read_sentences(old) if r.tagged}
    assert tagged and all(r.stance is not None for r in tagged.values())

    # 2. select what to annotate next
    batch = tmp_path / "batch.jsonl"
    output = epistance("select", old, "--n", "24", "--out", batch, "--by", "profession")
    chosen = [json.loads(line) for line in batch.read_text().splitlines()]
    assert len(chosen) == 24 and {c["group"] for c in chosen} == {"psychiatrist", "social_worker", "peer_worker"}
    assert "selected 24" in output

    # 3. export to Label Studio, 4. "annotate" there, and import the annotations
    tasks_path = tmp_path / "tasks.json"
    epistance("export", "labelstudio", old, tasks_path, "--only", batch)
    tasks = json.loads(tasks_path.read_text())
    assert [t["data"]["sentence_id"] for t in tasks] == [c["sentence_id"] for c in chosen]
    assert all(t["predictions"][0]["model_version"] == "tiny-tagger@0.0.1" for t in tasks)
    for number, task in enumerate(tasks, start=1):
        task["id"] = number
        task["annotations"] = [{"id": number, "completed_by": 1, "was_cancelled": False,
                                "result": human_labels(task["data"]["text"], task["predictions"][0]["result"])}]
    (tmp_path / "ls_export.json").write_text(json.dumps(tasks))
    gold_v2 = tmp_path / "gold_v2.jsonl"
    base_gold = work / "gold.jsonl"
    output = epistance("import-annotations", tmp_path / "ls_export.json", "--out", gold_v2, "--corpus", old,
                       "--annotator", "ann1", "--base", base_gold)
    rows = [json.loads(line) for line in gold_v2.read_text().splitlines()]
    imported = [r for r in rows if r.get("producer") == "human:ann1"]
    assert len(imported) == 24 and len(rows) == len(base_gold.read_text().splitlines()) + 24
    assert all(r["text"] == tagged[r["id"]].text for r in imported)

    # 5. retrain on the merged data
    config = write_tiny_config(tmp_path / "tiny-v2.toml", work / "base", gold_v2, work / "goemotions",
                               version="0.0.2")
    new_model = tmp_path / "registry" / "tiny-tagger" / "0.0.2"
    epistance("train", "--config", config, "--out", new_model)
    metrics = json.loads((new_model / "metrics.json").read_text())
    imported_train = sum(r["split"] == "train" for r in imported)
    base_train = sum(json.loads(line)["split"] == "train" for line in base_gold.read_text().splitlines())
    assert metrics["data"]["gold_train"] == base_train + imported_train  # the new annotations were trained on

    # 6. evaluate the new model on held-out rows
    held_out = tmp_path / "held_out.jsonl"
    held_out.write_text("".join(json.dumps(r) + "\n" for r in rows if r["split"] == "test"))
    epistance("evaluate", new_model, "--data", held_out, "--out", tmp_path / "eval.json")
    evaluation = json.loads((tmp_path / "eval.json").read_text())
    assert evaluation["model"] == "tiny-tagger@0.0.2" and 0.0 <= evaluation["stance"]["macro_f1"] <= 1.0

    # 7. annotate again with the new model and diff the two versions
    new = tmp_path / "out_v2"
    epistance("annotate", inputs, "--out", new, "--model", new_model, "--metadata", speakers)
    output = epistance("diff", old, new, "--by", "profession", "--out", tmp_path / "diff.json")
    diff = json.loads((tmp_path / "diff.json").read_text())
    assert (diff["old"]["model"], diff["new"]["model"]) == ("tiny-tagger@0.0.1", "tiny-tagger@0.0.2")
    assert diff["matched"] == len(tagged) and diff["only_old"] == diff["only_new"] == 0
    assert all(0.0 <= rate <= 1.0 for rate in diff["flip_rate"].values())
    assert sum(map(sum, diff["matrices"]["stance"]["counts"])) == len(tagged)
    assert set(diff["groups"]) == {"psychiatrist", "social_worker", "peer_worker"}
    assert "tiny-tagger@0.0.1" in output and "tiny-tagger@0.0.2" in output
    # and how the model now agrees with the annotator on the annotated sentences
    epistance("agreement", new, tmp_path / "gold_v2.jsonl", "--out", tmp_path / "agreement.json")
    assert json.loads((tmp_path / "agreement.json").read_text())["items_common"] == 24
