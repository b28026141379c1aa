"""Scheduled runs: `prefect server start` on 127.0.0.1, `epistance serve` registering a cron
deployment, a triggered run annotating the watched folder, a new file processed alone by
the next run, artifacts on the run, and SIGTERM stopping the server process cleanly."""
from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.flows.helpers import FACTORY, REPO, child_env, write_corpus

EPISTANCE = str(REPO / ".venv" / "bin" / "epistance")
PREFECT = str(REPO / ".venv" / "bin" / "prefect")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_http(url: str, timeout: float, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()[-3000:]
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{url} did not answer in {timeout} s\n{log.read_text()[-3000:]}")


def _stop(process: subprocess.Popen[bytes], timeout: float = 30) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise AssertionError("did not stop on SIGTERM") from None
    return process.returncode


@pytest.fixture()
def prefect_server(tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    log = tmp_path / "server.log"
    with open(log, "wb") as handle:
        server = subprocess.Popen([PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                                  env=child_env(PREFECT_HOME=str(tmp_path / "server-home")), cwd=tmp_path,
                                  stdout=handle, stderr=handle, start_new_session=True)
    try:
        _wait_http(f"http://127.0.0.1:{port}/api/health", 180, server, log)
        yield f"http://127.0.0.1:{port}/api"
    finally:
        _stop(server)


@pytest.mark.slow
def test_a_served_deployment_processes_new_files(tmp_path: Path, prefect_server: str) -> None:
    from prefect import get_client
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    watch, out = write_corpus(tmp_path / "watch"), tmp_path / "out"
    log = tmp_path / "serve.log"
    with open(log, "wb") as handle:
        served = subprocess.Popen(
            [EPISTANCE, "serve", "--watch", str(watch), "--out", str(out), "--cron", "0 2 * * *",
             "--metadata", str(tmp_path / "speakers.csv"), "--tagger-factory", FACTORY],
            env=child_env(PREFECT_API_URL=prefect_server), cwd=tmp_path, stdout=handle, stderr=handle,
            start_new_session=True)
    name = "annotate-watch/epistance-annotate"
    try:
        with temporary_settings(updates={PREFECT_API_URL: prefect_server}):
            async def deployment():  # type: ignore[no-untyped-def]
                async with get_client() as client:
                    return await client.read_deployment_by_name(name)

            deadline = time.monotonic() + 120
            while True:
                assert served.poll() is None, log.read_text()[-3000:]
                try:
                    found = asyncio.run(deployment())
                    break
                except Exception:  # noqa: BLE001 - not registered yet
                    assert time.monotonic() < deadline, log.read_text()[-3000:]
                    time.sleep(0.5)
            assert [s.schedule.cron for s in found.schedules] == ["0 2 * * *"]

            first = run_deployment(name, timeout=240)
            assert first.state is not None and first.state.is_completed(), log.read_text()[-3000:]
            record = json.loads((out / "run.json").read_text())
            assert (record["transcripts_processed"], record["orchestrator"]) == (4, "prefect")

            (watch / "int_e.txt").write_text("Interviewer: And now?\nP04: Better. I sleep again.\n")
            second = run_deployment(name, timeout=240)
            assert second.state is not None and second.state.is_completed(), log.read_text()[-3000:]
            record = json.loads((out / "run.json").read_text())
            assert (record["transcripts_processed"], record["transcripts_skipped"]) == (1, 4)
            assert record["sentences_tagged"] > 0

            async def artifacts():  # type: ignore[no-untyped-def]
                from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

                async with get_client() as client:
                    return await client.read_artifacts(artifact_filter=ArtifactFilter(
                        flow_run_id=ArtifactFilterFlowRunId(any_=[record["flow_run_id"]])))

            assert {a.type for a in asyncio.run(artifacts())} >= {"progress", "table"}
    finally:
        code = _stop(served)
    assert code in (0, -signal.SIGTERM, 128 + signal.SIGTERM), log.read_text()[-3000:]
