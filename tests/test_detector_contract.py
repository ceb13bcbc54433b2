"""The detector contract, stated once and run over every registered detector.

Whatever ``deeptrawl.detectors.available()`` lists must: give one result per input, in
order; give the same answer twice and the same answer batched or alone; turn any input it
accepts into a result (a score in [0, 1], an abstention, or a typed ``MediaError``) and
never raise; keep details JSON-serialisable and evidence well-formed; and turn its own
bugs into ``detector_failed`` results without losing the rest of the batch.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

import deeptrawl.detectors as detectors
from deeptrawl.config import Limits
from deeptrawl.detectors import Detector, DetectorResult
from deeptrawl.detectors.registry import create, detector_set_version, get, register
from deeptrawl.errors import ConfigError, CorruptMedia, DetectorFailed, MediaError
from deeptrawl.media import MediaItem, MediaKind, load_item
from deeptrawl.samples import media

NAMES = detectors.available()


def _inputs() -> dict[str, bytes]:
    """Encoded test inputs, by label: every pixel layout a detector may be handed."""
    photo = media.photo("astronaut")
    crop = Image.fromarray(photo[64:320, 96:416])  # 256x320 real photo
    ramp16 = (np.add.outer(np.arange(200), np.arange(300)) * 100).astype(np.uint16)
    return {
        "rgb_jpeg": media.encode(crop, "JPEG", quality=85),
        "rgb_png": media.encode(media.photo("coffee"), "PNG"),
        "gray_L": media.encode(crop.convert("L"), "PNG"),
        "rgba": media.encode(crop.convert("RGBA"), "PNG"),
        "i16_png": media.encode(Image.fromarray(ramp16), "PNG"),
        "palette_P": media.encode(crop.convert("P"), "PNG"),
        "cmyk_jpeg": media.encode(crop.convert("CMYK"), "JPEG"),
        "one_bit": media.encode(crop.convert("1"), "PNG"),
        "tiny_8x8": media.encode(photo[:8, :8], "PNG"),
        "one_pixel": media.encode(photo[:1, :1], "PNG"),
        "flat_gray": media.encode(np.full((128, 128, 3), 128, np.uint8), "PNG"),
        "large_4000x3000": media.encode(Image.fromarray(photo).resize((4000, 3000)), "JPEG", quality=85),
        "video_mp4": media.mp4_clip(frames=6),
        "audio_wav": media.wav_tone(seconds=0.2),
    }


@pytest.fixture(scope="module")
def inputs() -> dict[str, bytes]:
    return _inputs()


def load(inputs: dict[str, bytes], label: str) -> MediaItem:
    """A fresh item each call, so no detector can lean on state cached on the item."""
    return load_item(label, inputs[label], Limits())


@pytest.fixture(scope="module", params=NAMES)
def detector(request) -> Detector:
    det = get(request.param)()
    det.setup()
    return det


def accepted(det: Detector, inputs: dict[str, bytes], labels) -> list[str]:
    return [label for label in labels if det.accepts(load(inputs, label))]


SMALL = ["rgb_jpeg", "rgb_png", "gray_L", "rgba", "i16_png", "palette_P", "tiny_8x8", "one_pixel"]


def _close(a, b, tol: float) -> bool:
    """Equal, up to ``tol`` on floats anywhere inside dicts and lists."""
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) <= tol
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k], tol) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_close(x, y, tol) for x, y in zip(a, b))
    return a == b


def assert_same(a: DetectorResult, b: DetectorResult, what: str, tol: float = 0.0) -> None:
    """Identical results; ``tol`` > 0 for networks, whose float sums depend on the batch
    size the kernels see (a few 1e-9 here), as in any batched inference server."""
    assert (a.score is None) == (b.score is None) and _close(a.score, b.score, tol), what
    assert [(f.code, f.decisive) for f in a.findings] == [(f.code, f.decisive) for f in b.findings], what
    assert _close([f.score for f in a.findings], [f.score for f in b.findings], tol), what
    assert _close(a.details, b.details, max(tol, 1e-4) if tol else 0.0), what  # details are rounded for JSON
    assert [(e.name, e.kind, e.caption) for e in a.evidence] == [(e.name, e.kind, e.caption) for e in b.evidence], what
    for ea, eb in zip(a.evidence, b.evidence):
        same = np.allclose(ea.array, eb.array, atol=1e-4) if tol else np.array_equal(ea.array, eb.array)
        assert same, f"{what}: evidence {ea.name} differs"
    assert type(a.error) is type(b.error), what
    assert (a.error and a.error.message) == (b.error and b.error.message), what


def assert_well_formed(result: DetectorResult, item: MediaItem, what: str) -> None:
    assert isinstance(result, DetectorResult), what
    if result.error is not None:
        assert isinstance(result.error, MediaError), f"{what}: untyped error {result.error!r}"
        assert result.error.code and result.error.message, what
        return
    if result.score is not None:
        # Written so that NaN fails too.
        assert isinstance(result.score, float) and 0.0 <= result.score <= 1.0, f"{what}: score {result.score}"
    for f in result.findings:
        assert f.code and f.message, what
        assert 0.0 <= f.score <= 1.0, f"{what}: finding {f.code} score {f.score}"
    json.dumps(result.details)  # details go into the report as JSON, with no custom encoder
    for ev in result.evidence:
        arr = ev.array
        if ev.kind == "heatmap":
            assert item.image is not None, what
            size = (item.image.height, item.image.width)
            if ev.cell > 1:  # a block map covering the image
                assert ev.size == size, f"{what}: heatmap of a {ev.size} image"
                assert arr.shape == tuple(-(-n // ev.cell) for n in size), f"{what}: block map {arr.shape}"
            assert ev.pixels().shape == size, f"{what}: heatmap {ev.pixels().shape}"
            assert np.issubdtype(arr.dtype, np.floating), f"{what}: heatmap dtype {arr.dtype}"
            assert np.isfinite(arr).all() and arr.min() >= 0.0 and arr.max() <= 1.0, f"{what}: heatmap range"
        else:
            assert ev.kind == "image", f"{what}: unknown evidence kind {ev.kind}"
            assert arr.ndim == 3 and arr.shape[2] == 3 and arr.dtype == np.uint8, f"{what}: image {arr.shape}"


# --- the contract -----------------------------------------------------------------------


def test_every_detector_declares_itself():
    assert {"ela", "metadata"} <= set(NAMES)
    for name in NAMES:
        cls = get(name)
        assert cls.name == name
        assert isinstance(cls.version, str) and cls.version
        assert cls.media_kinds and all(isinstance(k, MediaKind) for k in cls.media_kinds)


def test_accepts_follows_media_kinds(detector, inputs):
    for label in ("rgb_jpeg", "video_mp4", "audio_wav"):
        item = load(inputs, label)
        assert detector.accepts(item) == (item.media_type.kind in detector.media_kinds)


def test_any_accepted_input_gives_a_result(detector, inputs):
    labels = accepted(detector, inputs, inputs)
    assert labels, f"{detector.name} accepts none of the test inputs"
    for label in labels:
        item = load(inputs, label)
        results = detector.analyze([item])
        assert len(results) == 1, label
        assert_well_formed(results[0], item, f"{detector.name} on {label}")


def test_deterministic(detector, inputs):
    other = get(detector.name)()
    other.setup()
    for label in accepted(detector, inputs, SMALL):
        first = detector.analyze([load(inputs, label)])[0]
        again = detector.analyze([load(inputs, label)])[0]
        fresh = other.analyze([load(inputs, label)])[0]
        assert_same(first, again, f"{detector.name} on {label}, run twice")
        assert_same(first, fresh, f"{detector.name} on {label}, new instance")


def test_batch_equals_single_in_order(detector, inputs):
    labels = accepted(detector, inputs, SMALL)
    batch = detector.analyze([load(inputs, label) for label in labels])
    assert len(batch) == len(labels)
    tol = 1e-6 if detector.batched else 0.0
    for label, result in zip(labels, batch):
        assert_same(result, detector.analyze([load(inputs, label)])[0], f"{detector.name}: {label} batched vs alone", tol)
    # Order follows the input, not e.g. sorting by size.
    backwards = detector.analyze([load(inputs, label) for label in reversed(labels)])
    for result, expected in zip(backwards, reversed(batch)):
        assert_same(result, expected, f"{detector.name}: reversed batch", tol)


def test_empty_batch(detector):
    assert detector.analyze([]) == []


def test_a_detector_bug_becomes_an_error_result(detector, inputs, monkeypatch):
    if type(detector).analyze is not Detector.analyze:
        pytest.skip(f"{detector.name} overrides analyze(); inject its failure through its own batch path")
    labels = accepted(detector, inputs, ["rgb_jpeg", "gray_L", "rgba"])
    expected = [detector.analyze([load(inputs, label)])[0] for label in labels]
    original = type(detector).analyze_one

    def buggy(self, item):
        if item.uri == "gray_L":
            raise ValueError("injected bug")
        return original(self, item)

    monkeypatch.setattr(type(detector), "analyze_one", buggy)
    results = detector.analyze([load(inputs, label) for label in labels])
    assert len(results) == 3
    bad = results[1]
    assert bad.score is None and isinstance(bad.error, DetectorFailed)
    assert bad.error.code == "detector_failed"
    assert detector.name in bad.error.message and "ValueError" in bad.error.message
    assert_same(results[0], expected[0], "item before the failure")
    assert_same(results[2], expected[2], "item after the failure")


def test_a_media_error_keeps_its_type(detector, inputs, monkeypatch):
    if type(detector).analyze is not Detector.analyze:
        pytest.skip(f"{detector.name} overrides analyze()")

    def corrupt(self, item):
        raise CorruptMedia("pixels unreadable")

    monkeypatch.setattr(type(detector), "analyze_one", corrupt)
    (result,) = detector.analyze([load(inputs, "rgb_jpeg")])
    assert isinstance(result.error, CorruptMedia) and result.error.code == "corrupt"


# --- the registry -----------------------------------------------------------------------


def test_unknown_detector_lists_the_available_ones():
    with pytest.raises(ConfigError) as info:
        get("no-such-detector")
    assert "no-such-detector" in info.value.message
    for name in NAMES:
        assert name in info.value.message
    with pytest.raises(ConfigError):
        create(["ela", "no-such-detector"])


def test_create_builds_all_or_the_named():
    assert [d.name for d in create()] == NAMES
    assert [d.name for d in create(["ela"])] == ["ela"]


def test_a_name_cannot_be_registered_twice():
    class Impostor(Detector):
        name = "ela"
        version = "9"
        media_kinds = frozenset({MediaKind.IMAGE})

    with pytest.raises(ValueError, match="twice"):
        register(Impostor)
    assert get("ela") is not Impostor


def _fake(name: str, version: str) -> Detector:
    cls = type(f"Fake_{name}", (Detector,), {"name": name, "version": version, "media_kinds": frozenset()})
    return cls()


def test_detector_set_version():
    a1, b1 = _fake("a", "1.0"), _fake("b", "1.0")
    base = detector_set_version([a1, b1], "rule-v1")
    assert base.startswith("ds-")
    assert detector_set_version([b1, a1], "rule-v1") == base  # order-independent
    assert detector_set_version([a1, b1], "rule-v1") == base  # stable
    assert detector_set_version([_fake("a", "1.1"), b1], "rule-v1") != base  # a detector version
    assert detector_set_version([a1, b1], "rule-v2") != base  # the rule version
    assert detector_set_version([a1], "rule-v1") != base  # the set itself
    assert detector_set_version([a1, _fake("c", "1.0")], "rule-v1") != base

