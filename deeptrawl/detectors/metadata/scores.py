"""Finding scores, in one place so they can be reviewed and calibrated together.

Two families, on purpose far apart:

* **Declarations** of where the picture came from (a signed C2PA manifest, an IPTC
  source type, a generator's own settings block). One credible declaration of
  synthesis settles the question, so these score high and some are decisive.
* **Consistency signals** (EXIF thumbnail vs picture, dates, missing camera fields,
  editing software, edit histories, provenance chains). They say the file was edited
  or its metadata does not belong to it, which is common for innocent reasons
  (cropping, exposure fixes, an archive's own re-saves). They are never decisive and
  stay at or below ``SCORE_CONSISTENCY_MAX`` so that, alone, they move a verdict to
  "inconclusive" at most, never to "likely synthetic".

A clean camera file with complete, consistent EXIF produces no finding at all.
"""

from __future__ import annotations

# --- declarations ------------------------------------------------------------------
SCORE_C2PA_AI = 0.99
SCORE_C2PA_INGREDIENT_AI = 0.90
SCORE_C2PA_INTEGRITY = 0.80
SCORE_C2PA_CREDENTIAL = 0.60
SCORE_C2PA_UNREADABLE = 0.50
SCORE_C2PA_CAPTURE_TRUSTED = 0.05
SCORE_C2PA_CAPTURE = 0.10
SCORE_GENERATION_PARAMS = 0.97
SCORE_GENERATOR_SOFTWARE = 0.95

# --- consistency signals (moderate, never decisive) -------------------------------------
SCORE_CONSISTENCY_MAX = 0.55
#: The EXIF thumbnail shows another picture, or a region that differs from the picture.
SCORE_THUMBNAIL_MISMATCH = 0.55
#: The EXIF thumbnail has another aspect ratio (cropped or padded after capture).
SCORE_THUMBNAIL_ASPECT = 0.35
#: EXIF PixelX/YDimension describe a picture of another aspect ratio.
SCORE_DIMENSIONS_MISMATCH = 0.30
#: Capture later than digitisation or modification: impossible for one clock.
SCORE_DATES_OUT_OF_ORDER = 0.40
#: A date after the time of analysis.
SCORE_DATE_IN_FUTURE = 0.35
#: A digitisation/modification date before digital cameras (often a clock never set).
SCORE_DATE_TOO_EARLY = 0.30
#: XMP creation date disagrees with the EXIF one by more than a time-zone shift.
SCORE_XMP_EXIF_DATE_MISMATCH = 0.30
#: Modified (or digitised) days after capture: typical of later editing.
SCORE_DATE_GAP = 0.20
#: Camera make/model claimed but no exposure fields (pasted-on or editor-stripped EXIF).
SCORE_CAMERA_FIELDS_MISSING = 0.30
#: An image editor saved the file.
SCORE_EDITING_SOFTWARE = 0.25
#: The XMP edit history records content-changing saves/conversions by an editor.
SCORE_XMP_HISTORY_EDITED = 0.30
#: The XMP records other documents placed or pasted into this one.
SCORE_XMP_COMPOSITE = 0.35
#: A C2PA ingredient whose own provenance failed validation when it was added.
SCORE_C2PA_INGREDIENT_INVALID = 0.45
#: Content from another file was placed into this one (C2PA componentOf / c2pa.placed).
SCORE_C2PA_COMPOSITE = 0.40
#: A C2PA-declared capture edited afterwards (cropped, colour-adjusted, drawn on ...).
SCORE_C2PA_EDITED_AFTER_CAPTURE = 0.25
