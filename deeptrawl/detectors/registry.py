"""Detector registry: ``@register`` a class, build instances by name."""

from __future__ import annotations

import hashlib
from typing import Iterable, Sequence

from deeptrawl.detectors.base import Detector
from deeptrawl.errors import ConfigError

_REGISTRY: dict[str, type[Detector]] = {}


def register(cls: type[Detector]) -> type[Detector]:
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"detector name {cls.name!r} registered twice")
    _REGISTRY[cls.name] = cls
    return cls


def available() -> list[str]:
    return sorted(_REGISTRY)


def get(name: str) -> type[Detector]:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown detector {name!r}; available: {', '.join(available())}") from None


def create(names: Iterable[str] = ()) -> list[Detector]:
    """Instances of the named detectors (all registered ones when ``names`` is empty)."""
    names = list(names) or available()
    return [get(n)() for n in names]


def detector_set_version(detectors: Sequence[Detector], rule_version: str) -> str:
    """A short id for "these detectors at these versions, fused by this rule".

    One results row exists per object per detector-set version: changing any detector's
    version or the fusion rule makes a new set, so a rescan writes new rows instead of
    being skipped.
    """
    parts = sorted(f"{d.name}={d.version}" for d in detectors) + [f"rule={rule_version}"]
    return "ds-" + hashlib.sha256(";".join(parts).encode()).hexdigest()[:12]
