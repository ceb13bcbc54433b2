"""The evaluation report: known answers on small and seeded synthetic tables.

The metrics themselves are checked against hand-computed values in test_metrics.py.
"""

import dataclasses
import json

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image

from deeptrawl.evaluation import OperatingPoint, evaluate

OP = OperatingPoint(t_synthetic=0.7, t_authentic=0.35)


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    """200 reals below 0.5; a kind the detector separates perfectly (scores above 0.6) and one
    it cannot tell from reals (the very same scores as the reals); a few error rows."""
    rng = np.random.default_rng(1)
    real = rng.uniform(0.0, 0.5, 200)
    out = [
        {"label": 0, "score": s, "kind": "real", "compression": ("none", "heavy")[i % 2], "resolution": 1080}
        for i, s in enumerate(real)
    ]
    out += [
        {"label": 1, "score": s, "kind": "faceswap", "compression": "none", "resolution": 720}
        for s in rng.uniform(0.6, 1.0, 100)
    ]
    out += [
        {"label": 1, "score": s, "kind": "upsample", "compression": "heavy", "resolution": None}
        for s in real
    ]
    out += [{"label": 1, "score": None, "kind": "upsample", "compression": "heavy", "resolution": 720}] * 5
    out += [{"label": 0, "score": None, "kind": "real", "compression": "none", "resolution": 1080}] * 3
    return [{k: (float(v) if isinstance(v, np.floating) else v) for k, v in r.items()} for r in out]


@pytest.fixture(scope="module")
def report(rows):
    return evaluate(
        rows, OP, subgroups=["compression", "resolution"], loko={"faceswap": 0.81, "upsample": 0.49},
        command="deeptrawl evaluate runs/eval --split test",
    )  # fmt: skip


def test_overall_by_hand():
    rows = [
        {"label": 0, "score": 0.1, "kind": "real"},
        {"label": 0, "score": 0.5, "kind": "real"},  # inconclusive
        {"label": 0, "score": 0.8, "kind": "real"},  # false positive
        {"label": 1, "score": 0.9, "kind": "sbi"},
        {"label": 1, "score": 0.7, "kind": "sbi"},  # == t_synthetic: flagged
        {"label": 1, "score": 0.4, "kind": "sbi"},  # inconclusive: not flagged
        {"label": 1, "score": None, "kind": "sbi"},
    ]
    o = evaluate(rows, OP).overall
    assert (o.n, o.n_errors, o.n_real, o.n_fake) == (6, 1, 3, 3)
    assert tuple(o.confusion) == (2, 1, 1, 2)  # tn, fp, fn, tp
    assert o.tpr == pytest.approx(2 / 3) and o.fpr == pytest.approx(1 / 3)
    assert o.f1 == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))
    assert o.inconclusive == pytest.approx(2 / 6)
    # pairs (pos, neg): 0.9 beats all 3, 0.7 beats 2, 0.4 beats 1 -> 6 of 9
    assert o.auc == pytest.approx(6 / 9)


def test_per_kind_separable_vs_indistinguishable(report):
    kinds = {k.kind: k for k in report.kinds}
    assert set(kinds) == {"faceswap", "upsample"}  # fake kinds only, each against all reals
    assert (kinds["faceswap"].auc, kinds["faceswap"].average_precision) == (1.0, 1.0)
    assert kinds["upsample"].auc == 0.5  # same scores as the reals: every pair ties or cancels
    assert kinds["upsample"].tpr == 0.0  # nothing above 0.5 reaches 0.7
    assert kinds["faceswap"].n == 100 and kinds["upsample"].n == 200
    assert (kinds["faceswap"].n_errors, kinds["upsample"].n_errors) == (0, 5)


def test_error_rows_counted_and_excluded(rows, report):
    clean = evaluate([r for r in rows if r["score"] is not None], OP, subgroups=["compression", "resolution"])
    assert report.overall.n_errors == 8 and clean.overall.n_errors == 0
    assert dataclasses.replace(report.overall, n_errors=0) == clean.overall
    heavy = {g.value: g for g in report.subgroups[0].rows}["heavy"]
    assert heavy.n_errors == 5 and heavy.n_fake == 200


