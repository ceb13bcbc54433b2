"""Media identification, limits and decoding: every input is a typed result or a typed error.

Test files are made here from real photos (``deeptrawl.samples.media``) with Pillow, PyAV
and ``wave``; nothing is read from disk or the network.
"""

from __future__ import annotations

import io
import time
import tracemalloc
from fractions import Fraction

import numpy as np
import pytest
from PIL import Image

from deeptrawl.config import Limits
from deeptrawl.errors import CorruptMedia, EmptyMedia, LimitExceeded, MediaError, TruncatedMedia, UnsupportedMedia
from deeptrawl.media import MediaKind, load_item, probe, sniff
from deeptrawl.media.item import to_rgb
from deeptrawl.media.sniff import SNIFF_BYTES
from deeptrawl.samples import media

LIMITS = Limits()


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """A small real RGB photo (96x128)."""
    return np.ascontiguousarray(media.photo("astronaut")[100:196, 180:308])


@pytest.fixture(scope="module")
def jpeg(photo) -> bytes:
    return media.encode(photo, "JPEG", quality=90)


@pytest.fixture(scope="module")
def mp4() -> bytes:
    return media.mp4_clip()  # 24 frames, 160x120, 12 fps


def _av_bytes(container: str, codec: str, *, video: bool) -> bytes:
    """A short clip or tone written by PyAV into ``container`` with ``codec``."""
    import av

    if codec not in av.codecs_available:
        pytest.skip(f"this FFmpeg build has no {codec} encoder")
    buf = io.BytesIO()
    with av.open(buf, mode="w", format=container) as out:
        if video:
            stream = out.add_stream(codec, rate=12)
            stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
            frames = [av.VideoFrame.from_ndarray(np.full((48, 64, 3), 16 * i, np.uint8), format="rgb24") for i in range(6)]
        else:
            stream = out.add_stream(codec, rate=16000, layout="mono")
            tone = (np.sin(np.arange(1024) / 8.0) * 8000).astype(np.int16)[None]
            frames = []
            for i in range(10):
                frame = av.AudioFrame.from_ndarray(tone, format="s16", layout="mono")
                frame.sample_rate, frame.pts, frame.time_base = 16000, i * 1024, Fraction(1, 16000)
                frames.append(frame)
        for frame in frames:
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buf.getvalue()


# --- identification by content ----------------------------------------------------------

IMAGE_FORMATS = [
    ("JPEG", "image/jpeg", "jpeg"),
    ("PNG", "image/png", "png"),
    ("GIF", "image/gif", "gif"),
    ("WEBP", "image/webp", "webp"),
    ("TIFF", "image/tiff", "tiff"),
    ("BMP", "image/bmp", "bmp"),
]


@pytest.mark.parametrize(("pil_format", "mime", "fmt"), IMAGE_FORMATS, ids=[f[2] for f in IMAGE_FORMATS])
def test_image_signatures(photo, pil_format, mime, fmt):
    data = media.encode(photo, pil_format)
    media_type = sniff(data[:SNIFF_BYTES])
    assert (media_type.kind, media_type.mime, media_type.format) == (MediaKind.IMAGE, mime, fmt)

    item = load_item(f"obj.{fmt}", data, LIMITS)
    assert item.media_type == media_type
    assert (item.info.width, item.info.height) == (128, 96)
    assert item.rgb.shape == (96, 128, 3)


AV_FORMATS = [
    # (id, container, codec, is_video, kind, mime, format)
    ("mkv", "matroska", "mpeg4", True, MediaKind.VIDEO, "video/x-matroska", "matroska"),
    ("avi", "avi", "mpeg4", True, MediaKind.VIDEO, "video/x-msvideo", "avi"),
    ("mov", "mov", "mpeg4", True, MediaKind.VIDEO, "video/quicktime", "mov"),
    ("flac", "flac", "flac", False, MediaKind.AUDIO, "audio/flac", "flac"),
    ("mp3", "mp3", "libmp3lame", False, MediaKind.AUDIO, "audio/mpeg", "mp3"),
    ("ogg", "ogg", "libopus", False, MediaKind.AUDIO, "audio/ogg", "ogg"),
    ("m4a", "ipod", "aac", False, MediaKind.AUDIO, "audio/mp4", "m4a"),
]


