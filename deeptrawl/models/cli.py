"""``deeptrawl models``: list the learned models and export them for Triton.

The commands load only the committed, checksummed weights (``deeptrawl.models``); a
missing or altered weights file is a configuration error (exit 2, one line).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from deeptrawl.cli_common import EXIT_CODES, handle_errors, make_console

if TYPE_CHECKING:
    from torch import nn


def _names(ctx: click.Context, param: click.Parameter, value: str) -> list[str]:
    from deeptrawl.models.export import SPECS

    names = [n.strip() for n in value.split(",") if n.strip()]
    if unknown := [n for n in names if n not in SPECS]:
        raise click.BadParameter(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(SPECS)}")
    if not names:
        raise click.BadParameter("name at least one model")
    return list(dict.fromkeys(names))


def _load(name: str) -> tuple[nn.Module, str]:
    """The trained network and its weights sha256, or a ConfigError."""
    import deeptrawl.models as trained
    from deeptrawl.errors import ConfigError
    from deeptrawl.models import weights

    try:
        net = trained.load(name)
        return net, weights.digest(trained.FILES[name])
    except weights.WeightsError as exc:
        raise ConfigError(str(exc)) from None


@click.group()
def models() -> None:
    """The learned models: list them, export them for Triton Inference Server."""


@models.command(name="list", epilog=EXIT_CODES)
def list_models() -> None:
    """List the models: weights sha256 (prefix), weights file size, input."""
    from deeptrawl.models import FILES, weights
    from deeptrawl.models.export import SPECS

    sums = weights.recorded()
    for name, spec in SPECS.items():
        path = weights.WEIGHTS_DIR / FILES[name]
        digest = sums.get(FILES[name], "")[:12] or "missing"
        size = f"{path.stat().st_size / 1e6:.1f} MB" if path.exists() else "-"
        dims = "x".join(map(str, spec.input.dims))
        click.echo(f"{name:<10} {digest:<12} {size:>9}  {spec.input.name} {spec.input.dtype} N x {dims}")


@models.command(epilog=EXIT_CODES)
@click.option("--triton-repo", "directory", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the Triton model repository (new, empty, or a previous export with --force).")
@click.option("--format", "fmt", type=click.Choice(["onnx", "torchscript", "both"]), default="onnx", show_default=True,
              help="Model file(s) to write. ONNX Runtime serves by default (faster on CPUs); 'both' also "
                   "writes model.pt next to model.onnx.")
@click.option("--instance-kind", type=click.Choice(["cpu", "gpu"]), default="cpu", show_default=True,
              help="Triton instance_group kind: where the deployment runs the models.")
@click.option("--models", "names", default="cnn,face_cnn,frequency", show_default=True, callback=_names,
              help="Comma-separated models to export.")
@click.option("--force", is_flag=True, help="Replace a previous export in the folder.")
@click.option("--json", "as_json", is_flag=True, help="Print MANIFEST.json on stdout.")
@handle_errors
def export(directory: Path, fmt: str, instance_kind: str, names: list[str], force: bool, as_json: bool) -> None:
    """Export the trained models to DIR as a Triton model repository.

    \b
    Layout: DIR/<model>/config.pbtxt, DIR/<model>/1/model.onnx (or model.pt),
    DIR/MANIFEST.json (sha256 of every file, weights digests, input/output specs).
    Each exported file is checked against PyTorch before the folder is written.
    """
    from deeptrawl.models.export import MANIFEST, TritonOptions, write_triton_repo

    loaded = {name: _load(name) for name in names}
    exported = write_triton_repo(
        directory,
        {name: net for name, (net, _) in loaded.items()},
        {name: digest for name, (_, digest) in loaded.items()},
        formats=("onnx", "torchscript") if fmt == "both" else (fmt,),
        options=TritonOptions(instance_kind=instance_kind),
        overwrite=force,
    )
    if as_json:
        click.echo((directory / MANIFEST).read_text(), nl=False)
        return
    for m in exported:
        diffs = ", ".join(f"{k} {v:.1e}" for k, v in m.max_abs_diff.items())
        click.echo(f"{m.spec.name:<10} {m.platform:<17} {m.seconds:5.1f} s  max |diff| {diffs}")
    click.echo(f"wrote {directory} ({MANIFEST})")


@click.command(epilog=EXIT_CODES)
@click.option("--corpus", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="A corpus from `deeptrawl corpus build` (its manifest.parquet has the splits).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where weights, SHA256SUMS and training.json go (default: the installed weights folder).")
@click.option("--models", "names", default="cnn,face_cnn,frequency,fusion", show_default=True,
              help="Comma-separated: cnn, face_cnn, frequency, fusion (the fusion alone still cross-fits the networks for their scores).")
@click.option("--epochs", type=click.IntRange(1, 100), default=6, show_default=True,
              help="Most epochs for the CNN tails; the count used is the best by out-of-fold AUC.")
@click.option("--folds", type=click.IntRange(2, 20), default=5, show_default=True,
              help="Folds of whole source groups over the train and calib splits.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--leave-one-kind-out", "loko", is_flag=True,
              help="Also retrain everything without each fake kind and test on it (needs the test split; slower).")
@click.option("--json", "as_json", is_flag=True, help="Print the training metrics as JSON.")
@handle_errors
def train(corpus: Path, out: Path | None, names: str, epochs: int, folds: int, seed: int, loko: bool, as_json: bool) -> None:
    """Train the learned detectors and the fusion on a corpus, on the CPU.

    The CNNs train only their tail on cached trunk outputs. The train and calib splits
    are pooled and cut into folds of whole source groups: every network is trained once
    per fold without it, and the fusion is fitted, calibrated and thresholded on those
    out-of-fold scores; the networks written are trained on the whole pool. Weights are
    written with their sha256 to SHA256SUMS, which the loaders check.
    """
    import json

    from rich.progress import Progress

    from deeptrawl.models import weights
    from deeptrawl.models.train import MODELS, TrainSettings
    from deeptrawl.models.train import train as run

    chosen = [n.strip() for n in names.split(",") if n.strip()]
    if unknown := [n for n in chosen if n not in MODELS]:
        raise click.BadParameter(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(MODELS)}")
    settings = TrainSettings(corpus=corpus, out=out or weights.WEIGHTS_DIR, epochs=epochs, folds=folds, seed=seed,
                             leave_one_kind_out=loko)
    with Progress(console=make_console(stderr=True), transient=True, disable=as_json) as bar:
        tasks: dict[str, int] = {}

        def progress(task: str, done: int, total: int) -> None:
            if task not in tasks:
                tasks[task] = bar.add_task(task, total=total)
            bar.update(tasks[task], completed=done, total=total)

        report = run(settings, progress, only=chosen)
    if as_json:
        click.echo(json.dumps(report, indent=2, sort_keys=True))
        return
    for name in chosen:
        m = report[name]
        auc = m.get("oof_auc", m.get("cv_auc"))
        click.echo(f"{name:<10} out-of-fold AUC {auc:.3f}  sha256 {m['sha256'][:12]}")
    for kind, auc in report.get("loko", {}).items():
        click.echo(f"trained without {kind:<10} test AUC on it {auc:.3f}")
    click.echo(f"wrote {settings.out}")
