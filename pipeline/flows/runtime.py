"""Prefect's environment and API for the entry points; imports no prefect itself.

`configure_prefect` sets Prefect's home, result storage and the offline switches in the
environment *before* prefect is imported (Prefect reads them once, at import).
`start_api` returns the API the flows talk to: the configured server, PREFECT_API_URL, or
else a temporary local server that this process starts at once, in the background, and
stops at exit (the embedded default: no server to install or run).

The temporary server is Prefect's own API app (`prefect.server.api.server:create_app`, the
one Prefect's "ephemeral" mode starts, in that mode: no UI, few services). Starting
it ourselves, before the heavy imports, lets it boot while the command loads its modules,
config and inputs; it dies with this process even after a SIGKILL (PR_SET_PDEATHSIG), and
its database lives under the project's `prefect_home` (so its migrations run once).
"""
from __future__ import annotations

import atexit
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.atomic import ensure_private_dir, write_bytes_atomic
from pipeline.config import OrchestrationConfig
from pipeline.errors import ConfigError
from pipeline.offline import enforce_offline

if TYPE_CHECKING:
    from pipeline.annotate import RunSummary
    from pipeline.config import RunConfig
    from pipeline.tag import TaggerSource

logger = logging.getLogger(__name__)
Progress = Callable[[str, int, int], None]
STARTUP_TIMEOUT_S = 180.0  # a first start migrates a new database; a loaded 2-core machine is slow


def prefect_home(orchestration: OrchestrationConfig, base: Path | None = None) -> Path:
    home = orchestration.prefect_home.expanduser()
    return (home if home.is_absolute() else (base or Path.cwd()) / home).resolve()


def prefect_environment(orchestration: OrchestrationConfig, base: Path | None = None) -> dict[str, str]:
    """The variables Prefect must see before it is imported."""
    home = prefect_home(orchestration, base)
    return {
        "PREFECT_HOME": str(home),
        "PREFECT_LOCAL_STORAGE_PATH": str(home / "storage"),
        # results are small summaries kept in memory; "done" is decided by our manifest
        "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "false",
        # no outside connections (also set by pipeline.offline)
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        # a worker process that has no API URL may start Prefect's own temporary server;
        # give it time on a loaded machine (Prefect's default is 20 s)
        "PREFECT_SERVER_EPHEMERAL_ENABLED": "true",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": str(int(STARTUP_TIMEOUT_S)),
        # Prefect's loggers to the console and the API; the root logger left alone
        "PREFECT_LOGGING_SETTINGS_PATH": str(home / "logging.yml"),
    }


def configure_prefect(orchestration: OrchestrationConfig, base: Path | None = None, *, quiet: bool = True) -> Path:
    """Set Prefect's environment for this process and its children; returns Prefect's home.

    Call it before prefect is imported: once it is, Prefect keeps the settings it read
    (then only the API URL is changed, per flow call, by `pipeline.flows.annotate.run_flow`).
    """
    enforce_offline()
    environment = prefect_environment(orchestration, base)
    home = Path(environment["PREFECT_HOME"])
    if "prefect" in sys.modules:
        logger.debug("prefect already imported; keeping its settings")
        return Path(os.environ.get("PREFECT_HOME", home))
    ensure_private_dir(home)
    ignore = home / ".gitignore"  # the project folder is usually a git checkout
    if not ignore.exists():
        ignore.write_text("*\n")
    from pipeline.flows.logs import LOGGING_YML

    settings = home / "logging.yml"
    if not settings.is_file() or settings.read_text() != LOGGING_YML:
        write_bytes_atomic(settings, LOGGING_YML.encode())
    os.environ.update(environment)
    if quiet:  # the console shows warnings only; the API (the UI's run logs) still gets INFO
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
    return home


def start_prefect(orchestration: OrchestrationConfig, base: Path | None = None, *, quiet: bool = True) -> str:
    """`configure_prefect` then `start_api`: call it early; the server boots meanwhile."""
    configure_prefect(orchestration, base, quiet=quiet)
    return start_api(orchestration, base)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# The server process asks the kernel for SIGTERM when its parent dies (PR_SET_PDEATHSIG),
# checks the parent is still there, then runs uvicorn in the same interpreter; no
# preexec_fn (unsafe in a process with threads).
_SERVER_BOOT = (
    "import ctypes, os, runpy, signal, sys\n"
    "parent, guard = int(sys.argv[1]), sys.argv[2] == '1'\n"
    "if guard:\n"
    "    try:\n"
    "        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)\n"
    "    except (OSError, AttributeError):\n"
    "        pass\n"
    "    if os.getppid() != parent:\n"
    "        sys.exit(1)\n"
    "sys.argv = ['uvicorn', *sys.argv[3:]]\n"
    "runpy.run_module('uvicorn', run_name='__main__', alter_sys=True)\n"
)


