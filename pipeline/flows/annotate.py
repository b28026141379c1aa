"""annotate_corpus_flow: the corpus run as a Prefect flow, one task per transcript.

The flow holds the corpus lock, plans the run (no model), submits one task per transcript
to the task runner (threads, or Dask workers), then assembles the corpus files from the
cached parts. With threads, the tasks tag at once, sharing the tagger's threads
(`tasks_tag_at_once`). What is done is decided by the core's recompute keys and parts, never by
Prefect's cache (NO_CACHE everywhere; results are not persisted). Tasks take and return
paths, ids, hashes and small summaries; transcript text never crosses a task boundary.

Import this module only after `pipeline.flows.runtime.configure_prefect` (the CLI and
`run_annotate_flow` do): Prefect reads its settings at import.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast
from uuid import UUID

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_progress_artifact, create_table_artifact, update_progress_artifact
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture, as_completed
from prefect.runtime import flow_run as current_flow_run
from prefect.states import Failed, State
from prefect.task_runners import ThreadPoolTaskRunner

from pipeline.annotate import (
    PlannedUnit,
    RunContext,
    RunSummary,
    UnitResult,
    annotate_unit,
    assemble_corpus,
    begin_run,
    is_transient,
    long_lived_objects_frozen,
    plan_units,
    read_error,
    rejected_result,
)
from pipeline.atomic import ensure_private_dir
from pipeline.config import OrchestrationConfig, RunConfig, load_run_config
from pipeline.errors import PipelineError
from pipeline.flows.workers import DEFAULT_FACTORY, TaggerSpec, source_for, workers_for
from pipeline.ingest.metadata import SpeakerTable, load_speaker_table
from pipeline.lock import corpus_lock
from pipeline.pseudonymise import begin_pseudonymisation

logger = logging.getLogger(__name__)
Progress = Callable[[str, int, int], None]
_progress_hooks: list[Progress] = []  # in-process listeners (the CLI's progress bar)


@contextmanager
def progress_hook(callback: Progress | None) -> Iterator[None]:
    """Call `callback(transcript_id, done, total)` as this process's flows finish transcripts."""
    if callback is None:
        yield
        return
    _progress_hooks.append(callback)
    try:
        yield
    finally:
        _progress_hooks.remove(callback)


def _retry_if_transient(task: Any, task_run: Any, state: State[Any]) -> bool:
    """Retry a task only for I/O errors that may go away; bad inputs fail the same way twice."""
    error = state.data if isinstance(state.data, BaseException) else state.result(raise_on_failure=False)
    return isinstance(error, BaseException) and is_transient(error)


@task(name="plan-corpus", cache_policy=NO_CACHE, persist_result=False)
def plan_corpus(inputs: list[Path]) -> list[PlannedUnit]:
    """Discover the transcripts (file listings only)."""
    return plan_units(inputs)


@task(name="annotate-transcript", task_run_name="annotate-{planned.unit.transcript_id}", cache_policy=NO_CACHE,
      persist_result=False, retry_condition_fn=_retry_if_transient)
def annotate_transcript(planned: PlannedUnit, context: RunContext, speakers: SpeakerTable,
                        tagger: TaggerSpec) -> UnitResult:
    """One transcript: reuse its cached part, or segment, tag and write it. A transient
    I/O error is raised (and retried); a bad input returns a rejected result."""
    workers = workers_for(context.config, tagger, context.model_ref)
    return annotate_unit(planned, context, speakers, workers, raise_transient=True)


@task(name="assemble-corpus", cache_policy=NO_CACHE, persist_result=False)
def assemble(context: RunContext, results: list[UnitResult], speakers: SpeakerTable, started: datetime,
             flow_run_id: str | None) -> RunSummary:
    """Corpus files, manifest and run.json from the parts."""
    return assemble_corpus(context, results, speakers, started, orchestrator="prefect", flow_run_id=flow_run_id)


