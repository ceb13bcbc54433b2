"""The bundled sample archive: real photos, a few manipulations made here, bad files.

``deeptrawl sample DIR`` (and ``make scan``) builds it on first use, deterministically,
from photographs that ship inside scikit-image. Nothing in it is committed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from deeptrawl.samples import media

def _files() -> dict[str, Callable[[], bytes]]:
    from deeptrawl.samples import metadata as md

    def camera_jpeg(name: str, quality: int, model: str) -> Callable[[], bytes]:
        return lambda: md.jpeg_with_exif(
            Image.fromarray(media.photo(name)), make="Canon", model=model, datetime="2024:05:01 10:12:00", quality=quality
        )

    def generated_png() -> bytes:
        return md.png_with_text(Image.fromarray(media.photo("coffee")), {"parameters": md.a1111_parameters("a cup of coffee, studio light", 1234)})

    def comfy_png() -> bytes:
        return md.png_with_text(Image.fromarray(media.photo("chelsea")), {"prompt": md.comfyui_prompt()})

    def upsampled_png() -> bytes:
        from deeptrawl.samples.corpus_spectrum import transposed_conv2x

        half = np.asarray(Image.fromarray(media.photo("coffee")).reduce(2))
        return media.encode(transposed_conv2x(half, np.random.default_rng(3)), "PNG")

    def iptc_ai_jpeg() -> bytes:
        return md.with_xmp(Image.fromarray(media.photo("astronaut")), md.iptc_source_type_xmp("trainedAlgorithmicMedia"), fmt="jpeg")

    return {
        "real/astronaut.jpg": camera_jpeg("astronaut", 92, "Canon EOS 5D Mark IV"),
        "real/coffee.jpg": camera_jpeg("coffee", 85, "Canon EOS R6"),
        "real/chelsea.png": lambda: media.encode(media.photo("chelsea"), "PNG"),
        "real/hubble deep field.jpg": lambda: media.encode(media.photo("hubble_deep_field"), quality=90),
        "real/camera (greyscale).png": lambda: media.encode(media.photo("camera"), "PNG"),
        "real/clip.mp4": media.mp4_clip,
        "manipulated/splice-coffee+chelsea.jpg": lambda: media.splice(media.photo("coffee"), media.photo("chelsea"), seed=1)[0],
        "manipulated/splice-astronaut+coffee.jpg": lambda: media.splice(media.photo("astronaut"), media.photo("coffee"), seed=2)[0],
        "manipulated/copy-move-astronaut.jpg": lambda: media.encode(media.copy_move(media.photo("astronaut"), seed=4)[0], quality=90),
        "generated/upsampled-x2-transposed-conv.png": upsampled_png,
        "generated/stable-diffusion-a1111.png": generated_png,
        "generated/comfyui-workflow.png": comfy_png,
        "generated/iptc-trained-algorithmic.jpg": iptc_ai_jpeg,
        "bad/truncated.jpg": lambda: media.truncated(media.encode(media.photo("rocket"), quality=90)),
        "bad/error-page.jpg": media.html_page,
        "bad/photo-named-as.txt": lambda: media.encode(media.photo("retina"), quality=88),
    }


def build_sample_archive(directory: str | Path, *, force: bool = False) -> list[Path]:
    """Write the sample archive into ``directory``; a no-op when it is already there."""
    root = Path(directory)
    files = _files()
    if not force and all((root / name).exists() for name in files):
        return []
    written = []
    for name, make in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(make())
        written.append(path)
    return written
