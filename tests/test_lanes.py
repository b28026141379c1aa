"""pipeline.lanes: parallel lanes that finish prepared work in groups."""
from __future__ import annotations

import random
import threading
import time

import pytest

from pipeline.lanes import Ready, group_limit, run_lanes


def test_results_come_back_in_item_order_each_item_once() -> None:
    prepared: list[int] = []
    reported: list[int] = []
    rng = random.Random(7)
    delays = [rng.uniform(0, 0.002) for _ in range(60)]

    def prepare(item: int) -> str | Ready[int]:
        prepared.append(item)
        time.sleep(delays[item])
        return f"cached {item}" if item % 5 == 0 else Ready(item, size=3)

    def finish(group: list[int]) -> list[str]:
        time.sleep(0.001)
        return [f"done {item}" for item in group]

    results = run_lanes(list(range(60)), 3, 10, prepare, finish, lambda index, _: reported.append(index))
    assert results == [f"cached {i}" if i % 5 == 0 else f"done {i}" for i in range(60)]
    assert sorted(prepared) == list(range(60)) and sorted(reported) == list(range(60))


def test_ready_work_is_finished_in_groups_of_at_most_the_group_size() -> None:
    groups: list[list[int]] = []

    def finish(group: list[int]) -> list[int]:
        groups.append(group)
        return group

    assert run_lanes(list(range(50)), 2, 4, lambda item: Ready(item, size=1), finish) == list(range(50))
    assert all(1 <= len(group) <= 4 for group in groups)
    assert sorted(item for group in groups for item in group) == list(range(50))


def test_the_lanes_work_at_the_same_time() -> None:
    both_finishing = threading.Barrier(2, timeout=10)

    def finish(group: list[int]) -> list[int]:
        both_finishing.wait()  # times out (BrokenBarrierError) unless two lanes finish at once
        return group

    assert run_lanes([1, 2], 2, 1, lambda item: Ready(item, size=1), finish) == [1, 2]


def test_an_error_stops_every_lane_and_is_raised() -> None:
    prepared: list[int] = []

    def prepare(item: int) -> Ready[int]:
        prepared.append(item)
        if item == 3:
            raise OSError("disk gone")
        return Ready(item, size=1)

    with pytest.raises(OSError, match="disk gone"):
        run_lanes(list(range(1000)), 2, 2, prepare, lambda group: group)
    assert len(prepared) < 1000  # nothing new was taken once the error was seen


def test_groups_shrink_to_a_lanes_share_of_the_work_left() -> None:
    assert group_limit(768, items_left=100, mean_size=200.0, lanes=2) == 768  # plenty left
    assert group_limit(768, items_left=4, mean_size=200.0, lanes=2) == 400  # two lanes share 800
    assert group_limit(768, items_left=0, mean_size=200.0, lanes=2) == 1  # the last one takes what it holds
    assert group_limit(768, items_left=4, mean_size=None, lanes=2) == 768  # nothing seen yet
