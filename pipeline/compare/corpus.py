"""Read an annotated corpus into one tidy table for comparison, select and group it.

Reads `sentences.parquet` when present, else `sentences.jsonl` (the same rows). Both are
read tolerantly: map columns may arrive as dicts, as lists of (key, value) pairs (how
pyarrow returns a Parquet map) or as JSON strings; extra columns are ignored. Errors name
the file, the line or row and the field, never the text.
"""
from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.errors import ConfigError, CorpusError

SENTENCES_JSONL = "sentences.jsonl"
SENTENCES_PARQUET = "sentences.parquet"
MANIFEST = "manifest.json"

#: Columns every row must have; the label columns may be null (sentence not tagged).
REQUIRED = ("transcript_id", "sentence_id", "speaker_id", "role", "text")
OPTIONAL = ("turn_id", "attributes", "stance", "stance_probs", "emotions", "emotion_probs",
            "affect_focus", "affect_focus_prob")
#: Row columns a `by` or `where` key may name directly; any other key is a speaker attribute.
ROW_KEYS = ("role", "transcript_id", "speaker_id")
PERSON_ATTRIBUTE = "person"
MISSING = "(missing)"


def _as_mapping(value: Any, field: str, place: str, path: Path) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise CorpusError(f"field `{field}` is a string but not JSON", path=path, where=place,
                              hint="store it as a map or a JSON object") from None
        if value is None:
            return None
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, list | tuple) and all(isinstance(p, list | tuple) and len(p) == 2 for p in value):
        return {k: v for k, v in value}
    raise CorpusError(f"field `{field}` should be a mapping, found {type(value).__name__}", path=path,
                      where=place, hint="regenerate the corpus with `epistance annotate`")


def _as_list(value: Any, field: str, place: str, path: Path) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise CorpusError(f"field `{field}` is a string but not a JSON list", path=path, where=place) from None
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    raise CorpusError(f"field `{field}` should be a list, found {type(value).__name__}", path=path, where=place)


def _as_float(value: Any, field: str, place: str, path: Path) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise CorpusError(f"field `{field}` should be a number", path=path, where=place) from None


def _normalise(row: Mapping[str, Any], place: str, path: Path) -> dict[str, Any]:
    for field in REQUIRED:
        if row.get(field) is None:
            raise CorpusError(f"row has no `{field}`", path=path, where=place,
                              hint="is this an epistance sentences file?")
    attributes = _as_mapping(row.get("attributes"), "attributes", place, path) or {}
    stance_probs = _as_mapping(row.get("stance_probs"), "stance_probs", place, path)
    emotion_probs = _as_mapping(row.get("emotion_probs"), "emotion_probs", place, path)
    affect = row.get("affect_focus")
    if affect is not None and not isinstance(affect, bool):
        if affect in (0, 1, "true", "false", "True", "False"):
            affect = affect in (1, "true", "True")
        else:
            raise CorpusError("field `affect_focus` should be true, false or null", path=path, where=place)
    return {
        "transcript_id": str(row["transcript_id"]),
        "turn_id": str(row.get("turn_id") or ""),
        "sentence_id": str(row["sentence_id"]),
        "speaker_id": str(row["speaker_id"]),
        "role": str(row["role"]),
        "attributes": {str(k): str(v) for k, v in attributes.items() if v is not None},
        "text": str(row["text"]),
        "stance": None if row.get("stance") is None else str(row["stance"]),
        "stance_probs": None if stance_probs is None else {
            str(k): _as_float(v, "stance_probs", place, path) for k, v in stance_probs.items()},
        "emotions": _as_list(row.get("emotions"), "emotions", place, path),
        "emotion_probs": None if emotion_probs is None else {
            str(k): _as_float(v, "emotion_probs", place, path) for k, v in emotion_probs.items()},
        "affect_focus": affect,
        "affect_focus_prob": _as_float(row.get("affect_focus_prob"), "affect_focus_prob", place, path),
    }


def _jsonl_rows(path: Path) -> Iterator[dict[str, Any]]:
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            place = f"line {number}"
            try:
                row = json.loads(line)
            except ValueError:
                raise CorpusError("line is not valid JSON (truncated or edited file?)", path=path, where=place,
                                  hint="rerun `epistance annotate` to rebuild it") from None
            if not isinstance(row, dict):
                raise CorpusError("line is not a JSON object", path=path, where=place)
            yield _normalise(row, place, path)


