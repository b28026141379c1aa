"""The annotated corpus on disk: sentences.jsonl, sentences.parquet, manifest.json.

Rows are `SentenceRecord`s; the Parquet file carries a typed pyarrow schema with a
version. The manifest lists every input with its status and every output with size and
sha256; it has no timestamps, so the same inputs give byte-identical files.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict

from pipeline.atomic import atomic_file, write_bytes_atomic
from pipeline.errors import CorpusError

CORPUS_FORMAT = "epistance-corpus/1"
SENTENCES_JSONL = "sentences.jsonl"
SENTENCES_PARQUET = "sentences.parquet"
DOCBIN = "docs.spacy"
MANIFEST = "manifest.json"
RUN_RECORD = "run.json"
STATE_DIR = ".epistance"


class SentenceRecord(BaseModel):
    """One row of sentences.jsonl / sentences.parquet."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    transcript_id: str
    turn_id: str
    sentence_id: str
    speaker_id: str
    role: str
    speaker_known: bool
    attributes: dict[str, str]
    text: str
    start: int
    end: int
    turn_start: float | None
    turn_end: float | None
    tagged: bool
    stance: str | None
    stance_probs: dict[str, float] | None
    emotions: list[str] | None
    emotion_probs: dict[str, float] | None
    affect_focus: bool | None
    affect_focus_prob: float | None


PROBS = pa.map_(pa.string(), pa.float64())
PARQUET_SCHEMA = pa.schema([
    ("transcript_id", pa.string()), ("turn_id", pa.string()), ("sentence_id", pa.string()),
    ("speaker_id", pa.string()), ("role", pa.string()), ("speaker_known", pa.bool_()),
    ("attributes", pa.map_(pa.string(), pa.string())), ("text", pa.string()),
    ("start", pa.int32()), ("end", pa.int32()), ("turn_start", pa.float64()), ("turn_end", pa.float64()),
    ("tagged", pa.bool_()), ("stance", pa.string()), ("stance_probs", PROBS),
    ("emotions", pa.list_(pa.string())), ("emotion_probs", PROBS),
    ("affect_focus", pa.bool_()), ("affect_focus_prob", pa.float64()),
], metadata={"epistance_format": CORPUS_FORMAT})


class InputEntry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    transcript_id: str
    paths: list[str]
    sha256: str
    status: Literal["ok", "rejected"]
    key: str | None = None
    source_format: str | None = None
    encoding: str | None = None
    turns: int | None = None
    sentences: int | None = None
    tagged: int | None = None
    skipped_cues: int | None = None
    unknown_speakers: list[str] = []
    error_code: str | None = None
    error: str | None = None


class OutputEntry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    size: int
    sha256: str


class Manifest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    format: str = CORPUS_FORMAT
    code_version: str
    model: str
    label_schema: str
    config_hash: str
    segmentation: dict[str, object]
    inputs: list[InputEntry]
    outputs: list[OutputEntry] = []
    #: sha256 of everything the outputs are made from (pipeline.annotate.assembly_key): a
    #: rerun with the same key and intact outputs leaves them as they are
    assembly_key: str | None = None
    #: what the outputs hold (turns, sentences, label counts), for that rerun's summary
    counts: dict[str, Any] | None = None


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _jsonl_bytes(records: Iterable[SentenceRecord]) -> Iterator[bytes]:
    # pydantic's own JSON encoder: compact, UTF-8, five times faster than json.dumps of model_dump
    for record in records:
        yield record.model_dump_json().encode() + b"\n"


@contextlib.contextmanager
def sentences_jsonl_writer(path: Path) -> Iterator[Callable[[Iterable[SentenceRecord]], None]]:
    """A function that appends rows to the JSONL file at `path`, published when the block ends."""
    with atomic_file(path) as handle:
        yield lambda records: handle.writelines(_jsonl_bytes(records))


def write_sentences_jsonl(path: Path, records: Iterable[SentenceRecord]) -> None:
    with sentences_jsonl_writer(path) as add:
        add(records)


#: columns that are dicts in a SentenceRecord and maps in Parquet (given as key-value pairs)
_MAP_COLUMNS = frozenset({"attributes", "stance_probs", "emotion_probs"})


