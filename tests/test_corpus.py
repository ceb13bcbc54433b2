"""The labelled corpus: what ``deeptrawl corpus build`` writes must be what the manifest says.

One small build of every kind (``built``, shared by the module) is checked file by file:
bytes against sha256, decoded size against the manifest, masks against pictures, splits
against source groups and donors. Cheaper builds check determinism, the refusal to write
over foreign folders, and that formats do not give the label away. The generators we own
(Real-ESRGAN, upsampling) are checked for the trace they are meant to leave.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from PIL import Image

from deeptrawl import __version__
from deeptrawl.corpus import KINDS, SPLITS, sources
from deeptrawl.corpus.build import MANIFEST_SCHEMA, build
from deeptrawl.corpus.fakes import esrgan, upsample
from deeptrawl.corpus.upload import upload
from deeptrawl.errors import ConfigError
from deeptrawl.samples.media import rgb_photo

CHEAP = ("real", "upsample", "splice", "copymove")
EXTENSION = {"png": "png", "webp": "webp", "jpeg_hi": "jpg", "jpeg_mid": "jpg", "jpeg_lo": "jpg"}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus")
    summary = build(out, per_kind=3, seed=0)
    return out, summary, pq.read_table(out / "manifest.parquet")


@pytest.fixture(scope="module")
def cheap(tmp_path_factory):
    """A larger build of the kinds without faces or Real-ESRGAN, for distributions."""
    out = tmp_path_factory.mktemp("cheap")
    build(out, per_kind=20, seed=0, kinds=CHEAP)
    return out, pq.read_table(out / "manifest.parquet").to_pylist()


def test_manifest_schema_and_recipe(built):
    out, summary, table = built
    assert table.schema.equals(MANIFEST_SCHEMA, check_metadata=False)
    assert table.num_rows == summary.total
    recipe = json.loads((out / "corpus.json").read_text())
    assert recipe["complete"] is True
    assert (recipe["seed"], recipe["per_kind"], recipe["deeptrawl_version"]) == (0, 3, __version__)
    assert recipe["counts"] == summary.counts
    # Every kind in every split; reals as many as all fakes together.
    for split in SPLITS:
        assert all(summary.counts[split][kind] >= 1 for kind in KINDS), (split, summary.counts[split])
    fakes = sum(summary.counts[s][k] for s in SPLITS for k in KINDS if k != "real")
    assert sum(summary.counts[s]["real"] for s in SPLITS) == fakes == 3 * (len(KINDS) - 1)
    assert not any(summary.skipped.values())


def test_every_file_matches_its_row(built):
    out, _, table = built
    for row in table.to_pylist():
        data = (out / row["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == row["sha256"]
        assert row["path"] == f"{row['split']}/{row['kind']}/{Path(row['path']).name}"
        assert row["path"].endswith("." + EXTENSION[row["compression"]])
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            assert image.size == (row["width"], row["height"])
            assert image.format == {"jpg": "JPEG", "png": "PNG", "webp": "WEBP"}[row["path"].rsplit(".", 1)[1]]
        assert row["label"] == int(row["kind"] != "real")
        if row["kind"] == "real":
            assert row["mask_path"] is None
            continue
        mask = np.asarray(Image.open(out / row["mask_path"]))
        assert mask.shape == (row["height"], row["width"]) and set(np.unique(mask)) <= {0, 255}
        assert mask.any()
        if row["kind"] in ("esrgan", "upsample"):
            assert mask.all()
        else:
            assert not mask.all()


def test_splits_never_share_a_scene(built):
    _, _, table = built
    rows = table.to_pylist()
    groups = {split: {r["source_group"] for r in rows if r["split"] == split} for split in SPLITS}
    assert not (groups["train"] & groups["calib"]) and not (groups["train"] & groups["test"])
    assert not (groups["calib"] & groups["test"])
    split_of = {s.group: s.split for s in sources.catalog()}
    for row in rows:
        assert split_of[row["source_group"]] == row["split"]
        if row["donor_group"] is not None:
            assert split_of[row["donor_group"]] == row["split"], row
        if row["kind"] in ("splice", "faceswap"):
            assert row["donor_id"] is not None
        if row["kind"] == "splice":
            assert row["donor_group"] != row["source_group"]
    # Test's face swaps exchange two identities.
    swaps = [r for r in rows if r["kind"] == "faceswap" and r["split"] == "test"]
    assert swaps and all(r["donor_group"] != r["source_group"] for r in swaps)


def test_faces_in_every_split():
    face_groups = {split: {s.group for s in sources.catalog() if s.has_face and s.split == split} for split in SPLITS}
    assert all(face_groups.values()), face_groups
    videos = {s.group for s in sources.catalog() if s.media_kind == "frame"}
    assert {s.split for s in sources.catalog() if s.group in videos} <= set(SPLITS)
    for group in videos:
        assert len({s.split for s in sources.catalog() if s.group == group}) == 1


def test_wallpaper_photos_only_on_request_and_all_or_none(tmp_path, monkeypatch):
    # Stand-ins for Debian's wallpaper files (the packages need not be installed here).
    monkeypatch.setattr(sources, "BACKGROUNDS", tmp_path)
    sources.catalog.cache_clear()
    try:
        with pytest.raises(ConfigError, match="make corpus-photos"):
            build(tmp_path / "corpus", per_kind=1, kinds=("real",), wallpapers=True)
        assert not (tmp_path / "corpus").exists()  # refused before writing anything
        big = cv2.resize(rgb_photo("chelsea"), (1600, 1200), interpolation=cv2.INTER_AREA)
        for file in sources._WALLPAPERS:
            (tmp_path / file).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(big).save(tmp_path / file, quality=92)
        sources.catalog.cache_clear()
        added = set(sources.catalog(wallpapers=True)) - set(sources.catalog())
        assert len(added) == len({s.group for s in added}) == 25
        assert {s.split for s in added} == set(SPLITS) and not any(s.has_face for s in added)
        dune = next(s for s in added if s.id == "dune")
        assert (dune.group, dune.split, dune.package) == ("dune", "calib", "mate-backgrounds")
        rgb = sources.pixels(dune)
        assert rgb.shape == (sources.WALLPAPER_SIDE * 1200 // 1600, sources.WALLPAPER_SIDE, 3)
        assert not rgb.flags.writeable
    finally:
        sources.catalog.cache_clear()
        sources._wallpaper.cache_clear()


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path, cheap):
    first, rows = cheap
    again = tmp_path / "again"
    build(again, per_kind=20, seed=0, kinds=CHEAP)
    assert (again / "manifest.parquet").read_bytes() == (first / "manifest.parquet").read_bytes()
    assert (again / "corpus.json").read_text() == (first / "corpus.json").read_text()
    for row in rows:
        assert (again / row["path"]).read_bytes() == (first / row["path"]).read_bytes()
    other = tmp_path / "other"
    build(other, per_kind=2, seed=1, kinds=("real", "upsample"))
    other_rows = pq.read_table(other / "manifest.parquet").to_pylist()
    assert {r["sha256"] for r in other_rows}.isdisjoint(r["sha256"] for r in rows)


@pytest.mark.slow
def test_full_build_is_deterministic(tmp_path, built):
    first, _, table = built
    build(tmp_path, per_kind=3, seed=0)
    assert (tmp_path / "manifest.parquet").read_bytes() == (first / "manifest.parquet").read_bytes()
    for row in table.to_pylist():
        assert (tmp_path / row["path"]).read_bytes() == (first / row["path"]).read_bytes()
        if row["mask_path"]:
            assert (tmp_path / row["mask_path"]).read_bytes() == (first / row["mask_path"]).read_bytes()


def test_format_and_size_do_not_give_the_label_away(cheap):
    _, rows = cheap
    for kind in CHEAP:
        mine = [r for r in rows if r["kind"] == kind]
        assert len({r["compression"] for r in mine}) >= 3, (kind, Counter(r["compression"] for r in mine))
        assert len({r["resolution"] for r in mine}) >= 2, kind
    real = [r for r in rows if r["label"] == 0]
    fake = [r for r in rows if r["label"] == 1]
    assert len(real) == len(fake)

    def share(group, key, value):
        return sum(r[key] == value for r in group) / len(group)

    for value in ("png", "webp", "jpeg_lo"):
        assert abs(share(real, "compression", value) - share(fake, "compression", value)) < 0.2, value
    # Reals follow the fakes' choice of sources, so sizes match too.
    def median_pixels(group):
        return np.median([r["width"] * r["height"] for r in group])

    assert abs(median_pixels(real) / median_pixels(fake) - 1) < 0.4


def test_upload_mixes_formats_and_keeps_masks_aligned():
    rgb = rgb_photo("astronaut")
    mask = np.zeros(rgb.shape[:2], bool)
    mask[200:260, 300:380] = True
    formats = Counter()
    for i in range(60):
        up = upload(rgb, np.random.default_rng(i), mask)
        decoded = np.asarray(Image.open(io.BytesIO(up.data)))
        assert decoded.shape[:2] == up.mask.shape == (up.height, up.width)
        assert up.mask.sum() >= 0.4 * mask.sum() * up.scale**2  # the crop keeps the manipulated region
        assert min(up.width, up.height) >= 64
        formats[up.extension] += 1
    assert set(formats) == {"jpg", "png", "webp"} and formats["jpg"] > formats["png"]


def test_esrgan_synthesises_its_own_detail():
    crop = np.ascontiguousarray(rgb_photo("astronaut")[60:188, 170:298])  # the face and hair
    fake = esrgan.make(crop)
    assert fake.rgb.shape == crop.shape and fake.mask.all() and fake.kind == "esrgan"
    assert np.array_equal(esrgan.make(crop).rgb, fake.rgb)  # deterministic
    small = cv2.resize(crop, (32, 32), interpolation=cv2.INTER_AREA)
    bicubic = cv2.resize(small, (128, 128), interpolation=cv2.INTER_CUBIC)
    assert np.abs(fake.rgb.astype(int) - bicubic).mean() > 3

    def sharpness(rgb):
        return cv2.Laplacian(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var()

    # A plain enlargement is blurry; the GAN invents edges and texture.
    assert sharpness(fake.rgb) > 2 * sharpness(bicubic)


def test_esrgan_names_the_install_command_when_missing(monkeypatch):
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(ConfigError, match="requirements-nodeps.txt"):
        esrgan.model_dir()


@pytest.mark.parametrize("method", upsample.METHODS)
def test_upsampling_leaves_the_spectral_trace(method):
    from deeptrawl.detectors.spectrum import FEATURE_NAMES, model_inputs, spectral_features

    def trace(rgb):
        f = model_inputs(dict(zip(FEATURE_NAMES, map(float, spectral_features(rgb)))))
        return f["half_excess"] + f["half_outer"], f["peak_half"]

    for name in ("coffee", "chelsea"):
        real = np.ascontiguousarray(rgb_photo(name)[:256, :256])
        fake = upsample.make(real, np.random.default_rng(0), method)
        assert fake.rgb.shape == real.shape and fake.mask.all()
        (real_corr, real_peak), (fake_corr, fake_peak) = trace(real), trace(fake.rgb)
        assert fake_corr > real_corr + 0.2, (name, real_corr, fake_corr)
        if method == "tconv":  # the checkerboard
            assert fake_peak > real_peak + 0.5, (name, real_peak, fake_peak)


def test_grey_sources_stay_grey(built):
    out, _, table = built
    grey = {s.id for s in sources.catalog() if sources.is_grey(sources.pixels(s))}
    rows = [r for r in table.to_pylist() if r["source_id"] in grey and r["label"] == 1]
    assert rows
    for row in rows:
        rgb = np.asarray(Image.open(out / row["path"]).convert("RGB")).astype(int)
        assert np.abs(rgb[:, :, 0] - rgb[:, :, 2]).mean() < 2, row["path"]


def test_refuses_a_foreign_folder_but_replaces_a_corpus(tmp_path):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="--force"):
        build(foreign, per_kind=1, kinds=("real",))
    build(foreign, per_kind=1, kinds=("real",), force=True)
    assert (foreign / "notes.txt").read_text() == "mine"

    previous = tmp_path / "previous"
    build(previous, per_kind=2, kinds=("real",))
    build(previous, per_kind=1, kinds=("real",))
    files = sorted(p.relative_to(previous).as_posix() for p in previous.rglob("*") if p.is_file())
    listed = sorted(pq.read_table(previous / "manifest.parquet").column("path").to_pylist())
    assert files == sorted(listed + ["corpus.json", "manifest.parquet"])
    with pytest.raises(ConfigError, match="unknown corpus kinds"):
        build(tmp_path / "x", kinds=("deepfake",))


def test_cli_help_and_json_build(tmp_path):
    from deeptrawl.cli import main

    runner = CliRunner()
    result = runner.invoke(main, ["corpus", "build", "--help"])
    assert result.exit_code == 0 and "--per-kind" in result.output and "Exit codes" in result.output
    out = tmp_path / "c"
    result = runner.invoke(main, ["corpus", "build", str(out), "--per-kind", "1", "--kinds", "real,splice", "--json",
                                  "--no-progress"])  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["total"] == 2 and summary["counts"]["train"] == {"real": 1, "splice": 1}
    result = runner.invoke(main, ["corpus", "build", str(out), "--per-kind", "1", "--kinds", "real"])
    assert result.exit_code == 0 and "train" in result.output  # a previous corpus is rebuilt; table printed
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x").write_text("x")
    result = runner.invoke(main, ["corpus", "build", str(tmp_path / "other"), "--kinds", "real"])
    assert result.exit_code == 2 and "--force" in result.output
    result = runner.invoke(main, ["corpus", "build", str(out), "--kinds", "real,nope"])
    assert result.exit_code == 2 and "nope" in result.output
