"""Compare the EXIF thumbnail with the picture it is supposed to show.

A camera writes a small JPEG preview (usually 160x120, the DCF size) into IFD1 of the
EXIF block at the moment it writes the picture. Editors that keep EXIF intact but do not
regenerate the preview (Pillow's ``save(exif=...)``, many scripts, metadata copy tools,
and some editors' "keep metadata" options) leave a thumbnail of the *original* next to
the *edited* pixels. Pasting one photo's EXIF onto another leaves a thumbnail of a
different picture. Both are visible cheaply:

1. **Aspect ratio.** The thumbnail's aspect (after trimming the black letterbox bars
   some cameras add) must match the picture's within rounding of the thumbnail's pixel
   grid. A mismatch means the picture was cropped or padded after capture, or the
   thumbnail belongs to another picture. A match with the aspect swapped is tried as a
   90-degree rotation, which is not an edit of content and is not reported as one.
2. **Content.** Both are reduced to the same small grid (long side ``GRID_LONG`` cells,
   each cell an area average of many pixels, so JPEG noise and resampling differences
   average out; a thin frame is left out, where letterbox remnants and cameras' slight
   edge crops live). Each colour channel of the thumbnail is mapped onto the picture's
   by a robust piecewise-linear tone fit (absorbing global brightness, contrast and
   curve edits, which are not what this check is about), and the residual per cell is
   compared with a threshold that grows with the local contrast (thumbnail and picture
   never line up to better than a fraction of a cell, and that shows at edges). Low
   global correlation means a different picture; a connected group of at least
   ``MIN_REGION_CELLS`` cells over threshold means a region was changed (the residual
   map is the evidence).

Measured on seeded edits of scikit-image photos (60 each, edited area 2-12 %, thumbnail
made like a camera's: fitted into 160x120, optionally letterboxed, JPEG q85): no false
alarm on 300 untouched pairs (five thumbnail resampling filters, main JPEG q60-97) nor on
60 each of downscaled or tone-curved pictures; 58/60 pictures turned by 90 degrees are
recognised as turned (2 near-square ones read as an aspect mismatch). Found: regions
pasted from another photo 60/60, copy-moved regions 55/60, inpainted (removed) regions
50/60, regions with red and blue swapped 44/60, pictures swapped for another 60/60,
crops 60/60.

Cost: the thumbnail is tiny; the picture is point-sampled to ``SAMPLE_LONG`` pixels on
its long side (12x12 samples per grid cell, which the area average then pools), so
the check reads about 1 % of a 12 MP picture's pixels: a few milliseconds in all,
dominated by the thumbnail decode.

Limits, honestly: edits smaller than about one grid cell (~2 % of the picture's width)
or with little contrast to what they replaced are invisible at this size; a cropped
picture is reported as cropped, not compared (no search for the crop window); and the
check only speaks when a thumbnail exists, which most re-encoders drop. A thumbnail
that matches proves nothing on its own: an editor that regenerates the thumbnail (most
do) leaves a consistent pair.
"""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
from PIL import Image

#: Cells along the long side of the comparison grid.
GRID_LONG = 40
#: The picture is point-sampled to this long side first (12 samples per cell each way).
SAMPLE_LONG = 12 * GRID_LONG
#: Thumbnails smaller than this (either side, pixels) are not compared.
MIN_THUMB_SIDE = 16
#: Thumbnail pixels left out along each edge before comparing.
EDGE_MARGIN_PX = 2
#: A cell is "changed" when its tone-corrected residual (0-255 levels, worst channel)
#: exceeds the larger of ``MIN_CELL_RESIDUAL`` and median + ``NOISE_FACTOR`` robust
#: spreads, plus ``EDGE_FACTOR`` times the local contrast (misregistration at edges).
MIN_CELL_RESIDUAL = 18.0
NOISE_FACTOR = 5.0
EDGE_FACTOR = 0.35
#: Smallest connected group of changed cells that counts as a changed region.
MIN_REGION_CELLS = 3
#: Global Pearson correlation below which the thumbnail shows another picture.
DIFFERENT_PICTURE_CORR = 0.6
#: Tone curve: knots of the piecewise-linear fit, and its weak pull towards identity.
_TONE_KNOTS = 6
_TONE_RIDGE = 0.002
#: Letterbox rows/columns: near-black and flat (thumbnail pixels).
_BAR_MEAN, _BAR_STD = 14.0, 6.0


