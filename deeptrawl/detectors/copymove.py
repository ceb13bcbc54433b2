"""Copy-move (clone) detection: a part of the image repeated elsewhere in the same image.

Cloning hides an object (a patch of background stamped over it) or duplicates one. The
copy may be shifted, rotated and scaled, and the whole picture re-compressed after.

Method, in four steps:

1. **Candidates from keypoints.** ORB keypoints on the luma at a working resolution of
   at most ``KEYPOINT_PIXELS`` (an integer downscale, ~10 ms for 12 MP),
   matched against each other with the generalised 2-nearest-neighbour test (g2NN: a
   keypoint may have several copies; a neighbour counts while it is clearly nearer than
   the next one), skipping neighbours closer than ``MIN_SHIFT`` px in the image. The
   matched pairs are clustered by a sequential RANSAC over similarity transforms (our own,
   because a pair does not say which end is the original: a pair fits a transform taken
   either way round; samples are local and hypotheses are ranked by summed match quality).
2. **Candidates from blocks**, for low-texture regions where keypoints are scarce: all
   overlapping 8x8 blocks of a further-reduced image (``BLOCK_PIXELS``), described by
   their nine lowest DCT coefficients (by separable filtering, not per block), sorted
   lexicographically; neighbours in that order that agree vote for their shift vector; a
   shift with enough votes from blocks lying together is a translation candidate.
3. **Dense verification.** Each candidate transform is polished to sub-pixel accuracy
   (ECC, ``cv2.findTransformECC``, around the matched points); the image is warped by it
   and compared with itself by local zero-mean normalised correlation (ZNCC) in two
   detail bands (a mid band that survives resampling and JPEG, a fine band that carries
   noise-level detail only an actual copy shares). A pixel is evidence only if it
   correlates at the transform and *not* when the warp is nudged by 3 px: edges, ramps and
   stripes correlate with themselves moved along them, a true copy at one alignment only.
   The specific pixels connected to the matched points form the region's core, grown
   through correlating pixels; copy and original are that region and its pre-image.
4. **Decision.** A small logistic model (weights in ``MODEL``, fitted on the seeded
   corpus ``deeptrawl.samples.corpus_copymove``, seeds 1 and 2; seeds 0 and 1000 held out)
   turns each candidate's measurements into the probability that it is a copy: the share
   of the image in the specific core, its share correlating above 0.9, how specific the
   match is in each band, how much the region's two halves overlap (a periodic structure
   - a brick wall, a lattice tower - matches itself shifted by one period, and then the
   "original" and the "copy" overlap; a copy does not overlap its source), and whether many
   matches agree on a rotation or scaling (natural repetition keeps orientation and size).
   The image score is the highest candidate probability, shifted so that 0.5 is the
   decision point (p = 0.7).

Evidence: a heatmap with both copies of each verified clone (1 inside, soft edge), and
an image drawing the matched pairs over the working-resolution picture. Details list, for
each clone, the transform (full-resolution pixels), its rotation, scale and shift, and
both regions' bounding boxes; it cannot tell which of the two is the original, so they
are called "region A" and "region B".

Working resolution, and why: keypoints, blocks and correlation all live in the spatial
frequencies that survive downscaling, and a copied region keeps its share of the image at
any scale. An image is reduced by the smallest integer factor that brings it under
``KEYPOINT_PIXELS`` (12 MP: 5x per side, 800x600) for keypoints and the dense check, and
to ~0.1 MP for blocks; the map is brought back to full size only inside the regions found.
ORB rather than SIFT: on the corpus below both localise the same share of copies (77%
each, with the decision model fitted on ORB; SIFT better on shifts, worse on flat
copies), but SIFT costs 0.35 s at 12 MP on one core against ORB's 0.12 s.

Measured (corpus_copymove seed 1000, 300 images, not used for fitting; heatmap >= 0.5 vs
source | target): IoU >= 0.5 for 82% of shifts (34 cases), 76% of rotations (34), 79%
of scalings (33), 76% of rotation+scaling (33), 69% of flat-region copies (16); mean IoU
0.65 / 0.64 / 0.63 / 0.60 / 0.59. Clean photos flagged: 0 of 150 (brick wall, coins,
rocket lattice, fur included). Copies re-compressed as JPEG after the edit: 65%
localised, PNG 86%. Cost on one core for the 12 MP bench image: 0.12 s (0.010 s/MP), up
to ~0.18 s on a photo full of repetition (more candidates to verify); ~40% of it is the
3000x3000 descriptor distance matrix, a fixed cost per image.

Honest limits:

* Natural repetition is real repetition: rows of identical objects (coins from one die,
  windows, lattice towers, brick walls) and printed text (scikit-image's ``page`` scores
  0.8) or exactly periodic graphics (its ``checkerboard``) can score as clones; the
  overlap and rotation measurements remove most. The other side of it: a real copy
  inside such repetition (a brick pasted on a brick wall) is mostly missed.
* Copies of regions with little texture (sky, a wall) are found only while some detail
  survives: the flat copies above (PNG or JPEG q85-95, photos under 2 MP) 69%; a patch
  of scikit-image's almost uniform ``camera`` sky, not at all. In a 12 MP photo the block
  image keeps 1/120 of the pixels, so expect flat copies there to be missed (not
  measured). Nothing can tell a flat patch copied onto flat surroundings from flat
  surroundings.
* Regions smaller than ~0.1% of the image, copies mirrored (flipped) or warped other than
  by a similarity, and copies from another image (a splice) are out of scope.
* Blurred images (motion blur) give few keypoints and unspecific correlation.
* Which copy is the original is not determined.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from deeptrawl.detectors.base import Detector, DetectorResult, Evidence, Finding
from deeptrawl.detectors.registry import register
from deeptrawl.media.item import MediaItem
from deeptrawl.media.sniff import MediaKind

#: Smaller images carry too little structure to tell a clone from a coincidence.
MIN_SIDE = 64

# -- keypoints --------------------------------------------------------------------------
#: Working resolution (pixels) for keypoints and the dense check.
KEYPOINT_PIXELS = 600_000
MAX_KEYPOINTS = 3000
#: ORB's patch (pixels): smaller than the default 31 so that small copied regions still
#: hold whole patches (a patch reaching outside the copy gets another orientation).
ORB_PATCH = 19
#: g2NN: neighbours searched per keypoint, and the ratio a neighbour must beat the next by.
KNN = 8
G2NN_RATIO = {"orb": 0.8, "sift": 0.6}
ORB_MAX_DISTANCE = 80  # bits of 256: binary descriptors also need an absolute bound
#: Matched points closer than this (working pixels) are the same structure, not a copy.
MIN_SHIFT = 16
#: RANSAC: hypotheses per round, neighbours a sample's second pair is drawn from,
#: inlier tolerance (working pixels), fewest inliers, candidates kept, scale range.
RANSAC_HYPOTHESES = 600
RANSAC_NEIGHBOURS = 10
RANSAC_TOLERANCE = 4.0
MIN_INLIERS = 6
MAX_KEYPOINT_CLONES = 5
SCALE_RANGE = (0.5, 2.0)

# -- blocks -----------------------------------------------------------------------------
BLOCK_PIXELS = 100_000
BLOCK = 8
#: Low-frequency DCT coefficients (u, v) describing a block, mean first.
BLOCK_COEFFS = ((0, 0), (0, 1), (1, 0), (1, 1), (0, 2), (2, 0), (1, 2), (2, 1), (2, 2))
BLOCK_NEIGHBOURS = 4  # neighbours in sorted order compared with each block
BLOCK_TOLERANCE = 1.5  # grey levels, per coefficient
BLOCK_MIN_AC = 2.0  # blocks with less detail (grey levels) match anything: skipped
BLOCK_STEP = 2.0  # quantisation of the coefficients in the sort key
BLOCK_MIN_VOTES = 40
MAX_BLOCK_CLONES = 2

# -- dense verification -----------------------------------------------------------------
MID_BAND = (0.7, 3.0)  # difference of Gaussians (sigmas, working pixels)
FINE_BAND = 1.0  # image minus its Gaussian blur
FINE_FLOOR = 0.1  # variance floor (grey levels squared) of the fine-band correlation
ZNCC_WINDOW = 9
ZNCC_THRESHOLD = 0.6  # a core pixel correlates at least this much...
SPECIFICITY = 0.25  # ...and this much more than with the warp nudged by NUDGE px
NUDGE = 3
ZNCC_LOW = 0.5  # the region grows through pixels correlating this much...
GROW = 16  # ...at most this far (working pixels) from the core
EDGE_GROW = 2  # the correlation window erodes the region's border by about this much
ROI_MARGIN = 40
REFINE_MARGIN = 12
REFINE_MAX = 320
REFINE_MAX_MOVE = 6.0
MIN_REGION = 0.001  # of the image

# -- decision ---------------------------------------------------------------------------
#: Logistic model: measurement -> weight, fitted on the candidates of corpus_copymove seeds
#: 1+2 (320 images; real copies vs candidates in clean photos) during development; a refit
#: on the final measurements was no better on the held-out seeds 0 and 1000, so these stay.
MODEL = {
    "nontrivial_x_log_inliers": 1.4222,
    "log_core": 1.0761,
    "log_very_high": 0.5431,
    "fill": 2.1201,
    "specificity_mid": 0.7109,
    "specificity_fine": 3.8476,
    "log_inliers": -1.3726,
    "overlap": -5.091,
}
#: The fitted bias, minus logit(0.7): a copy is declared at p >= 0.7 (fewer false alarms
#: on repeated textures than at 0.5), and the reported score puts that point at 0.5.
MODEL_BIAS = 4.3325 - 0.8473


@dataclass(eq=False)  # compared by identity: it holds arrays
class Clone:
    """A candidate repetition: ``matrix`` maps region A onto region B (working pixels)."""

    matrix: np.ndarray
    src: np.ndarray  # matched points in A (working pixels)
    dst: np.ndarray  # their partners in B
    method: str  # "keypoints" or "blocks"
    region_a: np.ndarray | None = None
    region_b: np.ndarray | None = None
    area: float = 0.0  # share of the image covered by region B as found
    probability: float = 0.0
    stats: dict = field(default_factory=dict)

    @property
    def scale(self) -> float:
        return float(np.sqrt(abs(np.linalg.det(self.matrix[:, :2]))))

    @property
    def angle(self) -> float:
        """Rotation in degrees, (-180, 180]."""
        a = self.matrix[:, :2]
        return float(np.degrees(np.arctan2(a[1, 0] - a[0, 1], a[0, 0] + a[1, 1])))


@register
class CopyMoveDetector(Detector):
    name = "copymove"
    version = "1.0.0"
    media_kinds = frozenset({MediaKind.IMAGE})

    def __init__(self, features: str = "orb") -> None:
        # "sift" localises as many copies of our corpus (77%) but costs 0.35 s at 12 MP on
        # one core against ORB's 0.12 s; kept as an option for offline re-checks.
        if features not in G2NN_RATIO:
            raise ValueError(f"features must be one of {sorted(G2NN_RATIO)}, not {features!r}")
        self.features = features
        self._extractor = None

    def setup(self) -> None:
        if self._extractor is None:
            if self.features == "sift":
                self._extractor = cv2.SIFT_create(nfeatures=MAX_KEYPOINTS, contrastThreshold=0.01)
            else:
                self._extractor = cv2.ORB_create(
                    nfeatures=MAX_KEYPOINTS, scaleFactor=1.2, nlevels=8,
                    edgeThreshold=ORB_PATCH, patchSize=ORB_PATCH, fastThreshold=5,
                )  # fmt: skip

    def analyze_one(self, item: MediaItem) -> DetectorResult:
        self.setup()
        rgb = item.rgb
        h, w = rgb.shape[:2]
        if min(h, w) < MIN_SIDE:
            return DetectorResult.abstain(f"image {w}x{h} is smaller than {MIN_SIDE}px: too little to match")
        gray, factor = _gray_at(rgb, KEYPOINT_PIXELS)
        pts, desc = self._keypoints(gray)
        pairs, weight = _g2nn(pts, desc, G2NN_RATIO[self.features], MIN_SHIFT, self.features)
        rng = np.random.default_rng(0)  # seeded: the same image gives the same answer
        candidates = _sequential_ransac(pts[pairs[:, 0]], pts[pairs[:, 1]], weight, rng) if len(pairs) else []
        candidates += _block_candidates(gray, BLOCK_PIXELS, candidates)
        bands = _bands(gray)
        for c in candidates:
            _verify_dense(bands, c)
            # A region too small to show is no finding, and its score says so.
            c.probability = _copy_probability(c) * min(1.0, c.area / MIN_REGION)
        clones = _distinct(sorted((c for c in candidates if c.probability >= 0.5), key=lambda c: -c.probability))
        return _result((h, w), gray, factor, self.features, len(pts), len(pairs), candidates, clones)

    def _keypoints(self, gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        kps, desc = self._extractor.detectAndCompute(gray, None)
        if desc is None or len(kps) < 3:
            return np.zeros((0, 2), np.float32), np.zeros((0, 32), np.uint8)
        pts = np.array([k.pt for k in kps], np.float32)
        # Threaded detection may list keypoints in another order; sort so that everything
        # downstream (the seeded RANSAC included) sees one order.
        order = np.lexsort((desc[:, 0], pts[:, 1], pts[:, 0]))
        return pts[order], desc[order]


# -- keypoint candidates ------------------------------------------------------------------


def _gray_at(rgb: np.ndarray, max_pixels: int) -> tuple[np.ndarray, int]:
    """Luma reduced by the smallest integer factor that brings it under ``max_pixels``.

    An integer factor takes OpenCV's fast area-averaging path (~10 ms for 12 MP instead
    of ~50 ms for an arbitrary one); the last rows/columns that do not fill a cell go.
    """
    h, w = rgb.shape[:2]
    gray = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
    factor = max(1, int(np.ceil(np.sqrt(h * w / max_pixels))))
    if factor == 1:
        return gray, 1
    hh, ww = h // factor, w // factor
    return cv2.resize(gray[: hh * factor, : ww * factor], (ww, hh), interpolation=cv2.INTER_AREA), factor


def _g2nn(
    pts: np.ndarray, desc: np.ndarray, ratio: float, min_dist: float, features: str
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (i, j), i < j, of keypoints matched by the generalised 2NN test, and their weights.

    For each keypoint, its neighbours in descriptor space are taken in order while each
    is closer than ``ratio`` times the next one: a keypoint with one copy yields one match,
    with several copies several, an ordinary keypoint (all neighbours about equally far)
    none. Neighbours closer than ``min_dist`` in the image are the same structure seen
    twice by the detector and are skipped. Written as repeated row minima over the
    distance matrix rather than a k-NN sort: after the first step only the few keypoints
    still passing are searched further.

    A pair's weight is 1 - distance/next distance: an exact copy weighs ~1, a merely
    similar structure much less.
    """
    n = len(pts)
    if n < 3:
        return np.zeros((0, 2), np.int64), np.zeros(0)
    if features == "sift":
        d = desc.astype(np.float32)
        sq = (d * d).sum(1)
        dist = sq[:, None] + sq[None, :] - 2.0 * (d @ d.T)  # squared: compared with ratio**2
        limit = ratio * ratio
    else:  # Hamming distance as a product of bit vectors: one BLAS call
        bits = np.unpackbits(desc, axis=1).astype(np.float32)
        ones = bits.sum(1)
        dist = ones[:, None] + ones[None, :] - 2.0 * (bits @ bits.T)
        limit = ratio
    close = cKDTree(pts).query_pairs(min_dist, output_type="ndarray")
    dist[close[:, 0], close[:, 1]] = np.inf
    dist[close[:, 1], close[:, 0]] = np.inf
    np.fill_diagonal(dist, np.inf)
    rows = np.arange(n)
    best = dist.argmin(1)
    best_d = dist[rows, best]
    found, weights = [], []
    for _ in range(KNN):
        dist[rows, best] = np.inf
        sub = dist if len(rows) == n else dist[rows]
        nxt = sub.argmin(1)
        nxt_d = sub[np.arange(len(rows)), nxt]
        passed = np.isfinite(best_d) & (best_d < limit * nxt_d)
        if features != "sift":
            passed &= best_d < ORB_MAX_DISTANCE
        found.append(np.stack([rows[passed], best[passed]], 1))
        rel = best_d[passed] / np.maximum(nxt_d[passed], 1e-9)
        weights.append(1.0 - (np.sqrt(rel) if features == "sift" else rel))
        rows, best, best_d = rows[passed], nxt[passed], nxt_d[passed]
        if not len(rows):
            break
    pairs = np.concatenate(found)
    if not len(pairs):
        return np.zeros((0, 2), np.int64), np.zeros(0)
    pairs = np.stack([pairs.min(1), pairs.max(1)], 1)
    # Both ends may have found each other: keep each pair once, with its larger weight.
    weights = np.concatenate(weights)
    order = np.lexsort((-weights, pairs[:, 1], pairs[:, 0]))
    pairs, weights = pairs[order], weights[order]
    first = np.ones(len(pairs), bool)
    first[1:] = np.any(pairs[1:] != pairs[:-1], axis=1)
    return pairs[first], weights[first]


