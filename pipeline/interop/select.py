"""Active learning: which sentences to annotate next.

Uncertainty comes from the probabilities stored in the corpus, per layer, each scaled to
0..1 (1 = the model cannot decide):
- `entropy`: stance = entropy of its distribution / log(#labels); emotions = the largest
  binary entropy over the emotion labels (the one emotion the model is least sure of);
  affect focus = its binary entropy;
- `margin`: stance = 1 - (p1 - p2) of the two most likely labels; emotions and affect
  focus = 1 - |2p - 1| (distance from 0.5), the largest over the emotion labels.
A sentence's score is the mean over the chosen layers (default all three).

The batch is stratified by a speaker attribute (`by`, default profession; also role,
speaker or transcript): `group_share` of the batch (default half) is spread equally over
the groups, each taking its most uncertain sentences, so every group is represented;
the rest goes to the most uncertain sentences overall. Near-duplicates are skipped:
sentences whose normalised text (lower case, words only, markup removed) is identical to,
or shares at least `similarity` of its character trigrams (Jaccard) with, a sentence
already picked or already annotated (`exclude`). Sentences under `min_words` words
("Yeah.", "Okay.") are left out: they are cheap to label but teach little. Ties are
broken by sentence id, so the same corpus gives the same batch.
"""
from __future__ import annotations

import json
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from models.labels import AFFECT_FOCUS, EMOTIONS, STANCE
from pipeline.atomic import write_atomic
from pipeline.corpus_io import SentenceRecord, read_sentences
from pipeline.ingest.markup import strip_markup
from pipeline.interop.corpus import group_of
from pipeline.interop.errors import InteropError

Strategy = Literal["entropy", "margin"]
LAYERS = (STANCE, EMOTIONS, AFFECT_FOCUS)
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")


@dataclass(frozen=True)
class Candidate:
    sentence_id: str
    transcript_id: str
    speaker_id: str
    group: str
    uncertainty: float
    stance_uncertainty: float
    emotions_uncertainty: float
    affect_focus_uncertainty: float


@dataclass(frozen=True)
class Selected(Candidate):
    """A candidate chosen for the batch: its rank and why it was chosen."""

    rank: int
    reason: Literal["group quota", "uncertainty"]


@dataclass(frozen=True)
class SelectionSummary:
    selected: list[Selected]
    candidates: int
    groups: dict[str, dict[str, float]]  # group -> {candidates, selected, mean_uncertainty_selected}
    near_duplicates_skipped: int
    excluded: int
    too_short: int
    mean_uncertainty_all: float
    mean_uncertainty_selected: float


def _binary_entropy(p: float) -> float:
    p = min(max(p, 1e-12), 1 - 1e-12)
    return -(p * math.log(p) + (1 - p) * math.log(1 - p)) / math.log(2)


def _binary_margin(p: float) -> float:
    return 1.0 - abs(2.0 * p - 1.0)


def layer_uncertainty(row: SentenceRecord, strategy: Strategy = "entropy") -> dict[str, float]:
    """Uncertainty per layer (0..1) from a tagged row's stored probabilities."""
    stance_probs = sorted((row.stance_probs or {}).values(), reverse=True)
    binary = _binary_entropy if strategy == "entropy" else _binary_margin
    if strategy == "entropy":
        total = sum(stance_probs) or 1.0
        h = -sum((p / total) * math.log(p / total) for p in stance_probs if p > 0)
        stance = h / math.log(len(stance_probs)) if len(stance_probs) > 1 else 0.0
    else:
        stance = 1.0 - (stance_probs[0] - stance_probs[1]) if len(stance_probs) > 1 else 0.0
    emotions = max((binary(p) for p in (row.emotion_probs or {}).values()), default=0.0)
    affect = binary(row.affect_focus_prob) if row.affect_focus_prob is not None else 0.0
    return {STANCE: round(stance, 6), EMOTIONS: round(emotions, 6), AFFECT_FOCUS: round(affect, 6)}


def normalise(text: str) -> str:
    """Lower-case words of the text without transcriber markup."""
    return " ".join(w.lower() for w in _WORD.findall(strip_markup(text)))


def _trigrams(normalised: str) -> frozenset[str]:
    padded = f" {normalised} "
    return frozenset(padded[i:i + 3] for i in range(max(1, len(padded) - 2)))


class NearDuplicateIndex:
    """Texts seen so far; `near(text)` if one is identical after normalising or shares at
    least `similarity` of character trigrams (Jaccard)."""

    def __init__(self, similarity: float) -> None:
        self.similarity = similarity
        self._exact: set[str] = set()
        self._grams: list[frozenset[str]] = []
        self._postings: dict[str, list[int]] = defaultdict(list)

    def add(self, text: str) -> None:
        norm = normalise(text)
        self._exact.add(norm)
        grams = _trigrams(norm)
        index = len(self._grams)
        self._grams.append(grams)
        for gram in grams:
            self._postings[gram].append(index)

    def near(self, text: str) -> bool:
        norm = normalise(text)
        if norm in self._exact:
            return True
        if self.similarity > 1.0:
            return False
        grams = _trigrams(norm)
        shared = Counter(i for gram in grams for i in self._postings.get(gram, ()))
        return any(n / (len(grams) + len(self._grams[i]) - n) >= self.similarity for i, n in shared.items())


