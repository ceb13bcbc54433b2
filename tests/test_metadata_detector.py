"""The metadata & provenance detector on real photographs with metadata written onto them.

Photos come from scikit-image; generator metadata is written with
``deeptrawl.samples.metadata``; C2PA manifests are signed here with a PKI made at test
time (``tests/support/c2pa_signing.py``), so nothing is downloaded.
"""

from __future__ import annotations

import http.server
import pickle
import threading

import pytest

from deeptrawl.detectors import registry
from deeptrawl.detectors.metadata import MetadataDetector
from deeptrawl.detectors.metadata import signatures
from deeptrawl.detectors.metadata.xmp import XmpError, parse_packet
from deeptrawl.samples import metadata as meta
from deeptrawl.samples.media import encode, photo
from support.c2pa_signing import make_pki, sign_image, tamper_jpeg_scan
from support.findings import analyze, codes, only


@pytest.fixture(scope="module")
def astronaut():
    return photo("astronaut")


@pytest.fixture(scope="module")
def chelsea():
    return photo("chelsea")


@pytest.fixture(scope="module")
def detector():
    det = MetadataDetector()
    det.setup()
    return det


@pytest.fixture(scope="module")
def chelsea_jpeg(chelsea):
    return encode(chelsea, "JPEG", quality=90)


@pytest.fixture(scope="module")
def c2pa_ai_jpeg(chelsea_jpeg):
    return sign_image(chelsea_jpeg, "image/jpeg", digital_source_type="trainedAlgorithmicMedia")




# --- contract ----------------------------------------------------------------------


def test_registered_with_its_contract():
    cls = registry.get("metadata")
    assert cls is MetadataDetector
    assert cls.name == "metadata" and cls.version == "1.1.0"
    assert {k.value for k in cls.media_kinds} == {"image"}


def test_pickles_without_its_native_context(detector, c2pa_ai_jpeg):
    clone = pickle.loads(pickle.dumps(detector))
    assert analyze(clone, c2pa_ai_jpeg).score == pytest.approx(0.99)


# --- generator fingerprints ------------------------------------------------------------


def test_a1111_parameters_in_png_text(detector, astronaut):
    data = meta.png_with_text(astronaut, {"parameters": meta.a1111_parameters("portrait of an astronaut", 1234)})
    result = analyze(detector, data)
    finding = only(result, "png_text_generator")
    assert finding.decisive and finding.score == pytest.approx(0.97)
    assert "AUTOMATIC1111" in finding.message
    assert result.score == pytest.approx(0.97)
    assert "Steps: 20" in result.details["png_text"]["parameters"]
    assert result.details["generators"] == ["AUTOMATIC1111"]


def test_comfyui_graph_in_png_text(detector, astronaut):
    data = meta.png_with_text(astronaut, {"prompt": meta.comfyui_prompt(), "workflow": meta.comfyui_workflow()})
    result = analyze(detector, data)
    assert result.score == pytest.approx(0.97)
    assert all(f.decisive for f in result.findings)
    messages = " ".join(f.message for f in result.findings)
    assert "'prompt' text chunk" in messages and "'workflow' text chunk" in messages
    assert result.details["generators"] == ["ComfyUI"]


def test_a_prompt_chunk_that_is_not_a_graph_is_not_flagged(detector, astronaut):
    data = meta.png_with_text(astronaut, {"prompt": "remember to buy milk", "Comment": "holiday 2019"})
    result = analyze(detector, data)
    assert result.score is None and result.findings == ()
    assert result.details["blocks"] == ["png_text"]


def test_a1111_parameters_in_jpeg_user_comment(detector, chelsea):
    data = meta.jpeg_with_exif(chelsea, user_comment=meta.a1111_parameters("a cat", 7))
    result = analyze(detector, data)
    assert only(result, "embedded_generation_parameters").decisive
    assert result.score == pytest.approx(0.97)


@pytest.mark.parametrize(
    ("software", "generator"),
    [("Midjourney", "Midjourney"), ("Adobe Firefly 2.0", "Adobe Firefly"), ("DALL-E 3", "DALL-E")],
)
def test_generator_named_in_exif_software(detector, chelsea, software, generator):
    result = analyze(detector, meta.jpeg_with_exif(chelsea, software=software))
    finding = only(result, "generator_software")
    assert finding.decisive and finding.score == pytest.approx(0.95)
    assert generator in finding.message and "EXIF Software" in finding.message
    assert result.details["exif"]["Software"] == software


def test_generator_named_in_xmp_creator_tool(detector, chelsea):
    data = meta.with_xmp(chelsea, meta.xmp_packet(creator_tool="Stable Diffusion XL 1.0"), "jpeg")
    result = analyze(detector, data)
    finding = only(result, "generator_software")
    assert "XMP CreatorTool" in finding.message and "Stable Diffusion" in finding.message
    assert result.details["xmp"]["creator_tool"] == "Stable Diffusion XL 1.0"


