"""EXIF internal consistency: does the metadata agree with itself and with the picture?

A camera writes its EXIF in one go: one clock for all dates, exposure fields next to its
make and model, a thumbnail of the very picture, the picture's pixel size. Editing and
metadata transplanting break that agreement in ways that are cheap to check:

* **Dates.** DateTimeOriginal (shutter), DateTimeDigitized (written to the card; the
  scan time for film) and DateTime (last modification) must not run backwards; none
  may lie in the future or before digital cameras existed; XMP's creation date must
  name the same moment as EXIF's (up to a time-zone shift, which is a whole multiple
  of 15 minutes); a modification days after capture means later editing.
* **Camera fields.** A file that names a camera (Make/Model) but carries none of the
  exposure fields every camera writes (ExposureTime, FNumber, ISO, FocalLength) had
  its EXIF typed in, pasted on, or stripped by an editor. Scanners are exempt.
* **Pixel size.** EXIF PixelX/YDimension of another aspect ratio: cropped or padded
  after capture (a proportional resize is normal and not reported).
* **Editing software** named in EXIF Software, IPTC OriginatingProgram or XMP
  CreatorTool: the file was saved by an image editor.
* **Thumbnail** (``thumbnail.py``): the embedded preview shows the same picture.

Every finding here is a *consistency signal* with a moderate score (``scores.py``):
innocent workflows (cropping, retouching, a camera whose clock was never set) explain
many of them, so none is decisive.

Limits, honestly: metadata is trivially rewritten; a careful forger who fixes the
dates, keeps the exposure fields and regenerates the thumbnail passes every check
here. Time zones are rarely recorded, so dates written by different programs are only
compared to within 14 hours unless both carry an offset.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any, Iterable

from deeptrawl.detectors.base import Finding
from deeptrawl.detectors.metadata import scores, signatures
from deeptrawl.detectors.metadata import xmp as xmp_reader
from deeptrawl.detectors.metadata.exif import clip

#: Widest time-zone difference between two clocks that both say "local time".
MAX_ZONE_SHIFT = dt.timedelta(hours=14)
#: Slack for rounding and sub-second writes between fields of one writer.
CLOCK_SLACK = dt.timedelta(seconds=2)
#: A gap this long between capture and modification/digitisation is reported.
LONG_GAP = dt.timedelta(days=1)
#: The first consumer digital cameras (and scanners writing EXIF-like dates) appear here.
DIGITAL_EPOCH = dt.datetime(1990, 1, 1)
#: Future dates: allow a day for time zones and clock drift.
FUTURE_SLACK = dt.timedelta(days=1)

_DATE = re.compile(
    r"^\s*(\d{4})[:\-](\d{2})(?:[:\-](\d{2})"
    r"(?:[ T](\d{2}):(\d{2})(?::(\d{2}))?(?:[.,](\d+))?)?)?"
    r"\s*(Z|[+\-]\d{2}:?\d{2})?\s*$"
)
_OFFSET = re.compile(r"^\s*([+\-])(\d{2}):?(\d{2})\s*$")


@dataclass(frozen=True)
class Stamp:
    """One date field: its wall-clock time and, when recorded, its UTC offset."""

    source: str  # e.g. "EXIF DateTimeOriginal"
    text: str
    when: dt.datetime  # naive, the writer's local clock
    offset: dt.timedelta | None = None

    def utc(self) -> dt.datetime | None:
        return None if self.offset is None else self.when - self.offset


def parse_offset(text: str | None) -> dt.timedelta | None:
    match = _OFFSET.match(text or "")
    if not match:
        return None
    sign = -1 if match.group(1) == "-" else 1
    return sign * dt.timedelta(hours=int(match.group(2)), minutes=int(match.group(3)))


def parse_date(source: str, text: str | None, offset_text: str | None = None) -> Stamp | None:
    """EXIF (``YYYY:MM:DD HH:MM:SS``) or XMP/ISO 8601 dates; None when blank, zeroed
    (``0000:00:00 00:00:00``, what cameras write when the clock is unset) or unreadable."""
    if not text:
        return None
    match = _DATE.match(text)
    if not match:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        when = dt.datetime(int(year), int(month), int(day or 1), int(hour or 0), int(minute or 0),
                           int(second or 0), int((fraction or "0")[:6].ljust(6, "0")))
    except ValueError:  # zeros, month 13, ...
        return None
    offset = dt.timedelta(0) if zone == "Z" else parse_offset(zone) if zone else parse_offset(offset_text)
    return Stamp(source, text.strip(), when, offset)


def compare(a: Stamp, b: Stamp, *, same_clock: bool) -> tuple[dt.timedelta, dt.timedelta]:
    """(b - a, uncertainty). Exact (to ``CLOCK_SLACK``) when both carry offsets or both
    come from one clock; otherwise up to a time-zone shift."""
    if a.offset is not None and b.offset is not None:
        return b.utc() - a.utc(), CLOCK_SLACK  # type: ignore[operator]
    if same_clock:
        return b.when - a.when, CLOCK_SLACK
    return b.when - a.when, MAX_ZONE_SHIFT + CLOCK_SLACK


def _zone_shift_only(delta: dt.timedelta) -> bool:
    """True when ``delta`` could be two clocks in different time zones: within 14 h and
    (to the slack) a whole multiple of 15 minutes."""
    seconds = abs(delta.total_seconds())
    if seconds > MAX_ZONE_SHIFT.total_seconds() + CLOCK_SLACK.total_seconds():
        return False
    rest = seconds % 900
    return min(rest, 900 - rest) <= CLOCK_SLACK.total_seconds()


def _span(delta: dt.timedelta) -> str:
    seconds = abs(delta.total_seconds())
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:.0f} days"
    if seconds >= 7200:
        return f"{seconds / 3600:.0f} hours"
    if seconds >= 120:
        return f"{seconds / 60:.0f} minutes"
    return f"{seconds:.0f} seconds"


# --- dates ---------------------------------------------------------------------------


def collect_dates(exif: dict[str, str], props: dict[str, Any]) -> dict[str, Stamp]:
    """Every date field worth comparing, by short name."""
    stamps = {
        "original": parse_date("EXIF DateTimeOriginal", exif.get("DateTimeOriginal"),
                               exif.get("OffsetTimeOriginal") or exif.get("OffsetTime")),
        "digitized": parse_date("EXIF DateTimeDigitized", exif.get("DateTimeDigitized"),
                                exif.get("OffsetTimeDigitized") or exif.get("OffsetTime")),
        "modified": parse_date("EXIF DateTime", exif.get("DateTime"), exif.get("OffsetTime")),
    }
    for name, key in (("xmp_create", "xmp:CreateDate"), ("xmp_modify", "xmp:ModifyDate"),
                      ("xmp_date_created", "photoshop:DateCreated"), ("xmp_exif_original", "exif:DateTimeOriginal")):
        values = xmp_reader.as_strings(props.get(key))
        stamps[name] = parse_date(f"XMP {key}", values[0]) if values else None
    return {k: v for k, v in stamps.items() if v is not None}


def date_findings(
    stamps: dict[str, Stamp],
    history: list[dict[str, str]],
    *,
    camera_claimed: bool,
    now: dt.datetime,
) -> list[Finding]:
    """Findings about the order, range and agreement of the file's dates."""
    out: list[Finding] = []
    disorder = _out_of_order(stamps, history)
    if disorder:
        out.append(Finding(
            "exif_dates_out_of_order",
            "The file's dates run backwards, which one camera clock cannot produce: "
            + "; ".join(disorder) + ". The dates were edited or belong to another file.",
            scores.SCORE_DATES_OUT_OF_ORDER,
        ))
    future = [s for s in stamps.values() if s.when - now > FUTURE_SLACK]
    if future:
        out.append(Finding(
            "date_in_future",
            "The metadata dates the file in the future: "
            + ", ".join(f"{s.source} {s.text}" for s in future) + ". The dates were typed in or the clock was wrong.",
            scores.SCORE_DATE_IN_FUTURE,
        ))
    early = _too_early(stamps, camera_claimed)
    if early:
        out.append(Finding(
            "date_before_digital_cameras",
            "The metadata dates the digital file before digital cameras existed ("
            + ", ".join(f"{s.source} {s.text}" for s in early)
            + "). A camera whose clock was never set does this too; otherwise the dates were edited.",
            scores.SCORE_DATE_TOO_EARLY,
        ))
    mismatch = _xmp_exif_mismatch(stamps)
    if mismatch:
        out.append(Finding(
            "xmp_exif_date_mismatch",
            "The XMP and EXIF metadata disagree about when the picture was made: " + "; ".join(mismatch)
            + ". One of them was rewritten, or they come from different files.",
            scores.SCORE_XMP_EXIF_DATE_MISMATCH,
        ))
    gaps = _gaps(stamps)
    if gaps:
        out.append(Finding(
            "exif_date_gap",
            "; ".join(gaps) + ": the file was re-saved (typically edited) long after the picture was taken.",
            scores.SCORE_DATE_GAP,
        ))
    return out


