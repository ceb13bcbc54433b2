"""Learned detectors: training end to end on a small real corpus, checksummed weights,
Grad-CAM evidence, and what the committed models do on media they never saw.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from deeptrawl import fusion
from deeptrawl.config import Limits
from deeptrawl.corpus.build import build
from deeptrawl.detectors.learned.cnn import CnnDetector, FaceCnnDetector
from deeptrawl.detectors.learned.frequency import FrequencyDetector
from deeptrawl.errors import ConfigError
from deeptrawl.media import load_item
from deeptrawl.metrics import roc_auc
from deeptrawl.models import tiles, weights
from deeptrawl.models.train import TrainSettings, group_folds, train
from deeptrawl.samples import media


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus")
    build(out, per_kind=4, seed=11)
    return out


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("weights")
    report = train(TrainSettings(corpus=corpus, out=out, epochs=2, seed=0))
    return out, report


def _item(rgb: np.ndarray, name: str = "x.png"):
    return load_item(name, media.encode(rgb, "PNG"), Limits())


# -- tiles ---------------------------------------------------------------------------


def test_tiles_cover_the_image_evenly_and_pad_small_ones():
    assert tiles.positions(100, 100) == [(0, 0)]
    assert tiles.positions(224, 500) == [(0, 0), (0, 276)]
    assert tiles.positions(1000, 1000, max_per_side=3) == [(y, x) for y in (0, 388, 776) for x in (0, 388, 776)]
    small = tiles.extract(np.zeros((50, 80, 3), np.uint8), [(0, 0)])
    assert small.shape == (1, 3, 224, 224) and small.dtype == np.uint8


def test_smooth_max_pooling_sits_between_mean_and_max():
    logits = np.array([-3.0, -3.0, 4.0])
    assert logits.mean() < tiles.pool_logits(logits) < logits.max()
    assert tiles.pool_logits(np.array([1.5, 1.5])) == pytest.approx(1.5)


def test_tile_labels_follow_the_mask():
    mask = np.zeros((448, 448), bool)
    mask[:40, :40] = True  # 1600 px of a 224x224 tile: 3%
    mask[300:, 300:] = True
    labels = tiles.tile_labels(mask, tiles.positions(448, 448))
    assert labels.tolist() == [-1, 0, 0, 1]


# -- training ------------------------------------------------------------------------


@pytest.mark.slow
def test_training_writes_checksummed_weights_and_metrics(trained):
    out, report = trained
    sums = weights.recorded(out)
    assert set(sums) == {"cnn.pt", "face_cnn.pt", "frequency.pt", "fusion.json"}
    for name in ("cnn", "face_cnn", "frequency"):
        assert report[name]["sha256"] == sums[f"{name}.pt"]
        assert 0.0 <= report[name]["oof_auc"] <= 1.0 or np.isnan(report[name]["oof_auc"])
        assert len(report[name]["oof_auc_history"]) == (40 if name == "frequency" else 2)
    assert report["cnn"]["epochs"] in (1, 2) and 10 <= report["frequency"]["steps"] <= 400
    recorded = json.loads((out / "training.json").read_text())
    assert recorded["corpus"]["seed"] == 11
    model = fusion.load(out)
    assert model is not None and 0 <= model.t_authentic <= model.t_synthetic <= 1
    # Committed files are small: only the tail and head of each CNN, in float16.
    assert (out / "cnn.pt").stat().st_size < 4_000_000


@pytest.mark.slow
def test_refitting_the_fusion_alone_reproduces_it_and_keeps_the_networks(corpus, trained, tmp_path):
    """`deeptrawl train --models fusion` (after a forensic detector changed, say) cross-fits
    the networks again for their out-of-fold scores, deterministically, and writes none of them."""
    import shutil

    out, _ = trained
    shutil.copytree(out, tmp_path, dirs_exist_ok=True)
    train(TrainSettings(corpus=corpus, out=tmp_path, epochs=2, seed=0), only=["fusion"])
    assert weights.recorded(tmp_path) == weights.recorded(out)
    assert fusion.load(tmp_path).to_json() == fusion.load(out).to_json()


def test_group_folds_keep_each_source_group_whole_and_balance_the_folds():
    groups = np.array(["a"] * 6 + ["b"] * 5 + ["c"] * 3 + ["d"] * 3 + ["e"] * 2 + ["f"])
    fold = group_folds(groups, 3)
    for g in set(groups):
        assert len(set(fold[groups == g])) == 1
    assert sorted(np.bincount(fold).tolist()) == [6, 7, 7]
    assert np.array_equal(group_folds(groups[::-1], 3), fold[::-1])  # by group, not by row order
    with pytest.raises(ConfigError, match="source groups"):
        group_folds(groups, 7)


@pytest.mark.slow
def test_a_tampered_weights_file_is_refused(trained, tmp_path):
    out, _ = trained
    for name in ("frequency.pt", weights.SUMS):
        (tmp_path / name).write_bytes((out / name).read_bytes())
    data = bytearray((tmp_path / "frequency.pt").read_bytes())
    data[-20] ^= 0xFF
    (tmp_path / "frequency.pt").write_bytes(bytes(data))
    with pytest.raises(weights.WeightsError, match="does not match"):
        weights.load_state("frequency.pt", tmp_path)
    with pytest.raises(weights.WeightsError, match="no trained weights"):
        weights.load_state("cnn.pt", tmp_path)


@pytest.mark.slow
def test_trained_detectors_explain_with_grad_cam(trained):
    out, _ = trained
    photo = media.rgb_photo("astronaut")
    items = [_item(photo), _item(np.ascontiguousarray(photo[:150, :300]), "small.png")]
    for detector in (CnnDetector(out), FaceCnnDetector(out)):
        results = detector.analyze(items)
        assert len(results) == 2
        result = results[0]
        assert 0.0 <= result.score <= 1.0
        (heat,) = [e for e in result.evidence if e.name == "gradcam"]
        assert heat.array.shape == photo.shape[:2] and heat.array.dtype == np.float32
        assert 0.0 <= heat.array.min() and heat.array.max() <= 1.0
        if detector.name == "face_cnn":
            # The map lives on the face crop only (the astronaut's face is near x 180-270, y 60-175).
            ys, xs = np.nonzero(heat.array)
            assert ys.size == 0 or (ys.min() >= 0 and xs.min() > 100 and ys.max() < 260)
    assert FaceCnnDetector(out).analyze([_item(media.rgb_photo("coffee"))])[0].score is None  # no face: abstains
    freq = FrequencyDetector(out).analyze(items)
    assert all(0.0 <= r.score <= 1.0 for r in freq)


# -- the committed models ------------------------------------------------------------


def test_committed_weights_match_their_checksums():
    sums = weights.recorded()
    assert {"cnn.pt", "face_cnn.pt", "frequency.pt", "fusion.json"} <= set(sums)
    for name in sums:
        weights.read_checked(name)
    assert (weights.WEIGHTS_DIR / "MODEL_CARD.md").exists()


def test_committed_frequency_model_finds_upsampling_it_never_saw():
    """The spectrum detector's own ground-truth corpus (seeded x2 upsampling vs originals,
    made differently from the training corpus): the learned frequency model ranks it."""
    from deeptrawl.samples import corpus_spectrum

    cases = corpus_spectrum.cases(40, seed=7)
    detector = FrequencyDetector()
    results = detector.analyze([load_item(c.name, c.data, Limits()) for c in cases])
    scored = [(c.manipulated, r.score) for c, r in zip(cases, results) if r.score is not None]
    labels, scores = (np.array(v) for v in zip(*scored))
    assert roc_auc(labels, scores) >= 0.75

def _fresh_trunk(monkeypatch, backend: str, cache):
    from deeptrawl.models import trunk

    monkeypatch.setenv("DEEPTRAWL_TRUNK", backend)
    monkeypatch.setenv("DEEPTRAWL_CACHE", str(cache))
    trunk.trunk.cache_clear()
    return trunk


def test_cnn_trunk_runs_in_onnx_runtime_with_pytorchs_scores(monkeypatch, tmp_path):
    """The frozen trunk is exported once into the cache and run by ONNX Runtime; the
    detectors' scores and Grad-CAM maps are PyTorch's; a damaged cached file is replaced."""
    photo = media.rgb_photo("astronaut")
    items = [_item(photo), _item(np.ascontiguousarray(photo[100:400, 50:450]), "crop.png")]
    try:
        module = _fresh_trunk(monkeypatch, "torch", tmp_path)
        expected = CnnDetector().analyze(items)
        assert not list(tmp_path.iterdir())  # PyTorch: nothing exported

        module = _fresh_trunk(monkeypatch, "onnxruntime", tmp_path)
        got = CnnDetector().analyze(items)
        (exported,) = tmp_path.glob("trunk-*.onnx")
        for a, b in zip(got, expected):
            assert a.score == pytest.approx(b.score, abs=1e-4)
            assert np.allclose(a.evidence[0].array, b.evidence[0].array, atol=1e-3)

        exported.write_bytes(exported.read_bytes()[:1000])  # an interrupted copy, say
        module.trunk.cache_clear()
        again = CnnDetector().analyze(items[:1])[0]
        assert again.score == pytest.approx(expected[0].score, abs=1e-4)
        assert exported.stat().st_size > 1_000_000

        monkeypatch.setenv("DEEPTRAWL_TRUNK", "tensorflow")
        module.trunk.cache_clear()
        with pytest.raises(Exception, match="DEEPTRAWL_TRUNK"):
            module.trunk()
    finally:
        monkeypatch.undo()
        module.trunk.cache_clear()


def test_one_failing_input_does_not_lose_the_batch(monkeypatch):
    import deeptrawl.detectors.learned.frequency as freq_module

    photo = media.rgb_photo("astronaut")
    items = [_item(photo[:256, :256], "a.png"), _item(photo[:200, :300], "bad.png"), _item(photo[256:, 256:], "c.png")]
    original_prepare, original_features = CnnDetector.prepare, freq_module.spectral_features

    def prepare(self, item):
        if item.uri == "bad.png":
            raise ValueError("injected")
        return original_prepare(self, item)

    def features(rgb):
        if rgb.shape[:2] == (200, 300):
            raise ValueError("injected")
        return original_features(rgb)

    monkeypatch.setattr(CnnDetector, "prepare", prepare)
    monkeypatch.setattr(freq_module, "spectral_features", features)
    for detector in (CnnDetector(), FrequencyDetector()):
        results = detector.analyze(items)
        assert [r.error is not None for r in results] == [False, True, False]
        assert results[1].error.code == "detector_failed" and "injected" in results[1].error.message
        alone = detector.analyze([items[2]])[0]
        assert results[2].score == pytest.approx(alone.score, abs=1e-6)


def test_evaluate_a_users_labelled_folder(tmp_path):
    """`deeptrawl evaluate` on a folder laid out real/ and fake/<kind>/, as a user would have it."""
    from click.testing import CliRunner

    from deeptrawl.cli import main
    from deeptrawl.samples import corpus_spectrum

    labelled = tmp_path / "labelled"
    for i, case in enumerate(corpus_spectrum.cases(12, seed=3)):
        folder = labelled / ("fake/upsample" if case.manipulated else "real")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{i:02d}-{case.name.replace('/', '_')}").write_bytes(case.data)
    result = CliRunner().invoke(main, ["evaluate", "--labels", str(labelled), "--out", str(tmp_path / "eval"), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["overall"]["n"] == 12 and report["overall"]["n_errors"] == 0
    assert [k["kind"] for k in report["kinds"]] == ["upsample"]
    for name in ("report.md", "report.json", "roc.png", "reliability.png", "scores.png", "scores.parquet"):
        assert (tmp_path / "eval" / name).stat().st_size > 0
    assert "AUC" in (tmp_path / "eval" / "report.md").read_text()
