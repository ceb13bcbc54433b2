"""TorchScript and ONNX exports of the learned models, and a Triton model repository.

``SPECS`` is the one table of what each served model takes and returns (Triton name,
tensor names, dtypes, per-item dims). ``write_triton_repo`` and the serving tier both
read it, so a tensor name is written down once.

Why ONNX Runtime is Triton's default backend here: on CPUs ONNX Runtime runs the
exported CNN about six times faster than libtorch runs the TorchScript file (measured on
2 cores, a batch of 8 tiles: 0.03 s against 0.19 s; eager PyTorch 0.20 s), an
``.onnx`` file at a fixed opset loads in any Triton release whose ONNX Runtime knows
that opset, while a TorchScript file needs a libtorch at least as new as the torch that
wrote it, and ``torch.jit`` is deprecated upstream. The TorchScript file is still
written on request (``formats``): it is the fallback for a Triton build without the
ONNX Runtime backend.

Why the legacy (TorchScript-based) ONNX exporter: torch 2.13's default exporter is
``torch.export``-based and needs ``onnxscript``, which is not installed; ``dynamo=False``
exports these ops (static-same-padding convs, ReLU6, uint8 input) at opset 17 without it.

Every export is checked before it is recorded: the exported file is loaded back (with
``torch.jit.load`` / ONNX Runtime) and run on a batch of a different size than the one
it was traced with, so a lost dynamic batch axis or a numerical mismatch stops the
export instead of reaching a server.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Literal

import numpy as np
import torch
from torch import nn

from deeptrawl import __version__
from deeptrawl.detectors.spectrum import FEATURE_NAMES
from deeptrawl.errors import ConfigError, DeeptrawlError
from deeptrawl.models.backbone import INPUT_SIZE

OPSET = 17
MANIFEST = "MANIFEST.json"
#: Triton's wire names (tritonclient ``InferInput`` datatypes); config.pbtxt adds ``TYPE_``.
TRITON_DTYPES = MappingProxyType({"uint8": "UINT8", "float32": "FP32"})
#: The batch sizes of the example a model is traced with and of the check run afterwards.
TRACE_BATCH, CHECK_BATCH = 2, 3
#: Largest accepted |exported - eager| relative to max(1, max |eager|).
TOLERANCE = 1e-3

# Messages the exporters print on every call that say nothing about our models: the
# deprecation notices of torch.jit and of the legacy ONNX exporter (see the module
# docstring), and ZeroPad2d's reversed pad list, which the exporter cannot constant-fold.
_NOISE = (
    r"`torch\.jit\.trace(_method)?` is deprecated",
    r"You are using the legacy TorchScript-based ONNX export",
    r"The feature will be removed",
    r"Constant folding - Only steps=1 can be constant folded",
)


class ExportError(DeeptrawlError):
    """An exported model does not reproduce the PyTorch model."""

    code = "export"


# --- what each model takes and returns ---------------------------------------------------


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: str  # numpy dtype name, a key of TRITON_DTYPES
    dims: tuple[int, ...]  # one item's shape: the batch dimension is not included

    @property
    def triton_dtype(self) -> str:
        return TRITON_DTYPES[self.dtype]

    def as_dict(self) -> dict:
        return {"name": self.name, "dtype": self.dtype, "triton_dtype": self.triton_dtype, "dims": list(self.dims)}


@dataclass(frozen=True)
class ModelSpec:
    name: str  # the Triton model name, also a key of deeptrawl.models.FILES
    input: TensorSpec
    output: TensorSpec


_LOGIT = TensorSpec("logit", "float32", (1,))
_PIXELS = (3, INPUT_SIZE, INPUT_SIZE)
SPECS: Mapping[str, ModelSpec] = MappingProxyType(
    {
        s.name: s
        for s in (
            ModelSpec("cnn", TensorSpec("tiles", "uint8", _PIXELS), _LOGIT),
            ModelSpec("face_cnn", TensorSpec("faces", "uint8", _PIXELS), _LOGIT),
            ModelSpec("frequency", TensorSpec("features", "float32", (len(FEATURE_NAMES),)), _LOGIT),
        )
    }
)


class LogitColumn(nn.Module):
    """The served form of a model: N logits become N x 1, the shape ``SPECS`` declares
    (Triton wants at least one dimension per item when it batches)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.training = model.training  # the wrapper is in its model's mode, which it leaves alone

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x).unsqueeze(1)


