"""The deeptrawl error hierarchy.

Two families matter to a scan, and they are handled in opposite ways:

* ``MediaError`` belongs to one object (corrupt, truncated, unsupported, over a limit).
  It becomes an *error row* with ``code`` and a readable message; the job goes on.
* ``SystemicError`` means the run itself cannot proceed (storage unreachable, bad
  credentials, broken configuration). It stops the job with a non-zero exit and one
  clear message.

Library and transport exceptions are mapped to the most specific error here at the
boundary where they happen (object stores, decoders, catalog), so callers never need
to know about botocore or Pillow exceptions.
"""

from __future__ import annotations


class DeeptrawlError(Exception):
    """Base class of every error deeptrawl raises on purpose."""

    code = "error"
    #: Process exit code the CLI uses when this error stops a command.
    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- per-object errors: become error rows ---------------------------------------------


class MediaError(DeeptrawlError):
    """A problem with one object's content. Recorded as an error row; the job continues."""

    code = "bad_media"


class EmptyMedia(MediaError):
    code = "empty"


class CorruptMedia(MediaError):
    code = "corrupt"


class TruncatedMedia(CorruptMedia):
    code = "truncated"


class UnsupportedMedia(MediaError):
    """The content is not a media type deeptrawl analyses (HTML, PDF, unknown bytes)."""

    code = "unsupported"


class LimitExceeded(MediaError):
    """Size, pixel count or duration over a configured limit: refused before full decode."""

    code = "limit_exceeded"


class DetectorFailed(MediaError):
    """A detector raised on this object; other detectors' results are kept."""

    code = "detector_failed"


# --- systemic errors: stop the run ----------------------------------------------------


class SystemicError(DeeptrawlError):
    """The run cannot go on; the CLI prints the message and exits non-zero."""

    code = "systemic"
    exit_code = 3


class ConfigError(SystemicError):
    code = "config"
    exit_code = 2


class StorageError(SystemicError):
    code = "storage"


class StorageUnreachable(StorageError):
    code = "storage_unreachable"


class StorageAuthError(StorageError):
    code = "storage_auth"


class ObjectNotFound(StorageError):
    code = "not_found"


class WarehouseError(SystemicError):
    code = "warehouse"


class InferenceBackendError(SystemicError):
    code = "inference_backend"
