"""The corpus run: outputs, incremental reruns, rejected inputs, verify, lock, permissions."""
from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import spacy
from spacy.tokens import DocBin

from pipeline.annotate import annotate_corpus
from pipeline.config import RunConfig
from pipeline.corpus_io import read_manifest, read_sentences, verify_corpus
from pipeline.errors import CorpusLockedError
from pipeline.ingest.metadata import SpeakerTable, load_speaker_table
from pipeline.lock import corpus_lock
from pipeline.segment import Segmenter
from pipeline.tag import LoadedTagger
from tests.fakes import CallSizeTagger, FailingTagger, HashTagger, LaneCountingTagger, OneAtATimeTagger

INTERVIEW_A = """Interviewer: How do you work with peer workers?
P01: When I was first admitted I didn't sleep for a week. [pause] It felt like nobody was listening.
Interviewer: Mm-hm.
P01: The trials show peer support reduces readmissions. Um. I always check the care plan.
"""
INTERVIEW_B = """Interviewer: What does your day look like?
NURSE: Every referral goes through the duty team first. I was so proud of her when she got the flat.
"""
SIDECAR = "transcript,speaker,role,profession\n*,Interviewer,interviewer,researcher\nint_a,P01,participant,peer worker\nint_b,NURSE,participant,nurse\n"


@pytest.fixture()
def corpus_in(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "int_a.txt").write_text(INTERVIEW_A)
    (folder / "int_b.txt").write_text(INTERVIEW_B)
    (tmp_path / "speakers.csv").write_text(SIDECAR)
    return folder


def run(inputs: Path, out: Path, segmenter: Segmenter, tagger: HashTagger | None = None, sidecar: Path | None = None):  # type: ignore[no-untyped-def]
    speakers = load_speaker_table(sidecar) if sidecar else SpeakerTable()
    return annotate_corpus([inputs], out, RunConfig(), LoadedTagger(tagger or HashTagger()), speakers,
                           segmenter=segmenter)


def data_files(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and p.name != "run.json"}


def test_outputs_rows_offsets_and_roles(corpus_in: Path, tmp_path: Path, segmenter: Segmenter) -> None:
    out = tmp_path / "out"
    summary = run(corpus_in, out, segmenter, sidecar=tmp_path / "speakers.csv")
    assert summary.transcripts_processed == 2 and summary.transcripts_failed == 0
    rows = list(read_sentences(out))
    assert [r.sentence_id for r in rows][:2] == ["int_a/t0000/s000", "int_a/t0001/s000"]
    interviewer = [r for r in rows if r.role == "interviewer"]
    assert interviewer and all(r.stance is None and not r.tagged for r in interviewer)
    peer = [r for r in rows if r.speaker_id == "P01"]
    assert all(r.attributes == {"profession": "peer worker"} and r.stance in {"objective", "experiential", "none"}
               for r in peer)
    assert "[pause]" in " ".join(r.text for r in peer)
    assert not any(r.text.strip(". ") == "Um" for r in rows)
    # parquet carries the same rows, typed
    table = pq.read_table(out / "sentences.parquet")
    assert table.num_rows == len(rows)
    assert table.schema.field("stance_probs").type.key_type == "string"
    # the DocBin holds one doc per turn with sentences and span groups
    docs = list(DocBin().from_bytes((out / "docs.spacy").read_bytes()).get_docs(spacy.blank("en").vocab))
    assert len(docs) == summary.turns
    assert sum(len(d.spans["stance"]) for d in docs) == summary.sentences_tagged
    run_record = json.loads((out / "run.json").read_text())
    assert run_record["sentences_tagged"] == summary.sentences_tagged
    assert verify_corpus(out) == []


def test_rerun_tags_nothing_and_writes_the_same_bytes(corpus_in: Path, tmp_path: Path, segmenter: Segmenter) -> None:
    out = tmp_path / "out"
    run(corpus_in, out, segmenter)
    before = data_files(out)
    tagger = HashTagger()
    summary = run(corpus_in, out, segmenter, tagger)
    assert summary.sentences_tagged == 0 and summary.transcripts_skipped == 2
    assert tagger.calls == 0
    assert data_files(out) == before


