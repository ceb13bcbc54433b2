"""Simulated generator upsampling: the spectral trace GAN generators leave.

Zhang, Karaman & Chang (2019, "Detecting and Simulating Artifacts in GAN Fake Images")
show that the upsampling layers of image generators leave periodic peaks in the
spectrum, and that shrinking a real picture x2 and growing it back with such a layer
simulates the trace without training a GAN. We do that with one of:

* ``nearest`` and ``bilinear``: fixed interpolation (Pillow), the upsampling of
  "resize-convolution" generators;
* ``tconv``: a stride-2 transposed convolution with a 4x4 kernel per channel, initialised
  at the bilinear kernel plus seeded noise (a learned kernel is never balanced), whose
  uneven overlap leaves the checkerboard (Odena et al. 2016). This is
  ``deeptrawl.samples.corpus_spectrum.transposed_conv2x``, shared with the spectral
  detector's ground truth.

The whole picture is resynthesised, so the mask is all True.
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

from deeptrawl.corpus.fakes import Fake
from deeptrawl.samples.corpus_spectrum import transposed_conv2x

METHODS = ("nearest", "bilinear", "tconv")
_RESAMPLE = {"nearest": Image.NEAREST, "bilinear": Image.BILINEAR}


def make(rgb: np.ndarray, rng: np.random.Generator, method: str | None = None) -> Fake:
    """``rgb`` (cropped to even sides) shrunk x2 and enlarged x2 by ``method`` (drawn if None)."""
    method = method or METHODS[int(rng.integers(len(METHODS)))]
    h, w = rgb.shape[0] // 2 * 2, rgb.shape[1] // 2 * 2
    small = cv2.resize(np.ascontiguousarray(rgb[:h, :w]), (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    if method == "tconv":
        out = transposed_conv2x(small, rng)
    else:
        out = np.asarray(Image.fromarray(small).resize((w, h), _RESAMPLE[method]))
    return Fake(rgb=out, mask=np.ones((h, w), bool), kind="upsample")