def _similarity_lsq(z: np.ndarray, w: np.ndarray) -> tuple[complex, complex]:
    """Least-squares similarity w ~ a z + b, points as complex numbers."""
    zm, wm = z.mean(), w.mean()
    dz = z - zm
    a = (np.conj(dz) * (w - wm)).sum() / max((np.abs(dz) ** 2).sum(), 1e-9)
    return a, wm - a * zm


def _sequential_ransac(p: np.ndarray, q: np.ndarray, weight: np.ndarray, rng: np.random.Generator) -> list[Clone]:
    """Similarity transforms explaining many matched pairs, found one after another.

    A pair does not say which end is the original, so a pair (z, w) agrees with a
    hypothesis T if T(z) ~ w or T(w) ~ z; a minimal sample of two pairs gives two
    hypotheses (the second pair taken either way round). The second pair of a sample is
    drawn near the first (a copy's matches lie together), far likelier a second inlier
    than a pair drawn anywhere. Hypotheses are ranked by the summed weight of their
    inliers, so that a set of near-exact matches (a copy) wins over a larger set of loose
    ones (similar objects: a tray of coins). Points are complex numbers: a similarity is
    w = a z + b.
    """
    z = p[:, 0].astype(np.float64) + 1j * p[:, 1]
    w = q[:, 0].astype(np.float64) + 1j * q[:, 1]
    alive = np.ones(len(z), bool)
    found = []
    while len(found) < MAX_KEYPOINT_CLONES:
        idx = np.flatnonzero(alive)
        m = len(idx)
        if m < MIN_INLIERS:
            break
        zi, wi = z[idx], w[idx]
        n_h = min(RANSAC_HYPOTHESES, m * (m - 1))
        s1 = rng.integers(0, m, n_h)
        ends = np.concatenate([np.stack([zi.real, zi.imag], 1), np.stack([wi.real, wi.imag], 1)])
        k = min(RANSAC_NEIGHBOURS + 1, 2 * m)
        _, near = cKDTree(ends).query(ends[s1], k=k)
        s2 = near.reshape(n_h, k)[np.arange(n_h), rng.integers(1, k, n_h)] % m
        flip = np.repeat([False, True], n_h)
        s1, s2 = np.tile(s1, 2), np.tile(s2, 2)
        z1, w1 = zi[s1], wi[s1]
        z2, w2 = np.where(flip, wi[s2], zi[s2]), np.where(flip, zi[s2], wi[s2])
        dz = z2 - z1
        ok = np.abs(dz) > 3.0
        a = np.where(ok, (w2 - w1) / np.where(ok, dz, 1), 0)
        ok &= (np.abs(a) > SCALE_RANGE[0]) & (np.abs(a) < SCALE_RANGE[1])
        if not ok.any():
            break
        a, b, first = a[ok], (w1 - a * z1)[ok], s1[ok]
        err = np.minimum(np.abs(a[:, None] * zi[None] + b[:, None] - wi[None]),
                         np.abs(a[:, None] * wi[None] + b[:, None] - zi[None]))  # fmt: skip
        fits = err < RANSAC_TOLERANCE
        best = int(np.argmax(fits.astype(np.float32) @ weight[idx].astype(np.float32)))
        if fits[best].sum() < MIN_INLIERS:
            break
        ab, bb = a[best], b[best]
        for _ in range(3):  # refine on the inliers, each taken the way round that fits
            e1, e2 = np.abs(ab * zi + bb - wi), np.abs(ab * wi + bb - zi)
            inl = np.minimum(e1, e2) < RANSAC_TOLERANCE
            if inl.sum() < MIN_INLIERS:
                break
            ab, bb = _similarity_lsq(np.where(e1 <= e2, zi, wi)[inl], np.where(e1 <= e2, wi, zi)[inl])
        e1, e2 = np.abs(ab * zi + bb - wi), np.abs(ab * wi + bb - zi)
        inl = np.minimum(e1, e2) < RANSAC_TOLERANCE
        # Retire the stragglers of this transform too, or they come back as a second,
        # slightly different copy of the same region.
        alive[idx[np.minimum(e1, e2) < 2 * RANSAC_TOLERANCE]] = False
        alive[idx[first[best]]] = False  # always make progress
        if inl.sum() < MIN_INLIERS:
            continue
        fwd = (e1 <= e2)[inl]
        src = np.where(fwd, zi[inl], wi[inl])
        dst = np.where(fwd, wi[inl], zi[inl])
        matrix = np.array([[ab.real, -ab.imag, bb.real], [ab.imag, ab.real, bb.imag]])
        clone = Clone(matrix, np.stack([src.real, src.imag], 1), np.stack([dst.real, dst.imag], 1), "keypoints")
        same = next((c for c in found if _same_transform(c.matrix, matrix, tol=3 * RANSAC_TOLERANCE)), None)
        if same is None:
            found.append(clone)
        else:  # the same copy, found in two parts: one candidate
            forward = np.abs(clone.src @ same.matrix[:, :2].T + same.matrix[:, 2] - clone.dst).sum()
            backward = np.abs(clone.dst @ same.matrix[:, :2].T + same.matrix[:, 2] - clone.src).sum()
            a, b = (clone.src, clone.dst) if forward <= backward else (clone.dst, clone.src)
            same.src, same.dst = np.vstack([same.src, a]), np.vstack([same.dst, b])
    return found


