"""The results table in Apache Iceberg, through pyiceberg.

Default catalog: SQLite inside the warehouse folder (one machine, no server). Any other
pyiceberg SQL catalog URI (PostgreSQL for many writers) or catalog properties can be
given in ``WarehouseSettings``.

Appends are idempotent by ``row_key``: before committing, the writer drops rows whose key
is already in the table, and it retries on ``CommitFailedException`` (pyiceberg's own
retries run out under concurrent writers). A bundle that Beam retries after its commit
landed therefore adds nothing, and neither does a resumed scan.

Knowing which keys are in the table must not cost more as the table grows: each writer
keeps an index of the committed keys (8-byte digests, ``deeptrawl.keyset``), loads it once,
and afterwards reads only the rows appended since (Iceberg's incremental append scan). (Querying the
table for each batch's keys read every data file of the running scan on every commit:
commit time grew with the scan, bench/RESULTS.md.)
"""

from __future__ import annotations

import random
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy.exc
from pyiceberg.catalog import Catalog
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import (
    CommitFailedException,
    NamespaceAlreadyExistsError,
    NoSuchTableError,
    TableAlreadyExistsError,
)
from pyiceberg.expressions import And, AlwaysTrue, BooleanExpression, EqualTo
from pyiceberg.table import Table

from deeptrawl.config import WarehouseSettings
from deeptrawl.errors import ConfigError, WarehouseError
from deeptrawl.keyset import DigestSet
from deeptrawl.warehouse.base import ResultsSink
from deeptrawl.warehouse.schema import ARROW_SCHEMA, PARTITION_SPEC, RESULTS_SCHEMA, to_arrow

COMMIT_ATTEMPTS = 8
CATALOG_ATTEMPTS = 5


def _is_remote(location: str) -> bool:
    return "://" in location and not location.startswith("file://")


