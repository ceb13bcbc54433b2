"""JPEG forensics detector (``jpeg``): quantisation tables, double compression (aligned
and not), JPEG ghosts and block-grid misalignment. Importing the package registers it.

Modules: ``quant`` (tables), ``double`` (DCT histogram models), ``ghost`` (re-quantisation
curves), ``grid`` (foreign 8x8 grids), ``blocks`` (the shared 8x8 DCT view) and
``detector`` (the combination). Each module's docstring explains its method and limits.
"""

from deeptrawl.detectors.jpeg.detector import JpegDetector

__all__ = ["JpegDetector"]
