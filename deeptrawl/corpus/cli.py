"""``deeptrawl corpus``: build the labelled training and evaluation corpus.

``deeptrawl.cli`` adds this group to the main command; it lives here so the corpus
code and its command change together.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from deeptrawl.cli_common import EXIT_CODES, handle_errors
from deeptrawl.corpus import DEFAULT_PER_KIND, KINDS, SPLITS


def _kinds(ctx, param, value: str | None) -> tuple[str, ...]:
    if value is None:
        return KINDS
    kinds = tuple(k.strip() for k in value.split(",") if k.strip())
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise click.BadParameter(f"unknown kinds {unknown}; choose from {','.join(KINDS)}")
    return kinds


@click.group()
def corpus() -> None:
    """Build the labelled corpus detectors are trained, calibrated and tested on."""


@corpus.command(epilog=EXIT_CODES)
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--per-kind", type=click.IntRange(min=1), default=DEFAULT_PER_KIND, show_default=True,
              help="Pictures of each fake kind; real pictures are as many as all fake kinds together.")
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same bytes.")
@click.option("--kinds", "kinds", default=None, callback=_kinds,
              help=f"Comma-separated kinds to build, of: {', '.join(KINDS)} [default: all].")
@click.option("--wallpapers", is_flag=True,
              help="Add 25 real scenes from Debian's wallpaper photographs (install them first: make corpus-photos).")
@click.option("--force", is_flag=True, help="Write into a non-empty folder that is not a previous corpus.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
@click.option("--progress/--no-progress", default=True, help="Show a progress bar (on stderr).")
@handle_errors
def build(directory: Path, per_kind: int, seed: int, kinds: tuple[str, ...], wallpapers: bool, force: bool,
          as_json: bool, progress: bool) -> None:  # fmt: skip
    """Build a labelled corpus in DIRECTORY from real media shipped in installed packages.

    Real photos and video frames, and fakes made from them (face swaps, self-blended
    faces, Real-ESRGAN synthesis, generator upsampling, splices, copy-moves), each put
    through the same random crop, resize and JPEG/PNG/WebP re-encode. Writes
    SPLIT/KIND/*.{jpg,png,webp} with .mask.png masks, manifest.parquet and corpus.json.
    Splits (train, calib, test) never share a source scene. Deterministic in --seed.
    """
    from rich.console import Console

    from deeptrawl.corpus.build import build as run_build

    if progress:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                       console=Console(stderr=True, highlight=False))  # fmt: skip
        with bar:
            task = bar.add_task("building corpus", total=None)
            summary = run_build(directory, per_kind=per_kind, seed=seed, kinds=kinds, wallpapers=wallpapers,
                                force=force,
                                progress=lambda done, total: bar.update(task, completed=done, total=total))  # fmt: skip
    else:
        summary = run_build(directory, per_kind=per_kind, seed=seed, kinds=kinds, wallpapers=wallpapers, force=force)
    if as_json:
        click.echo(json.dumps(summary.as_dict(), indent=2))
        return
    _print_summary(summary, Console(highlight=False))


def _print_summary(summary, console) -> None:
    from rich.table import Table

    table = Table(title=f"corpus in {summary.out_dir} (seed {summary.seed}, {summary.seconds:.0f} s)")
    for column in ("kind", *SPLITS, "total"):
        table.add_column(column, justify="left" if column == "kind" else "right")
    for kind in summary.kinds:
        counts = [summary.counts[split][kind] for split in SPLITS]
        table.add_row(kind, *map(str, counts), str(sum(counts)))
    totals = [sum(summary.counts[split].values()) for split in SPLITS]
    table.add_row("all", *map(str, totals), str(summary.total), style="bold")
    console.print(table)
    skipped = {k: n for k, n in summary.skipped.items() if n}
    if skipped:
        console.print(f"[yellow]skipped (no fake could be made):[/yellow] {skipped}")
