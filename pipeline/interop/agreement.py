"""Agreement between two annotators, or between the model and a human: Cohen's kappa per
layer on the sentences both labelled.

Each side is either an annotation file in the gold format (JSON lines with `id` and the
layers, e.g. from `epistance import-annotations`) or an annotated corpus folder (the
model's labels, ids = sentence ids). A layer is compared on the items where both sides
have it (null = not annotated). The figures mirror data/annotation/agreement.json:
- stance: kappa, percent agreement and the A-by-B label matrix;
- emotions: kappa per emotion (present/absent), their mean, kappa of "any emotion",
  and exact-set agreement;
- affect focus: kappa and percent agreement.
Kappa is undefined (reported as null) when both sides use one single value throughout.
"""
from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from models.labels import AFFECT_FOCUS, EMOTIONS, STANCE, LabelSchema, load_label_schema
from pipeline.corpus_io import SENTENCES_JSONL, read_manifest, read_sentences
from pipeline.interop.errors import CorpusMismatchError, InteropError


@dataclass(frozen=True)
class Item:
    text: str | None
    stance: str | None
    emotions: frozenset[str] | None
    affect_focus: bool | None
    producer: str | None = None


@dataclass(frozen=True)
class Rater:
    name: str
    path: Path
    items: dict[str, Item]


def load_rater(path: Path, schema: LabelSchema | None = None) -> Rater:
    """An annotation file (gold format) or a corpus folder, as id -> labels."""
    if path.is_dir():
        if not (path / SENTENCES_JSONL).is_file():
            raise InteropError("a folder must be an annotated corpus (sentences.jsonl)", path=path)
        manifest = read_manifest(path)
        items = {row.sentence_id: Item(row.text, row.stance, frozenset(row.emotions or []), row.affect_focus)
                 for row in read_sentences(path) if row.tagged}
        model = f"model:{manifest.model}" if manifest else f"model:{path.name}"
        return Rater(name=model, path=path, items={k: replace(v, producer=model) for k, v in items.items()})
    schema = schema or load_label_schema()
    rows: dict[str, Item] = {}
    try:
        with open(path, encoding="utf-8-sig") as handle:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    _read_item(json_line(line, path, number), rows, schema, path, f"line {number}")
    except (OSError, UnicodeDecodeError) as error:
        raise InteropError(f"cannot read the annotation file ({type(error).__name__})", path=path) from None
    return Rater(name=_rater_name(path, rows.values()), path=path, items=rows)


def _rater_name(path: Path, items: Iterable[Item]) -> str:
    """The producer when all items share one (`human:ann1`), else the file and how many there are."""
    names = {item.producer for item in items if item.producer}
    if len(names) == 1:
        return next(iter(names))
    return f"{path.name} ({len(names)} annotators)" if names else path.name


def json_line(line: str, path: Path, number: int) -> dict[str, Any]:
    try:
        row = json.loads(line)
    except ValueError:
        raise InteropError("not valid JSON", path=path, where=f"line {number}") from None
    if not isinstance(row, dict) or not isinstance(row.get("id"), str):
        raise InteropError("expected an object with a string 'id'", path=path, where=f"line {number}")
    return row


def _read_item(row: dict[str, Any], items: dict[str, Item], schema: LabelSchema, path: Path, where: str) -> None:
    """Validate one annotation row into `items`."""
    stance, emotions, affect = row.get(STANCE), row.get(EMOTIONS), row.get(AFFECT_FOCUS)
    if stance is not None and stance not in schema.layers[STANCE].labels:
        raise InteropError(f"unknown stance label; expected one of {list(schema.layers[STANCE].labels)}",
                           path=path, where=where)
    if emotions is not None and (not isinstance(emotions, list)
                                 or set(emotions) - set(schema.layers[EMOTIONS].labels)):
        raise InteropError("emotions must be a list of schema labels", path=path, where=where)
    if affect is not None and not isinstance(affect, bool):
        raise InteropError("affect_focus must be true, false or null", path=path, where=where)
    if row["id"] in items:
        raise InteropError(f"duplicate id {row['id']!r}", path=path, where=where)
    text = row.get("text")
    producer = row.get("producer") or (f"human:{row['annotator']}" if row.get("annotator") else None)
    items[row["id"]] = Item(text if isinstance(text, str) else None, stance,
                            frozenset(emotions) if emotions is not None else None, affect,
                            producer if isinstance(producer, str) else None)


