"""annotate_corpus_flow in-process (thread runner, the session's temporary API): same bytes
as the core, incremental reruns, rejected inputs, transient retries, the lock, artifacts,
and no transcript text in Prefect's database."""
from __future__ import annotations

import errno
import json
import subprocess
import time
from pathlib import Path

import pytest

import pipeline.annotate as core
from pipeline.annotate import annotate_corpus
from pipeline.config import RunConfig
from pipeline.corpus_io import read_manifest, read_sentences, verify_corpus
from pipeline.errors import CorpusLockedError, PipelineError
from pipeline.flows import workers
from pipeline.flows.workers import TaggerSpec
from pipeline.ingest.metadata import SpeakerTable, load_speaker_table
from pipeline.segment import Segmenter
from pipeline.tag import LoadedTagger
from tests.fakes import HashTagger, MeetingTagger, OneAtATimeTagger
from tests.flows.helpers import CANARY, CANARY_PHONE, FACTORY, PYTHON, child_env, tree, write_corpus


@pytest.fixture(autouse=True)
def fresh_workers(segmenter: Segmenter) -> None:
    workers.clear()
    workers.use_segmenter(segmenter)  # spaCy loads once for the session


def use_tagger(config: RunConfig, tagger: HashTagger) -> HashTagger:
    workers.use_source(TaggerSpec(factory=FACTORY, model=config.tag.model, batch_size=config.tag.batch_size),
                       LoadedTagger(tagger))
    return tagger


def run_flow(inputs: Path, out: Path, config: RunConfig, api: str, **kwargs):  # type: ignore[no-untyped-def]
    from pipeline.flows.annotate import run_flow as run

    return run([inputs], out, config, api_url=api, tagger_factory=FACTORY, metadata=inputs.parent / "speakers.csv",
               **kwargs)


def test_flow_writes_the_same_bytes_as_the_core(tmp_path: Path, prefect_api: str, flow_config: RunConfig,
                                                 segmenter: Segmenter) -> None:
    inputs = write_corpus(tmp_path / "in")
    direct = annotate_corpus([inputs], tmp_path / "direct", flow_config, LoadedTagger(HashTagger()),
                             load_speaker_table(tmp_path / "speakers.csv"), segmenter=segmenter)
    summary = run_flow(inputs, tmp_path / "flow", flow_config, prefect_api)
    assert summary.transcripts_processed == direct.transcripts_processed == 4
    assert summary.sentences_tagged == direct.sentences_tagged > 0
    assert tree(tmp_path / "flow") == tree(tmp_path / "direct")
    record = json.loads((tmp_path / "flow" / "run.json").read_text())
    assert record["orchestrator"] == "prefect" and record["flow_run_id"]
    assert verify_corpus(tmp_path / "flow") == []


def test_rerun_changed_renamed_and_new_model(tmp_path: Path, prefect_api: str, flow_config: RunConfig) -> None:
    inputs, out = write_corpus(tmp_path / "in"), tmp_path / "out"
    run_flow(inputs, out, flow_config, prefect_api)
    before = tree(out)

    tagger = use_tagger(flow_config, HashTagger())
    summary = run_flow(inputs, out, flow_config, prefect_api)
    assert (summary.sentences_tagged, summary.transcripts_skipped, tagger.calls) == (0, 4, 0)
    assert json.loads((out / "run.json").read_text())["sentences_tagged"] == 0
    assert tree(out) == before

    (inputs / "int_b.txt").write_text((inputs / "int_b.txt").read_text() + "NURSE: One more thing about the rota.\n")
    summary = run_flow(inputs, out, flow_config, prefect_api)
    assert (summary.transcripts_processed, summary.transcripts_skipped) == (1, 3)
    assert tagger.sentences_seen == 3  # the nurse's sentences only

    (inputs / "int_c.txt").rename(inputs / "int_e.txt")
    summary = run_flow(inputs, out, flow_config, prefect_api)
    assert summary.transcripts_processed == 0 and tagger.sentences_seen == 3
    assert "int_e" in {r.transcript_id for r in read_sentences(out)}

    new_model = flow_config.model_copy(update={"tag": flow_config.tag.model_copy(update={"model": "hash-tagger@0.0.2"})})
    summary = run_flow(inputs, out, new_model, prefect_api)
    assert summary.transcripts_processed == 4 and summary.model == "hash-tagger@0.0.2"