def test_a_rerun_with_nothing_changed_leaves_the_outputs_alone(corpus_in: Path, tmp_path: Path,
                                                                segmenter: Segmenter) -> None:
    out, sidecar = tmp_path / "out", tmp_path / "speakers.csv"
    first = run(corpus_in, out, segmenter, sidecar=sidecar)
    stamps = {name: (out / name).stat().st_mtime_ns for name in ("sentences.jsonl", "sentences.parquet",
                                                                  "docs.spacy", "manifest.json")}
    again = run(corpus_in, out, segmenter, sidecar=sidecar)
    assert {name: (out / name).stat().st_mtime_ns for name in stamps} == stamps  # not rewritten
    same = ("turns", "sentences", "stance_counts", "emotion_counts", "affect_focus_count")
    assert [getattr(again, k) for k in same] == [getattr(first, k) for k in same]
    assert again.transcripts_skipped == 2 and verify_corpus(out) == []
    # a sidecar edit changes no part but changes the rows: written again
    sidecar.write_text(SIDECAR.replace("peer worker", "peer support worker"))
    run(corpus_in, out, segmenter, sidecar=sidecar)
    assert {r.attributes.get("profession") for r in read_sentences(out)} >= {"peer support worker"}
    # an altered output is repaired, a missing one rewritten
    (out / "sentences.jsonl").write_bytes(b"edited\n")
    (out / "docs.spacy").unlink()
    run(corpus_in, out, segmenter, sidecar=sidecar)
    assert verify_corpus(out) == [] and len(list(read_sentences(out))) == first.sentences


def test_changed_file_is_redone_alone(corpus_in: Path, tmp_path: Path, segmenter: Segmenter) -> None:
    out = tmp_path / "out"
    sidecar = tmp_path / "speakers.csv"
    run(corpus_in, out, segmenter, sidecar=sidecar)
    (corpus_in / "int_b.txt").write_text(INTERVIEW_B + "NURSE: One more thing about the rota.\n")
    tagger = HashTagger()
    summary = run(corpus_in, out, segmenter, tagger, sidecar=sidecar)
    assert (summary.transcripts_processed, summary.transcripts_skipped) == (1, 1)
    assert tagger.sentences_seen == 3  # the nurse's sentences; the interviewer's are not tagged


def test_renamed_unchanged_file_is_not_redone(corpus_in: Path, tmp_path: Path, segmenter: Segmenter) -> None:
    out = tmp_path / "out"
    run(corpus_in, out, segmenter)
    (corpus_in / "int_b.txt").rename(corpus_in / "int_c.txt")
    tagger = HashTagger()
    summary = run(corpus_in, out, segmenter, tagger)
    assert tagger.calls == 0 and summary.transcripts_processed == 0
    assert {r.transcript_id for r in read_sentences(out)} == {"int_a", "int_c"}


def test_a_new_model_redoes_everything(corpus_in: Path, tmp_path: Path, segmenter: Segmenter) -> None:
    out = tmp_path / "out"
    run(corpus_in, out, segmenter)
    summary = run(corpus_in, out, segmenter, HashTagger("hash-tagger@0.0.2"))
    assert summary.transcripts_processed == 2
    manifest = read_manifest(out)
    assert manifest is not None and manifest.model == "hash-tagger@0.0.2"


