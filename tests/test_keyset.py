"""Digest sets: membership and newest-number lookups at 8-16 bytes per member."""

from __future__ import annotations

import numpy as np

from deeptrawl.keyset import DigestSet, NewestIndex


def test_digest_set_membership():
    members = [f"s3://bucket/{i:06d}.jpg" for i in range(10_000)]
    keys = DigestSet(iter(members))  # built from a stream
    assert len(keys) == len(members)
    assert all(m in keys for m in members[::97])
    assert not any(f"s3://bucket/{i:06d}.png" in keys for i in range(1000))
    assert "anything" not in DigestSet()
    assert 42 not in keys


def test_digest_set_memory_is_eight_bytes_per_member():
    keys = DigestSet(str(i) for i in range(100_000))
    assert sum(run.nbytes for run in keys._runs) == 8 * 100_000


def test_a_growing_digest_set_stays_exact_with_few_runs():
    keys = DigestSet()
    for start in range(0, 20_000, 200):  # commit-sized additions, some repeated
        keys.add(str(i) for i in range(start, start + 250))
    assert len(keys) == 20_050
    assert all(str(i) in keys for i in range(0, 20_050, 7)) and "20050" not in keys
    assert len(keys._runs) <= 16  # O(log n)


def test_newest_index_keeps_the_highest_number_of_each_string():
    index = NewestIndex([(0, ["a", "b", "c"]), (1, ["b"]), (3, ["c", "d"]), (2, ["c"])])
    assert index.newest(["a", "b", "c", "d", "e"]).tolist() == [0, 1, 3, 3, -1]
    assert NewestIndex([]).newest(["a"]).tolist() == [-1]
    assert NewestIndex([(5, [])]).newest([]).dtype == np.int64
