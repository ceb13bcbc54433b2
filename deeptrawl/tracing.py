"""OpenTelemetry set-up, chosen by the standard ``OTEL_*`` variables.

``OTEL_TRACES_EXPORTER``: ``none`` (default), ``console``, ``otlp`` or a comma list.
``OTEL_EXPORTER_OTLP_PROTOCOL``: ``grpc`` (default) or ``http/protobuf``; endpoints and
headers come from the exporters' own ``OTEL_EXPORTER_OTLP_*`` variables.

A scan's root span context travels to Beam workers as a W3C ``traceparent`` carrier, so
spans made in DoFns (on this machine or a cluster) join the run's trace.
"""

from __future__ import annotations

import os

from opentelemetry import context, propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

from deeptrawl import __version__


def configure(service_name: str = "deeptrawl") -> None:
    """Install a tracer provider from the environment, once per process.

    Leaves an SDK provider that is already installed (by a test, or an embedding
    application) alone.
    """
    if isinstance(trace.get_tracer_provider(), TracerProvider):
        return
    names = [n.strip() for n in os.environ.get("OTEL_TRACES_EXPORTER", "none").split(",") if n.strip()]
    names = [n for n in names if n != "none"]
    if not names:
        return  # the API's no-op provider: spans cost nearly nothing
    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", service_name)})
    provider = TracerProvider(resource=resource)
    for name in names:
        provider.add_span_processor(BatchSpanProcessor(_exporter(name)))
    trace.set_tracer_provider(provider)


def _exporter(name: str):
    if name == "console":
        return ConsoleSpanExporter()
    if name == "otlp":
        protocol = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or os.environ.get(
            "OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"
        )
        if protocol.startswith("http"):
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        else:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        return OTLPSpanExporter()
    from deeptrawl.errors import ConfigError

    raise ConfigError(f"OTEL_TRACES_EXPORTER={name!r} is not supported (use none, console or otlp)")


def tracer() -> trace.Tracer:
    return trace.get_tracer("deeptrawl", __version__)


def carrier() -> dict[str, str]:
    """The current span context as a W3C carrier, to hand to another process."""
    out: dict[str, str] = {}
    propagate.inject(out)
    return out


def attach(carrier_: dict[str, str] | None) -> object | None:
    """Make ``carrier_`` the parent context in this worker; returns a token for ``detach``."""
    if not carrier_:
        return None
    return context.attach(propagate.extract(carrier_))


def detach(token: object | None) -> None:
    if token is not None:
        context.detach(token)


def flush() -> None:
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        provider.force_flush()


def ids(span: trace.Span) -> tuple[str | None, str | None]:
    ctx = span.get_span_context()
    if not ctx.is_valid:
        return None, None
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")
