"""The corpus files written while the lanes still tag: a forked process fed in corpus order.

The direct run (`pipeline.annotate.annotate_corpus`) makes sentences.jsonl,
sentences.parquet and docs.spacy from the transcripts' parts, in transcript order. Done
after tagging, that took 2.1-3.3 s of a 27-30 s PriMock57 run on one core while the other
idled. A thread cannot take it over: its Python holds the GIL that the lanes' short
tagger calls wait for (measured no faster). A process can. It is forked when the run
starts, before the run takes the corpus lock or opens anything (copy-on-write, so nothing
is loaded twice, and it never holds the lock). Once the run has tagged a transcript (so
the corpus changes), it is told what to write and sent each transcript's manifest entry as
soon as every transcript before it in corpus order is done; it reads that part from disk
and appends it to the files. At the end of the run it is told to publish the files, or to
drop them. A run that tags nothing new (a rerun, a sidecar edit) never starts it and
writes the files itself if they changed; so does a run whose writer fails or dies. If the
run dies, the writer stops at its next message and publishes nothing.

Only on Linux, where `fork` is the default; elsewhere the run writes the files after tagging.
"""
from __future__ import annotations

import contextlib
import logging
import multiprocessing
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from pipeline.corpus_io import InputEntry

logger = logging.getLogger(__name__)

#: `write(*args, entries)` writes and publishes the corpus files from the entries' parts, in
#: the order given, and returns what they hold (pipeline.annotate._write_corpus_files)
WriteFiles = Callable[..., dict[str, Any]]

#: seconds the run waits for the writer process to exit once it has answered
EXIT_TIMEOUT_S = 30.0

_PUBLISH, _DROP = "publish", "drop"


def can_fork() -> bool:
    return sys.platform == "linux" and "fork" in multiprocessing.get_all_start_methods()


class _Dropped(Exception):
    """Raised inside the writer to leave its files unpublished (the atomic writers remove them)."""


def _writer_main(write: WriteFiles, connection: Any, stop: Any) -> None:
    """The forked process: the arguments of `write` (or drop), then entries until told to
    publish (the files are published, their counts sent back) or to drop (`_Dropped` leaves
    them unpublished)."""

    def entries() -> Iterator[InputEntry]:
        while True:
            message = connection.recv()  # EOFError when the run is gone: nothing is published
            if message == _PUBLISH:
                return
            if message == _DROP or stop.is_set():
                raise _Dropped
            yield message

    try:
        args = connection.recv()
        if args == _DROP:
            return
        counts = write(*args, entries())
    except _Dropped:
        return
    except BaseException as error:  # noqa: BLE001 - the run writes the files itself instead
        with contextlib.suppress(OSError, ValueError):
            connection.send(("failed", type(error).__name__))  # the type only: no transcript text
        return
    connection.send(("ok", counts))


@contextlib.contextmanager
def corpus_files_writer(write: WriteFiles) -> Iterator[CorpusFilesWriter | None]:
    """A forked writer for the block (None where the platform cannot fork), dropped when the
    block ends unless it has published or dropped before."""
    if not can_fork():
        yield None
        return
    writer = CorpusFilesWriter(write)
    try:
        yield writer
    finally:
        writer.drop()


class CorpusFilesWriter:
    """The corpus files of a run, written by a forked process as transcripts finish.

    `write` runs in that process as `write(*args, entries)` with the `args` given to `begin`.
    Then call `add` with each transcript's result (in any order; one call at a time), then
    `publish` or `drop`.
    """

    def __init__(self, write: WriteFiles) -> None:
        self._order: list[str] = []
        self._args: tuple[Any, ...] = ()
        self._waiting: dict[str, InputEntry | None] = {}
        self._next = 0
        self._started = False
        context = multiprocessing.get_context("fork")
        self._stop = context.Event()
        self._connection, child_end = context.Pipe()
        self._process = context.Process(target=_writer_main, args=(write, child_end, self._stop), daemon=True,
                                        name="epistance-corpus-writer")
        self._process.start()
        child_end.close()
        self._open = True  # until the writer is stopped and joined
        self._alive = True  # while it takes messages

    def begin(self, corpus_order: Sequence[str], *args: Any) -> None:
        """What to write: the transcript ids that can be in the corpus, in corpus order (one
        rejected in the run is skipped when its result comes), and the arguments of `write`
        before the entries (pickled to the writer when it starts)."""
        self._order, self._args = list(corpus_order), args

    def add(self, entry: InputEntry, *, new: bool) -> None:
        """A transcript's result (`new`: tagged in this run). The first new one starts the
        writer; from then on each entry is sent, with those waiting for it, once its turn comes.
        When the writer lags far behind (its pipe full: cached transcripts come faster than
        it writes them) this waits for it, so the run goes at its pace: no slower than
        writing the files after tagging."""
        self._waiting[entry.transcript_id] = entry if entry.status == "ok" else None
        if new and not self._started:
            self._started = True
            self._send(self._args)
        while self._started and self._next < len(self._order) and self._order[self._next] in self._waiting:
            ready = self._waiting.pop(self._order[self._next])
            self._next += 1
            if ready is not None:
                self._send(ready)

    def publish(self) -> dict[str, Any] | None:
        """Have the files published and return what they hold; None when the run must write
        them itself: the writer never started, or failed, or not every transcript came."""
        if not self._started or self._next < len(self._order):
            self.drop()
            return None
        self._send(_PUBLISH)
        reply = self._reply()
        self._exit()
        if reply is not None and reply[0] == "ok":
            return reply[1]  # type: ignore[no-any-return]
        logger.warning("the corpus writer process %s: the corpus files are written after tagging instead",
                       f"failed ({reply[1]})" if reply else "stopped")
        return None

    def drop(self) -> None:
        """Leave the files unpublished and stop the writer (nothing to do once it has stopped)."""
        if not self._open:
            return
        self._stop.set()  # before the message: entries already sent are not written first
        self._send(_DROP)
        self._reply()
        self._exit()

    def _send(self, message: object) -> None:
        if not self._alive:
            return
        try:
            self._connection.send(message)
        except (OSError, ValueError):  # the writer is gone: publish() says so
            self._alive = False

    def _reply(self) -> Any:
        """The writer's answer, however long the files it still has to write take; None if
        it exits without one (one it sent before exiting is still read)."""
        if not self._open:
            return None
        try:
            while not self._connection.poll(1.0):
                if not self._process.is_alive():
                    return self._connection.recv() if self._connection.poll(0) else None
            return self._connection.recv()
        except (EOFError, OSError):
            return None

    def _exit(self) -> None:
        self._open = self._alive = False
        self._connection.close()
        self._process.join(EXIT_TIMEOUT_S)
        if self._process.is_alive():
            self._process.terminate()  # its temp files are removed by the next run (begin_run)
            self._process.join()