def test_generator_in_xmp_edit_history(detector, chelsea):
    packet = meta.xmp_packet(creator_tool="Adobe Photoshop 25.0", history_agents=("Adobe Photoshop 25.0", "Midjourney v6"))
    result = analyze(detector, meta.with_xmp(chelsea, packet, "jpeg"))
    assert "XMP history" in only(result, "generator_software").message
    assert result.details["editing_software"] == ["Adobe Photoshop"]
    assert [e["softwareAgent"] for e in result.details["xmp"]["history"]] == ["Adobe Photoshop 25.0", "Midjourney v6"]


# --- IPTC digital source type --------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["jpeg", "png"])
def test_iptc_trained_algorithmic_media(detector, chelsea, fmt):
    result = analyze(detector, meta.with_xmp(chelsea, meta.iptc_source_type_xmp("trainedAlgorithmicMedia"), fmt))
    finding = only(result, "source_type_ai_generated")
    assert finding.decisive and finding.score == pytest.approx(0.97)
    assert result.details["xmp"]["digital_source_type"] == (
        "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
    )


@pytest.mark.parametrize(
    ("term", "code", "low", "high"),
    [
        ("compositeSynthetic", "source_type_composite_synthetic", 0.85, 0.95),
        ("compositeWithTrainedAlgorithmicMedia", "source_type_ai_composite", 0.85, 0.95),
        ("algorithmicMedia", "source_type_algorithmic", 0.8, 0.9),
        ("digitalCapture", "source_type_capture", 0.0, 0.35),
    ],
)
def test_iptc_other_source_types(detector, chelsea, term, code, low, high):
    result = analyze(detector, meta.with_xmp(chelsea, meta.iptc_source_type_xmp(term), "jpeg"))
    finding = only(result, code)
    assert not finding.decisive
    assert low <= result.score <= high


def test_source_type_vocabulary_accepts_uris_and_terms():
    ai = signatures.source_type("http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia")
    assert ai is not None and ai.ai and ai.decisive
    assert signatures.source_type("https://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture").capture
    assert signatures.source_type("compositeSynthetic").score == pytest.approx(0.9)
    assert signatures.source_type("http://example.com/unknown") is None
    assert all(t.uri.startswith("http") for t in signatures.DIGITAL_SOURCE_TYPES.values())


def test_generator_names_need_word_boundaries():
    assert signatures.find_generator("Imagenomic Portraiture 3") is None
    assert signatures.find_generator("InfluxDB exporter") is None
    assert signatures.find_generator("Adobe Photoshop 25.0") is None
    assert signatures.find_generator("Google Imagen 3") == "Google Imagen"
    assert signatures.find_generator("DALL·E 3") == signatures.find_generator("DALL?E 3") == "DALL-E"
    assert signatures.find_generator("stable-diffusion-webui v1.9") == "AUTOMATIC1111"


# --- C2PA ----------------------------------------------------------------------------------


def test_c2pa_valid_ai_declaration_is_decisive_and_names_signer(detector, c2pa_ai_jpeg):
    result = analyze(detector, c2pa_ai_jpeg)
    finding = only(result, "c2pa_ai_declared")
    assert finding.decisive and finding.score == pytest.approx(0.99)
    assert "Deeptrawl Test Signer" in finding.message
    assert "not on any configured trust list" in finding.message
    c2pa = result.details["c2pa"]
    assert c2pa["present"] and c2pa["validation_state"] == "Valid" and c2pa["integrity_ok"]
    # A self-made certificate is a trust question, never an integrity failure.
    assert c2pa["trust_failures"] == ["signingCredential.untrusted"] and c2pa["integrity_failures"] == []
    assert c2pa["signer"]["common_name"] == "Deeptrawl Test Signer"
    assert c2pa["actions"][0]["action"] == "c2pa.created"
    assert c2pa["ai_terms"] == ["trainedAlgorithmicMedia"]


def test_c2pa_signer_is_trusted_when_its_root_is_configured(c2pa_ai_jpeg):
    detector = MetadataDetector(trust_anchors_pem=make_pki().ca_pem)
    result = analyze(detector, c2pa_ai_jpeg)
    assert result.details["c2pa"]["validation_state"] == "Trusted"
    assert result.details["c2pa"]["failure_codes"] == []
    assert "a trusted signer" in only(result, "c2pa_ai_declared").message


def test_c2pa_png_composite_with_ai(detector, astronaut):
    data = sign_image(encode(astronaut, "PNG"), "image/png", digital_source_type="compositeWithTrainedAlgorithmicMedia")
    result = analyze(detector, data)
    assert only(result, "c2pa_ai_declared").decisive


def test_c2pa_tampered_pixels_are_an_integrity_failure(detector, c2pa_ai_jpeg):
    tampered = tamper_jpeg_scan(c2pa_ai_jpeg)
    result = analyze(detector, tampered)
    finding = only(result, "c2pa_integrity_failure")
    assert not finding.decisive and finding.score == pytest.approx(0.8)
    assert "assertion.dataHash.mismatch" in finding.message
    assert "c2pa_ai_declared" not in codes(result)  # a transplanted manifest proves nothing
    assert result.score == pytest.approx(0.8)
    c2pa = result.details["c2pa"]
    assert c2pa["validation_state"] == "Invalid" and not c2pa["integrity_ok"]
    assert "assertion.dataHash.mismatch" in c2pa["integrity_failures"]
    assert "signingCredential.untrusted" not in c2pa["integrity_failures"]


