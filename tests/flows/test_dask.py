"""The tagging tasks on Dask (prefect-dask's DaskTaskRunner): a LocalCluster, and an existing
`dask scheduler` + `dask worker` on 127.0.0.1. Results equal the sequential run byte for
byte; each worker process loads the model once; nothing listens beyond loopback."""
from __future__ import annotations

import os
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from pipeline.config import RunConfig
from pipeline.flows import workers
from tests.flows.helpers import COUNTING_FACTORY, FACTORY, LOAD_LOG, REPO, child_env, tree, write_corpus

DASK = str(Path(os.environ.get("VIRTUAL_ENV", REPO / ".venv")) / "bin" / "dask")
if not Path(DASK).exists():
    DASK = str(REPO / ".venv" / "bin" / "dask")


def with_runner(config: RunConfig, **orchestration: object) -> RunConfig:
    return config.model_copy(update={"orchestration": config.orchestration.model_copy(update=orchestration)})


def run(inputs: Path, out: Path, config: RunConfig, api: str, factory: str = FACTORY):  # type: ignore[no-untyped-def]
    from pipeline.flows.annotate import run_flow

    return run_flow([inputs], out, config, api_url=api, metadata=inputs.parent / "speakers.csv",
                    tagger_factory=factory)


def loads_per_process(log: Path) -> Counter[str]:
    return Counter(log.read_text().split()) if log.exists() else Counter()


def listening_addresses(pids: list[int]) -> set[str]:
    addresses = set()
    for pid in pids:
        try:
            processes = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        for process in processes:
            try:
                connections = process.net_connections(kind="inet")
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            addresses |= {c.laddr.ip for c in connections if c.status == psutil.CONN_LISTEN}
    return addresses


@pytest.fixture()
def sequential(tmp_path: Path, prefect_api: str, flow_config: RunConfig, segmenter) -> tuple[Path, dict[str, bytes]]:  # type: ignore[no-untyped-def]
    workers.clear()
    workers.use_segmenter(segmenter)
    inputs = write_corpus(tmp_path / "in")
    run(inputs, tmp_path / "sequential", with_runner(flow_config, max_workers=1), prefect_api)
    return inputs, tree(tmp_path / "sequential")


@pytest.mark.slow
def test_local_cluster_gives_the_sequential_bytes(tmp_path: Path, prefect_api: str, flow_config: RunConfig,
                                                  sequential: tuple[Path, dict[str, bytes]],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    inputs, expected = sequential
    log = tmp_path / "loads.log"
    monkeypatch.setenv(LOAD_LOG, str(log))  # inherited by the LocalCluster's worker processes
    summary = run(inputs, tmp_path / "dask", with_runner(flow_config, task_runner="dask", max_workers=2), prefect_api,
                  COUNTING_FACTORY)
    assert summary.transcripts_processed == 4
    assert tree(tmp_path / "dask") == expected
    loads = loads_per_process(log)
    assert loads and set(loads.values()) == {1} and str(os.getpid()) not in loads  # once per worker process


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture()
def dask_cluster(tmp_path: Path, prefect_api: str) -> Iterator[tuple[str, list[int]]]:
    port = _free_port()
    env = child_env(PREFECT_API_URL=prefect_api, **{LOAD_LOG: str(tmp_path / "loads.log")})
    logs = open(tmp_path / "dask.log", "wb")  # noqa: SIM115
    scheduler = subprocess.Popen([DASK, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                  "--dashboard-address", "127.0.0.1:0"], env=env, cwd=REPO, stdout=logs, stderr=logs,
                                 start_new_session=True)
    worker = subprocess.Popen([DASK, "worker", f"tcp://127.0.0.1:{port}", "--host", "127.0.0.1", "--nworkers", "2",
                               "--nthreads", "1", "--dashboard-address", "127.0.0.1:0"],
                              env=env, cwd=REPO, stdout=logs, stderr=logs, start_new_session=True)
    try:
        from distributed import Client

        deadline = time.monotonic() + 120
        with Client(f"tcp://127.0.0.1:{port}", timeout=60) as client:
            while len(client.scheduler_info(n_workers=-1)["workers"]) < 2:
                assert time.monotonic() < deadline, (tmp_path / "dask.log").read_text()
                time.sleep(0.2)
        yield f"tcp://127.0.0.1:{port}", [scheduler.pid, worker.pid]
    finally:
        for process in (worker, scheduler):
            process.terminate()
        for process in (worker, scheduler):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        logs.close()


@pytest.mark.slow
def test_an_existing_scheduler_gives_the_sequential_bytes(tmp_path: Path, prefect_api: str, flow_config: RunConfig,
                                                          sequential: tuple[Path, dict[str, bytes]],
                                                          dask_cluster: tuple[str, list[int]]) -> None:
    inputs, expected = sequential
    address, pids = dask_cluster
    config = with_runner(flow_config, task_runner="dask", dask_address=address)
    summary = run(inputs, tmp_path / "dask", config, prefect_api, COUNTING_FACTORY)
    assert summary.transcripts_processed == 4
    assert tree(tmp_path / "dask") == expected
    loads = loads_per_process(tmp_path / "loads.log")
    assert loads and set(loads.values()) == {1} and len(loads) <= 2
    assert listening_addresses(pids) <= {"127.0.0.1"}
    # a rerun on the cluster tags nothing
    again = run(inputs, tmp_path / "dask", config, prefect_api, COUNTING_FACTORY)
    assert again.sentences_tagged == 0 and again.transcripts_skipped == 4