@pytest.mark.parametrize(("container", "codec", "is_video", "kind", "mime", "fmt"), [f[1:] for f in AV_FORMATS],
                         ids=[f[0] for f in AV_FORMATS])
def test_audio_video_signatures(container, codec, is_video, kind, mime, fmt):
    data = _av_bytes(container, codec, video=is_video)
    media_type = sniff(data[:SNIFF_BYTES])
    assert (media_type.kind, media_type.mime, media_type.format) == (kind, mime, fmt)

    item = load_item("obj", data, LIMITS)
    assert item.media_type == media_type
    assert item.image is None
    assert item.info.duration_s and item.info.duration_s > 0
    if is_video:
        assert (item.info.width, item.info.height) == (64, 48)
    else:
        assert item.info.sample_rate and item.info.channels == 1


def test_mp4_info(mp4):
    item = load_item("clip.mp4", mp4, LIMITS)
    assert (item.media_type.kind, item.media_type.mime, item.media_type.format) == (MediaKind.VIDEO, "video/mp4", "mp4")
    assert (item.info.width, item.info.height) == (160, 120)
    assert item.info.duration_s == pytest.approx(2.0, abs=0.1)  # 24 frames at 12 fps
    assert item.info.codec in ("h264", "mpeg4")
    assert item.image is None
    with pytest.raises(TypeError):
        item.rgb  # noqa: B018 - a video has no single picture


def test_wav_info():
    item = load_item("tone.wav", media.wav_tone(seconds=0.5, rate=16000), LIMITS)
    assert (item.media_type.kind, item.media_type.mime, item.media_type.format) == (MediaKind.AUDIO, "audio/wav", "wav")
    assert item.info.sample_rate == 16000
    assert item.info.channels == 1
    assert item.info.duration_s == pytest.approx(0.5, abs=0.01)
    assert item.info.width is None and item.image is None


def test_name_is_never_consulted(jpeg):
    # A JPEG uploaded as .txt is a JPEG; an HTML error page saved as .jpg is HTML.
    assert load_item("notes.txt", jpeg, LIMITS).media_type.format == "jpeg"
    with pytest.raises(UnsupportedMedia, match="HTML"):
        load_item("photo.jpg", media.html_page(), LIMITS)


def test_html_is_unsupported_and_says_html():
    with pytest.raises(UnsupportedMedia) as info:
        load_item("page", media.html_page(), LIMITS)
    assert "HTML" in info.value.message
    assert info.value.code == "unsupported"


