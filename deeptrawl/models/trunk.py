"""Where the spatial CNNs' frozen trunk runs: ONNX Runtime when it is installed, else PyTorch.

The trunk (stem and blocks 0-13 of EfficientNet-Lite0, ImageNet weights, never trained
here) is most of the CNNs' arithmetic, and on CPUs ONNX Runtime runs it 5-8x faster than
eager PyTorch (``bench/RESULTS.md``). Only the trunk moves: the fine-tuned tail and the
head stay in PyTorch, because Grad-CAM needs the gradient of the logit with respect to
the tail's feature map, and nothing below it.

The ONNX file is not shipped or downloaded: it is exported from the pinned ImageNet
weights on first use into a cache folder (``DEEPTRAWL_CACHE``, default
``~/.cache/deeptrawl``), under a name that holds the weights' sha256 and the exporter's
versions, and checked against PyTorch on a seeded batch before it is used. Several worker
processes may export at once: each writes its own temporary file and renames it into
place, so a reader never sees half a file. If anything in that fails, the trunk runs in
PyTorch and a warning says why: slower, same scores.

``DEEPTRAWL_TRUNK=torch`` forces PyTorch (e.g. to compare), ``onnxruntime`` requires it.
"""

from __future__ import annotations

import logging
import os
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from deeptrawl.errors import ConfigError
from deeptrawl.models.backbone import IMAGENET_SHA256, INPUT_SIZE, Trunk, efficientnet_lite0

log = logging.getLogger(__name__)

#: Largest accepted |ONNX Runtime - PyTorch| on the trunk's features (they reach ~10).
TOLERANCE = 1e-3
BACKENDS = ("auto", "onnxruntime", "torch")

TrunkFn = Callable[[torch.Tensor], torch.Tensor]


def cache_dir() -> Path:
    return Path(os.environ.get("DEEPTRAWL_CACHE") or Path.home() / ".cache" / "deeptrawl")


def _onnx_path() -> Path:
    from deeptrawl.models.export import OPSET

    release = torch.__version__.split("+")[0]
    return cache_dir() / f"trunk-{IMAGENET_SHA256[:12]}-torch{release}-opset{OPSET}.onnx"


def _export(trunk: Trunk, path: Path) -> None:
    from deeptrawl.models.export import export_onnx

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        export_onnx(trunk, torch.zeros(2, 3, INPUT_SIZE, INPUT_SIZE, dtype=torch.uint8), Path(tmp), "tiles", "features")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _session(path: Path, trunk: Trunk) -> TrunkFn:
    """ONNX Runtime on ``path``, checked against PyTorch on a seeded batch."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    # As many threads as PyTorch was given: a scan worker sized for one core stays on one.
    options.intra_op_num_threads = torch.get_num_threads()
    # Idle pool threads would otherwise spin for a while after each run, taking the CPU
    # from the detectors that run next.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def run(tiles: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(session.run(None, {"tiles": tiles.numpy()})[0])

    batch = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (3, 3, INPUT_SIZE, INPUT_SIZE), dtype=np.uint8))
    with torch.no_grad():
        error = float((run(batch) - trunk(batch)).abs().max())
    if not error <= TOLERANCE:
        raise RuntimeError(f"{path}: ONNX Runtime differs from PyTorch by {error:.2g}")
    return run


def _onnx_trunk(trunk: Trunk) -> TrunkFn:
    import onnxruntime  # noqa: F401  (not installed: the caller falls back before exporting)

    path = _onnx_path()
    if path.exists():
        try:
            return _session(path, trunk)
        except Exception as exc:  # damaged or foreign file: export it again
            log.warning("re-exporting the CNN trunk: %s", exc)
            path.unlink(missing_ok=True)
    _export(trunk, path)
    return _session(path, trunk)


@lru_cache(maxsize=1)
def trunk() -> TrunkFn:
    """The frozen trunk as a function of uint8 NCHW tiles (no gradients), built once per process."""
    choice = os.environ.get("DEEPTRAWL_TRUNK", "auto")
    if choice not in BACKENDS:
        raise ConfigError(f"DEEPTRAWL_TRUNK={choice!r}: expected one of {', '.join(BACKENDS)}")
    module = Trunk(efficientnet_lite0()).eval()
    if choice != "torch":
        try:
            return _onnx_trunk(module)
        except Exception as exc:
            if choice == "onnxruntime":
                raise ConfigError(f"DEEPTRAWL_TRUNK=onnxruntime, but it cannot run the trunk: {exc}") from exc
            # Not installed is a choice (the ``export`` extra); a failure is worth a warning.
            level = logging.INFO if isinstance(exc, ImportError) else logging.WARNING
            log.log(level, "the CNN trunk runs in PyTorch (slower, same scores): %s", exc)

    def run(tiles: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return module(tiles)

    return run