@dataclass
class ThumbnailCheck:
    """The outcome of one comparison. ``status`` is one of:

    ``match`` (consistent), ``rotated`` (consistent after a 90-degree turn),
    ``aspect_mismatch`` (cropped/padded, or another picture's thumbnail),
    ``different_picture`` and ``region_changed``.
    """

    status: str
    thumb_size: tuple[int, int]
    image_size: tuple[int, int]
    letterboxed: bool = False
    aspect_thumb: float = 0.0
    aspect_image: float = 0.0
    correlation: float | None = None
    changed_fraction: float = 0.0
    largest_region_cells: int = 0
    max_residual: float = 0.0
    threshold: float = 0.0
    #: Per-cell residual / threshold on the comparison grid (None unless compared).
    residual_map: np.ndarray | None = field(default=None, repr=False)
    #: (y0, y1, x0, x1): the part of the picture the grid covers (a thin frame is left out).
    box: tuple[int, int, int, int] | None = None

    def details(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "status": self.status,
            "thumbnail_size": list(self.thumb_size),
            "image_size": list(self.image_size),
            "aspect_thumbnail": round(self.aspect_thumb, 4),
            "aspect_image": round(self.aspect_image, 4),
        }
        if self.letterboxed:
            out["letterboxed"] = True
        if self.correlation is not None:
            out.update(
                correlation=round(self.correlation, 4),
                changed_fraction=round(self.changed_fraction, 4),
                largest_region_cells=self.largest_region_cells,
                max_residual=round(self.max_residual, 1),
                threshold=round(self.threshold, 1),
            )
        return out


class ThumbnailError(ValueError):
    """The embedded thumbnail cannot be decoded."""


