"""Assertions shared by the metadata detector tests."""

from __future__ import annotations

import json

from deeptrawl.config import Limits
from deeptrawl.media.probe import load_item


def analyze(detector, data: bytes, uri: str = "mem://test"):
    result = detector.analyze_one(load_item(uri, data, Limits()))
    json.dumps(result.details)  # every result must be JSON-serialisable
    assert result.error is None
    return result


def codes(result) -> set[str]:
    return {f.code for f in result.findings}


def only(result, code: str):
    matches = [f for f in result.findings if f.code == code]
    assert matches, f"no {code!r} finding in {sorted(codes(result))}"
    return matches[0]
