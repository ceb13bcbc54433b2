"""Learned detectors: the spatial CNN on image tiles and on face crops, and the frequency
model. They run in-process with PyTorch here; the serving tier runs the same exported
networks in Triton (``deeptrawl models export``).

Their scores are the networks' sigmoid outputs, evidence and not probabilities: the
stacking fusion calibrates every detector's score together on held-out data.
"""

from deeptrawl.detectors.learned import cnn as _cnn  # noqa: F401
from deeptrawl.detectors.learned import frequency as _frequency  # noqa: F401
