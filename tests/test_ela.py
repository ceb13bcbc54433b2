"""ELA on real photographs: clean re-saves stay low, splices stand out where they were pasted.

Clean set: scikit-image photos re-compressed uniformly (JPEG q60/q75/q90, and PNG),
now including the ``rocket`` photo, which ELA 1.0 flagged (~0.6-0.9 as PNG or q95): the
aligned-vs-shifted calibration of 1.1 removed that false positive, and the tests keep it
removed. A JPEG last saved at q70 or below is too coarse for ELA, which abstains; an
abstention is not a flag.

Splices: every ordered pair of the clean photos through ``media.splice`` (an uncompressed
donor rectangle pasted into a q70 JPEG background, saved at q95), so no pair is chosen for
a good result; and the ELA corpus (``deeptrawl.samples.corpus_ela``: raw and JPEG donors,
JPEG and PNG final saves, rectangles and ellipses) for detection and localisation rates.

The method's mechanics are checked directly: quality estimation from quantisation tables,
the choice of at most three re-save qualities, OpenCV's greyscale round trip against
Pillow's, the claim that re-encoding grid-aligned luma tiles in a mosaic equals re-encoding
the whole image exactly, and that ELA (2.0) reads the luma plane only, so a JPEG decoded
without colour gives the same result.
"""

from __future__ import annotations

import io
import itertools

import numpy as np
import pytest
from PIL import Image

from deeptrawl.config import Limits
from deeptrawl.detectors import ela as ela_module
from deeptrawl.detectors.ela import ElaDetector, estimate_quality, resave_qualities
from deeptrawl.media import load_item
from deeptrawl.metrics import iou
from deeptrawl.samples import corpus_ela, media

CLEAN_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "retina")
RESAVES = ("q60", "q75", "q90", "png")
SPLICE_PHOTOS = ("astronaut", "coffee", "chelsea", "hubble_deep_field", "retina")
SPLICES = [(bg, donor, seed) for seed, (bg, donor) in enumerate(itertools.permutations(SPLICE_PHOTOS, 2))]


def _resave(photo: np.ndarray, how: str) -> bytes:
    return media.encode(photo, "PNG") if how == "png" else media.encode(photo, "JPEG", quality=int(how[1:]))


def _score(result) -> float:
    """An abstention is no evidence: 0 for the purpose of "flagged or not"."""
    assert result.error is None, result.error
    return 0.0 if result.score is None else result.score


@pytest.fixture(scope="module")
def ela() -> ElaDetector:
    detector = ElaDetector()
    detector.setup()
    return detector


@pytest.fixture(scope="module")
def photos() -> dict[str, np.ndarray]:
    return {name: media.photo(name) for name in CLEAN_PHOTOS}


@pytest.fixture(scope="module")
def clean(ela, photos):
    """(photo, resave) -> score (0 for an abstention)."""
    return {
        (name, how): _score(ela.analyze([load_item(f"{name}.{how}", _resave(photos[name], how), Limits())])[0])
        for name in CLEAN_PHOTOS
        for how in RESAVES
    }


@pytest.fixture(scope="module")
def spliced(ela, photos):
    """(bg, donor, seed) -> (score, mean heat inside the pasted mask, mean heat outside)."""
    out = {}
    for bg, donor, seed in SPLICES:
        data, mask = media.splice(photos[bg], photos[donor], seed=seed)
        result = ela.analyze([load_item(f"{bg}+{donor}", data, Limits())])[0]
        heat = result.evidence[0].pixels()
        assert heat.shape == mask.shape
        out[(bg, donor, seed)] = (_score(result), float(heat[mask].mean()), float(heat[~mask].mean()))
    return out


def _highest(scores: dict, n: int = 5) -> str:
    return ", ".join(f"{k}={v:.3f}" for k, v in sorted(scores.items(), key=lambda kv: -kv[1])[:n])


def test_clean_resaves_score_low(clean):
    high = {k: round(v, 3) for k, v in clean.items() if v >= 0.5}
    assert not high, f"clean photos flagged: {high}; highest: {_highest(clean)}"


