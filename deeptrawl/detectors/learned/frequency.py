"""Frequency model detector: the learned MLP on the spectrum detector's feature vector.

The hand-fitted ``spectrum`` score looks for x2 upsampling only; this model is trained on
the corpus (GAN super-resolution, simulated generator upsampling, splices...) over the same
62 features, so it learns which spectral traces each kind leaves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from deeptrawl import models
from deeptrawl.models import weights
from deeptrawl.detectors.base import Detector, DetectorResult, Finding
from deeptrawl.detectors.learned.common import sigmoid, weights_version
from deeptrawl.detectors.registry import register
from deeptrawl.detectors.spectrum import MIN_TILE, spectral_features
from deeptrawl.errors import DetectorFailed
from deeptrawl.media.item import MediaItem
from deeptrawl.media.sniff import MediaKind

FLAG = 0.5


@register
class FrequencyDetector(Detector):
    """A learned model on 62 spectral features."""

    name = "frequency"
    version = weights_version("1.0.0", "frequency")
    media_kinds = frozenset({MediaKind.IMAGE})
    batched = True

    def __init__(self, weights_dir: Path = weights.WEIGHTS_DIR) -> None:
        self.weights_dir = weights_dir  # another folder: while training, before installing

    def setup(self) -> None:
        self.model = models.load_frequency(self.weights_dir)

    def analyze(self, batch: Sequence[MediaItem]) -> list[DetectorResult]:
        if not hasattr(self, "model"):
            self.setup()
        features: list[np.ndarray | DetectorResult] = []
        for item in batch:
            h, w = item.rgb.shape[:2]
            if min(h, w) < MIN_TILE:
                features.append(DetectorResult.abstain(f"image {w}x{h} is smaller than {MIN_TILE}px: too few rows for a spectrum"))
                continue
            try:
                f = spectral_features(item.rgb)
                features.append(f if np.all(np.isfinite(f)) else DetectorResult.abstain("the image is flat: no spectrum"))
            except Exception as exc:  # one bad input must not lose the batch
                features.append(DetectorResult.failed(DetectorFailed(f"frequency: {type(exc).__name__}: {exc}")))
        rows = [f for f in features if isinstance(f, np.ndarray)]
        if not rows:
            return features  # type: ignore[return-value]
        import torch  # here: registering the detector needs no torch

        with torch.no_grad():
            logits = iter(self.model(torch.from_numpy(np.stack(rows).astype(np.float32))).numpy())
        return [f if isinstance(f, DetectorResult) else self._result(float(next(logits))) for f in features]

    def _result(self, logit: float) -> DetectorResult:
        score = sigmoid(logit)
        findings = ()
        if score >= FLAG:
            findings = (Finding("frequency_synthetic", f"the frequency model finds generator-like spectral traces (score {score:.2f})", score),)
        return DetectorResult(score=score, findings=findings, details={"logit": round(logit, 4), "weights": self.version})