def _capture(stamps: dict[str, Stamp]) -> Stamp | None:
    return stamps.get("original") or stamps.get("xmp_date_created") or stamps.get("xmp_exif_original")


def _out_of_order(stamps: dict[str, Stamp], history: list[dict[str, str]]) -> list[str]:
    issues = []
    original, digitized, modified = stamps.get("original"), stamps.get("digitized"), stamps.get("modified")
    # Original and Digitized come from one writer (the camera, or the scanner for both).
    pairs = [(original, digitized, True, "taken", "digitised"),
             (original, modified, False, "taken", "last modified"),
             (digitized, modified, False, "digitised", "last modified"),
             (stamps.get("xmp_create"), stamps.get("xmp_modify"), True, "created", "modified")]
    for early, late, same_clock, what_early, what_late in pairs:
        if early is None or late is None:
            continue
        delta, slack = compare(early, late, same_clock=same_clock)
        if delta < -slack:
            issues.append(f"{late.source} ({late.text}) is {_span(delta)} before {early.source} ({early.text}): "
                          f"{what_late} before it was {what_early}")
    capture = _capture(stamps)
    if capture is not None:
        for event in history[:50]:
            when = parse_date("XMP history", event.get("when"))
            if when is None:
                continue
            delta, slack = compare(capture, when, same_clock=False)
            if delta < -slack:
                action = event.get("action") or "an event"
                issues.append(f"the XMP history records '{action}' at {when.text}, {_span(delta)} before "
                              f"{capture.source} ({capture.text})")
                break
    return issues