@pytest.mark.parametrize(("head", "what"), [
    (b"%PDF-1.7\n", "PDF"),
    (b"PK\x03\x04\x14\x00", "ZIP"),
    (b'{"error": "not found"}', "JSON"),
    (b"<?xml version='1.0'?><a/>", "XML"),
    (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00", "HEIF"),
])
def test_other_content_is_unsupported_with_a_reason(head, what):
    with pytest.raises(UnsupportedMedia, match=what):
        sniff(head)


def test_random_bytes_are_unsupported():
    # Random bytes match no signature: UnsupportedMedia, quoting the first bytes.
    with pytest.raises(UnsupportedMedia, match="unrecognised content"):
        load_item("blob", media.random_bytes(seed=0), LIMITS)


def test_random_bytes_that_look_like_mp3_sync_are_corrupt():
    # MP3 has no magic number, only an 11-bit frame sync (FF Ex), so about 1 random blob in
    # 2,000 sniffs as MP3; the demuxer then rejects it: CorruptMedia, not a crash.
    with pytest.raises(CorruptMedia, match="MP3"):
        load_item("blob", b"\xff\xfb" + media.random_bytes(4094, seed=0), LIMITS)


def test_random_bytes_always_give_a_typed_error():
    for seed in range(300):
        with pytest.raises((UnsupportedMedia, CorruptMedia)):
            load_item("blob", media.random_bytes(seed=seed), LIMITS)


def test_empty_object():
    with pytest.raises(EmptyMedia) as info:
        load_item("empty", b"", LIMITS)
    assert info.value.code == "empty"


@pytest.mark.parametrize("colour", [True, False])
@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9, 0.99])
def test_truncated_jpeg(keep, colour):
    data = media.encode(media.photo("coffee"), quality=90)
    with pytest.raises(TruncatedMedia) as info:
        load_item("cut.jpg", media.truncated(data, keep), LIMITS, colour=colour)
    assert info.value.code == "truncated"


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_luma_only_decode_gives_the_same_pixels(fmt):
    """``colour=False`` (no detector of the set reads colour) decodes a JPEG's Y plane only;
    ``luma`` is the same either way (the file's own Y plane for a JPEG), ``rgb`` still
    works, and the reported mode is the file's. Other formats decode as usual."""
    data = media.encode(media.photo("chelsea"), fmt, **({"quality": 85} if fmt == "JPEG" else {}))
    full, lean = load_item("a", data, LIMITS), load_item("a", data, LIMITS, colour=False)
    assert lean.luma_only == (fmt == "JPEG") and not full.luma_only
    assert lean.info == full.info and lean.info.mode == "RGB"
    assert lean.luma.shape == full.rgb.shape[:2] and lean.luma.dtype == np.uint8
    assert np.array_equal(lean.luma, full.luma)
    assert np.array_equal(lean.rgb, full.rgb)
    # The Y plane is what an RGB -> Y conversion gives, up to the decoder's rounding.
    derived = media.photo("chelsea") @ np.array([0.299, 0.587, 0.114])
    assert np.abs(full.luma - derived).mean() < 3.0


@pytest.mark.parametrize("keep", [0.05, 0.2, 0.5, 0.8, 0.95])
def test_truncated_mp4(mp4, keep):
    # 0.95 keeps the moov atom but cuts the sample description: the stream has no codec.
    with pytest.raises(CorruptMedia):  # TruncatedMedia is a CorruptMedia
        load_item("cut.mp4", media.truncated(mp4, keep), LIMITS)


# --- limits, checked before decoding ------------------------------------------------------


def test_pixel_bomb_is_refused_from_the_header():
    bomb = media.png_declaring(50000, 50000)  # 2.5 Gpx declared in a ~100-byte file
    created_before = Image.core.get_stats()["new_count"]
    tracemalloc.start()
    try:
        started = time.perf_counter()
        with pytest.raises(LimitExceeded, match="50000x50000"):
            load_item("bomb.png", bomb, LIMITS)
        elapsed = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert elapsed < 1.0
    assert peak < 50 * 1024 * 1024
    # tracemalloc cannot see Pillow's own C allocator, so also check that Pillow created no
    # pixel buffer at all (it would reserve ~10 GB for this header).
    assert Image.core.get_stats()["new_count"] == created_before

    with pytest.raises(LimitExceeded):
        probe(bomb, LIMITS)


def test_max_pixels_boundary(jpeg):
    pixels = 128 * 96
    with pytest.raises(LimitExceeded) as info:
        load_item("x", jpeg, Limits(max_pixels=pixels - 1))
    assert info.value.code == "limit_exceeded"
    assert load_item("x", jpeg, Limits(max_pixels=pixels)).info.width == 128


def test_max_bytes_boundary(jpeg):
    with pytest.raises(LimitExceeded, match="bytes"):
        load_item("x", jpeg, Limits(max_bytes=len(jpeg) - 1))
    with pytest.raises(LimitExceeded):
        probe(jpeg, Limits(max_bytes=len(jpeg) - 1))
    assert load_item("x", jpeg, Limits(max_bytes=len(jpeg))).media_type.format == "jpeg"


def test_video_limits(mp4):
    with pytest.raises(LimitExceeded, match="lasts"):
        load_item("clip.mp4", mp4, Limits(max_duration_s=1.0))
    with pytest.raises(LimitExceeded, match="160x120"):
        load_item("clip.mp4", mp4, Limits(max_pixels=160 * 120 - 1))


