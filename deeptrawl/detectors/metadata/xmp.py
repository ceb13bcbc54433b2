"""Find and parse the XMP packet (Adobe's RDF/XML metadata) without trusting it.

XMP is attacker-controlled XML. ``defusedxml`` is not available, so this module refuses
any packet with a DOCTYPE or ENTITY declaration (the only way to get entity expansion
or external fetches out of expat), caps the packet size and the nesting depth it walks,
and turns every parse failure into ``XmpError``.

Where the packet lives: JPEG APP1 ``http://ns.adobe.com/xap/1.0/``, PNG iTXt
``XML:com.adobe.xmp``, WebP ``XMP `` chunk, TIFF tag 700. Pillow (>= 11) exposes all of
them as ``image.info["xmp"]``; a raw scan for ``<x:xmpmeta`` is the fallback for
containers Pillow does not map (GIF application extensions, older Pillow).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

from PIL import Image

RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
_RDF_DESCRIPTION = f"{{{RDF}}}Description"
_RDF_LI = f"{{{RDF}}}li"
_RDF_CONTAINERS = {f"{{{RDF}}}Seq", f"{{{RDF}}}Bag", f"{{{RDF}}}Alt"}
_RDF_RESOURCE = f"{{{RDF}}}resource"

#: Namespace URI -> the prefix this module reports properties under.
PREFIXES = {
    "http://ns.adobe.com/xap/1.0/": "xmp",
    "http://ns.adobe.com/xap/1.0/mm/": "xmpMM",
    "http://ns.adobe.com/xap/1.0/sType/ResourceEvent#": "stEvt",
    "http://ns.adobe.com/xap/1.0/sType/ResourceRef#": "stRef",
    "http://iptc.org/std/Iptc4xmpExt/2008-02-29/": "Iptc4xmpExt",
    "http://iptc.org/std/Iptc4xmpCore/1.0/xmlns/": "Iptc4xmpCore",
    "http://ns.adobe.com/photoshop/1.0/": "photoshop",
    "http://purl.org/dc/elements/1.1/": "dc",
    "http://purl.org/dc/terms/": "dcterms",
    "http://ns.adobe.com/tiff/1.0/": "tiff",
    "http://ns.adobe.com/exif/1.0/": "exif",
    "http://cipa.jp/exif/1.0/": "exifEX",
    "http://ns.useplus.org/ldf/xmp/1.0/": "plus",
    "http://www.w3.org/XML/1998/namespace": "xml",
    RDF: "rdf",
}

MAX_XMP_BYTES = 4 * 1024 * 1024
_MAX_DEPTH = 12
_MAX_ITEMS = 50
_FORBIDDEN = re.compile(rb"<!\s*(?:DOCTYPE|ENTITY)", re.I)
_PACKET = re.compile(rb"<x:xmpmeta\b.*?</x:xmpmeta\s*>", re.S)


class XmpError(ValueError):
    """The XMP packet is present but unusable (malformed, unsafe or too large)."""


def find_packet(image: Image.Image | None, data: bytes) -> bytes | None:
    """The raw XMP packet of an image, or None."""
    if image is not None:
        for key in ("xmp", "XML:com.adobe.xmp"):
            value = image.info.get(key)
            if isinstance(value, str):
                value = value.encode("utf-8")
            if isinstance(value, bytes) and value.strip(b"\x00 \r\n\t"):
                return value
    if b"<x:xmpmeta" in data:
        match = _PACKET.search(data)
        if match:
            return match.group(0)
        return data[data.index(b"<x:xmpmeta"):][:MAX_XMP_BYTES]  # unterminated: parse fails, reported
    return None


def parse_packet(packet: bytes) -> dict[str, Any]:
    """Every property of every ``rdf:Description`` as ``{"prefix:Name": value}``.

    Values are strings, lists (rdf:Seq/Bag/Alt) or dicts (structures such as
    ``xmpMM:History`` events). Raises ``XmpError`` for anything unusable.
    """
    if len(packet) > MAX_XMP_BYTES:
        raise XmpError(f"XMP packet is {len(packet):,} bytes, over the {MAX_XMP_BYTES:,}-byte limit")
    if _FORBIDDEN.search(packet):
        raise XmpError("XMP packet declares a DOCTYPE or ENTITY (refused: entity expansion risk)")
    packet = packet.strip(b"\x00 \r\n\t")
    try:
        root = ET.fromstring(packet)
    except ET.ParseError as exc:
        raise XmpError(f"XMP packet is not well-formed XML: {exc}") from None
    except (ValueError, RecursionError) as exc:  # bad encoding declarations, absurd nesting
        raise XmpError(f"XMP packet cannot be parsed: {type(exc).__name__}") from None
    props: dict[str, Any] = {}
    for desc in root.iter(_RDF_DESCRIPTION):
        for name, value in _description(desc, 0).items():
            props.setdefault(name, value)
    return props


def _qname(tag: str) -> str:
    if tag.startswith("{"):
        uri, _, local = tag[1:].partition("}")
        prefix = PREFIXES.get(uri)
        return f"{prefix}:{local}" if prefix else f"{{{uri}}}{local}"
    return tag


def _description(desc: ET.Element, depth: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in desc.attrib.items():
        if not key.startswith(f"{{{RDF}}}"):
            out[_qname(key)] = value
    for child in desc:
        out.setdefault(_qname(child.tag), _value(child, depth + 1))
    return out


def _value(el: ET.Element, depth: int) -> Any:
    if depth > _MAX_DEPTH:
        return None
    resource = el.get(_RDF_RESOURCE)
    if resource is not None:
        return resource
    children = list(el)
    if len(children) == 1 and children[0].tag in _RDF_CONTAINERS:
        items = [c for c in children[0] if c.tag == _RDF_LI][:_MAX_ITEMS]
        return [_value(li, depth + 1) for li in items]
    attrs = {
        _qname(k): v for k, v in el.attrib.items()
        if not k.startswith(f"{{{RDF}}}") and not k.startswith("{http://www.w3.org/XML/1998/namespace}")
    }
    if children or attrs:
        struct: dict[str, Any] = dict(attrs)
        for child in children[:_MAX_ITEMS]:
            if child.tag == _RDF_DESCRIPTION:
                struct.update(_description(child, depth + 1))
            else:
                struct.setdefault(_qname(child.tag), _value(child, depth + 1))
        return struct
    return (el.text or "").strip()


def as_strings(value: Any) -> list[str]:
    """A property value flattened to its string leaves (for lists/alternatives)."""
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list):
        return [s for v in value for s in as_strings(v)]
    if isinstance(value, dict):
        return [s for v in value.values() for s in as_strings(v)]
    return []


def history_events(props: dict[str, Any]) -> list[dict[str, str]]:
    """``xmpMM:History`` as a list of {action, softwareAgent, when, ...} dicts."""
    events = props.get("xmpMM:History")
    if not isinstance(events, list):
        return []
    out = []
    for event in events:
        if isinstance(event, dict):
            out.append({
                k.split(":", 1)[-1]: v for k, v in event.items() if isinstance(v, str) and k.startswith("stEvt:")
            })
    return out
