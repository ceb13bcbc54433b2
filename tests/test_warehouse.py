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
