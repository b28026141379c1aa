"""Label Studio round trip: tasks with pre-annotations and a config out, annotations back as gold rows."""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from models.data import load_gold
from models.labels import load_label_schema
from pipeline.corpus_io import read_sentences
from pipeline.interop.annotations import write_gold
from pipeline.interop.errors import AnnotationTextChangedError, InteropError, UnknownLabelError
from pipeline.interop.labelstudio import build_tasks, export_labelstudio, import_labelstudio, labeling_config


def completed(tasks: list[dict[str, Any]], user: int = 7, change_every: int = 3) -> list[dict[str, Any]]:
    """What Label Studio's JSON export looks like after someone annotated the tasks."""
    done = copy.deepcopy(tasks)
    for number, task in enumerate(done, start=1):
        task["id"] = 1000 + number
        result = copy.deepcopy(task["predictions"][0]["result"])
        if number % change_every == 0:
            result[0]["value"]["choices"] = ["none"]
            result[1]["value"]["choices"] = ["neutral"]
        task["annotations"] = [{"id": number, "completed_by": user, "result": result, "was_cancelled": False,
                                "lead_time": 3.5}]
    return done


def test_tasks_carry_predictions_and_context(corpus: Path, tmp_path: Path) -> None:
    summary = export_labelstudio(corpus, tmp_path / "tasks.json")
    tasks = json.loads((tmp_path / "tasks.json").read_text())
    tagged = [r for r in read_sentences(corpus) if r.tagged]
    assert summary.tasks == len(tasks) == len(tagged)
    first, row = tasks[0], tagged[0]
    assert first["data"]["text"] == row.text and first["data"]["sentence_id"] == row.sentence_id
    assert first["data"]["group"] == row.attributes["profession"]
    prediction = first["predictions"][0]
    assert prediction["model_version"] == "hash-tagger@0.0.1"
    by_layer = {r["from_name"]: r["value"]["choices"] for r in prediction["result"]}
    assert by_layer["stance"] == [row.stance]
    assert by_layer["emotions"] == (row.emotions or ["neutral"])
    assert by_layer["affect_focus"] == ["yes" if row.affect_focus else "no"]
    assert all(r["to_name"] == "text" and r["type"] == "choices" for r in prediction["result"])
    assert first["data"]["context"].startswith("Interviewer: ")  # the turn before, then this turn so far
    assert tasks[1]["data"]["context"].endswith(row.text)


def test_labelling_config_matches_the_codebook(tmp_path: Path) -> None:
    config = etree.fromstring(labeling_config().encode())
    schema = load_label_schema()
    choices = {c.get("name"): c for c in config.iter("Choices")}
    assert set(choices) == {"stance", "emotions", "affect_focus"}
    assert [c.get("value") for c in choices["stance"]] == list(schema.stance_labels)
    assert [c.get("value") for c in choices["emotions"]] == ["neutral", *schema.emotion_labels]
    assert [c.get("value") for c in choices["affect_focus"]] == ["yes", "no"]
    assert choices["stance"].get("choice") == "single-radio" and choices["emotions"].get("choice") == "multiple"
    assert all(c.get("toName") == "text" and c.get("required") == "true" for c in choices.values())
    assert {t.get("name") for t in config.iter("Text")} == {"text", "context"}


def test_only_exports_the_batch_in_its_order(corpus: Path) -> None:
    ids = [r.sentence_id for r in read_sentences(corpus) if r.tagged][::-7][:5]
    assert [t["data"]["sentence_id"] for t in build_tasks(corpus, ids)] == ids
    with pytest.raises(InteropError, match="not in the corpus"):
        build_tasks(corpus, ids + ["nope/t0000/s000"])


