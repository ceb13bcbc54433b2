"""The ``deeptrawl`` command line.

Exit codes (also in ``deeptrawl --help``):
  0  success (a scan with error rows for bad files still succeeds)
  1  unexpected internal error (a bug: please report it with the traceback)
  2  usage or configuration error
  3  systemic failure: storage unreachable, bad credentials, warehouse failure
  4  ``report``: no report found
  130 interrupted
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import click

from deeptrawl import __version__
from deeptrawl.config import Limits, S3Settings, ScanSettings, WarehouseSettings
from deeptrawl.corpus.cli import corpus
from deeptrawl.evaluation.cli import evaluate
from deeptrawl.models.cli import models as models_group
from deeptrawl.models.cli import train
from deeptrawl.cli_common import EXIT_CODES, detector_names, handle_errors, make_console
from deeptrawl.errors import ConfigError, DeeptrawlError

VERDICT_STYLE = {
    "likely_synthetic": "bold red",
    "likely_authentic": "green",
    "inconclusive": "yellow",
    "error": "magenta",
}


@click.group(epilog=EXIT_CODES, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="deeptrawl")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def main(verbose: int) -> None:
    """Trawl media archives for deepfakes and AI-generated or manipulated media."""
    # Beam and its optional cloud clients log warnings at import time that mean nothing
    # to a user (e.g. "apitools not found"); show them only when asked.
    level = {0: logging.ERROR, 1: logging.INFO}.get(verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger().setLevel(level)


# -- shared options ----------------------------------------------------------------------


def s3_options(fn):
    fn = click.option("--s3-endpoint", envvar="DEEPTRAWL_S3_ENDPOINT", help="S3 endpoint URL (e.g. http://127.0.0.1:8333).")(fn)
    fn = click.option("--s3-region", envvar="AWS_REGION", help="S3 region.")(fn)
    fn = click.option("--s3-profile", envvar="AWS_PROFILE", help="AWS credentials profile.")(fn)
    return fn


def warehouse_options(fn):
    fn = click.option(
        "--out",
        default="deeptrawl-out",
        show_default=True,
        help="Output location for manifests, reports and evidence (folder or s3://bucket/prefix).",
    )(fn)
    fn = click.option(
        "--warehouse", default=None, help="Iceberg warehouse folder [default: OUT/warehouse, or ./deeptrawl-warehouse for s3 outputs]."
    )(fn)
    fn = click.option("--catalog-uri", default=None, help="SQL catalog URI [default: sqlite in the warehouse].")(fn)
    return fn


def _warehouse(out: str, warehouse: str | None, catalog_uri: str | None) -> WarehouseSettings:
    if warehouse is None:
        warehouse = "deeptrawl-warehouse" if "://" in out else str(Path(out) / "warehouse")
    return WarehouseSettings(location=warehouse, catalog_uri=catalog_uri)


def _s3(endpoint: str | None, region: str | None, profile: str | None) -> S3Settings:
    return S3Settings(endpoint_url=endpoint, region=region, profile=profile)


def _limit_options(fn):
    fn = click.option("--max-bytes", type=int, default=Limits().max_bytes, show_default=True, help="Largest object analysed.")(fn)
    fn = click.option("--max-pixels", type=int, default=Limits().max_pixels, show_default=True, help="Largest image (width x height).")(fn)
    fn = click.option(
        "--max-duration", type=float, default=Limits().max_duration_s, show_default=True, help="Longest video/audio, seconds."
    )(fn)
    return fn


# -- scan ----------------------------------------------------------------------------------


@main.command(
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    epilog="Extra arguments (e.g. --runner=DirectRunner, --direct_num_workers=2) go to Apache Beam unchanged.\n\n"
    + EXIT_CODES,
)
@click.argument("source")
@warehouse_options
@s3_options
@_limit_options
@click.option("--detectors", "detector_list", default=None, help="Comma-separated detectors [default: all].")
@click.option("--full", is_flag=True, help="Re-list and re-hash every object (not incremental).")
@click.option("--batch-size", type=int, default=8, show_default=True, help="Objects per detector batch.")
@click.option("--commit-batch-size", type=int, default=200, show_default=True, help="Rows per Iceberg commit.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
@click.option("--progress/--no-progress", default=True, help="Show progress bars (on stderr).")
@click.pass_context
@handle_errors
def scan(ctx, source, out, warehouse, catalog_uri, s3_endpoint, s3_region, s3_profile, max_bytes, max_pixels,
         max_duration, detector_list, full, batch_size, commit_batch_size, as_json, progress):
    """Scan SOURCE (a folder or s3://bucket/prefix) and write one result row per object.

    Lists the source into a Parquet manifest, runs every detector, writes a JSON report
    and evidence pictures per object under --out, and appends rows to the Iceberg
    results table. Re-running adds nothing for objects already scanned; an interrupted
    scan resumes where it stopped.
    """
    from deeptrawl.scan import ProgressPoller, run_scan

    beam_args = list(ctx.args)
    if not any(a.startswith("--runner") for a in beam_args):
        beam_args.insert(0, "--runner=DirectRunner")
    if "://" not in source:
        source = str(Path(source).absolute())
    if "://" not in out:
        out = str(Path(out).absolute())
    settings = ScanSettings(
        source=source,
        out=out,
        warehouse=_warehouse(out, warehouse, catalog_uri),
        s3=_s3(s3_endpoint, s3_region, s3_profile),
        limits=Limits(max_bytes=max_bytes, max_pixels=max_pixels, max_duration_s=max_duration),
        detectors=detector_names(detector_list),
        analyze_batch_size=batch_size,
        commit_batch_size=commit_batch_size,
        incremental=not full,
    )
    err = make_console(stderr=True)
    if progress:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err)
        with bar, ProgressPoller(bar) as poller:
            summary = run_scan(settings, beam_args, on_phase=poller.on_phase)
    else:
        summary = run_scan(settings, beam_args)
    if as_json:
        click.echo(json.dumps(summary.as_dict(), indent=2))
        return
    console = make_console()
    console.print(f"[bold]Scan {summary.scan_id}[/bold] of {summary.source}")
    console.print(
        f"  {summary.analyzed} analysed, {summary.skipped} already scanned (skipped), "
        f"{summary.unchanged} unchanged since the last listing; {summary.objects_per_s:.1f} objects/s"
    )
    for verdict, n in sorted(summary.verdicts.items()):
        console.print(f"  [{VERDICT_STYLE.get(verdict, '')}]{verdict:<18}[/] {n}")
    for code, n in sorted(summary.errors.items()):
        console.print(f"    error {code:<16} {n}")
    console.print(f"  results: deeptrawl results --out {out}   reports: {out}/reports/")


# -- results -------------------------------------------------------------------------------


@main.command(epilog=EXIT_CODES)
@warehouse_options
@click.option("--format", "fmt", type=click.Choice(["table", "json", "jsonl"]), default="table", show_default=True)
@click.option("--verdict", type=click.Choice(list(VERDICT_STYLE)), default=None, help="Only rows with this verdict.")
@click.option("--status", type=click.Choice(["ok", "error"]), default=None, help="Only ok rows or only error rows.")
@click.option("--scan-id", default=None, help="Only rows written by this scan.")
@click.option("--limit", type=int, default=None, help="At most this many rows (newest first).")
@handle_errors
def results(out, warehouse, catalog_uri, fmt, verdict, status, scan_id, limit):
    """Show rows of the results table."""
    from deeptrawl.warehouse import IcebergSink

    if "://" not in out:
        out = str(Path(out).absolute())
    sink = IcebergSink(_warehouse(out, warehouse, catalog_uri), create=False)
    table = sink.read(verdict=verdict, status=status, scan_id=scan_id)
    if limit is not None:
        table = table.slice(0, limit)
    rows = [_jsonable(r) for r in table.to_pylist()]
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
    elif fmt == "jsonl":
        for row in rows:
            click.echo(json.dumps(row))
    else:
        _print_table(rows)


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in row.items():
        if hasattr(v, "isoformat"):
            v = v.isoformat()
        elif isinstance(v, list) and v and isinstance(v[0], tuple):  # Arrow maps come back as pairs
            v = dict(v)
        out[k] = v
    return out


def _print_table(rows: list[dict[str, Any]]) -> None:
    from rich.table import Table

    import os.path

    uris = [r["object_uri"] for r in rows]
    common = os.path.commonpath(uris) if len(uris) > 1 and all(u.startswith("/") for u in uris) else ""
    table = Table(show_lines=False)
    for column in ("object", "verdict", "score", "media", "size", "error / top detector"):
        table.add_column(column, overflow="fold")
    for r in rows:
        scores = {k: v for k, v in (r["detector_scores"] or {}).items() if v is not None}
        note = r["error_message"] or (f"{max(scores, key=scores.get)} {max(scores.values()):.2f}" if scores else "")
        size = f"{r['width']}x{r['height']}" if r["width"] else (f"{r['duration_s']:.1f}s" if r["duration_s"] else "")
        table.add_row(
            os.path.relpath(r["object_uri"], common) if common else r["object_uri"],
            f"[{VERDICT_STYLE.get(r['verdict'], '')}]{r['verdict']}[/]",
            "" if r["score"] is None else f"{r['score']:.2f}",
            r["mime"] or "",
            size,
            note,
        )
    console = make_console()
    console.print(table)
    console.print(f"{len(rows)} rows" + (f" (objects relative to {common})" if common else ""))


# -- report ---------------------------------------------------------------------------------


@main.command(epilog=EXIT_CODES)
@click.argument("target")
@warehouse_options
@s3_options
@handle_errors
def report(target, out, warehouse, catalog_uri, s3_endpoint, s3_region, s3_profile):
    """Print the JSON report of one object, by its URI or content SHA256 (newest scan)."""
    from deeptrawl.storage import read_uri
    from deeptrawl.warehouse import IcebergSink

    if "://" not in out:
        out = str(Path(out).absolute())
    sink = IcebergSink(_warehouse(out, warehouse, catalog_uri), create=False)
    is_sha = len(target) == 64 and all(c in "0123456789abcdef" for c in target.lower())
    if is_sha:
        rows = sink.read(content_sha256=target.lower(), columns=["report_uri", "scanned_at", "object_uri"])
    else:
        uri = target if "://" in target else str(Path(target).absolute())
        rows = sink.read(object_uri=uri, columns=["report_uri", "scanned_at", "object_uri"])
    if rows.num_rows == 0:
        make_console(stderr=True).print(f"[bold red]error:[/bold red] no report for {target!r} in {sink.settings.location}")
        sys.exit(4)
    report_uri = rows.column("report_uri")[0].as_py()
    click.echo(read_uri(report_uri, _s3(s3_endpoint, s3_region, s3_profile)).decode())


# -- analyze -------------------------------------------------------------------------------


@main.command(epilog=EXIT_CODES)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the full report as JSON.")
@click.option("--evidence", type=click.Path(file_okay=False, path_type=Path), default=None, help="Write evidence PNGs here.")
@click.option("--detectors", "detector_list", default=None, help="Comma-separated detectors [default: all].")
@_limit_options
@handle_errors
def analyze(file, as_json, evidence, detector_list, max_bytes, max_pixels, max_duration):
    """Run the detectors on one local FILE (no warehouse, nothing else written)."""
    from deeptrawl import detectors, tracing
    from deeptrawl.analysis import Analyzer, ObjectInput
    from deeptrawl.media.probe import check_size

    tracing.configure()
    limits = Limits(max_bytes=max_bytes, max_pixels=max_pixels, max_duration_s=max_duration)
    analyzer = Analyzer(detectors.create(detector_names(detector_list)), limits=limits)
    analyzer.setup()
    path = file.absolute()
    try:
        check_size(path.stat().st_size, limits)
        obj = ObjectInput(uri=str(path), data=path.read_bytes(), evidence_prefix=str(evidence.absolute()) if evidence else None)
    except DeeptrawlError as exc:
        obj = ObjectInput(uri=str(path), error=exc, size_bytes=path.stat().st_size)
    result = analyzer.analyze(obj)
    if evidence:
        evidence.mkdir(parents=True, exist_ok=True)
        for uri, png in result.evidence.items():
            Path(uri).write_bytes(png)
    tracing.flush()
    if as_json:
        click.echo(result.report.to_json())
        return
    _print_report(result.report)


def _print_report(report) -> None:
    console = make_console()
    v = report.verdict
    score = "" if v.score is None else f" ({v.score:.2f})"
    console.print(f"[bold]{report.object_uri}[/bold]")
    media = report.media
    dims = f" {media.width}x{media.height}" if media.width else ""
    console.print(f"  {media.mime or 'unidentified'}{dims}, {report.size_bytes} bytes, sha256 {report.content_sha256}")
    console.print(f"  verdict: [{VERDICT_STYLE[v.label]}]{v.label}[/]{score} - {v.reason}")
    for error in report.errors:
        console.print(f"  [magenta]error[/magenta] {error.code}: {error.message}")
    for d in report.detectors:
        s = "abstained" if d.status == "abstained" else ("error" if d.status == "error" else f"{d.score:.2f}")
        console.print(f"  {d.name} {d.version}: {s}  [dim]{d.seconds * 1000:.0f} ms[/dim]")
        for f in d.findings:
            console.print(f"    - {f.message} [dim]({f.code}, {f.score:.2f}{', decisive' if f.decisive else ''})[/dim]")
        for e in d.evidence:
            console.print(f"    evidence: {e.uri}")


@main.command(epilog=EXIT_CODES)
@click.argument("sql")
@warehouse_options
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@handle_errors
def query(sql, out, warehouse, catalog_uri, fmt):
    """Run DuckDB SQL over the results table, which is available as the view `results`.

    \b
    Example:
      deeptrawl query "select verdict, count(*) n from results group by 1"
    """
    from deeptrawl.query import connect, iceberg_scan_sql
    from deeptrawl.warehouse import IcebergSink

    if "://" not in out:
        out = str(Path(out).absolute())
    sink = IcebergSink(_warehouse(out, warehouse, catalog_uri), create=False)
    con = connect()
    con.execute(f"create view results as select * from {iceberg_scan_sql(sink.metadata_location())}")
    try:
        cursor = con.execute(sql)
    except Exception as exc:  # DuckDB's parser/binder errors are the user's to fix
        raise ConfigError(f"query failed: {str(exc).splitlines()[0]}") from None
    columns = [d[0] for d in cursor.description or []]
    rows = [dict(zip(columns, r)) for r in cursor.fetchall()]
    if fmt == "json":
        click.echo(json.dumps([_jsonable(r) for r in rows], indent=2, default=str))
        return
    from rich.table import Table

    table = Table(*columns)
    for r in rows:
        table.add_row(*("" if v is None else str(v) for v in r.values()))
    make_console().print(table)


@main.command(epilog=EXIT_CODES)
@warehouse_options
@click.option("--keep-days", type=float, default=7.0, show_default=True, help="Keep snapshots newer than this.")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@handle_errors
def maintain(out, warehouse, catalog_uri, keep_days, as_json):
    """Expire old snapshots of the results table (rows stay; only past table states go).

    Every commit adds a snapshot that later commits and queries read, so a table that is
    written nightly should be maintained (e.g. after each nightly scan).
    """
    from datetime import datetime, timedelta, timezone

    from deeptrawl.warehouse import IcebergSink

    sink = IcebergSink(_warehouse(out, warehouse, catalog_uri), create=False)
    expired = sink.expire_snapshots(datetime.now(timezone.utc) - timedelta(days=keep_days))
    left = len(sink.table().snapshots())
    if as_json:
        click.echo(json.dumps({"expired_snapshots": expired, "snapshots_left": left}))
    else:
        make_console().print(f"expired {expired} snapshot(s) older than {keep_days:g} days; {left} left")


# -- small utilities ------------------------------------------------------------------------


@main.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Rebuild even if the archive exists.")
@handle_errors
def sample(directory, force):
    """Create the bundled sample archive in DIRECTORY (from photos shipped in packages)."""
    from deeptrawl.samples.archive import build_sample_archive

    written = build_sample_archive(directory, force=force)
    if written:
        click.echo(f"wrote {len(written)} sample files to {directory}")
    else:
        click.echo(f"sample archive already in {directory} (use --force to rebuild)")


@main.command(name="detectors")
def list_detectors() -> None:
    """List the registered detectors."""
    from deeptrawl import detectors

    for name in detectors.available():
        cls = detectors.get(name)
        kinds = ",".join(sorted(k.value for k in cls.media_kinds))
        doc = (cls.__doc__ or sys.modules[cls.__module__].__doc__ or "").strip()
        click.echo(f"{name:<10} {cls.version:<16} {kinds:<8} {doc.splitlines()[0] if doc else ''}")


@main.command()
@click.option("--check", is_flag=True, help="Exit 1 if the committed schema file is out of date.")
def schema(check):
    """Write (or check) the report JSON Schema file."""
    from deeptrawl.report import SCHEMA_PATH, json_schema, write_schema

    expected = json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"
    if check:
        current = SCHEMA_PATH.read_text() if SCHEMA_PATH.exists() else ""
        if current != expected:
            click.echo(f"{SCHEMA_PATH} is out of date: run `deeptrawl schema`", err=True)
            sys.exit(1)
        click.echo(f"{SCHEMA_PATH} is up to date")
        return
    click.echo(f"wrote {write_schema()}")


main.add_command(corpus)
main.add_command(evaluate)
main.add_command(models_group)
main.add_command(train)


if __name__ == "__main__":
    main()
