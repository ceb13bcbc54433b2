"""Metadata & provenance detector: C2PA manifests, IPTC digital source type, generator
fingerprints in EXIF, XMP and PNG text, and (since 1.1) consistency signals: the EXIF
thumbnail against the picture, dates, camera fields, editing software, the XMP edit
history and the C2PA ingredient/action chain. Importing the package registers ``metadata``.

Modules: ``detector`` (the Detector), ``scores`` (every finding's score), ``exif``,
``xmp``, ``c2pa`` (readers), ``signatures`` (generator/editor tables), ``consistency``,
``thumbnail`` and ``history`` (consistency checks)."""

from deeptrawl.detectors.metadata.detector import MetadataDetector

__all__ = ["MetadataDetector"]
