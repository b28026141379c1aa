"""Lanes: parallel workers that each take items one at a time and finish them in groups.

The direct corpus run (`pipeline.annotate.annotate_corpus`) uses them so that the tagger
sees many transcripts' sentences per call (length-sorted batches pad less, and fewer
calls cost less) while two lanes keep both cores of a laptop busy: one lane reads and
segments its next transcripts while the other tags its group. The runner knows nothing
of transcripts: `prepare` turns an item into either a finished result (a cached or
rejected transcript) or `Ready` work of some size (sentences to tag); a lane gathers
Ready work until its group reaches `group_size`, then `finish` turns the group into
results. Towards the end of the items, groups shrink to a lane's share of the work
expected to be left (from the mean size seen so far), so that no lane is left with a
full group while the others have nothing to do.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

Item = TypeVar("Item")
Work = TypeVar("Work")
Result = TypeVar("Result")


@dataclass(frozen=True)
class Ready(Generic[Work]):
    """Prepared work waiting for its group, and how much of the group it fills."""

    work: Work
    size: int


def group_limit(group_size: int, items_left: int, mean_size: float | None, lanes: int) -> float:
    """How much work a lane gathers before finishing it: `group_size`, or near the end its
    share of the work expected to be left (`items_left` of `mean_size` each), at least 1."""
    if mean_size is None:
        return group_size
    return min(group_size, max(1.0, items_left * mean_size / lanes))


def run_lanes(
    items: Sequence[Item],
    lanes: int,
    group_size: int,
    prepare: Callable[[Item], Result | Ready[Work]],
    finish: Callable[[list[Work]], list[Result]],
    on_result: Callable[[int, Result], None] | None = None,
) -> list[Result]:
    """Results for `items`, in their order. `on_result(index, result)` is called (under a
    lock) as each result is known. The first exception in any lane stops every lane from
    taking more items and is raised here once all have stopped."""
    results: dict[int, Result] = {}
    lanes = max(1, lanes)
    next_index = iter(range(len(items)))
    lock = threading.Lock()
    taken, seen, seen_size = 0, 0, 0  # items handed out; Ready work seen, and its total size
    stop = threading.Event()
    errors: list[BaseException] = []

    def record(index: int, result: Result) -> None:
        with lock:
            results[index] = result
            if on_result is not None:
                on_result(index, result)

    def take() -> int | None:
        nonlocal taken
        with lock:
            index = None if stop.is_set() else next(next_index, None)
            taken += index is not None
            return index

    def limit() -> float:
        with lock:
            return group_limit(group_size, len(items) - taken, seen_size / seen if seen else None, lanes)

    def seen_ready(size: int) -> None:
        nonlocal seen, seen_size
        with lock:
            seen, seen_size = seen + 1, seen_size + size

    def lane() -> None:
        try:
            while not stop.is_set():
                group: list[tuple[int, Work]] = []
                filled = 0
                while filled < limit() and (index := take()) is not None:
                    prepared = prepare(items[index])
                    if isinstance(prepared, Ready):
                        seen_ready(prepared.size)
                        group.append((index, prepared.work))
                        filled += prepared.size
                    else:
                        record(index, prepared)
                if not group:
                    return
                for (index, _), result in zip(group, finish([work for _, work in group]), strict=True):
                    record(index, result)
        except BaseException as error:  # noqa: BLE001 - handed to the caller below
            with lock:
                errors.append(error)
            stop.set()

    threads = [threading.Thread(target=lane, name=f"epistance-lane-{n}", daemon=True) for n in range(lanes)]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            thread.join()
    except BaseException:  # Ctrl-C: lanes finish the group in hand and take no more
        stop.set()
        raise
    if errors:
        raise errors[0]
    return [results[index] for index in range(len(items))]
