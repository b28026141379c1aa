"""Prefect for the flow tests: a private, temporary home set before prefect is imported
(else cached results and run history leak between test runs), no outside connections,
and one temporary local API server for the whole session."""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.config import OrchestrationConfig, RunConfig
from pipeline.flows import runtime

os.environ.pop("PREFECT_API_URL", None)  # never a developer's own server
PREFECT_HOME = Path(tempfile.mkdtemp(prefix="epistance-prefect-test-"))


@atexit.register  # registered before prefect is imported, so it runs after prefect's own exit handlers
def _remove_prefect_home() -> None:
    runtime.stop_api()
    shutil.rmtree(PREFECT_HOME, ignore_errors=True)


ORCHESTRATION = OrchestrationConfig(prefect_home=PREFECT_HOME, retry_delay_s=0.0)
runtime.configure_prefect(ORCHESTRATION)
import prefect  # noqa: F401  (settings fixed now: a later configure_prefect keeps them)


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[str]:
    url = runtime.start_api(ORCHESTRATION)
    runtime.wait_api(url)
    yield url
    runtime.stop_api()


@pytest.fixture()
def flow_config() -> RunConfig:
    return RunConfig(orchestration=ORCHESTRATION)
