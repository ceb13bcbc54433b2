"""Process-local counters that long-running work advances and the CLI draws as bars.

With Beam's DirectRunner (in-memory mode) DoFns run in the CLI's own process, so a
counter advanced in a DoFn moves the user's progress bar. On a cluster runner the
counters stay at zero on the submitting machine; progress is then in the runner's UI
and in the Beam metrics the DoFns also report.
"""

from __future__ import annotations

import threading
from collections import Counter

_lock = threading.Lock()
_counts: Counter[str] = Counter()


def advance(name: str, n: int = 1) -> None:
    with _lock:
        _counts[name] += n


def value(name: str) -> int:
    with _lock:
        return _counts[name]


def reset(*names: str) -> None:
    with _lock:
        for name in names:
            _counts.pop(name, None)
