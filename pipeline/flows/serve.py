"""Scheduled runs: a Prefect deployment that annotates new or changed transcripts.

`epistance serve --watch DIR --out OUT --cron "0 2 * * *"` serves `annotate_watch_flow` on
a cron schedule against a running Prefect server (schedules fire only with a server's
scheduler: `prefect server start --host 127.0.0.1`). Each run annotates DIR into OUT
incrementally: the corpus manifest makes a run on unchanged data tag nothing. The run
reads its config file when it starts, so edits (task runner included) apply to the next
run. See docs/orchestration.md.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from prefect import flow, serve
from prefect.deployments.runner import RunnerDeployment
from prefect.states import Failed

from pipeline.config import load_run_config
from pipeline.errors import ConfigError, PipelineError
from pipeline.flows.annotate import annotate_corpus_flow, task_runner_for
from pipeline.flows.workers import DEFAULT_FACTORY

DEPLOYMENT_NAME = "epistance-annotate"


@flow(name="annotate-watch", persist_result=False, log_prints=False)
def annotate_watch_flow(watch: Path, out_dir: Path, config_path: Path | None = None, metadata: Path | None = None,
                        model: str | None = None, tagger_factory: str = DEFAULT_FACTORY) -> Any:
    """Annotate the transcripts in `watch` into `out_dir` with the task runner that the
    config names (a subflow run of annotate-corpus holds the tasks and artifacts)."""
    try:
        config = load_run_config(config_path)
    except PipelineError as error:
        return Failed(message=error.render(), data=error)
    annotate = annotate_corpus_flow.with_options(task_runner=task_runner_for(config.orchestration))
    return annotate(inputs=[watch], out_dir=out_dir, config=config, metadata=metadata, model=model,
                    tagger_factory=tagger_factory, return_state=True)


def check_cron(cron: str) -> None:
    from prefect.client.schemas.schedules import CronSchedule

    try:
        CronSchedule(cron=cron)
    except ValueError:
        raise ConfigError(f"{cron!r} is not a cron schedule", hint='five fields, e.g. "0 2 * * *" (02:00 daily)') from None


def serve_annotate(watch: Path, out_dir: Path, cron: str, *, config_path: Path | None = None,
                   metadata: Path | None = None, model: str | None = None, tagger_factory: str | None = None,
                   name: str = DEPLOYMENT_NAME) -> None:
    """Register the deployment and serve it until SIGTERM / Ctrl-C (blocks)."""
    check_cron(cron)
    absolute = lambda path: str(Path(path).resolve()) if path is not None else None
    deployment = annotate_watch_flow.to_deployment(
        name=name, cron=cron, tags=["epistance"],
        description=f"Annotate new or changed transcripts in {absolute(watch)} into {absolute(out_dir)}.",
        parameters={"watch": absolute(watch), "out_dir": absolute(out_dir), "config_path": absolute(config_path),
                    "metadata": absolute(metadata), "model": model,
                    "tagger_factory": tagger_factory or DEFAULT_FACTORY},
    )
    serve(cast(RunnerDeployment, deployment), print_starting_message=True)