def test_rocket_false_positive_is_gone(clean):
    # ELA 1.0 scored the rocket photo re-saved as PNG ~0.9 and as q95 ~0.6.
    for how in ("png", "q90"):
        assert clean[("rocket", how)] < 0.2, (how, clean[("rocket", how)])


def test_splices_are_flagged(spliced):
    scores = {k: v[0] for k, v in spliced.items()}
    flagged = [k for k, s in scores.items() if s >= 0.5]
    missed = {k: round(s, 3) for k, s in scores.items() if s < 0.5}
    assert len(flagged) >= 0.75 * len(scores), f"{len(flagged)}/{len(scores)} splices flagged; missed: {missed}"


def test_splices_score_clearly_above_clean(clean, spliced):
    clean_mean = float(np.mean(list(clean.values())))
    splice_mean = float(np.mean([v[0] for v in spliced.values()]))
    assert splice_mean - clean_mean >= 0.4, (
        f"mean splice {splice_mean:.3f} vs mean clean {clean_mean:.3f}; "
        f"highest clean: {_highest(clean, 3)}; lowest splices: {sorted((round(v[0], 3), k) for k, v in spliced.items())[:3]}"
    )


def test_heatmap_points_at_the_pasted_region(spliced):
    flagged = {k: v for k, v in spliced.items() if v[0] >= 0.5}
    assert flagged
    # Inside the pasted rectangle the heatmap must be well above the rest (at least 2x), not
    # merely a hair higher.
    weak = {k: (round(v[1], 3), round(v[2], 3)) for k, v in flagged.items() if not v[1] > 2 * v[2]}
    assert not weak, f"flagged splices whose heatmap does not single out the mask (inside, outside): {weak}"
    inside = np.mean([v[1] for v in flagged.values()])
    outside = np.mean([v[2] for v in flagged.values()])
    assert inside > 2 * outside, f"mean heat inside {inside:.3f}, outside {outside:.3f}"


def test_flagged_splice_explains_itself(ela, photos):
    data, _ = media.splice(photos["astronaut"], photos["coffee"], seed=0)
    result = ela.analyze([load_item("splice.jpg", data, Limits())])[0]
    assert result.score >= 0.5
    assert [f.code for f in result.findings] == ["ela_inconsistent_region"]
    assert result.details["anomalous_area"] > 0
    assert result.details["estimated_quality"] == 95 and result.details["standard_tables"] is True
    assert result.details["allowed_qualities"] == [50, 55, 60, 65, 70, 75, 80, 85, 90]
    assert result.details["qualities"] == [50, 70, 90]


def test_too_small_to_judge_abstains(ela, photos):
    tiny = media.encode(photos["coffee"][:48, :300], "PNG")
    result = ela.analyze([load_item("strip.png", tiny, Limits())])[0]
    assert result.score is None and result.error is None
    assert "smaller than" in result.details["reason"]


# --- uniformly re-compressed photos: the false-positive target ----------------------------


def test_uniformly_recompressed_photos_are_not_flagged(ela):
    """Issue #3: real photos re-compressed at q60-95 are not flagged (FPR <= 5%).

    7 photos x 8 qualities (60..95, step 5) = 56 random crops. q60-q70 abstain (too coarse
    to read); they count as not flagged, and the rate over the analysed ones is checked too.
    """
    rng = np.random.default_rng(2024)
    cache: dict = {}
    scores, abstained = {}, 0
    for name in corpus_ela.PHOTOS:
        for quality in range(60, 100, 5):
            crop = corpus_ela._crop(corpus_ela._photo(name, cache), rng, 0.6)
            result = ela.analyze([load_item(f"{name}-q{quality}", media.encode(crop, quality=quality), Limits())])[0]
            abstained += result.score is None
            scores[(name, quality)] = _score(result)
    assert len(scores) >= 40
    flagged = {k: round(v, 3) for k, v in scores.items() if v >= 0.5}
    assert len(flagged) <= 0.05 * len(scores), f"flagged {len(flagged)}/{len(scores)}: {flagged}"
    assert len(flagged) <= 0.05 * (len(scores) - abstained), f"flagged {flagged} of {len(scores) - abstained} analysed"
    assert abstained == 3 * len(corpus_ela.PHOTOS)  # q60, q65, q70


