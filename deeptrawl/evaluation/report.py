"""The evaluation report: labelled scan results -> headline, per-kind and per-subgroup tables.

One AUC over a whole corpus hides what matters for a detector that will meet media nobody
trained it on: which kinds of fake it misses, and whether it fails more often on some slice
of the data (heavily compressed video, small images, one source package). So the report
breaks every number down by fake kind (each kind against *all* reals, so a kind's AUC is
not flattered by easy reals of its own) and by every subgroup column the caller names,
with the spread between the best and worst group, ignoring groups too small to estimate.

Rows whose score is null are errors (the object could not be analysed). They are counted,
per kind and per group, and left out of every metric: an error is neither a hit nor a miss.

Numbers that the data cannot define (an AUC without reals, a TPR without fakes) are
``None``, never ``nan``, so ``to_dict()`` is plain JSON.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pyarrow as pa

from deeptrawl import metrics
from deeptrawl.metrics import Confusion

#: Equal-width probability bins for the ECE and the reliability diagram.
CALIBRATION_BINS = 15
#: The plots ``write()`` produces, by file name, with their captions.
PLOTS = MappingProxyType({
    "roc.png": "ROC, overall and per fake kind",
    "reliability.png": "Reliability diagram",
    "scores.png": "Score distributions",
})
_MISSING = "(missing)"


@dataclass(frozen=True, kw_only=True)
class OperatingPoint:
    """``score >= t_synthetic`` -> likely_synthetic; ``score <= t_authentic`` -> likely_authentic."""

    t_synthetic: float
    t_authentic: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.t_authentic <= self.t_synthetic <= 1.0:
            raise ValueError(f"need 0 <= t_authentic <= t_synthetic <= 1, got {self}")


@dataclass(frozen=True, kw_only=True)
class Overall:
    """Headline numbers over every scored row. Positive prediction: ``score >= t_synthetic``
    (inconclusive counts as not flagged), which is what ``confusion``, ``f1``, ``tpr`` and
    ``fpr`` use; ``inconclusive`` is the fraction of scored rows between the thresholds."""

    n: int
    n_errors: int
    n_real: int
    n_fake: int
    auc: float | None
    average_precision: float | None
    eer: float | None
    eer_threshold: float | None
    ece: float | None
    f1: float | None
    confusion: Confusion
    tpr: float | None
    fpr: float | None
    inconclusive: float | None


@dataclass(frozen=True, kw_only=True)
class KindRow:
    """One fake kind scored against all reals; ``n`` counts this kind's scored fakes."""

    kind: str
    n: int
    n_errors: int
    auc: float | None
    average_precision: float | None
    tpr: float | None


@dataclass(frozen=True, kw_only=True)
class GroupRow:
    value: str
    n_real: int
    n_fake: int
    n_errors: int
    auc: float | None
    tpr: float | None
    fpr: float | None


@dataclass(frozen=True, kw_only=True)
class Gap:
    """Best and worst group for one metric (for FPR the best is the lowest)."""

    best_group: str
    best: float
    worst_group: str
    worst: float
    gap: float


@dataclass(frozen=True, kw_only=True)
class SubgroupTable:
    """One subgroup column. A group enters the AUC gap with at least ``min_count`` reals
    *and* fakes, the FPR gap with at least ``min_count`` reals; a gap needs two such groups."""

    column: str
    rows: tuple[GroupRow, ...]
    auc_gap: Gap | None
    fpr_gap: Gap | None


@dataclass(frozen=True, kw_only=True)
class ScoredArrays:
    """The scored (non-error) rows, kept for the plots; not part of ``to_dict()``."""

    labels: np.ndarray
    scores: np.ndarray
    kinds: np.ndarray


