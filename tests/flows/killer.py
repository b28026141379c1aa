"""Child process of the kill/resume tests: annotate a corpus with the core or the flow, and
SIGKILL itself, with the corpus writer it forks, at an injected point (or let the parent
kill its process group after a random delay).

    python tests/flows/killer.py --mode core|flow --inputs IN --out OUT [--metadata CSV]
                                 [--kill predict:N | bytes:N | fsync:N | replace:N | replace:NAME]

Kill points: `predict:N` before the Nth model batch; `bytes:N` in the middle of an output
write, once N bytes have gone through the atomic writer; `fsync:N` before the Nth fsync
(file or folder); `replace:N` before the Nth rename of a finished temp file;
`replace:NAME` before the temp file of NAME (e.g. manifest.json) is renamed. Without
--kill it prints the number of each event as JSON (to choose kill points).
It prints "go" once everything is imported, just before the run starts.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import signal
import sys
from pathlib import Path
from typing import Any, Self

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

class _Counts:
    """The events so far, in memory shared with the corpus writer the run forks
    (pipeline.corpus_writer): its file writes and renames count and kill like the run's."""

    NAMES = ("predict", "bytes", "fsync", "replace")

    def __init__(self) -> None:
        self._values = multiprocessing.get_context("fork").Array("q", len(self.NAMES))

    def __getitem__(self, name: str) -> int:
        return int(self._values[self.NAMES.index(name)])

    def add(self, name: str, value: int = 1) -> None:
        with self._values.get_lock():  # the run's lanes and the writer count at once
            self._values[self.NAMES.index(name)] += value

    def lock(self) -> Any:
        """The (re-entrant) lock that counting takes, shared with the corpus writer."""
        return self._values.get_lock()

    def as_dict(self) -> dict[str, int]:
        return {name: self[name] for name in self.NAMES}


counts = _Counts()
kill_kind, kill_arg = "", ""


def _die() -> None:
    """SIGKILL the run and its corpus writer (the test starts the run in a session of its own)."""
    sys.stdout.flush()
    os.killpg(os.getpgrp(), signal.SIGKILL)


def _reached(kind: str, detail: str = "") -> None:
    if kind != kill_kind:
        return
    if kind == "replace" and not kill_arg.isdigit():
        if Path(detail).name == kill_arg:
            _die()
    elif counts[kind] >= int(kill_arg):
        _die()


class _KillingFile:
    def __init__(self, handle: Any) -> None:
        self._handle = handle

    def write(self, data: bytes) -> int:
        if kill_kind == "bytes" and counts["bytes"] + len(data) >= int(kill_arg):
            cut = max(0, int(kill_arg) - counts["bytes"])
            self._handle.write(data[:cut])  # half the chunk reaches the temp file
            self._handle.flush()
            _die()
        counts.add("bytes", len(data))
        return int(self._handle.write(data))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.close()


class _OsProxy:
    """`os` as pipeline.atomic sees it, with the kill points."""

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    def fdopen(self, fd: int, *args: Any, **kwargs: Any) -> Any:
        return _KillingFile(os.fdopen(fd, *args, **kwargs))

    def fsync(self, fd: int) -> None:
        counts.add("fsync")
        _reached("fsync")
        os.fsync(fd)

    def replace(self, src: Any, dst: Any) -> None:
        # counted and done under one lock, so that before the Nth rename exactly N - 1 are
        # done: when the lanes renamed at once, the kill could land between another lane's
        # count and its rename
        with counts.lock():
            counts.add("replace")
            _reached("replace", str(dst))
            os.replace(src, dst)


def install() -> None:
    import pipeline.atomic
    from tests.fakes import HashTagger

    pipeline.atomic.os = _OsProxy()  # type: ignore[assignment]
    predict = HashTagger.predict

    def counted_predict(self: HashTagger, texts: Any, contexts: Any = None) -> Any:
        counts.add("predict")
        _reached("predict")
        return predict(self, texts, contexts)

    HashTagger.predict = counted_predict  # type: ignore[method-assign]


def main() -> None:
    global kill_kind, kill_arg
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=["core", "flow"], required=True)
    parser.add_argument("--inputs", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--metadata", type=Path)
    parser.add_argument("--prefect-home", type=Path)
    parser.add_argument("--kill", default="")
    args = parser.parse_args()
    kill_kind, _, kill_arg = args.kill.partition(":")

    from pipeline.config import OrchestrationConfig, RunConfig
    from pipeline.ingest.metadata import load_speaker_table
    from pipeline.tag import LoadedTagger
    from tests.fakes import HashTagger

    install()
    if args.mode == "core":
        from pipeline.annotate import annotate_corpus
        from pipeline.segment import Segmenter

        segmenter = Segmenter()
        print("go", flush=True)
        annotate_corpus([args.inputs], args.out, RunConfig(), LoadedTagger(HashTagger()),
                        load_speaker_table(args.metadata), segmenter=segmenter)
    else:
        from pipeline.flows import runtime, workers
        from pipeline.segment import Segmenter

        config = RunConfig(orchestration=OrchestrationConfig(prefect_home=args.prefect_home or Path(".epistance/prefect"),
                                                             retry_delay_s=0.0))
        url = runtime.start_prefect(config.orchestration)
        from pipeline.flows.annotate import run_flow

        workers.use_segmenter(Segmenter())
        runtime.wait_api(url)
        print("go", flush=True)
        run_flow([args.inputs], args.out, config, api_url=url, metadata=args.metadata,
                 tagger_factory="tests.flows.helpers:hash_tagger_source")
    print(json.dumps(counts.as_dict()), flush=True)


if __name__ == "__main__":
    main()
