"""Write generator and provenance metadata onto images, the way real tools do.

Used by the sample-archive builder and the tests to make files whose metadata is known
by construction. Pillow only (no exiftool): PNG text chunks through ``PngInfo``, EXIF
through ``Image.Exif``, and the JPEG XMP segment inserted by hand so the bytes match
what Adobe's XMP toolkit writes (APP1 ``http://ns.adobe.com/xap/1.0/\\0`` + packet).

The generation parameters written here are in the formats the generators use
(AUTOMATIC1111's ``parameters`` text, a ComfyUI API graph), with made-up values.
"""

from __future__ import annotations

import io
import json
import struct
from fractions import Fraction
from typing import Mapping, Sequence
from xml.sax.saxutils import escape, quoteattr

import numpy as np
from PIL import Image, PngImagePlugin

IPTC_DST_PREFIX = "http://cv.iptc.org/newscodes/digitalsourcetype/"
_XMP_APP1_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"
_MAX_SEGMENT = 65533  # APP1 payload limit (16-bit length minus the length field itself)


def _image(img: Image.Image | np.ndarray) -> Image.Image:
    return img if isinstance(img, Image.Image) else Image.fromarray(np.asarray(img))


def png_with_text(img: Image.Image | np.ndarray, text: dict[str, str]) -> bytes:
    """PNG with one text chunk per item (tEXt when Latin-1, iTXt otherwise)."""
    info = PngImagePlugin.PngInfo()
    for key, value in text.items():
        try:
            value.encode("latin-1")
            info.add_text(key, value)
        except UnicodeEncodeError:
            info.add_itxt(key, value)
    buf = io.BytesIO()
    _image(img).save(buf, "PNG", pnginfo=info)
    return buf.getvalue()


def jpeg_with_exif(
    img: Image.Image | np.ndarray,
    *,
    software: str | None = None,
    make: str | None = None,
    model: str | None = None,
    datetime: str | None = None,
    user_comment: str | None = None,
    quality: int = 90,
    exposure: bool | None = None,
) -> bytes:
    """JPEG with an EXIF block holding the given IFD0 fields (``datetime`` as
    ``"YYYY:MM:DD HH:MM:SS"``, also written as DateTimeOriginal and DateTimeDigitized) and
    an optional UserComment (UNICODE-encoded, as AUTOMATIC1111 writes its parameters).

    ``exposure`` (default: whenever a camera ``make`` or ``model`` is given) adds the
    exposure fields every camera writes (ExposureTime, FNumber, ISO, FocalLength), so a
    camera-like file is complete rather than looking like pasted-on metadata."""
    if exposure is None:
        exposure = make is not None or model is not None
    block = exif_block(
        make=make, model=model, software=software, datetime=datetime, datetime_original=datetime,
        datetime_digitized=datetime, user_comment=user_comment, exposure=exposure,
    )
    return _jpeg(img, quality, exif=block)


# --- EXIF writing (TIFF structure by hand: Pillow cannot write IFD1 thumbnails) -----------

_ASCII, _SHORT, _LONG, _RATIONAL, _UNDEFINED = 2, 3, 4, 5, 7
#: EXIF 2.32 tag -> TIFF type, for every tag the writer knows.
_TAG_TYPES = {
    0x0103: _SHORT,  # Compression (IFD1: 6 = JPEG thumbnail)
    0x010E: _ASCII,  # ImageDescription
    0x010F: _ASCII,  # Make
    0x0110: _ASCII,  # Model
    0x0112: _SHORT,  # Orientation
    0x011A: _RATIONAL,  # XResolution
    0x011B: _RATIONAL,  # YResolution
    0x0128: _SHORT,  # ResolutionUnit
    0x0131: _ASCII,  # Software
    0x0132: _ASCII,  # DateTime (ModifyDate)
    0x0201: _LONG,  # JPEGInterchangeFormat (thumbnail offset)
    0x0202: _LONG,  # JPEGInterchangeFormatLength
    0x8769: _LONG,  # Exif sub-IFD pointer
    0x829A: _RATIONAL,  # ExposureTime
    0x829D: _RATIONAL,  # FNumber
    0x8822: _SHORT,  # ExposureProgram
    0x8827: _SHORT,  # PhotographicSensitivity (ISO)
    0x9000: _UNDEFINED,  # ExifVersion
    0x9003: _ASCII,  # DateTimeOriginal
    0x9004: _ASCII,  # DateTimeDigitized
    0x9010: _ASCII,  # OffsetTime
    0x9011: _ASCII,  # OffsetTimeOriginal
    0x9012: _ASCII,  # OffsetTimeDigitized
    0x920A: _RATIONAL,  # FocalLength
    0x9286: _UNDEFINED,  # UserComment
    0xA001: _SHORT,  # ColorSpace
    0xA002: _LONG,  # PixelXDimension
    0xA003: _LONG,  # PixelYDimension
}
_TYPE_SIZE = {_ASCII: 1, _SHORT: 2, _LONG: 4, _RATIONAL: 8, _UNDEFINED: 1}


