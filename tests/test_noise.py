"""Noise-inconsistency detector on ground truth made by construction.

Clean set: 40 shipped photos, randomly cropped and saved once as JPEG 60-95 or PNG
(``corpus_noise.cases(80, seed=3)``, first half). Splice set: the other 40 cases of the
same call, 10 per kind (donor from another photo with noise added, blurred, denoised, or
with another JPEG history), each checked at generation to differ from its host in noise
level by at least 1.5x.

Measured on this set (detector 1.2.0): 1 of 40 clean re-saves flagged (score >= 0.5;
1.0.0: 0); heatmap thresholded at 0.5 reaches IoU >= 0.3 with the pasted region on 25 of
40 splices (62.5%; 1.1.0: 22, 55%; 1.0.0: 18, 45%); AUC splice vs clean 0.77 (1.0.0:
0.81). This seed was one of the three the detector was tuned on. Issue #3 asks for "most
cases" (> 50%); on seeds not used for tuning 1.2.0 reaches 54% and 52% (seeds 11, 13;
1.1.0: 44, 49%) but 37% on seed 1000 (30 splices; 1.1.0: 33%), so the target is NOT
met everywhere; see the module docstring of ``deeptrawl.detectors.noise``.
The localisation test below guards the measured level.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from deeptrawl.config import Limits
from deeptrawl.detectors.noise import NoiseDetector, lattice_stride
from deeptrawl.media import load_item
from deeptrawl.samples import corpus_noise


def _iou(heat: np.ndarray, mask: np.ndarray) -> float:
    hot = heat >= 0.5
    return float((hot & mask).sum() / max((hot | mask).sum(), 1))


@pytest.fixture(scope="module")
def noise() -> NoiseDetector:
    detector = NoiseDetector()
    detector.setup()
    return detector


@pytest.fixture(scope="module")
def results(noise):
    """[(case, result)] over the seeded corpus."""
    cases = corpus_noise.cases(80, seed=3)
    out = []
    for case in cases:
        result = noise.analyze([load_item(case.name, case.data, Limits())])[0]
        assert result.error is None, (case.name, result.error)
        out.append((case, result))
    return out


def test_clean_resaves_are_not_flagged(results):
    clean = [(c.name, r.score) for c, r in results if not c.manipulated]
    assert len(clean) >= 40
    flagged = [(n, round(s, 3)) for n, s in clean if s >= 0.5]
    assert len(flagged) <= 0.05 * len(clean), f"false positives: {flagged}"


def test_splices_are_localised(results):
    splices = [(c, r) for c, r in results if c.manipulated]
    assert len(splices) >= 30
    ious = {c.name: _iou(r.evidence[0].array, c.mask) for c, r in splices}
    hit = sum(v >= 0.3 for v in ious.values()) / len(ious)
    # Measured 0.625 (25/40) on this set (a tuning seed; 1.1.0: 0.55); issue #3's target
    # is > 0.5, met on held-out seeds 11 and 13, not on 1000 (see the module docstring).
    assert hit >= 0.6, f"IoU >= 0.3 on {hit:.0%}; worst: {sorted(ious.items(), key=lambda kv: kv[1])[:5]}"


def test_splices_score_above_clean(results):
    spliced = np.array([r.score for c, r in results if c.manipulated])
    clean = np.array([r.score for c, r in results if not c.manipulated])
    auc = float((spliced[:, None] > clean[None, :]).mean() + 0.5 * (spliced[:, None] == clean[None, :]).mean())
    assert auc >= 0.7, f"AUC splice vs clean {auc:.3f}"


def test_heatmap_is_brighter_inside_the_pasted_region(results):
    inside, outside = [], []
    for case, result in results:
        if case.manipulated:
            heat = result.evidence[0].array
            assert heat.shape == case.mask.shape and heat.dtype == np.float32
            inside.append(heat[case.mask].mean())
            outside.append(heat[~case.mask].mean())
    assert np.mean(inside) > 2 * np.mean(outside), (np.mean(inside), np.mean(outside))


def _paste(host: np.ndarray, donor: np.ndarray, box: tuple[int, int, int, int]) -> tuple[bytes, np.ndarray]:
    y0, y1, x0, x1 = box
    out = host.copy()
    out[y0:y1, x0:x1] = donor[y0:y1, x0:x1]
    mask = np.zeros(host.shape[:2], bool)
    mask[y0:y1, x0:x1] = True
    buf = io.BytesIO()
    Image.fromarray(out).save(buf, "PNG")
    return buf.getvalue(), mask


def test_added_noise_is_found_and_explained(noise):
    host = corpus_noise.photo("hubble_deep_field")
    rng = np.random.default_rng(0)
    noisy = np.clip(host + rng.normal(0, 6, host.shape), 0, 255).astype(np.uint8)
    data, mask = _paste(host, noisy, (300, 600, 200, 600))
    result = noise.analyze([load_item("noisy.png", data, Limits())])[0]
    assert result.score >= 0.5
    assert [f.code for f in result.findings] == ["noise_inconsistent_region"]
    assert "more noise" in result.findings[0].message
    assert result.details["noise_in_region"] == "more"
    assert _iou(result.evidence[0].array, mask) >= 0.5


def test_blurred_region_reads_as_less_noise(noise):
    import cv2

    host = corpus_noise.photo("immunohistochemistry")
    data, mask = _paste(host, cv2.GaussianBlur(host, (0, 0), 1.2), (100, 330, 150, 400))
    result = noise.analyze([load_item("blurred.png", data, Limits())])[0]
    assert result.details["noise_in_region"] == "less"
    assert "less noise" in result.findings[0].message
    assert _iou(result.evidence[0].array, mask) >= 0.5


def test_large_image_uses_a_strided_lattice_and_still_localises(noise):
    # 8 MP: above DENSE_PIXELS, so cells are sampled on a lattice at full resolution.
    h, w = 2400, 3400
    assert lattice_stride(h, w) > 1
    rng = np.random.default_rng(1)
    base = np.asarray(Image.fromarray(corpus_noise.photo("coffee")).resize((w, h), Image.BILINEAR), np.float32)
    host = np.clip(base + rng.normal(0, 1.5, base.shape), 0, 255).astype(np.uint8)
    donor = np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)
    y0, x0 = 700, 1500
    out = host.copy()
    out[y0 : y0 + 900, x0 : x0 + 1200] = donor[y0 : y0 + 900, x0 : x0 + 1200]
    mask = np.zeros((h, w), bool)
    mask[y0 : y0 + 900, x0 : x0 + 1200] = True
    buf = io.BytesIO()
    Image.fromarray(out).save(buf, "JPEG", quality=95)
    result = noise.analyze([load_item("big.jpg", buf.getvalue(), Limits())])[0]
    assert result.evidence[0].array.shape == (h, w)
    assert result.score >= 0.5
    assert _iou(result.evidence[0].array, mask) >= 0.5


def test_too_small_or_flat_abstains(noise):
    tiny = io.BytesIO()
    Image.fromarray(corpus_noise.photo("coffee")[:48, :300]).save(tiny, "PNG")
    result = noise.analyze([load_item("strip.png", tiny.getvalue(), Limits())])[0]
    assert result.score is None and result.error is None and "smaller than" in result.details["reason"]
    black = io.BytesIO()
    Image.fromarray(np.zeros((200, 200, 3), np.uint8)).save(black, "PNG")
    result = noise.analyze([load_item("black.png", black.getvalue(), Limits())])[0]
    assert result.score is None and "unclipped" in result.details["reason"]


def test_corpus_is_deterministic_balanced_and_labelled():
    a, b = corpus_noise.cases(10, seed=5), corpus_noise.cases(10, seed=5)
    assert [c.data for c in a] == [c.data for c in b]
    assert sum(c.manipulated for c in a) == 5
    kinds = {c.kind for c in a if c.manipulated}
    assert kinds <= set(corpus_noise.SPLICE_KINDS) and len(kinds) == 4
    for case in a:
        if case.manipulated:
            image = np.asarray(Image.open(io.BytesIO(case.data)).convert("RGB"))
            assert case.mask.shape == image.shape[:2] and 0.04 <= case.mask.mean() <= 0.26
            assert corpus_noise.noise_ratio(image, case.mask) >= corpus_noise.MIN_RATIO
        else:
            assert case.mask is None and case.kind == "real"