def _parquet_columns(batch: list[SentenceRecord]) -> dict[str, list[Any]]:
    """The batch column by column (pyarrow builds a table from columns faster than from rows)."""
    columns = {}
    for name in PARQUET_SCHEMA.names:
        values = [getattr(record, name) for record in batch]
        columns[name] = [None if v is None else list(v.items()) for v in values] if name in _MAP_COLUMNS else values
    return columns


@contextlib.contextmanager
def sentences_parquet_writer(path: Path) -> Iterator[Callable[[list[SentenceRecord]], None]]:
    """A function that appends a batch of rows (a transcript's) to the Parquet file at
    `path` as one row group, so memory does not grow with the corpus; published when the
    block ends."""
    with atomic_file(path) as handle, pq.ParquetWriter(handle, PARQUET_SCHEMA, compression="zstd") as writer:

        def add(batch: list[SentenceRecord]) -> None:
            if batch:
                writer.write_table(pa.Table.from_pydict(_parquet_columns(batch), schema=PARQUET_SCHEMA))

        yield add


def write_sentences_parquet(path: Path, batches: Iterable[list[SentenceRecord]]) -> None:
    with sentences_parquet_writer(path) as add:
        for batch in batches:
            add(batch)


def read_sentences(corpus_dir: Path) -> Iterator[SentenceRecord]:
    """Stream the rows of a corpus's sentences.jsonl, validating each."""
    path = corpus_dir / SENTENCES_JSONL
    if not path.is_file():
        raise CorpusError("no sentences.jsonl: is this an epistance output folder?", path=corpus_dir,
                          hint="run `epistance annotate` first")
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                yield SentenceRecord.model_validate_json(line)
            except ValueError:
                raise CorpusError("row is not a valid sentence record (truncated or edited file?)", path=path,
                                  where=f"line {number}", hint="rerun `epistance annotate` to rebuild it") from None


def write_manifest(corpus_dir: Path, manifest: Manifest) -> None:
    data = json.dumps(manifest.model_dump(mode="json"), indent=2, sort_keys=False).encode() + b"\n"
    write_bytes_atomic(corpus_dir / MANIFEST, data)


def read_manifest(corpus_dir: Path) -> Manifest | None:
    path = corpus_dir / MANIFEST
    if not path.is_file():
        return None
    try:
        return Manifest.model_validate_json(path.read_bytes())
    except ValueError:
        raise CorpusError("manifest.json is not a valid epistance manifest", path=path,
                          hint="remove it and rerun `epistance annotate`") from None


def describe_outputs(corpus_dir: Path, names: Iterable[str]) -> list[OutputEntry]:
    return [OutputEntry(name=name, size=(corpus_dir / name).stat().st_size, sha256=sha256_file(corpus_dir / name))
            for name in names]


def verify_corpus(corpus_dir: Path) -> list[str]:
    """Problems found between the manifest and the files (empty when all is well)."""
    manifest = read_manifest(corpus_dir)
    if manifest is None:
        return [f"{corpus_dir / MANIFEST}: missing"]
    problems = output_problems(corpus_dir, manifest)
    listed = {entry.name for entry in manifest.outputs}
    for path in sorted(corpus_dir.iterdir()):
        # folders are the user's (e.g. `epistance compare OUT --out OUT/report`), not outputs
        if path.is_file() and path.name not in listed and path.name not in (MANIFEST, RUN_RECORD):
            problems.append(f"{path.name}: not listed in the manifest")
    return problems


def output_problems(corpus_dir: Path, manifest: Manifest) -> list[str]:
    """Output files of `manifest` that are missing or differ from it (size, then sha256)."""
    problems = []
    for entry in manifest.outputs:
        path = corpus_dir / entry.name
        if not path.is_file():
            problems.append(f"{entry.name}: missing")
        elif path.stat().st_size != entry.size:
            problems.append(f"{entry.name}: size {path.stat().st_size}, manifest says {entry.size}")
        elif sha256_file(path) != entry.sha256:
            problems.append(f"{entry.name}: sha256 differs from the manifest (altered)")
    return problems
