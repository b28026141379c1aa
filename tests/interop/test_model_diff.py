"""Model diff: flip rates, old-vs-new matrices and group-level shares."""
from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.corpus_io import read_sentences
from pipeline.interop.diff import diff_corpora


def test_diff_of_two_model_versions(corpus: Path, corpus_v2: Path) -> None:
    result = diff_corpora(corpus, corpus_v2, by="profession")
    old = {r.sentence_id: r for r in read_sentences(corpus) if r.tagged}
    new = {r.sentence_id: r for r in read_sentences(corpus_v2) if r.tagged}
    assert result["matched"] == len(old) == len(new)
    assert (result["old"]["model"], result["new"]["model"]) == ("hash-tagger@0.0.1", "salted-tagger@0.0.2")
    flips = sum(old[i].stance != new[i].stance for i in old)
    assert result["flip_rate"]["stance"] == pytest.approx(flips / len(old), abs=1e-4)
    assert 0 < result["flip_rate"]["stance"] < 0.5
    stance = result["matrices"]["stance"]
    assert sum(map(sum, stance["counts"])) == len(old)
    off_diagonal = sum(stance["counts"][i][j] for i in range(3) for j in range(3) if i != j)
    assert off_diagonal == flips
    affect = result["matrices"]["affect_focus"]["counts"]
    assert affect[0][1] + affect[1][0] == round(result["flip_rate"]["affect_focus"] * len(old))
    nurse = result["groups"]["nurse"]
    nurse_rows = [i for i in old if old[i].attributes["profession"] == "nurse"]
    assert nurse["n"] == len(nurse_rows)
    share_old = sum(old[i].stance == "objective" for i in nurse_rows) / len(nurse_rows)
    share_new = sum(new[i].stance == "objective" for i in nurse_rows) / len(nurse_rows)
    objective = nurse["shares"]["stance=objective"]
    assert objective["old"] == pytest.approx(share_old, abs=1e-4)
    assert objective["change_pp"] == pytest.approx(100 * (share_new - share_old), abs=0.01)
    assert set(result["groups"]) == {r.attributes["profession"] for r in old.values()}


def test_same_model_has_no_flips(corpus: Path) -> None:
    result = diff_corpora(corpus, corpus, by="role")
    assert result["flip_rate"] == {"stance": 0.0, "emotions": 0.0, "affect_focus": 0.0}
    assert all(v["change_pp"] == 0 for g in result["groups"].values() for v in g["shares"].values())
    assert set(result["groups"]) == {"participant"}
