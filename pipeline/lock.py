"""One run per output folder: an exclusive flock on OUT/.epistance/lock.

The kernel drops a flock when its process dies, so a lock left by a killed run is taken
over by the next run without any staleness guessing.
"""
from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline.atomic import FILE_MODE, ensure_private_dir
from pipeline.errors import CorpusLockedError


@contextmanager
def corpus_lock(out_dir: Path) -> Iterator[None]:
    state = ensure_private_dir(out_dir / ".epistance")
    fd = os.open(state / "lock", os.O_RDWR | os.O_CREAT, FILE_MODE)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "another process"
            raise CorpusLockedError(f"another epistance run (pid {holder}) is writing this folder", path=out_dir,
                                    hint="wait for it to finish, or use another --out folder") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)
