"""A small archive with real photos and every kind of bad input the scan must survive.

``build(write)`` calls ``write(key, data)`` per object and returns what each object's
row must say: ``{key: (status, error_code_or_mime)}``.
"""

from __future__ import annotations

from typing import Callable

from deeptrawl.samples import media


def build(write: Callable[[str, bytes], None]) -> dict[str, tuple[str, str]]:
    jpeg = media.encode(media.photo("coffee"), quality=85)
    objects: dict[str, tuple[bytes, tuple[str, str]]] = {
        "real/astronaut.jpg": (media.encode(media.photo("astronaut"), quality=92), ("ok", "image/jpeg")),
        "real/coffee q85.jpg": (jpeg, ("ok", "image/jpeg")),
        "ünïcødé/chelsea 猫.png": (media.encode(media.photo("chelsea"), "PNG"), ("ok", "image/png")),
        "manipulated/splice.jpg": (media.splice(media.photo("coffee"), media.photo("chelsea"), seed=1)[0], ("ok", "image/jpeg")),
        "video/clip.mp4": (media.mp4_clip(), ("ok", "video/mp4")),
        "misnamed/photo.txt": (media.encode(media.photo("retina"), quality=88), ("ok", "image/jpeg")),
        "bad/zero.jpg": (b"", ("error", "empty")),
        "bad/truncated.jpg": (media.truncated(jpeg), ("error", "truncated")),
        "bad/random.png": (media.random_bytes(), ("error", "unsupported")),
        "bad/error page.jpg": (media.html_page(), ("error", "unsupported")),
        "bad/bomb.png": (media.png_declaring(50000, 50000), ("error", "limit_exceeded")),
        "bad/truncated.mp4": (media.truncated(media.mp4_clip(), 0.6), ("error", "corrupt")),
    }
    for key, (data, _) in objects.items():
        write(key, data)
    return {key: expected for key, (_, expected) in objects.items()}
