"""compare_corpus end to end on simulated corpora: tables, plots, report, warnings."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
import pytest

from pipeline.compare import compare_corpus, load_confusion, load_result
from pipeline.compare.simulate import GroupSpec, SimulationSpec, simulate_corpus
from pipeline.errors import ConfigError
from pipeline.report import write_report

SHARE_COLUMNS = {"group", "label", "proportion", "ci_low", "ci_high", "n_speakers", "n_sentences", "proportion_acc",
                 "proportion_meanprob"}


def test_files_and_columns(example_comparison) -> None:  # type: ignore[no-untyped-def]
    result, out = example_comparison
    for stem in ("stance_by_group", "emotions_by_group", "affect_focus_by_group", "speaker_profiles", "tests"):
        csv = pd.read_csv(out / f"{stem}.csv")
        parquet = pd.read_parquet(out / f"{stem}.parquet")
        assert list(csv.columns) == list(parquet.columns) and len(csv) == len(parquet) > 0
    for stem in ("stance_by_group", "emotions_by_group", "affect_focus_by_group"):
        assert (out / f"{stem}.png").read_bytes()[:4] == b"\x89PNG"
        assert b"<svg" in (out / f"{stem}.svg").read_bytes()[:2000]
        assert SHARE_COLUMNS <= set(pd.read_csv(out / f"{stem}.csv").columns)
    stance = pd.read_csv(out / "stance_by_group.csv")
    assert len(stance) == 9 and stance.groupby("group")["proportion"].sum().round(9).eq(1).all()
    assert stance.groupby("group")["proportion_acc"].sum().round(9).eq(1).all()
    assert (stance["ci_low"] <= stance["proportion"]).all() and (stance["proportion"] <= stance["ci_high"]).all()
    assert set(stance["profession"]) == {"nurse", "peer worker", "psychiatrist"}
    assert load_result(out).shares == result.shares


def test_known_differences_are_found(example_comparison) -> None:  # type: ignore[no-untyped-def]
    """Simulated truth: peer workers are far less objective and more experiential than nurses."""
    _, out = example_comparison
    tests = pd.read_csv(out / "tests.csv")
    pair = tests[(tests.test == "pairwise") & (tests.group_a == "nurse") & (tests.group_b == "peer worker")]
    objective = pair[pair.label == "objective"].set_index("method")
    assert objective.loc["gee_exchangeable", "estimate"] > 1.5
    assert objective.loc["gee_exchangeable", "p_holm"] < 0.05
    assert objective.loc["cluster_bootstrap", "ci_low"] > 0
    assert objective.loc["glmm_random_intercept", "p_holm"] < 0.05


def test_small_group_is_flagged_everywhere(example_comparison) -> None:  # type: ignore[no-untyped-def]
    result, out = example_comparison
    assert any("SMALL GROUP" in w and "psychiatrist" in w for w in result.warnings)
    assert "psychiatrist" in (out / "warnings.txt").read_text()
    stance = pd.read_csv(out / "stance_by_group.csv").set_index(["group", "label"])
    assert stance.loc[("psychiatrist", "objective"), "small_group"]
    assert stance.loc[("psychiatrist", "objective"), "ci_high"] > stance.loc[("psychiatrist", "objective"), "ci_low"]
    assert "two-stage" in stance.loc[("psychiatrist", "objective"), "ci_method"]
    tests = pd.read_csv(out / "tests.csv")
    gee = tests[(tests.method == "gee_exchangeable") & (tests.group_b == "psychiatrist")]
    assert gee["p_value"].isna().all() and gee["note"].str.contains("fewer than 3").all()
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "SMALL GROUP" in html and "Small groups in this comparison" in html


def test_no_text_outside_the_report(example_corpus: Path, example_comparison, tmp_path: Path,  # type: ignore[no-untyped-def]
                                    caplog: pytest.LogCaptureFixture) -> None:
    _, out = example_comparison
    texts = set(pd.read_json(example_corpus / "sentences.jsonl", lines=True)["text"])
    for path in out.iterdir():
        if path.name == "report.html" or path.suffix in (".png", ".parquet"):
            continue
        content = path.read_text(encoding="utf-8")
        assert not any(text in content for text in texts), path.name
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "local use only" in html and any(text in html for text in texts)
    with caplog.at_level(logging.DEBUG):
        compare_corpus(example_corpus, ["profession"], None, tmp_path / "again", n_boot=60, options=None)
    assert not any(text in record.getMessage() for record in caplog.records for text in texts)


def test_report_escapes_text(tmp_path: Path) -> None:
    from pipeline.corpus_io import SentenceRecord, write_sentences_jsonl

    def record(i: int, speaker: str, profession: str, text: str) -> SentenceRecord:
        return SentenceRecord(
            transcript_id=f"t{speaker}", turn_id=f"t{speaker}/t0001", sentence_id=f"t{speaker}/t0001/s{i:03d}",
            speaker_id="P", role="participant", speaker_known=True, attributes={"profession": profession},
            text=text, start=0, end=len(text), turn_start=None, turn_end=None, tagged=True, stance="experiential",
            stance_probs={"objective": 0.1, "experiential": 0.8, "none": 0.1}, emotions=[], emotion_probs={},
            affect_focus=False, affect_focus_prob=0.1)

    records = [record(i, s, "a" if s < "3" else "b", f"<script>alert({i})</script> & <b>{s}</b>")
               for s in "123456" for i in range(3)]
    write_sentences_jsonl(tmp_path / "c" / "sentences.jsonl", records)
    compare_corpus(tmp_path / "c", ["profession"], None, tmp_path / "out", n_boot=60)
    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert "<script>" not in html and "&lt;script&gt;alert(" in html


def test_without_confusion_corrected_columns_are_omitted(example_corpus: Path, tmp_path: Path) -> None:
    result = compare_corpus(example_corpus, ["profession"], {"role": "participant"}, tmp_path / "out", n_boot=60)
    assert not result.corrected
    assert any("No confusion matrix" in note for note in result.notes)
    columns = set(pd.read_csv(tmp_path / "out" / "stance_by_group.csv").columns)
    assert "proportion_acc" not in columns and "proportion_meanprob" in columns


def test_confusion_loads_from_metrics_and_regenerates_report(example_corpus: Path, tmp_path: Path) -> None:
    matrices = load_confusion(example_corpus / "metrics.json")
    assert matrices.stance is not None and matrices.emotions and matrices.affect_focus is not None
    nested = tmp_path / "metrics.json"
    nested.write_text(json.dumps({"accuracy": 0.8, "confusion": json.loads((example_corpus / "metrics.json").read_text())}))
    assert load_confusion(nested) == matrices
    out = tmp_path / "out"
    compare_corpus(example_corpus, ["profession"], None, out, confusion=matrices, n_boot=60, write_report=False)
    assert not (out / "report.html").exists()
    write_report(load_result(out), out)  # texts read back from the corpus
    assert "local use only" in (out / "report.html").read_text(encoding="utf-8")


def test_bad_confusion_labels(example_corpus: Path, tmp_path: Path) -> None:
    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps({"stance": {"labels": ["a", "b", "c"], "confusion": [[1, 0, 0], [0, 1, 0], [0, 0, 1]]}}))
    with pytest.raises(ConfigError, match="confusion labels"):
        compare_corpus(example_corpus, ["profession"], None, tmp_path / "out", confusion=metrics, n_boot=60)


def test_reproducible_with_seed(example_corpus: Path, tmp_path: Path) -> None:
    first = compare_corpus(example_corpus, ["profession"], None, tmp_path / "a", seed=5, n_boot=100)
    second = compare_corpus(example_corpus, ["profession"], None, tmp_path / "b", seed=5, n_boot=100)
    assert first.shares == second.shares and first.tests == second.tests
    for name in ("stance_by_group.csv", "tests.csv", "stance_by_group.svg", "report.html"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_waves_with_person_links(tmp_path: Path) -> None:
    """Each person in two waves: speakers are persons, and contrasts between waves are paired."""
    spec = SimulationSpec(groups={"nurse": GroupSpec(n_speakers=5, stance={"objective": 0.5, "experiential": 0.3,
                                                                           "none": 0.2})},
                          waves=2, sentences_per_speaker=25, seed=9)
    corpus = simulate_corpus(spec, tmp_path / "c")
    result = compare_corpus(corpus, ["wave"], None, tmp_path / "out", n_boot=100)
    assert [g.n_speakers for g in result.groups] == [5, 5]
    assert [g.n_transcripts for g in result.groups] == [5, 5]
    assert result.n_speakers == 5
    assert not any("SMALL GROUP" in w for w in result.warnings)


def test_group_by_role_with_interviewers(example_corpus: Path, tmp_path: Path) -> None:
    result = compare_corpus(example_corpus, ["role"], None, tmp_path / "out", include_interviewers=True, n_boot=60)
    assert [g.group for g in result.groups] == ["interviewer", "participant"]
    assert any("no tagged sentences" in note.lower() or "without tagged" in note for note in result.notes)


def test_one_speaker_per_profession(tmp_path: Path) -> None:
    """The common worst case: nothing can be tested, everything is described and flagged."""
    stance = {"objective": 0.4, "experiential": 0.4, "none": 0.2}
    spec = SimulationSpec(groups={name: GroupSpec(n_speakers=1, stance=stance) for name in ("gp", "nurse", "peer")},
                          seed=2)
    corpus = simulate_corpus(spec, tmp_path / "c")
    result = compare_corpus(corpus, ["profession"], None, tmp_path / "out", n_boot=100)
    assert sum("SMALL GROUP" in w for w in result.warnings) == 3
    model_rows = [t for t in result.tests if t.method != "cluster_bootstrap"]
    assert model_rows and all(t.p_value is None for t in model_rows)
    assert all(row.ci_high > row.ci_low for row in result.shares if row.layer == "stance")
    assert (tmp_path / "out" / "report.html").is_file()


def test_layer_without_tags_and_without_probabilities(tmp_path: Path) -> None:
    from pipeline.corpus_io import SentenceRecord, write_sentences_jsonl

    records = []
    for speaker in range(8):
        for i in range(10):
            records.append(SentenceRecord(
                transcript_id=f"t{speaker}", turn_id=f"t{speaker}/t0001", sentence_id=f"t{speaker}/t0001/s{i:03d}",
                speaker_id="P", role="participant", speaker_known=True,
                attributes={"site": "A" if speaker < 4 else "B"}, text=f"s{i}", start=0, end=2, turn_start=None,
                turn_end=None, tagged=True, stance=["objective", "none"][(i + speaker) % 2], stance_probs=None,
                emotions=None, emotion_probs=None, affect_focus=None, affect_focus_prob=None))
    write_sentences_jsonl(tmp_path / "c" / "sentences.jsonl", records)
    result = compare_corpus(tmp_path / "c", ["site"], None, tmp_path / "out", n_boot=100)
    assert any("No tagged sentences in layer emotions" in n for n in result.notes)
    assert any("no model probabilities" in n for n in result.notes)
    assert any("no manifest model" in w for w in result.warnings)
    columns = set(pd.read_csv(tmp_path / "out" / "stance_by_group.csv").columns)
    assert "proportion_meanprob" not in columns
    experiential = [r for r in result.shares if r.label == "experiential"]
    assert all(r.n_positive == 0 and r.ci_high > 0 for r in experiential)  # exact bound, not [0, 0]
    assert not (tmp_path / "out" / "emotions_by_group.png").exists()