@dataclass(frozen=True, kw_only=True)
class EvaluationReport:
    operating_point: OperatingPoint
    min_count: int
    overall: Overall
    kinds: tuple[KindRow, ...]
    subgroups: tuple[SubgroupTable, ...]
    #: Leave-one-kind-out: AUC on each kind when the model was trained without it.
    loko: Mapping[str, float | None] | None
    #: The command line that produced the report, shown in the Markdown.
    command: str | None
    scored: ScoredArrays = field(repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _jsonable(getattr(self, f.name)) for f in fields(self) if f.name != "scored"}

    def to_markdown(self) -> str:
        return _markdown(self)

    def write(self, directory: str | Path) -> Path:
        """Write ``report.md``, ``report.json`` and the ``PLOTS`` into ``directory``; return it."""
        # matplotlib costs a second to import; only writing the plots needs it.
        from deeptrawl.evaluation import plots

        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.json").write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        (out / "report.md").write_text(self.to_markdown())
        s, op = self.scored, self.operating_point
        plots.roc(out / "roc.png", s.labels, s.scores, s.kinds, op.t_synthetic)
        plots.reliability(out / "reliability.png", s.labels, s.scores, CALIBRATION_BINS)
        plots.scores(out / "scores.png", s.labels, s.scores, op.t_synthetic, op.t_authentic)
        return out


def evaluate(
    rows: pa.Table | Iterable[Mapping[str, Any]],
    operating_point: OperatingPoint,
    *,
    subgroups: Sequence[str] = (),
    min_count: int = 10,
    loko: Mapping[str, float] | None = None,
    command: str | None = None,
) -> EvaluationReport:
    """Evaluate per-object rows with ``label`` (0/1), ``score`` (null: error) and ``kind``,
    breaking results down by each column named in ``subgroups``."""
    columns = _columns(rows, ("label", "score", "kind", *subgroups))
    if any(v is None for v in columns["label"]) or any(v is None for v in columns["kind"]):
        raise ValueError("every row needs a label and a kind")
    labels = np.asarray(columns["label"])
    if labels.size and not np.isin(labels, (0, 1)).all():
        raise ValueError("labels must be 0/1 or bool")
    labels = labels.astype(bool)
    scores = np.array([math.nan if v is None else float(v) for v in columns["score"]], dtype=np.float64)
    kinds = np.array([str(v) for v in columns["kind"]], dtype=object)
    ok = np.isfinite(scores)
    scored = ScoredArrays(labels=labels[ok], scores=scores[ok], kinds=kinds[ok])
    t = operating_point.t_synthetic
    return EvaluationReport(
        operating_point=operating_point,
        min_count=min_count,
        overall=_overall(scored, int((~ok).sum()), operating_point),
        kinds=tuple(_kind_rows(labels, scores, kinds, t)),
        subgroups=tuple(
            _subgroup(name, columns[name], labels, scores, t, min_count) for name in subgroups
        ),
        loko=None if loko is None else MappingProxyType({k: _defined(v) for k, v in loko.items()}),
        command=command,
        scored=scored,
    )


# --- computing ----------------------------------------------------------------------------


def _columns(rows: pa.Table | Iterable[Mapping[str, Any]], names: Sequence[str]) -> dict[str, list[Any]]:
    if isinstance(rows, pa.Table):
        missing = [n for n in names if n not in rows.column_names]
        if missing:
            raise ValueError(f"table lacks column(s) {missing}")
        return {n: rows.column(n).to_pylist() for n in names}
    rows = list(rows)
    # A column no row has is a typo, not a column of nulls.
    missing = [n for n in names if rows and not any(n in r for r in rows)]
    if missing:
        raise ValueError(f"rows lack column(s) {missing}")
    return {n: [r.get(n) for r in rows] for n in names}


