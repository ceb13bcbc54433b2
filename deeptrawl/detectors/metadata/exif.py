"""Read the classic metadata blocks: EXIF, IPTC IIM, text chunks and comments.

Everything comes back as short plain strings so results stay JSON-serialisable and
small. Each reader takes the Pillow image as ``load_item`` opened it and never raises
for bad metadata: a broken block is reported as a problem string and skipped, because
a camera's malformed maker note must not cost the object its other evidence.
"""

from __future__ import annotations

import warnings
from typing import Any

from PIL import ExifTags, Image, IptcImagePlugin

#: Longest string kept from any metadata field (details stay small; matching uses the full text).
MAX_VALUE_CHARS = 300
#: Most text chunks/fields listed from one image.
MAX_FIELDS = 32

# Tags of IFD0 and the Exif sub-IFD worth reporting. Numbers from the EXIF 2.32 spec.
_IFD0_TAGS = {
    0x010E: "ImageDescription",
    0x010F: "Make",
    0x0110: "Model",
    0x0112: "Orientation",
    0x0131: "Software",
    0x0132: "DateTime",
    0x013B: "Artist",
    0x013C: "HostComputer",
    0x8298: "Copyright",
}
_EXIF_IFD = 0x8769
_EXIF_TAGS = {
    0x829A: "ExposureTime",
    0x829D: "FNumber",
    0x8827: "ISO",  # PhotographicSensitivity (ISOSpeedRatings before EXIF 2.3)
    0x9003: "DateTimeOriginal",
    0x9004: "DateTimeDigitized",
    0x9010: "OffsetTime",
    0x9011: "OffsetTimeOriginal",
    0x9012: "OffsetTimeDigitized",
    0x9201: "ShutterSpeedValue",
    0x9202: "ApertureValue",
    0x920A: "FocalLength",
    0x9286: "UserComment",
    0xA002: "PixelXDimension",
    0xA003: "PixelYDimension",
    0xA431: "BodySerialNumber",
    0xA433: "LensMake",
    0xA434: "LensModel",
}
_JPEG_IF_OFFSET, _JPEG_IF_LENGTH = 0x0201, 0x0202  # IFD1: the thumbnail's place in the TIFF
#: Largest thumbnail read (an APP1 segment holds at most 64 KiB anyway).
MAX_THUMBNAIL_BYTES = 1 << 20
# IPTC IIM record 2 datasets (IPTC IIM 4.2).
_IIM_TAGS = {
    (2, 65): "OriginatingProgram",
    (2, 70): "ProgramVersion",
    (2, 80): "Byline",
    (2, 110): "Credit",
    (2, 115): "Source",
    (2, 120): "Caption",
}