def _too_early(stamps: dict[str, Stamp], camera_claimed: bool) -> list[Stamp]:
    early = [s for name, s in stamps.items()
             if name in ("digitized", "modified", "xmp_create", "xmp_modify") and s.when < DIGITAL_EPOCH]
    original = stamps.get("original")
    # An old DateTimeOriginal is normal for a film scan (digitised later); only a
    # digital camera that says it took the picture then is implausible.
    if original is not None and original.when < DIGITAL_EPOCH and camera_claimed:
        digitized = stamps.get("digitized")
        if digitized is None or digitized.when <= original.when + CLOCK_SLACK:
            early.insert(0, original)
    return early


def _xmp_exif_mismatch(stamps: dict[str, Stamp]) -> list[str]:
    """Metadata Working Group mapping: xmp:CreateDate = DateTimeDigitized,
    photoshop:DateCreated and exif:DateTimeOriginal = DateTimeOriginal."""
    issues = []
    pairs = [("xmp_create", "digitized" if "digitized" in stamps else "original"),
             ("xmp_date_created", "original"), ("xmp_exif_original", "original")]
    for xmp_name, exif_name in pairs:
        a, b = stamps.get(exif_name), stamps.get(xmp_name)
        if a is None or b is None:
            continue
        if len(b.text) <= 10 and b.when.date() == a.when.date():  # XMP date without a time
            continue
        delta, slack = compare(a, b, same_clock=False)
        exact = a.offset is not None and b.offset is not None
        if (abs(delta) > slack) if exact else not _zone_shift_only(delta):
            issues.append(f"{b.source} is {b.text} but {a.source} is {a.text} ({_span(delta)} apart)")
    return issues


def _gaps(stamps: dict[str, Stamp]) -> list[str]:
    out = []
    capture = stamps.get("original")
    for name, what in (("modified", "modified"), ("xmp_modify", "modified (XMP)")):
        late = stamps.get(name)
        if capture is None or late is None:
            continue
        delta, slack = compare(capture, late, same_clock=False)
        if delta > LONG_GAP + slack:
            out.append(f"taken {capture.text}, {what} {late.text} ({_span(delta)} later)")
            break
    digitized = stamps.get("digitized")
    if capture is not None and digitized is not None:
        delta, slack = compare(capture, digitized, same_clock=True)
        if delta > LONG_GAP + slack:
            out.append(f"taken {capture.text}, digitised {digitized.text} ({_span(delta)} later; "
                       "normal for a film scan)")
    return out


# --- camera fields, pixel size, software ------------------------------------------------

#: Exposure fields every digital camera writes: EXIF names and their XMP equivalents.
EXPOSURE_FIELDS = {
    "ExposureTime": ("exif:ExposureTime",),
    "FNumber": ("exif:FNumber", "exif:ApertureValue"),
    "ISO": ("exif:ISOSpeedRatings", "exifEX:PhotographicSensitivity", "exifEX:ISOSpeed"),
    "FocalLength": ("exif:FocalLength",),
}
_EXPOSURE_ALIASES = {"ShutterSpeedValue": "ExposureTime", "ApertureValue": "FNumber"}
#: Devices that legitimately write Make/Model without exposure data.
_NOT_A_CAMERA = re.compile(
    r"scan|perfection|coolscan|canoscan|scanjet|plustek|reflecta|imacon|flextight|epson expression|"
    r"screenshot|screen capture|fax|\bcopier\b|multifunction",
    re.I,
)


