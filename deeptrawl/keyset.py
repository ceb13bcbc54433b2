"""A set of many strings at 8 bytes each: their sorted 64-bit digests.

Jobs must remember every object they have already handled (row keys committed by
earlier runs, listing fingerprints of earlier manifests). As a Python ``set`` of strings
that costs about 130 bytes per object, so a worker's memory would grow with the archive
(bench/RESULTS.md measured it). A sorted array of 64-bit BLAKE2b digests costs 8.

The price is a false "already seen" when two different strings share a digest: for one
lookup against a set of ``n`` members the chance is ``n / 2**64``, below 10**-12 at ten
million members.
"""

from __future__ import annotations

import hashlib
from typing import Iterable

import numpy as np


def digest(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


def digests(texts: Iterable[str]) -> np.ndarray:
    return np.fromiter((digest(t) for t in texts), dtype=np.uint64)


class DigestSet:
    """Membership of strings by digest. Built from any iterable (streamed); grows with
    ``add``.

    Members live in sorted runs whose sizes at least halve from one run to the next,
    merged like the carries of a binary counter: O(log n) runs to search, and each
    member is copied O(log n) times over all the additions.
    """

    def __init__(self, members: Iterable[str] = ()) -> None:
        self._runs: list[np.ndarray] = []
        self.add(members)

    def add(self, members: Iterable[str]) -> None:
        run = np.unique(digests(members))
        run = run[~self._contains(run)]
        if not len(run):
            return
        self._runs.append(run)
        while len(self._runs) > 1 and len(self._runs[-2]) <= 2 * len(self._runs[-1]):
            newer, older = self._runs.pop(), self._runs.pop()
            self._runs.append(np.union1d(older, newer))

    def __len__(self) -> int:
        return sum(len(r) for r in self._runs)

    def __contains__(self, text: object) -> bool:
        return isinstance(text, str) and bool(self._contains(np.array([digest(text)], np.uint64))[0])

    def _contains(self, d: np.ndarray) -> np.ndarray:
        found = np.zeros(len(d), bool)
        for run in self._runs:
            pos = np.minimum(np.searchsorted(run, d), len(run) - 1)
            found |= run[pos] == d
        return found


class NewestIndex:
    """For each string, the highest number it was added with (e.g. the newest manifest
    that lists an object), at 16 bytes per distinct string."""

    def __init__(self, batches: Iterable[tuple[int, Iterable[str]]]) -> None:
        keys, numbers = [np.empty(0, np.uint64)], [np.empty(0, np.int64)]
        for number, texts in batches:
            d = digests(texts)
            keys.append(d)
            numbers.append(np.full(len(d), number, np.int64))
        k, n = np.concatenate(keys), np.concatenate(numbers)
        order = np.lexsort((n, k))  # by digest, then number: each digest's last entry is its highest
        k, n = k[order], n[order]
        last = np.r_[k[1:] != k[:-1], True][: len(k)]
        self._keys, self._numbers = k[last], n[last]

    def newest(self, texts: Iterable[str]) -> np.ndarray:
        """Highest number of each string; -1 for strings never added."""
        d = digests(texts)
        if not len(self._keys):
            return np.full(len(d), -1, np.int64)
        pos = np.minimum(np.searchsorted(self._keys, d), len(self._keys) - 1)
        return np.where(self._keys[pos] == d, self._numbers[pos], -1)
