"""Generators of genuinely manipulated or synthetic images for the training corpus.

Each generator is a function ``make(...) -> Fake | None`` (None: this input cannot give this
kind of fake, e.g. no face found). The mask marks the manipulated pixels (1) so evaluation
can score localisation; whole-image synthesis (Real-ESRGAN, generator upsampling) marks all.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, kw_only=True)
class Fake:
    rgb: np.ndarray   # HxWx3 uint8
    mask: np.ndarray  # HxW bool, True where pixels were manipulated or synthesised
    kind: str         # one of deeptrawl.corpus.KINDS, without "real"
