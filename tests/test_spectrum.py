"""Spectral detector on ground truth made by construction.

Upsampled vs original: ``corpus_spectrum.cases`` at a seed the score model was not fitted
on (it was fitted on seeds 0-3), so these are held-out numbers. Clean set: whole shipped
photos re-saved as PNG and JPEG q95-q60, which must not be flagged; x2 enlargements of
the same photos, which must be.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from deeptrawl.config import Limits
from deeptrawl.detectors import spectrum
from deeptrawl.detectors.spectrum import FEATURE_NAMES, SpectrumDetector, spectral_features
from deeptrawl.media import load_item
from deeptrawl.metrics import roc_auc
from deeptrawl.samples import corpus_spectrum, media

HELD_OUT_SEED = 7
CLEAN_PHOTOS = ("astronaut", "coffee", "chelsea", "hubble_deep_field", "motorcycle_left", "camera", "coins", "brick")
RESAVES = ("png", "q95", "q90", "q75", "q60")


@pytest.fixture(scope="module")
def detector() -> SpectrumDetector:
    det = SpectrumDetector()
    det.setup()
    return det


def _run(det: SpectrumDetector, data: bytes, uri: str = "x"):
    (result,) = det.analyze([load_item(uri, data, Limits())])
    assert result.error is None, result.error
    return result


def _save(pixels: np.ndarray, how: str) -> bytes:
    return media.encode(pixels, "PNG") if how == "png" else media.encode(pixels, "JPEG", quality=int(how[1:]))


@pytest.fixture(scope="module")
def corpus_scores(detector):
    """kind -> list of scores over a held-out corpus seed."""
    out: dict[str, list[float]] = {}
    for case in corpus_spectrum.cases(120, seed=HELD_OUT_SEED):
        out.setdefault(case.kind, []).append(_run(detector, case.data, case.name).score)
    return out


def auc(positive: np.ndarray, negative: np.ndarray) -> float:
    return roc_auc([True] * len(positive) + [False] * len(negative), np.r_[positive, negative])


def _by_prefix(scores: dict[str, list[float]], prefix: str) -> np.ndarray:
    return np.array([s for kind, values in scores.items() if kind.startswith(prefix) for s in values])


# --- features ----------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(64, 64), (100, 700), (300, 451), (1000, 1200)])
def test_feature_vector_has_a_fixed_length_at_any_size(shape):
    rgb = media.photo("astronaut")
    rgb = np.asarray(Image.fromarray(rgb).resize(shape[::-1], Image.LANCZOS))
    vec = spectral_features(rgb)
    assert vec.dtype == np.float32 and vec.shape == (len(FEATURE_NAMES),)
    assert np.isfinite(vec).all()
    assert len(set(FEATURE_NAMES)) == len(FEATURE_NAMES)


def test_features_refuse_images_smaller_than_a_tile():
    with pytest.raises(ValueError):
        spectral_features(np.zeros((40, 400, 3), np.uint8))


def test_coherence_features_are_about_zero_for_a_photo_and_high_for_its_enlargement():
    photo = media.photo("astronaut")
    half = np.asarray(Image.fromarray(photo).resize((256, 256), Image.LANCZOS))
    enlarged = np.asarray(Image.fromarray(half).resize((512, 512), Image.BILINEAR))
    real = dict(zip(FEATURE_NAMES, spectral_features(photo)))
    up = dict(zip(FEATURE_NAMES, spectral_features(enlarged)))
    for axis in ("x", "y"):
        assert real[f"cyc_{axis}_half_central"] < 0.15
        assert up[f"cyc_{axis}_half_central"] > 0.8
        # x2 upsampling leaves nothing at cycle (1/2, 1/2); that is the demosaicing signature.
        assert up[f"cyc_{axis}_half_diagonal"] < 0.05


# --- ground truth ------------------------------------------------------------------------


@pytest.mark.parametrize("method", corpus_spectrum.METHODS)
def test_upsampled_vs_original_auc_per_method(corpus_scores, method):
    real = _by_prefix(corpus_scores, "real")
    up = _by_prefix(corpus_scores, f"upsample_{method}")
    assert len(up) >= 10 and len(real) >= 50
    # Issue #3's target is nearest, bilinear and transposed convolution; bicubic is held to it too.
    assert auc(up, real) >= 0.95, f"{method}: AUC {auc(up, real):.3f}"


def test_originals_are_rarely_flagged(corpus_scores):
    real = _by_prefix(corpus_scores, "real")
    fpr = float(np.mean(real >= 0.5))
    # Held-out seeds 100-103 measure 5% (camera-demosaiced originals account for most of it).
    assert fpr <= 0.10, {k: np.round(v, 2).tolist() for k, v in corpus_scores.items() if k.startswith("real")}


def test_recompressed_photos_are_not_flagged(detector):
    scores = {
        (name, how): _run(detector, _save(corpus_spectrum.photo(name), how)).score
        for name in CLEAN_PHOTOS
        for how in RESAVES
    }
    flagged = {k: round(v, 3) for k, v in scores.items() if v >= 0.5}
    assert not flagged, flagged


@pytest.mark.parametrize("method", ["nearest", "bilinear", "tconv"])
def test_enlarged_photos_are_flagged(detector, method):
    rng = np.random.default_rng(0)
    for name in ("astronaut", "coffee", "motorcycle_left"):
        photo = corpus_spectrum.photo(name)
        h, w = photo.shape[0] // 2, photo.shape[1] // 2
        half = np.asarray(Image.fromarray(photo).resize((w, h), Image.LANCZOS))
        if method == "tconv":
            big = corpus_spectrum.transposed_conv2x(half, rng)
        else:
            resample = Image.NEAREST if method == "nearest" else Image.BILINEAR
            big = np.asarray(Image.fromarray(half).resize((2 * w, 2 * h), resample))
        for how in ("png", "q90"):
            result = _run(detector, _save(big, how))
            assert result.score >= 0.5, (name, method, how, result.score)
            assert "spectrum_upsampling_x2" in [f.code for f in result.findings]


def test_scikit_image_moon_is_itself_an_enlargement(detector):
    # Not a planted case: the shipped "moon" photo has every pixel pair locked at cycle 1/2.
    result = _run(detector, media.encode(media.photo("moon"), "PNG"))
    assert result.score >= 0.9


def test_checkerboard_is_reported(detector):
    half = np.asarray(Image.fromarray(media.photo("coffee")).resize((300, 200), Image.LANCZOS))
    big = corpus_spectrum.transposed_conv2x(half, np.random.default_rng(3), jitter=(0.04, 0.04))
    result = _run(detector, media.encode(big, "PNG"))
    codes = [f.code for f in result.findings]
    assert codes == ["spectrum_upsampling_x2", "spectrum_checkerboard_peak"]
    assert result.details["features"]["peak_h2"] >= spectrum.CHECKERBOARD_PEAK


# --- result shape -------------------------------------------------------------------------


def test_result_carries_features_and_a_spectrum_picture(detector):
    result = _run(detector, media.encode(media.photo("chelsea"), "JPEG", quality=90))
    assert set(result.details["features"]) == set(FEATURE_NAMES)
    assert result.details["feature_version"] == spectrum.FEATURE_VERSION
    json.dumps(result.details)
    (evidence,) = result.evidence
    assert evidence.kind == "image" and evidence.array.dtype == np.uint8
    assert evidence.array.ndim == 3 and evidence.array.shape[2] == 3
    # Three panels drawn: not a blank canvas.
    assert evidence.array.std() > 20


def test_abstains_on_tiny_and_flat_images(detector):
    tiny = _run(detector, media.encode(media.photo("coffee")[:40, :300], "PNG"))
    assert tiny.score is None and "smaller than" in tiny.details["reason"]
    flat = _run(detector, media.encode(np.full((200, 200, 3), 90, np.uint8), "PNG"))
    assert flat.score is None and "flat" in flat.details["reason"]


def test_tiles_stay_on_the_grid_and_inside_the_image():
    for h, w in [(3000, 4000), (872, 1000), (300, 451), (64, 64), (100, 700)]:
        size, tiles = spectrum.choose_tiles(h, w)
        assert size % spectrum.ALIGN == 0 and 1 <= len(tiles) <= spectrum.MAX_TILES
        for y, x in tiles:
            assert y % spectrum.ALIGN == 0 and x % spectrum.ALIGN == 0
            assert 0 <= y <= h - size and 0 <= x <= w - size


# --- the corpus ---------------------------------------------------------------------------


def test_corpus_is_balanced_and_deterministic():
    first = corpus_spectrum.cases(24, seed=5)
    again = corpus_spectrum.cases(24, seed=5)
    assert [c.data for c in first] == [c.data for c in again]
    assert sum(c.manipulated for c in first) == 12
    for case in first:
        assert case.manipulated == case.kind.startswith("upsample_")
        image = Image.open(io.BytesIO(case.data))
        assert image.width == image.height and image.width >= 256


def test_transposed_conv_without_jitter_is_bilinear_upsampling():
    # Same alignment as Pillow's x2 bilinear resize: only the jitter makes the checkerboard.
    small = np.random.default_rng(0).integers(0, 256, (24, 24, 3), dtype=np.uint8)
    tconv = corpus_spectrum.transposed_conv2x(small, np.random.default_rng(0), jitter=(0.0, 0.0)).astype(int)
    pil = np.asarray(Image.fromarray(small).resize((48, 48), Image.BILINEAR)).astype(int)
    assert np.abs(tconv - pil)[2:-2, 2:-2].max() <= 1
