"""Cohen's kappa per layer between annotators, or the model and a human."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from sklearn.metrics import cohen_kappa_score

from pipeline.corpus_io import read_sentences
from pipeline.interop.agreement import agreement, load_rater
from pipeline.interop.errors import CorpusMismatchError, InteropError


def write(path: Path, rows: list[dict]) -> Path:  # type: ignore[type-arg]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def row(i: int, stance: str | None, emotions: list[str] | None, affect: bool | None, who: str) -> dict:  # type: ignore[type-arg]
    return {"id": f"s{i}", "text": f"sentence {i}", "stance": stance, "emotions": emotions, "affect_focus": affect,
            "annotator": who, "producer": f"human:{who}"}


def test_kappa_per_layer_matches_sklearn(tmp_path: Path) -> None:
    stance_a = ["objective", "experiential", "none", "none", "objective", "experiential", "none", "objective"]
    stance_b = ["objective", "experiential", "none", "objective", "objective", "none", "none", "objective"]
    emo_a = [["fear"], [], ["joy"], [], ["fear", "sadness"], [], [], ["anger"]]
    emo_b = [["fear"], [], [], [], ["fear"], ["joy"], [], ["anger"]]
    aff_a = [True, False, True, False, True, False, False, False]
    aff_b = [True, False, False, False, True, False, True, False]
    a = write(tmp_path / "a.jsonl", [row(i, s, e, f, "ann1") for i, (s, e, f) in enumerate(zip(stance_a, emo_a, aff_a))])
    b_rows = [row(i, s, e, f, "ann2") for i, (s, e, f) in enumerate(zip(stance_b, emo_b, aff_b))]
    b_rows[7]["stance"] = None  # not annotated in B: left out of stance only
    b = write(tmp_path / "b.jsonl", b_rows + [row(99, "none", [], False, "ann2")])
    result = agreement(load_rater(a), load_rater(b))
    assert (result["a"], result["b"], result["items_common"]) == ("human:ann1", "human:ann2", 8)
    assert result["stance"]["n"] == 7
    assert result["stance"]["kappa"] == pytest.approx(cohen_kappa_score(stance_a[:7], stance_b[:7]), abs=1e-4)
    assert sum(map(sum, result["stance"]["matrix"]["counts"])) == 7
    assert result["affect_focus"]["kappa"] == pytest.approx(cohen_kappa_score(aff_a, aff_b), abs=1e-4)
    fear = result["emotions"]["per_label"]["fear"]
    assert fear["kappa"] == 1.0 and fear["a_yes"] == 2
    any_a, any_b = [bool(e) for e in emo_a], [bool(e) for e in emo_b]
    assert result["emotions"]["any_emotion_kappa"] == pytest.approx(cohen_kappa_score(any_a, any_b), abs=1e-4)
    assert result["emotions"]["per_label"]["disgust"]["kappa"] is None  # never used by either: undefined
    assert result["emotions"]["exact_set_agreement"] == pytest.approx(5 / 8)


def test_model_versus_human_and_mismatches(corpus: Path, tmp_path: Path) -> None:
    rows = [r for r in read_sentences(corpus) if r.tagged][:20]
    human = [{"id": r.sentence_id, "text": r.text, "stance": r.stance if i % 4 else "none",
              "emotions": r.emotions, "affect_focus": r.affect_focus, "annotator": "ann1"} for i, r in enumerate(rows)]
    path = write(tmp_path / "human.jsonl", human)
    result = agreement(load_rater(corpus), load_rater(path))
    assert result["a"] == "model:hash-tagger@0.0.1" and result["items_common"] == 20
    assert result["affect_focus"]["percent_agreement"] == 1.0 and result["stance"]["percent_agreement"] < 1.0
    human[3]["text"] = "something else"
    write(path, human)
    with pytest.raises(CorpusMismatchError, match="different text"):
        agreement(load_rater(corpus), load_rater(path))
    write(path, [{"id": "x", "stance": "sure", "emotions": [], "affect_focus": False}])
    with pytest.raises(InteropError, match="line 1.*unknown stance"):
        load_rater(path)
    write(path, [{"id": "x", "stance": "none", "emotions": [], "affect_focus": False}])
    with pytest.raises(CorpusMismatchError, match="share no sentence"):
        agreement(load_rater(corpus), load_rater(path))