def test_coarse_last_save_abstains_with_a_reason(ela, photos):
    result = ela.analyze([load_item("q70.jpg", media.encode(photos["coffee"], quality=70), Limits())])[0]
    assert result.score is None and result.error is None
    assert result.details["estimated_quality"] == 70
    assert "quality ~70" in result.details["reason"]


# --- the ELA corpus: detection and localisation rates --------------------------------------


@pytest.fixture(scope="module")
def corpus_results(ela):
    """(case, result) for a seeded ELA corpus: 30 real, 30 spliced."""
    out = []
    for case in corpus_ela.cases(60, seed=3):
        out.append((case, ela.analyze([load_item(case.name, case.data, Limits())])[0]))
    return out


def test_corpus_is_balanced_and_deterministic():
    a, b = corpus_ela.cases(8, seed=5), corpus_ela.cases(8, seed=5)
    assert [c.name for c in a] == [c.name for c in b]
    assert all(x.data == y.data for x, y in zip(a, b))
    assert sum(c.manipulated for c in a) == 4
    for case in a:
        if case.manipulated:
            assert case.mask is not None and case.mask.dtype == bool and 0.02 < case.mask.mean() < 0.3
            assert case.kind in corpus_ela.SPLICE_KINDS
        else:
            assert case.mask is None and case.kind in ("real_jpeg", "real_png")


def test_corpus_splices_are_found_and_localised(corpus_results):
    """Measured on this seed (30 splices): ELA 2.0 93% flagged, IoU >= 0.3 on 97%, mean IoU
    0.64 (1.1: 93%, 80%, 0.51); the floors sit below that for codec-version slack."""
    splices = [(c, r) for c, r in corpus_results if c.manipulated]
    assert len(splices) >= 30
    flagged = [_score(r) >= 0.5 for _, r in splices]
    ious = [iou(r.evidence[0].pixels() >= 0.5, c.mask) for c, r in splices]
    located = [x >= 0.3 for x in ious]
    report = (
        f"flagged {np.mean(flagged):.2f}, IoU>=0.3 {np.mean(located):.2f}, mean IoU {np.mean(ious):.2f} "
        f"over {len(splices)}"
    )
    assert np.mean(flagged) >= 0.8, report
    assert np.mean(located) >= 0.7, report
    real = [_score(r) for c, r in corpus_results if not c.manipulated]
    assert np.mean(np.array(real) >= 0.5) <= 0.05, real


# --- mechanics ------------------------------------------------------------------------------


@pytest.mark.parametrize("quality", [10, 50, 60, 75, 85, 90, 95, 100])
def test_quality_estimate_from_standard_tables(quality, photos):
    image = Image.open(io.BytesIO(media.encode(photos["coffee"], quality=quality)))
    estimate = estimate_quality(image.quantization)
    assert estimate is not None and estimate.quality == quality and estimate.standard


def test_quality_estimate_from_nonstandard_tables(photos):
    # An encoder with its own tables: IJG q80 tables with every step nudged by one.
    base = ela_module.ijg_table(ela_module.IJG_LUMA, 80)
    luma = [int(v) + 1 for v in base]
    chroma = [int(v) + 1 for v in ela_module.ijg_table(ela_module.IJG_CHROMA, 80)]
    data = media.encode(photos["coffee"], qtables=[luma, chroma])
    estimate = estimate_quality(Image.open(io.BytesIO(data)).quantization)
    assert not estimate.standard and 74 <= estimate.quality <= 80
    assert estimate_quality(None) is None and estimate_quality({}) is None