def decode_thumbnail(data: bytes) -> np.ndarray:
    """HxWx3 uint8 pixels of an EXIF JPEG thumbnail; ``ThumbnailError`` when unusable."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image = Image.open(io.BytesIO(data))
            if image.width * image.height > 1024 * 1024:  # a preview, not a thumbnail: keep it cheap
                image.draft("RGB", (512, 512))
            return np.asarray(image.convert("RGB"))
    except Exception as exc:  # Pillow raises many types on broken JPEGs
        raise ThumbnailError(f"the EXIF thumbnail cannot be decoded: {type(exc).__name__}") from None


def sample_picture(image: Image.Image | None, rgb: Callable[[], np.ndarray], jpeg: bytes | None = None) -> np.ndarray:
    """The picture point-sampled to at most ``SAMPLE_LONG`` pixels on its long side
    (HxWx3 uint8), reading only those pixels where Pillow can (8-bit RGB and grey);
    other modes go through the shared full-size ``rgb()``.

    ``jpeg``: the file, when ``image`` holds only its Y plane (a scan whose detectors read
    no colour decodes JPEGs that way): colour then comes from a DCT-scaled decode (libjpeg
    at 1/2 to 1/8 scale, each pixel a block mean), a fraction of a full decode."""
    if jpeg is not None:
        image = Image.open(io.BytesIO(jpeg))
        w, h = image.size
        scale = min(1.0, SAMPLE_LONG / max(w, h))
        image.draft("RGB", (max(1, round(w * scale)), max(1, round(h * scale))))
    if image is not None and image.mode in ("RGB", "L"):
        w, h = image.size
        scale = min(1.0, SAMPLE_LONG / max(w, h))
        small = image.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.NEAREST)
        return np.asarray(small.convert("RGB"))
    full = rgb()
    h, w = full.shape[:2]
    step = max(1, -(-max(h, w) // SAMPLE_LONG))
    # Start half a step in, so each sample sits in the middle of the pixels it stands for.
    return np.ascontiguousarray(full[step // 2::step, step // 2::step])


def compare(thumb: np.ndarray, picture: np.ndarray, size: tuple[int, int] | None = None) -> ThumbnailCheck | None:
    """Compare a decoded thumbnail with the picture (both HxWx3 uint8, stored orientation).

    ``picture`` may be a point-sampled copy (``sample_picture``) of a picture whose true
    size is ``size`` (width, height); aspects are judged on the true size. None when
    either is too small to say anything."""
    th, tw = thumb.shape[:2]
    w, h = size or (picture.shape[1], picture.shape[0])
    if min(th, tw) < MIN_THUMB_SIDE or min(h, w) < MIN_THUMB_SIDE or min(picture.shape[:2]) < MIN_THUMB_SIDE:
        return None
    aspect_image = w / h
    # What the thumbnail shows: all of it, or the part inside the letterbox bars a camera
    # adds when the picture's aspect differs from the thumbnail's (checked to be bars).
    views = _views(thumb, aspect_image)
    trimmed = _trim_letterbox(thumb)
    content_aspect = trimmed.shape[1] / trimmed.shape[0]

    def fits(t: np.ndarray, aspect: float) -> bool:
        return abs(math.log((t.shape[1] / t.shape[0]) / aspect)) <= _aspect_tolerance(t)

    def new_check(view: np.ndarray, letterboxed: bool) -> ThumbnailCheck:
        return ThumbnailCheck(status="match", thumb_size=(tw, th), image_size=(w, h), letterboxed=letterboxed,
                              aspect_thumb=view.shape[1] / view.shape[0], aspect_image=aspect_image)

    trials = []
    for view, letterboxed in views:
        if fits(view, aspect_image):
            trial = new_check(view, letterboxed)
            _compare_content(view, picture, trial)
            trials.append(trial)
    best = min(trials, key=_badness) if trials else None
    if best is not None and (best.status == "match" or fits(trimmed, aspect_image)):
        return best
    # Swapped aspect: the picture may have been turned by 90 degrees (not a content edit).
    turned = []
    for k in (1, 3):
        for t, letterboxed in _views(np.rot90(thumb, k), aspect_image):
            if fits(t, aspect_image):
                trial = new_check(t, letterboxed)
                _compare_content(t, picture, trial)
                turned.append(trial)
    if turned and (trial := min(turned, key=_badness)).status == "match":
        trial.status = "rotated"
        return trial
    check = best or new_check(trimmed, trimmed.shape != thumb.shape)
    check.aspect_thumb = content_aspect
    check.status = "aspect_mismatch"
    check.residual_map = None
    return check


def _views(thumb: np.ndarray, aspect: float) -> list[tuple[np.ndarray, bool]]:
    """What the thumbnail may show: the part inside the letterbox bars a camera adds when
    the picture's aspect differs from the thumbnail's (only if those bars are there),
    and the whole thumbnail. (view, letterboxed) pairs."""
    boxed = _inside_expected_bars(thumb, aspect)
    return ([(boxed, True)] if boxed is not None else []) + [(thumb, False)]


def _badness(check: ThumbnailCheck) -> tuple[int, float]:
    order = {"match": 0, "region_changed": 1, "different_picture": 2}
    return order.get(check.status, 3), -(check.correlation or 0.0)


def _aspect_tolerance(thumb: np.ndarray) -> float:
    """Log-aspect tolerance: the thumbnail's rounding to whole pixels (plus one row of
    letterbox ambiguity) and 1 % for cameras that round their preview sizes."""
    return math.log1p(2.5 / min(thumb.shape[:2])) + 0.01


def _is_bar(strip: np.ndarray) -> bool:
    gray = strip.astype(np.float32).mean(axis=2)
    return gray.size > 0 and float(gray.mean()) < _BAR_MEAN and float(gray.std()) < _BAR_STD


def _inside_expected_bars(thumb: np.ndarray, aspect: float) -> np.ndarray | None:
    """The thumbnail without the letterbox (or pillarbox) bars that a picture of
    ``aspect`` would get in it, if those bars are there (dark and flat); else None."""
    th, tw = thumb.shape[:2]
    if aspect >= tw / th:
        inner = round(tw / aspect)
        top = (th - inner) // 2
        if th - inner < 2:
            return None
        bottom = th - inner - top
        if _is_bar(thumb[:max(top - 1, 1)]) and _is_bar(thumb[th - max(bottom - 1, 1):]):
            return thumb[top:top + inner]
        return None
    inner = round(th * aspect)
    left = (tw - inner) // 2
    if tw - inner < 2:
        return None
    right = tw - inner - left
    if _is_bar(thumb[:, :max(left - 1, 1)]) and _is_bar(thumb[:, tw - max(right - 1, 1):]):
        return thumb[:, left:left + inner]
    return None


def _trim_letterbox(thumb: np.ndarray) -> np.ndarray:
    """Drop near-black flat rows/columns at the borders (camera letterbox bars)."""
    gray = thumb.astype(np.float32).mean(axis=2)
    h, w = gray.shape

    def bars(lines: np.ndarray, limit: int) -> int:
        n = 0
        while n < limit and lines[n].mean() < _BAR_MEAN and lines[n].std() < _BAR_STD:
            n += 1
        return n

    top, bottom = bars(gray, h // 3), bars(gray[::-1], h // 3)
    left, right = bars(gray.T, w // 3), bars(gray.T[::-1], w // 3)
    return thumb[top:h - bottom, left:w - right]


def _grid(shape: tuple[int, int], aspect: float) -> tuple[int, int]:
    """(cells across, cells down) with the long side ``GRID_LONG``, capped by ``shape``."""
    if aspect >= 1:
        gw, gh = GRID_LONG, max(4, round(GRID_LONG / aspect))
    else:
        gw, gh = max(4, round(GRID_LONG * aspect)), GRID_LONG
    return min(gw, shape[1]), min(gh, shape[0])


def _reduce(rgb: np.ndarray, gw: int, gh: int) -> np.ndarray:
    """Area-average ``rgb`` onto a gh x gw grid (float32)."""
    import cv2

    return cv2.resize(np.ascontiguousarray(rgb), (gw, gh), interpolation=cv2.INTER_AREA).astype(np.float32)


def _tone_fit(t: np.ndarray, m: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Piecewise-linear least-squares map of thumbnail values ``t`` onto picture values
    ``m`` (knots every 0.2 of the range), fitted over the cells in ``keep`` and applied
    everywhere. Absorbs any global tone curve; cannot absorb a change in one place."""
    x = t / 255.0
    knots = np.linspace(0.0, 1.0, _TONE_KNOTS)
    design = np.clip(1.0 - np.abs(x[:, None] - knots[None, :]) * (_TONE_KNOTS - 1), 0.0, None)
    # A weak pull towards the identity keeps knots with no cells under them defined.
    ridge = np.sqrt(_TONE_RIDGE * max(int(keep.sum()), 1))
    a = np.vstack([design[keep], ridge * np.eye(_TONE_KNOTS)])
    y = np.concatenate([m[keep], ridge * 255.0 * knots])
    coef, *_ = np.linalg.lstsq(a, y, rcond=None)
    return design @ coef


