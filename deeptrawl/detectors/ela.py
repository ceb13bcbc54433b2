"""Error-level analysis (ELA).

Re-save the image as JPEG at a known quality and measure how much each block changes.
Regions that went through the same compression history change by similar amounts
*for their texture*; a region pasted from a source with another history (an
uncompressed or differently compressed image) stands out.

Raw ELA error grows with local texture (edges re-quantise worse than flat sky), so the
block error is divided by the block's own high-frequency energy before comparing
blocks. The score measures how far anomalous blocks depart from the
image's typical ratio (robust z-scores), times the share of blocks that are anomalous:
a few noisy blocks do not flag an image, a region covering ~10% or more does. The blocks
are not required to be connected (issue #3 adds region analysis).

Limits (honest): ELA is weak on images re-compressed many times, on tiny images, and it
says nothing about fully synthetic images saved once. A clean photo re-saved just under
its own quality lights up at that one quality, hence the median over several.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from deeptrawl.detectors.base import Detector, DetectorResult, Evidence, Finding
from deeptrawl.detectors.registry import register
from deeptrawl.media.item import MediaItem
from deeptrawl.media.sniff import MediaKind

BLOCK = 16
#: Re-save qualities; the score is the median over them (see ``analyze_one``).
QUALITIES = (75, 85, 90)
#: Smaller images carry too few blocks for a meaningful comparison.
MIN_SIDE = 64


def _block_mean(values: np.ndarray, block: int) -> np.ndarray:
    h, w = values.shape[0] // block * block, values.shape[1] // block * block
    v = values[:h, :w]
    return v.reshape(h // block, block, w // block, block).mean(axis=(1, 3))


@register
class ElaDetector(Detector):
    name = "ela"
    version = "1.0.0"
    media_kinds = frozenset({MediaKind.IMAGE})

    def __init__(self, qualities: tuple[int, ...] = QUALITIES, block: int = BLOCK) -> None:
        self.qualities = qualities
        self.block = block

    def analyze_one(self, item: MediaItem) -> DetectorResult:
        rgb = item.rgb
        h, w = rgb.shape[:2]
        if min(h, w) < MIN_SIDE:
            return DetectorResult(
                score=None,
                details={"reason": f"image {w}x{h} is smaller than {MIN_SIDE}px: too few blocks for ELA"},
            )
        image = Image.fromarray(rgb)
        pixels = rgb.astype(np.int16)
        luma = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        hf = np.abs(np.diff(luma, axis=0, append=luma[-1:])) + np.abs(np.diff(luma, axis=1, append=luma[:, -1:]))
        block_tex = _block_mean(hf, self.block)
        runs = [self._one_quality(image, pixels, block_tex, q) for q in self.qualities]
        # A clean photo re-saved just under its own quality lights up at that one quality;
        # a region with another history stands out at all of them. The median keeps the second.
        scores = [r[0] for r in runs]
        score, area, strength, z = sorted(runs, key=lambda r: r[0])[len(runs) // 2]

        heat = np.clip(z / 8.0, 0.0, 1.0).astype(np.float32)
        heat = np.kron(heat, np.ones((self.block, self.block), dtype=np.float32))
        heat = np.pad(heat, ((0, h - heat.shape[0]), (0, w - heat.shape[1])), mode="edge")
        findings = []
        if score >= 0.5:
            findings.append(
                Finding(
                    code="ela_inconsistent_region",
                    message=(
                        f"blocks covering {area:.0%} of the image change under re-compression far more than "
                        f"their texture explains ({strength:.1f} robust SDs above typical): a sign of a region "
                        f"with a different compression history"
                    ),
                    score=score,
                )
            )
        return DetectorResult(
            score=score,
            findings=tuple(findings),
            details={
                "qualities": list(self.qualities),
                "scores_per_quality": [round(x, 4) for x in scores],
                "block": self.block,
                "anomalous_area": round(area, 4),
                "anomaly_strength": round(strength, 3),
            },
            evidence=(Evidence("heatmap", "heatmap", heat, caption="ELA error relative to texture (median re-save quality)"),),
        )

    def _one_quality(self, image: Image.Image, pixels: np.ndarray, block_tex: np.ndarray, quality: int):
        buf = io.BytesIO()
        image.save(buf, "JPEG", quality=quality)
        resaved = np.asarray(Image.open(buf), dtype=np.int16)
        # Largest change over the channels: a pasted region often differs most in chroma.
        # One or two levels of change is rounding, present even when the image was last
        # saved at this very quality; it is not evidence.
        error = np.maximum(np.abs(pixels - resaved).max(axis=2).astype(np.float32) - 2.0, 0.0)
        ratio = _block_mean(error, self.block) / (block_tex + 2.0)
        median = float(np.median(ratio))
        # Floor the spread: an image already saved at this quality barely changes, and a
        # near-zero MAD would turn rounding noise into huge z-scores.
        spread = max(float(np.median(np.abs(ratio - median))) * 1.4826, 0.25 * median, 0.02)
        z = (ratio - median) / spread
        anomalous = z > 3.0
        area = float(anomalous.mean())
        strength = float(np.mean(z[anomalous])) if anomalous.any() else 0.0
        # Evidence is an area of consistently higher error: strength over the typical
        # ratio, scaled by how much of the image it covers (saturating at ~10%).
        raw = strength * min(area / 0.10, 1.0)
        return float(1.0 / (1.0 + np.exp(-(raw - 4.0)))), area, strength, z
