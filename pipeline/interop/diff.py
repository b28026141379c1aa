"""Model diff: one corpus annotated by two model versions, compared sentence by sentence.

Sentences are matched by id and must have the same text (the same inputs segmented the
same way); sentences tagged in only one corpus, or whose text differs, are counted and
left out. Reported:
- flip rate per layer: the share of matched sentences whose label changed (emotions: the
  set changed; also per emotion);
- old-by-new label matrices: stance (labels x labels), each emotion and affect focus
  (no/yes x no/yes);
- mean absolute change of the probabilities per layer;
- group-level estimates: the share of each label among a group's sentences (a speaker
  attribute such as profession, or role / speaker / transcript), old and new, and the
  change in percentage points, with the number of sentences per group.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from models.labels import AFFECT_FOCUS, EMOTIONS, STANCE, LabelSchema, load_label_schema
from pipeline.corpus_io import SentenceRecord, read_manifest, read_sentences
from pipeline.interop.corpus import group_of
from pipeline.interop.errors import CorpusMismatchError


def _model(corpus_dir: Path) -> str:
    manifest = read_manifest(corpus_dir)
    return manifest.model if manifest is not None else corpus_dir.name


def _shares(rows: list[SentenceRecord], schema: LabelSchema) -> dict[str, float]:
    n = len(rows) or 1
    out = {f"stance={lab}": sum(r.stance == lab for r in rows) / n for lab in schema.layers[STANCE].labels}
    out.update({f"emotion={lab}": sum(lab in (r.emotions or []) for r in rows) / n
                for lab in schema.layers[EMOTIONS].labels})
    out["any_emotion"] = sum(bool(r.emotions) for r in rows) / n
    out["affect_focus=yes"] = sum(bool(r.affect_focus) for r in rows) / n
    return out


def _binary_matrix(old: list[bool], new: list[bool]) -> list[list[int]]:
    return [[sum(1 for o, w in zip(old, new) if o == r and w == c) for c in (False, True)] for r in (False, True)]


def diff_corpora(old_dir: Path, new_dir: Path, by: str = "profession", schema: LabelSchema | None = None) -> dict[str, Any]:
    """Compare the labels of two annotations of the same corpus (see the module docstring)."""
    schema = schema or load_label_schema()
    old = {r.sentence_id: r for r in read_sentences(old_dir) if r.tagged}
    new_rows = [r for r in read_sentences(new_dir) if r.tagged]
    pairs: list[tuple[SentenceRecord, SentenceRecord]] = []
    text_changed = only_new = 0
    for row in new_rows:
        before = old.get(row.sentence_id)
        if before is None:
            only_new += 1
        elif before.text != row.text:
            text_changed += 1
        else:
            pairs.append((before, row))
    if not pairs:
        raise CorpusMismatchError("the two corpora share no tagged sentence with the same id and text", path=new_dir,
                                  hint="annotate the same inputs with both models (same segmentation settings)")
    n = len(pairs)
    stance_labels = list(schema.layers[STANCE].labels)
    emotion_labels = list(schema.layers[EMOTIONS].labels)
    result: dict[str, Any] = {
        "old": {"corpus": str(old_dir), "model": _model(old_dir)},
        "new": {"corpus": str(new_dir), "model": _model(new_dir)},
        "matched": n, "only_old": len(old) - n - text_changed, "only_new": only_new, "text_changed": text_changed,
    }
    result["flip_rate"] = {
        STANCE: round(sum(a.stance != b.stance for a, b in pairs) / n, 4),
        EMOTIONS: round(sum(set(a.emotions or []) != set(b.emotions or []) for a, b in pairs) / n, 4),
        AFFECT_FOCUS: round(sum(bool(a.affect_focus) != bool(b.affect_focus) for a, b in pairs) / n, 4),
    }
    result["emotion_flip_rate"] = {
        lab: round(sum((lab in (a.emotions or [])) != (lab in (b.emotions or [])) for a, b in pairs) / n, 4)
        for lab in emotion_labels}
    result["mean_abs_prob_change"] = {
        STANCE: round(sum(sum(abs((a.stance_probs or {}).get(k, 0) - (b.stance_probs or {}).get(k, 0))
                              for k in stance_labels) / 2 for a, b in pairs) / n, 4),
        EMOTIONS: round(sum(sum(abs((a.emotion_probs or {}).get(k, 0) - (b.emotion_probs or {}).get(k, 0))
                                for k in emotion_labels) / len(emotion_labels) for a, b in pairs) / n, 4),
        AFFECT_FOCUS: round(sum(abs((a.affect_focus_prob or 0) - (b.affect_focus_prob or 0)) for a, b in pairs) / n, 4),
    }
    result["matrices"] = {
        STANCE: {"labels": stance_labels, "rows": "old", "columns": "new",
                 "counts": [[sum(1 for a, b in pairs if a.stance == r and b.stance == c) for c in stance_labels]
                            for r in stance_labels]},
        EMOTIONS: {lab: {"labels": ["no", "yes"], "rows": "old", "columns": "new",
                         "counts": _binary_matrix([lab in (a.emotions or []) for a, _ in pairs],
                                                  [lab in (b.emotions or []) for _, b in pairs])}
                   for lab in emotion_labels},
        AFFECT_FOCUS: {"labels": ["no", "yes"], "rows": "old", "columns": "new",
                       "counts": _binary_matrix([bool(a.affect_focus) for a, _ in pairs],
                                                [bool(b.affect_focus) for _, b in pairs])},
    }
    grouped: dict[str, list[tuple[SentenceRecord, SentenceRecord]]] = defaultdict(list)
    for a, b in pairs:
        grouped[group_of(b, by)].append((a, b))
    groups: dict[str, Any] = {}
    for group in sorted(grouped):
        members = grouped[group]
        share_old = _shares([a for a, _ in members], schema)
        share_new = _shares([b for _, b in members], schema)
        groups[group] = {
            "n": len(members),
            "flip_rate_stance": round(sum(a.stance != b.stance for a, b in members) / len(members), 4),
            "shares": {key: {"old": round(share_old[key], 4), "new": round(share_new[key], 4),
                             "change_pp": round(100 * (share_new[key] - share_old[key]), 2)} for key in share_old},
        }
    result["by"] = by
    result["groups"] = groups
    return result
