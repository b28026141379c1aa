"""Training and evaluation data: the in-domain gold file and GoEmotions (Ekman grouping).

Every item becomes an `Example` that carries any subset of the three layers; a layer
that is ``None`` is simply absent and masked out of the loss and the metrics.

Error messages cite file, line and field, never sentence text.

Plain lists of frozen dataclasses are used rather than `datasets.Dataset`: the data are
small (tens of thousands of short rows), the layers are optional per row, and
`datasets`' on-disk cache would write under the user's home directory behind the
caller's back.
"""
from __future__ import annotations

import csv
import hashlib
import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from models.errors import DataError
from models.labels import LabelSchema

Split = Literal["train", "dev", "test"]
SPLITS: tuple[Split, ...] = ("train", "dev", "test")
GOEMOTIONS_SOURCE = "goemotions"
NEUTRAL = "neutral"
SPLIT_NAMESPACE = "epistance/split/v1:"


def assign_split(transcript_id: str) -> Split:
    """Deterministic split of a transcript: ~70% train, ~10% dev, ~20% test.

    Taken from the sha256 of ``SPLIT_NAMESPACE + transcript_id``, so it is stable across
    machines, processes and Python versions, and all sentences of one transcript share a
    split. (The namespace keeps this hash independent of any other use of the ids; with
    the bare id only 1 of primock57's 57 consultations fell in dev, with it 5 do.)
    """
    digest = hashlib.sha256((SPLIT_NAMESPACE + transcript_id).encode("utf-8")).digest()
    bucket = int.from_bytes(digest[:8], "big") % 100
    if bucket < 70:
        return "train"
    if bucket < 80:
        return "dev"
    return "test"


@dataclass(frozen=True)
class Example:
    id: str
    text: str
    source: str
    split: str
    transcript: str | None = None
    speaker: str | None = None
    stance: str | None = None
    emotions: tuple[str, ...] | None = None
    affect_focus: bool | None = None
    #: the talk before the sentence (pipeline.context.preceding_context); "" when none
    context: str = ""


class GoldRecord(BaseModel):
    """One line of data/annotation/gold.jsonl; a layer may be null when not annotated."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: str
    text: str
    source: str
    transcript: str
    speaker: str | None = None
    split: Split
    stance: str | None
    emotions: list[str] | None
    affect_focus: bool | None
    context: str = ""


def _check_labels(record: GoldRecord, schema: LabelSchema, where: str) -> None:
    if record.stance is not None and record.stance not in schema.stance_labels:
        raise DataError(
            f"{where}: field 'stance' is {record.stance!r}, expected one of {list(schema.stance_labels)}"
        )
    if record.emotions is not None:
        unknown = sorted(set(record.emotions) - set(schema.emotion_labels))
        if unknown:
            raise DataError(
                f"{where}: field 'emotions' has unknown labels {unknown}, expected a subset of "
                f"{list(schema.emotion_labels)} (empty list = neutral)"
            )


def load_gold(path: Path, schema: LabelSchema, splits: Iterable[str] | None = None) -> list[Example]:
    """Read the gold JSONL (see module docstring), optionally keeping only some splits."""
    if not path.is_file():
        raise DataError(f"gold file {path} not found; build it from data/annotation/ first")
    keep = set(splits) if splits is not None else None
    examples: list[Example] = []
    seen: set[str] = set()
    with open(path, encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                record = GoldRecord.model_validate(json.loads(line))
            except json.JSONDecodeError as exc:
                raise DataError(f"{where}: not valid JSON (column {exc.colno})") from None
            except ValidationError as exc:
                fields = sorted({".".join(str(p) for p in e["loc"]) for e in exc.errors()})
                raise DataError(f"{where}: invalid or missing fields {fields}") from None
            _check_labels(record, schema, where)
            if record.id in seen:
                raise DataError(f"{where}: duplicate id {record.id!r}")
            seen.add(record.id)
            if keep is not None and record.split not in keep:
                continue
            emotions = None
            if record.emotions is not None:
                emotions = tuple(e for e in schema.emotion_labels if e in record.emotions)
            examples.append(
                Example(
                    id=record.id,
                    text=record.text,
                    source=record.source,
                    split=record.split,
                    transcript=record.transcript,
                    speaker=record.speaker,
                    stance=record.stance,
                    emotions=emotions,
                    affect_focus=record.affect_focus,
                    context=record.context,
                )
            )
    return examples


def goemotions_labels(folder: Path) -> list[str]:
    path = folder / "labels.txt"
    if not path.is_file():
        raise DataError(f"{path} not found; expected the GoEmotions Ekman label list")
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def load_goemotions(
    folder: Path,
    split: Split,
    schema: LabelSchema,
    exclude_ids: Iterable[str] = (),
) -> list[Example]:
    """GoEmotions Ekman TSV (text, comma-separated label ids, comment id) as Examples.

    Only the emotions layer is present; ``neutral`` becomes the empty set. Items whose
    comment id is in ``exclude_ids`` (e.g. those also in the gold file) are skipped.
    """
    names = goemotions_labels(folder)
    missing = sorted(set(schema.emotion_labels) - set(names))
    if missing:
        raise DataError(f"{folder}/labels.txt lacks schema emotions {missing}")
    path = folder / f"{split}.tsv"
    if not path.is_file():
        raise DataError(f"{path} not found; expected GoEmotions {split} TSV")
    excluded = set(exclude_ids)
    examples: list[Example] = []
    with open(path, encoding="utf-8", newline="") as handle:
        for lineno, row in enumerate(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE), start=1):
            if len(row) != 3:
                raise DataError(f"{path}:{lineno}: expected 3 tab-separated columns, found {len(row)}")
            text, ids, comment_id = row
            if comment_id in excluded:
                continue
            try:
                labels = {names[int(i)] for i in ids.split(",")}
            except (ValueError, IndexError):
                raise DataError(f"{path}:{lineno}: column 2 must be label ids 0..{len(names) - 1}") from None
            emotions = tuple(e for e in schema.emotion_labels if e in labels)
            examples.append(
                Example(
                    id=f"{GOEMOTIONS_SOURCE}:{comment_id}",
                    text=text,
                    source=GOEMOTIONS_SOURCE,
                    split=split,
                    transcript=comment_id,
                    emotions=emotions,
                )
            )
    return examples


def gold_goemotions_ids(gold: Sequence[Example]) -> set[str]:
    """GoEmotions comment ids that also appear in the gold file (its transcript field)."""
    return {ex.transcript for ex in gold if ex.source.startswith(GOEMOTIONS_SOURCE) and ex.transcript}


def subsample(examples: Sequence[Example], limit: int, seed: int) -> list[Example]:
    """A seeded subsample of at most ``limit`` items, in the original order (0 = none)."""
    if limit >= len(examples):
        return list(examples)
    keep = sorted(random.Random(seed).sample(range(len(examples)), limit))
    return [examples[i] for i in keep]
