"""Metadata detector 1.1: consistency signals, on files whose truth is known by construction.

Camera-like JPEGs are written with ``deeptrawl.samples.metadata`` (complete EXIF and an
IFD1 thumbnail, byte layout by hand); edits, transplanted EXIF, bad dates, XMP edit
histories and C2PA ingredient chains are made here from scikit-image's photos. C2PA
files are signed with the throwaway PKI of ``tests/support/c2pa_signing.py``.
"""

from __future__ import annotations

import datetime as dt
import time

import numpy as np
import pytest
from PIL import Image

from deeptrawl.config import Limits
from deeptrawl.detectors.metadata import MetadataDetector, thumbnail
from deeptrawl.detectors.metadata.consistency import parse_date
from deeptrawl.media import load_item
from deeptrawl.samples import corpus_metadata
from deeptrawl.samples import metadata as meta
from deeptrawl.samples.media import PHOTOS, encode, photo
from support.c2pa_signing import Ingredient, sign_image, sign_with_ingredients, tamper_jpeg_scan
from support.findings import analyze, codes, only

#: The project's "likely authentic" threshold: clean files must stay below it.
AUTHENTIC = 0.35
CONSISTENCY = {
    "exif_thumbnail_mismatch", "exif_thumbnail_aspect_mismatch", "exif_dimensions_mismatch",
    "exif_dates_out_of_order", "date_in_future", "date_before_digital_cameras", "xmp_exif_date_mismatch",
    "exif_date_gap", "camera_fields_missing", "edited_with_software", "xmp_history_edited", "xmp_composite",
    "c2pa_ingredient_invalid", "c2pa_composite", "c2pa_edited_after_capture",
}


def rgb(name: str) -> np.ndarray:
    a = photo(name)
    return np.stack([a] * 3, axis=-1) if a.ndim == 2 else a[..., :3]


@pytest.fixture(scope="module")
def detector():
    det = MetadataDetector()
    det.setup()
    return det


@pytest.fixture(scope="module")
def chelsea():
    return rgb("chelsea")


@pytest.fixture(scope="module")
def coffee():
    return rgb("coffee")


@pytest.fixture(scope="module")
def camera_file(chelsea):
    return meta.camera_jpeg(chelsea)




def assert_moderate(finding, low: float = 0.15, high: float = 0.55):
    assert not finding.decisive
    assert low <= finding.score <= high


# --- clean camera files: no finding at all ----------------------------------------------


@pytest.mark.parametrize("name", PHOTOS)
@pytest.mark.parametrize("letterbox", [False, True])
def test_clean_camera_jpeg_has_no_consistency_finding(detector, name, letterbox):
    result = analyze(detector, meta.camera_jpeg(rgb(name), letterbox=letterbox, quality=88))
    assert result.findings == () and result.score is None
    assert result.details["exif_thumbnail"]["status"] == "match"
    assert result.details["camera"]["exposure_fields"] == ["ExposureTime", "FNumber", "FocalLength", "ISO"]


@pytest.mark.parametrize("seed", range(3))
def test_lfw_faces_with_camera_exif_are_not_flagged(detector, seed):
    import skimage.data

    faces = skimage.data.lfw_subset()
    face = (np.asarray(faces[seed * 7]) * 255).astype(np.uint8)
    face = np.asarray(Image.fromarray(face).resize((250, 250), Image.BICUBIC).convert("RGB"))
    result = analyze(detector, meta.camera_jpeg(face, make="Apple", model="iPhone 13", quality=85))
    assert result.score is None or result.score < AUTHENTIC


def test_downscaled_copy_keeping_exif_is_consistent(detector, camera_file, chelsea):
    small = Image.fromarray(chelsea).resize((225, 150), Image.LANCZOS)
    result = analyze(detector, meta.reencode_keeping_exif(camera_file, small, quality=80))
    assert result.details["exif_thumbnail"]["status"] == "match"
    assert result.findings == ()


def test_turned_by_ninety_degrees_is_not_an_edit(detector, camera_file, chelsea):
    result = analyze(detector, meta.reencode_keeping_exif(camera_file, np.rot90(chelsea).copy()))
    assert result.details["exif_thumbnail"]["status"] == "rotated"
    assert result.findings == ()


