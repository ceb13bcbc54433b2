"""The span tree of a scan, read from the OpenTelemetry SDK's in-memory exporter."""

from __future__ import annotations

from collections import Counter

from deeptrawl.config import ScanSettings, WarehouseSettings
from deeptrawl.detectors import available, get
from deeptrawl.samples import media
from deeptrawl.scan import run_scan


def test_scan_span_tree(tmp_path, spans):
    source = tmp_path / "src"
    source.mkdir()
    (source / "a.jpg").write_bytes(media.encode(media.photo("coffee"), quality=85))
    (source / "b.png").write_bytes(media.encode(media.photo("chelsea"), "PNG"))
    (source / "broken.jpg").write_bytes(b"<html>nope</html>")
    settings = ScanSettings(
        source=str(source), out=str(tmp_path / "out"), warehouse=WarehouseSettings(location=str(tmp_path / "wh"))
    )
    run_scan(settings, ["--runner=DirectRunner"])

    finished = spans.get_finished_spans()
    by_id = {s.context.span_id: s for s in finished}
    names = Counter(s.name for s in finished)
    (root,) = [s for s in finished if s.name == "deeptrawl.scan"]
    assert root.parent is None
    assert all(s.context.trace_id == root.context.trace_id for s in finished), "one trace per scan run"

    def parent_name(span):
        return by_id[span.parent.span_id].name if span.parent else None

    (manifest,) = [s for s in finished if s.name == "deeptrawl.manifest"]
    assert parent_name(manifest) == "deeptrawl.scan"

    objects = [s for s in finished if s.name == "deeptrawl.analyze_object"]
    assert len(objects) == 3
    assert all(parent_name(s) == "deeptrawl.scan" for s in objects)
    assert sorted(s.attributes["deeptrawl.object_uri"].rsplit("/", 1)[1] for s in objects) == ["a.jpg", "b.png", "broken.jpg"]

    decodable = {s.context.span_id for s in objects if "deeptrawl.error_code" not in s.attributes}
    for name in available():
        children = [s for s in finished if s.name == f"deeptrawl.detector.{name}"]
        if get(name).batched:
            # one span per batch, beside the objects' spans and linked to each of them
            assert children and all(parent_name(s) == "deeptrawl.scan" for s in children), name
            assert {link.context.span_id for s in children for link in s.links} == decodable, name
        else:
            # one detector span per decodable image, each a child of its object's span
            assert len(children) == 2, name
            assert all(parent_name(s) == "deeptrawl.analyze_object" for s in children)
    broken = next(s for s in objects if s.attributes["deeptrawl.object_uri"].endswith("broken.jpg"))
    assert broken.attributes["deeptrawl.error_code"] == "unsupported"

    commits = [s for s in finished if s.name == "deeptrawl.commit"]
    assert commits and all(parent_name(s) == "deeptrawl.scan" for s in commits)
    assert sum(s.attributes["deeptrawl.rows"] for s in commits) == 3
    assert names["deeptrawl.scan"] == 1
