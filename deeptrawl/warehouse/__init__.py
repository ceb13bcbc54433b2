"""Where results go: the results-sink interface and its Iceberg implementation."""

from deeptrawl.warehouse.base import MemorySink, ResultsSink
from deeptrawl.warehouse.iceberg import IcebergSink, count_by
from deeptrawl.warehouse.schema import ARROW_SCHEMA, COLUMNS, RESULTS_SCHEMA, row_from_report, row_key

__all__ = [
    "ARROW_SCHEMA",
    "COLUMNS",
    "IcebergSink",
    "MemorySink",
    "RESULTS_SCHEMA",
    "ResultsSink",
    "count_by",
    "row_from_report",
    "row_key",
]