def test_subgroup_gap_by_hand():
    def group(value, reals, fakes):
        return [{"label": 0, "score": s, "kind": "real", "g": value} for s in reals] + [
            {"label": 1, "score": s, "kind": "gan", "g": value} for s in fakes
        ]

    rows = (
        group("a", [0.1, 0.2], [0.8, 0.9])  # AUC 1, FPR 0
        + group("b", [0.5, 0.8], [0.5, 0.8])  # AUC 0.5, FPR 1/2
        + group("c", [0.9], [0.1])  # AUC 0, FPR 1: too small for either gap
        + group(None, [0.3, 0.4], [0.7, 0.75])
    )
    table = evaluate(rows, OP, subgroups=["g"], min_count=2).subgroups[0]
    assert [r.value for r in table.rows] == ["a", "b", "c", "(missing)"]
    c = table.rows[2]
    assert (c.auc, c.fpr, c.tpr) == (0.0, 1.0, 0.0)
    assert (table.auc_gap.best_group, table.auc_gap.worst_group, table.auc_gap.gap) == ("a", "b", 0.5)
    assert (table.fpr_gap.best_group, table.fpr_gap.worst_group, table.fpr_gap.gap) == ("a", "b", 0.5)
    # with a higher minimum no two groups qualify: no gap rather than a misleading one
    table = evaluate(rows, OP, subgroups=["g"], min_count=3).subgroups[0]
    assert table.auc_gap is None and table.fpr_gap is None


def test_subgroups_in_natural_order(report):
    compression, resolution = report.subgroups
    assert [r.value for r in resolution.rows] == ["720", "1080", "(missing)"]
    # faceswap (720) is perfectly separable, but 720 has no reals: no AUC there
    assert resolution.rows[0].auc is None and resolution.rows[0].n_real == 0
    assert compression.auc_gap is not None and compression.auc_gap.best_group == "none"


def test_markdown_has_every_section(report):
    md = report.to_markdown()
    for heading in ("# Evaluation report", "## Overall", "## Per fake kind", "## Subgroups",
                    "### `compression`", "### `resolution`", "## Leave one kind out", "## Plots"):  # fmt: skip
        assert heading in md
    assert "deeptrawl evaluate runs/eval --split test" in md
    assert "- AUC gap: **" in md and "- FPR gap:" in md
    assert "| `upsample` | 0.490 | 0.500 |" in md  # LOKO next to the in-distribution AUC
    for png in ("roc.png", "reliability.png", "scores.png"):
        assert f"]({png})" in md
    bare = evaluate([{"label": 0, "score": 0.2, "kind": "real"}], OP).to_markdown()
    assert "## Leave one kind out" not in bare and "## Subgroups" not in bare and "Produced by" not in bare


def test_write_produces_report_json_and_plots(report, tmp_path):
    out = report.write(tmp_path / "eval")
    assert json.loads((out / "report.json").read_text()) == report.to_dict()
    assert (out / "report.md").read_text() == report.to_markdown()
    for name in ("roc.png", "reliability.png", "scores.png"):
        path = out / name
        assert path.stat().st_size > 0
        with Image.open(path) as image:
            assert image.format == "PNG" and image.width > 0 and image.height > 0


def test_to_dict_is_plain_json(report):
    d = report.to_dict()
    assert json.loads(json.dumps(d, allow_nan=False)) == d
    assert d["overall"]["confusion"].keys() == {"tn", "fp", "fn", "tp"}
    assert d["loko"] == {"faceswap": 0.81, "upsample": 0.49}
    assert "scored" not in d


def test_arrow_table_same_as_dicts(rows, report):
    table = pa.Table.from_pylist(rows)
    from_arrow = evaluate(table, OP, subgroups=["compression", "resolution"], loko=report.loko,
                          command=report.command)  # fmt: skip
    assert from_arrow.to_dict() == report.to_dict()


def test_one_class_only_is_reported_not_raised(tmp_path):
    rows = [{"label": 0, "score": s, "kind": "real", "g": "x"} for s in (0.1, 0.5, 0.9)]
    r = evaluate(rows, OP, subgroups=["g"], min_count=1)
    assert r.overall.auc is None and r.overall.eer is None and r.overall.tpr is None
    assert r.overall.fpr == pytest.approx(1 / 3) and r.kinds == ()
    assert json.loads(json.dumps(r.to_dict(), allow_nan=False)) == r.to_dict()
    r.write(tmp_path)  # the plots draw a note instead of a curve
    assert (tmp_path / "roc.png").stat().st_size > 0


def test_bad_input_raises():
    with pytest.raises(ValueError, match="t_authentic"):
        OperatingPoint(t_synthetic=0.3, t_authentic=0.6)
    with pytest.raises(ValueError, match="lack"):
        evaluate([{"label": 0, "score": 0.1, "kind": "real"}], OP, subgroups=["typo"])
    with pytest.raises(ValueError, match="lack"):
        evaluate(pa.table({"label": [0], "score": [0.1]}), OP)
    with pytest.raises(ValueError, match="label"):
        evaluate([{"label": None, "score": 0.1, "kind": "real"}], OP)
    with pytest.raises(ValueError, match="0/1"):
        evaluate([{"label": 2, "score": 0.1, "kind": "real"}], OP)