def test_resave_qualities_stay_clear_of_the_own_quality():
    def qualities(q):
        return resave_qualities(ela_module.QualityEstimate(q, ela_module.ijg_scale(q), True))

    assert qualities(95) == (50, 55, 60, 65, 70, 75, 80, 85, 90)
    assert qualities(90) == (50, 55, 60, 65, 70, 75, 80)
    assert qualities(85) == (50, 55, 60, 65, 70)
    assert qualities(75) == (50,)
    assert qualities(70) == ()
    assert resave_qualities(None) == ela_module.CANDIDATE_QUALITIES
    for q in range(51, 101):
        for r in qualities(q):
            assert ela_module.ijg_scale(r) >= 2 * ela_module.ijg_scale(q) or q == 100


def test_at_most_three_qualities_spread_over_the_allowed_ones():
    allowed = (50, 55, 60, 65, 70, 75, 80, 85, 90)
    assert ela_module.chosen_qualities(allowed) == (50, 70, 90)
    assert ela_module.chosen_qualities(allowed[:7]) == (50, 65, 80)
    assert ela_module.chosen_qualities(allowed[:5]) == (50, 60, 70)
    assert ela_module.chosen_qualities(allowed[:4]) == (50, 60, 65)
    # "Several" qualities whenever at least two are allowed.
    assert ela_module.chosen_qualities((50, 55)) == (50, 55)
    assert ela_module.chosen_qualities((50,)) == (50,) and ela_module.chosen_qualities(()) == ()
    # The probed quality of an earlier compression replaces the inner pick nearest to it.
    assert ela_module.chosen_qualities(allowed, ghost=60) == (50, 60, 90)
    assert ela_module.chosen_qualities(allowed, ghost=85) == (50, 85, 90)
    assert ela_module.chosen_qualities(allowed, ghost=90) == (50, 70, 90)
    assert ela_module.chosen_qualities(allowed, ghost=None) == (50, 70, 90)


@pytest.mark.parametrize("earlier", [60, 65, 75])
def test_probe_finds_the_quality_of_an_earlier_compression(photos, earlier):
    """A photo saved at ``earlier`` and then losslessly (PNG): re-saving its luma at that
    quality reproduces the old quantiser, so the probe picks it."""
    rgb = np.asarray(Image.fromarray(photos["astronaut"]).resize((768, 768), Image.LANCZOS))
    once = media.decode(media.encode(rgb, quality=earlier))
    luma = load_item("p.png", media.encode(once, "PNG"), Limits()).luma
    assert ela_module.probe_quality(luma, ela_module.CANDIDATE_QUALITIES) == earlier
    # Three or fewer allowed qualities: nothing to choose, no probe.
    assert ela_module.probe_quality(luma, (50, 55, 60)) is None


def test_opencv_round_trip_matches_pillow(photos):
    """A 2-D array makes a one-component JPEG: the same pixels as Pillow saving mode "L"."""
    luma = np.ascontiguousarray(np.asarray(Image.fromarray(photos["chelsea"]).convert("L")))
    for quality in (50, 80):
        pillow = np.asarray(Image.open(io.BytesIO(media.encode(Image.fromarray(luma), quality=quality))))
        assert pillow.ndim == 2
        expected = np.abs(pillow.astype(int) - luma)
        assert np.array_equal(ela_module.resave_error(luma, quality), expected), quality


