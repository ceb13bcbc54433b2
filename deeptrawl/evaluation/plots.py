"""The evaluation plots: ROC per fake kind, reliability diagram, score distributions.

Built on ``matplotlib.figure.Figure`` directly rather than pyplot, so drawing here neither
needs a display nor switches the backend or touches pyplot's global figure list for
anyone else in the process (a notebook, the CLI). Each function writes one PNG and
draws a note instead of failing when the data cannot define the plot (one class only).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from deeptrawl import metrics

_SIZE = (6.0, 5.0)
_DPI = 100


def roc(path: Path, labels: np.ndarray, scores: np.ndarray, kinds: np.ndarray, t_synthetic: float) -> None:
    """Overall ROC and one curve per fake kind against all reals, with the operating point."""
    fig = Figure(figsize=_SIZE, dpi=_DPI)
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], color="0.7", linestyle=":", linewidth=1)
    if labels.any() and not labels.all():
        fpr, tpr, _ = metrics.roc_curve(labels, scores)
        ax.plot(fpr, tpr, color="black", linewidth=2, label=f"all (AUC {metrics.roc_auc(labels, scores):.3f})")
        reals = ~labels
        for kind in sorted(set(kinds[labels])):
            subset = reals | (labels & (kinds == kind))
            fpr, tpr, _ = metrics.roc_curve(labels[subset], scores[subset])
            auc = metrics.roc_auc(labels[subset], scores[subset])
            ax.plot(fpr, tpr, linewidth=1, label=f"{kind} (AUC {auc:.3f})")
        at = metrics.confusion_at(labels, scores, t_synthetic)
        ax.plot([at.fpr], [at.tpr], "o", color="red", label=f"operating point (score >= {t_synthetic:g})")
        ax.legend(loc="lower right", fontsize="small")
    else:
        _note(ax, "ROC needs both reals and fakes")
    ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    fig.savefig(path)


def reliability(path: Path, labels: np.ndarray, scores: np.ndarray, bins: int) -> None:
    """Observed fraction of fakes per score bin against the diagonal, with counts below."""
    r = metrics.reliability(labels, scores, bins)
    ece = metrics.expected_calibration_error(labels, scores, bins)
    fig = Figure(figsize=_SIZE, dpi=_DPI)
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": (3, 1)})
    width = np.diff(r.edges)
    filled = r.count > 0
    top.bar(r.edges[:-1][filled], r.accuracy[filled], width=width[filled], align="edge",
            edgecolor="black", alpha=0.7, label="observed fraction fake")  # fmt: skip
    top.plot([0, 1], [0, 1], color="0.5", linestyle=":", label="perfect calibration")
    top.set(ylim=(0, 1), ylabel="fraction fake")
    top.legend(loc="upper left", fontsize="small")
    top.set_title("Reliability" + ("" if np.isnan(ece) else f" (ECE {ece:.3f}, {bins} bins)"))
    bottom.bar(r.edges[:-1], r.count, width=width, align="edge", color="0.6", edgecolor="black")
    bottom.set(xlim=(0, 1), xlabel="score", ylabel="objects")
    fig.savefig(path)


def scores(path: Path, labels: np.ndarray, scores: np.ndarray, t_synthetic: float, t_authentic: float) -> None:
    """Score histograms of reals and fakes, each normalised to its own class size."""
    fig = Figure(figsize=_SIZE, dpi=_DPI)
    ax = fig.add_subplot()
    edges = np.linspace(0, 1, 41)
    for name, s, color in (("real", scores[~labels], "tab:blue"), ("fake", scores[labels], "tab:orange")):
        if s.size:  # fractions of the class, so a small class stays visible next to a large one
            ax.hist(s, bins=edges, weights=np.full(s.size, 1 / s.size), histtype="stepfilled",
                    alpha=0.5, color=color, label=f"{name} (n={s.size})")  # fmt: skip
    ax.axvline(t_authentic, color="green", linestyle="--", label=f"t_authentic {t_authentic:g}")
    ax.axvline(t_synthetic, color="red", linestyle="--", label=f"t_synthetic {t_synthetic:g}")
    ax.set(xlim=(0, 1), xlabel="score", ylabel="fraction of class", title="Score distributions")
    ax.legend(loc="best", fontsize="small")
    fig.savefig(path)


def _note(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)