def test_c2pa_valid_capture_manifest_is_evidence_of_authenticity(detector, chelsea_jpeg):
    data = sign_image(chelsea_jpeg, "image/jpeg", digital_source_type="digitalCapture")
    result = analyze(detector, data)
    finding = only(result, "c2pa_capture")
    assert result.score == pytest.approx(0.1) and not finding.decisive
    assert result.details["c2pa"]["capture_declared"]


def test_damaged_c2pa_store_does_not_crash(detector, c2pa_ai_jpeg):
    app11 = c2pa_ai_jpeg.find(b"\xff\xeb")
    for offset in (40, 200, 1200):
        damaged = bytearray(c2pa_ai_jpeg)
        damaged[app11 + offset] ^= 0x55
        result = analyze(detector, bytes(damaged))
        assert codes(result) & {"c2pa_unreadable", "c2pa_integrity_failure"}
        assert 0.5 <= result.score <= 0.8


def test_remote_manifest_reference_is_not_fetched(detector, chelsea):
    requests: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            requests.append(self.path)
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/manifest.c2pa"
        packet = meta.xmp_packet().replace(
            'rdf:about=""', f'rdf:about="" xmlns:dcterms="http://purl.org/dc/terms/" dcterms:provenance="{url}"'
        )
        result = analyze(detector, meta.with_xmp(chelsea, packet, "jpeg"))
    finally:
        server.shutdown()
    assert requests == []
    assert result.details["xmp"]["provenance"] == url
    assert result.score is None


# --- nothing to say --------------------------------------------------------------------------


def test_camera_jpeg_is_not_flagged(detector, chelsea):
    data = meta.jpeg_with_exif(chelsea, make="Canon", model="Canon EOS 5D Mark IV",
                               datetime="2019:05:04 10:11:12", software="Adobe Photoshop Lightroom Classic 12.0")
    result = analyze(detector, data)
    assert result.score is None or result.score < 0.35
    assert result.details["exif"]["Make"] == "Canon"
    assert result.details["exif"]["DateTimeOriginal"] == "2019:05:04 10:11:12"
    assert result.details["editing_software"] == ["Adobe Lightroom"]
    # Version 1.1: the editor is a modest, non-decisive consistency signal.
    assert [(f.code, f.score, f.decisive) for f in result.findings] == [("edited_with_software", 0.25, False)]


def test_plain_png_abstains(detector, astronaut):
    result = analyze(detector, encode(astronaut, "PNG"))
    assert result.score is None and result.findings == ()
    assert result.details["blocks"] == []
    assert result.details["c2pa"] == {"present": False}


@pytest.mark.parametrize(
    "packet",
    [
        "<x:xmpmeta><rdf:RDF><unclosed></x:xmpmeta>",
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaa">]><x:xmpmeta xmlns:x="adobe:ns:meta/">&a;</x:xmpmeta>',
        "\x00\x01 binary junk \xff",
    ],
    ids=["not-well-formed", "entity", "junk"],
)
@pytest.mark.parametrize("fmt", ["jpeg", "png"])
def test_malformed_xmp_is_reported_not_raised(detector, chelsea, packet, fmt):
    result = analyze(detector, meta.with_xmp(chelsea, packet, fmt))
    assert result.score is None
    assert "xmp" in result.details["blocks"]
    assert result.details["problems"]


def test_entity_declarations_are_refused_before_parsing():
    bomb = b'<!DOCTYPE x [<!ENTITY a "a"><!ENTITY b "&a;&a;&a;">]><x:xmpmeta xmlns:x="adobe:ns:meta/">&b;</x:xmpmeta>'
    with pytest.raises(XmpError, match="DOCTYPE or ENTITY"):
        parse_packet(bomb)


def test_broken_exif_does_not_crash(detector, chelsea_jpeg):
    for payload in (b"Exif\x00\x00garbage", b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x05\x01\x31\x00\x02\xff\xff"):
        result = analyze(detector, meta.insert_jpeg_app1(chelsea_jpeg, payload))
        assert result.score is None


def test_generator_in_iptc_iim_originating_program(detector, chelsea_jpeg):
    # Photoshop APP13 "8BIM" resource 0x0404 holding IIM datasets 2:65 and 2:80.
    iim = b"\x1c\x02\x41\x00\x0aMidjourney" + b"\x1c\x02\x50\x00\x04Anna"
    resource = b"8BIM\x04\x04\x00\x00" + len(iim).to_bytes(4, "big") + iim
    segment = b"Photoshop 3.0\x00" + resource
    data = chelsea_jpeg[:2] + b"\xff\xed" + (len(segment) + 2).to_bytes(2, "big") + segment + chelsea_jpeg[2:]
    result = analyze(detector, data)
    assert "IPTC OriginatingProgram" in only(result, "generator_software").message
    assert result.details["iptc"] == {"OriginatingProgram": "Midjourney", "Byline": "Anna"}
