"""Query the results table with DuckDB, offline.

DuckDB would download its iceberg/avro extensions on first use; the
``duckdb-extension-*`` wheels ship them, so we load them from site-packages instead.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from deeptrawl.errors import ConfigError

_EXTENSIONS = ("avro", "iceberg")


def connect():
    try:
        import duckdb
    except ImportError:
        raise ConfigError("DuckDB is not installed: pip install 'deeptrawl[query]'") from None
    con = duckdb.connect()
    for name in _EXTENSIONS:
        package = importlib.import_module(f"duckdb_extension_{name}")
        files = sorted(Path(package.__file__).parent.glob(f"extensions/*/{name}.duckdb_extension"))
        if not files:
            raise ConfigError(f"duckdb-extension-{name} ships no extension file for this DuckDB")
        con.execute(f"LOAD '{files[-1]}'")
    return con


def iceberg_scan_sql(metadata_location: str) -> str:
    """A ``FROM`` clause for DuckDB over one Iceberg table snapshot."""
    path = metadata_location.removeprefix("file://")
    return f"iceberg_scan('{path}')"
