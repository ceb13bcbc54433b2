"""Shared fixtures. The S3 server is real (SeaweedFS) and started once per session."""

from __future__ import annotations

import os
import uuid

import pytest

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from support.seaweedfs import SeaweedFS

# One SDK tracer provider for the whole test process (OpenTelemetry allows one per
# process); deeptrawl.tracing.configure() leaves an installed SDK provider alone.
SPANS = InMemorySpanExporter()
_provider = TracerProvider()
_provider.add_span_processor(SimpleSpanProcessor(SPANS))
trace.set_tracer_provider(_provider)


@pytest.fixture(scope="session", autouse=True)
def _cache_dir(tmp_path_factory):
    """deeptrawl's cache (the CNN trunk's ONNX export) in the session's temporary folder,
    not the user's home; scan workers inherit it."""
    os.environ["DEEPTRAWL_CACHE"] = str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """A running SeaweedFS S3 server on 127.0.0.1 with its own ports, data and credentials."""
    server = SeaweedFS(tmp_path_factory.mktemp("seaweedfs")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_server):
    """``(server, bucket_name)``: a fresh, empty bucket for one test."""
    name = f"t-{uuid.uuid4().hex[:20]}"
    s3_server.make_bucket(name)
    yield s3_server, name


@pytest.fixture
def spans():
    """The in-memory span exporter, emptied for this test."""
    SPANS.clear()
    yield SPANS
    SPANS.clear()