def _kappa(a: list[Any], b: list[Any], labels: list[Any]) -> float | None:
    from sklearn.metrics import cohen_kappa_score

    if not a or (len(set(a)) == 1 and set(a) == set(b)):
        return None
    value = float(cohen_kappa_score(a, b, labels=labels))
    return None if math.isnan(value) else round(value, 4)


def _percent(a: list[Any], b: list[Any]) -> float | None:
    return round(sum(x == y for x, y in zip(a, b)) / len(a), 4) if a else None


def agreement(a: Rater, b: Rater, schema: LabelSchema | None = None) -> dict[str, Any]:
    """Cohen's kappa per layer between two raters (see the module docstring)."""
    schema = schema or load_label_schema()
    common = sorted(set(a.items) & set(b.items))
    if not common:
        raise CorpusMismatchError("the two sides share no sentence id", path=b.path,
                                  hint="compare annotations of the same sentences (ids = sentence ids)")
    changed = [i for i in common if a.items[i].text is not None and b.items[i].text is not None
               and a.items[i].text != b.items[i].text]
    if changed:
        raise CorpusMismatchError(f"{len(changed)} sentence(s) have different text on the two sides, first "
                                  f"{changed[0]!r}", path=b.path, hint="compare annotations of the same corpus")
    result: dict[str, Any] = {"a": _rater_name(a.path, (a.items[i] for i in common)),
                              "b": _rater_name(b.path, (b.items[i] for i in common)),
                              "items_a": len(a.items), "items_b": len(b.items), "items_common": len(common)}
    stance_ids = [i for i in common if a.items[i].stance is not None and b.items[i].stance is not None]
    sa = [a.items[i].stance for i in stance_ids]
    sb = [b.items[i].stance for i in stance_ids]
    labels = list(schema.layers[STANCE].labels)
    result[STANCE] = {
        "n": len(stance_ids), "kappa": _kappa(sa, sb, labels), "percent_agreement": _percent(sa, sb),
        "matrix": {"labels": labels, "rows": "a", "columns": "b",
                   "counts": [[sum(1 for x, y in zip(sa, sb) if x == r and y == c) for c in labels] for r in labels]},
    }
    emo_ids = [i for i in common if a.items[i].emotions is not None and b.items[i].emotions is not None]
    per_label = {}
    for label in schema.layers[EMOTIONS].labels:
        ea = [label in (a.items[i].emotions or ()) for i in emo_ids]
        eb = [label in (b.items[i].emotions or ()) for i in emo_ids]
        per_label[label] = {"kappa": _kappa(ea, eb, [False, True]), "percent_agreement": _percent(ea, eb),
                            "a_yes": sum(ea), "b_yes": sum(eb)}
    kappas = [v["kappa"] for v in per_label.values() if v["kappa"] is not None]
    any_a = [bool(a.items[i].emotions) for i in emo_ids]
    any_b = [bool(b.items[i].emotions) for i in emo_ids]
    result[EMOTIONS] = {
        "n": len(emo_ids), "kappa_mean": round(sum(kappas) / len(kappas), 4) if kappas else None,
        "any_emotion_kappa": _kappa(any_a, any_b, [False, True]), "any_emotion_agreement": _percent(any_a, any_b),
        "exact_set_agreement": _percent([a.items[i].emotions for i in emo_ids], [b.items[i].emotions for i in emo_ids]),
        "per_label": per_label,
    }
    aff_ids = [i for i in common if a.items[i].affect_focus is not None and b.items[i].affect_focus is not None]
    fa = [bool(a.items[i].affect_focus) for i in aff_ids]
    fb = [bool(b.items[i].affect_focus) for i in aff_ids]
    result[AFFECT_FOCUS] = {"n": len(aff_ids), "kappa": _kappa(fa, fb, [False, True]),
                            "percent_agreement": _percent(fa, fb), "a_yes": sum(fa), "b_yes": sum(fb)}
    return result