def _field(tag: int, value: object) -> tuple[int, int, int, bytes]:
    """(tag, type, count, little-endian payload) of one IFD entry."""
    kind = _TAG_TYPES[tag]
    if kind == _ASCII:
        payload = str(value).encode("latin-1", "replace") + b"\x00"
        return tag, kind, len(payload), payload
    if kind == _UNDEFINED:
        payload = bytes(value)  # type: ignore[arg-type]
        return tag, kind, len(payload), payload
    if kind == _RATIONAL:
        frac = Fraction(value).limit_denominator(1_000_000)  # type: ignore[arg-type]
        return tag, kind, 1, struct.pack("<II", frac.numerator, frac.denominator)
    return tag, kind, 1, struct.pack("<H" if kind == _SHORT else "<I", int(value))  # type: ignore[call-overload]


def _ifd_size(fields: list[tuple[int, int, int, bytes]]) -> int:
    out_of_line = sum(len(p) + (len(p) & 1) for *_, p in fields if len(p) > 4)
    return 2 + 12 * len(fields) + 4 + out_of_line


def _ifd(fields: list[tuple[int, int, int, bytes]], start: int, next_ifd: int) -> bytes:
    """One IFD at TIFF offset ``start``; values longer than 4 bytes follow it, word-aligned."""
    fields = sorted(fields)
    data_at = start + 2 + 12 * len(fields) + 4
    entries, data = [], b""
    for tag, kind, count, payload in fields:
        if len(payload) <= 4:
            value = payload.ljust(4, b"\x00")
        else:
            value = struct.pack("<I", data_at + len(data))
            data += payload + b"\x00" * (len(payload) & 1)
        entries.append(struct.pack("<HHI", tag, kind, count) + value)
    return struct.pack("<H", len(fields)) + b"".join(entries) + struct.pack("<I", next_ifd) + data


def exif_block(
    *,
    make: str | None = None,
    model: str | None = None,
    software: str | None = None,
    datetime: str | None = None,
    datetime_original: str | None = None,
    datetime_digitized: str | None = None,
    offset_time: str | None = None,
    exposure: bool = False,
    user_comment: str | None = None,
    orientation: int | None = None,
    pixel_size: tuple[int, int] | None = None,
    thumbnail: bytes | None = None,
) -> bytes:
    """A complete EXIF APP1 payload (``Exif\\0\\0`` + little-endian TIFF) as a camera writes it.

    IFD0 (camera and software), the Exif sub-IFD (dates, exposure, pixel size) and, when
    ``thumbnail`` (JPEG bytes) is given, IFD1 with the thumbnail, which the EXIF standard
    stores as JPEGInterchangeFormat/-Length in the second IFD. Dates are EXIF text
    (``"YYYY:MM:DD HH:MM:SS"``); ``offset_time`` (``"+02:00"``) is written for all three.
    """
    ifd0 = [(tag, v) for tag, v in ((0x010F, make), (0x0110, model), (0x0112, orientation),
                                    (0x0131, software), (0x0132, datetime)) if v is not None]
    ifd0 += [(0x011A, 72), (0x011B, 72), (0x0128, 2)]
    sub: list[tuple[int, object]] = [(0x9000, b"0232"), (0xA001, 1)]
    if exposure:
        sub += [(0x829A, Fraction(1, 250)), (0x829D, Fraction(56, 10)), (0x8822, 2), (0x8827, 200),
                (0x920A, Fraction(50))]
    sub += [(tag, v) for tag, v in ((0x9003, datetime_original), (0x9004, datetime_digitized)) if v is not None]
    if offset_time is not None:
        sub += [(0x9010, offset_time), (0x9011, offset_time), (0x9012, offset_time)]
    if user_comment is not None:
        sub.append((0x9286, b"UNICODE\x00" + user_comment.encode("utf-16-be")))
    if pixel_size is not None:
        sub += [(0xA002, pixel_size[0]), (0xA003, pixel_size[1])]

    f0 = [_field(t, v) for t, v in ifd0] + [_field(0x8769, 0)]
    fsub = [_field(t, v) for t, v in sub]
    f1 = []
    if thumbnail is not None:
        f1 = [_field(t, v) for t, v in ((0x0103, 6), (0x011A, 72), (0x011B, 72), (0x0128, 2),
                                         (0x0201, 0), (0x0202, len(thumbnail)))]
    # Layout: header, IFD0, Exif IFD, IFD1, thumbnail. Pointer fields are inline LONGs, so
    # sizes do not depend on their values: compute offsets first, then fill them in.
    at_sub = 8 + _ifd_size(f0)
    at_ifd1 = at_sub + _ifd_size(fsub)
    at_thumb = at_ifd1 + _ifd_size(f1) if f1 else 0
    f0 = [f if f[0] != 0x8769 else _field(0x8769, at_sub) for f in f0]
    f1 = [f if f[0] != 0x0201 else _field(0x0201, at_thumb) for f in f1]
    tiff = b"II*\x00" + struct.pack("<I", 8)
    tiff += _ifd(f0, 8, at_ifd1 if f1 else 0) + _ifd(fsub, at_sub, 0)
    if f1:
        tiff += _ifd(f1, at_ifd1, 0) + thumbnail  # type: ignore[operator]
    return b"Exif\x00\x00" + tiff


