"""The 8x8 block view of a decoded JPEG that every analysis here shares.

JPEG codes the luma in 8x8 blocks on a grid anchored at the top-left pixel; every trace
this package reads (quantised DCT coefficients, DC lattices) lives on a grid, so the
pixels are never resampled: a resize would smear the grid away. Large images are instead
*subsampled by whole blocks* (every ``step``-th block in each direction, ``sampled_pixels``),
which keeps each analysed block exactly as the encoder saw it.

Only the low-frequency 4x4 corner of each block's DCT is computed: those coefficients
carry most of the quantisation evidence (they are quantised finely enough to keep
information, and they are non-zero often enough to fill a histogram), and computing 16 of
64 coefficients costs a quarter of the full transform.
"""

from __future__ import annotations

import numpy as np

BLOCK = 8
#: Side of the low-frequency corner of the DCT that is computed.
LOW = 4
#: The 15 AC positions (row, col) of the low-frequency corner, in zigzag order.
LOW_AC = (
    (0, 1), (1, 0), (2, 0), (1, 1), (0, 2), (0, 3), (1, 2), (2, 1),
    (3, 0), (3, 1), (2, 2), (1, 3), (2, 3), (3, 2), (3, 3),
)  # fmt: skip


def _dct_matrix() -> np.ndarray:
    """Orthonormal 8-point DCT-II matrix (rows are basis functions), as JPEG's FDCT scaled."""
    k = np.arange(BLOCK)
    m = np.sqrt(2.0 / BLOCK) * np.cos(np.pi * (2 * k[None, :] + 1) * k[:, None] / (2 * BLOCK))
    m[0] /= np.sqrt(2.0)
    return m


DCT = _dct_matrix()
_DCT_LOW = np.ascontiguousarray(DCT[:LOW], dtype=np.float32)

#: Weights of ITU-R BT.601 luma, the Y of JPEG's YCbCr.
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def luma(rgb: np.ndarray) -> np.ndarray:
    """Float32 luma of an HxWx3 uint8 array (not rounded: rounding adds noise to the DCT)."""
    return rgb.astype(np.float32) @ LUMA


def luma_u8(rgb: np.ndarray) -> np.ndarray:
    """Rounded uint8 luma: several times faster than ``luma``; its rounding noise (0.3 grey
    levels) is negligible next to the DC steps the grid analysis tests."""
    import cv2

    return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)


def grid_shape(shape: tuple[int, ...]) -> tuple[int, int]:
    """Number of whole 8x8 blocks (rows, cols) of the file's grid (anchored top-left)."""
    return shape[0] // BLOCK, shape[1] // BLOCK


def low_dct(plane: np.ndarray) -> np.ndarray:
    """Low-frequency DCT corner of every whole block: (by, bx, 4, 4) float32.

    Same scaling as the JPEG FDCT (orthonormal), with JPEG's level shift of 128, so that
    dividing by the file's quantisation table gives the quantised values back.
    """
    by, bx = grid_shape(plane.shape)
    if by == 0 or bx == 0:
        return np.zeros((by, bx, LOW, LOW), np.float32)
    blocks = plane[: by * BLOCK, : bx * BLOCK].reshape(by, BLOCK, bx, BLOCK).astype(np.float32, copy=False)
    # Two small matrix products (within-block columns, then rows), each a plain GEMM.
    rows = np.tensordot(blocks, _DCT_LOW, axes=([3], [1]))  # (by, 8, bx, 4): horizontal frequency
    coef = np.tensordot(rows, _DCT_LOW, axes=([1], [1]))  # (by, bx, 4 horizontal, 4 vertical)
    coef = np.ascontiguousarray(coef.transpose(0, 1, 3, 2))  # (by, bx, vertical, horizontal)
    coef[..., 0, 0] -= 128.0 * BLOCK  # level shift: only the DC term moves
    return coef


def clipped_blocks(rgb: np.ndarray) -> np.ndarray:
    """(by, bx) bool: blocks holding a pixel clipped to 0 or 255 in any channel.

    The decoder clips out-of-range pixels, which breaks the link between pixels and the
    stored coefficients: such blocks are left out of the statistics and the maps.
    """
    import cv2

    by, bx = grid_shape(rgb.shape)
    if by == 0 or bx == 0:
        return np.zeros((by, bx), bool)
    pixels = np.ascontiguousarray(rgb[: by * BLOCK, : bx * BLOCK])
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    lows, highs = (1,) * pixels.shape[2], (254,) * pixels.shape[2]
    inside = cv2.inRange(pixels, lows, highs)  # 255 where every channel is in 1..254
    rows = inside.reshape(by, BLOCK, bx * BLOCK).min(axis=1)
    return rows.reshape(by, bx, BLOCK).min(axis=2) == 0


def sampled_pixels(pixels: np.ndarray, step: int) -> np.ndarray:
    """The whole blocks of every ``step``-th block row and column, packed into a smaller
    image. Each kept block is exactly as the encoder saw it (grid kept, nothing resampled)."""
    by, bx = grid_shape(pixels.shape)
    whole = pixels[: by * BLOCK, : bx * BLOCK]
    if step == 1:
        return whole
    v = whole.reshape((by, BLOCK, bx, BLOCK) + whole.shape[2:])[::step, :, ::step]
    return v.reshape((v.shape[0] * BLOCK, v.shape[2] * BLOCK) + whole.shape[2:])


def step_for(n_blocks: int, budget: int) -> int:
    """Smallest block stride that keeps about ``budget`` blocks out of ``n_blocks``."""
    return max(1, int(np.ceil(np.sqrt(n_blocks / budget)))) if budget > 0 else 1
