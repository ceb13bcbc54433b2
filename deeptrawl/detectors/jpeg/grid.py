"""Block-grid misalignment: regions JPEG-compressed on another 8x8 grid than the file's.

A region pasted from a JPEG at a position that is not a multiple of 8 away from where it
sat in its own file keeps its first grid, offset from the file's final grid. A whole image
cropped between two saves does the same everywhere (non-aligned double compression).

We first tried the textbook cue, the blocking steps between pixels at each of the 8
column and 8 row phases, estimated locally. On our splices the final save mostly erased
those steps (a q62 donor's ~1 grey-level steps fell into the noise after a q85 re-save),
so this module reads the grid in the DCT domain instead: on the earlier grid, each block's
DC coefficient (8 x the block mean, less the level shift) is a multiple of that save's DC
step ``Q``, plus little noise because the final save's error averages out over the 64
pixels of a block. On any other grid the DC values are spread evenly modulo ``Q``. The
coherence ``m |mean(exp(2 pi i DC / Q))|^2`` over ``m`` blocks is about Exp(1) for random
phases and grows with ``m`` on the earlier grid.

1. DC values at all 64 grid offsets, for a lattice of sites (one 15x15 patch and its
   integral image per site give the 64 block sums).
2. Coherence per tile (~64x64 px, overlapping by half) for every offset and candidate
   step 3..20 (DC steps of IJG qualities ~40..92). Smooth content makes DC values
   correlated and inflates coherence at every offset alike, so each value is turned into a
   z against the other 62 offsets of the same tile and step.
3. Not counted: tiles too flat to judge (DC spread, or differences between neighbouring
   blocks, under the step), combinations more coherent on the file's own grid (its
   lattice leaks into offsets 1 px away), and the final table's DC step and its divisors.
4. The best (offset, step) is the one with the strongest tile, scored by that tile's z
   against the best tiles of all combinations and by its coherence. The map marks the
   blocks whose DC sits on that lattice.

Offset (0, 0), the file's own grid, is never a candidate. The image is never resampled
(that would destroy the grid); large images use a sparser lattice of sites.

Limits (honest): the first save must be the coarser one (a fine last save keeps the first
lattice, a coarse one blurs it: on our corpus non-aligned double compression is found in
~80% of cases with q2 > q1 and none with q2 < q1); flat regions carry no DC lattice;
regions under ~64x64 px hold too few blocks to rise above chance; the map is ~24 px
coarse at best.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deeptrawl.detectors.jpeg.blocks import BLOCK

#: Candidate DC steps of the earlier save (IJG qualities ~40 to ~92).
STEPS = np.arange(3, 21)
#: Most sites analysed (the lattice gets sparser beyond).
MAX_SITES = 2_500
#: Mean |DC difference| between neighbouring sites, in steps, for a tile to count.
TEXTURE = 1.5
#: Tile z at which a tile counts as carrying the foreign grid (for the area).
COHERENT_Z = 3.0
#: Tile side, in pixels (coherence is measured over tiles of about this size).
TILE_PX = 64


@dataclass(frozen=True)
class GridResult:
    #: Offset (dy, dx) of the strongest foreign grid: blocks start at rows/cols = offset mod 8.
    offset: tuple[int, int] | None
    step: int | None
    #: Strongest tile coherence (m |mean|^2) of the best combination, and that value's
    #: robust z against the best tiles of all tried combinations.
    peak: float
    z: float
    #: Share of informative tiles where the foreign grid is coherent (tile z >= COHERENT_Z).
    area: float
    #: (sites_y, sites_x) coherence map in [0, 1] (None when nothing was analysable).
    map: np.ndarray | None
    spacing: int

    def as_details(self) -> dict:
        return {
            "foreign_grid_offset": list(self.offset) if self.offset else None,
            "foreign_dc_step": self.step,
            "peak_tile_coherence": round(self.peak, 2),
            "z": round(self.z, 2),
            "coherent_area": round(self.area, 4),
        }


def _sites(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, int]:
    h, w = shape
    n_blocks = max(1, ((h - 15) // BLOCK + 1) * ((w - 15) // BLOCK + 1))
    stride = max(1, int(np.ceil(np.sqrt(n_blocks / MAX_SITES))))
    spacing = BLOCK * stride
    return np.arange(0, h - 15, spacing), np.arange(0, w - 15, spacing), spacing


def dc_at_offsets(plane: np.ndarray) -> tuple[np.ndarray, int]:
    """DC of the 8x8 block at every offset (dy, dx) from every site: (ny, nx, 8, 8) float32."""
    ys, xs, spacing = _sites(plane.shape)
    if len(ys) == 0 or len(xs) == 0:
        return np.zeros((0, 0, 8, 8), np.float32), spacing
    # Index both axes at once: indexing one at a time would copy whole rows of windows.
    patches = np.lib.stride_tricks.sliding_window_view(plane, (15, 15))[ys[:, None], xs[None, :]].astype(np.float32)
    integral = np.zeros(patches.shape[:2] + (16, 16), np.float32)
    integral[..., 1:, 1:] = patches.cumsum(2).cumsum(3)
    o = np.arange(BLOCK)
    a, b = o[:, None], o[None, :]
    sums = integral[..., a + 8, b + 8] - integral[..., a, b + 8] - integral[..., a + 8, b] + integral[..., a, b]
    return sums / BLOCK - 128.0 * BLOCK, spacing


def _cells(values: np.ndarray, s: int) -> np.ndarray:
    """Sums over non-overlapping s x s cells of sites (ragged edges dropped), first two axes."""
    cy, cx = values.shape[0] // s, values.shape[1] // s
    v = values[: cy * s, : cx * s]
    # Sum rows of s, then columns of s, each as s strided slices added up: much faster
    # than a reshape-sum over the two leading axes.
    rows = v[0::s].copy()
    for dy in range(1, s):
        rows += v[dy::s]
    out = rows[:, 0::s].copy()
    for dx in range(1, s):
        out += rows[:, dx::s]
    return out


def _tiles(cells: np.ndarray) -> np.ndarray:
    """Sums over 2 x 2 cells, sliding by one cell: tiles overlap by half."""
    return cells[:-1, :-1] + cells[1:, :-1] + cells[:-1, 1:] + cells[1:, 1:]


def analyse(plane: np.ndarray, final_dc_step: int) -> GridResult | None:
    """Look for a foreign 8x8 grid in ``plane`` (luma); ``final_dc_step`` from the file's table."""
    dc, spacing = dc_at_offsets(plane)
    ny, nx = dc.shape[:2]
    s = max(2, int(round(TILE_PX / spacing / 2)))  # cell side in sites; a tile is 2 x 2 cells
    if ny < 2 * s or nx < 2 * s:
        return None
    values = dc.reshape(ny, nx, 64)
    z, valid = _tile_z(values, s, final_dc_step)
    per_combo = z.reshape(-1, 64 * len(STEPS)).max(axis=0)
    best = int(np.argmax(per_combo))
    peak = float(per_combo[best])
    if peak <= 0:
        return GridResult(None, None, 0.0, 0.0, 0.0, None, spacing)
    centre = float(np.median(per_combo))
    scale = float(np.median(np.abs(per_combo - centre))) * 1.4826 + 0.5
    offset, k = divmod(best, len(STEPS))
    informative = valid[:, :, offset, k]
    area = float((z[:, :, offset, k] >= COHERENT_Z).sum() / max(int(informative.sum()), 1))
    judged = _tiles_to_sites(informative.astype(np.float32), s, (ny, nx))
    heat = _site_map(values[:, :, offset], float(STEPS[k]), judged)
    return GridResult(divmod(offset, 8), int(STEPS[k]), peak, (peak - centre) / scale, area, heat, spacing)


