"""The metadata & provenance detector: what the file says about where it came from.

Sources, strongest first:

1. **C2PA manifest** (signed provenance). A valid manifest declaring generative AI is
   decisive; a manifest whose hashes no longer match the file means the content changed
   after signing; a valid capture manifest is evidence of authenticity.
2. **IPTC digital source type** in XMP (unsigned declaration by the producer; Google,
   Adobe, Microsoft and others write ``trainedAlgorithmicMedia`` into AI output).
3. **Generator fingerprints**: generation settings that front-ends embed (AUTOMATIC1111
   ``parameters``, ComfyUI graphs, InvokeAI, NovelAI) and generator names in EXIF
   Software, XMP CreatorTool or XMP edit history.

Scoring rule (documented, deliberately simple): every observation is a ``Finding`` with
its own score, and the result's score is the **maximum** finding score. Metadata findings
are independent declarations, and one credible declaration of synthesis settles the
question however many authentic-looking fields sit beside it, so a low-scoring
authenticity finding never lowers a synthesis finding. With no finding at all the detector
abstains (``score=None``): missing metadata is the normal state of archive files and says
nothing about authenticity. Camera EXIF (Make/Model) is reported in details but not scored,
because it is trivially copied onto any image.

4. **Consistency signals** (version 1.1): the EXIF thumbnail against the picture
   (``thumbnail.py``), the order, range and agreement of EXIF/XMP dates, camera make and
   model without exposure fields, EXIF pixel size of another shape, image editors named
   in software fields (``consistency.py``), content edits and composites in the XMP edit
   history (``history.py``), and the C2PA ingredient/action chain: ingredients that
   failed validation, components placed into the picture, edits after a declared
   capture (``c2pa.py``). These say "edited" or "metadata does not belong here", not
   "synthetic", so their scores are moderate and never decisive (``scores.py``).

Malformed metadata never raises out of ``analyze_one``: each block is read on its own and
a failure becomes a line in ``details["problems"]``.

Cost: reading metadata is negligible; the only pixel work is the thumbnail comparison,
which strides through the picture to a 40-cell grid (about 1 ms for 12 MP; the evidence
map, made only when a region differs, costs a full-size upsample).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Callable, ClassVar, TypeVar

import numpy as np

from deeptrawl.detectors.base import Detector, DetectorResult, Evidence, Finding
from deeptrawl.detectors.metadata import consistency, history, scores, signatures, thumbnail
from deeptrawl.detectors.metadata import exif as exif_reader
from deeptrawl.detectors.metadata import xmp as xmp_reader
from deeptrawl.detectors.metadata.c2pa import C2paInspector, signer_name
from deeptrawl.detectors.metadata.exif import clip
from deeptrawl.detectors.metadata.scores import (
    SCORE_C2PA_AI,
    SCORE_C2PA_CAPTURE,
    SCORE_C2PA_CAPTURE_TRUSTED,
    SCORE_C2PA_CREDENTIAL,
    SCORE_C2PA_INGREDIENT_AI,
    SCORE_C2PA_INTEGRITY,
    SCORE_C2PA_UNREADABLE,
    SCORE_GENERATION_PARAMS,
    SCORE_GENERATOR_SOFTWARE,
)
from deeptrawl.detectors.registry import register
from deeptrawl.media.item import MediaItem
from deeptrawl.media.sniff import MediaKind

T = TypeVar("T")


@register
class MetadataDetector(Detector):
    """Provenance (C2PA), IPTC source type and generator fingerprints in image metadata."""

    name: ClassVar[str] = "metadata"
    version: ClassVar[str] = "1.1.0"
    media_kinds: ClassVar[frozenset[MediaKind]] = frozenset({MediaKind.IMAGE})
    # Headers, and a colour thumbnail-sized sample of the picture (``sample_picture``).
    pixels: ClassVar[str] = "luma"

    def __init__(self, *, trust_anchors_pem: str | None = None) -> None:
        """``trust_anchors_pem``: PEM root certificates whose C2PA signers count as trusted
        (for example the C2PA trust list, or an organisation's own CA). Without it a
        valid manifest is "valid, signer not on a trust list"."""
        self._c2pa = C2paInspector(trust_anchors_pem)

    def setup(self) -> None:
        self._c2pa.context()

    def analyze_one(self, item: MediaItem) -> DetectorResult:
        problems: list[str] = []
        findings: list[Finding] = []
        details: dict[str, Any] = {}
        image = item.image

        def safely(what: str, fn: Callable[[], T], default: T) -> T:
            try:
                return fn()
            except Exception as exc:  # a metadata reader bug must not cost the other evidence
                problems.append(f"{what} could not be read: {type(exc).__name__}: {clip(str(exc), 120)}")
                return default

        exif: dict[str, str] = {}
        iptc: dict[str, str] = {}
        text: dict[str, str] = {}
        comment: str | None = None
        if image is not None:
            exif = safely("EXIF", lambda: exif_reader.read_exif(image, problems), {})
            iptc = safely("IPTC IIM", lambda: exif_reader.read_iptc(image, problems), {})
            text = safely("PNG text", lambda: exif_reader.read_text_chunks(image, problems), {})
            comment = safely("comment", lambda: exif_reader.read_comment(image), None)
        xmp = safely("XMP", lambda: self._read_xmp(item, problems), None)
        c2pa = safely("C2PA", lambda: self._c2pa.inspect(item.data, item.media_type.mime), {"present": False})

        generators: list[str] = []
        safely("C2PA findings", lambda: findings.extend(_c2pa_findings(c2pa, generators)), None)
        safely("XMP findings", lambda: findings.extend(_xmp_findings(xmp or {}, generators)), None)
        safely("text findings", lambda: findings.extend(_text_findings(text, exif, comment, generators)), None)
        safely("software findings",
               lambda: findings.extend(_software_findings(exif, iptc, xmp or {}, generators)), None)

        consistency_findings, evidence, consistency_details = self._consistency(
            item, exif, iptc, xmp or {}, safely, problems)
        findings += consistency_findings

        info = image.info if image is not None else {}
        blocks = [name for name, present in (
            ("exif", bool(exif or info.get("exif"))),
            ("iptc", bool(iptc)),
            ("png_text", bool(text)),
            ("comment", bool(comment)),
            ("xmp", xmp is not None),
            ("c2pa", bool(c2pa.get("present"))),
            ("icc_profile", bool(info.get("icc_profile"))),
        ) if present]
        details["blocks"] = blocks
        if exif:
            details["exif"] = {k: clip(v) for k, v in exif.items()}
        if iptc:
            details["iptc"] = {k: clip(v) for k, v in iptc.items()}
        if text:
            details["png_text"] = {k: clip(v) for k, v in text.items()}
        if comment:
            details["comment"] = clip(comment)
        if xmp is not None:
            details["xmp"] = _xmp_details(xmp)
        details["c2pa"] = c2pa
        editors = sorted({
            e for _, v in _software_fields(exif, iptc, xmp or {}) if (e := signatures.find_editor(v))
        })
        if editors:
            details["editing_software"] = editors
        if generators:
            details["generators"] = sorted(set(generators))
        details.update(consistency_details)
        if problems:
            details["problems"] = problems[:20]

        findings = _dedupe(findings)
        score = max((f.score for f in findings), default=None)
        return DetectorResult(score=score, findings=tuple(findings), details=details, evidence=tuple(evidence))

    def _consistency(
        self, item: MediaItem, exif: dict[str, str], iptc: dict[str, str], xmp: dict[str, Any],
        safely: Callable[[str, Callable[[], Any], Any], Any], problems: list[str],
    ) -> tuple[list[Finding], list[Evidence], dict[str, Any]]:
        """Consistency signals (moderate scores, never decisive): XMP edit history,
        editing software, dates, camera fields, EXIF pixel size and thumbnail."""
        findings: list[Finding] = []
        evidence: list[Evidence] = []
        details: dict[str, Any] = {}
        props = xmp.get("props") or {}
        image = item.image

        chain = safely("XMP edit history", lambda: history.read_chain(props), history.EditChain())
        safely("XMP history findings", lambda: findings.extend(history.chain_findings(chain)), None)
        safely("editing software findings", lambda: findings.extend(
            consistency.editing_findings(_software_fields(exif, iptc, xmp, with_history=False))), None)
        make, model = consistency.camera_claim(exif, props)
        stamps = safely("dates", lambda: consistency.collect_dates(exif, props), {})
        safely("date findings", lambda: findings.extend(consistency.date_findings(
            stamps, chain.events, camera_claimed=bool(make or model), now=dt.datetime.now())), None)
        safely("camera field findings", lambda: findings.extend(consistency.camera_findings(exif, props)), None)
        check = None
        if image is not None:
            safely("EXIF dimension findings",
                   lambda: findings.extend(consistency.dimension_findings(exif, image.size)), None)
            check = safely("EXIF thumbnail", lambda: self._thumbnail(item, problems), None)
            safely("thumbnail findings", lambda: findings.extend(consistency.thumbnail_findings(check)), None)
            if check is not None and check.status == "region_changed":
                evidence += safely("thumbnail evidence",
                                   lambda: [_thumbnail_evidence(check, (image.height, image.width))], [])

        if not chain.empty:
            details["xmp_edit_chain"] = chain.details()
        if stamps:
            details["dates"] = {name: s.text for name, s in stamps.items()}
        if make or model:
            details["camera"] = {"make": clip(make or ""), "model": clip(model or ""),
                                 "exposure_fields": consistency.exposure_present(exif, props)}
        if check is not None:
            details["exif_thumbnail"] = check.details()
        return findings, evidence, details

    def _thumbnail(self, item: MediaItem, problems: list[str]) -> thumbnail.ThumbnailCheck | None:
        data = exif_reader.read_thumbnail(item.image, problems)
        if data is None:
            return None
        try:
            pixels = thumbnail.decode_thumbnail(data)
        except thumbnail.ThumbnailError as exc:
            problems.append(str(exc))
            return None
        sample = thumbnail.sample_picture(item.image, lambda: item.rgb, item.data if item.luma_only else None)
        return thumbnail.compare(pixels, sample, item.image.size)

    def _read_xmp(self, item: MediaItem, problems: list[str]) -> dict[str, Any] | None:
        packet = xmp_reader.find_packet(item.image, item.data)
        if packet is None:
            return None
        try:
            return {"props": xmp_reader.parse_packet(packet), "bytes": len(packet)}
        except xmp_reader.XmpError as exc:
            problems.append(str(exc)[:200])
            return {"props": {}, "bytes": len(packet), "error": str(exc)[:200]}


# --- findings per source -------------------------------------------------------------


def _c2pa_findings(c2pa: dict[str, Any], generators: list[str]) -> list[Finding]:
    if not c2pa.get("present"):
        return []
    if not c2pa.get("readable", True):
        return [Finding(
            "c2pa_unreadable",
            "The file carries a C2PA (Content Credentials) store that cannot be read; "
            "it may be damaged or tampered with.",
            SCORE_C2PA_UNREADABLE,
        )]
    out: list[Finding] = []
    signer = signer_name(c2pa)
    trust = "a trusted signer" if c2pa.get("trusted") else "a signer not on any configured trust list"
    integrity_ok = c2pa.get("integrity_ok", False)
    credential_ok = not c2pa.get("credential_failures")
    terms = ", ".join(c2pa.get("ai_terms") or [])
    if c2pa.get("generator"):
        generators.append(c2pa["generator"])
    if not integrity_ok:
        # An AI declaration in a manifest that no longer matches the file is not scored on
        # its own: a manifest can be transplanted onto any picture, so only the mismatch
        # itself is evidence.
        declared = f" (the manifest declares AI generation: {terms})" if terms else ""
        out.append(Finding(
            "c2pa_integrity_failure",
            "The C2PA manifest no longer matches the file ("
            + ", ".join(c2pa.get("integrity_failures") or ["validation failed"])
            + f"): the content was changed after {signer} signed it{declared}.",
            SCORE_C2PA_INTEGRITY,
        ))
        return out
    if not credential_ok:
        out.append(Finding(
            "c2pa_credential_invalid",
            f"The C2PA manifest's signing certificate ({signer}) is not valid ("
            + ", ".join(c2pa["credential_failures"]) + "), so its claims cannot be relied on.",
            SCORE_C2PA_CREDENTIAL,
        ))
        return out
    valid = c2pa.get("validation_state") in ("Valid", "Trusted")
    if not valid:
        return out
    if c2pa.get("ai_declared"):
        out.append(Finding(
            "c2pa_ai_declared",
            f"A valid C2PA manifest signed by {signer}, {trust}, declares the content "
            f"AI-generated ({terms}).",
            SCORE_C2PA_AI,
            decisive=True,
        ))
    elif c2pa.get("ingredient_ai_declared"):
        named = [_ingredient_name(i) + (f" ({i['generator']})" if i.get("generator") else "")
                 for i in c2pa.get("ai_ingredients") or []]
        which = f": {', '.join(named[:3])}" if named else ""
        out.append(Finding(
            "c2pa_ingredient_ai",
            f"The C2PA provenance chain (signed by {signer}) includes an ingredient declared "
            f"AI-generated{which}, in a picture that does not itself declare AI.",
            SCORE_C2PA_INGREDIENT_AI,
        ))
    elif c2pa.get("generator"):
        out.append(Finding(
            "c2pa_generator",
            f"A valid C2PA manifest signed by {signer} names the generator {c2pa['generator']}.",
            SCORE_GENERATOR_SOFTWARE,
            decisive=True,
        ))
    elif other := [
        t for uri in c2pa.get("digital_source_types") or []
        if (t := signatures.source_type(uri)) is not None and not t.capture
    ]:
        for t in other:
            out.append(Finding(
                "c2pa_" + t.code,
                f"A valid C2PA manifest signed by {signer}, {trust}, declares the digital source type "
                f"'{t.term}': {t.meaning}.",
                t.score,
            ))
    elif c2pa.get("capture_declared"):
        trusted = bool(c2pa.get("trusted"))
        out.append(Finding(
            "c2pa_capture",
            f"A valid C2PA manifest signed by {signer}, {trust}, declares a capture of real life "
            "and the file is unchanged since signing.",
            SCORE_C2PA_CAPTURE_TRUSTED if trusted else SCORE_C2PA_CAPTURE,
        ))
    out += _c2pa_chain_findings(c2pa)
    return out


def _ingredient_name(entry: dict[str, Any]) -> str:
    depth = entry.get("depth", 1)
    return f"'{clip(str(entry.get('title')), 60)}'" + (f" ({depth} levels down)" if depth > 1 else "")


def _c2pa_chain_findings(c2pa: dict[str, Any]) -> list[Finding]:
    """Consistency findings from the ingredient/action chain of a valid manifest."""
    out = []
    invalid = c2pa.get("invalid_ingredients") or []
    if invalid:
        out.append(Finding(
            "c2pa_ingredient_invalid",
            "Ingredients of this file had broken provenance when they were used: "
            + "; ".join(f"{_ingredient_name(i)}: {', '.join(i['codes'][:3])}" for i in invalid[:3])
            + ". Content whose own credentials failed validation went into the picture.",
            scores.SCORE_C2PA_INGREDIENT_INVALID,
        ))
    ai_titles = {(i.get("title"), i.get("depth")) for i in c2pa.get("ai_ingredients") or []}
    placed = [i for i in c2pa.get("placed_components") or [] if (i.get("title"), i.get("depth")) not in ai_titles]
    if placed:
        out.append(Finding(
            "c2pa_composite",
            "The C2PA provenance records content from other files placed into the picture ("
            + ", ".join(_ingredient_name(i) for i in placed[:3]) + "): it is a composite.",
            scores.SCORE_C2PA_COMPOSITE,
        ))
    edits = c2pa.get("edits_after_capture") or []
    if edits:
        actions = sorted({a for e in edits for a in e.get("actions", [])})
        out.append(Finding(
            "c2pa_edited_after_capture",
            "The C2PA provenance declares a camera capture that was then edited ("
            + ", ".join(a.removeprefix("c2pa.") for a in actions) + ").",
            scores.SCORE_C2PA_EDITED_AFTER_CAPTURE,
        ))
    return out


def _thumbnail_evidence(check: thumbnail.ThumbnailCheck, shape: tuple[int, int]) -> Evidence:
    """The per-cell difference between picture and EXIF thumbnail as a full-size heatmap:
    0.5 at the detection threshold, 1.0 at twice it; the frame left out of the comparison is 0."""
    import cv2

    h, w = shape
    heat = np.zeros((h, w), np.float32)
    y0, y1, x0, x1 = check.box or (0, h, 0, w)
    cells = np.clip(check.residual_map / 2.0, 0.0, 1.0).astype(np.float32)
    # Nearest-neighbour, so each cell stays a block; OpenCV fills 12 MP in a few ms.
    heat[y0:y1, x0:x1] = cv2.resize(cells, (x1 - x0, y1 - y0), interpolation=cv2.INTER_NEAREST)
    return Evidence(
        "exif_thumbnail_difference", "heatmap", heat,
        "Where the picture differs from the thumbnail the camera embedded in the EXIF",
    )


def _xmp_findings(xmp: dict[str, Any], generators: list[str]) -> list[Finding]:
    props = xmp.get("props") or {}
    out: list[Finding] = []
    seen: set[str] = set()
    for value in xmp_reader.as_strings(props.get("Iptc4xmpExt:DigitalSourceType")):
        st = signatures.source_type(value)
        if st is None or st.term in seen:
            continue
        seen.add(st.term)
        out.append(Finding(
            st.code,
            f"The XMP metadata declares the digital source type '{st.term}': {st.meaning}.",
            st.score,
            decisive=st.decisive,
        ))
    for key in ("Iptc4xmpExt:AISystemUsed", "Iptc4xmpExt:AIPromptInformation"):
        values = xmp_reader.as_strings(props.get(key))
        if values:
            gen = signatures.find_generator(values[0]) or clip(values[0], 60)
            generators.append(gen)
            out.append(Finding(
                "xmp_ai_system",
                f"The XMP metadata records an AI system or prompt ({key.split(':')[1]}: {clip(values[0], 80)}).",
                SCORE_GENERATOR_SOFTWARE,
                decisive=True,
            ))
            break
    for key in ("exif:UserComment", "dc:description"):
        for value in xmp_reader.as_strings(props.get(key))[:3]:
            hit = signatures.match_generation_parameters(value)
            if hit:
                generators.append(hit.generator)
                out.append(Finding(
                    "xmp_generation_parameters",
                    f"The XMP {key} holds {hit.reason} ({hit.generator}).",
                    SCORE_GENERATION_PARAMS,
                    decisive=True,
                ))
                break
    return out


def _text_findings(
    text: dict[str, str], exif: dict[str, str], comment: str | None, generators: list[str]
) -> list[Finding]:
    out: list[Finding] = []
    for key, value in text.items():
        hit = signatures.match_text_chunk(key, value)
        if hit:
            generators.append(hit.generator)
            out.append(Finding(
                "png_text_generator",
                f"The PNG text metadata was written by an image generator ({hit.generator}): {hit.reason}.",
                SCORE_GENERATION_PARAMS,
                decisive=True,
            ))
    for where, value in (("EXIF UserComment", exif.get("UserComment")),
                         ("EXIF ImageDescription", exif.get("ImageDescription")),
                         ("the file comment", comment)):
        hit = signatures.match_generation_parameters(value)
        if hit:
            generators.append(hit.generator)
            out.append(Finding(
                "embedded_generation_parameters",
                f"{where[0].upper() + where[1:]} holds {hit.reason} ({hit.generator}).",
                SCORE_GENERATION_PARAMS,
                decisive=True,
            ))
    return out


def _software_fields(
    exif: dict[str, str], iptc: dict[str, str], xmp: dict[str, Any], *, with_history: bool = True
) -> list[tuple[str, str]]:
    """(where, value) for every field that names the software that made or edited the file.
    ``with_history=False`` leaves out the XMP history, which ``history.py`` reads itself."""
    props = xmp.get("props") or {}
    fields = [("EXIF Software", exif.get("Software")), ("EXIF HostComputer", exif.get("HostComputer")),
              ("IPTC OriginatingProgram", iptc.get("OriginatingProgram"))]
    fields += [("XMP CreatorTool", v) for v in xmp_reader.as_strings(props.get("xmp:CreatorTool"))[:3]]
    if with_history:
        fields += [("XMP history", e.get("softwareAgent")) for e in xmp_reader.history_events(props)]
    return [(where, value) for where, value in fields if isinstance(value, str) and value]


def _software_findings(
    exif: dict[str, str], iptc: dict[str, str], xmp: dict[str, Any], generators: list[str]
) -> list[Finding]:
    out: list[Finding] = []
    for where, value in _software_fields(exif, iptc, xmp):
        gen = signatures.find_generator(value)
        if gen:
            generators.append(gen)
            out.append(Finding(
                "generator_software",
                f"{where} names the image generator {gen} ('{clip(value, 80)}').",
                SCORE_GENERATOR_SOFTWARE,
                decisive=True,
            ))
    return out


def _xmp_details(xmp: dict[str, Any]) -> dict[str, Any]:
    props = xmp.get("props") or {}
    out: dict[str, Any] = {"bytes": xmp.get("bytes")}
    if xmp.get("error"):
        out["error"] = xmp["error"]
    wanted = {
        "creator_tool": "xmp:CreatorTool",
        "digital_source_type": "Iptc4xmpExt:DigitalSourceType",
        "ai_system_used": "Iptc4xmpExt:AISystemUsed",
        "ai_prompt": "Iptc4xmpExt:AIPromptInformation",
        "provenance": "dcterms:provenance",
        "make": "tiff:Make",
        "model": "tiff:Model",
        "create_date": "xmp:CreateDate",
        "credit": "photoshop:Credit",
        "document_id": "xmpMM:DocumentID",
        "original_document_id": "xmpMM:OriginalDocumentID",
    }
    for name, key in wanted.items():
        values = xmp_reader.as_strings(props.get(key))
        if values:
            out[name] = clip(values[0]) if len(values) == 1 else [clip(v) for v in values[:10]]
    history = xmp_reader.history_events(props)
    if history:
        out["history"] = [{k: clip(v, 120) for k, v in e.items()} for e in history[:20]]
    out["properties"] = sorted(props)[:60]
    return out


def _dedupe(findings: list[Finding]) -> list[Finding]:
    """Drop repeated (code, message) pairs; order strongest first for readers."""
    seen: set[tuple[str, str]] = set()
    unique = []
    for f in findings:
        if (f.code, f.message) not in seen:
            seen.add((f.code, f.message))
            unique.append(f)
    return sorted(unique, key=lambda f: -f.score)
