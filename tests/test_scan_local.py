"""End to end on a local folder: Beam DirectRunner, a real Iceberg table, real files."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import jsonschema
import pytest

from deeptrawl.config import ScanSettings, WarehouseSettings
from deeptrawl.query import connect, iceberg_scan_sql
from deeptrawl.report import SCHEMA_PATH
from deeptrawl.scan import run_scan
from deeptrawl.warehouse import IcebergSink
from support import archive

BEAM = ["--runner=DirectRunner"]


def settings_for(source: Path, out: Path, **kw) -> ScanSettings:
    return ScanSettings(
        source=str(source), out=str(out), warehouse=WarehouseSettings(location=str(out / "warehouse")), **kw
    )


@pytest.fixture(scope="module")
def scanned(tmp_path_factory):
    """One scan of the bad-input archive, shared by the assertions below."""
    root = tmp_path_factory.mktemp("scan-local")
    source, out = root / "archive", root / "out"

    def write(key: str, data: bytes) -> None:
        path = source / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    expected = archive.build(write)
    settings = settings_for(source, out, commit_batch_size=5)
    summary = run_scan(settings, BEAM)
    rows = IcebergSink(settings.warehouse).read().to_pylist()
    return settings, expected, summary, rows


def test_every_object_has_exactly_one_row(scanned):
    settings, expected, summary, rows = scanned
    uris = [r["object_uri"] for r in rows]
    assert sorted(uris) == sorted(str(Path(settings.source) / k) for k in expected)
    assert summary.analyzed == len(expected) == summary.committed


def test_rows_carry_status_error_code_and_type_by_content(scanned):
    settings, expected, _, rows = scanned
    by_key = {str(Path(r["object_uri"]).relative_to(settings.source)): r for r in rows}
    for key, (status, what) in expected.items():
        row = by_key[key]
        assert row["status"] == status, (key, row["error_code"], row["error_message"])
        if status == "error":
            assert row["verdict"] == "error"
            assert row["error_code"] == what, (key, row["error_message"])
            assert row["error_message"]
        else:
            assert row["mime"] == what, key
            assert row["verdict"] in ("likely_synthetic", "likely_authentic", "inconclusive")
            assert row["content_sha256"] and len(row["content_sha256"]) == 64


def test_reports_exist_and_validate_against_the_committed_schema(scanned):
    _, _, _, rows = scanned
    schema = json.loads(SCHEMA_PATH.read_text())
    for row in rows:
        report = json.loads(Path(row["report_uri"]).read_text())
        jsonschema.validate(report, schema)
        assert report["object_uri"] == row["object_uri"]
        assert report["verdict"]["label"] == row["verdict"]
        for uri in row["evidence_uris"]:
            assert Path(uri).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_outputs_stay_inside_the_output_location(scanned):
    settings, _, _, rows = scanned
    out = Path(settings.out).resolve()
    for row in rows:
        assert Path(row["report_uri"]).resolve().is_relative_to(out)
        for uri in row["evidence_uris"]:
            assert Path(uri).resolve().is_relative_to(out)


def test_duckdb_reads_the_table(scanned):
    settings, expected, _, _ = scanned
    sink = IcebergSink(settings.warehouse)
    con = connect()
    counts = dict(
        con.execute(f"select status, count(*) from {iceberg_scan_sql(sink.metadata_location())} group by status").fetchall()
    )
    assert counts == {
        "ok": sum(1 for s, _ in expected.values() if s == "ok"),
        "error": sum(1 for s, _ in expected.values() if s == "error"),
    }


def test_rerun_adds_nothing(scanned, tmp_path):
    settings, expected, _, rows = scanned
    again = run_scan(settings, BEAM)
    assert again.analyzed == 0
    assert again.unchanged == len(expected)
    assert len(IcebergSink(settings.warehouse).read().to_pylist()) == len(rows)


def test_incremental_scan_takes_only_new_and_changed_objects(tmp_path):
    source, out = tmp_path / "src", tmp_path / "out"
    source.mkdir()
    from deeptrawl.samples import media

    (source / "a.jpg").write_bytes(media.encode(media.photo("coffee"), quality=80))
    (source / "b.jpg").write_bytes(media.encode(media.photo("chelsea"), quality=80))
    settings = settings_for(source, out)
    assert run_scan(settings, BEAM).analyzed == 2

    (source / "c.png").write_bytes(media.encode(media.photo("astronaut"), "PNG"))
    (source / "b.jpg").write_bytes(media.encode(media.photo("chelsea"), quality=60))  # changed content
    second = run_scan(settings, BEAM)
    assert (second.manifest_objects, second.unchanged, second.analyzed) == (2, 1, 2)
    rows = IcebergSink(settings.warehouse).read().to_pylist()
    assert sorted(Path(r["object_uri"]).name for r in rows) == ["a.jpg", "b.jpg", "b.jpg", "c.png"]
    assert len({r["content_sha256"] for r in rows if r["object_uri"].endswith("b.jpg")}) == 2


def test_an_object_changed_before_its_first_scan_is_scanned_once_at_its_newest_version(tmp_path):
    """Two manifests list it (the first run was stopped after listing); only the newest
    record is scanned, the older one counts as superseded."""
    from deeptrawl.samples import media
    from pipelines import manifest

    source, out = tmp_path / "src", tmp_path / "out"
    source.mkdir()
    (source / "a.jpg").write_bytes(media.encode(media.photo("coffee"), quality=80))
    (source / "b.jpg").write_bytes(media.encode(media.photo("chelsea"), quality=80))
    settings = settings_for(source, out)
    manifest.build(manifest.ManifestJob(source=str(source), out=str(out), s3=settings.s3, limits=settings.limits), BEAM)
    newer = media.encode(media.photo("chelsea"), quality=60)
    (source / "b.jpg").write_bytes(newer)

    summary = run_scan(settings, BEAM)
    assert (summary.analyzed, summary.superseded) == (2, 1)
    rows = IcebergSink(settings.warehouse).read().to_pylist()
    assert sorted(Path(r["object_uri"]).name for r in rows) == ["a.jpg", "b.jpg"]
    (b,) = [r for r in rows if r["object_uri"].endswith("b.jpg")]
    assert b["content_sha256"] == hashlib.sha256(newer).hexdigest()
    assert not list((out / "manifests").rglob("_listing/*")), "listing chunks are removed once a manifest is complete"


def test_an_object_changed_back_to_an_earlier_version_is_listed_again(tmp_path):
    """Same size and mtime as in the first manifest, but the newest manifest holds another
    version: only the newest record counts as what the object was last seen as."""
    import os

    from deeptrawl.samples import media

    source, out = tmp_path / "src", tmp_path / "out"
    source.mkdir()
    path = source / "a.jpg"
    first = media.encode(media.photo("coffee"), quality=80)
    path.write_bytes(first)
    stamp = os.stat(path).st_mtime_ns
    settings = settings_for(source, out)
    assert run_scan(settings, BEAM).analyzed == 1
    path.write_bytes(media.encode(media.photo("chelsea"), quality=80))
    assert run_scan(settings, BEAM).analyzed == 1
    path.write_bytes(first)
    os.utime(path, ns=(stamp, stamp))  # its listing facts are those of the first manifest again

    third = run_scan(settings, BEAM)
    assert (third.manifest_objects, third.unchanged) == (1, 0)
    assert third.analyzed == 0 and third.skipped == 1  # its row from the first scan stands
