"""Active-learning selection: uncertainty order, every group represented, no near-duplicates."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from pipeline.corpus_io import SentenceRecord, read_sentences, write_sentences_jsonl
from pipeline.interop.errors import InteropError
from pipeline.interop.select import layer_uncertainty, select_sentences, write_batch


def record(i: int, text: str, profession: str, p: float, emotion_p: float = 0.02, affect_p: float = 0.02,
           tagged: bool = True) -> SentenceRecord:
    """A sentence whose stance probability of the top label is `p` (lower = more uncertain)."""
    rest = (1 - p) / 2
    return SentenceRecord(
        transcript_id=f"t{i // 10}", turn_id=f"t{i // 10}/t{i:04d}", sentence_id=f"t{i // 10}/t{i:04d}/s000",
        speaker_id=f"S{i // 10}", role="participant", speaker_known=True, attributes={"profession": profession},
        text=text, start=0, end=len(text), turn_start=None, turn_end=None, tagged=tagged,
        stance="objective" if tagged else None,
        stance_probs={"objective": p, "experiential": rest, "none": rest} if tagged else None,
        emotions=[] if tagged else None,
        emotion_probs={e: emotion_p for e in ("anger", "disgust", "fear", "joy", "sadness", "surprise")}
        if tagged else None,
        affect_focus=False if tagged else None, affect_focus_prob=affect_p if tagged else None)


WORDS = ["ward", "lithium", "tribunal", "discharge", "housing", "supervision", "relapse", "bed", "carer", "team",
         "rota", "referral", "notes", "benefits", "peer", "crisis", "dose", "review", "funding", "training"]


def synthetic_corpus(folder: Path) -> Path:
    rows = []
    # nurses: many and very uncertain; a rare group (peer worker) with confident sentences
    for i in range(60):
        rows.append(record(i, f"The {WORDS[i % 20]} was discussed on day {i} with {WORDS[(i * 7) % 20]} staff.",
                           "nurse", p=0.34 + i * 0.001))
    for i in range(60, 64):
        rows.append(record(i, f"I remember the {WORDS[i % 20]} meeting about {WORDS[(i * 3) % 20]} clearly.",
                           "peer worker", p=0.9))
    # near-duplicates of the most uncertain nurse sentence, even more uncertain
    rows.append(record(70, "The ward was discussed on day 0 with ward staff!", "nurse", p=0.334))
    rows.append(record(71, "The ward was discussed on day 0 with ward staff ok.", "nurse", p=0.3335))
    rows.append(record(72, "Yeah. [laughs]", "nurse", p=0.3334))  # too short
    rows.append(record(73, "Interviewer question here about the ward?", "researcher", p=0.5, tagged=False))
    write_sentences_jsonl(folder / "sentences.jsonl", rows)
    return folder


def test_uncertainty_measures() -> None:
    certain, unsure = record(0, "a b c", "x", p=0.98, emotion_p=0.01, affect_p=0.01), record(1, "a b c", "x", p=1 / 3)
    assert layer_uncertainty(unsure)["stance"] == pytest.approx(1.0, abs=1e-4)
    assert layer_uncertainty(certain)["stance"] < 0.2
    half = record(2, "a b c", "x", p=0.5, emotion_p=0.5, affect_p=0.5)
    assert layer_uncertainty(half)["emotions"] == pytest.approx(1.0) and layer_uncertainty(half)["affect_focus"] == 1.0
    margin = layer_uncertainty(record(3, "a b c", "x", p=0.6), "margin")  # 0.6 vs 0.2
    assert margin["stance"] == pytest.approx(0.6)
    assert layer_uncertainty(certain)["affect_focus"] == pytest.approx(_h(0.01), abs=1e-6)


def _h(p: float) -> float:
    return -(p * math.log(p) + (1 - p) * math.log(1 - p)) / math.log(2)


def test_selection_is_stratified_uncertain_and_without_near_duplicates(tmp_path: Path) -> None:
    corpus = synthetic_corpus(tmp_path)
    summary = select_sentences(corpus, n=10, layers=["stance"])
    chosen = summary.selected
    assert len(chosen) == 10
    groups = {s.group for s in chosen}
    assert groups == {"nurse", "peer worker"}  # the confident rare group is still represented
    ids = [s.sentence_id for s in chosen]
    near = {"t7/t0070/s000", "t7/t0071/s000"}
    assert len(near & set(ids)) + ("t0/t0000/s000" in ids) == 1  # one of the three near-identical sentences
    assert "t7/t0072/s000" not in ids and summary.too_short == 1  # "Yeah. [laughs]" is under 3 words
    assert summary.near_duplicates_skipped == 2
    nurses = [s for s in chosen if s.group == "nurse"]
    assert all(s.uncertainty >= 0.97 for s in nurses)  # the most uncertain ones
    assert [s.rank for s in chosen] == list(range(1, 11))
    assert chosen == sorted(chosen, key=lambda s: (-s.uncertainty, s.sentence_id))
    assert summary.groups["peer worker"]["selected"] >= 1
    # deterministic
    assert select_sentences(corpus, n=10, layers=["stance"]).selected == chosen


def test_exclusions_by_id_and_by_text(tmp_path: Path) -> None:
    corpus = synthetic_corpus(tmp_path)
    first = select_sentences(corpus, n=5)
    batch = tmp_path / "batch.jsonl"
    write_batch(batch, first.selected)
    gold = tmp_path / "gold.jsonl"
    gold.write_text(json.dumps({"id": "elsewhere", "text": "The rota was discussed on day 10 with rota staff."}) + "\n")
    second = select_sentences(corpus, n=5, exclude=[batch, gold])
    assert not {s.sentence_id for s in first.selected} & {s.sentence_id for s in second.selected}
    assert "t1/t0010/s000" not in {s.sentence_id for s in second.selected}
    assert second.excluded == 5
    rows = [json.loads(line) for line in batch.read_text().splitlines()]
    assert set(rows[0]) >= {"sentence_id", "group", "uncertainty", "rank"} and "text" not in rows[0]


def test_real_corpus_every_profession_and_bad_arguments(corpus: Path) -> None:
    summary = select_sentences(corpus, n=12, by="profession")
    professions = {r.attributes.get("profession") for r in read_sentences(corpus) if r.tagged}
    assert {s.group for s in summary.selected} == professions
    assert summary.mean_uncertainty_selected > summary.mean_uncertainty_all
    with pytest.raises(InteropError, match="unknown layer"):
        select_sentences(corpus, n=5, layers=["valence"])