def exif_thumbnail(
    img: Image.Image | np.ndarray, *, box: tuple[int, int] = (160, 120), letterbox: bool = False, quality: int = 85
) -> bytes:
    """The JPEG thumbnail a camera embeds: ``img`` fitted into ``box`` (160x120 is the
    EXIF/DCF size); ``letterbox`` pads it to exactly ``box`` with black bars, as Canon
    bodies do for 3:2 pictures."""
    image = _image(img).convert("RGB")
    w, h = image.size
    scale = min(box[0] / w, box[1] / h)
    small = image.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.BOX)
    if letterbox:
        canvas = Image.new("RGB", box)
        canvas.paste(small, ((box[0] - small.width) // 2, (box[1] - small.height) // 2))
        small = canvas
    buf = io.BytesIO()
    small.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def camera_jpeg(
    img: Image.Image | np.ndarray,
    *,
    make: str = "Canon",
    model: str = "Canon EOS 5D Mark IV",
    when: str = "2019:05:04 10:11:12",
    digitized: str | None = None,
    modified: str | None = None,
    software: str | None = None,
    offset_time: str | None = None,
    exposure: bool = True,
    thumbnail_from: Image.Image | np.ndarray | None = None,
    thumbnail: bool = True,
    letterbox: bool = False,
    quality: int = 92,
) -> bytes:
    """A JPEG as a camera writes it: complete EXIF (make, model, three dates, exposure,
    pixel size) and an IFD1 thumbnail of the picture.

    ``digitized``/``modified`` default to ``when`` (a camera writes one time into all three
    dates). ``thumbnail_from`` makes the thumbnail from another picture: pass the original
    to get a file whose pixels were edited after the camera wrote its metadata.
    """
    image = _image(img).convert("RGB")
    source = image if thumbnail_from is None else thumbnail_from
    thumb = exif_thumbnail(source, letterbox=letterbox) if thumbnail else None
    block = exif_block(
        make=make, model=model, software=software, datetime=modified or when, datetime_original=when,
        datetime_digitized=digitized or when, offset_time=offset_time, exposure=exposure,
        pixel_size=image.size, thumbnail=thumb,
    )
    return _jpeg(image, quality, exif=block)


def exif_of(jpeg: bytes) -> bytes | None:
    """The EXIF APP1 payload of a JPEG (what Pillow exposes as ``info["exif"]``)."""
    return Image.open(io.BytesIO(jpeg)).info.get("exif")


def reencode_keeping_exif(jpeg: bytes, img: Image.Image | np.ndarray, *, quality: int = 90) -> bytes:
    """``img`` saved as JPEG carrying the EXIF block of ``jpeg`` unchanged, thumbnail and
    all: what editors and scripts that copy metadata across do (Pillow's
    ``save(exif=im.info["exif"])``), and what pasting a camera's metadata onto another
    picture looks like."""
    return _jpeg(img, quality, exif=exif_of(jpeg))


def _jpeg(img: Image.Image | np.ndarray, quality: int, *, exif: bytes | None) -> bytes:
    buf = io.BytesIO()
    params = {"exif": exif} if exif else {}
    _image(img).convert("RGB").save(buf, "JPEG", quality=quality, **params)
    return buf.getvalue()


def with_xmp(img: Image.Image | np.ndarray, xmp_xml: str | bytes, fmt: str = "jpeg", *, quality: int = 90) -> bytes:
    """``img`` encoded as ``fmt`` ('jpeg' or 'png') carrying the XMP packet ``xmp_xml``.

    JPEG: an APP1 segment inserted by hand right after SOI and the JFIF APP0 segment.
    PNG: an uncompressed iTXt chunk with the keyword ``XML:com.adobe.xmp``. The packet is
    written as given, so malformed XML can be embedded on purpose.
    """
    packet = xmp_xml.encode("utf-8") if isinstance(xmp_xml, str) else xmp_xml
    fmt = fmt.lower()
    if fmt == "png":
        info = PngImagePlugin.PngInfo()
        info.add_itxt("XML:com.adobe.xmp", packet.decode("utf-8", "replace"), zip=False)
        buf = io.BytesIO()
        _image(img).save(buf, "PNG", pnginfo=info)
        return buf.getvalue()
    if fmt not in ("jpeg", "jpg"):
        raise ValueError(f"with_xmp writes 'jpeg' or 'png', not {fmt!r}")
    buf = io.BytesIO()
    _image(img).convert("RGB").save(buf, "JPEG", quality=quality)
    return insert_jpeg_app1(buf.getvalue(), _XMP_APP1_HEADER + packet)


def insert_jpeg_app1(jpeg: bytes, payload: bytes) -> bytes:
    """Insert an APP1 segment carrying ``payload`` after SOI and any APP0 (JFIF) segment."""
    if not jpeg.startswith(b"\xff\xd8"):
        raise ValueError("not a JPEG (no SOI marker)")
    if len(payload) > _MAX_SEGMENT:
        raise ValueError(f"APP1 payload is {len(payload)} bytes, over the {_MAX_SEGMENT}-byte segment limit")
    pos = 2
    while jpeg[pos:pos + 2] == b"\xff\xe0":  # skip APP0 segments (JFIF, JFXX)
        (length,) = struct.unpack(">H", jpeg[pos + 2:pos + 4])
        pos += 2 + length
    segment = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    return jpeg[:pos] + segment + jpeg[pos:]


def xmp_packet(
    *,
    creator_tool: str | None = None,
    digital_source_type: str | None = None,
    history_agents: tuple[str, ...] = (),
    ai_system_used: str | None = None,
    history: Sequence[Mapping[str, str]] = (),
    derived_from: Mapping[str, str] | None = None,
    ingredients: Sequence[str] = (),
    document_ancestors: Sequence[str] = (),
    create_date: str | None = None,
    modify_date: str | None = None,
    date_created: str | None = None,
) -> str:
    """A complete XMP packet (with xpacket wrapper) holding the given properties.

    ``history_agents``: one ``saved`` event per agent, written as nested elements.
    ``history``: full ``stEvt`` events (keys ``action``, ``softwareAgent``, ``when``,
    ``changed``, ``parameters``, ``instanceID``), written as attributes the way
    Photoshop CC does. ``derived_from``: ``stRef`` fields (``documentID``,
    ``instanceID``, ...). ``ingredients``: file paths of placed files.
    ``document_ancestors``: document IDs. Dates are ISO 8601 strings, written as
    ``xmp:CreateDate``, ``xmp:ModifyDate`` and ``photoshop:DateCreated``.
    """
    attrs = []
    if creator_tool is not None:
        attrs.append(f"xmp:CreatorTool={quoteattr(creator_tool)}")
    for name, value in (("xmp:CreateDate", create_date), ("xmp:ModifyDate", modify_date),
                        ("photoshop:DateCreated", date_created)):
        if value is not None:
            attrs.append(f"{name}={quoteattr(value)}")
    body = []
    if digital_source_type is not None:
        uri = digital_source_type if "://" in digital_source_type else IPTC_DST_PREFIX + digital_source_type
        body.append(f"<Iptc4xmpExt:DigitalSourceType>{escape(uri)}</Iptc4xmpExt:DigitalSourceType>")
    if ai_system_used is not None:
        body.append(f"<Iptc4xmpExt:AISystemUsed>{escape(ai_system_used)}</Iptc4xmpExt:AISystemUsed>")
    events = "".join(
        '<rdf:li rdf:parseType="Resource"><stEvt:action>saved</stEvt:action>'
        f"<stEvt:softwareAgent>{escape(agent)}</stEvt:softwareAgent></rdf:li>"
        for agent in history_agents
    )
    events += "".join(
        "<rdf:li" + "".join(f" stEvt:{key}={quoteattr(value)}" for key, value in event.items()) + "/>"
        for event in history
    )
    if events:
        body.append(f"<xmpMM:History><rdf:Seq>{events}</rdf:Seq></xmpMM:History>")
    if derived_from:
        refs = "".join(f" stRef:{key}={quoteattr(value)}" for key, value in derived_from.items())
        body.append(f"<xmpMM:DerivedFrom{refs}/>")
    if ingredients:
        items = "".join(f'<rdf:li stRef:filePath={quoteattr(path)}/>' for path in ingredients)
        body.append(f"<xmpMM:Ingredients><rdf:Bag>{items}</rdf:Bag></xmpMM:Ingredients>")
    if document_ancestors:
        items = "".join(f"<rdf:li>{escape(doc)}</rdf:li>" for doc in document_ancestors)
        body.append(f"<photoshop:DocumentAncestors><rdf:Bag>{items}</rdf:Bag></photoshop:DocumentAncestors>")
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">'
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about=""'
        ' xmlns:xmp="http://ns.adobe.com/xap/1.0/"'
        ' xmlns:xmpMM="http://ns.adobe.com/xap/1.0/mm/"'
        ' xmlns:stEvt="http://ns.adobe.com/xap/1.0/sType/ResourceEvent#"'
        ' xmlns:stRef="http://ns.adobe.com/xap/1.0/sType/ResourceRef#"'
        ' xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/"'
        ' xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"'
        + "".join(" " + a for a in attrs)
        + ">"
        + "".join(body)
        + "</rdf:Description></rdf:RDF></x:xmpmeta>\n"
        '<?xpacket end="w"?>'
    )


def photoshop_history(
    *, created: str = "2019-05-04T10:11:12+02:00", edited: str = "2024-03-01T09:30:00+01:00",
    agent: str = "Adobe Photoshop 25.0 (Windows)",
) -> list[dict[str, str]]:
    """The ``xmpMM:History`` Photoshop writes when a camera JPEG is opened, saved as PSD,
    retouched and exported back to JPEG."""
    return [
        {"action": "created", "instanceID": "xmp.iid:0001", "when": created, "softwareAgent": agent},
        {"action": "converted", "parameters": "from image/jpeg to application/vnd.adobe.photoshop"},
        {"action": "saved", "instanceID": "xmp.iid:0002", "when": edited, "softwareAgent": agent, "changed": "/"},
        {"action": "converted", "parameters": "from application/vnd.adobe.photoshop to image/jpeg"},
        {"action": "derived", "parameters": "converted from application/vnd.adobe.photoshop to image/jpeg"},
        {"action": "saved", "instanceID": "xmp.iid:0003", "when": edited, "softwareAgent": agent, "changed": "/"},
    ]


def iptc_source_type_xmp(source_type: str) -> str:
    """An XMP packet declaring ``Iptc4xmpExt:DigitalSourceType`` (a term such as
    ``trainedAlgorithmicMedia`` or its full ``http://cv.iptc.org/...`` URI)."""
    return xmp_packet(digital_source_type=source_type)


def a1111_parameters(prompt: str, seed: int, *, steps: int = 20, width: int = 512, height: int = 512) -> str:
    """Generation parameters in AUTOMATIC1111's ``parameters`` text format."""
    return (
        f"{prompt}\n"
        "Negative prompt: blurry, lowres, watermark\n"
        f"Steps: {steps}, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: {seed}, "
        f"Size: {width}x{height}, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Version: v1.9.4"
    )


def comfyui_prompt(prompt: str = "a photo of a lighthouse at dusk", seed: int = 42) -> str:
    """A minimal ComfyUI API graph (what ComfyUI stores in the PNG ``prompt`` chunk)."""
    graph = {
        "3": {"class_type": "KSampler", "inputs": {
            "seed": seed, "steps": 20, "cfg": 7.0, "sampler_name": "euler", "scheduler": "normal",
            "denoise": 1.0, "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0],
            "latent_image": ["5", 0]}},
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "v1-5-pruned-emaonly.safetensors"}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 512, "batch_size": 1}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": prompt, "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry, watermark", "clip": ["4", 1]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]}},
    }
    return json.dumps(graph)


def comfyui_workflow() -> str:
    """A minimal ComfyUI editor workflow (the PNG ``workflow`` chunk)."""
    nodes = [
        {"id": 3, "type": "KSampler", "pos": [863, 186], "size": [315, 262], "widgets_values": [42, "fixed", 20]},
        {"id": 4, "type": "CheckpointLoaderSimple", "pos": [26, 474], "size": [315, 98]},
        {"id": 9, "type": "SaveImage", "pos": [1451, 189], "size": [210, 270]},
    ]
    return json.dumps({"last_node_id": 9, "last_link_id": 9, "nodes": nodes,
                       "links": [[1, 4, 0, 3, 0, "MODEL"]], "groups": [], "version": 0.4})
