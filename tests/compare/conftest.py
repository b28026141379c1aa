"""Fixtures for the comparison tests: simulated corpora with known answers and a headless
Chromium driven over the DevTools protocol."""
from __future__ import annotations

import base64
import contextlib
import json
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pipeline.compare.simulate import GroupSpec, SimulationSpec, simulate_corpus

CHROMIUM = Path("/usr/bin/chromium")

EXAMPLE_SPEC = SimulationSpec(
    groups={
        "nurse": GroupSpec(n_speakers=6, stance={"objective": 0.5, "experiential": 0.3, "none": 0.2},
                           emotions={"sadness": 0.15, "fear": 0.12}, affect_focus=0.2),
        "peer worker": GroupSpec(n_speakers=5, stance={"objective": 0.25, "experiential": 0.55, "none": 0.2},
                                 emotions={"sadness": 0.25, "anger": 0.1}, affect_focus=0.35),
        "psychiatrist": GroupSpec(n_speakers=1, stance={"objective": 0.6, "experiential": 0.2, "none": 0.2},
                                  emotions={"fear": 0.05}, affect_focus=0.1),
    },
    seed=3,
)


@pytest.fixture(scope="session")
def example_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three professions (6, 5 and 1 speakers) with real differences in stance."""
    return simulate_corpus(EXAMPLE_SPEC, tmp_path_factory.mktemp("example") / "corpus")


@pytest.fixture(scope="session")
def example_comparison(example_corpus: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from pipeline.compare import compare_corpus

    out = tmp_path_factory.mktemp("example") / "report"
    result = compare_corpus(example_corpus, ["profession"], None, out, confusion=example_corpus / "metrics.json",
                            seed=1, n_boot=300)
    return result, out


class DevTools:
    """A minimal Chrome DevTools protocol client over one page's websocket."""

    def __init__(self, url: str) -> None:
        import websocket  # websocket-client

        self.socket = websocket.create_connection(url, timeout=30, suppress_origin=True)
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        self.socket.settimeout(60)
        self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def wait_for(self, event: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == event for e in self.events):
            if time.monotonic() > deadline:
                raise TimeoutError(event)
            self.socket.settimeout(max(0.1, deadline - time.monotonic()))
            self.events.append(json.loads(self.socket.recv()))

    def drain(self, seconds: float) -> None:
        import websocket

        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.socket.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                self.events.append(json.loads(self.socket.recv()))
            except websocket.WebSocketTimeoutException:
                break

    def close(self) -> None:
        self.socket.close()


def _page_report(html: Path, screenshot: Path, profile: Path) -> dict[str, Any]:
    process = subprocess.Popen(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
         "--remote-debugging-port=0", "--remote-allow-origins=*", "--window-size=1280,1000", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.is_file() and port_file.read_text().strip()):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("chromium did not start its DevTools endpoint")
            time.sleep(0.1)
        port = port_file.read_text().splitlines()[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as response:
            targets = json.load(response)
        page = next(t for t in targets if t.get("type") == "page")
        tools = DevTools(page["webSocketDebuggerUrl"])
        try:
            for domain in ("Runtime", "Log", "Network", "Page"):
                tools.call(f"{domain}.enable")
            tools.events.clear()
            tools.call("Page.navigate", url=html.resolve().as_uri())
            tools.wait_for("Page.loadEventFired")
            tools.drain(0.5)
            images = json.loads(tools.call("Runtime.evaluate", returnByValue=True, expression=(
                "JSON.stringify(Array.from(document.images).map(i => ({complete: i.complete, "
                "width: i.naturalWidth, height: i.naturalHeight, alt: i.alt})))"))["result"]["value"])
            text = tools.call("Runtime.evaluate", returnByValue=True,
                              expression="document.body.innerText")["result"]["value"]
            metrics = tools.call("Page.getLayoutMetrics")
            height = min(int(metrics["cssContentSize"]["height"]) + 1, 12000)
            tools.call("Emulation.setDeviceMetricsOverride", width=1280, height=height, deviceScaleFactor=1,
                       mobile=False)
            shot = tools.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
            screenshot.write_bytes(base64.b64decode(shot["data"]))
            tools.drain(0.2)
            events = tools.events
            with contextlib.suppress(RuntimeError, OSError, ConnectionError):
                tools.call("Browser.close")  # the socket may close before the answer
        finally:
            tools.close()
    finally:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    errors = []
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            errors.append(f"console.{params['type']}: {params.get('args')}")
        elif method == "Runtime.exceptionThrown":
            errors.append(f"exception: {params.get('exceptionDetails', {}).get('text')}")
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            errors.append(f"log: {params['entry'].get('text')}")
        elif method == "Network.loadingFailed":
            errors.append(f"network: {params.get('errorText')}")
    requests = [e["params"]["request"]["url"] for e in events if e.get("method") == "Network.requestWillBeSent"]
    return {"errors": errors, "images": images, "requests": requests, "text": text}


@pytest.fixture()
def open_in_chromium(tmp_path: Path) -> Callable[[Path, str], dict[str, Any]]:
    """open(html, name) -> {errors, images, requests, text}; saves tmp_path/<name>.png."""
    if not CHROMIUM.is_file() or shutil.which(str(CHROMIUM)) is None:
        pytest.skip("/usr/bin/chromium is missing: install the Debian package `chromium` to run the browser check")
    pytest.importorskip("websocket", reason="websocket-client is needed to drive chromium over DevTools")

    def run(html: Path, name: str) -> dict[str, Any]:
        profile = tmp_path / f"profile-{name}"
        profile.mkdir()
        result = _page_report(html, tmp_path / f"{name}.png", profile)
        result["screenshot"] = tmp_path / f"{name}.png"
        return result

    return run
