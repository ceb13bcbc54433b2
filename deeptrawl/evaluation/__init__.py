"""Evaluation behind ``deeptrawl evaluate``: labelled results -> metrics, tables, plots, report.

``report`` computes and renders (numpy only); ``plots`` draws the PNGs and is imported only
when a report is written. The metrics themselves live in ``deeptrawl.metrics``.
"""

from deeptrawl.evaluation.report import (
    EvaluationReport,
    Gap,
    GroupRow,
    KindRow,
    OperatingPoint,
    Overall,
    SubgroupTable,
    evaluate,
)

__all__ = [
    "EvaluationReport",
    "Gap",
    "GroupRow",
    "KindRow",
    "OperatingPoint",
    "Overall",
    "SubgroupTable",
    "evaluate",
]
