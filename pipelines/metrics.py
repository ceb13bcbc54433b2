"""Read the jobs' Beam counters back from a finished pipeline.

Counters travel through the runner, so they are right with any runner and any number of
worker processes (process-local progress counters are not: they only drive the progress
bar of an in-process run).
"""

from __future__ import annotations

import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter

NAMESPACE = "deeptrawl"


def counter(name: str):
    return beam.metrics.Metrics.counter(NAMESPACE, name)


def run(pipeline: beam.Pipeline) -> dict[str, int]:
    """Run ``pipeline`` to completion and return its deeptrawl counters by name."""
    result = pipeline.run()
    result.wait_until_finish()
    totals: dict[str, int] = {}
    for metric in result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))["counters"]:
        value = metric.committed if metric.committed is not None else metric.attempted
        totals[metric.key.metric.name] = totals.get(metric.key.metric.name, 0) + int(value or 0)
    return totals
