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
) -> bytes:
    """JPEG with an EXIF block holding the given IFD0 fields (``datetime`` as
    ``"YYYY:MM:DD HH:MM:SS"``, also written as DateTimeOriginal) and an optional
    UserComment (UNICODE-encoded, as AUTOMATIC1111 writes its parameters)."""
    exif = Image.Exif()
    for tag, value in ((0x0131, software), (0x010F, make), (0x0110, model), (0x0132, datetime)):
        if value is not None:
            exif[tag] = value
    sub = {}
    if datetime is not None:
        sub[0x9003] = datetime
    if user_comment is not None:
        sub[0x9286] = b"UNICODE\x00" + user_comment.encode("utf-16-be")
    if sub:
        exif[0x8769] = sub
    buf = io.BytesIO()
    _image(img).convert("RGB").save(buf, "JPEG", quality=quality, exif=exif.tobytes())
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
) -> str:
    """A complete XMP packet (with xpacket wrapper) holding the given properties."""
    attrs = []
    if creator_tool is not None:
        attrs.append(f"xmp:CreatorTool={quoteattr(creator_tool)}")
    body = []
    if digital_source_type is not None:
        uri = digital_source_type if "://" in digital_source_type else IPTC_DST_PREFIX + digital_source_type
        body.append(f"<Iptc4xmpExt:DigitalSourceType>{escape(uri)}</Iptc4xmpExt:DigitalSourceType>")
    if ai_system_used is not None:
        body.append(f"<Iptc4xmpExt:AISystemUsed>{escape(ai_system_used)}</Iptc4xmpExt:AISystemUsed>")
    if history_agents:
        events = "".join(
            '<rdf:li rdf:parseType="Resource"><stEvt:action>saved</stEvt:action>'
            f"<stEvt:softwareAgent>{escape(agent)}</stEvt:softwareAgent></rdf:li>"
            for agent in history_agents
        )
        body.append(f"<xmpMM:History><rdf:Seq>{events}</rdf:Seq></xmpMM:History>")
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">'
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about=""'
        ' xmlns:xmp="http://ns.adobe.com/xap/1.0/"'
        ' xmlns:xmpMM="http://ns.adobe.com/xap/1.0/mm/"'
        ' xmlns:stEvt="http://ns.adobe.com/xap/1.0/sType/ResourceEvent#"'
        ' xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"'
        + "".join(" " + a for a in attrs)
        + ">"
        + "".join(body)
        + "</rdf:Description></rdf:RDF></x:xmpmeta>\n"
        '<?xpacket end="w"?>'
    )


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
