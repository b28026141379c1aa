"""Simulated annotated corpora with known answers, for tests, docs and power checks.

Each speaker gets their own random deviation (logit scale, SD `speaker_sd`) from their
group's true shares, so sentences cluster within speakers the way real talk does. True
labels are then passed through a known confusion matrix to give the "model's"
predictions, with probabilities that favour the predicted label. The sentence texts are
obviously synthetic.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from pipeline.atomic import ensure_private_dir, write_bytes_atomic
from pipeline.corpus_io import SentenceRecord, write_sentences_jsonl, write_sentences_parquet

STANCE_LABELS = ("objective", "experiential", "none")
EMOTION_LABELS = ("anger", "disgust", "fear", "joy", "sadness", "surprise")
TEMPLATES = {
    "objective": ["[synthetic] Reviews happen every {n} weeks under the policy.",
                  "[synthetic] The guideline sets the dose at {n} milligrams."],
    "experiential": ["[synthetic] When I was on ward {n} it felt like nobody listened.",
                     "[synthetic] I remember shift {n}, she told me she was frightened."],
    "none": ["[synthetic] Mm-hm, number {n}.", "[synthetic] Right, shall we go on to {n}?"],
}


class GroupSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    n_speakers: int = Field(ge=1)
    stance: dict[str, float]  # true shares, summing to 1
    emotions: dict[str, float] = Field(default_factory=dict)  # true share of each emotion
    affect_focus: float = 0.2


class SimulationSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    groups: dict[str, GroupSpec]
    attribute: str = "profession"
    sentences_per_speaker: int = 40  # Poisson mean
    speaker_sd: float = 0.8  # between-speaker SD on the logit scale
    waves: int = 1  # >1: each person interviewed once per wave, linked by the `person` attribute
    interviewer_sentences: int = 8
    stance_confusion: tuple[tuple[float, ...], ...] = ((0.80, 0.12, 0.08), (0.15, 0.75, 0.10), (0.10, 0.10, 0.80))
    binary_tpr: float = 0.7
    binary_fpr: float = 0.05
    model: str = "simulated-tagger@0.1.0"
    seed: int = 0


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return float(np.log(p / (1 - p)))


def metrics_for(spec: SimulationSpec, n_test: int = 1000) -> dict[str, object]:
    """The confusion matrices (expected counts on n_test items per true class) in the
    metrics.json structure that pipeline.compare.confusion reads."""
    stance = [[round(rate * n_test) for rate in row] for row in spec.stance_confusion]
    binary = [[round((1 - spec.binary_fpr) * n_test), round(spec.binary_fpr * n_test)],
              [round((1 - spec.binary_tpr) * n_test), round(spec.binary_tpr * n_test)]]
    return {"stance": {"labels": list(STANCE_LABELS), "confusion": stance},
            "emotions": {label: {"confusion": binary} for label in EMOTION_LABELS},
            "affect_focus": {"confusion": binary}}


def simulate_corpus(spec: SimulationSpec, out_dir: Path) -> Path:
    """Write sentences.jsonl, sentences.parquet, manifest.json and metrics.json; return out_dir."""
    rng = np.random.default_rng(spec.seed)
    confusion = np.asarray(spec.stance_confusion)
    records: list[SentenceRecord] = []
    person_number = 0
    for group, gspec in spec.groups.items():
        base = np.log(np.array([max(gspec.stance.get(label, 0.0), 1e-6) for label in STANCE_LABELS]))
        for _ in range(gspec.n_speakers):
            person_number += 1
            person = f"p{person_number:03d}"
            u_stance = rng.normal(0, spec.speaker_sd, 3)
            u_emotion = rng.normal(0, spec.speaker_sd, len(EMOTION_LABELS))
            u_affect = rng.normal(0, spec.speaker_sd)
            p_stance = _softmax(base + u_stance)
            p_emotion = [1 / (1 + np.exp(-(_logit(gspec.emotions.get(label, 0.05)) + u)))
                         for label, u in zip(EMOTION_LABELS, u_emotion, strict=True)]
            p_affect = 1 / (1 + np.exp(-(_logit(gspec.affect_focus) + u_affect)))
            for wave in range(1, spec.waves + 1):
                transcript = f"{person}w{wave}" if spec.waves > 1 else f"int{person_number:03d}"
                attributes = {spec.attribute: group, "person": person}
                if spec.waves > 1:
                    attributes["wave"] = str(wave)
                records.extend(_transcript(rng, spec, transcript, attributes, p_stance, p_emotion, p_affect,
                                           confusion))
    ensure_private_dir(out_dir)
    write_sentences_jsonl(out_dir / "sentences.jsonl", records)
    write_sentences_parquet(out_dir / "sentences.parquet", [records])
    manifest = {"format": "epistance-corpus/1", "model": spec.model, "simulated": True}
    write_bytes_atomic(out_dir / "manifest.json", json.dumps(manifest, indent=2).encode())
    write_bytes_atomic(out_dir / "metrics.json", json.dumps(metrics_for(spec), indent=2).encode())
    return out_dir


def _transcript(rng: np.random.Generator, spec: SimulationSpec, transcript: str, attributes: dict[str, str],
                p_stance: np.ndarray, p_emotion: list[float], p_affect: float,
                confusion: np.ndarray) -> list[SentenceRecord]:
    records: list[SentenceRecord] = []
    n_participant = max(5, int(rng.poisson(spec.sentences_per_speaker)))
    turn = 0

    def add_turn(speaker: str, role: str, sentences: list[tuple[str, dict[str, Any]]]) -> None:
        nonlocal turn
        turn += 1
        turn_id = f"{transcript}/t{turn:04d}"
        offset = 0
        for index, (text, labels) in enumerate(sentences, start=1):
            records.append(SentenceRecord(
                transcript_id=transcript, turn_id=turn_id, sentence_id=f"{turn_id}/s{index:03d}",
                speaker_id=speaker, role=role, speaker_known=True,
                attributes=attributes if role == "participant" else {}, text=text, start=offset,
                end=offset + len(text), turn_start=None, turn_end=None, tagged=bool(labels), **{
                    "stance": None, "stance_probs": None, "emotions": None, "emotion_probs": None,
                    "affect_focus": None, "affect_focus_prob": None, **labels}))
            offset += len(text) + 1

    interviewer_left = spec.interviewer_sentences
    left = n_participant
    while left > 0:
        if interviewer_left > 0:
            add_turn("INT", "interviewer", [(f"[synthetic] Question {turn + 1}?", {})])
            interviewer_left -= 1
        size = min(left, int(rng.integers(1, 4)))
        sentences = []
        for _ in range(size):
            true = int(rng.choice(3, p=p_stance))
            predicted = int(rng.choice(3, p=confusion[true]))
            probs = rng.dirichlet(np.ones(3) + 6 * np.eye(3)[predicted])
            emotions, emotion_probs = [], {}
            for label, p in zip(EMOTION_LABELS, p_emotion, strict=True):
                truth = rng.random() < p
                said = rng.random() < (spec.binary_tpr if truth else spec.binary_fpr)
                emotion_probs[label] = float(rng.uniform(0.5, 1.0) if said else rng.uniform(0.0, 0.5))
                if said:
                    emotions.append(label)
            affect_true = rng.random() < p_affect
            affect = bool(rng.random() < (spec.binary_tpr if affect_true else spec.binary_fpr))
            template = TEMPLATES[STANCE_LABELS[true]][int(rng.integers(0, 2))]
            sentences.append((template.format(n=int(rng.integers(1, 99))), {
                "stance": STANCE_LABELS[predicted],
                "stance_probs": {label: float(v) for label, v in zip(STANCE_LABELS, probs, strict=True)},
                "emotions": emotions, "emotion_probs": emotion_probs, "affect_focus": affect,
                "affect_focus_prob": float(rng.uniform(0.5, 1.0) if affect else rng.uniform(0.0, 0.5))}))
        add_turn("P", "participant", sentences)
        left -= size
    return records