class LocalApiServer:
    """Prefect's API (no UI, no services) on 127.0.0.1, owned by this process."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._log = home / "api-server.log"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def start(self) -> None:
        env = {**os.environ, "PREFECT_HOME": str(self.home), "PREFECT_UI_ENABLED": "false",
               "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1"}
        env.pop("PREFECT_API_URL", None)
        # the death signal follows the thread that starts the child: only from the main thread
        guard = "1" if threading.current_thread() is threading.main_thread() else "0"
        with open(self._log, "ab") as log:
            os.fchmod(log.fileno(), 0o600)
            self.process = subprocess.Popen(
                [sys.executable, "-c", _SERVER_BOOT, str(os.getpid()), guard,
                 "--factory", "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port", str(self.port),
                 "--log-level", "error", "--lifespan", "on"],
                env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=self.home,
            )
        atexit.register(self.stop)
        logger.debug("temporary Prefect API starting on %s (pid %s)", self.api_url, self.process.pid)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_ready(self, timeout: float = STARTUP_TIMEOUT_S) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise ConfigError(f"the temporary Prefect API server exited (code {self.process and self.process.poll()})",
                                  path=self._log, hint="see this log; or run with --orchestrator none")
            try:
                with urllib.request.urlopen(f"{self.api_url}/health", timeout=2) as response:
                    if response.status == 200:
                        return self.api_url
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.05)
        self.stop()
        raise ConfigError(f"the temporary Prefect API server did not start within {timeout:.0f} s", path=self._log,
                          hint="start one with `prefect server start` and set orchestration.api_url in the run config")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            self.process = None
            return
        drain_prefect()  # what the run still has to send (logs, events) goes out first
        process, self.process = self.process, None
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


_server: LocalApiServer | None = None
_server_lock = threading.Lock()


def start_api(orchestration: OrchestrationConfig, base: Path | None = None) -> str:
    """The API URL to use, starting the temporary server (without waiting) when none is set.

    Order: [orchestration] api_url, then PREFECT_API_URL, then a temporary server, one per
    process (a second call reuses it). Call `wait_api` before the first flow call.
    """
    global _server
    if orchestration.api_url:
        os.environ["PREFECT_API_URL"] = orchestration.api_url
        return orchestration.api_url
    with _server_lock:
        if _server is not None and _server.alive():
            return _server.api_url
        existing = os.environ.get("PREFECT_API_URL")
        if existing and (_server is None or existing != _server.api_url):
            return existing  # the user's server
        home = Path(os.environ.get("PREFECT_HOME") or prefect_home(orchestration, base))
        ensure_private_dir(home)
        _server = LocalApiServer(home)
        _server.start()
        os.environ["PREFECT_API_URL"] = _server.api_url  # children (Dask workers) use it too
        return _server.api_url


def wait_api(url: str, timeout: float = STARTUP_TIMEOUT_S) -> None:
    """Block until the API answers (our temporary server), or fail with a clear message."""
    server = _server
    if server is not None and server.api_url == url:
        server.wait_ready(timeout)
        return
    deadline = time.monotonic() + min(timeout, 30.0)
    while True:
        try:
            with urllib.request.urlopen(f"{url.rstrip('/')}/health", timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            raise ConfigError(f"no Prefect API answers at {url}",
                              hint="start it (`prefect server start --host 127.0.0.1`) or unset api_url / "
                                   "PREFECT_API_URL to use a temporary local server")
        time.sleep(0.2)


def drain_prefect(timeout: float = 5.0) -> None:
    """Send the logs and events Prefect still holds (before its API goes away)."""
    if "prefect" not in sys.modules:
        return
    try:
        from prefect.events.worker import EventsWorker
        from prefect.logging.handlers import APILogWorker

        APILogWorker.drain_all(timeout=timeout)
        EventsWorker.drain_all(timeout=timeout)
    except Exception:
        logger.debug("could not drain Prefect's log and event workers", exc_info=True)


def stop_api() -> None:
    """Stop this process's temporary server, if any (it also stops at exit)."""
    global _server
    with _server_lock:
        if _server is not None:
            if os.environ.get("PREFECT_API_URL") == _server.api_url:
                del os.environ["PREFECT_API_URL"]
            _server.stop()
            _server = None


def _warm_imports() -> None:
    import spacy  # noqa: F401


def run_annotate_flow(inputs: Sequence[Path], out_dir: Path, config: RunConfig, *, metadata: Path | None = None,
                      source: TaggerSource | None = None, tagger_factory: str | None = None,
                      config_path: Path | None = None, progress: Progress | None = None,
                      base: Path | None = None) -> RunSummary:
    """`epistance annotate` through Prefect: configure, start (or find) the API, run the
    flow. `source`: a tagger source already built in this process (used by in-process
    tasks instead of building one from `tagger_factory`). Raises the PipelineError that
    stopped the run; rejected inputs are in the summary."""
    from pipeline.flows.workers import DEFAULT_FACTORY, TaggerSpec, use_source

    url = start_prefect(config.orchestration, base)  # boots while prefect and the flow module import
    factory = tagger_factory or DEFAULT_FACTORY
    if source is not None:
        use_source(TaggerSpec(factory=factory, model=config.tag.model, batch_size=config.tag.batch_size,
                              precision=config.tag.precision), source)
    from pipeline.flows.annotate import run_flow

    _warm_imports()  # while the API boots: the assembly step needs spaCy in any case
    wait_api(url)
    return run_flow(inputs, out_dir, config, api_url=url, metadata=metadata, tagger_factory=factory,
                    config_path=config_path, progress=progress)