def test_global_tone_edit_is_not_a_region_change(detector, camera_file, chelsea):
    brighter = (255 * (chelsea / 255.0) ** 0.7).astype(np.uint8)
    result = analyze(detector, meta.reencode_keeping_exif(camera_file, brighter))
    assert result.details["exif_thumbnail"]["status"] == "match"


# --- the EXIF thumbnail ------------------------------------------------------------------------


def test_region_edited_after_capture_is_found_and_located(detector, camera_file, chelsea, coffee):
    edited = chelsea.copy()
    edited[90:190, 160:300] = coffee[200:300, 250:390]
    truth = np.zeros(chelsea.shape[:2], bool)
    truth[90:190, 160:300] = True
    result = analyze(detector, meta.reencode_keeping_exif(camera_file, edited))
    finding = only(result, "exif_thumbnail_mismatch")
    assert_moderate(finding, 0.5, 0.55)
    assert "edited after the camera wrote the thumbnail" in finding.message
    assert result.details["exif_thumbnail"]["status"] == "region_changed"
    (heat,) = result.evidence
    assert heat.kind == "heatmap" and heat.array.shape == chelsea.shape[:2] and heat.array.dtype == np.float32
    assert 0.0 <= heat.array.min() and heat.array.max() <= 1.0
    found = heat.array >= 0.5
    iou = (found & truth).sum() / (found | truth).sum()
    assert iou >= 0.5, iou


def test_thumbnail_check_is_the_same_when_jpegs_decode_luma_only(detector, camera_file, chelsea, coffee):
    """A scan whose detectors read no colour decodes JPEGs to their Y plane; the thumbnail
    check then samples colour from a DCT-scaled decode and must reach the same findings."""
    edited = chelsea.copy()
    edited[90:190, 160:300] = coffee[200:300, 250:390]
    other = np.asarray(Image.fromarray(coffee).resize((451, 300), Image.BOX))
    for data in (camera_file, meta.reencode_keeping_exif(camera_file, edited), meta.reencode_keeping_exif(camera_file, other)):
        full = detector.analyze_one(load_item("a.jpg", data, Limits()))
        lean = detector.analyze_one(load_item("a.jpg", data, Limits(), colour=False))
        assert codes(lean) == codes(full)
        assert lean.details["exif_thumbnail"]["status"] == full.details["exif_thumbnail"]["status"]
        assert (lean.score is None) == (full.score is None)
        if full.score is not None:
            assert lean.score == pytest.approx(full.score, abs=0.05)


def test_camera_exif_pasted_onto_another_picture(detector, camera_file, coffee):
    other = np.asarray(Image.fromarray(coffee).resize((451, 300), Image.BOX))
    result = analyze(detector, meta.reencode_keeping_exif(camera_file, other))
    finding = only(result, "exif_thumbnail_mismatch")
    assert "different picture" in finding.message
    assert result.details["exif_thumbnail"]["status"] == "different_picture"
    assert result.evidence == ()  # the whole picture differs: nothing to point at


def test_thumbnail_from_before_an_edit_via_camera_writer(detector, chelsea, coffee):
    edited = chelsea.copy()
    edited[20:120, 20:160] = coffee[:100, :140]
    result = analyze(detector, meta.camera_jpeg(edited, thumbnail_from=chelsea))
    assert "exif_thumbnail_mismatch" in codes(result)


def test_cropped_after_capture(detector, camera_file, chelsea):
    result = analyze(detector, meta.reencode_keeping_exif(camera_file, chelsea[60:, :]))
    assert {"exif_thumbnail_aspect_mismatch", "exif_dimensions_mismatch"} <= codes(result)
    assert_moderate(only(result, "exif_thumbnail_aspect_mismatch"), 0.3, 0.4)
    assert "451x300" in only(result, "exif_dimensions_mismatch").message
    assert result.score == pytest.approx(0.35)