# -- block candidates ---------------------------------------------------------------------


def _dct_basis(u: int) -> np.ndarray:
    n = np.arange(BLOCK)
    c = np.sqrt(1.0 / BLOCK) if u == 0 else np.sqrt(2.0 / BLOCK)
    return (c * np.cos((2 * n + 1) * u * np.pi / (2 * BLOCK))).astype(np.float32)


def _block_features(g: np.ndarray) -> np.ndarray:
    """len(BLOCK_COEFFS) x (H-7) x (W-7): DCT coefficients of every 8x8 block, by separable filtering."""
    h, w = g.shape
    maps = []
    for u, v in BLOCK_COEFFS:
        f = cv2.sepFilter2D(g, cv2.CV_32F, _dct_basis(v), _dct_basis(u), anchor=(0, 0), borderType=cv2.BORDER_REPLICATE)
        maps.append(f[: h - BLOCK + 1, : w - BLOCK + 1] / BLOCK)  # /8: the DC term is the block mean
    return np.stack(maps)


def _block_candidates(gray: np.ndarray, block_pixels: int, existing: list[Clone]) -> list[Clone]:
    """Translation candidates from matching overlapping 8x8 blocks (for low texture).

    The coefficients are quantised and packed into one integer whose order is the
    lexicographic one (mean first): sorting it puts near-identical blocks side by side;
    each pair of neighbours in that order that agrees on every coefficient votes for its
    shift. A shift with many votes, cast by blocks lying together, is a candidate.
    """
    h, w = gray.shape
    f = min(1.0, (block_pixels / (h * w)) ** 0.5)
    small = gray if f == 1.0 else cv2.resize(gray, (int(round(w * f)), int(round(h * f))), interpolation=cv2.INTER_AREA)
    if min(small.shape) < 4 * BLOCK:
        return []
    fy, fx = h / small.shape[0], w / small.shape[1]
    feats = _block_features(small.astype(np.float32))
    _, bh, bw = feats.shape
    feats = feats.reshape(len(BLOCK_COEFFS), -1)  # a contiguous row per coefficient: fast column ops
    keep = np.flatnonzero(np.einsum("ij,ij->j", feats[1:], feats[1:]) >= BLOCK_MIN_AC**2)
    if len(keep) < 2 * BLOCK_MIN_VOTES:
        return []
    fk = feats[:, keep]
    key = np.zeros(len(keep), np.int64)
    for k, row in enumerate(fk):  # 9 fields of 7 bits
        offset = 0.0 if k == 0 else 64.0  # AC coefficients are signed
        key = (key << 7) | np.clip(np.round(row / BLOCK_STEP) + offset, 0, 127).astype(np.int64)
    order = np.argsort(key, kind="stable")
    fs = fk[:, order]
    ys, xs = np.divmod(keep[order], bw)
    src_parts, dy_parts, dx_parts = [], [], []
    for o in range(1, BLOCK_NEIGHBOURS + 1):
        agree = np.abs(fs[0, :-o] - fs[0, o:]) < BLOCK_TOLERANCE
        for row in fs[1:]:
            agree &= np.abs(row[:-o] - row[o:]) < BLOCK_TOLERANCE
        i = np.flatnonzero(agree)
        j = i + o
        dy, dx = ys[j] - ys[i], xs[j] - xs[i]
        flip = (dx < 0) | ((dx == 0) & (dy < 0))  # a shift and its opposite are one copy
        src = np.where(flip, j, i)
        dy, dx = np.where(flip, -dy, dy), np.where(flip, -dx, dx)
        far = dy * dy + dx * dx >= (MIN_SHIFT * f) ** 2 + 4
        src_parts.append(src[far])
        dy_parts.append(dy[far])
        dx_parts.append(dx[far])
    src, dy, dx = np.concatenate(src_parts), np.concatenate(dy_parts), np.concatenate(dx_parts)
    if len(src) < BLOCK_MIN_VOTES:
        return []
    votes = np.bincount((dy + bh) * (bw + 1) + dx, minlength=(2 * bh + 1) * (bw + 1)).astype(np.float32)
    # Resampling spreads one copy's votes over neighbouring shifts: count them together.
    votes = votes.reshape(2 * bh + 1, bw + 1)
    votes = cv2.boxFilter(votes, -1, (3, 3), normalize=False, borderType=cv2.BORDER_CONSTANT)
    found: list[Clone] = []
    for _ in range(3 * MAX_BLOCK_CLONES):
        peak = np.unravel_index(int(np.argmax(votes)), votes.shape)
        if votes[peak] < BLOCK_MIN_VOTES or len(found) == MAX_BLOCK_CLONES:
            break
        votes[max(0, peak[0] - 3) : peak[0] + 4, max(0, peak[1] - 3) : peak[1] + 4] = 0
        sel = np.flatnonzero((np.abs(dy - (peak[0] - bh)) <= 1) & (np.abs(dx - peak[1]) <= 1))
        sel = _largest_cluster(ys[src[sel]], xs[src[sel]], sel, (bh, bw))
        if len(sel) < BLOCK_MIN_VOTES:
            continue  # votes scattered over the image: coincidences, not a copied region
        ty, tx = float(dy[sel].mean()) * fy, float(dx[sel].mean()) * fx
        matrix = np.array([[1.0, 0.0, tx], [0.0, 1.0, ty]])
        if any(_same_transform(matrix, c.matrix) for c in existing + found):
            continue
        centre = (BLOCK - 1) / 2
        pts = np.stack([(xs[src[sel]] + centre) * fx, (ys[src[sel]] + centre) * fy], 1)
        found.append(Clone(matrix, pts, pts + [tx, ty], "blocks", stats={"votes": int(len(sel))}))
    return found