class IcebergSink(ResultsSink):
    def __init__(self, settings: WarehouseSettings, *, create: bool = True) -> None:
        self.settings = settings
        self._create = create
        self._table: Table | None = None
        self._keys: DigestSet | None = None  # every committed row key, as of snapshot _seen
        self._seen: int | None = None

    # Beam pickles sinks into DoFns: the catalog connection and the key index are rebuilt
    # on the worker.
    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_table": None, "_keys": None, "_seen": None}

    @property
    def identifier(self) -> str:
        return f"{self.settings.namespace}.{self.settings.table}"

    def catalog(self) -> Catalog:
        s = self.settings
        location = s.location
        if not _is_remote(location):
            path = Path(location.removeprefix("file://")).absolute()
            if not self._create and not path.exists():
                raise ConfigError(f"warehouse {path} does not exist (run a scan first, or check --warehouse)")
            path.mkdir(parents=True, exist_ok=True)
            location = path.as_uri()
            default_uri = f"sqlite:///{path / 'catalog.db'}"
        else:
            default_uri = None
        uri = s.catalog_uri or default_uri
        if uri is None:
            raise ConfigError("a remote warehouse location needs --catalog-uri (e.g. postgresql+psycopg2://...)")
        # Only writers create the catalog's own tables: a reader that created them could
        # race the scan that is creating them too, and SQLite would fail one of the two with
        # "table already exists". Two writers can still race, so construction is retried.
        properties = {"init_catalog_tables": str(self._create).lower(), **dict(s.properties)}
        for attempt in range(CATALOG_ATTEMPTS):
            try:
                return SqlCatalog(s.catalog_name, uri=uri, warehouse=location, **properties)
            except sqlalchemy.exc.OperationalError:
                if attempt == CATALOG_ATTEMPTS - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")

    def table(self) -> Table:
        if self._table is None:
            catalog = self.catalog()
            if self._create:
                self._table = self._create_table(catalog)
            else:
                try:
                    self._table = catalog.load_table(self.identifier)
                except (NoSuchTableError, sqlalchemy.exc.OperationalError):  # no catalog tables yet either
                    raise ConfigError(
                        f"no results table {self.identifier} in warehouse {self.settings.location}"
                    ) from None
        return self._table

    def _create_table(self, catalog: Catalog) -> Table:
        # "if not exists" is check-then-insert: two writers starting together can both see
        # nothing and one insert then fails on the catalog's unique key. Looking again wins.
        for attempt in range(CATALOG_ATTEMPTS):
            try:
                catalog.create_namespace_if_not_exists(self.settings.namespace)
                return catalog.create_table_if_not_exists(self.identifier, schema=RESULTS_SCHEMA, partition_spec=PARTITION_SPEC)
            except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.OperationalError, NamespaceAlreadyExistsError,
                    TableAlreadyExistsError):
                if attempt == CATALOG_ATTEMPTS - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")

    # -- ResultsSink -----------------------------------------------------------------

    def existing_keys(self) -> DigestSet:
        table = self.table()
        table.refresh()
        return self._committed_keys(table)

    def append(self, rows: list[dict[str, Any]]) -> int:
        if not rows:
            return 0
        # Duplicates inside one batch: keep the first.
        unique = list({r["row_key"]: r for r in reversed(rows)}.values())[::-1]
        table = self.table()
        for attempt in range(COMMIT_ATTEMPTS):
            table.refresh()
            committed = self._committed_keys(table)
            todo = [r for r in unique if r["row_key"] not in committed]
            if not todo:
                return 0
            try:
                table.append(to_arrow(todo, table.schema().as_arrow()))
            except CommitFailedException:
                if attempt == COMMIT_ATTEMPTS - 1:
                    raise WarehouseError(
                        f"could not commit {len(todo)} rows to {self.identifier} after {COMMIT_ATTEMPTS} attempts "
                        "(concurrent writers)"
                    ) from None
                time.sleep(min(2.0, 0.05 * 2**attempt) * (0.5 + random.random()))
                continue
            return len(todo)
        return 0  # unreachable

    def expire_snapshots(self, older_than: datetime) -> int:
        """Drop snapshots made before ``older_than`` (never the current one); return how
        many. Every commit adds a snapshot to the table metadata that each later commit
        and query reads; expiring old ones keeps that metadata, and commit time, bounded.
        Rows are untouched: only the history of earlier table states goes."""
        table = self.table()
        table.refresh()
        current = table.current_snapshot()
        cutoff_ms = older_than.timestamp() * 1000
        old = [s.snapshot_id for s in table.snapshots() if s.timestamp_ms < cutoff_ms and s is not current]
        if old:
            table.maintenance.expire_snapshots().by_ids(old).commit()
        return len(old)

    def _committed_keys(self, table: Table) -> DigestSet:
        """The key index, brought up to the table's current snapshot."""
        current = table.current_snapshot()
        current_id = current.snapshot_id if current is not None else None
        if self._keys is not None and current_id != self._seen:
            try:  # only the rows appended since the snapshot the index is at
                _add_keys(self._keys, table.incremental_append_scan(
                    from_snapshot_id_exclusive=self._seen, to_snapshot_id_inclusive=current_id, selected_fields=("row_key",)
                ))
            except ValueError:  # that snapshot is no longer an ancestor (expired, rolled back)
                self._keys = None
        if self._keys is None:
            self._keys = DigestSet()
            _add_keys(self._keys, table.scan(selected_fields=("row_key",)))
        self._seen = current_id
        return self._keys

    def read(
        self,
        *,
        verdict: str | None = None,
        status: str | None = None,
        scan_id: str | None = None,
        object_uri: str | None = None,
        content_sha256: str | None = None,
        columns: Iterable[str] | None = None,
    ) -> pa.Table:
        conditions = [
            EqualTo(name, value)
            for name, value in (
                ("verdict", verdict),
                ("status", status),
                ("scan_id", scan_id),
                ("object_uri", object_uri),
                ("content_sha256", content_sha256),
            )
            if value is not None
        ]
        where: BooleanExpression = AlwaysTrue()
        for condition in conditions:
            where = And(where, condition)
        table = self.table()
        table.refresh()
        selected = tuple(columns) if columns else ("*",)
        result = table.scan(row_filter=where, selected_fields=selected).to_arrow()
        order = [(c, o) for c, o in (("scanned_at", "descending"), ("object_uri", "ascending")) if c in result.column_names]
        if result.num_rows and order:
            result = result.sort_by(order)
        return result

    def metadata_location(self) -> str:
        table = self.table()
        table.refresh()
        return table.metadata_location


def _add_keys(keys: DigestSet, scan: Any) -> None:
    for batch in scan.to_arrow_batch_reader():  # streamed: the keys never sit in memory as strings
        keys.add(batch.column("row_key").to_pylist())


def count_by(table: pa.Table, column: str) -> dict[str, int]:
    if table.num_rows == 0:
        return {}
    counts = pc.value_counts(table.column(column))
    return {str(c["values"]): int(c["counts"]) for c in counts.to_pylist()}


__all__ = ["ARROW_SCHEMA", "IcebergSink", "count_by"]