def example_input(spec: TensorSpec, batch: int, *, seed: int = 0) -> torch.Tensor:
    """A seeded random batch in the spec's dtype and shape (noise pixels, normal features)."""
    g = torch.Generator().manual_seed(seed)
    shape = (batch, *spec.dims)
    if spec.dtype == "uint8":
        return torch.randint(0, 256, shape, generator=g, dtype=torch.uint8)
    return torch.randn(shape, generator=g, dtype=torch.float32)


# --- the two file formats -----------------------------------------------------------------


@contextmanager
def _quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        for pattern in _NOISE:
            warnings.filterwarnings("ignore", message=pattern)
        yield


def _require_eval(model: nn.Module) -> None:
    if model.training:
        raise ValueError("export a model in eval mode: training mode would trace dropout into the graph")


def export_torchscript(model: nn.Module, example: torch.Tensor, path: Path) -> Path:
    """Trace ``model`` (eval mode) on ``example`` and save the TorchScript file.

    Tracing suits these networks: no data-dependent control flow, and the EfficientNet-Lite
    convs pad by amounts fixed at construction (the fixed 224 px input). The batch size
    stays free. ``check_trace`` is off: it re-traces and compares graphs (seconds on a
    CPU); ``write_triton_repo`` checks the saved file's outputs instead.
    """
    _require_eval(model)
    path = Path(path)
    with _quiet(), torch.no_grad():
        traced = torch.jit.trace(model, example, check_trace=False)
        torch.jit.save(traced, str(path))
    return path


def export_onnx(model: nn.Module, example: torch.Tensor, path: Path, input_name: str, output_name: str) -> Path:
    """Export ``model`` (eval mode) to ONNX at ``OPSET`` with a dynamic batch axis, checked
    with ``onnx.checker``. Uses the TorchScript-based exporter (see the module docstring)."""
    import onnx

    _require_eval(model)
    path = Path(path)
    with _quiet(), torch.no_grad():
        torch.onnx.export(
            model,
            (example,),
            str(path),
            dynamo=False,
            opset_version=OPSET,
            input_names=[input_name],
            output_names=[output_name],
            dynamic_axes={input_name: {0: "batch"}, output_name: {0: "batch"}},
        )
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    return path