def _read_exclusions(paths: Sequence[Path]) -> tuple[set[str], list[str]]:
    """Ids and texts of sentences already annotated or queued (gold JSONL or a batch)."""
    ids: set[str] = set()
    texts: list[str] = []
    for path in paths:
        try:
            with open(path, encoding="utf-8-sig") as handle:
                lines = list(enumerate(handle, start=1))
        except (OSError, UnicodeDecodeError) as error:
            raise InteropError(f"cannot read the exclusion file ({type(error).__name__})", path=path) from None
        for number, line in lines:
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                raise InteropError("not valid JSON", path=path, where=f"line {number}") from None
            if not isinstance(row, dict):
                raise InteropError("expected a JSON object", path=path, where=f"line {number}")
            value = row.get("sentence_id", row.get("id"))
            if isinstance(value, str):
                ids.add(value)
            if isinstance(row.get("text"), str):
                texts.append(row["text"])
    return ids, texts


def score_candidates(rows: Iterable[SentenceRecord], by: str, strategy: Strategy = "entropy",
                     layers: Sequence[str] = LAYERS) -> list[tuple[Candidate, str]]:
    out = []
    for row in rows:
        if not row.tagged:
            continue
        per_layer = layer_uncertainty(row, strategy)
        score = sum(per_layer[layer] for layer in layers) / len(layers)
        out.append((Candidate(sentence_id=row.sentence_id, transcript_id=row.transcript_id,
                              speaker_id=row.speaker_id, group=group_of(row, by), uncertainty=round(score, 6),
                              stance_uncertainty=per_layer[STANCE], emotions_uncertainty=per_layer[EMOTIONS],
                              affect_focus_uncertainty=per_layer[AFFECT_FOCUS]), row.text))
    return out


def select_sentences(corpus_dir: Path, n: int, by: str = "profession", strategy: Strategy = "entropy",
                     layers: Sequence[str] = LAYERS, exclude: Sequence[Path] = (), group_share: float = 0.5,
                     similarity: float = 0.8, min_words: int = 3) -> SelectionSummary:
    """Pick `n` sentences to annotate next (see the module docstring)."""
    if n < 1:
        raise InteropError(f"--n must be at least 1, found {n}")
    unknown = sorted(set(layers) - set(LAYERS))
    if unknown or not layers:
        raise InteropError(f"unknown layer(s) {unknown}; expected some of {list(LAYERS)}")
    excluded_ids, excluded_texts = _read_exclusions(exclude)
    index = NearDuplicateIndex(similarity)
    for text in excluded_texts:
        index.add(text)
    scored = score_candidates(read_sentences(corpus_dir), by, strategy, layers)
    too_short = excluded = 0
    pool: list[tuple[Candidate, str]] = []
    for candidate, text in scored:
        if candidate.sentence_id in excluded_ids:
            excluded += 1
        elif len(normalise(text).split()) < min_words:
            too_short += 1
        else:
            pool.append((candidate, text))
    pool.sort(key=lambda item: (-item[0].uncertainty, item[0].sentence_id))
    by_group: dict[str, list[tuple[Candidate, str]]] = defaultdict(list)
    for item in pool:
        by_group[item[0].group].append(item)
    groups = sorted(by_group, key=lambda g: (-by_group[g][0][0].uncertainty, g))
    quota = max(1, math.floor(n * group_share / len(groups))) if groups else 0
    chosen: list[Selected] = []
    taken: set[str] = set()
    duplicates = 0

    def take(candidate: Candidate, text: str, reason: Literal["group quota", "uncertainty"]) -> bool:
        nonlocal duplicates
        if candidate.sentence_id in taken:
            return False
        if index.near(text):
            duplicates += 1
            taken.add(candidate.sentence_id)  # never reconsidered
            return False
        index.add(text)
        taken.add(candidate.sentence_id)
        chosen.append(Selected(rank=0, reason=reason, **asdict(candidate)))
        return True

    for group in groups:
        got = 0
        for candidate, text in by_group[group]:
            if got >= quota or len(chosen) >= n:
                break
            got += take(candidate, text, "group quota")
    for candidate, text in pool:
        if len(chosen) >= n:
            break
        take(candidate, text, "uncertainty")
    chosen.sort(key=lambda s: (-s.uncertainty, s.sentence_id))
    selected = [Selected(**{**asdict(s), "rank": rank}) for rank, s in enumerate(chosen, start=1)]
    summary_groups: dict[str, dict[str, float]] = {}
    for group in sorted(by_group):
        mine = [s.uncertainty for s in selected if s.group == group]
        summary_groups[group] = {"candidates": len(by_group[group]), "selected": len(mine),
                                 "mean_uncertainty_selected": round(sum(mine) / len(mine), 4) if mine else 0.0}
    all_scores = [c.uncertainty for c, _ in scored]
    return SelectionSummary(
        selected=selected, candidates=len(pool), groups=summary_groups, near_duplicates_skipped=duplicates,
        excluded=excluded, too_short=too_short,
        mean_uncertainty_all=round(sum(all_scores) / len(all_scores), 4) if all_scores else 0.0,
        mean_uncertainty_selected=round(sum(s.uncertainty for s in selected) / len(selected), 4) if selected else 0.0)


def write_batch(path: Path, selected: Sequence[Selected]) -> None:
    """The batch as JSON lines: ids, group and scores (no text: export it to annotate)."""

    def write(handle) -> None:  # type: ignore[no-untyped-def]
        for item in selected:
            handle.write(json.dumps(asdict(item)).encode() + b"\n")

    write_atomic(path, write)
