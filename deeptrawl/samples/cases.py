"""Labelled test cases with ground truth made by construction.

Each corpus module (``deeptrawl/samples/corpus_*.py``) exposes ``cases(n, seed) ->
list[Case]``; tests and ``bench/forensics_eval.py`` use the same generators.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Case:
    name: str
    data: bytes  # the encoded file, as an archive would hold it
    manipulated: bool
    kind: str  # e.g. "real", "splice_noise", "copy_move_rotate", "double_jpeg", "upsample_nearest"
    #: HxW bool mask of manipulated pixels (target regions); None when not localised.
    mask: np.ndarray | None = None
    #: Source regions (copy-move), when the manipulation has them.
    source_mask: np.ndarray | None = None
