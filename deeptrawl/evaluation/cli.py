"""``deeptrawl evaluate``: run every detector and the fusion over a labelled set, report."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import click
import pyarrow as pa
import pyarrow.parquet as pq

from deeptrawl.cli_common import EXIT_CODES, detector_names, handle_errors, make_console


@click.command(epilog=EXIT_CODES)
@click.option("--labels", "labels_path", required=True, type=click.Path(path_type=Path),
              help="A corpus manifest (or its folder), a Parquet/CSV with path,label[,kind,...], or a folder with real/ and fake/<kind>/.")
@click.option("--split", default=None, help="Only rows of this split (corpus manifests: train, calib, test).")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("deeptrawl-eval"), show_default=True,
              help="Where report.md, report.json, the PNGs and scores.parquet go.")
@click.option("--detectors", "detector_list", default=None, help="Comma-separated detector names (default: all).")
@click.option("--subgroups", default=None, help="Comma-separated subgroup columns (default: the label file's low-cardinality columns).")
@click.option("--weights", "weights_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Trained weights and fusion from `deeptrawl train --out DIR` (default: the installed ones).")
@click.option("--limit", type=int, default=None, help="Evaluate only N rows, evenly spread (quick checks).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON instead of the summary.")
@handle_errors
def evaluate(labels_path, split, out_dir, detector_list, subgroups, weights_dir, limit, as_json):
    """Measure detection quality on labelled media.

    Prints AUC-ROC, AP, EER, ECE, F1 and the confusion matrix at the fusion's operating
    point, per fake kind and per subgroup, and writes a Markdown report with ROC and
    reliability diagrams. Works on the corpus from ``deeptrawl corpus build`` and on any
    user's labelled files.
    """
    from rich.progress import Progress

    from deeptrawl import detectors as registry
    from deeptrawl.evaluation import OperatingPoint
    from deeptrawl.evaluation import evaluate as build_report
    from deeptrawl.evaluation.labelled import read_labels, subgroup_columns
    from deeptrawl.evaluation.scoring import score_files
    from deeptrawl.models.train import LEARNED
    from deeptrawl.config import VerdictRule
    from deeptrawl.fusion import FusionModel, default_fuser, load
    from deeptrawl.verdict import fuse

    root, rows = read_labels(labels_path)
    if split is not None:
        rows = [r for r in rows if r.get("split") == split]
    if limit:  # an even spread, so a quick check still sees every kind
        rows = rows[:: max(1, len(rows) // limit)][:limit]
    if not rows:
        raise click.UsageError("no labelled rows to evaluate (check --split)")
    groups = [g for g in subgroups.split(",") if g] if subgroups else subgroup_columns(rows)
    names = detector_names(detector_list) or registry.available()
    if weights_dir is None:
        detectors = registry.create(names)
        fuser = default_fuser(names)
    else:
        detectors = [registry.get(n)(weights_dir) if n in LEARNED else registry.get(n)() for n in names]
        model = load(weights_dir)
        fuser = model if model is not None and set(model.feature_names) <= set(names) else VerdictRule()

    with Progress(console=make_console(stderr=True), transient=True, disable=as_json) as bar:
        task = bar.add_task("analysing", total=len(rows))
        scored = score_files(rows, root, detectors=detectors, progress=lambda done, total: bar.update(task, completed=done))

    table = []
    for s in scored:
        verdict = fuse(s.results, fuser) if s.error is None else None
        row = {k: s.row.get(k) for k in ("path", "label", "kind", *groups)}
        row["score"] = verdict.score if verdict is not None else None
        row["verdict"] = verdict.label.value if verdict is not None else "error"
        row["error"] = s.error
        for name, result in s.results.items():
            row[f"score_{name}"] = result.score
        table.append(row)

    if isinstance(fuser, FusionModel):
        op = OperatingPoint(t_synthetic=fuser.t_synthetic, t_authentic=fuser.t_authentic)
    else:
        op = OperatingPoint(t_synthetic=fuser.synthetic_threshold, t_authentic=fuser.authentic_threshold)
    command = "deeptrawl evaluate " + shlex.join(sys.argv[2:]) if len(sys.argv) > 2 else None
    report = build_report(table, op, subgroups=groups, command=command)
    out_dir.mkdir(parents=True, exist_ok=True)
    report.write(out_dir)
    pq.write_table(pa.Table.from_pylist(table), out_dir / "scores.parquet")

    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2, default=str))
        return
    o = report.overall

    def f(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.3f}"

    console = make_console()
    console.print(f"[bold]{o.n}[/bold] objects ({o.n_real} real, {o.n_fake} fake, {o.n_errors} errors), fusion {fuser.version}")
    console.print(f"AUC {f(o.auc)}  AP {f(o.average_precision)}  EER {f(o.eer)}  ECE {f(o.ece)}  "
                  f"F1 {f(o.f1)}  FPR {f(o.fpr)}  TPR {f(o.tpr)} at t={op.t_synthetic:.3f}")
    for k in report.kinds:
        console.print(f"  {k.kind:<10} n={k.n:<5} AUC {f(k.auc)}")
    console.print(f"report: {out_dir / 'report.md'}")