def _largest_cluster(ys: np.ndarray, xs: np.ndarray, sel: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The voters (``sel``) in the largest spatially connected group (cells of 8 blocks)."""
    cell = 8
    gh, gw = shape[0] // cell + 1, shape[1] // cell + 1
    idx = (ys // cell) * gw + xs // cell
    occupied = (np.bincount(idx, minlength=gh * gw) > 0).reshape(gh, gw).astype(np.uint8)
    _, labels = cv2.connectedComponents(occupied, connectivity=8)
    lab = labels.ravel()[idx]
    return sel[lab == np.bincount(lab).argmax()]


def _same_transform(m1: np.ndarray, m2: np.ndarray, tol: float = 4.0) -> bool:
    """Whether two transforms describe the same copy (either way round)."""
    probe = np.array([[0.0, 0.0, 1.0], [200.0, 0.0, 1.0], [0.0, 200.0, 1.0]]).T
    a = m1 @ probe
    return bool(np.abs(a - m2 @ probe).max() < tol or np.abs(a - cv2.invertAffineTransform(m2) @ probe).max() < tol)


# -- dense verification -------------------------------------------------------------------


def _bands(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two detail bands without shading: a ramp correlates with any shifted ramp, detail does not.

    The mid band carries texture that survives resampling and JPEG; the fine band carries
    the noise-level detail that only an actual copy shares (it tells a copied flat patch
    from a coincidentally similar one).
    """
    g = gray.astype(np.float32)
    mid = cv2.GaussianBlur(g, (0, 0), MID_BAND[0]) - cv2.GaussianBlur(g, (0, 0), MID_BAND[1])
    return mid, g - cv2.GaussianBlur(g, (0, 0), FINE_BAND)


def _box(x: np.ndarray) -> np.ndarray:
    return cv2.boxFilter(x, cv2.CV_32F, (ZNCC_WINDOW, ZNCC_WINDOW), borderType=cv2.BORDER_REFLECT)


def _correlate(a: np.ndarray, b: np.ndarray, floor: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Local ZNCC of ``a`` and ``b``, and its maximum with ``b`` nudged by NUDGE px in 4 directions.

    One sense per direction is enough: an edge correlates nudged either way along it.
    """
    ma, mb = _box(a), _box(b)
    # The variance floor keeps near-constant windows (nothing to compare) from correlating.
    va = np.maximum(_box(a * a) - ma * ma, 0.0) + floor
    vb = np.maximum(_box(b * b) - mb * mb, 0.0) + floor
    corr = (_box(a * b) - ma * mb) / np.sqrt(va * vb)
    nudged = np.full_like(corr, -1.0)
    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
        shift = (dy * NUDGE, dx * NUDGE)
        bs, ms, vs = (np.roll(x, shift, axis=(0, 1)) for x in (b, mb, vb))
        np.maximum(nudged, (_box(a * bs) - ma * ms) / np.sqrt(va * vs), out=nudged)
    return corr, nudged


def _roi(points: np.ndarray, shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """Window around a copy's matched points where its region is looked for."""
    h, w = shape
    lo, hi = points.min(0), points.max(0)
    margin = max(ROI_MARGIN, 0.5 * float((hi - lo).max()))
    x0, y0 = np.floor(np.maximum(lo - margin, 0)).astype(int)
    x1, y1 = np.ceil(np.minimum(hi + margin, [w, h])).astype(int)
    return int(x0), int(y0), int(x1), int(y1)


def _is_translation(matrix: np.ndarray) -> bool:
    return bool(np.abs(matrix[:, :2] - np.eye(2)).max() < 0.01)


def _refine(band: np.ndarray, c: Clone) -> None:
    """Polish the transform to sub-pixel accuracy: maximise the correlation (ECC) near the matches.

    Keypoint positions are good to a pixel or two, block shifts to a block step; the
    comparison of detail needs better than a pixel.
    """
    h, w = band.shape
    centre = np.median(c.dst, 0)
    lo = np.maximum(np.floor(c.dst.min(0) - REFINE_MARGIN), np.round(centre - REFINE_MAX / 2))
    hi = np.minimum(np.ceil(c.dst.max(0) + REFINE_MARGIN), np.round(centre + REFINE_MAX / 2))
    lo, hi = np.maximum(lo, 0).astype(int), np.minimum(hi, [w, h]).astype(int)
    if (hi - lo).min() < 16:
        return
    x0, y0 = int(lo[0]), int(lo[1])
    template = np.ascontiguousarray(band[y0 : hi[1], x0 : hi[0]])
    mask = np.zeros(template.shape, np.uint8)  # only around the matches: the rest is not the copy
    for x, y in np.round(c.dst - (x0, y0)).astype(int):
        cv2.circle(mask, (int(x), int(y)), REFINE_MARGIN, 1, -1)
    to_roi = np.array([[1.0, 0, x0], [0, 1.0, y0], [0, 0, 1.0]])
    inv = np.vstack([cv2.invertAffineTransform(c.matrix), [0, 0, 1]])
    start = (inv @ to_roi)[:2].astype(np.float32)
    # A shift stays a shift: freeing four more parameters only lets noise bend it.
    motion = cv2.MOTION_TRANSLATION if _is_translation(c.matrix) else cv2.MOTION_AFFINE
    try:
        criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 40, 1e-4)
        _, warp = cv2.findTransformECC(template, band, start.copy(), motion, criteria, mask, 1)
    except cv2.error:  # no convergence: keep the estimate we have
        return
    warp = (np.vstack([warp.astype(np.float64), [0, 0, 1]]) @ np.linalg.inv(to_roi))[:2]
    probe = np.array([[x0, y0, 1], [hi[0], y0, 1], [x0, hi[1], 1], [hi[0], hi[1], 1]], float).T
    if np.abs(warp @ probe - inv[:2] @ probe).max() < REFINE_MAX_MOVE:  # converged nearby, not elsewhere
        c.matrix = cv2.invertAffineTransform(warp)


def _verify_dense(bands: tuple[np.ndarray, np.ndarray], c: Clone) -> None:
    """Warp the image by the candidate's transform and find where it matches itself, specifically."""
    mid, fine = bands
    h, w = mid.shape
    c.region_a = c.region_b = np.zeros((h, w), bool)
    _refine(mid, c)
    x0, y0, x1, y1 = _roi(c.dst, (h, w))
    if x1 - x0 < ZNCC_WINDOW or y1 - y0 < ZNCC_WINDOW:
        return
    m = c.matrix.copy()
    m[:, 2] -= (x0, y0)
    size = (x1 - x0, y1 - y0)
    zm, nm = _correlate(mid[y0:y1, x0:x1], cv2.warpAffine(mid, m, size, flags=cv2.INTER_LINEAR))
    zf, nf = _correlate(fine[y0:y1, x0:x1], cv2.warpAffine(fine, m, size, flags=cv2.INTER_LINEAR), FINE_FLOOR)
    valid = cv2.warpAffine(np.ones((h, w), np.uint8), m, size, flags=cv2.INTER_NEAREST) > 0
    # Near the transform's fixed point a pixel would be compared with itself.
    inv = cv2.invertAffineTransform(c.matrix)
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    sx = inv[0, 0] * xx + inv[0, 1] * yy + inv[0, 2]
    sy = inv[1, 0] * xx + inv[1, 1] * yy + inv[1, 2]
    ok = valid & ((sx - xx) ** 2 + (sy - yy) ** 2 >= MIN_SHIFT**2)
    # Core: matches at this alignment and at no nudged one, in the mid band (texture) or
    # the fine band (the noise-level detail of a copied flat patch); touching the matches.
    specific = (zm - nm >= SPECIFICITY) | ((zf >= ZNCC_THRESHOLD) & (zf - nf >= SPECIFICITY))
    core = ((zm >= ZNCC_THRESHOLD) & specific & ok).astype(np.uint8)
    core = cv2.morphologyEx(core, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    seeds = np.zeros(core.shape, np.uint8)
    for x, y in np.round(c.dst - (x0, y0)).astype(int):
        cv2.circle(seeds, (int(x), int(y)), 5, 1, -1)
    core = _components_touching(core, seeds > 0)
    # Region: the core grown through pixels correlating in either band (flat parts of a
    # copy correlate but are not specific), not far from the core.
    k = 2 * GROW + 1
    near = cv2.dilate(core.astype(np.uint8), np.ones((k, k), np.uint8)) > 0
    grow = (zm >= ZNCC_LOW) | (zf >= ZNCC_LOW)
    region = _components_touching((grow & ok & near).astype(np.uint8), core)
    region = cv2.morphologyEx(region.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((7, 7), np.uint8)).astype(bool)
    region = ndimage.binary_fill_holes(region)
    if not region.any():
        return
    # Measurements for the decision, on the region as found.
    full = np.zeros((h, w), bool)
    full[y0:y1, x0:x1] = region
    back = cv2.warpAffine(full.astype(np.uint8), inv, (w, h), flags=cv2.INTER_NEAREST) > 0
    c.area = float(full.mean())
    c.stats.update(
        core=float(core.sum() / (h * w)),
        very_high=float(((zm >= 0.9) & region).sum() / (h * w)),
        fill=float(core.sum() / region.sum()),
        specificity_mid=float((zm - nm)[region].mean()),
        specificity_fine=float((zf - nf)[region].mean()),
        correlation=float(zm[region].mean()),
        overlap=float((back & full).sum() / max(min(back.sum(), full.sum()), 1)),
    )
    # The map: flat parts of a copy have no detail to correlate, and the window straddling
    # the border erodes the region: fill its convex hull and give the border back.
    hull = np.zeros(region.shape, np.uint8)
    cv2.fillConvexPoly(hull, cv2.convexHull(cv2.findNonZero(region.astype(np.uint8))), 1)
    region = cv2.dilate((region | hull.astype(bool)).astype(np.uint8), np.ones((2 * EDGE_GROW + 1,) * 2, np.uint8)) > 0
    c.region_b = np.zeros((h, w), bool)
    c.region_b[y0:y1, x0:x1] = region & ok
    c.region_a = cv2.warpAffine(c.region_b.astype(np.uint8), inv, (w, h), flags=cv2.INTER_NEAREST) > 0
    c.stats["shown_area"] = float(c.region_b.mean())


def _distinct(clones: list[Clone]) -> list[Clone]:
    """Drop a clone whose region is mostly one already kept (one copy found twice)."""
    kept: list[Clone] = []
    for c in clones:
        if all((c.region_b & (k.region_a | k.region_b)).sum() <= 0.5 * c.region_b.sum() for k in kept):
            kept.append(c)
    return kept


def _components_touching(mask: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    _, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    hit = np.unique(labels[seeds])
    return np.isin(labels, hit[hit > 0])


# -- decision -----------------------------------------------------------------------------


def _nontrivial(c: Clone) -> float:
    """How far the transform is from a plain shift (0) towards a clear rotation or scaling (1).

    Natural repetition (bricks, lattices, coins, fur) repeats things in one orientation
    and size; many matches agreeing on a rotation or scaling do not happen by themselves.
    Near a half-turn it is no evidence either: point-symmetric objects (a clock face, a
    coin) match themselves turned by about 180 degrees.
    """
    angle = abs(c.angle)
    rot = 0.0 if abs(angle - 180.0) < 20.0 else min(angle, 30.0) / 30.0
    return max(rot, min(abs(np.log(c.scale)) / np.log(1.3), 1.0))


def _copy_probability(c: Clone) -> float:
    if "core" not in c.stats:
        return 0.0
    log_inliers = np.log10(len(c.src) + 1) if c.method == "keypoints" else 0.0
    s = c.stats
    features = {
        "nontrivial_x_log_inliers": _nontrivial(c) * log_inliers,
        "log_core": np.log10(s["core"] + 1e-5),
        "log_very_high": np.log10(s["very_high"] + 1e-5),
        "fill": s["fill"],
        "specificity_mid": s["specificity_mid"],
        "specificity_fine": s["specificity_fine"],
        "log_inliers": log_inliers,
        "overlap": s["overlap"],
    }
    z = MODEL_BIAS + sum(MODEL[k] * v for k, v in features.items())
    return float(1.0 / (1.0 + np.exp(-z)))


# -- the result ---------------------------------------------------------------------------


def _result(shape, gray, factor, features, n_keypoints, n_pairs, candidates, clones) -> DetectorResult:
    score = max((c.probability for c in candidates), default=0.0)
    evidence = [Evidence("heatmap", "heatmap", _heatmap(shape, factor, clones),
                         caption="copy-move: both copies of each repeated region")]  # fmt: skip
    if clones:
        evidence.append(Evidence("matches", "image", _matches_picture(gray, clones),
                                 caption="matched points of each repeated region (working resolution)"))  # fmt: skip
    described = [_describe(c, factor) for c in clones]
    return DetectorResult(
        score=float(score),
        findings=tuple(_finding(d, c.probability) for d, c in zip(described, clones)),
        details={
            "features": features,
            "working_factor": factor,
            "keypoints": int(n_keypoints),
            "matched_pairs": int(n_pairs),
            "clones": described,
            "rejected_candidates": [_describe(c, factor) for c in candidates if c not in clones],
        },
        evidence=tuple(evidence),
    )


def _heatmap(shape: tuple[int, int], factor: int, clones: list[Clone]) -> np.ndarray:
    """Full-resolution map, 1 on both copies; only the regions' windows are upsampled."""
    h, w = shape
    heat = np.zeros((h, w), np.float32)
    for c in clones:
        for region in (c.region_a, c.region_b):
            if not region.any():
                continue
            ys, xs = np.nonzero(region)
            y0, y1, x0, x1 = max(ys.min() - 1, 0), ys.max() + 2, max(xs.min() - 1, 0), xs.max() + 2
            patch = region[y0:y1, x0:x1].astype(np.float32)
            if factor > 1:
                size = (patch.shape[1] * factor, patch.shape[0] * factor)
                patch = cv2.resize(patch, size, interpolation=cv2.INTER_LINEAR)
            Y0, X0 = y0 * factor, x0 * factor
            patch = patch[: h - Y0, : w - X0]
            view = heat[Y0 : Y0 + patch.shape[0], X0 : X0 + patch.shape[1]]
            np.maximum(view, patch, out=view)
    return heat  # bilinear upsampling of a 0/1 mask stays within [0, 1]: no clip (48 MB at 12 MP)


def _matches_picture(gray: np.ndarray, clones: list[Clone]) -> np.ndarray:
    picture = cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB) // 2 + 64
    colours = ((255, 64, 64), (64, 200, 255), (255, 220, 0), (120, 255, 120), (255, 120, 255))
    for i, c in enumerate(clones):
        colour = colours[i % len(colours)]
        for region in (c.region_a, c.region_b):
            contours, _ = cv2.findContours(region.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            cv2.drawContours(picture, contours, -1, colour, 1)
        step = max(1, len(c.src) // 60)  # at most ~60 lines: a readable picture
        for (xa, ya), (xb, yb) in zip(c.src[::step], c.dst[::step]):
            cv2.line(picture, (int(xa), int(ya)), (int(xb), int(yb)), colour, 1, cv2.LINE_AA)
    return picture


def _bbox(mask: np.ndarray, factor: int) -> list[int] | None:
    """[x0, y0, x1, y1] (exclusive end) of a working-resolution mask, in full-image pixels."""
    if not mask.any():
        return None
    ys, xs = np.nonzero(mask)
    return [int(xs.min() * factor), int(ys.min() * factor), int((xs.max() + 1) * factor), int((ys.max() + 1) * factor)]


def _describe(c: Clone, factor: int) -> dict:
    matrix = c.matrix.copy()
    matrix[:, 2] *= factor  # working -> full-resolution pixels (the linear part is unchanged)
    centre_a = c.src.mean(0) * factor if len(c.src) else np.zeros(2)
    shift = matrix[:, :2] @ centre_a + matrix[:, 2] - centre_a
    return {
        "method": c.method,
        "matches": int(len(c.src)),
        "probability": round(c.probability, 3),
        "angle_deg": round(c.angle, 1),
        "scale": round(c.scale, 3),
        "shift_px": [round(float(shift[0]), 1), round(float(shift[1]), 1)],
        "matrix_a_to_b": [[round(float(v), 4) for v in row] for row in matrix],
        "area": round(c.area, 5),
        "region_a_bbox": _bbox(c.region_a, factor) if c.region_a is not None else None,
        "region_b_bbox": _bbox(c.region_b, factor) if c.region_b is not None else None,
        **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in c.stats.items()},
    }


def _finding(d: dict, probability: float) -> Finding:
    how = []
    angle = abs(d["angle_deg"])
    if angle >= 2.0:
        how.append(f"rotated {angle:.0f} degrees")
    size = max(d["scale"], 1.0 / d["scale"])
    if size >= 1.03:
        how.append(f"scaled {size:.2f}x")
    if not how:
        dx, dy = d["shift_px"]
        how.append(f"shifted by {np.hypot(dx, dy):.0f} px")
    a, b = d["region_a_bbox"], d["region_b_bbox"]
    return Finding(
        code="copy_move_region",
        message=(
            f"a region of about {d['shown_area']:.1%} of the image appears twice, {' and '.join(how)} "
            f"(at x {a[0]}-{a[2]}, y {a[1]}-{a[3]} and at x {b[0]}-{b[2]}, y {b[1]}-{b[3]}); "
            f"which of the two is the original cannot be told"
        ),
        score=float(probability),
    )
