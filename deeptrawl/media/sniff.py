"""Identify a file's type from its first bytes.

Extensions lie (an HTML error page saved as ``.jpg``, a JPEG uploaded as ``.txt``), so
the name is never consulted. Only the signatures below are trusted; anything else is
``UnsupportedMedia`` with a description of what it looks like, so the error row says
*why* (``looks like HTML``) rather than just ``unknown``.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from deeptrawl.errors import EmptyMedia, UnsupportedMedia

#: How many leading bytes ``sniff`` needs.
SNIFF_BYTES = 64


class MediaKind(str, enum.Enum):
    IMAGE = "image"
    VIDEO = "video"
    AUDIO = "audio"


@dataclass(frozen=True)
class MediaType:
    kind: MediaKind
    mime: str
    #: Short container/format name (``jpeg``, ``png``, ``mp4``...).
    format: str


def _t(kind: MediaKind, mime: str, fmt: str) -> MediaType:
    return MediaType(kind, mime, fmt)


IMAGE, VIDEO, AUDIO = MediaKind.IMAGE, MediaKind.VIDEO, MediaKind.AUDIO

JPEG = _t(IMAGE, "image/jpeg", "jpeg")
PNG = _t(IMAGE, "image/png", "png")
GIF = _t(IMAGE, "image/gif", "gif")
WEBP = _t(IMAGE, "image/webp", "webp")
TIFF = _t(IMAGE, "image/tiff", "tiff")
BMP = _t(IMAGE, "image/bmp", "bmp")
MP4 = _t(VIDEO, "video/mp4", "mp4")
QUICKTIME = _t(VIDEO, "video/quicktime", "mov")
MATROSKA = _t(VIDEO, "video/x-matroska", "matroska")
AVI = _t(VIDEO, "video/x-msvideo", "avi")
WAV = _t(AUDIO, "audio/wav", "wav")
MP3 = _t(AUDIO, "audio/mpeg", "mp3")
FLAC = _t(AUDIO, "audio/flac", "flac")
OGG = _t(AUDIO, "audio/ogg", "ogg")
M4A = _t(AUDIO, "audio/mp4", "m4a")

_AUDIO_BRANDS = {b"M4A ", b"M4B ", b"M4P "}

_NOT_MEDIA = [
    (re.compile(rb"^\s*(<!doctype\s+html|<html|<head|<body)", re.I), "HTML"),
    (re.compile(rb"^\s*<\?xml"), "XML"),
    (re.compile(rb"^\s*[{\[]"), "JSON or text"),
    (re.compile(rb"^%PDF-"), "PDF"),
    (re.compile(rb"^PK\x03\x04"), "a ZIP archive"),
]


def sniff(head: bytes) -> MediaType:
    """Return the media type of content starting with ``head`` (at least ``SNIFF_BYTES``).

    Raises ``EmptyMedia`` for no bytes and ``UnsupportedMedia`` for anything else unknown.
    """
    if not head:
        raise EmptyMedia("the object is empty (0 bytes)")
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return GIF
    if head[:4] == b"RIFF" and len(head) >= 12:
        return {b"WEBP": WEBP, b"AVI ": AVI, b"WAVE": WAV}.get(head[8:12]) or _unsupported(head)
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return TIFF
    if head[:2] == b"BM" and len(head) >= 14:
        return BMP
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _AUDIO_BRANDS:
            return M4A
        if brand == b"qt  ":
            return QUICKTIME
        if brand[:3] in (b"hei", b"hev", b"mif", b"avi"):  # HEIF/AVIF stills: not decoded yet
            raise UnsupportedMedia(f"HEIF/AVIF images ({brand.decode('latin-1').strip()}) are not supported yet")
        return MP4
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return MATROSKA
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return MP3
    if head.startswith(b"fLaC"):
        return FLAC
    if head.startswith(b"OggS"):
        return OGG
    return _unsupported(head)


def _unsupported(head: bytes) -> MediaType:
    for pattern, what in _NOT_MEDIA:
        if pattern.match(head):
            raise UnsupportedMedia(f"content is {what}, not an image, video or audio file")
    raise UnsupportedMedia(f"unrecognised content (first bytes {head[:8].hex(' ')})")