def load_exported(path: Path) -> Callable[[np.ndarray], np.ndarray]:
    """Run an exported file (``.onnx`` with ONNX Runtime on the CPU, else TorchScript) on a
    numpy batch, the way a Triton backend would."""
    path = Path(path)
    if path.suffix == ".onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return lambda batch: session.run(None, {name: batch})[0]
    module = torch.jit.load(str(path), map_location="cpu").eval()

    def run(batch: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return module(torch.from_numpy(batch)).numpy()

    return run


# --- the Triton model repository -----------------------------------------------------------


@dataclass(frozen=True)
class Format:
    name: Literal["onnx", "torchscript"]
    platform: str  # Triton's platform string for config.pbtxt
    filename: str  # Triton's default model file name for that platform


FORMATS: Mapping[str, Format] = MappingProxyType(
    {
        "onnx": Format("onnx", "onnxruntime_onnx", "model.onnx"),
        "torchscript": Format("torchscript", "pytorch_libtorch", "model.pt"),
    }
)


@dataclass(frozen=True, kw_only=True)
class TritonOptions:
    """Serving settings written into every config.pbtxt.

    The instance kind is a deployment choice (the same repository serves on CPU or GPU
    nodes), so it is a parameter here and a flag of ``deeptrawl models export``.
    """

    max_batch_size: int = 64
    preferred_batch_sizes: tuple[int, ...] = (8, 32)
    max_queue_delay_us: int = 2000
    instance_kind: Literal["cpu", "gpu"] = "cpu"
    instance_count: int = 1

    def __post_init__(self) -> None:
        if self.instance_kind not in ("cpu", "gpu"):
            raise ValueError(f"instance_kind must be 'cpu' or 'gpu', not {self.instance_kind!r}")
        if any(not 0 < b <= self.max_batch_size for b in self.preferred_batch_sizes):
            raise ValueError(f"preferred batch sizes {self.preferred_batch_sizes} must lie in 1..{self.max_batch_size}")


def config_pbtxt(spec: ModelSpec, fmt: Format, options: TritonOptions, weights_sha256: str) -> str:
    """Triton's model configuration (protobuf text format) for one model."""

    def tensor(t: TensorSpec) -> str:
        dims = ", ".join(map(str, t.dims))
        return f'  {{\n    name: "{t.name}"\n    data_type: TYPE_{t.triton_dtype}\n    dims: [ {dims} ]\n  }}'

    preferred = ", ".join(map(str, options.preferred_batch_sizes))
    return (
        f"# deeptrawl {__version__}, weights sha256 {weights_sha256}\n"
        f'name: "{spec.name}"\n'
        f'platform: "{fmt.platform}"\n'
        f'default_model_filename: "{fmt.filename}"\n'
        f"max_batch_size: {options.max_batch_size}\n"
        f"input [\n{tensor(spec.input)}\n]\n"
        f"output [\n{tensor(spec.output)}\n]\n"
        "dynamic_batching {\n"
        f"  preferred_batch_size: [ {preferred} ]\n"
        f"  max_queue_delay_microseconds: {options.max_queue_delay_us}\n"
        "}\n"
        "instance_group [\n"
        f"  {{\n    kind: KIND_{options.instance_kind.upper()}\n    count: {options.instance_count}\n  }}\n"
        "]\n"
    )


@dataclass(frozen=True)
class ExportedFile:
    path: str  # relative to the repository, with "/" separators
    sha256: str
    size: int


@dataclass(frozen=True)
class ExportedModel:
    spec: ModelSpec
    weights_sha256: str
    platform: str  # what config.pbtxt serves
    files: tuple[ExportedFile, ...]
    max_abs_diff: Mapping[str, float]  # format -> max |exported - eager| on a CHECK_BATCH batch
    seconds: float  # export and check, wall clock

    def as_dict(self) -> dict:
        return {
            "weights_sha256": self.weights_sha256,
            "platform": self.platform,
            "input": self.spec.input.as_dict(),
            "output": self.spec.output.as_dict(),
            "files": {f.path: {"sha256": f.sha256, "size": f.size} for f in self.files},
            "max_abs_diff": dict(self.max_abs_diff),
        }


def _file(root: Path, path: Path) -> ExportedFile:
    data = path.read_bytes()
    return ExportedFile(path.relative_to(root).as_posix(), hashlib.sha256(data).hexdigest(), len(data))


def _check(path: Path, batch: torch.Tensor, expected: np.ndarray) -> float:
    got = load_exported(path)(batch.numpy())
    if got.shape != expected.shape:
        raise ExportError(f"{path}: output shape {got.shape} at batch {len(batch)}, expected {expected.shape}")
    diff = float(np.abs(got - expected).max())
    if diff > TOLERANCE * max(1.0, float(np.abs(expected).max())):
        raise ExportError(f"{path}: outputs differ from PyTorch by up to {diff:.3g}")
    return diff


def _export_model(root: Path, spec: ModelSpec, model: nn.Module, formats: Sequence[Format],
                  options: TritonOptions, weights_sha256: str) -> ExportedModel:
    start = time.perf_counter()
    served = LogitColumn(model)
    example = example_input(spec.input, TRACE_BATCH)
    batch = example_input(spec.input, CHECK_BATCH, seed=1)
    with torch.no_grad():
        expected = served(batch).numpy()
    if expected.shape != (CHECK_BATCH, *spec.output.dims):
        raise ExportError(f"{spec.name}: the model returns {tuple(expected.shape[1:])} per item, "
                          f"the spec declares {spec.output.dims}")
    version_dir = root / spec.name / "1"
    version_dir.mkdir(parents=True)
    paths, diffs = [], {}
    for fmt in formats:
        path = version_dir / fmt.filename
        if fmt.name == "onnx":
            export_onnx(served, example, path, spec.input.name, spec.output.name)
        else:
            export_torchscript(served, example, path)
        diffs[fmt.name] = _check(path, batch, expected)
        paths.append(path)
    config = root / spec.name / "config.pbtxt"
    config.write_text(config_pbtxt(spec, formats[0], options, weights_sha256))
    return ExportedModel(spec, weights_sha256, formats[0].platform, tuple(_file(root, p) for p in [config, *paths]),
                         MappingProxyType(diffs), time.perf_counter() - start)


def _previous_export(directory: Path, overwrite: bool) -> list[str]:
    """The model folders of a previous export that ``overwrite`` will replace; refuses a
    folder that holds anything else, so an export never deletes files it did not write."""
    if not directory.exists() or not any(directory.iterdir()):
        return []
    manifest = directory / MANIFEST
    if not manifest.is_file():
        raise ConfigError(f"{directory} is not empty and holds no deeptrawl export: choose a new folder")
    if not overwrite:
        raise ConfigError(f"{directory} holds a previous export (--force or overwrite=True replaces it)")
    return list(json.loads(manifest.read_text())["models"])


def write_triton_repo(
    directory: Path,
    models: Mapping[str, nn.Module],
    versions: Mapping[str, str],
    *,
    formats: Sequence[str] = ("onnx",),
    options: TritonOptions = TritonOptions(),
    overwrite: bool = False,
) -> tuple[ExportedModel, ...]:
    """Export ``models`` (name -> network in eval mode, names from ``SPECS``) as a Triton
    model repository: ``<name>/config.pbtxt`` and ``<name>/1/<model file>`` per model, and
    ``MANIFEST.json`` with the sha256 of every file, the weights digests and the specs.

    ``versions`` maps each name to its weights sha256 (recorded in the manifest and in a
    comment in config.pbtxt). Every format in ``formats`` is written into the version
    folder; the first is the one config.pbtxt serves (Triton loads only
    ``default_model_filename``).
    """
    unknown = sorted(set(models) - set(SPECS))
    if unknown:
        raise ValueError(f"no export spec for {unknown}: known models are {sorted(SPECS)}")
    if missing := sorted(set(models) - set(versions)):
        raise ValueError(f"no weights version for {missing}")
    for model in models.values():
        _require_eval(model)
    if not formats or any(f not in FORMATS for f in formats):
        raise ValueError(f"formats must be a non-empty selection of {sorted(FORMATS)}, not {list(formats)}")
    directory = Path(directory)
    previous = _previous_export(directory, overwrite)
    chosen = [FORMATS[f] for f in dict.fromkeys(formats)]
    # Export into a staging folder next to the target and move the result in at the end:
    # a failed export leaves the target as it was.
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        exported = tuple(
            _export_model(staging, SPECS[name], model, chosen, options, versions[name])
            for name, model in models.items()
        )
        manifest = _manifest(exported, chosen, options)
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        for name in previous:
            shutil.rmtree(directory / name, ignore_errors=True)
        directory.mkdir(exist_ok=True)
        for child in staging.iterdir():
            child.replace(directory / child.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return exported


def _manifest(exported: Sequence[ExportedModel], formats: Sequence[Format], options: TritonOptions) -> dict:
    return {
        "deeptrawl_version": __version__,
        "torch_version": torch.__version__,
        "onnx_opset": OPSET,
        "formats": [f.name for f in formats],
        "served_format": formats[0].name,
        "triton": {
            "max_batch_size": options.max_batch_size,
            "preferred_batch_sizes": list(options.preferred_batch_sizes),
            "max_queue_delay_us": options.max_queue_delay_us,
            "instance_kind": options.instance_kind,
            "instance_count": options.instance_count,
        },
        "models": {m.spec.name: m.as_dict() for m in exported},
    }