def tasks_tag_at_once(context: RunContext, spec: TaggerSpec) -> AbstractContextManager[None]:
    """With the thread runner, this process's `max_workers` tasks tag at once, each on its
    share of the cores, when the tagger can share its threads (`Workers.in_lanes`): two
    callers on one core each outpace one caller on two, and one task segments while
    another tags. Otherwise (a tagger without `lanes`) the tasks take turns on the tagger.
    Dask tasks run in worker processes, one at a time each: nothing to share there."""
    orchestration = context.config.orchestration
    if orchestration.task_runner != "thread":
        return nullcontext()
    return workers_for(context.config, spec, context.model_ref).in_lanes(orchestration.max_workers)


def _collect(planned: Sequence[PlannedUnit], context: RunContext, speakers: SpeakerTable, spec: TaggerSpec,
             orchestration: OrchestrationConfig) -> list[UnitResult]:
    run_logger = get_run_logger()
    submit = annotate_transcript.with_options(
        retries=orchestration.retries,
        retry_delay_seconds=[orchestration.retry_delay_s * 2 ** i for i in range(orchestration.retries)] or 0)
    total = len(planned)
    progress_id = cast(UUID, create_progress_artifact(0.0, key="annotate-progress",
                                                       description=f"0 of {total} transcripts"))
    futures: dict[PrefectFuture[UnitResult], int] = {
        submit.submit(item, context, speakers, spec): index for index, item in enumerate(planned)}
    results: dict[int, UnitResult] = {}
    unexpected: list[BaseException] = []
    last_update = time.monotonic()
    for done, future in enumerate(as_completed(list(futures)), start=1):
        index = futures[future]
        unit = planned[index].unit
        value = future.result(raise_on_failure=False)
        if isinstance(value, UnitResult):
            results[index] = value
        elif isinstance(value, PipelineError):  # e.g. a worker that resolves another model
            results[index] = rejected_result(unit, "", value)
        elif isinstance(value, OSError) and is_transient(value):
            results[index] = rejected_result(unit, "", read_error(unit, value, orchestration.retries + 1))
        else:
            unexpected.append(value if isinstance(value, BaseException) else RuntimeError(repr(value)))
        if index in results and results[index].entry.status == "rejected":
            run_logger.info("rejected %s: %s", unit.transcript_id, results[index].entry.error_code)
        for hook in _progress_hooks:
            hook(unit.transcript_id, done, total)
        if done == total or time.monotonic() - last_update > 1.0:
            update_progress_artifact(progress_id, 100.0 * done / total, description=f"{done} of {total} transcripts")
            last_update = time.monotonic()
    if total == 0:
        update_progress_artifact(progress_id, 100.0, description="no transcripts found")
    if unexpected:
        raise unexpected[0]
    return [results[index] for index in range(total)]


def _summary_artifact(summary: RunSummary, results: Sequence[UnitResult], out_dir: Path) -> None:
    rows = [{"transcript": r.entry.transcript_id, "status": r.entry.status,
             "done": "tagged now" if r.was_new else ("cached" if r.entry.status == "ok" else "-"),
             "turns": r.entry.turns or 0, "sentences": r.entry.sentences or 0, "tagged_now": r.tagged_now,
             "error_code": r.entry.error_code or ""} for r in results]
    description = (f"{out_dir}: {summary.transcripts_total} transcripts ({summary.transcripts_processed} processed, "
                   f"{summary.transcripts_skipped} unchanged, {summary.transcripts_failed} rejected); "
                   f"{summary.sentences} sentences, {summary.sentences_tagged} tagged now; model {summary.model}")
    create_table_artifact(rows, key="annotate-summary", description=description)


