"""The command line as a user meets it: help, analyze, scan, results, report, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from deeptrawl.cli import main
from deeptrawl.report import SCHEMA_PATH
from deeptrawl.samples import media

COMMANDS = ["scan", "results", "report", "query", "maintain", "analyze", "sample", "detectors", "schema", "evaluate", "train",
            "corpus", "corpus build", "models", "models export", "models list"]


@pytest.fixture
def cli():
    runner = CliRunner()

    def run(*args: str, code: int = 0):
        result = runner.invoke(main, list(args), catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result

    return run


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_everywhere(cli, command):
    out = cli(*(command.split() if command else []), "--help").output
    assert "Usage:" in out
    if command in (None, "scan"):
        assert "Exit codes" in out


def test_schema_file_is_up_to_date(cli):
    cli("schema", "--check")


def test_analyze_human_and_json(cli, tmp_path):
    path = tmp_path / "splice.jpg"
    path.write_bytes(media.splice(media.photo("astronaut"), media.photo("coffee"), seed=2)[0])
    human = cli("analyze", str(path), "--evidence", str(tmp_path / "ev")).output
    assert "verdict:" in human and "ela" in human
    assert list((tmp_path / "ev").glob("ela-heatmap.png"))
    report = json.loads(cli("analyze", str(path), "--json").output)
    jsonschema.validate(report, json.loads(SCHEMA_PATH.read_text()))
    assert {d["name"] for d in report["detectors"]} >= {"ela", "metadata"}


def test_analyze_bad_file_is_a_readable_error_not_a_crash(cli, tmp_path):
    path = tmp_path / "page.jpg"
    path.write_bytes(media.html_page())
    out = cli("analyze", str(path)).output
    assert "unsupported" in out and "HTML" in out
    report = json.loads(cli("analyze", str(path), "--json").output)
    assert report["verdict"]["label"] == "error"


def test_scan_results_and_report(cli, tmp_path):
    archive, out = tmp_path / "archive", tmp_path / "out"
    written = cli("sample", str(archive)).output
    assert "wrote" in written
    assert "already" in cli("sample", str(archive)).output
    files = sorted(p for p in archive.rglob("*") if p.is_file())

    summary = json.loads(cli("scan", str(archive), "--out", str(out), "--json", "--no-progress").output)
    assert summary["analyzed"] == len(files)
    assert sum(summary["verdicts"].values()) == len(files)

    rows = json.loads(cli("results", "--out", str(out), "--format", "json").output)
    assert len(rows) == len(files)
    assert {"object_uri", "verdict", "score", "detector_scores", "report_uri", "scanned_at"} <= set(rows[0])
    by_name = {Path(r["object_uri"]).relative_to(archive).as_posix(): r for r in rows}
    assert by_name["generated/stable-diffusion-a1111.png"]["verdict"] == "likely_synthetic"
    assert by_name["generated/iptc-trained-algorithmic.jpg"]["verdict"] == "likely_synthetic"
    assert by_name["bad/truncated.jpg"]["error_code"] == "truncated"
    assert by_name["bad/error-page.jpg"]["error_code"] == "unsupported"
    assert by_name["bad/photo-named-as.txt"]["mime"] == "image/jpeg"
    # The calibrated fusion flags at a 1% false-positive rate: a real photo is never flagged
    # (with the current weak models it is "inconclusive", see the model card).
    assert by_name["real/astronaut.jpg"]["verdict"] in {"likely_authentic", "inconclusive"}

    lines = cli("results", "--out", str(out), "--format", "jsonl", "--status", "error").output.splitlines()
    assert lines and all(json.loads(line)["status"] == "error" for line in lines)
    assert "rows" in cli("results", "--out", str(out), "--verdict", "likely_synthetic").output

    counts = json.loads(cli("query", "select verdict, count(*) as n from results group by 1", "--out", str(out),
                            "--format", "json").output)
    assert {c["verdict"]: c["n"] for c in counts} == summary["verdicts"]
    assert "query failed" in cli("query", "select nope from results", "--out", str(out), code=2).output

    target = by_name["real/coffee.jpg"]
    by_uri = json.loads(cli("report", target["object_uri"], "--out", str(out)).output)
    by_sha = json.loads(cli("report", target["content_sha256"], "--out", str(out)).output)
    assert by_uri == by_sha and by_uri["object_uri"] == target["object_uri"]
    cli("report", "0" * 64, "--out", str(out), code=4)

    # Maintenance drops past table states, never rows.
    assert json.loads(cli("maintain", "--out", str(out), "--keep-days", "0", "--json").output)["snapshots_left"] == 1
    assert len(json.loads(cli("results", "--out", str(out), "--format", "json").output)) == len(files)


def test_systemic_errors_are_one_line_and_exit_nonzero(cli, tmp_path):
    result = cli("scan", str(tmp_path / "missing"), "--out", str(tmp_path / "o"), "--no-progress", code=2)
    assert result.output.startswith("error:") and "does not exist" in result.output
    result = cli("results", "--out", str(tmp_path / "nowhere"), code=2)
    assert "does not exist" in result.output
    result = cli("scan", str(tmp_path), "--detectors", "nope", code=2)
    assert "unknown detector" in result.output


def test_unreachable_s3_is_one_line_exit_3(cli, tmp_path, monkeypatch):
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    result = cli("scan", "s3://bucket/prefix", "--s3-endpoint", f"http://127.0.0.1:{port}", "--s3-region", "us-east-1",
                 "--out", str(tmp_path / "o"), "--no-progress", code=3)
    assert result.output.startswith("error:") and "reach" in result.output


def test_cli_and_detector_registry_do_not_import_torch():
    """torch costs ~1 s and ~140 MiB: only a worker that runs a learned model loads it, so
    `deeptrawl --help`, `results`, `report` and scans without learned detectors stay light."""
    import subprocess
    import sys

    code = "import sys, deeptrawl.cli, deeptrawl.detectors as d; d.create(); assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
