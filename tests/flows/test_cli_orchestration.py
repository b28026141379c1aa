"""`epistance annotate` through Prefect (the default) and without it, `epistance serve`'s
checks, and the embedded default end to end in a subprocess: offline, its temporary API
server started and stopped with it (also when the command is SIGKILLed)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest
from typer.testing import CliRunner

from pipeline import cli
from pipeline.flows import workers
from pipeline.lock import corpus_lock
from pipeline.tag import LoadedTagger
from tests.fakes import HashTagger
from tests.flows.helpers import CANARY, FACTORY, REPO, child_env, tree, write_corpus
from tests.trust.netguard import install as install_net_guard

runner = CliRunner()
EPISTANCE = str(REPO / ".venv" / "bin" / "epistance")


@pytest.fixture(autouse=True)
def fake_model(monkeypatch: pytest.MonkeyPatch, prefect_api: str, segmenter) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(cli, "_tagger_source", lambda model, batch_size=64, precision="auto": LoadedTagger(HashTagger()))
    workers.clear()
    workers.use_segmenter(segmenter)


def config_file(tmp_path: Path, orchestrator: str = "prefect", extra: str = "") -> Path:
    path = tmp_path / "run.toml"
    home = os.environ["PREFECT_HOME"]  # the session's (tests/flows/conftest.py)
    path.write_text(f'[orchestration]\norchestrator = "{orchestrator}"\nprefect_home = "{home}"\n'
                    f'retry_delay_s = 0.0\n{extra}')
    return path


def annotate(inputs: Path, out: Path, *options: str):  # type: ignore[no-untyped-def]
    return runner.invoke(cli.app, ["annotate", str(inputs), "--out", str(out), "--metadata",
                                   str(inputs.parent / "speakers.csv"), *options])


def test_prefect_and_none_write_the_same_corpus(tmp_path: Path) -> None:
    inputs = write_corpus(tmp_path / "in")
    config = str(config_file(tmp_path))
    flow = annotate(inputs, tmp_path / "flow", "--config", config)
    assert flow.exit_code == 0, flow.output
    assert "4 processed" in flow.output
    direct = annotate(inputs, tmp_path / "direct", "--config", config, "--orchestrator", "none")
    assert direct.exit_code == 0, direct.output
    no_prefect = annotate(inputs, tmp_path / "no-prefect", "--config", config, "--no-prefect")
    assert no_prefect.exit_code == 0, no_prefect.output
    assert tree(tmp_path / "flow") == tree(tmp_path / "direct") == tree(tmp_path / "no-prefect")
    records = {name: json.loads((tmp_path / name / "run.json").read_text()) for name in ("flow", "direct")}
    assert records["flow"]["orchestrator"] == "prefect" and records["direct"]["orchestrator"] == "none"
    rerun = annotate(inputs, tmp_path / "flow", "--config", config)
    assert rerun.exit_code == 0 and "4 unchanged" in rerun.output
    assert json.loads((tmp_path / "flow" / "run.json").read_text())["sentences_tagged"] == 0


def test_config_switch_and_bad_values(tmp_path: Path) -> None:
    inputs = write_corpus(tmp_path / "in")
    none = annotate(inputs, tmp_path / "out", "--config", str(config_file(tmp_path, "none")))
    assert none.exit_code == 0, none.output
    assert json.loads((tmp_path / "out" / "run.json").read_text())["orchestrator"] == "none"
    bad = annotate(inputs, tmp_path / "o2", "--orchestrator", "airflow")
    assert bad.exit_code == 2 and "prefect or none" in bad.output
    unknown = annotate(inputs, tmp_path / "o3", "--config", str(config_file(tmp_path, extra="workers = 3\n")))
    assert unknown.exit_code == 2 and "workers" in unknown.output
    runner_name = annotate(inputs, tmp_path / "o4", "--config",
                           str(config_file(tmp_path, extra='task_runner = "ray"\n')))
    assert runner_name.exit_code == 2 and "task_runner" in runner_name.output


def test_a_locked_folder_is_a_usage_error(tmp_path: Path) -> None:
    inputs = write_corpus(tmp_path / "in")
    with corpus_lock(tmp_path / "out"):
        result = annotate(inputs, tmp_path / "out", "--config", str(config_file(tmp_path)))
    assert result.exit_code == 2 and "E501" in result.output and f"pid {os.getpid()}" in result.output


def test_serve_needs_a_server_and_a_valid_cron(tmp_path: Path, prefect_api: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    inputs = write_corpus(tmp_path / "in")
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    result = runner.invoke(cli.app, ["serve", "--watch", str(inputs), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "prefect server start" in result.output
    monkeypatch.setenv("PREFECT_API_URL", prefect_api)
    result = runner.invoke(cli.app, ["serve", "--watch", str(inputs), "--out", str(tmp_path / "out"),
                                     "--cron", "every night"])
    assert result.exit_code == 2 and "not a cron schedule" in result.output


def _servers_of(pid: int) -> list[psutil.Process]:
    try:
        children = psutil.Process(pid).children(recursive=True)
        return [p for p in children if "prefect.server.api.server:create_app" in p.cmdline()]
    except psutil.NoSuchProcess:
        return []


def test_the_embedded_default_runs_offline_and_cleans_up(tmp_path: Path) -> None:
    """The real command in a fresh process: no server configured, every non-loopback
    connection refused (in the command and in its temporary API server alike)."""
    inputs = write_corpus(tmp_path / "in")
    guard = install_net_guard(tmp_path / "guard")
    net_log = tmp_path / "net.log"
    env = child_env(EPISTANCE_NET_LOG=str(net_log))
    env["PYTHONPATH"] = f"{guard}{os.pathsep}{env['PYTHONPATH']}"
    for name in [n for n in env if n.startswith("PREFECT_")] + ["DO_NOT_TRACK"]:
        env.pop(name)  # as a user's shell would have it
    command = [EPISTANCE, "annotate", str(inputs), "--out", str(tmp_path / "out"), "--metadata",
               str(tmp_path / "speakers.csv"), "--tagger-factory", FACTORY, "--config", str(config_file(tmp_path))]
    done = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 processed" in done.stdout
    assert not net_log.exists(), net_log.read_text()
    assert CANARY not in done.stdout + done.stderr
    record = json.loads((tmp_path / "out" / "run.json").read_text())
    assert record["orchestrator"] == "prefect" and record["sentences_tagged"] > 0

    # SIGKILL the command while its temporary API server runs: the server dies with it
    killed = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not (servers := _servers_of(killed.pid)):
        assert killed.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    _, alive = psutil.wait_procs(servers, timeout=20)
    assert not alive, [p.pid for p in alive]


def test_shipped_configs_load_and_agree_on_recompute_keys() -> None:
    from pipeline.config import OrchestrationConfig, load_run_config

    default = load_run_config()
    assert default.orchestration == OrchestrationConfig()
    dask = load_run_config(REPO / "configs" / "deploy" / "dask.toml")
    assert dask.orchestration.task_runner == "dask" and dask.orchestration.dask_address
    assert dask.recompute_hash() == default.recompute_hash()
    assert dask.model_dump(exclude={"orchestration"}) == default.model_dump(exclude={"orchestration"})