def _parquet_rows(path: Path) -> Iterator[dict[str, Any]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise CorpusError(f"cannot read Parquet file ({type(exc).__name__})", path=path,
                          hint="rebuild it, or remove it to fall back to sentences.jsonl") from None
    wanted = [c for c in (*REQUIRED, *OPTIONAL) if c in table.column_names]
    for number, row in enumerate(table.select(wanted).to_pylist()):
        yield _normalise(row, f"row {number}", path)


def read_corpus_table(corpus_dir: Path, *, prefer: str = "parquet") -> pd.DataFrame:
    """All sentence rows of an annotated corpus as a DataFrame (one row per sentence).

    `prefer` is "parquet" or "jsonl"; the other file is the fallback. Columns: the row
    fields above, with `attributes` a dict and the probability columns dicts or None.
    """
    candidates = [SENTENCES_PARQUET, SENTENCES_JSONL] if prefer == "parquet" else [SENTENCES_JSONL, SENTENCES_PARQUET]
    for name in candidates:
        path = corpus_dir / name
        if path.is_file():
            rows = list(_parquet_rows(path) if name == SENTENCES_PARQUET else _jsonl_rows(path))
            frame = pd.DataFrame(rows, columns=[*REQUIRED[:2], "turn_id", *REQUIRED[2:], *OPTIONAL[1:]])
            if frame.empty:
                raise CorpusError("the corpus has no sentences", path=path, hint="annotate some transcripts first")
            if frame["sentence_id"].duplicated().any():
                raise CorpusError("sentence ids are not unique", path=path, hint="rebuild the corpus")
            return frame
    raise CorpusError("no sentences.parquet or sentences.jsonl: is this an epistance output folder?",
                      path=corpus_dir, hint="run `epistance annotate` first")


def read_model_ref(corpus_dir: Path) -> str | None:
    """The `model` field ("id@version") of the corpus manifest, or None if absent."""
    path = corpus_dir / MANIFEST
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        raise CorpusError("manifest.json is not valid JSON", path=path) from None
    model = data.get("model") if isinstance(data, dict) else None
    return str(model) if model else None


def column_values(frame: pd.DataFrame, key: str) -> pd.Series:
    """The value of `key` for each row: a row column (role, ...) or a speaker attribute."""
    if key in ROW_KEYS:
        return frame[key].astype(str)
    return frame["attributes"].map(lambda attrs: attrs.get(key))


def available_keys(frame: pd.DataFrame) -> list[str]:
    keys: set[str] = set()
    for attrs in frame["attributes"]:
        keys.update(attrs)
    return [*ROW_KEYS, *sorted(keys)]


def _check_key(frame: pd.DataFrame, key: str, what: str) -> None:
    if key in ROW_KEYS:
        return
    if not frame["attributes"].map(lambda attrs: key in attrs).any():
        raise ConfigError(f"{what} key `{key}` is neither a row column nor a speaker attribute of this corpus",
                          hint="known keys: " + ", ".join(available_keys(frame)))


def select_rows(frame: pd.DataFrame, where: Mapping[str, str] | None, include_interviewers: bool) -> pd.DataFrame:
    """Keep rows matching every `where` key exactly; drop interviewers unless asked.

    A `where` on `role` decides the roles by itself (include_interviewers is then moot).
    """
    where = dict(where or {})
    mask = pd.Series(True, index=frame.index)
    for key, value in where.items():
        _check_key(frame, key, "where")
        mask &= column_values(frame, key) == str(value)
    if "role" not in where and not include_interviewers:
        mask &= frame["role"] != "interviewer"
    return frame.loc[mask].copy()


def assign_groups(frame: pd.DataFrame, by: list[str], cluster: str = "speaker") -> pd.DataFrame:
    """Add `group` (values of the `by` keys joined by " | "), `speaker` and `cluster` columns.

    `speaker` is the `person` attribute when present (it links one person across
    transcripts), else "<transcript_id>:<speaker_id>". `cluster` is the resampling unit:
    the speaker, or the transcript when cluster == "transcript". Rows whose group value
    is missing get group None.
    """
    if not by:
        raise ConfigError("`by` needs at least one key", hint="e.g. by=['profession']")
    for key in by:
        _check_key(frame, key, "by")
    out = frame.copy()
    parts = [column_values(out, key) for key in by]
    missing = pd.concat([p.isna() for p in parts], axis=1).any(axis=1)
    joined = parts[0].fillna(MISSING).astype(str)
    for part in parts[1:]:
        joined = joined + " | " + part.fillna(MISSING).astype(str)
    out["group"] = joined.where(~missing, None)
    person = out["attributes"].map(lambda attrs: attrs.get(PERSON_ATTRIBUTE))
    out["speaker"] = ("person=" + person.astype(str)).where(
        person.notna(), out["transcript_id"] + ":" + out["speaker_id"])
    if cluster == "speaker":
        out["cluster"] = out["speaker"]
    elif cluster == "transcript":
        out["cluster"] = out["transcript_id"]
    else:
        raise ConfigError(f"unknown cluster unit `{cluster}`", hint="use 'speaker' or 'transcript'")
    for index, key in enumerate(by):
        out[f"by:{key}"] = parts[index]
    return out