def _tile_z(values: np.ndarray, s: int, final_dc_step: int) -> tuple[np.ndarray, np.ndarray]:
    """Per tile, offset and step: coherence z against the tile's other offsets, and
    whether the combination counts. Both (ty, tx, 64, steps)."""
    steps = STEPS.astype(np.float32)
    angle = values[..., None] * (2 * np.pi / steps)  # (ny, nx, 64, S)
    m = float(4 * s * s)
    u = (_tiles(_cells(np.cos(angle), s)) ** 2 + _tiles(_cells(np.sin(angle), s)) ** 2) / m
    # Mean and standard deviation of the other offsets, leaving out the largest value (the
    # candidate itself would cap its own z at sqrt(62)): a fraction of the cost of medians.
    others = u[:, :, 1:]
    top = others.max(axis=2, keepdims=True)
    n = others.shape[2] - 1
    base = (others.sum(axis=2, keepdims=True) - top) / n
    var = (np.square(others).sum(axis=2, keepdims=True) - top * top) / n - base * base
    z = (u - base) / (np.sqrt(np.maximum(var, 0)) + 1.0)
    # Smooth tiles: slowly varying DC values are not random modulo a step and can look
    # coherent at one offset by chance. Ask for a DC spread above the step and DC jumps
    # between neighbouring sites well above it (texture).
    mean = _tiles(_cells(values, s)) / m
    spread = np.sqrt(np.maximum(_tiles(_cells(values * values, s)) / m - mean * mean, 0))  # (ty, tx, 64)
    jump = np.abs(np.diff(values[:, :, 0], axis=1, append=values[:, -1:, 0]))
    texture = _tiles(_cells(jump, s)) / m
    valid = (spread[..., None] >= steps) & (texture[:, :, None, None] >= TEXTURE * steps)
    valid &= u > u[:, :, :1]  # more coherent on the final grid: its lattice leaking
    valid[:, :, 0] = False
    valid[..., (final_dc_step % STEPS) == 0] = False  # the final grid's own step and divisors
    return np.where(valid, z, 0.0), valid


def _site_map(dc: np.ndarray, step: float, informative: np.ndarray) -> np.ndarray:
    """Per site: how well its DC sits on the lattice (cos of the phase; ~1 on the foreign
    grid, ~0 on average elsewhere), averaged over 3x3 sites, as a [0, 1] map (0.5 at a
    mean cosine of 0.35). Sites in tiles too flat to judge are 0."""
    phase = np.cos(dc * (2 * np.pi / step))
    p = np.pad(phase, 1, mode="edge")
    rows = p[:-2] + p[1:-1] + p[2:]
    mean = (rows[:, :-2] + rows[:, 1:-1] + rows[:, 2:]) / 9.0
    heat = 1.0 / (1.0 + np.exp(-(mean - 0.35) * 10.0))
    return np.where(informative > 0.5, heat, 0.0).astype(np.float32)


def _tiles_to_sites(tiles: np.ndarray, s: int, shape: tuple[int, int]) -> np.ndarray:
    """Each site takes the mean of the (up to 4) tiles covering its cell."""
    padded = np.pad(tiles.astype(np.float32), 1)
    count = np.pad(np.ones_like(tiles, np.float32), 1)
    cells = _tiles(padded) / np.maximum(_tiles(count), 1)  # (cy, cx)
    sites = np.repeat(np.repeat(cells, s, axis=0), s, axis=1)
    out = np.zeros(shape, np.float32)
    h, w = min(shape[0], sites.shape[0]), min(shape[1], sites.shape[1])
    out[:h, :w] = sites[:h, :w]
    return out