def clip(text: str, limit: int = MAX_VALUE_CHARS) -> str:
    """``text`` cut to ``limit`` characters (with an ellipsis), control characters removed."""
    text = "".join(ch if ch.isprintable() or ch in "\n\t" else " " for ch in text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def to_text(value: Any) -> str | None:
    """A metadata value as a str (bytes decoded leniently, NULs stripped), or None."""
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.rstrip(b"\x00")
        try:
            text = value.decode("utf-8")
        except UnicodeDecodeError:
            text = value.decode("latin-1")
    elif isinstance(value, (list, tuple)):
        parts = [to_text(v) for v in value]
        text = ", ".join(p for p in parts if p)
    else:
        text = str(value)
    text = text.replace("\x00", "").strip()
    return text or None


def decode_user_comment(raw: Any) -> str | None:
    """Decode EXIF UserComment: an 8-byte character-code prefix then the text.

    AUTOMATIC1111 writes its generation parameters here in JPEG/WebP as ``UNICODE``
    (UTF-16, big-endian from piexif); some writers use little-endian, so both are tried
    and the one that reads as more plain text wins.
    """
    if not isinstance(raw, bytes):
        return to_text(raw)
    prefix, body = raw[:8], raw[8:]
    if prefix == b"UNICODE\x00":
        candidates = []
        for enc in ("utf-16-be", "utf-16-le"):
            try:
                candidates.append(body.decode(enc))
            except UnicodeDecodeError:
                continue
        if not candidates:
            return None
        best = max(candidates, key=lambda s: sum(ch.isascii() and ch.isprintable() for ch in s))
        return to_text(best)
    if prefix in (b"ASCII\x00\x00\x00", b"\x00" * 8, b"JIS\x00\x00\x00\x00\x00"):
        return to_text(body)
    return to_text(raw)


def read_exif(image: Image.Image, problems: list[str]) -> dict[str, str]:
    """Full-length EXIF text fields by name (empty when the image has none)."""
    try:
        exif = image.getexif()
    except Exception as exc:  # Pillow raises many types on broken TIFF structures
        problems.append(f"EXIF could not be read: {type(exc).__name__}: {clip(str(exc), 120)}")
        return {}
    fields: dict[str, str] = {}
    for tag, name in _IFD0_TAGS.items():
        text = to_text(exif.get(tag))
        if text:
            fields[name] = text
    try:
        sub = exif.get_ifd(_EXIF_IFD)
    except Exception as exc:
        problems.append(f"EXIF sub-IFD could not be read: {type(exc).__name__}")
        sub = {}
    for tag, name in _EXIF_TAGS.items():
        raw = sub.get(tag)
        text = decode_user_comment(raw) if name == "UserComment" else to_text(raw)
        if text:
            fields[name] = text
    return fields


def read_thumbnail(image: Image.Image, problems: list[str]) -> bytes | None:
    """The JPEG thumbnail in EXIF IFD1 (JPEGInterchangeFormat/-Length), or None.

    Only for containers whose EXIF is a separate TIFF block (JPEG APP1, PNG eXIf, WebP
    EXIF): in a TIFF file the second IFD is the next page, not a thumbnail. Offsets are
    relative to the TIFF header, i.e. after the ``Exif\\0\\0`` prefix.
    """
    raw = image.info.get("exif")
    if not isinstance(raw, bytes) or image.format == "TIFF":
        return None
    tiff = raw[6:] if raw.startswith(b"Exif\x00\x00") else raw
    try:
        with warnings.catch_warnings(record=True) as caught:  # Pillow warns on truncated IFDs
            warnings.simplefilter("always")
            ifd1 = image.getexif().get_ifd(ExifTags.IFD.IFD1)
    except Exception as exc:  # a broken next-IFD pointer raises from deep in TiffImagePlugin
        problems.append(f"EXIF IFD1 could not be read: {type(exc).__name__}")
        return None
    if caught:
        problems.append(f"EXIF IFD1 is damaged: {clip(str(caught[0].message), 120)}")
    offset, length = ifd1.get(_JPEG_IF_OFFSET), ifd1.get(_JPEG_IF_LENGTH)
    if not isinstance(offset, int) or not isinstance(length, int):
        return None
    if offset <= 0 or length <= 0 or length > MAX_THUMBNAIL_BYTES or offset + length > len(tiff):
        problems.append(f"EXIF thumbnail pointer is out of range (offset {offset}, length {length})")
        return None
    data = tiff[offset:offset + length]
    if not data.startswith(b"\xff\xd8"):
        problems.append("EXIF thumbnail is not a JPEG")
        return None
    return data


def read_iptc(image: Image.Image, problems: list[str]) -> dict[str, str]:
    """IPTC IIM record-2 fields (JPEG APP13 / TIFF), when present. Cheap: Pillow parses it."""
    if image.format not in ("JPEG", "TIFF", "MPO"):
        return {}
    try:
        info = IptcImagePlugin.getiptcinfo(image) or {}
    except Exception as exc:
        problems.append(f"IPTC IIM could not be read: {type(exc).__name__}")
        return {}
    fields = {}
    for key, name in _IIM_TAGS.items():
        text = to_text(info.get(key))
        if text:
            fields[name] = text
    return fields


def read_text_chunks(image: Image.Image, problems: list[str]) -> dict[str, str]:
    """PNG tEXt/zTXt/iTXt chunks (full length), except the XMP packet, read separately."""
    if image.format != "PNG":
        return {}
    try:
        text = dict(getattr(image, "text", None) or {})
    except Exception as exc:  # a bad zTXt/iTXt chunk raises while Pillow reads them
        problems.append(f"PNG text chunks could not be read: {type(exc).__name__}")
        text = {k: v for k, v in image.info.items() if isinstance(v, str)}
    chunks: dict[str, str] = {}
    for key, value in text.items():
        if not isinstance(key, str) or key == "XML:com.adobe.xmp":
            continue
        value = to_text(value)
        if value:
            chunks[key] = value
        if len(chunks) >= MAX_FIELDS:
            problems.append(f"more than {MAX_FIELDS} PNG text chunks; the rest were skipped")
            break
    return chunks


def read_comment(image: Image.Image) -> str | None:
    """The JPEG COM segment / GIF / WebP comment, if any."""
    return to_text(image.info.get("comment"))