def test_broken_thumbnail_is_a_problem_not_a_crash(detector, chelsea):
    thumb = bytearray(meta.exif_thumbnail(chelsea))
    thumb[len(thumb) // 2:] = b"\x00" * (len(thumb) - len(thumb) // 2)
    block = meta.exif_block(make="Canon", model="EOS R6", exposure=True, thumbnail=bytes(thumb[:200]))
    result = analyze(detector, meta._jpeg(chelsea, 90, exif=block))
    assert result.score is None
    assert any("thumbnail" in p for p in result.details.get("problems", []))


def test_thumbnail_compare_unit():
    a = rgb("astronaut")
    thumb = thumbnail.decode_thumbnail(meta.exif_thumbnail(a))
    assert thumbnail.compare(thumb, a).status == "match"
    assert thumbnail.compare(thumb[:8, :8], a) is None  # too small to judge
    with pytest.raises(thumbnail.ThumbnailError):
        thumbnail.decode_thumbnail(b"\xff\xd8not a jpeg")


# --- dates -----------------------------------------------------------------------------------


def test_parse_date_formats():
    exif = parse_date("x", "2019:05:04 10:11:12", "+02:00")
    assert exif.when == dt.datetime(2019, 5, 4, 10, 11, 12) and exif.offset == dt.timedelta(hours=2)
    iso = parse_date("x", "2019-05-04T10:11:12.5Z")
    assert iso.offset == dt.timedelta(0) and iso.when.microsecond == 500000
    assert parse_date("x", "2019-05-04").when == dt.datetime(2019, 5, 4)
    for unset in ("0000:00:00 00:00:00", "    :  :     :  :  ", "", None, "yesterday"):
        assert parse_date("x", unset) is None


def test_digitised_before_taken(detector, chelsea):
    result = analyze(detector, meta.camera_jpeg(chelsea, when="2019:05:04 10:11:12", digitized="2019:05:04 10:01:12"))
    finding = only(result, "exif_dates_out_of_order")
    assert_moderate(finding, 0.35, 0.45)
    assert "DateTimeDigitized (2019:05:04 10:01:12) is 10 minutes before" in finding.message


def test_modified_before_taken(detector, chelsea):
    result = analyze(detector, meta.camera_jpeg(chelsea, when="2019:05:04 10:11:12", modified="2019:01:01 08:00:00"))
    assert "last modified before it was taken" in only(result, "exif_dates_out_of_order").message


def test_modified_a_few_hours_before_capture_may_be_a_time_zone(detector, chelsea):
    # DateTime written by another program in another zone: not provably out of order.
    result = analyze(detector, meta.camera_jpeg(chelsea, when="2019:05:04 10:11:12", modified="2019:05:04 04:11:12"))
    assert "exif_dates_out_of_order" not in codes(result)


def test_offsets_make_the_comparison_exact(detector, chelsea):
    block = meta.exif_block(make="Canon", model="EOS R6", exposure=True, datetime="2019:05:04 04:11:12",
                            datetime_original="2019:05:04 10:11:12", datetime_digitized="2019:05:04 10:11:12",
                            offset_time="+00:00")
    result = analyze(detector, meta._jpeg(chelsea, 90, exif=block))
    assert "exif_dates_out_of_order" in codes(result)


def test_future_date(detector, chelsea):
    future = (dt.datetime.now() + dt.timedelta(days=40)).strftime("%Y:%m:%d %H:%M:%S")
    result = analyze(detector, meta.camera_jpeg(chelsea, when=future))
    assert_moderate(only(result, "date_in_future"), 0.3, 0.4)


def test_date_before_digital_cameras(detector, chelsea):
    result = analyze(detector, meta.camera_jpeg(chelsea, when="1978:06:01 12:00:00"))
    finding = only(result, "date_before_digital_cameras")
    assert "clock was never set" in finding.message


def test_film_scan_is_not_implausible(detector, chelsea):
    data = meta.camera_jpeg(chelsea, make="Nikon", model="Nikon SUPER COOLSCAN 5000 ED", when="1975:06:01 12:00:00",
                            digitized="2020:02:02 10:00:00", modified="2020:02:02 10:05:00", exposure=False)
    result = analyze(detector, data)
    assert codes(result) == {"exif_date_gap"}  # a scanner needs no exposure fields; the gap is reported mildly
    assert "normal for a film scan" in only(result, "exif_date_gap").message
    assert result.score < AUTHENTIC


def xmp_on(jpeg: bytes, packet: str) -> bytes:
    return meta.insert_jpeg_app1(jpeg, b"http://ns.adobe.com/xap/1.0/\x00" + packet.encode())


def test_xmp_creation_date_disagrees_with_exif(detector, camera_file):
    result = analyze(detector, xmp_on(camera_file, meta.xmp_packet(create_date="2019-05-07T10:18:12")))
    finding = only(result, "xmp_exif_date_mismatch")
    assert_moderate(finding, 0.25, 0.35)
    assert "XMP xmp:CreateDate" in finding.message


@pytest.mark.parametrize("xmp_date", ["2019-05-04T10:11:12", "2019-05-04T12:11:12", "2019-05-04T10:11:12+02:00",
                                      "2019-05-04T08:11:12Z", "2019-05-04"])
def test_xmp_creation_date_agreeing_up_to_a_time_zone(detector, camera_file, xmp_date):
    result = analyze(detector, xmp_on(camera_file, meta.xmp_packet(create_date=xmp_date, date_created=xmp_date)))
    assert result.findings == ()


def test_xmp_history_before_capture(detector, camera_file):
    history = [{"action": "saved", "when": "2018-01-01T10:00:00", "softwareAgent": "Adobe Bridge",
                "changed": "/metadata"}]
    result = analyze(detector, xmp_on(camera_file, meta.xmp_packet(history=history)))
    assert "XMP history records 'saved'" in only(result, "exif_dates_out_of_order").message


# --- camera fields and software -----------------------------------------------------------------


def test_camera_named_without_exposure_fields(detector, chelsea):
    result = analyze(detector, meta.camera_jpeg(chelsea, exposure=False))
    finding = only(result, "camera_fields_missing")
    assert_moderate(finding, 0.25, 0.35)
    assert "Canon EOS 5D Mark IV" in finding.message and "Canon Canon" not in finding.message
    assert result.details["camera"]["exposure_fields"] == []
    assert result.score < AUTHENTIC  # alone, it does not move a file out of "likely authentic"


def test_exposure_fields_in_xmp_count(detector, chelsea):
    packet = meta.xmp_packet().replace(
        'rdf:about=""', 'rdf:about="" xmlns:exif="http://ns.adobe.com/exif/1.0/" exif:ExposureTime="1/125"')
    result = analyze(detector, xmp_on(meta.camera_jpeg(chelsea, exposure=False), packet))
    assert "camera_fields_missing" not in codes(result)


def test_legacy_helper_writes_complete_camera_exif(detector, chelsea):
    # The sample archive's "real" photos use jpeg_with_exif with a make/model.
    data = meta.jpeg_with_exif(chelsea, make="Canon", model="Canon EOS R6", datetime="2024:05:01 10:12:00")
    result = analyze(detector, data)
    assert result.findings == ()


@pytest.mark.parametrize(
    ("software", "editor"),
    [("Adobe Photoshop 25.0 (Windows)", "Adobe Photoshop"), ("GIMP 2.10.34", "GIMP"),
     ("Adobe Photoshop Lightroom Classic 13.1 (Macintosh)", "Adobe Lightroom"), ("Snapseed 2.0", "Snapseed"),
     ("Affinity Photo 2.3", "Affinity Photo")],
)
def test_editing_software_is_a_modest_finding(detector, chelsea, software, editor):
    result = analyze(detector, meta.camera_jpeg(chelsea, software=software))
    finding = only(result, "edited_with_software")
    assert_moderate(finding, 0.2, 0.3)
    assert editor in finding.message and "EXIF Software" in finding.message
    assert result.score < AUTHENTIC


def test_camera_firmware_is_not_an_editor(detector, chelsea):
    result = analyze(detector, meta.camera_jpeg(chelsea, software="Firmware Version 1.1.0"))
    assert result.findings == ()


def test_generator_still_decisive_beside_consistency_signals(detector, chelsea):
    result = analyze(detector, meta.camera_jpeg(chelsea, software="Midjourney v6", exposure=False))
    assert only(result, "generator_software").decisive
    assert result.score == pytest.approx(0.95)


# --- XMP edit history --------------------------------------------------------------------------


def test_photoshop_history_is_reported_as_a_chain(detector, camera_file):
    packet = meta.xmp_packet(history=meta.photoshop_history(),
                             derived_from={"instanceID": "xmp.iid:0001", "documentID": "adobe:docid:photoshop:1"})
    result = analyze(detector, xmp_on(camera_file, packet))
    finding = only(result, "xmp_history_edited")
    assert_moderate(finding, 0.25, 0.35)
    assert "Adobe Photoshop: converted, saved, derived" in finding.message
    chain = result.details["xmp_edit_chain"]
    assert chain["steps"][0].startswith("created by Adobe Photoshop 25.0")
    assert chain["steps"][2] == "saved by Adobe Photoshop 25.0 (Windows) at 2024-03-01T09:30:00+01:00 [changed /]"
    assert chain["derived_from"]["documentID"] == "adobe:docid:photoshop:1"
    assert chain["content_edited_by"] == ["Adobe Photoshop"]
    assert "exif_date_gap" not in codes(result)  # XMP ModifyDate not written: no gap to see


def test_metadata_only_saves_are_not_edits(detector, camera_file):
    history = [{"action": "saved", "when": "2019-05-06T10:00:00", "changed": "/metadata",
                "softwareAgent": "Adobe Photoshop Lightroom Classic 13.1 (Windows)"}]
    result = analyze(detector, xmp_on(camera_file, meta.xmp_packet(history=history)))
    assert "xmp_history_edited" not in codes(result)
    assert result.details["xmp_edit_chain"]["steps"] == [
        "saved by Adobe Photoshop Lightroom Classic 13.1 (Windows) at 2019-05-06T10:00:00 [changed /metadata]"]


def test_placed_files_and_pasted_documents_are_a_composite(detector, camera_file):
    packet = meta.xmp_packet(ingredients=["/Users/a/sky.psd"], document_ancestors=["xmp.did:1", "xmp.did:2"])
    result = analyze(detector, xmp_on(camera_file, packet))
    finding = only(result, "xmp_composite")
    assert "sky.psd" in finding.message and "2 ancestor document(s)" in finding.message
    assert result.details["xmp_edit_chain"]["ingredients"] == [{"filePath": "/Users/a/sky.psd"}]


def test_generator_anywhere_in_the_history_chain(detector, camera_file):
    history = meta.photoshop_history() + [{"action": "edited", "softwareAgent": "Adobe Firefly Image 3"}]
    result = analyze(detector, xmp_on(camera_file, meta.xmp_packet(history=history)))
    assert only(result, "generator_software").decisive
    assert result.details["xmp_edit_chain"]["generators"] == ["Adobe Firefly"]


# --- C2PA ingredient and action chain ------------------------------------------------------------


@pytest.fixture(scope="module")
def capture_jpeg(chelsea):
    return sign_image(encode(chelsea, "JPEG", quality=90), "image/jpeg", digital_source_type="digitalCapture",
                      software_agent="Deeptrawl Camera 1.0", title="IMG_0001.jpg")


@pytest.fixture(scope="module")
def ai_jpeg(coffee):
    return sign_image(encode(coffee, "JPEG", quality=90), "image/jpeg", digital_source_type="trainedAlgorithmicMedia",
                      software_agent="Adobe Firefly", title="firefly.jpg")


def edited_from(capture: bytes, pixels: np.ndarray, *extra: Ingredient, actions=None) -> bytes:
    ingredients = [Ingredient(capture, "image/jpeg", "IMG_0001.jpg", "parentOf"), *extra]
    actions = actions or [{"action": "c2pa.opened", "ingredients": ["IMG_0001.jpg"]},
                          {"action": "c2pa.color_adjustments", "softwareAgent": "Adobe Photoshop 25.0"}]
    return sign_with_ingredients(encode(pixels, "JPEG", quality=90), "image/jpeg",
                                 ingredients=ingredients, actions=actions)


def test_c2pa_capture_then_edit(detector, capture_jpeg, chelsea):
    result = analyze(detector, edited_from(capture_jpeg, chelsea))
    finding = only(result, "c2pa_edited_after_capture")
    assert_moderate(finding, 0.2, 0.3)
    assert "color_adjustments" in finding.message
    chain = result.details["c2pa"]["chain"]
    parent = chain["ingredients"][0]
    assert parent["relationship"] == "parentOf" and parent["provenance"] == "c2pa"
    assert parent["manifest"]["title"] == "IMG_0001.jpg" and parent["manifest"]["source_types"] == ["digitalCapture"]
    assert chain["actions"][0] == {"action": "c2pa.opened", "ingredients": ["IMG_0001.jpg"]}
    assert result.score < AUTHENTIC


def test_c2pa_ai_component_placed_into_a_capture(detector, capture_jpeg, ai_jpeg, chelsea):
    data = edited_from(capture_jpeg, chelsea, Ingredient(ai_jpeg, "image/jpeg", "firefly.jpg"), actions=[
        {"action": "c2pa.opened", "ingredients": ["IMG_0001.jpg"]},
        {"action": "c2pa.placed", "ingredients": ["firefly.jpg"]},
    ])
    result = analyze(detector, data)
    finding = only(result, "c2pa_ingredient_ai")
    assert finding.score == pytest.approx(0.9)
    assert "'firefly.jpg'" in finding.message and "Adobe Firefly" in finding.message
    assert "c2pa_composite" not in codes(result)  # the AI finding already names that component
    assert "c2pa_edited_after_capture" in codes(result)  # c2pa.placed changed the capture
    c2pa = result.details["c2pa"]
    assert c2pa["ai_ingredients"] == [{"title": "firefly.jpg", "relationship": "componentOf", "depth": 1,
                                       "terms": ["trainedAlgorithmicMedia"], "generator": "Adobe Firefly"}]
    assert c2pa["ai_declared"] is False


def test_c2pa_real_component_is_a_composite(detector, capture_jpeg, chelsea, coffee):
    logo = Ingredient(encode(coffee[:64, :64], "PNG"), "image/png", "logo.png")
    data = edited_from(capture_jpeg, chelsea, logo, actions=[
        {"action": "c2pa.opened", "ingredients": ["IMG_0001.jpg"]},
        {"action": "c2pa.placed", "ingredients": ["logo.png"]},
    ])
    result = analyze(detector, data)
    finding = only(result, "c2pa_composite")
    assert_moderate(finding, 0.35, 0.45)
    assert "'logo.png'" in finding.message
    logo_entry = result.details["c2pa"]["chain"]["ingredients"][1]
    assert logo_entry["provenance"] == "none" and logo_entry["relationship"] == "componentOf"


def test_c2pa_ingredient_that_failed_validation(detector, capture_jpeg, chelsea):
    broken = tamper_jpeg_scan(capture_jpeg)
    data = sign_with_ingredients(encode(chelsea, "JPEG", quality=90), "image/jpeg",
                                 ingredients=[Ingredient(broken, "image/jpeg", "IMG_0001.jpg", "parentOf")],
                                 actions=[{"action": "c2pa.opened", "ingredients": ["IMG_0001.jpg"]}])
    result = analyze(detector, data)
    finding = only(result, "c2pa_ingredient_invalid")
    assert_moderate(finding, 0.4, 0.5)
    assert "assertion.dataHash.mismatch" in finding.message
    assert result.details["c2pa"]["integrity_ok"]  # the file itself is intact
    assert "signingCredential.untrusted" not in result.details["c2pa"]["invalid_ingredients"][0]["codes"]


def test_c2pa_chain_two_levels_deep(detector, capture_jpeg, ai_jpeg, chelsea):
    first = edited_from(capture_jpeg, chelsea)
    second = sign_with_ingredients(
        encode(chelsea, "JPEG", quality=88), "image/jpeg",
        ingredients=[Ingredient(first, "image/jpeg", "edit1.jpg", "parentOf"),
                     Ingredient(ai_jpeg, "image/jpeg", "firefly.jpg", "componentOf")],
        actions=[{"action": "c2pa.opened", "ingredients": ["edit1.jpg"]},
                 {"action": "c2pa.placed", "ingredients": ["firefly.jpg"]}],
    )
    result = analyze(detector, second)
    chain = result.details["c2pa"]["chain"]
    deep = chain["ingredients"][0]["manifest"]["ingredients"][0]
    assert deep["title"] == "IMG_0001.jpg" and deep["manifest"]["source_types"] == ["digitalCapture"]
    assert {e["depth"] for e in result.details["c2pa"]["edits_after_capture"]} == {0, 1}
    assert only(result, "c2pa_ingredient_ai").score == pytest.approx(0.9)


def test_c2pa_plain_capture_has_no_chain_findings(detector, capture_jpeg):
    result = analyze(detector, capture_jpeg)
    assert codes(result) == {"c2pa_capture"}
    assert "chain" not in result.details["c2pa"]


def test_consistency_scores_stay_moderate():
    from deeptrawl.detectors.metadata import scores

    names = ["THUMBNAIL_MISMATCH", "THUMBNAIL_ASPECT", "DIMENSIONS_MISMATCH", "DATES_OUT_OF_ORDER", "DATE_IN_FUTURE",
             "DATE_TOO_EARLY", "XMP_EXIF_DATE_MISMATCH", "DATE_GAP", "CAMERA_FIELDS_MISSING", "EDITING_SOFTWARE",
             "XMP_HISTORY_EDITED", "XMP_COMPOSITE", "C2PA_INGREDIENT_INVALID", "C2PA_COMPOSITE",
             "C2PA_EDITED_AFTER_CAPTURE"]
    assert len(names) == len(CONSISTENCY)
    assert all(0.15 <= getattr(scores, "SCORE_" + n) <= scores.SCORE_CONSISTENCY_MAX < 0.7 for n in names)


def test_chain_walk_survives_cycles_and_junk():
    from deeptrawl.detectors.metadata.c2pa import chain_of

    looped = {"active_manifest": "a", "manifests": {
        "a": {"title": "A", "ingredients": [{"title": "b", "relationship": "parentOf", "active_manifest": "b"}]},
        "b": {"title": "B", "ingredients": [{"title": "a", "relationship": "parentOf", "active_manifest": "a"}]},
    }}
    tree, _ = chain_of(looped)
    assert tree["ingredients"][0]["manifest"]["ingredients"][0]["provenance"] == "cycle"
    junk = {"active_manifest": "a", "manifests": {"a": {"ingredients": {"x": 1}, "assertions": "junk"}}}
    assert chain_of(junk)[0] == {"manifest": "a", "actions": []}
    assert chain_of({"manifests": {}}) == ({}, {"ai_ingredients": [], "invalid_ingredients": [],
                                              "placed_components": [], "edits_after_capture": []})


# --- ground-truth corpus and cost ---------------------------------------------------------------


def test_corpus_separates_real_from_manipulated(detector):
    cases = corpus_metadata.cases(36, seed=3)
    real = [analyze(detector, c.data).score or 0.0 for c in cases if not c.manipulated]
    fake = [analyze(detector, c.data).score or 0.0 for c in cases if c.manipulated]
    assert len(real) == len(fake) == 18
    assert max(real) < AUTHENTIC  # no false positive among clean, resized and re-compressed files
    assert np.mean([s >= 0.3 for s in fake]) >= 0.9
    assert all(f.code in CONSISTENCY | {"c2pa_capture"} for c in cases[:6] for f in analyze(detector, c.data).findings)


def test_corpus_is_deterministic_and_labelled():
    a, b = corpus_metadata.cases(10, seed=1), corpus_metadata.cases(10, seed=1)
    assert [c.data for c in a] == [c.data for c in b]
    assert {c.kind for c in a if c.manipulated} <= set(corpus_metadata.FAKE_KINDS)
    splices = [c for c in a if c.kind == "thumbnail_splice"]
    assert splices and all(c.mask is not None and c.mask.any() for c in splices)


def test_cost_on_a_12_megapixel_camera_file(detector):
    big = Image.fromarray(rgb("astronaut")).resize((4000, 3000), Image.BILINEAR)
    data = meta.camera_jpeg(big, quality=85)
    item = load_item("mem://big", data, Limits())
    best = float("inf")
    for _ in range(3):
        # CPU time of this (single-threaded) work: wall time on a shared machine is noise.
        start = time.process_time()
        result = detector.analyze_one(item)
        best = min(best, time.process_time() - start)
    assert result.findings == () and result.details["exif_thumbnail"]["status"] == "match"
    assert best < 0.05, f"{best:.3f} s"