def test_probe_reads_headers_without_decoding(jpeg):
    media_type, info = probe(jpeg, LIMITS)
    assert media_type.format == "jpeg"
    assert (info.width, info.height, info.mode) == (128, 96, "RGB")


# --- every pixel format becomes HxWx3 uint8 -------------------------------------------------


def _modes(photo: np.ndarray) -> dict[str, tuple[bytes, str]]:
    """label -> (encoded file, the Pillow mode it must decode to)."""
    rgb = Image.fromarray(photo)
    ramp16 = np.linspace(0, 1000, 96 * 128).reshape(96, 128).astype(np.uint16)  # dark 16-bit
    return {
        "L": (media.encode(rgb.convert("L"), "PNG"), "L"),
        "LA": (media.encode(rgb.convert("LA"), "PNG"), "LA"),
        "RGBA": (media.encode(rgb.convert("RGBA"), "PNG"), "RGBA"),
        "P": (media.encode(rgb.convert("P"), "PNG"), "P"),
        "P+transparency": (media.encode(rgb.convert("P"), "PNG", transparency=0), "P"),
        "I;16 png": (media.encode(Image.fromarray(ramp16), "PNG"), "I;16"),
        "I tiff": (media.encode(Image.fromarray(ramp16.astype(np.int32)), "TIFF"), "I"),
        "F tiff": (media.encode(Image.fromarray(ramp16.astype(np.float32)), "TIFF"), "F"),
        "CMYK jpeg": (media.encode(rgb.convert("CMYK"), "JPEG"), "CMYK"),
        "1-bit": (media.encode(rgb.convert("1"), "PNG"), "1"),
    }


@pytest.mark.parametrize("label", ["L", "LA", "RGBA", "P", "P+transparency", "I;16 png", "I tiff", "F tiff",
                                   "CMYK jpeg", "1-bit"])
def test_every_mode_becomes_rgb_uint8(photo, label):
    data, mode = _modes(photo)[label]
    item = load_item("x", data, LIMITS)
    assert item.info.mode == mode  # the file really exercises this mode
    assert item.image.mode == mode
    rgb = item.rgb
    assert rgb.shape == (96, 128, 3)
    assert rgb.dtype == np.uint8
    assert np.asarray(to_rgb(item.image)).shape == (96, 128, 3)


def test_grayscale_copies_to_three_equal_channels(photo):
    rgb = load_item("x", media.encode(Image.fromarray(photo).convert("L"), "PNG"), LIMITS).rgb
    assert np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2])


def test_sixteen_bit_is_rescaled_not_clipped():
    # Values 0..1000 of 65535 would be all black if truncated to 8 bits, and a careless
    # conversion clips everything above 255 to white; rescaling keeps the ramp.
    ramp = np.tile(np.linspace(0, 1000, 128).astype(np.uint16), (8, 1))
    rgb = load_item("x", media.encode(Image.fromarray(ramp), "PNG"), LIMITS).rgb
    row = rgb[0, :, 0].astype(int)
    assert row[0] == 0 and row[-1] == 255
    assert np.all(np.diff(row) >= 0)
    assert len(np.unique(row)) > 100


def test_transparent_pixels_become_white():
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0] = 200  # red, fully transparent
    rgb = load_item("x", media.encode(rgba, "PNG"), LIMITS).rgb
    assert np.all(rgb == 255)


def test_one_bit_is_black_and_white(photo):
    rgb = load_item("x", media.encode(Image.fromarray(photo).convert("1"), "PNG"), LIMITS).rgb
    assert set(np.unique(rgb).tolist()) == {0, 255}


def test_errors_are_media_errors():
    # Every per-object failure above is a MediaError: the scan records a row and goes on.
    for exc in (EmptyMedia, CorruptMedia, TruncatedMedia, UnsupportedMedia, LimitExceeded):
        assert issubclass(exc, MediaError)
