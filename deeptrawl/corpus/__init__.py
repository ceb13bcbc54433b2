"""A labelled training and evaluation corpus built from real media shipped in packages.

Real images live the life of a real upload (resizes, crops, JPEG/PNG/WebP re-encodes);
fakes are genuinely manipulated or synthesised from them. Splits are by source image, so
the same original never appears in two splits.
"""

from __future__ import annotations

KINDS = ("real", "faceswap", "sbi", "esrgan", "upsample", "splice", "copymove")
SPLITS = ("train", "calib", "test")
#: Pictures of each fake kind in a default build (``deeptrawl.corpus.build``): all kinds,
#: 480 pictures, about two minutes on two CPU cores, most of it Real-ESRGAN.
DEFAULT_PER_KIND = 40
