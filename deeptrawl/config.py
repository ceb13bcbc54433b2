"""Typed, immutable configuration objects with module-level defaults.

Everything that tunes behaviour is a frozen, keyword-only dataclass so it can be
pickled into Beam DoFns, compared, and printed; no dicts of options are passed around.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Mapping

if TYPE_CHECKING:
    from deeptrawl.fusion import FusionModel

MiB = 1024 * 1024

DEFAULT_MAX_BYTES = 256 * MiB
DEFAULT_MAX_PIXELS = 100_000_000  # 100 MP: above every consumer camera, far below a bomb
DEFAULT_MAX_DURATION_S = 4 * 3600.0


@dataclass(frozen=True, kw_only=True)
class Limits:
    """Explicit limits, checked from headers before any full decode."""

    max_bytes: int = DEFAULT_MAX_BYTES
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_duration_s: float = DEFAULT_MAX_DURATION_S


@dataclass(frozen=True, kw_only=True)
class S3Settings:
    """Where S3 is. Credentials come from the standard AWS chain (env, profile, role)."""

    endpoint_url: str | None = None
    region: str | None = None
    profile: str | None = None
    #: Seconds to wait for a connection before the store is declared unreachable.
    connect_timeout_s: float = 5.0
    max_attempts: int = 3


@dataclass(frozen=True, kw_only=True)
class VerdictRule:
    """The documented hand-written fusion rule (see verdict.py): the fallback while no
    trained ``FusionModel`` is installed. Its default thresholds also read decisive
    findings when a model fuses."""

    synthetic_threshold: float = 0.70
    authentic_threshold: float = 0.35
    #: Multiplies each detector's score before the maximum; detectors not named weigh 1.0.
    #: JPEG forensics weighs 0.8: recompression alone (its 0.85 finding) is ordinary for
    #: re-uploaded photos and should read "inconclusive", while its localised findings
    #: (up to 0.95) still reach "likely_synthetic".
    weights: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({"jpeg": 0.8}))
    version: str = "rule-v2"


@dataclass(frozen=True, kw_only=True)
class WarehouseSettings:
    """The Iceberg results table. Default: a SQLite catalog inside ``location``."""

    location: str
    catalog_uri: str | None = None  # default: sqlite:///<location>/catalog.db
    catalog_name: str = "deeptrawl"
    namespace: str = "deeptrawl"
    table: str = "scan_results"
    #: Extra pyiceberg catalog properties (s3.endpoint, credentials, ...).
    properties: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, kw_only=True)
class ScanSettings:
    """One scan run: what to read, where results go, and how to analyse."""

    source: str
    out: str
    warehouse: WarehouseSettings
    s3: S3Settings = field(default_factory=S3Settings)
    limits: Limits = field(default_factory=Limits)
    #: How detector results become a verdict: the rule, or a trained fusion model.
    #: ``None``: the installed fusion model when the scan runs every detector it was trained
    #: on, else the rule (``deeptrawl.fusion.default_fuser``).
    rule: VerdictRule | FusionModel | None = None
    detectors: tuple[str, ...] = ()  # empty: every registered detector
    analyze_batch_size: int = 8
    commit_batch_size: int = 200
    incremental: bool = True