def test_tile_mosaic_reencodes_like_the_whole_image(photos):
    """Luma tiles with origins on multiples of 16, re-encoded side by side, give exactly the
    pixels that re-encoding the whole image gives, aligned and shifted: a greyscale JPEG has
    no chroma upsampling that would read the neighbouring tile (ELA 1.x, in colour, had to
    drop a 1-pixel ring at each tile border)."""
    rgb = np.asarray(Image.fromarray(photos["astronaut"]).resize((1024, 1024)))
    data = media.encode(rgb, quality=90)
    luma = load_item("a.jpg", data, Limits()).luma
    h, w = luma.shape
    layout = ela_module.Plan(((16, 32), (400, 512), (800, 96), (208, 880)), (128, 128), False, 4)
    tiled = ela_module.Sampler(luma, layout)
    whole = ela_module.Sampler(luma, ela_module.Plan(((0, 0),), (h, w), True, 1))
    tile, shift = 128, ela_module.SHIFT
    for quality in (50, 80):
        err_whole = ela_module.resave_error(whole.aligned, quality)
        err_whole_shifted = ela_module.resave_error(whole.shifted, quality)[shift : shift + h, shift : shift + w]
        err_tiles = ela_module.resave_error(tiled.aligned, quality)
        err_tiles_shifted = ela_module.resave_error(tiled.shifted, quality)
        gr, gc = tiled.grid
        side = tile + 2 * shift
        for k, (y, x) in enumerate(layout.origins):
            i, j = divmod(k, gc)
            a = err_tiles[i * tile : (i + 1) * tile, j * tile : (j + 1) * tile]
            assert np.array_equal(a, err_whole[y : y + tile, x : x + tile]), (quality, y, x)
            y0, x0 = i * side + shift, j * side + shift
            s = err_tiles_shifted[y0 : y0 + tile, x0 : x0 + tile]
            assert np.array_equal(s, err_whole_shifted[y : y + tile, x : x + tile]), (quality, y, x)
        # And so the block errors on the sampled blocks equal the whole image's.
        a_t, s_t = tiled.block_errors(quality)
        a_w, s_w = whole.block_errors(quality)
        assert np.array_equal(a_t[tiled.sampled], a_w[tiled.sampled])
        assert np.array_equal(s_t[tiled.sampled], s_w[tiled.sampled])


def test_reads_the_luma_plane_only(ela, photos):
    """ELA 2.0 declares ``pixels = "luma"`` and never decodes colour: a JPEG loaded without
    its colour planes gives exactly the result of a colour load, and its RGB is never made."""
    assert ElaDetector.pixels == "luma"
    data, _ = media.splice(photos["chelsea"], photos["coffee"], seed=2)
    colour = load_item("c.jpg", data, Limits())
    grey = load_item("g.jpg", data, Limits(), colour=False)
    a, b = ela.analyze([colour])[0], ela.analyze([grey])[0]
    assert a.score == b.score and a.details == b.details
    assert np.array_equal(a.evidence[0].array, b.evidence[0].array)
    assert colour._rgb is None and grey._rgb is None


def test_cost_stays_within_the_pixel_budget():
    """A 12 MP and a 5.4 MP photo cost the same few greyscale round trips: at most three
    qualities, sampled tiles within ``PIXEL_QUALITY_BUDGET`` (pixels x qualities)."""
    for h, w in ((3000, 4000), (1896, 2848), (864, 1152)):
        layout = ela_module.plan(h, w, 3)
        assert layout.analysed_pixels * 3 <= ela_module.PIXEL_QUALITY_BUDGET
        assert layout.analysed_pixels * 3 >= 0.8 * ela_module.PIXEL_QUALITY_BUDGET or layout.whole


def test_large_image_is_tile_sampled_and_still_localises(ela, photos):
    """A 2400x1800 splice is analysed on sampled tiles; the heatmap is full size and
    interpolated between tiles, and still finds the pasted region."""
    host = np.asarray(Image.fromarray(photos["coffee"]).resize((2400, 1800), Image.LANCZOS))
    donor = np.asarray(Image.fromarray(photos["astronaut"]).resize((1200, 1200), Image.LANCZOS))
    data, mask = media.splice(host, donor, seed=4, fraction=0.35, background_quality=75, final_quality=95)
    result = ela.analyze([load_item("big.jpg", data, Limits())])[0]
    assert result.details["mode"].endswith("tiles of 128px") and result.details["analysed_share"] < 0.5
    heat = result.evidence[0].pixels()
    assert heat.shape == mask.shape and heat.dtype == np.float32
    assert result.score >= 0.5, result.details
    assert iou(heat >= 0.5, mask) >= 0.3, (iou(heat >= 0.5, mask), result.details)
