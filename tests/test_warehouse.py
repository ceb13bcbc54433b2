"""The Iceberg results table when several processes open it at once (a scan and a reader)."""

from __future__ import annotations

import multiprocessing as mp
import sqlite3

import pytest

from deeptrawl.config import WarehouseSettings
from deeptrawl.errors import ConfigError
from deeptrawl.warehouse import IcebergSink


def _open(location: str, create: bool) -> str:
    try:
        IcebergSink(WarehouseSettings(location=location), create=create).table()
        return "ok"
    except ConfigError:
        return "no table yet"


def test_reader_never_creates_catalog_tables(tmp_path):
    (tmp_path / "wh").mkdir()
    with pytest.raises(ConfigError, match="no results table"):
        IcebergSink(WarehouseSettings(location=str(tmp_path / "wh")), create=False).table()
    tables = sqlite3.connect(tmp_path / "wh" / "catalog.db").execute("select name from sqlite_master").fetchall()
    assert tables == [], "a reader must leave catalog creation to the writer"


def test_writers_and_readers_opening_a_new_warehouse_together(tmp_path):
    location = str(tmp_path / "wh")
    (tmp_path / "wh").mkdir()
    jobs = [(location, i % 2 == 0) for i in range(8)]
    with mp.get_context("spawn").Pool(4) as pool:
        outcomes = pool.starmap(_open, jobs)
    assert all(o == "ok" for o, (_, create) in zip(outcomes, jobs) if create), outcomes
    assert set(outcomes) <= {"ok", "no table yet"}
    assert _open(location, create=False) == "ok"


def _row(key: str, scan: str = "scan-1") -> dict:
    from datetime import datetime, timezone

    return {
        "row_key": key, "object_uri": f"file:///{key}.jpg", "status": "ok", "verdict": "inconclusive",
        "detector_set_version": "ds-test", "scan_id": scan, "scanned_at": datetime.now(timezone.utc),
        "pipeline_version": "test",
    }


def test_appends_are_idempotent_across_writers_and_read_only_new_files(tmp_path, monkeypatch):
    settings = WarehouseSettings(location=str(tmp_path / "wh"))
    a, b = IcebergSink(settings), IcebergSink(settings)
    assert a.append([_row("k1"), _row("k2"), _row("k1")]) == 2  # duplicate inside a batch
    assert b.append([_row("k2"), _row("k3")]) == 1  # k2 is a's, found by b's first (full) load
    assert a.append([_row("k3"), _row("k4")]) == 1  # k3 is b's: a reads only b's new file

    # After its first load a writer never scans the whole table again, only appended rows.
    from pyiceberg.table import Table

    def no_full_scan(*args, **kwargs):
        raise AssertionError("full table scan after the index was loaded")

    monkeypatch.setattr(Table, "scan", no_full_scan)
    assert b.append([_row("k1"), _row("k4"), _row("k5")]) == 1
    assert a.append([_row("k5")]) == 0
    assert "k5" in a.existing_keys() and "k6" not in a.existing_keys()
    monkeypatch.undo()
    keys = IcebergSink(settings, create=False).read(columns=["row_key"]).column("row_key").to_pylist()
    assert sorted(keys) == ["k1", "k2", "k3", "k4", "k5"]


def test_a_pickled_sink_rebuilds_its_index(tmp_path):
    from apache_beam.internal import pickler  # how Beam ships DoFns to workers

    sink = IcebergSink(WarehouseSettings(location=str(tmp_path / "wh")))
    sink.append([_row("k1")])
    copy = pickler.loads(pickler.dumps(sink))
    assert copy._keys is None and copy.append([_row("k1"), _row("k2")]) == 1


def test_expiring_snapshots_keeps_rows_and_writers_recover(tmp_path):
    from datetime import datetime, timezone

    settings = WarehouseSettings(location=str(tmp_path / "wh"))
    writer = IcebergSink(settings)
    for i in range(4):
        writer.append([_row(f"k{i}")])
    assert writer.expire_snapshots(datetime.now(timezone.utc)) == 3
    assert len(writer.table().snapshots()) == 1
    # The writer's index was at an expired snapshot: it reloads instead of failing.
    assert writer.append([_row("k1"), _row("k4")]) == 1
    keys = IcebergSink(settings, create=False).read(columns=["row_key"]).column("row_key").to_pylist()
    assert sorted(keys) == ["k0", "k1", "k2", "k3", "k4"]
