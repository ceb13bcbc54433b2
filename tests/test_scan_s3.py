"""End to end against a real S3 server (SeaweedFS on 127.0.0.1): archive in a bucket,
reports and evidence written to another bucket, table read back with DuckDB."""

from __future__ import annotations

import json
import subprocess
import sys

import jsonschema
import pytest

from deeptrawl.config import ScanSettings, WarehouseSettings
from deeptrawl.query import connect, iceberg_scan_sql
from deeptrawl.report import SCHEMA_PATH
from deeptrawl.scan import run_scan
from deeptrawl.storage import read_uri
from deeptrawl.warehouse import IcebergSink
from support import archive

BEAM = ["--runner=DirectRunner"]


@pytest.fixture
def aws_env(s3_server, monkeypatch):
    for key, value in s3_server.aws_env().items():
        monkeypatch.setenv(key, value)
    return s3_server.aws_env()


def test_scan_of_an_s3_archive(s3_server, aws_env, tmp_path):
    client = s3_server.client()
    source_bucket = s3_server.make_bucket("archive-e2e")
    out_bucket = s3_server.make_bucket("results-e2e")
    expected = archive.build(lambda key, data: client.put_object(Bucket=source_bucket, Key=f"in/{key}", Body=data))

    settings = ScanSettings(
        source=f"s3://{source_bucket}/in",
        out=f"s3://{out_bucket}/scans",
        warehouse=WarehouseSettings(location=str(tmp_path / "warehouse")),
        s3=s3_server.s3_settings(),
        commit_batch_size=4,
    )
    summary = run_scan(settings, BEAM)
    assert summary.analyzed == len(expected)

    # Every object's row, read with DuckDB straight from the Iceberg metadata.
    con = connect()
    table = iceberg_scan_sql(IcebergSink(settings.warehouse).metadata_location())
    rows = con.execute(f"select object_uri, status, error_code, mime, report_uri from {table}").fetchall()
    got = {uri.removeprefix(f"s3://{source_bucket}/in/"): (status, code, mime, report) for uri, status, code, mime, report in rows}
    assert sorted(got) == sorted(expected)
    schema = json.loads(SCHEMA_PATH.read_text())
    for key, (status, what) in expected.items():
        row_status, code, mime, report_uri = got[key]
        assert row_status == status, key
        assert (code if status == "error" else mime) == what, key
        assert report_uri.startswith(f"s3://{out_bucket}/scans/reports/")
        jsonschema.validate(json.loads(read_uri(report_uri, settings.s3)), schema)

    # Rerun adds nothing.
    assert run_scan(settings, BEAM).analyzed == 0
    assert con.execute(f"select count(*) from {iceberg_scan_sql(IcebergSink(settings.warehouse).metadata_location())}").fetchone()[0] == len(expected)


def test_keys_with_dot_dot_segments_never_escape_the_output(s3_server, aws_env, tmp_path):
    """SeaweedFS itself refuses keys with ``.`` or ``..`` segments (AWS S3 does not), so the
    server gets the odd keys it accepts, and a memory:// source (which stores any key
    verbatim, as AWS would) carries the real ``..`` keys through the same scan."""
    from deeptrawl.samples import media
    from deeptrawl.storage import open_store

    client = s3_server.client()
    bucket = s3_server.make_bucket("dotdot")
    image = media.encode(media.photo("coffee"), quality=80)
    with pytest.raises(Exception, match="InvalidRequest|Invalid"):
        client.put_object(Bucket=bucket, Key="in/a/../../escape.jpg", Body=image)
    for key in ("in/..x/..y.jpg", "in//double.jpg", "in/ok.jpg"):
        client.put_object(Bucket=bucket, Key=key, Body=image)

    memory = open_store("memory://dotdot-archive")
    for key in ("a/../../escape.jpg", "../../../etc/passwd.jpg"):
        memory.write("placeholder", image)
        memory._blobs[key] = memory._blobs.pop("placeholder")  # raw key, as S3 would keep it

    out = tmp_path / "out"
    for source in (f"s3://{bucket}/in", "memory://dotdot-archive"):
        settings = ScanSettings(
            source=source,
            out=str(out),
            warehouse=WarehouseSettings(location=str(tmp_path / "warehouse")),
            s3=s3_server.s3_settings(),
        )
        run_scan(settings, BEAM)
    rows = IcebergSink(settings.warehouse).read().to_pylist()
    assert len(rows) == 5
    assert all(r["status"] == "ok" for r in rows), [(r["object_uri"], r["error_message"]) for r in rows]
    written = [p for p in tmp_path.parent.rglob("*") if p.is_file() and not p.resolve().is_relative_to(tmp_path.resolve())]
    assert not [p for p in written if "escape" in p.name or "passwd" in p.name]
    for row in rows:
        assert row["report_uri"].startswith(str(out))
        assert all(u.startswith(str(out)) for u in row["evidence_uris"])


def test_bad_credentials_stop_with_one_clear_message(s3_server, tmp_path):
    bucket = s3_server.make_bucket("creds")
    env = {
        **s3_server.aws_env(),
        "AWS_SECRET_ACCESS_KEY": "wrong-secret",
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "-m", "deeptrawl.cli", "scan", f"s3://{bucket}/x", "--out", str(tmp_path / "o"),
         "--s3-endpoint", s3_server.endpoint_url, "--no-progress"],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().startswith("error:")
