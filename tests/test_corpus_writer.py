"""The forked corpus-files writer: corpus order, publish or drop, and a run that survives its failure."""
from __future__ import annotations

import os
import random
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from pipeline import annotate, corpus_writer
from pipeline.atomic import atomic_file
from pipeline.config import RunConfig
from pipeline.corpus_io import InputEntry
from pipeline.corpus_writer import CorpusFilesWriter, can_fork
from pipeline.ingest.metadata import SpeakerTable
from pipeline.segment import Segmenter
from pipeline.tag import LoadedTagger
from tests.fakes import HashTagger

pytestmark = pytest.mark.skipif(not can_fork(), reason="the writer process is forked (Linux only)")


def entry(transcript_id: str, status: str = "ok") -> InputEntry:
    return InputEntry(transcript_id=transcript_id, paths=[f"{transcript_id}.txt"], sha256="0" * 64, status=status)


def ids_in_order(*args: Any) -> dict[str, Any]:
    *given, entries = args
    return {"args": given, "ids": [e.transcript_id for e in entries]}


def file_writer(path: Path):  # type: ignore[no-untyped-def]
    """Writes each entry's id to `path` through the atomic writer the corpus files use."""
    def write(entries: Iterable[InputEntry]) -> dict[str, Any]:
        with atomic_file(path) as handle:
            for e in entries:
                handle.write(e.transcript_id.encode() + b"\n")
        return {"written": True}
    return write


def started(write, order: list[str], *args: Any) -> CorpusFilesWriter:  # type: ignore[no-untyped-def]
    writer = CorpusFilesWriter(write)
    writer.begin(order, *args)
    return writer


def test_entries_reach_the_writer_in_corpus_order_whatever_order_they_finish_in() -> None:
    order = [f"t{n:02d}" for n in range(20)]
    finished = [entry(t, "rejected" if t in {"t03", "t19"} else "ok") for t in order]
    random.Random(7).shuffle(finished)
    writer = started(ids_in_order, order, "first argument")
    for n, e in enumerate(finished):
        writer.add(e, new=n % 3 == 1)  # cached ones before the first new one wait for it
    assert writer.publish() == {"args": ["first argument"], "ids": [t for t in order if t not in {"t03", "t19"}]}


def test_a_run_that_tags_nothing_new_never_starts_the_writer(tmp_path: Path) -> None:
    target = tmp_path / "sentences.jsonl"
    writer = started(file_writer(target), ["a", "b"])
    writer.add(entry("a"), new=False)
    writer.add(entry("b"), new=False)
    assert writer.publish() is None  # the run writes the files itself, if they changed
    assert not target.exists()


def test_dropped_files_are_never_published(tmp_path: Path) -> None:
    target = tmp_path / "files" / "sentences.jsonl"
    target.parent.mkdir()
    writer = started(file_writer(target), ["a", "b"])
    writer.add(entry("a"), new=True)
    writer.add(entry("b"), new=True)
    writer.drop()
    assert list(target.parent.iterdir()) == []  # neither the file nor its temp file


def test_published_files_are_there_once_publish_returns(tmp_path: Path) -> None:
    target = tmp_path / "sentences.jsonl"
    writer = started(file_writer(target), ["a", "b"])
    writer.add(entry("b"), new=True)
    writer.add(entry("a"), new=False)
    assert writer.publish() == {"written": True}
    assert target.read_bytes() == b"a\nb\n"


def test_a_corpus_missing_a_transcript_is_not_published(tmp_path: Path) -> None:
    target = tmp_path / "sentences.jsonl"
    writer = started(file_writer(target), ["a", "b"])
    writer.add(entry("b"), new=True)  # "a" never came: nothing of the corpus may be published
    assert writer.publish() is None
    assert not target.exists()


def failing(entries: Iterable[InputEntry]) -> dict[str, Any]:
    next(iter(entries))
    raise ValueError("a part that cannot be read")


def dying(entries: Iterable[InputEntry]) -> dict[str, Any]:
    next(iter(entries))
    os._exit(3)  # killed, say by the kernel's out-of-memory killer


@pytest.mark.parametrize(("write", "said"), [(failing, "failed (ValueError)"), (dying, "stopped")])
def test_a_writer_that_fails_or_dies_tells_the_run_to_write_the_files_itself(
        write, said: str, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    writer = started(write, ["a", "b", "c"])
    writer.add(entry("a"), new=True)
    writer.add(entry("b"), new=True)  # sent after the writer may have gone
    writer.add(entry("c"), new=True)
    assert writer.publish() is None
    assert f"the corpus writer process {said}" in caplog.text
    assert "a part that cannot be read" not in caplog.text  # the error's type only, never its text


@pytest.fixture()
def corpus_in(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.txt").write_text("P1: The guidelines say twelve weeks. I felt lost.\nP2: Mm. We check the chart.\n")
    (folder / "b.txt").write_text("P1: I was scared when they sectioned me.\nP2: The audit found delays.\n")
    (folder / "c.txt").write_text("P1: Nothing here is a sentence\n")
    return folder


def corpus_files(out: Path) -> dict[str, bytes]:
    return {name: (out / name).read_bytes() for name in ("sentences.jsonl", "sentences.parquet", "docs.spacy",
                                                         "manifest.json")}


def test_a_run_writes_the_same_bytes_with_the_writer_process_without_it_and_when_it_dies(
        corpus_in: Path, tmp_path: Path, segmenter: Segmenter, monkeypatch: pytest.MonkeyPatch) -> None:
    def run(out: Path) -> dict[str, bytes]:
        annotate.annotate_corpus([corpus_in], out, RunConfig(), LoadedTagger(HashTagger()), SpeakerTable(),
                                 segmenter=segmenter)
        return corpus_files(out)

    published: list[dict[str, Any] | None] = []
    publish = CorpusFilesWriter.publish
    with monkeypatch.context() as patch:
        patch.setattr(CorpusFilesWriter, "publish", lambda self: published.append(publish(self)) or published[-1])
        with_writer = run(tmp_path / "with")
    assert published and published[0] is not None  # the writer process wrote these files
    with monkeypatch.context() as patch:
        patch.setattr(corpus_writer, "can_fork", lambda: False)
        without = run(tmp_path / "without")
    with monkeypatch.context() as patch:
        patch.setattr(corpus_writer, "_writer_main", lambda *args: os._exit(1))
        after_death = run(tmp_path / "died")
    assert with_writer == without == after_death
    assert with_writer["sentences.jsonl"].count(b"\n") >= 4