def _edge_strength(grid: np.ndarray) -> np.ndarray:
    """Per cell: the largest difference to a 4-neighbour, over channels (gh x gw).

    Thumbnail and picture never line up to better than a fraction of a cell (the
    thumbnail's size is rounded to whole pixels, cameras crop slightly), and that
    misregistration shows as residual in proportion to the local contrast."""
    g = np.pad(grid, ((1, 1), (1, 1), (0, 0)), mode="edge")
    c = g[1:-1, 1:-1]
    diffs = [np.abs(c - g[:-2, 1:-1]), np.abs(c - g[2:, 1:-1]), np.abs(c - g[1:-1, :-2]), np.abs(c - g[1:-1, 2:])]
    return np.max(diffs, axis=0).max(axis=2)


def _compare_content(thumb: np.ndarray, rgb: np.ndarray, check: ThumbnailCheck) -> None:
    # Leave out a thin frame: remnants of letterbox bars (a pixel either way after
    # rounding), JPEG ringing against them, and cameras' slight edge crops live there.
    th, tw = thumb.shape[:2]
    h, w = rgb.shape[:2]
    margin = max(EDGE_MARGIN_PX, round(0.015 * min(th, tw)))
    fy, fx = margin / th, margin / tw
    thumb = thumb[margin:th - margin, margin:tw - margin]
    rgb = rgb[round(fy * h):h - round(fy * h), round(fx * w):w - round(fx * w)]
    fw, fh = check.image_size
    check.box = (round(fy * fh), fh - round(fy * fh), round(fx * fw), fw - round(fx * fw))
    gw, gh = _grid(thumb.shape[:2], (check.box[3] - check.box[2]) / (check.box[1] - check.box[0]))
    t = _reduce(thumb, gw, gh).reshape(-1, 3)
    m = _reduce(rgb, gw, gh).reshape(-1, 3)
    check.correlation = _correlation(t, m)
    residual = np.zeros(t.shape, np.float32)
    mapped = np.zeros(t.shape, np.float32)
    for c in range(3):
        keep = np.ones(len(t), bool)
        for _ in range(2):  # refit without the worst cells, so an edited region cannot bend the fit
            fitted = _tone_fit(t[:, c], m[:, c], keep)
            err = np.abs(m[:, c] - fitted)
            keep = err <= max(np.quantile(err, 0.8), 1.0)
        residual[:, c] = err
        mapped[:, c] = fitted
    r = residual.max(axis=1).reshape(gh, gw)
    spread = 1.4826 * float(np.median(np.abs(r - np.median(r))))
    base = max(MIN_CELL_RESIDUAL, float(np.median(r)) + NOISE_FACTOR * spread)
    threshold = base + EDGE_FACTOR * _edge_strength(mapped.reshape(gh, gw, 3))
    changed = r > threshold
    largest = _largest_component(changed)
    check.threshold = base
    check.max_residual = float(r.max())
    check.changed_fraction = float(changed.mean())
    check.largest_region_cells = largest
    check.residual_map = (r / threshold).astype(np.float32)
    if check.correlation < DIFFERENT_PICTURE_CORR:
        check.status = "different_picture"
    elif largest >= MIN_REGION_CELLS:
        check.status = "region_changed"


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    a = a.ravel() - a.mean()
    b = b.ravel() - b.mean()
    denom = float(np.sqrt((a * a).sum() * (b * b).sum()))
    # Two flat pictures are the same picture as far as this check can tell.
    return 1.0 if denom < 1e-6 else float((a * b).sum() / denom)


def _largest_component(mask: np.ndarray) -> int:
    if not mask.any():
        return 0
    import cv2

    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    return int(stats[1:, cv2.CC_STAT_AREA].max()) if count > 1 else 0