def camera_claim(exif: dict[str, str], props: dict[str, Any]) -> tuple[str | None, str | None]:
    make = exif.get("Make") or next(iter(xmp_reader.as_strings(props.get("tiff:Make"))), None)
    model = exif.get("Model") or next(iter(xmp_reader.as_strings(props.get("tiff:Model"))), None)
    return make, model


def exposure_present(exif: dict[str, str], props: dict[str, Any]) -> list[str]:
    present = {name for name in EXPOSURE_FIELDS if exif.get(name)}
    present |= {canon for alias, canon in _EXPOSURE_ALIASES.items() if exif.get(alias)}
    present |= {name for name, keys in EXPOSURE_FIELDS.items() if any(props.get(k) for k in keys)}
    return sorted(present)


def camera_findings(exif: dict[str, str], props: dict[str, Any]) -> list[Finding]:
    make, model = camera_claim(exif, props)
    if not (make or model):
        return []
    # "Canon" + "Canon EOS R6" reads better as the model alone.
    if make and model and model.lower().startswith(make.lower()):
        claimed = model
    else:
        claimed = " ".join(x for x in (make, model) if x)
    if _NOT_A_CAMERA.search(claimed) or exposure_present(exif, props):
        return []
    return [Finding(
        "camera_fields_missing",
        f"The metadata names a camera ({clip(claimed, 80)}) but has none of the exposure fields every "
        "camera records (exposure time, aperture, ISO, focal length): the EXIF was written by hand, "
        "pasted on, or stripped down by an editor.",
        scores.SCORE_CAMERA_FIELDS_MISSING,
    )]


def dimension_findings(exif: dict[str, str], size: tuple[int, int]) -> list[Finding]:
    """EXIF PixelX/YDimension vs the decoded size: another aspect ratio means a crop or pad."""
    try:
        ew, eh = int(float(exif["PixelXDimension"])), int(float(exif["PixelYDimension"]))
    except (KeyError, ValueError):
        return []
    w, h = size
    if min(ew, eh, w, h) < 16 or (ew, eh) == (w, h):
        return []
    # Tolerate the rounding of a proportional resize (one pixel either way) and the
    # 90-degree turn some tools apply to the pixels without touching EXIF.
    tolerance = 1.5 / min(w, h) + 1.5 / min(ew, eh) + 0.005

    def close(a: float, b: float) -> bool:
        return abs(a / b - 1.0) <= tolerance

    if close(ew / eh, w / h) or close(eh / ew, w / h):
        return []
    return [Finding(
        "exif_dimensions_mismatch",
        f"The EXIF records a {ew}x{eh} picture but the file holds {w}x{h}, another shape: "
        "the picture was cropped or padded after the metadata was written.",
        scores.SCORE_DIMENSIONS_MISMATCH,
    )]


def editing_findings(fields: Iterable[tuple[str, str]]) -> list[Finding]:
    """One finding per image editor named in the software fields."""
    named: dict[str, list[str]] = {}
    for where, value in fields:
        editor = signatures.find_editor(value)
        if editor:
            named.setdefault(editor, []).append(f"{where} '{clip(value, 60)}'")
    return [Finding(
        "edited_with_software",
        f"The file was saved by the image editor {editor} ({', '.join(dict.fromkeys(places))}), "
        "so the picture may have been changed after capture.",
        scores.SCORE_EDITING_SOFTWARE,
    ) for editor, places in sorted(named.items())]


# --- thumbnail ---------------------------------------------------------------------------


def thumbnail_findings(check: Any) -> list[Finding]:
    """Findings from a ``thumbnail.ThumbnailCheck``."""
    if check is None:
        return []
    if check.status == "different_picture":
        return [Finding(
            "exif_thumbnail_mismatch",
            "The thumbnail the camera embedded in the EXIF shows a different picture (correlation "
            f"{check.correlation:.2f}): the metadata was copied from another file, or the picture replaced.",
            scores.SCORE_THUMBNAIL_MISMATCH,
        )]
    if check.status == "region_changed":
        return [Finding(
            "exif_thumbnail_mismatch",
            "Part of the picture differs from the thumbnail embedded in the EXIF (about "
            f"{100 * check.changed_fraction:.1f}% of the area): the picture was edited after the "
            "camera wrote the thumbnail. The map shows where.",
            scores.SCORE_THUMBNAIL_MISMATCH,
        )]
    if check.status == "aspect_mismatch":
        return [Finding(
            "exif_thumbnail_aspect_mismatch",
            f"The EXIF thumbnail has another shape (aspect {check.aspect_thumb:.3f}) than the picture "
            f"(aspect {check.aspect_image:.3f}): the picture was cropped or padded after capture, or the "
            "metadata belongs to another picture.",
            scores.SCORE_THUMBNAIL_ASPECT,
        )]
    return []
