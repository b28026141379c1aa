"""The one helper that writes final paths: temp file in the same folder, fsync, rename,
then fsync the folder. A killed run leaves either the old file or the new one, never half.

Files are created readable by the owner only (0600) and folders 0700: transcripts and
everything derived from them are sensitive research data.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

FILE_MODE = 0o600
DIR_MODE = 0o700
TEMP_PREFIX = ".tmp-"


def ensure_private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    os.chmod(path, DIR_MODE)
    return path


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_file(path: Path, *, private_parent: bool = True) -> Iterator[BinaryIO]:
    """A handle on a temp file beside `path`, published under `path` when the block ends
    without an exception (and removed when it raises).

    The file is 0600. With `private_parent` (the default: output folders) its folder is
    made 0700; without it a folder that exists keeps its mode (a file kept beside the
    output folder, such as the pseudonym key, must not change the user's own folder).
    """
    if private_parent:
        ensure_private_dir(path.parent)
    else:
        path.parent.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    fd, temp_name = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=path.parent)
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, path)
        _fsync_dir(path.parent)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def write_atomic(path: Path, write: Callable[[BinaryIO], object], *, private_parent: bool = True) -> None:
    """Call `write(handle)` on a temp file beside `path`, then publish it under `path`
    (`atomic_file`)."""
    with atomic_file(path, private_parent=private_parent) as handle:
        write(handle)


def write_bytes_atomic(path: Path, data: bytes, *, private_parent: bool = True) -> None:
    write_atomic(path, lambda handle: handle.write(data), private_parent=private_parent)


def remove_stale_temp_files(folder: Path) -> int:
    """Delete temp files a killed run left behind; returns how many."""
    removed = 0
    if folder.is_dir():
        for leftover in folder.rglob(f"{TEMP_PREFIX}*"):
            leftover.unlink(missing_ok=True)
            removed += 1
    return removed
