"""TorchScript/ONNX exports reproduce PyTorch, and the Triton repository is one Triton accepts.

The networks are freshly built with a seeded random head (the trained weights need not
exist): what is under test is the export path, on real photo tiles and real spectral
features. Triton's own model-config protobuf (tritonclient) parses every config.pbtxt.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from click.testing import CliRunner
from google.protobuf import text_format
from torch import nn
from tritonclient.grpc import model_config_pb2

import deeptrawl.models
from deeptrawl.cli import main
from deeptrawl.detectors.spectrum import spectral_features
from deeptrawl.errors import ConfigError
from deeptrawl.models import tiles, weights
from deeptrawl.models.backbone import Normalize
from deeptrawl.models.export import (
    FORMATS,
    MANIFEST,
    SPECS,
    ExportError,
    TritonOptions,
    config_pbtxt,
    export_onnx,
    export_torchscript,
    write_triton_repo,
)
from deeptrawl.models.frequency import FrequencyNet
from deeptrawl.models.spatial import SpatialNet
from deeptrawl.samples.media import rgb_photo

#: Largest accepted max |exported - PyTorch| of the logits, per model family.
ATOL = {"cnn": 1e-3, "tiny_cnn": 1e-3, "frequency": 1e-5}
DIGESTS = {name: hashlib.sha256(name.encode()).hexdigest() for name in SPECS}


@pytest.fixture(scope="module")
def spatial_net() -> SpatialNet:
    torch.manual_seed(0)
    net = SpatialNet().eval()
    nn.init.normal_(net.fc.weight, std=0.1)
    nn.init.normal_(net.fc.bias, std=0.1)
    return net


@pytest.fixture(scope="module")
def photo_tiles() -> torch.Tensor:
    rgb = rgb_photo("astronaut")
    return torch.from_numpy(tiles.extract(rgb, tiles.positions(*rgb.shape[:2], max_per_side=3))[::2])  # 5 of 9


@pytest.fixture(scope="module")
def features() -> torch.Tensor:
    rgb = rgb_photo("astronaut")
    crops = [rgb[40 * i : 40 * i + 256, 50 * i : 50 * i + 256] for i in range(5)]
    return torch.from_numpy(np.stack([spectral_features(crop) for crop in crops]))


@pytest.fixture(scope="module")
def frequency_net(features) -> FrequencyNet:
    torch.manual_seed(1)
    net = FrequencyNet().eval()
    net.mean.copy_(features.mean(0))
    net.std.copy_(features.std(0).clamp_min(1e-3))
    return net


class TinyCNN(nn.Module):
    """A stand-in with SpatialNet's contract (uint8 N x 3 x 224 x 224 -> N logits) that
    exports in a fraction of the time: the repository tests need one real CNN, not two."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(2)
        self.net = nn.Sequential(Normalize(), nn.Conv2d(3, 4, 5, stride=4), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                                 nn.Flatten(), nn.Linear(4, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(1)


def _eager(net: nn.Module, x: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return net(x).numpy()


@pytest.fixture(scope="module")
def cases(spatial_net, photo_tiles, frequency_net, features):
    """family -> (network, real inputs of batch 5, PyTorch's logits for them)."""
    tiny = TinyCNN().eval()
    return {
        "cnn": (spatial_net, photo_tiles, _eager(spatial_net, photo_tiles)),
        "tiny_cnn": (tiny, photo_tiles, _eager(tiny, photo_tiles)),
        "frequency": (frequency_net, features, _eager(frequency_net, features)),
    }


def test_inputs_are_real_and_outputs_not_constant(cases):
    for _, x, expected in cases.values():
        assert x.shape[0] == 5 and len(np.unique(x.numpy().reshape(5, -1), axis=0)) == 5
        assert np.ptp(expected) > 1e-2


@pytest.mark.parametrize("family", ["cnn", "frequency"])
def test_torchscript_matches_pytorch_at_any_batch(cases, family, tmp_path):
    net, x, expected = cases[family]
    path = export_torchscript(net, x[:2], tmp_path / "model.pt")
    loaded = torch.jit.load(str(path))
    for n in (1, 5):  # eval mode: a batch's rows are independent, so batch 1 is row 0 of batch 5
        got = _eager(loaded, x[:n])
        assert got.shape == (n,)
        assert np.abs(got - expected[:n]).max() < ATOL[family]


@pytest.mark.parametrize("family", ["cnn", "frequency"])
def test_onnx_runtime_matches_pytorch_at_any_batch(cases, family, tmp_path):
    net, x, expected = cases[family]
    path = export_onnx(net, x[:2], tmp_path / "model.onnx", "x", "y")
    graph = onnx.load(str(path)).graph
    assert [i.name for i in graph.input] == ["x"] and [o.name for o in graph.output] == ["y"]
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"  # the dynamic axis
    expected_type = onnx.TensorProto.UINT8 if family == "cnn" else onnx.TensorProto.FLOAT
    assert graph.input[0].type.tensor_type.elem_type == expected_type
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for n in (1, 5):
        (got,) = session.run(None, {"x": x[:n].numpy()})
        assert got.shape == (n,)
        assert np.abs(got - expected[:n]).max() < ATOL[family]


def test_export_refuses_training_mode(tmp_path):
    with pytest.raises(ValueError, match="eval mode"):
        export_onnx(FrequencyNet(), torch.zeros(2, 62), tmp_path / "m.onnx", "x", "y")
    assert not (tmp_path / "m.onnx").exists()


# --- the Triton repository ------------------------------------------------------------------


@pytest.fixture(scope="module")
def repo(tmp_path_factory, cases) -> tuple[Path, tuple]:
    directory = tmp_path_factory.mktemp("triton") / "repo"
    models = {"cnn": cases["cnn"][0], "face_cnn": cases["tiny_cnn"][0], "frequency": cases["frequency"][0]}
    exported = write_triton_repo(directory, models, DIGESTS, formats=("onnx", "torchscript"))
    return directory, exported


def test_repository_layout_is_tritons(repo):
    directory, exported = repo
    files = {p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file()}
    expected = {MANIFEST} | {f"{n}/{f}" for n in SPECS for f in ("config.pbtxt", "1/model.onnx", "1/model.pt")}
    assert files == expected
    assert [p.name for p in directory.parent.iterdir()] == ["repo"]  # no staging folder left behind
    assert all(max(m.max_abs_diff.values()) < 1e-3 for m in exported)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_config_parses_as_tritons_model_config(repo, name):
    directory, _ = repo
    text = (directory / name / "config.pbtxt").read_text()
    config = text_format.Parse(text, model_config_pb2.ModelConfig())
    spec, dt = SPECS[name], model_config_pb2.DataType
    assert config.name == name and config.platform == "onnxruntime_onnx"
    assert config.default_model_filename == "model.onnx"
    assert config.max_batch_size == 64
    (inp,) = config.input
    assert (inp.name, list(inp.dims)) == (spec.input.name, list(spec.input.dims))
    assert inp.data_type == (dt.TYPE_UINT8 if name != "frequency" else dt.TYPE_FP32)
    (out,) = config.output
    assert (out.name, out.data_type, list(out.dims)) == ("logit", dt.TYPE_FP32, [1])
    assert config.HasField("dynamic_batching") and list(config.dynamic_batching.preferred_batch_size) == [8, 32]
    assert [(g.kind, g.count) for g in config.instance_group] == [(model_config_pb2.ModelInstanceGroup.KIND_CPU, 1)]
    assert text.startswith(f"# deeptrawl ") and DIGESTS[name] in text.splitlines()[0]


def test_manifest_digests_match_files(repo):
    directory, _ = repo
    manifest = json.loads((directory / MANIFEST).read_text())
    assert manifest["served_format"] == "onnx" and manifest["onnx_opset"] == 17
    assert set(manifest["models"]) == set(SPECS)
    for name, entry in manifest["models"].items():
        assert entry["weights_sha256"] == DIGESTS[name]
        assert entry["input"] == SPECS[name].input.as_dict() and entry["output"]["dims"] == [1]
        assert set(entry["files"]) == {f"{name}/config.pbtxt", f"{name}/1/model.onnx", f"{name}/1/model.pt"}
        for path, meta in entry["files"].items():
            data = (directory / path).read_bytes()
            assert (hashlib.sha256(data).hexdigest(), len(data)) == (meta["sha256"], meta["size"])


@pytest.mark.parametrize("name,family", [("cnn", "cnn"), ("face_cnn", "tiny_cnn"), ("frequency", "frequency")])
def test_served_files_take_the_spec_and_return_n_by_1(repo, cases, name, family):
    """What a Triton client sends (SPECS names and dtypes, real data) gets N x 1 logits."""
    directory, _ = repo
    _, x, logits = cases[family]
    spec, expected = SPECS[name], logits[:, None]
    session = onnxruntime.InferenceSession(str(directory / name / "1/model.onnx"), providers=["CPUExecutionProvider"])
    (got,) = session.run([spec.output.name], {spec.input.name: x.numpy().astype(spec.input.dtype)})
    assert got.shape == (5, 1) and np.abs(got - expected).max() < ATOL[family]
    scripted = _eager(torch.jit.load(str(directory / name / "1/model.pt")), x)
    assert scripted.shape == (5, 1) and np.abs(scripted - expected).max() < ATOL[family]


def test_gpu_kind_and_torchscript_platform():
    options = TritonOptions(instance_kind="gpu", instance_count=2)
    text = config_pbtxt(SPECS["cnn"], FORMATS["torchscript"], options, "0" * 64)
    config = text_format.Parse(text, model_config_pb2.ModelConfig())
    assert config.platform == "pytorch_libtorch" and config.default_model_filename == "model.pt"
    assert [(g.kind, g.count) for g in config.instance_group] == [(model_config_pb2.ModelInstanceGroup.KIND_GPU, 2)]


def test_options_are_validated():
    with pytest.raises(ValueError, match="instance_kind"):
        TritonOptions(instance_kind="tpu")
    with pytest.raises(ValueError, match="preferred"):
        TritonOptions(max_batch_size=16, preferred_batch_sizes=(8, 32))


def test_existing_folders_are_protected(tmp_path, frequency_net):
    models, versions = {"frequency": frequency_net}, {"frequency": DIGESTS["frequency"]}
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError, match="no deeptrawl export"):
        write_triton_repo(foreign, models, versions)
    assert [p.name for p in foreign.iterdir()] == ["keep.txt"]

    target = tmp_path / "repo"
    write_triton_repo(target, models, versions, formats=("torchscript",))
    with pytest.raises(ConfigError, match="previous export"):
        write_triton_repo(target, models, versions)
    write_triton_repo(target, models, versions, overwrite=True)
    assert sorted(p.name for p in (target / "frequency" / "1").iterdir()) == ["model.onnx"]


class TwoLogits(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :2]


def test_failed_export_leaves_the_folder_as_it_was(tmp_path, frequency_net):
    target, versions = tmp_path / "repo", {"frequency": DIGESTS["frequency"]}
    with pytest.raises(ValueError, match="eval mode"):
        write_triton_repo(target, {"frequency": FrequencyNet()}, versions)
    with pytest.raises(ValueError, match="no export spec"):
        write_triton_repo(target, {"resnet": frequency_net}, {"resnet": "x"})
    assert list(tmp_path.iterdir()) == []

    write_triton_repo(target, {"frequency": frequency_net}, versions)
    before = {p: p.read_bytes() for p in target.rglob("*") if p.is_file()}
    with pytest.raises(ExportError, match=r"returns \(1, 2\) per item"):
        write_triton_repo(target, {"frequency": TwoLogits().eval()}, versions, overwrite=True)
    assert {p: p.read_bytes() for p in target.rglob("*") if p.is_file()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["repo"]  # the staging folder is gone


# --- the command line ---------------------------------------------------------------------------


def test_cli_export_json_gpu_both_formats(tmp_path, monkeypatch, frequency_net):
    monkeypatch.setattr(deeptrawl.models, "load_frequency", lambda directory: frequency_net)
    monkeypatch.setattr(weights, "digest", lambda name: DIGESTS["frequency"])
    target = tmp_path / "repo"
    args = ["models", "export", "--triton-repo", str(target), "--models", "frequency", "--format", "both",
            "--instance-kind", "gpu", "--json"]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    manifest = json.loads(result.stdout)
    assert manifest == json.loads((target / MANIFEST).read_text())
    assert manifest["formats"] == ["onnx", "torchscript"] and manifest["triton"]["instance_kind"] == "gpu"
    config = text_format.Parse((target / "frequency/config.pbtxt").read_text(), model_config_pb2.ModelConfig())
    assert config.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_GPU


def test_cli_missing_weights_is_one_line_exit_2(tmp_path, monkeypatch):
    message = "no trained weights 'frequency.pt' in weights/ (train them: deeptrawl train --help)"

    def missing(directory):
        raise weights.WeightsError(message)

    monkeypatch.setattr(deeptrawl.models, "load_frequency", missing)
    args = ["models", "export", "--triton-repo", str(tmp_path / "repo"), "--models", "frequency"]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [f"error: {message}"]
    assert not (tmp_path / "repo").exists()


def test_cli_list_help_and_bad_names():
    runner = CliRunner()
    listed = runner.invoke(main, ["models", "list"], catch_exceptions=False)
    assert listed.exit_code == 0
    assert [line.split()[0] for line in listed.stdout.splitlines()] == list(SPECS)
    assert "tiles uint8 N x 3x224x224" in listed.stdout
    assert "Exit codes" in runner.invoke(main, ["models", "export", "--help"]).stdout
    bad = runner.invoke(main, ["models", "export", "--triton-repo", "x", "--models", "cnn,resnet"])
    assert bad.exit_code == 2 and "resnet" in bad.output
