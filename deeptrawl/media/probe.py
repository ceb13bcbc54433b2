"""Read media headers, enforce limits, then decode.

Order matters for safety: size is checked before fetching (by the caller, from the
listing), pixel count and duration are checked from headers *before* decoding pixels
or frames, so a 50000x50000 PNG costs a header read, not 7 GB of RAM.
"""

from __future__ import annotations

import io
import warnings
import zlib

from PIL import Image, UnidentifiedImageError

from deeptrawl.config import Limits
from deeptrawl.errors import CorruptMedia, LimitExceeded, MediaError, TruncatedMedia
from deeptrawl.media.item import MediaInfo, MediaItem, can_decode_luma_only
from deeptrawl.media.sniff import SNIFF_BYTES, MediaKind, MediaType, sniff

# Our own ``Limits.max_pixels`` check replaces Pillow's global bomb guard, so the limit is
# configurable per scan and the error is ours. The check runs before any pixel is decoded.
Image.MAX_IMAGE_PIXELS = None


def check_size(size: int, limits: Limits) -> None:
    if size > limits.max_bytes:
        raise LimitExceeded(f"object is {size:,} bytes, over the limit of {limits.max_bytes:,} bytes")


def probe(data: bytes, limits: Limits, media_type: MediaType | None = None) -> tuple[MediaType, MediaInfo]:
    """Identify ``data`` and read its header facts, enforcing ``limits``. Decodes no pixels."""
    check_size(len(data), limits)
    media_type = media_type or sniff(data[:SNIFF_BYTES])
    if media_type.kind is MediaKind.IMAGE:
        image = _open_image(data, media_type, limits)
        return media_type, _image_info(image)
    return media_type, _probe_av(data, media_type, limits, decode_first_frame=False)


def load_item(uri: str, data: bytes, limits: Limits, *, colour: bool = True) -> MediaItem:
    """Identify, check and decode ``data`` into a ``MediaItem`` ready for detectors.

    ``colour=False``: no detector will read colour, so a JPEG is decoded to its Y plane
    only (about half the work); the whole file is still decoded, so a truncated or
    corrupt one fails here as it would in colour.
    """
    check_size(len(data), limits)
    media_type = sniff(data[:SNIFF_BYTES])
    if media_type.kind is MediaKind.IMAGE:
        image = _open_image(data, media_type, limits)
        info = _image_info(image)  # before a luma-only decode changes the mode
        luma_only = not colour and media_type.format == "jpeg" and can_decode_luma_only(image)
        if luma_only:
            image.draft("L", image.size)
        _decode(image, media_type)
        return MediaItem(uri, data, media_type, info, image=image, luma_only=luma_only)
    info = _probe_av(data, media_type, limits, decode_first_frame=True)
    return MediaItem(uri, data, media_type, info)


def _open_image(data: bytes, media_type: MediaType, limits: Limits) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError as exc:
        raise CorruptMedia(f"{media_type.format.upper()} signature but the header cannot be parsed") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise _decode_error(exc, media_type) from exc
    pixels = image.width * image.height
    if pixels > limits.max_pixels:
        raise LimitExceeded(
            f"image declares {image.width}x{image.height} = {pixels:,} pixels, "
            f"over the limit of {limits.max_pixels:,}"
        )
    if image.format and image.format.lower() not in (media_type.format, "mpo"):
        raise CorruptMedia(f"content starts like {media_type.format.upper()} but decodes as {image.format}")
    return image


def _decode(image: Image.Image, media_type: MediaType) -> None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image.load()
    except (OSError, SyntaxError, ValueError, EOFError, zlib.error) as exc:
        raise _decode_error(exc, media_type) from exc


def _decode_error(exc: Exception, media_type: MediaType) -> MediaError:
    text = str(exc) or type(exc).__name__
    fmt = media_type.format.upper()
    if "truncated" in text.lower() or isinstance(exc, EOFError):
        return TruncatedMedia(f"{fmt} data is truncated: {text}")
    return CorruptMedia(f"{fmt} data cannot be decoded: {text}")


def _image_info(image: Image.Image) -> MediaInfo:
    return MediaInfo(
        width=image.width,
        height=image.height,
        mode=image.mode,
        frames=getattr(image, "n_frames", 1),
    )


def _probe_av(data: bytes, media_type: MediaType, limits: Limits, *, decode_first_frame: bool) -> MediaInfo:
    import av  # PyAV is heavy to import; images never need it

    fmt = media_type.format.upper()
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            duration = container.duration / 1_000_000 if container.duration else None
            # A stream whose codec parameters are missing (e.g. a truncated sample description)
            # has no codec context; it cannot be decoded, so it does not count.
            video = next((s for s in container.streams.video if s.codec_context is not None), None)
            audio = next((s for s in container.streams.audio if s.codec_context is not None), None)
            if video is None and audio is None:
                raise CorruptMedia(f"{fmt} container holds no decodable video or audio stream")
            if duration is None:
                stream = video or audio
                if stream.duration and stream.time_base:
                    duration = float(stream.duration * stream.time_base)
            if duration is not None and duration > limits.max_duration_s:
                raise LimitExceeded(
                    f"media lasts {duration:,.1f} s, over the limit of {limits.max_duration_s:,.0f} s"
                )
            info = MediaInfo(
                width=video.codec_context.width if video else None,
                height=video.codec_context.height if video else None,
                duration_s=duration,
                codec=(video or audio).codec_context.name,
                frames=(video.frames or None) if video else None,
                sample_rate=audio.codec_context.sample_rate if audio else None,
                channels=audio.codec_context.channels if audio else None,
            )
            if video is not None and info.width and info.height and info.width * info.height > limits.max_pixels:
                raise LimitExceeded(f"video frames are {info.width}x{info.height}, over the pixel limit")
            if decode_first_frame:
                stream = video or audio
                if next(container.decode(stream), None) is None:
                    raise TruncatedMedia(f"{fmt} has a header but no decodable {'frame' if video else 'audio'}")
            return info
    except MediaError:
        raise
    except av.error.FFmpegError as exc:
        raise CorruptMedia(f"{fmt} container cannot be read (truncated or corrupt): {exc}") from exc
    except (EOFError, OSError, ValueError) as exc:
        raise CorruptMedia(f"{fmt} container cannot be read (truncated or corrupt): {exc}") from exc
