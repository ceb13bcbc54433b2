"""Detectors: one module (or folder) per method family, all behind ``Detector``.

Importing this package registers the built-in detectors.
"""

from deeptrawl.detectors.base import Detector, DetectorResult, Evidence, Finding
from deeptrawl.detectors.registry import available, create, detector_set_version, get, register

# Built-in detectors register themselves on import.
from deeptrawl.detectors import copymove as _copymove  # noqa: E402,F401
from deeptrawl.detectors import ela as _ela  # noqa: E402,F401
from deeptrawl.detectors import jpeg as _jpeg  # noqa: E402,F401
from deeptrawl.detectors import learned as _learned  # noqa: E402,F401
from deeptrawl.detectors import metadata as _metadata  # noqa: E402,F401
from deeptrawl.detectors import noise as _noise  # noqa: E402,F401
from deeptrawl.detectors import spectrum as _spectrum  # noqa: E402,F401

__all__ = [
    "Detector",
    "DetectorResult",
    "Evidence",
    "Finding",
    "available",
    "create",
    "detector_set_version",
    "get",
    "register",
]