def _defined(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


def _both(y: np.ndarray) -> bool:
    return bool(y.any() and not y.all())


def _flag_rate(s: np.ndarray, t: float) -> float | None:
    return float(np.mean(s >= t)) if s.size else None


def _overall(d: ScoredArrays, n_errors: int, op: OperatingPoint) -> Overall:
    y, s = d.labels, d.scores
    both = _both(y)
    eer, eer_threshold = metrics.eer(y, s)
    confusion = metrics.confusion_at(y, s, op.t_synthetic)
    between = (s > op.t_authentic) & (s < op.t_synthetic)
    return Overall(
        n=int(y.size),
        n_errors=n_errors,
        n_real=int((~y).sum()),
        n_fake=int(y.sum()),
        auc=metrics.roc_auc(y, s) if both else None,
        average_precision=_defined(metrics.average_precision(y, s)),
        eer=_defined(eer),
        eer_threshold=_defined(eer_threshold),
        ece=_defined(metrics.expected_calibration_error(y, s, CALIBRATION_BINS)),
        f1=_defined(confusion.f1),
        confusion=confusion,
        tpr=_defined(confusion.tpr),
        fpr=_defined(confusion.fpr),
        inconclusive=float(between.mean()) if s.size else None,
    )


def _kind_rows(labels: np.ndarray, scores: np.ndarray, kinds: np.ndarray, t: float) -> list[KindRow]:
    ok = np.isfinite(scores)
    reals = scores[ok & ~labels]
    out = []
    for kind in sorted(set(kinds[labels])):
        of_kind = labels & (kinds == kind)
        fakes = scores[of_kind & ok]
        y = np.r_[np.ones(fakes.size, bool), np.zeros(reals.size, bool)]
        s = np.r_[fakes, reals]
        out.append(KindRow(
            kind=kind,
            n=int(fakes.size),
            n_errors=int((of_kind & ~ok).sum()),
            auc=metrics.roc_auc(y, s) if _both(y) else None,
            average_precision=_defined(metrics.average_precision(y, s)),
            tpr=_flag_rate(fakes, t),
        ))  # fmt: skip
    return out


def _subgroup(
    column: str, values: list[Any], labels: np.ndarray, scores: np.ndarray, t: float, min_count: int
) -> SubgroupTable:
    ok = np.isfinite(scores)
    keys = np.array([_MISSING if v is None else str(v) for v in values], dtype=object)
    rows = []
    for key in _natural_order(values):
        member = keys == key
        y, s = labels[member & ok], scores[member & ok]
        rows.append(GroupRow(
            value=key,
            n_real=int((~y).sum()),
            n_fake=int(y.sum()),
            n_errors=int((member & ~ok).sum()),
            auc=metrics.roc_auc(y, s) if _both(y) else None,
            tpr=_flag_rate(s[y], t),
            fpr=_flag_rate(s[~y], t),
        ))  # fmt: skip
    auc_ok = [r for r in rows if r.auc is not None and min(r.n_real, r.n_fake) >= min_count]
    fpr_ok = [r for r in rows if r.fpr is not None and r.n_real >= min_count]
    return SubgroupTable(
        column=column,
        rows=tuple(rows),
        auc_gap=_gap([(r.value, r.auc) for r in auc_ok], higher_is_better=True),
        fpr_gap=_gap([(r.value, r.fpr) for r in fpr_ok], higher_is_better=False),
    )


def _natural_order(values: list[Any]) -> list[str]:
    """Distinct values as strings, in their own order (720 before 1080), missing last."""
    present = {v for v in values if v is not None}
    try:
        ordered = sorted(present)
    except TypeError:  # mixed types: fall back to text order
        ordered = sorted(present, key=str)
    keys = list(dict.fromkeys(str(v) for v in ordered))
    return keys + ([_MISSING] if None in values else [])


def _gap(pairs: list[tuple[str, float | None]], *, higher_is_better: bool) -> Gap | None:
    if len(pairs) < 2:
        return None
    ranked = sorted(pairs, key=lambda p: p[1], reverse=higher_is_better)
    (best_group, best), (worst_group, worst) = ranked[0], ranked[-1]
    return Gap(best_group=best_group, best=best, worst_group=worst_group, worst=worst, gap=abs(best - worst))


def _jsonable(x: Any) -> Any:
    if is_dataclass(x):
        return {f.name: _jsonable(getattr(x, f.name)) for f in fields(x)}
    if isinstance(x, Confusion):
        return x._asdict()
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, tuple):
        return [_jsonable(v) for v in x]
    return x


