"""The results-sink interface: where result rows go and how a run knows what is done."""

from __future__ import annotations

import abc
from typing import Any, Container

import pyarrow as pa


class ResultsSink(abc.ABC):
    @abc.abstractmethod
    def existing_keys(self) -> Container[str]:
        """Row keys already committed. A row key embeds its detector set, so one
        container answers for every set."""

    @abc.abstractmethod
    def append(self, rows: list[dict[str, Any]]) -> int:
        """Commit rows atomically, skipping keys already present; return how many were added."""

    @abc.abstractmethod
    def read(self, **filters: Any) -> pa.Table:
        """Rows matching equality filters on columns (verdict, status, scan_id, ...)."""


class MemorySink(ResultsSink):
    """In-process sink for unit tests of logic."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def existing_keys(self) -> set[str]:
        return {r["row_key"] for r in self.rows}

    def append(self, rows: list[dict[str, Any]]) -> int:
        done = self.existing_keys()
        new = [r for r in {r["row_key"]: r for r in rows}.values() if r["row_key"] not in done]
        self.rows.extend(new)
        return len(new)

    def read(self, **filters: Any) -> pa.Table:
        from deeptrawl.warehouse.schema import to_arrow

        wanted = {k: v for k, v in filters.items() if v is not None and k != "columns"}
        return to_arrow([r for r in self.rows if all(r.get(k) == v for k, v in wanted.items())])