@flow(name="annotate-corpus", persist_result=False, log_prints=False)
def annotate_corpus_flow(inputs: list[Path], out_dir: Path, config: RunConfig | None = None,
                         config_path: Path | None = None, metadata: Path | None = None, model: str | None = None,
                         tagger_factory: str = DEFAULT_FACTORY) -> RunSummary:
    """Annotate the transcripts under `inputs` into the corpus folder `out_dir`.

    `config` (else the TOML at `config_path`, else configs/run/default.toml); `metadata`:
    the speaker sidecar; `model`: overrides [tag] model; `tagger_factory`: "module:callable"
    giving a TaggerSource (default: the model registry). The run ends Failed, with the
    summary as its result, when any input was rejected.
    """
    run_logger = get_run_logger()
    started = datetime.now(UTC)
    try:
        config = config or load_run_config(config_path)
        spec = TaggerSpec(factory=tagger_factory, model=model or config.tag.model, batch_size=config.tag.batch_size,
                          precision=config.tag.precision)
        speakers = load_speaker_table(metadata)
        source = source_for(spec)  # resolves the reference here: no weights loaded
        ensure_private_dir(out_dir)
        with corpus_lock(out_dir):
            begin_run(out_dir)
            pseudonym, speakers = begin_pseudonymisation(config.pseudonymise, out_dir, speakers)
            context = RunContext(out_dir=out_dir, config=config, model_ref=source.model_ref,
                                 schema_ref=source.schema.ref, pseudonym=pseudonym)
            planned = plan_corpus(inputs)
            with long_lived_objects_frozen(), tasks_tag_at_once(context, spec):
                results = _collect(planned, context, speakers, spec, config.orchestration)
            summary = assemble(context, results, speakers, started, str(current_flow_run.id or "") or None)
    except PipelineError as error:
        run_logger.error("%s", error.render())
        return Failed(message=error.render(), data=error)  # type: ignore[return-value]
    _summary_artifact(summary, results, out_dir)
    run_logger.info("%d transcripts: %d processed, %d unchanged, %d rejected; %d sentences tagged",
                    summary.transcripts_total, summary.transcripts_processed, summary.transcripts_skipped,
                    summary.transcripts_failed, summary.sentences_tagged)
    if summary.transcripts_failed:
        codes = ", ".join(sorted({r["code"] for r in summary.rejected}))
        return Failed(message=f"{summary.transcripts_failed} of {summary.transcripts_total} inputs rejected ({codes})",
                      data=summary)  # type: ignore[return-value]
    return summary


def task_runner_for(orchestration: OrchestrationConfig) -> Any:
    """The task runner the config asks for: a bounded thread pool, or Dask."""
    if orchestration.task_runner == "dask":
        from prefect_dask import DaskTaskRunner

        if orchestration.dask_address:
            return DaskTaskRunner(address=orchestration.dask_address)
        return DaskTaskRunner(cluster_class="distributed.LocalCluster", cluster_kwargs={
            "n_workers": orchestration.max_workers, "threads_per_worker": 1, "processes": True,
            "host": "127.0.0.1", "dashboard_address": None})
    return ThreadPoolTaskRunner(max_workers=orchestration.max_workers)


def run_flow(inputs: Sequence[Path], out_dir: Path, config: RunConfig, *, api_url: str,
             metadata: Path | None = None, tagger_factory: str = DEFAULT_FACTORY, config_path: Path | None = None,
             progress: Progress | None = None) -> RunSummary:
    """Run the flow against `api_url` with the config's task runner; the summary, or the
    PipelineError that stopped the run, raised."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    configured = annotate_corpus_flow.with_options(task_runner=task_runner_for(config.orchestration))
    with temporary_settings(updates={PREFECT_API_URL: api_url}), progress_hook(progress):
        state = configured(inputs=[Path(p) for p in inputs], out_dir=Path(out_dir), config=config,
                           config_path=config_path, metadata=metadata, tagger_factory=tagger_factory,
                           return_state=True)
    value = state.result(raise_on_failure=False)
    if isinstance(value, RunSummary):
        return value
    if isinstance(value, BaseException):
        raise value
    raise RuntimeError(f"the flow ended {state.type.value} without a summary: {state.message}")
