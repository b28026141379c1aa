"""Reading, selecting and grouping an annotated corpus."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.compare.corpus import assign_groups, read_corpus_table, read_model_ref, select_rows
from pipeline.errors import ConfigError, CorpusError

SECRET = "my secret childhood memory"


def row(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "transcript_id": "int01", "turn_id": "int01/t0001", "sentence_id": "int01/t0001/s001", "speaker_id": "P",
        "role": "participant", "attributes": {"profession": "nurse", "site": "A"}, "text": SECRET, "start": 0,
        "end": len(SECRET), "turn_start": None, "turn_end": None, "stance": "experiential",
        "stance_probs": {"objective": 0.1, "experiential": 0.8, "none": 0.1}, "emotions": ["sadness"],
        "emotion_probs": {"sadness": 0.7}, "affect_focus": True, "affect_focus_prob": 0.9}
    base.update(overrides)
    return base


def write_jsonl(folder: Path, rows: list[dict[str, object]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sentences.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return folder


def test_jsonl_and_parquet_read_the_same(example_corpus: Path) -> None:
    from_parquet = read_corpus_table(example_corpus, prefer="parquet")
    from_jsonl = read_corpus_table(example_corpus, prefer="jsonl")
    pd.testing.assert_frame_equal(from_parquet, from_jsonl)
    assert isinstance(from_parquet["attributes"].iloc[0], dict)
    assert read_model_ref(example_corpus) == "simulated-tagger@0.1.0"


def test_maps_as_json_strings_and_pairs(tmp_path: Path) -> None:
    rows = [row(attributes=json.dumps({"profession": "nurse"}), stance_probs=json.dumps({"objective": 1.0})),
            row(sentence_id="int01/t0001/s002", attributes=[["profession", "peer"]], emotions=None,
                emotion_probs=None)]
    frame = read_corpus_table(write_jsonl(tmp_path / "c", rows))
    assert frame["attributes"].tolist() == [{"profession": "nurse"}, {"profession": "peer"}]
    assert frame["stance_probs"].iloc[0] == {"objective": 1.0}
    assert frame["emotions"].iloc[1] is None


def test_parquet_written_with_plain_pyarrow_map(tmp_path: Path) -> None:
    folder = tmp_path / "c"
    folder.mkdir()
    table = pa.table({
        "transcript_id": ["int01"], "sentence_id": ["int01/t0001/s001"], "speaker_id": ["P"], "role": ["participant"],
        "text": ["x"], "attributes": pa.array([[("profession", "nurse")]], pa.map_(pa.string(), pa.string())),
        "stance": ["none"]})
    pq.write_table(table, folder / "sentences.parquet")
    frame = read_corpus_table(folder)
    assert frame["attributes"].iloc[0] == {"profession": "nurse"}
    assert frame["emotions"].iloc[0] is None


def test_malformed_line_names_place_not_text(tmp_path: Path) -> None:
    folder = write_jsonl(tmp_path / "c", [row()])
    with open(folder / "sentences.jsonl", "a", encoding="utf-8") as handle:
        handle.write('{"text": "' + SECRET + '", broken\n')
    with pytest.raises(CorpusError) as caught:
        read_corpus_table(folder)
    assert "line 2" in str(caught.value) and SECRET not in str(caught.value)


def test_missing_field_error_has_no_text(tmp_path: Path) -> None:
    bad = row()
    del bad["speaker_id"]
    with pytest.raises(CorpusError) as caught:
        read_corpus_table(write_jsonl(tmp_path / "c", [bad]))
    assert "speaker_id" in str(caught.value) and SECRET not in str(caught.value)


def test_no_corpus_files(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="epistance output folder"):
        read_corpus_table(tmp_path)


def test_interviewers_excluded_by_default_and_where_filters(tmp_path: Path) -> None:
    rows = [row(), row(sentence_id="a/2", role="interviewer", attributes={}),
            row(sentence_id="a/3", attributes={"profession": "peer", "site": "B"})]
    frame = read_corpus_table(write_jsonl(tmp_path / "c", rows))
    assert len(select_rows(frame, None, include_interviewers=False)) == 2
    assert len(select_rows(frame, None, include_interviewers=True)) == 3
    assert select_rows(frame, {"site": "B"}, False)["sentence_id"].tolist() == ["a/3"]
    assert select_rows(frame, {"role": "interviewer"}, False)["sentence_id"].tolist() == ["a/2"]
    with pytest.raises(ConfigError, match="known keys: role"):
        select_rows(frame, {"profesion": "nurse"}, False)


def test_groups_speakers_and_person_links(tmp_path: Path) -> None:
    rows = [row(), row(sentence_id="b/1", transcript_id="int02", attributes={"profession": "nurse"}),
            row(sentence_id="c/1", transcript_id="w1", attributes={"profession": "peer", "person": "p7", "wave": "1"}),
            row(sentence_id="c/2", transcript_id="w2", attributes={"profession": "peer", "person": "p7", "wave": "2"}),
            row(sentence_id="d/1", transcript_id="int03", attributes={"site": "A"})]
    frame = assign_groups(read_corpus_table(write_jsonl(tmp_path / "c", rows)), ["profession"])
    assert frame["speaker"].tolist() == ["int01:P", "int02:P", "person=p7", "person=p7", "int03:P"]
    assert frame["group"].tolist()[:4] == ["nurse", "nurse", "peer", "peer"]
    assert pd.isna(frame["group"].iloc[4])
    two = assign_groups(frame, ["profession", "role"])
    assert two["group"].iloc[0] == "nurse | participant"
    by_transcript = assign_groups(frame, ["profession"], cluster="transcript")
    assert by_transcript["cluster"].tolist()[2:4] == ["w1", "w2"]
    with pytest.raises(ConfigError):
        assign_groups(frame, ["nonexistent"])