def test_a_bad_input_is_recorded_and_the_run_fails_with_the_summary(tmp_path: Path, prefect_api: str,
                                                                     flow_config: RunConfig) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from pipeline.flows.annotate import annotate_corpus_flow

    inputs = write_corpus(tmp_path / "in", bad=True)
    with temporary_settings(updates={PREFECT_API_URL: prefect_api}):
        state = annotate_corpus_flow(inputs=[inputs], out_dir=tmp_path / "out", config=flow_config,
                                     metadata=tmp_path / "speakers.csv", tagger_factory=FACTORY, return_state=True)
    assert state.is_failed() and "1 of 5 inputs rejected (E102)" in (state.message or "")
    summary = state.result(raise_on_failure=False)
    assert summary.transcripts_processed == 4 and summary.rejected[0]["code"] == "E102"
    manifest = read_manifest(tmp_path / "out")
    assert manifest is not None
    assert {e.transcript_id: e.error_code for e in manifest.inputs}["scan"] == "E102"


def test_transient_errors_retry_and_deterministic_ones_do_not(tmp_path: Path, prefect_api: str,
                                                              flow_config: RunConfig,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    inputs = write_corpus(tmp_path / "in")
    calls: dict[str, int] = {}
    real_read_raw = core.read_raw

    def flaky_read_raw(unit, config):  # type: ignore[no-untyped-def]
        calls[unit.transcript_id] = calls.get(unit.transcript_id, 0) + 1
        if unit.transcript_id == "int_a" and calls["int_a"] == 1:
            raise OSError(errno.EIO, "Input/output error")  # goes away when tried again
        if unit.transcript_id == "int_b":
            raise OSError(errno.EAGAIN, "Resource temporarily unavailable")  # never goes away
        if unit.transcript_id == "int_c":
            raise PermissionError(errno.EACCES, "Permission denied")  # deterministic
        return real_read_raw(unit, config)

    monkeypatch.setattr(core, "read_raw", flaky_read_raw)
    summary = run_flow(inputs, tmp_path / "out", flow_config, prefect_api)
    retries = flow_config.orchestration.retries
    assert calls == {"int_a": 2, "int_b": retries + 1, "int_c": 1, "int_d": 1}
    rejected = {r["transcript_id"]: r["error"] for r in summary.rejected}
    assert set(rejected) == {"int_b", "int_c"}
    assert f"errno {errno.EAGAIN}) after {retries + 1} tries" in rejected["int_b"]
    assert f"errno {errno.EACCES})" in rejected["int_c"] and "tries" not in rejected["int_c"]
    assert summary.transcripts_processed == 2


def test_the_direct_path_retries_transient_errors_too(tmp_path: Path, segmenter: Segmenter,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    inputs = write_corpus(tmp_path / "in")
    calls = {"n": 0}
    real_read_raw = core.read_raw

    def flaky_once(unit, config):  # type: ignore[no-untyped-def]
        if unit.transcript_id == "int_a":
            calls["n"] += 1
            if calls["n"] == 1:
                raise OSError(errno.EIO, "Input/output error")
        return real_read_raw(unit, config)

    monkeypatch.setattr(core, "read_raw", flaky_once)
    summary = annotate_corpus([inputs], tmp_path / "out", RunConfig(), LoadedTagger(HashTagger()), SpeakerTable(),
                              segmenter=segmenter, retry_delays=(0.0,))
    assert calls["n"] == 2 and summary.transcripts_failed == 0


def test_thread_tasks_tag_at_once_sharing_the_taggers_threads(tmp_path: Path, prefect_api: str,
                                                               flow_config: RunConfig) -> None:
    inputs = write_corpus(tmp_path / "in")
    tagger = use_tagger(flow_config, MeetingTagger())
    summary = run_flow(inputs, tmp_path / "out", flow_config, prefect_api)
    assert summary.transcripts_processed == 4 and summary.sentences_tagged == tagger.sentences_seen
    assert tagger.lanes_asked == [flow_config.orchestration.max_workers] == [2]
    assert tagger.met  # two tasks were inside the tagger at once


def test_a_tagger_without_lanes_is_called_by_one_task_at_a_time(tmp_path: Path, prefect_api: str,
                                                                flow_config: RunConfig) -> None:
    inputs = write_corpus(tmp_path / "in")
    tagger = use_tagger(flow_config, OneAtATimeTagger())
    summary = run_flow(inputs, tmp_path / "out", flow_config, prefect_api)
    assert summary.transcripts_processed == 4 and tagger.calls == 4
    assert tagger.most_inside == 1


def test_a_locked_folder_fails_fast_with_the_holder(tmp_path: Path, prefect_api: str,
                                                    flow_config: RunConfig) -> None:
    inputs, out = write_corpus(tmp_path / "in"), tmp_path / "out"
    script = ("import time; from pathlib import Path\nfrom pipeline.lock import corpus_lock\n"
              f"with corpus_lock(Path({str(out)!r})):\n    print('locked', flush=True); time.sleep(60)")
    holder = subprocess.Popen([PYTHON, "-c", script], stdout=subprocess.PIPE, text=True, env=child_env())
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        with pytest.raises(CorpusLockedError) as info:
            run_flow(inputs, out, flow_config, prefect_api)
        assert str(holder.pid) in str(info.value) and time.monotonic() - started < 30
    finally:
        holder.kill()
        holder.wait()
    assert run_flow(inputs, out, flow_config, prefect_api).transcripts_processed == 4  # taken over


def test_artifacts_and_prefect_state_hold_no_transcript_text(tmp_path: Path, prefect_api: str,
                                                             flow_config: RunConfig,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
    from prefect.settings import PREFECT_API_URL, temporary_settings

    caplog.set_level("DEBUG")
    inputs = write_corpus(tmp_path / "in", bad=True)
    try:
        run_flow(inputs, tmp_path / "out", flow_config, prefect_api)
    except PipelineError:
        pass
    flow_run_id = json.loads((tmp_path / "out" / "run.json").read_text())["flow_run_id"]
    assert CANARY in (tmp_path / "out" / "sentences.jsonl").read_text()  # the canary is in the corpus...

    import asyncio

    async def artifacts():  # type: ignore[no-untyped-def]
        async with get_client() as client:
            return await client.read_artifacts(artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))

    with temporary_settings(updates={PREFECT_API_URL: prefect_api}):
        found = asyncio.run(artifacts())
    kinds = {a.type: a for a in found}
    assert set(kinds) >= {"progress", "table"}
    assert kinds["progress"].data == 100.0
    table = kinds["table"].data if isinstance(kinds["table"].data, list) else json.loads(kinds["table"].data)
    assert {row["transcript"]: row["status"] for row in table}["scan"] == "rejected"
    # ...and nowhere in Prefect's database, result storage or the logs
    time.sleep(1.0)  # let the API write what the run sent
    for path in Path(flow_config.orchestration.prefect_home).rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert CANARY.encode() not in data and CANARY_PHONE.encode() not in data, path
    assert CANARY not in caplog.text and CANARY_PHONE not in caplog.text


def test_the_flow_builds_its_tagger_with_the_configured_precision(tmp_path: Path, prefect_api: str,
                                                                   flow_config: RunConfig) -> None:
    from pipeline.flows.annotate import run_flow as run
    from tests.flows import helpers

    inputs = write_corpus(tmp_path / "in")
    config = flow_config.model_copy(update={"tag": flow_config.tag.model_copy(update={"precision": "float32"})})
    helpers.PRECISIONS_ASKED.clear()
    run([inputs], tmp_path / "out", config, api_url=prefect_api,
        tagger_factory="tests.flows.helpers:precision_recording_source", metadata=inputs.parent / "speakers.csv")
    assert helpers.PRECISIONS_ASKED and set(helpers.PRECISIONS_ASKED) == {"float32"}
