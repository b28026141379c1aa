"""pad_batch: each row's ids left-aligned, padding after them, masks that say which is which."""
from __future__ import annotations

import random

import pytest

from models.tagger import pad_batch


def _reference(rows: list[list[int]], pad_id: int, sentence_lengths: list[int], width: int) -> list[list[list[int]]]:
    ids = [r + [pad_id] * (width - len(r)) for r in rows]
    mask = [[1] * len(r) + [0] * (width - len(r)) for r in rows]
    types = [[int(len_s <= j < len(r)) for j in range(width)] for r, len_s in zip(rows, sentence_lengths)]
    pool = [[int(j < len_s) for j in range(width)] for len_s in sentence_lengths]
    return [ids, mask, types, pool]


@pytest.mark.parametrize("multiple", [1, 8])
def test_rows_of_any_length_match_a_plain_python_padding(multiple: int) -> None:
    rng = random.Random(7)
    for _ in range(50):
        rows = [[rng.randint(1, 30000) for _ in range(rng.randint(1, 60))] for _ in range(rng.randint(1, 12))]
        lengths = [rng.randint(1, len(r)) for r in rows]
        lengths[0] = 1 if len(rows[0]) > 1 else lengths[0]  # at least one row with context when it can
        got = pad_batch(rows, 0, lengths, pad_multiple=multiple)
        width = got[0].shape[1]
        assert width % multiple == 0 and width - max(map(len, rows)) < multiple
        expected = _reference(rows, 0, lengths, width)
        if all(n == len(r) for n, r in zip(lengths, rows)):
            assert got[2] is None and got[3] is None
            expected = expected[:2]
        assert [tensor.tolist() for tensor in got if tensor is not None] == expected


def test_without_sentence_lengths_rows_are_all_sentence() -> None:
    ids, mask, types, pool = pad_batch([[5, 6, 7], [8]], 0, pad_multiple=1)
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0]] and mask.tolist() == [[1, 1, 1], [1, 0, 0]]
    assert types is None and pool is None
