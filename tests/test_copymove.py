"""Copy-move detection on ground truth made by construction.

The bulk test runs the detector over the first 40 cases of the seeded corpus
(``deeptrawl.samples.corpus_copymove``, seed 0: 20 clean photos and 20 copies shifted,
rotated, scaled or both, some JPEG-compressed after the edit), nothing chosen for a good
result. On them we measured 16/20 copies localised with IoU >= 0.5 (source and target
united) and 0/20 clean photos flagged; the assertions leave a margin for platform noise,
not for a different method. Larger runs (300 images, per-kind numbers) are in the
module docstring and ``bench/forensics_eval.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from deeptrawl.config import Limits
from deeptrawl.detectors.copymove import CopyMoveDetector
from deeptrawl.media import load_item
from deeptrawl.metrics import iou
from deeptrawl.samples import corpus_copymove, media


@pytest.fixture(scope="module")
def detector() -> CopyMoveDetector:
    det = CopyMoveDetector()
    det.setup()
    return det


def analyze(detector: CopyMoveDetector, data: bytes, uri: str = "x"):
    result = detector.analyze([load_item(uri, data, Limits())])[0]
    assert result.error is None, result.error
    return result


@pytest.fixture(scope="module")
def corpus_results(detector):
    """(case, score, IoU of the heatmap >= 0.5 with source | target, heatmap) per case."""
    out = []
    for case in corpus_copymove.cases(40, seed=0):
        result = analyze(detector, case.data, case.name)
        heat = result.evidence[0].array
        truth = case.mask | case.source_mask if case.manipulated else None
        out.append((case, result.score, iou(heat >= 0.5, truth) if truth is not None else None, heat))
    return out


# --- the corpus itself -------------------------------------------------------------------


def test_corpus_is_deterministic_balanced_and_labelled():
    first = corpus_copymove.cases(10, seed=3)
    again = corpus_copymove.cases(10, seed=3)
    assert [c.data for c in first] == [c.data for c in again]
    assert [c.data for c in corpus_copymove.cases(4, seed=3)] == [c.data for c in first[:4]]  # a prefix
    assert sum(c.manipulated for c in first) == 5
    kinds = {c.kind for c in corpus_copymove.cases(20, seed=0) if c.manipulated}
    assert {"copy_move_translate", "copy_move_rotate", "copy_move_scale", "copy_move_rotate_scale"} <= kinds
    for case in first:
        h, w = media.decode(case.data).shape[:2]
        if not case.manipulated:
            assert case.kind == "real" and case.mask is None and case.source_mask is None
            continue
        assert case.mask.shape == case.source_mask.shape == (h, w)
        assert case.mask.any() and case.source_mask.any()
        assert not (case.mask & case.source_mask).any()  # the copy does not cover its source
        assert 0.005 < case.mask.mean() < 0.15


# --- ground truth --------------------------------------------------------------------------


def test_clean_photos_are_not_flagged(corpus_results):
    real = [(c.name, round(s, 3)) for c, s, _, _ in corpus_results if not c.manipulated]
    flagged = [r for r in real if r[1] >= 0.5]
    assert len(flagged) <= 1, f"clean photos flagged: {flagged}"  # measured 0 of 20


def test_copies_are_found_where_they_are(corpus_results):
    copies = [(c.name, round(s, 3), round(v, 3)) for c, s, v, _ in corpus_results if c.manipulated]
    localised = [x for x in copies if x[2] >= 0.5]
    missed = [x for x in copies if x[2] < 0.5]
    # Measured 16 of 20; the misses are copies inside natural repetition (brick walls, the
    # rocket's lattice tower) and a JPEG-compressed flat patch.
    assert len(localised) >= 14, f"{len(localised)}/20 localised (IoU >= 0.5); missed: {missed}"
    flagged = [x for x in copies if x[1] >= 0.5]
    assert all(x[2] > 0.2 for x in flagged), f"a flagged image whose map misses the copy: {flagged}"


def test_map_marks_both_source_and_target(corpus_results):
    for case, score, _, heat in corpus_results:
        if case.manipulated and score >= 0.5:
            assert heat[case.source_mask].mean() > 0.5, case.name
            assert heat[case.mask].mean() > 0.5, case.name
        if not case.manipulated and score < 0.5:
            assert heat.max() == 0.0, case.name  # nothing verified, nothing drawn


def test_rotated_and_scaled_copy_is_described(detector):
    """The astronaut's face, rotated 30 degrees and enlarged 1.2x onto her sleeve, saved as JPEG q90."""
    import cv2

    photo = media.photo("astronaut")
    h, w = photo.shape[:2]
    source = np.zeros((h, w), np.uint8)
    cv2.ellipse(source, (225, 115), (42, 52), 0, 0, 360, 1, -1)
    matrix = cv2.getRotationMatrix2D((225, 115), 30, 1.2)
    matrix[:, 2] += (-130, 250)
    warped = cv2.warpAffine(photo, matrix, (w, h), flags=cv2.INTER_LINEAR)
    target = cv2.warpAffine(source, matrix, (w, h), flags=cv2.INTER_NEAREST) > 0
    edited = photo.copy()
    edited[target] = warped[target]
    result = analyze(detector, media.encode(edited, "JPEG", quality=90))

    assert result.score >= 0.5
    (clone,) = result.details["clones"]
    assert abs(abs(clone["angle_deg"]) - 30) < 2.0
    assert abs(max(clone["scale"], 1 / clone["scale"]) - 1.2) < 0.03
    (finding,) = result.findings
    assert finding.code == "copy_move_region"
    assert "appears twice" in finding.message and "rotated 30 degrees" in finding.message
    assert "scaled 1.2" in finding.message
    heat = result.evidence[0].array
    assert iou(heat >= 0.5, target | source.astype(bool)) >= 0.5
    picture = next(e for e in result.evidence if e.kind == "image")
    assert picture.array.ndim == 3 and picture.array.dtype == np.uint8


