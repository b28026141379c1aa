"""Prefect's logging for epistance: Prefect's own loggers print to the console and send to
the API, and the root logger is left to the application (Prefect's default logging.yml
replaces the root handlers, which would swallow the CLI's --verbose output).

`configure_prefect` writes LOGGING_YML into Prefect's home and points
PREFECT_LOGGING_SETTINGS_PATH at it. Prefect-free.
"""
from __future__ import annotations

import logging
import sys
from typing import TextIO


class CurrentStderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is at the time of the record (not at configuration),
    so a long-lived process whose stderr is swapped (test runners) never writes to a
    closed stream."""

    def __init__(self, level: int | str = logging.NOTSET) -> None:
        super().__init__()
        self.setLevel(level)

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


LOGGING_YML = """\
# Written by epistance (pipeline/flows/logs.py); Prefect reads it at import.
version: 1
disable_existing_loggers: False

formatters:
  standard:
    (): prefect.logging.formatters.PrefectFormatter
    format: "%(asctime)s.%(msecs)03d | %(levelname)-7s | %(name)s - %(message)s"
    flow_run_fmt: "%(asctime)s.%(msecs)03d | %(levelname)-7s | Flow run %(flow_run_name)r - %(message)s"
    task_run_fmt: "%(asctime)s.%(msecs)03d | %(levelname)-7s | Task run %(task_run_name)r - %(message)s"
    datefmt: "%H:%M:%S"

handlers:
  console:
    level: 0
    (): pipeline.flows.logs.CurrentStderrHandler
    formatter: standard
  api:
    level: 0
    class: prefect.logging.handlers.APILogHandler
  worker_api:
    level: 0
    class: prefect.logging.handlers.WorkerAPILogHandler

loggers:
  prefect:
    level: "${PREFECT_LOGGING_LEVEL}"
    handlers: [console]
    propagate: false
  prefect.extra:
    level: "${PREFECT_LOGGING_LEVEL}"
    handlers: [api]
  prefect.flow_runs:
    level: NOTSET
    handlers: [api]
  prefect.task_runs:
    level: NOTSET
    handlers: [api]
  prefect.workers:
    level: NOTSET
    handlers: [worker_api]
  prefect.server:
    level: "${PREFECT_SERVER_LOGGING_LEVEL}"
  prefect.client:
    level: "${PREFECT_LOGGING_LEVEL}"
  prefect._internal:
    level: "${PREFECT_INTERNAL_LOGGING_LEVEL}"
  uvicorn:
    level: "${PREFECT_SERVER_LOGGING_LEVEL}"
    handlers: [console]
    propagate: false
  fastapi:
    level: "${PREFECT_SERVER_LOGGING_LEVEL}"
    handlers: [console]
    propagate: false
# no root section: the root logger stays as the application set it
"""
