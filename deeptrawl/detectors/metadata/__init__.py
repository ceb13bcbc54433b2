"""Metadata & provenance detector: C2PA manifests, IPTC digital source type, generator
fingerprints in EXIF, XMP and PNG text. Importing the package registers ``metadata``."""

from deeptrawl.detectors.metadata.detector import MetadataDetector

__all__ = ["MetadataDetector"]