def test_a_new_markup_revision_redoes_everything(corpus_in: Path, tmp_path: Path, segmenter: Segmenter,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import pipeline.config as config_module

    out = tmp_path / "out"
    run(corpus_in, out, segmenter)
    assert run(corpus_in, out, segmenter).transcripts_processed == 0
    monkeypatch.setattr(config_module, "MARKUP_REVISION", config_module.MARKUP_REVISION + 1)
    assert run(corpus_in, out, segmenter).transcripts_processed == 2


def test_bad_inputs_are_listed_and_the_rest_finishes(corpus_in: Path, tmp_path: Path, segmenter: Segmenter) -> None:
    (corpus_in / "empty.txt").write_bytes(b"")
    (corpus_in / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    (corpus_in / "broken.docx").write_bytes(b"PK\x03\x04garbage")
    (corpus_in / "nocues.vtt").write_text("WEBVTT\n\n")
    (corpus_in / "cp.txt").write_bytes(b"A: caf\xe9 \x81\n")
    out = tmp_path / "out"
    summary = run(corpus_in, out, segmenter)
    assert summary.transcripts_processed == 2
    codes = {r["transcript_id"]: r["code"] for r in summary.rejected}
    assert codes == {"empty": "E101", "image": "E102", "broken": "E107", "nocues": "E101", "cp": "E103"}
    manifest = read_manifest(out)
    assert manifest is not None
    assert {e.transcript_id: e.status for e in manifest.inputs}["image"] == "rejected"
    assert not any(p.name.startswith(".tmp-") for p in out.rglob("*"))


def test_verify_reports_altered_missing_and_unlisted(corpus_in: Path, tmp_path: Path, segmenter: Segmenter) -> None:
    out = tmp_path / "out"
    run(corpus_in, out, segmenter)
    with open(out / "sentences.jsonl", "ab") as handle:
        handle.write(b"\n")
    (out / "docs.spacy").unlink()
    (out / "stray.txt").write_text("x")
    (out / "report").mkdir()  # a compare report written into the corpus folder is the user's
    (out / "report" / "report.html").write_text("x")
    problems = verify_corpus(out)
    assert not any("report" in p for p in problems)
    assert any("sentences.jsonl" in p for p in problems)
    assert any("docs.spacy: missing" in p for p in problems)
    assert any("stray.txt" in p for p in problems)


def test_second_run_on_a_locked_folder_fails_fast(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with corpus_lock(out):
        with pytest.raises(CorpusLockedError) as info, corpus_lock(out):
            pass
        assert str(os.getpid()) in str(info.value)
    with corpus_lock(out):  # released: taken again
        pass


def test_outputs_are_private(corpus_in: Path, tmp_path: Path, segmenter: Segmenter) -> None:
    out = tmp_path / "out"
    run(corpus_in, out, segmenter)
    for path in [out, *out.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        if path.name == "lock":
            continue
        assert mode == (0o700 if path.is_dir() else 0o600), path


def test_same_output_from_another_working_directory(corpus_in: Path, tmp_path: Path, segmenter: Segmenter,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = tmp_path / "o1", tmp_path / "o2"
    run(corpus_in, first, segmenter)
    monkeypatch.chdir(tmp_path)
    run(corpus_in, second, segmenter)
    assert data_files(first)["sentences.jsonl"] == data_files(second)["sentences.jsonl"]
    assert data_files(first)["sentences.parquet"] == data_files(second)["sentences.parquet"]


def test_a_stale_lock_of_a_killed_process_is_taken_over(tmp_path: Path) -> None:
    """Across processes, with a real SIGKILL: the holder's flock dies with it."""
    import signal
    import subprocess
    import sys

    out = tmp_path / "out"
    script = ("import time; from pathlib import Path\nfrom pipeline.lock import corpus_lock\n"
              f"with corpus_lock(Path({str(out)!r})):\n    print('locked', flush=True); time.sleep(120)")
    holder = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                              cwd=Path(__file__).resolve().parent.parent)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(CorpusLockedError) as info, corpus_lock(out):
            pass
        assert f"pid {holder.pid}" in str(info.value)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert holder.returncode == -signal.SIGKILL
    with corpus_lock(out):  # the stale lock file is still there; the lock is not
        assert (out / ".epistance" / "lock").read_text() == str(os.getpid())


def test_plan_marks_repeated_ids_and_steps_return_no_text(corpus_in: Path, tmp_path: Path,
                                                          segmenter: Segmenter) -> None:
    from pipeline.annotate import RunContext, Workers, annotate_unit, begin_run, plan_units

    (corpus_in / "sub").mkdir()
    (corpus_in / "sub" / "int_a.txt").write_text(INTERVIEW_A)
    planned = plan_units([corpus_in])
    assert [(p.transcript_id, p.duplicate) for p in planned] == [("int_a", False), ("int_a", True), ("int_b", False)]
    out = tmp_path / "out"
    begin_run(out)
    source = LoadedTagger(HashTagger())
    context = RunContext(out_dir=out, config=RunConfig(), model_ref=source.model_ref, schema_ref=source.schema.ref)
    workers = Workers(RunConfig(), source, segmenter)
    results = [annotate_unit(p, context, SpeakerTable(), workers) for p in planned]
    assert [r.entry.status for r in results] == ["ok", "rejected", "ok"]
    assert results[0].was_new and results[0].tagged_now > 0
    dumped = json.dumps([r.model_dump(mode="json") for r in results])
    assert "nobody was listening" not in dumped and "peer support" not in dumped
    again = annotate_unit(planned[0], context, SpeakerTable(), workers)
    assert not again.was_new and again.tagged_now == 0 and again.entry == results[0].entry


def test_transient_errors_are_told_apart_from_deterministic_ones() -> None:
    import errno

    from pipeline.annotate import is_transient
    from pipeline.errors import EmptyInputError

    assert is_transient(OSError(errno.EIO, "x")) and is_transient(BlockingIOError(errno.EAGAIN, "x"))
    assert is_transient(TimeoutError())
    assert not is_transient(FileNotFoundError(errno.ENOENT, "x"))
    assert not is_transient(PermissionError(errno.EACCES, "x"))
    assert not is_transient(EmptyInputError("empty"))
    assert not is_transient(ValueError("x"))


def test_the_corpus_is_the_same_whatever_the_lanes(corpus_in: Path, tmp_path: Path, segmenter: Segmenter) -> None:
    from pipeline.config import OrchestrationConfig

    for name in ("c", "d", "e"):  # more transcripts than lanes, some of them in one group
        (corpus_in / f"int_{name}.txt").write_text(INTERVIEW_A.replace("P01", f"P0{name}") * 3)
    outputs = {}
    for lanes in (1, 2, 3):
        tagger = LaneCountingTagger()
        config = RunConfig(orchestration=OrchestrationConfig(max_workers=lanes))
        summary = annotate_corpus([corpus_in], tmp_path / f"out{lanes}", config, LoadedTagger(tagger), SpeakerTable(),
                                  segmenter=segmenter)
        assert summary.transcripts_processed == 5 and summary.sentences_tagged == tagger.sentences_seen
        assert tagger.lanes_asked == ([] if lanes == 1 else [lanes])  # its threads shared among the lanes
        outputs[lanes] = data_files(tmp_path / f"out{lanes}")
    assert outputs[1] == outputs[2] == outputs[3]


def test_a_tagger_whose_labels_depend_on_the_batch_tags_each_transcript_alone(
        corpus_in: Path, tmp_path: Path, segmenter: Segmenter, monkeypatch: pytest.MonkeyPatch) -> None:
    """Like float32 and int8, CallSizeTagger's numbers depend on what a call holds, so each
    transcript gets calls of its own and the corpus is the same whatever the lanes group;
    a batch-invariant tagger still gets the whole group in one call."""
    from pipeline import annotate
    from pipeline.config import OrchestrationConfig

    for name in "cde":
        (corpus_in / f"int_{name}.txt").write_text(INTERVIEW_A.replace("P01", f"P0{name}"))
    config = RunConfig(orchestration=OrchestrationConfig(max_workers=1))
    outputs = {}
    for group in (10_000, 1):  # all five transcripts in one group, or one per group
        monkeypatch.setattr(annotate, "SENTENCES_PER_GROUP", group)
        tagger = CallSizeTagger()
        summary = annotate_corpus([corpus_in], tmp_path / f"out{group}", config, LoadedTagger(tagger),
                                  SpeakerTable(), segmenter=segmenter)
        assert summary.transcripts_processed == len(tagger.call_sizes) == 5
        outputs[group] = data_files(tmp_path / f"out{group}")
    assert outputs[10_000] == outputs[1]

    monkeypatch.setattr(annotate, "SENTENCES_PER_GROUP", 10_000)
    invariant = HashTagger()
    annotate_corpus([corpus_in], tmp_path / "grouped", config, LoadedTagger(invariant), SpeakerTable(),
                    segmenter=segmenter)
    assert invariant.calls < 5  # transcripts shared calls


def test_a_tagger_without_lanes_is_called_one_call_at_a_time(corpus_in: Path, tmp_path: Path,
                                                             segmenter: Segmenter) -> None:
    from pipeline.config import OrchestrationConfig

    for name in "cdefgh":  # small transcripts: the lanes split them into several small groups
        (corpus_in / f"int_{name}.txt").write_text(INTERVIEW_A.replace("P01", f"P0{name}"))
    tagger = OneAtATimeTagger()
    config = RunConfig(orchestration=OrchestrationConfig(max_workers=2))
    summary = annotate_corpus([corpus_in], tmp_path / "out", config, LoadedTagger(tagger), SpeakerTable(),
                              segmenter=segmenter)
    assert summary.transcripts_processed == 8 and tagger.calls >= 2
    assert tagger.most_inside == 1


def test_a_run_failing_while_tagging_leaves_the_corpus_as_it_was(
        corpus_in: Path, tmp_path: Path, segmenter: Segmenter, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline import annotate
    from pipeline.config import OrchestrationConfig

    out = tmp_path / "out"
    run(corpus_in, out, segmenter)
    before = data_files(out)
    monkeypatch.setattr(annotate, "SENTENCES_PER_GROUP", 1)  # one transcript per tagger call
    (corpus_in / "int_a.txt").write_text(INTERVIEW_A + "P01: One more thing.\n")  # tagged and stored
    (corpus_in / "int_b.txt").write_text(INTERVIEW_B + "NURSE: FAIL here.\n")  # its tagging fails
    config = RunConfig(orchestration=OrchestrationConfig(max_workers=1))
    with pytest.raises(RuntimeError, match="injected"):
        annotate_corpus([corpus_in], out, config, LoadedTagger(FailingTagger("FAIL")), SpeakerTable(),
                        segmenter=segmenter)
    assert data_files(out) == before and verify_corpus(out) == []
    assert not any(p.name.startswith(".tmp-") for p in out.rglob("*"))


def test_a_run_keeps_what_it_starts_with_out_of_the_collector_until_it_ends(
        corpus_in: Path, tmp_path: Path, segmenter: Segmenter) -> None:
    import gc

    class FreezeWatchingTagger(HashTagger):
        def __init__(self) -> None:
            super().__init__()
            self.frozen_during: list[int] = []

        def predict(self, texts, contexts=None):  # type: ignore[no-untyped-def]
            self.frozen_during.append(gc.get_freeze_count())
            return super().predict(texts, contexts)

    tagger = FreezeWatchingTagger()
    run(corpus_in, tmp_path / "out", segmenter, tagger)
    assert tagger.frozen_during and all(count > 1000 for count in tagger.frozen_during)  # the run's start
    assert gc.get_freeze_count() == 0  # given back when it ended