def test_import_gives_gold_rows_with_the_human_annotator(corpus: Path, tmp_path: Path) -> None:
    tasks = build_tasks(corpus)[:30]
    export = tmp_path / "export.json"
    export.write_text(json.dumps(completed(tasks)))
    summary = import_labelstudio(export, corpus_dir=corpus, annotator="ann-1")
    assert summary.annotations == 30 and summary.annotators == {"ann-1": 30}
    row = summary.rows[2]
    assert row["stance"] == "none" and row["emotions"] == [] and row["producer"] == "human:ann-1"
    assert row["id"] == tasks[2]["data"]["sentence_id"] and row["text"] == tasks[2]["data"]["text"]
    # the rows are valid training data for the trainer's loader
    gold = tmp_path / "gold.jsonl"
    write_gold(gold, summary.rows)
    examples = load_gold(gold, load_label_schema())
    assert len(examples) == 30 and examples[2].stance == "none" and examples[2].emotions == ()
    # without --annotator, Label Studio's user id is recorded
    assert import_labelstudio(export).annotators == {"labelstudio-7": 30}


def test_changed_text_is_rejected_naming_the_row_not_the_text(corpus: Path, tmp_path: Path) -> None:
    tasks = completed(build_tasks(corpus)[:5])
    secret = tasks[3]["data"]["text"]
    tasks[3]["data"]["text"] = secret + " (edited)"
    export = tmp_path / "export.json"
    export.write_text(json.dumps(tasks))
    with pytest.raises(AnnotationTextChangedError) as caught:
        import_labelstudio(export, annotator="a1")
    message = str(caught.value)
    assert "task 4 (id 1004)" in message and tasks[3]["data"]["sentence_id"] in message
    assert "export.json" in message and secret not in message
    # against the corpus too, even when the hash was edited along with the text
    del tasks[3]["data"]["text_sha256"]
    export.write_text(json.dumps(tasks))
    with pytest.raises(AnnotationTextChangedError, match="differs from the corpus"):
        import_labelstudio(export, corpus_dir=corpus, annotator="a1")


def test_unknown_labels_are_rejected_naming_the_row(corpus: Path, tmp_path: Path) -> None:
    tasks = completed(build_tasks(corpus)[:4])
    tasks[1]["annotations"][0]["result"][1]["value"]["choices"] = ["anger", "hope"]
    export = tmp_path / "export.json"
    export.write_text(json.dumps(tasks))
    with pytest.raises(UnknownLabelError, match=r"task 2 \(id 1002\).*unknown emotion label.*'hope'"):
        import_labelstudio(export, annotator="a1")
    tasks[1]["annotations"][0]["result"][1]["value"]["choices"] = ["anger", "neutral"]
    export.write_text(json.dumps(tasks))
    with pytest.raises(UnknownLabelError, match="neutral"):
        import_labelstudio(export, annotator="a1")


def test_cancelled_double_and_min_exports(corpus: Path, tmp_path: Path) -> None:
    tasks = completed(build_tasks(corpus)[:6])
    tasks[0]["annotations"][0]["was_cancelled"] = True
    second = copy.deepcopy(tasks[1]["annotations"][0])
    second.update(id=99, completed_by=8)
    tasks[1]["annotations"].append(second)
    export = tmp_path / "export.json"
    export.write_text(json.dumps(tasks))
    with pytest.raises(InteropError, match="annotated twice"):
        import_labelstudio(export)
    only_7 = import_labelstudio(export, completed_by="7")
    assert only_7.skipped_cancelled == 1 and len(only_7.rows) == 5
    assert len(import_labelstudio(export, completed_by="8").rows) == 1
    # JSON-MIN: one flat object per task, a single choice as a string
    minimal = [{**t["data"], "id": t["id"], "annotator": "ann@example.org", "stance": "objective",
                "emotions": {"choices": ["fear", "joy"]}, "affect_focus": "yes"} for t in tasks]
    export.write_text(json.dumps(minimal))
    rows = import_labelstudio(export).rows
    assert rows[0]["emotions"] == ["fear", "joy"] and rows[0]["affect_focus"] is True
    assert rows[0]["annotator"] == "ann@example.org"