def test_low_texture_copy_is_found_by_blocks(detector):
    """A patch of the astronaut photo's right-hand background, shifted down 200 px: too little
    texture for enough keypoint matches; block matching finds it."""
    photo = media.photo("astronaut").copy()
    photo[230:320, 400:490] = photo[30:120, 400:490]
    result = analyze(detector, media.encode(photo, "PNG"))
    assert result.score >= 0.5
    (clone,) = result.details["clones"]
    assert clone["method"] == "blocks"
    assert clone["shift_px"] == pytest.approx([0.0, 200.0], abs=1.0)
    truth = np.zeros(photo.shape[:2], bool)
    truth[30:120, 400:490] = truth[230:320, 400:490] = True
    assert iou(result.evidence[0].array >= 0.5, truth) >= 0.5


def test_repeated_structure_alone_is_not_a_copy(detector):
    """Whole photos full of natural repetition: a brick wall, a tray of coins, a lattice tower."""
    for name in ("brick", "coins", "rocket"):
        result = analyze(detector, media.encode(media.photo(name), "PNG"), name)
        assert result.score < 0.5, (name, result.score, result.details["clones"])


def test_large_image_is_analysed_at_working_resolution(detector):
    """12 MP: reduced 5x per side for matching, the map comes back at full size."""
    case = next(c for c in corpus_copymove.cases(4, seed=0) if c.kind == "copy_move_translate")
    big = Image.fromarray(media.decode(case.data)).resize((4000, 3000), Image.LANCZOS)
    truth = np.asarray(Image.fromarray(case.mask | case.source_mask).resize((4000, 3000), Image.NEAREST))
    result = analyze(detector, media.encode(big, "JPEG", quality=90))
    assert result.details["working_factor"] == 5
    heat = result.evidence[0].array
    assert heat.shape == (3000, 4000) and heat.dtype == np.float32
    assert result.score >= 0.5 and iou(heat >= 0.5, truth) >= 0.5


def test_too_small_to_match_abstains(detector):
    result = analyze(detector, media.encode(media.photo("coffee")[:50, :300], "PNG"))
    assert result.score is None and "smaller than" in result.details["reason"]


def test_unknown_features_are_refused():
    with pytest.raises(ValueError, match="features"):
        CopyMoveDetector(features="surf")
