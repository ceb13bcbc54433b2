"""Face-manipulation generators of the training corpus: face swap and self-blended images.

The contract for both: the fake has the target's shape; pixels outside the mask are exactly
the target's; inside they changed; the mask covers the face's eyes, nose and mouth and stays
near the face; the same seed gives the same fake and another seed another; no face, no fake.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from deeptrawl.corpus.fakes import Fake, faceswap, sbi
from deeptrawl.faces import Face, detect_faces
from deeptrawl.samples.media import rgb_photo


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return rgb_photo("astronaut")


@pytest.fixture(scope="module")
def face(astronaut) -> Face:
    return detect_faces(astronaut)[0]


@pytest.fixture(scope="module")
def grace_hopper() -> np.ndarray:
    matplotlib_cbook = pytest.importorskip("matplotlib.cbook")
    path = matplotlib_cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module")
def grace_face(grace_hopper) -> Face:
    return detect_faces(grace_hopper)[0]


def check_contract(fake: Fake | None, target: np.ndarray, face: Face, kind: str, min_change: float) -> None:
    assert fake is not None and fake.kind == kind
    assert fake.rgb.shape == target.shape and fake.rgb.dtype == np.uint8
    assert fake.mask.shape == target.shape[:2] and fake.mask.dtype == bool
    np.testing.assert_array_equal(fake.rgb[~fake.mask], target[~fake.mask])
    change = np.abs(fake.rgb.astype(np.int16) - target)[fake.mask].mean()
    assert change > min_change
    x, y = np.round(face.landmarks).astype(int).T
    assert fake.mask[y, x].all()
    # Near the face: inside its box grown by half its size on every side.
    x0, y0, x1, y1 = face.box
    grow = 0.5 * max(x1 - x0, y1 - y0)
    ys, xs = np.nonzero(fake.mask)
    assert xs.min() > x0 - grow and xs.max() < x1 + grow and ys.min() > y0 - grow and ys.max() < y1 + grow


@pytest.mark.parametrize("poisson", [1.0, 0.0], ids=["seamless_clone", "alpha_blend"])
def test_faceswap_contract(astronaut, face, grace_hopper, monkeypatch, poisson):
    monkeypatch.setattr(faceswap, "POISSON_PROBABILITY", poisson)
    fake = faceswap.make(astronaut, grace_hopper, np.random.default_rng(0))
    # A different face: the mean change inside the mask is large (measured 15-26 levels).
    check_contract(fake, astronaut, face, "faceswap", min_change=8)


def test_faceswap_is_deterministic_per_seed_and_takes_given_faces(astronaut, face, grace_hopper, grace_face):
    faces = {"target_face": face, "donor_face": grace_face}
    a = faceswap.make(astronaut, grace_hopper, np.random.default_rng(3))
    b = faceswap.make(astronaut, grace_hopper, np.random.default_rng(3), **faces)
    np.testing.assert_array_equal(a.rgb, b.rgb)
    np.testing.assert_array_equal(a.mask, b.mask)
    other = faceswap.make(astronaut, grace_hopper, np.random.default_rng(4), **faces)
    assert not np.array_equal(a.rgb, other.rgb)


@pytest.mark.parametrize("poisson", [1.0, 0.0], ids=["seamless_clone", "alpha_blend"])
def test_faces_cut_by_the_image_edge(astronaut, face, grace_hopper, grace_face, monkeypatch, poisson):
    monkeypatch.setattr(faceswap, "POISSON_PROBABILITY", poisson)
    shift = np.float32([-200, -100])  # the face half past the top-left corner
    box = tuple(float(v) for v in np.asarray(face.box) + np.tile(shift, 2))
    moved = Face(box=box, score=face.score, landmarks=face.landmarks + shift)
    for fake in (
        faceswap.make(astronaut, grace_hopper, np.random.default_rng(0), target_face=moved, donor_face=grace_face),
        sbi.make(astronaut, np.random.default_rng(0), face=moved),
    ):
        assert fake is not None and fake.mask[:4].any() and not fake.mask[-1].any()
        np.testing.assert_array_equal(fake.rgb[~fake.mask], astronaut[~fake.mask])
    gone = Face(box=tuple(v + 600 for v in face.box), score=face.score, landmarks=face.landmarks + 600)
    rng = np.random.default_rng(0)
    assert faceswap.make(astronaut, grace_hopper, rng, target_face=gone, donor_face=grace_face) is None
    assert sbi.make(astronaut, np.random.default_rng(0), face=gone) is None


def test_faceswap_needs_a_face_in_both(astronaut):
    coffee = rgb_photo("coffee")
    assert faceswap.make(astronaut, coffee, np.random.default_rng(0)) is None
    assert faceswap.make(coffee, astronaut, np.random.default_rng(0)) is None


@pytest.mark.parametrize("seed", range(4))
def test_sbi_contract(astronaut, face, seed):
    fake = sbi.make(astronaut, np.random.default_rng(seed))
    # Self-blending is subtle by design (measured 3.7-17 levels over seeds 0-5).
    check_contract(fake, astronaut, face, "sbi", min_change=2)


def test_sbi_is_deterministic_per_seed_and_takes_a_given_face(astronaut, face):
    a, b = (sbi.make(astronaut, np.random.default_rng(5)) for _ in range(2))
    np.testing.assert_array_equal(a.rgb, b.rgb)
    np.testing.assert_array_equal(a.mask, b.mask)
    given = sbi.make(astronaut, np.random.default_rng(5), face=face)
    np.testing.assert_array_equal(a.rgb, given.rgb)
    other = sbi.make(astronaut, np.random.default_rng(6))
    assert not np.array_equal(a.rgb, other.rgb)


def test_sbi_needs_a_face():
    assert sbi.make(rgb_photo("coffee"), np.random.default_rng(0)) is None
