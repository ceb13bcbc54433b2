"""The detector interface: one narrow contract every method implements.

Modelled on Beam's RunInference ``ModelHandler``: ``setup`` loads once per worker,
``analyze`` takes a batch and returns exactly one result per input, in order. A failure
on one input is a ``DetectorResult`` with ``error`` set, never an exception that loses
the batch.

A score is evidence of manipulation or synthesis in [0, 1]. ``None`` means the detector
abstains (it found nothing it can speak to, e.g. no metadata at all): abstaining is not
the same as "authentic" and the fusion rule treats it so.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, ClassVar, Sequence

import cv2
import numpy as np

from deeptrawl.errors import DetectorFailed, MediaError
from deeptrawl.media.item import MediaItem
from deeptrawl.media.sniff import MediaKind


@dataclass(frozen=True)
class Finding:
    """One human-readable observation behind a score."""

    code: str  # stable machine name, e.g. "png_text_generator"
    message: str  # plain words for a person
    score: float  # how strongly this finding alone indicates manipulation, in [0, 1]
    #: A decisive finding settles the verdict on its own (e.g. a valid C2PA AI declaration).
    decisive: bool = False


@dataclass(frozen=True)
class Evidence:
    """A picture that explains a result.

    ``kind="heatmap"``: ``array`` is a float32 map in [0, 1] over the image (rendered as an
    overlay). It may be coarser than the image: each value then covers ``cell`` x ``cell``
    pixels from the top-left, the map covers the whole image, and ``size`` is the image's
    (height, width). Blockwise methods hand over their block map (``Evidence.blocks``)
    rather than expanding it: a full-size map is 48 MB at 12 MP and only ever shrunk
    again for display. ``pixels()`` gives the map at the image's resolution.
    ``kind="image"``: ``array`` is an HxWx3 uint8 picture (spectra, plots).
    """

    name: str
    kind: str
    array: np.ndarray
    caption: str = ""
    cell: int = 1
    size: tuple[int, int] | None = None

    @classmethod
    def blocks(cls, name: str, grid: np.ndarray, cell: int, size: tuple[int, int], caption: str = "") -> "Evidence":
        """A heatmap of ``cell`` x ``cell`` blocks; rows and columns past the grid (partial
        blocks at the image's edge) repeat the last ones."""
        rows, cols = -(-size[0] // cell), -(-size[1] // cell)
        grid = np.asarray(grid, dtype=np.float32)[:rows, :cols]
        grid = np.pad(grid, ((0, rows - grid.shape[0]), (0, cols - grid.shape[1])), mode="edge")
        return cls(name, "heatmap", np.clip(grid, 0.0, 1.0), caption, cell, size)

    def pixels(self) -> np.ndarray:
        """The heatmap at the image's resolution."""
        if self.cell == 1:
            return self.array
        rows, cols = self.array.shape
        full = cv2.resize(self.array, (cols * self.cell, rows * self.cell), interpolation=cv2.INTER_NEAREST)
        return np.ascontiguousarray(full[: self.size[0], : self.size[1]])


@dataclass(frozen=True)
class DetectorResult:
    score: float | None
    findings: tuple[Finding, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)
    evidence: tuple[Evidence, ...] = ()
    error: MediaError | None = None

    @classmethod
    def failed(cls, error: MediaError) -> "DetectorResult":
        return cls(score=None, error=error)

    @classmethod
    def abstain(cls, reason: str) -> "DetectorResult":
        """No score: the detector has nothing to say about this input, and says why."""
        return cls(score=None, details={"reason": reason})


class Detector(abc.ABC):
    """Base class; subclasses set the class attributes and implement ``analyze_one``
    (or override ``analyze`` for real batching)."""

    name: ClassVar[str]
    version: ClassVar[str]
    media_kinds: ClassVar[frozenset[MediaKind]]
    #: True when ``analyze`` batches for real (learned models): the analyzer then calls
    #: it once per batch instead of once per object.
    batched: ClassVar[bool] = False
    #: The pixels the detector reads: ``"rgb"`` (``item.rgb``) or ``"luma"`` (``item.luma``
    #: only, or no pixels at all). When every detector of a set says ``"luma"``, JPEGs are
    #: decoded without their colour planes.
    pixels: ClassVar[str] = "rgb"

    def setup(self) -> None:
        """Load weights/tables once per worker. Default: nothing to load."""

    def accepts(self, item: MediaItem) -> bool:
        return item.media_type.kind in self.media_kinds

    def analyze(self, batch: Sequence[MediaItem]) -> list[DetectorResult]:
        """One result per input, in order; per-input failures become ``error`` results."""
        results = []
        for item in batch:
            try:
                result = self.analyze_one(item)
            except MediaError as exc:
                result = DetectorResult.failed(exc)
            except Exception as exc:  # a detector bug must not lose the batch
                result = DetectorResult.failed(DetectorFailed(f"{self.name}: {type(exc).__name__}: {exc}"))
            results.append(result)
        return results

    def analyze_one(self, item: MediaItem) -> DetectorResult:
        raise NotImplementedError(f"{type(self).__name__} must implement analyze_one or analyze")