# --- rendering ----------------------------------------------------------------------------


def _fmt(x: float | None, digits: int = 3) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines + [""]


def _gap_line(name: str, gap: Gap | None, need: str) -> str:
    if gap is None:
        return f"- {name} gap: not computed (fewer than two groups with {need})"
    return (
        f"- {name} gap: **{gap.gap:.3f}** (best `{gap.best_group}` {gap.best:.3f}, "
        f"worst `{gap.worst_group}` {gap.worst:.3f})"
    )


def _markdown(r: EvaluationReport) -> str:
    o, op = r.overall, r.operating_point
    out = ["# Evaluation report", ""]
    if r.command:
        out += ["Produced by:", "", "```", r.command, "```", ""]
    out += [
        f"Operating point: **likely_synthetic** at score >= {op.t_synthetic:g}, "
        f"**likely_authentic** at or below {op.t_authentic:g}, inconclusive in between. "
        "Rates at the operating point count inconclusive as not flagged.",
        "",
        "## Overall",
        "",
    ]
    eer = "—" if o.eer is None else f"{o.eer:.3f} (threshold {o.eer_threshold:.3f})"
    out += _table(["metric", "value"], [
        ("objects scored", o.n),
        ("errors (excluded from metrics)", o.n_errors),
        ("reals / fakes", f"{o.n_real} / {o.n_fake}"),
        ("AUC-ROC", _fmt(o.auc)),
        ("average precision", _fmt(o.average_precision)),
        ("EER", eer),
        (f"ECE ({CALIBRATION_BINS} bins)", _fmt(o.ece)),
        (f"F1 at {op.t_synthetic:g}", _fmt(o.f1)),
        (f"TPR at {op.t_synthetic:g}", _fmt(o.tpr)),
        (f"FPR at {op.t_synthetic:g}", _fmt(o.fpr)),
        ("inconclusive fraction", _fmt(o.inconclusive)),
    ])  # fmt: skip
    c = o.confusion
    out += _table(["", "flagged", "not flagged"], [("fake", c.tp, c.fn), ("real", c.fp, c.tn)])

    out += ["## Per fake kind", "", "Each kind of fake against all reals.", ""]
    out += _table(["kind", "fakes", "errors", "AUC", "AP", f"TPR at {op.t_synthetic:g}"], [
        (f"`{k.kind}`", k.n, k.n_errors, _fmt(k.auc), _fmt(k.average_precision), _fmt(k.tpr)) for k in r.kinds
    ])  # fmt: skip

    if r.subgroups:
        out += ["## Subgroups", ""]
    for g in r.subgroups:
        out += [f"### `{g.column}`", ""]
        out += _table(["value", "reals", "fakes", "errors", "AUC", "TPR", "FPR"], [
            (f"`{x.value}`", x.n_real, x.n_fake, x.n_errors, _fmt(x.auc), _fmt(x.tpr), _fmt(x.fpr)) for x in g.rows
        ])  # fmt: skip
        out += [
            _gap_line("AUC", g.auc_gap, f"at least {r.min_count} reals and {r.min_count} fakes"),
            _gap_line("FPR", g.fpr_gap, f"at least {r.min_count} reals"),
            "",
        ]

    if r.loko is not None:
        in_distribution = {k.kind: k.auc for k in r.kinds}
        out += ["## Leave one kind out", "", "AUC on each kind when training left it out.", ""]
        out += _table(["held-out kind", "AUC held out", "AUC trained on"], [
            (f"`{kind}`", _fmt(auc), _fmt(in_distribution.get(kind))) for kind, auc in sorted(r.loko.items())
        ])  # fmt: skip

    out += ["## Plots", ""]
    out += [f"![{caption}]({name})" for name, caption in PLOTS.items()]
    return "\n".join(out) + "\n"
