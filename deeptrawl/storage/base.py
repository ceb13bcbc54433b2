"""The object-store interface: list, read, write. Two real stores (local disk, S3) and a
small in-memory one for unit tests implement it.

Keys are always relative to the store's root URI and use ``/``. Writers refuse keys that
would land outside the root (``..`` segments, absolute paths): object keys from an
archive are untrusted input.
"""

from __future__ import annotations

import abc
import posixpath
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO, Iterator

from deeptrawl.errors import ConfigError


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    uri: str
    size: int
    etag: str | None = None
    mtime: datetime | None = None


class ObjectStore(abc.ABC):
    #: Root URI, e.g. ``s3://bucket/prefix`` or ``/data/archive``.
    root: str

    @abc.abstractmethod
    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object under ``prefix``, paginated lazily, in key order."""

    @abc.abstractmethod
    def open(self, key: str) -> BinaryIO:
        """A streaming reader for one object."""

    @abc.abstractmethod
    def write(self, key: str, data: bytes, content_type: str | None = None) -> str:
        """Write (replace) one object; return its URI."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove one object; removing a missing object is not an error."""

    @abc.abstractmethod
    def uri_for(self, key: str) -> str:
        """The URI of ``key`` in this store."""

    def read(self, key: str) -> bytes:
        with self.open(key) as stream:
            return stream.read()

    def exists(self, key: str) -> bool:
        return any(True for info in self.list(key) if info.key == key)


def safe_key(key: str) -> str:
    """Normalise a key for writing; refuse any key that escapes the store root."""
    if not key or key.startswith("/") or "\\" in key or "\x00" in key:
        raise ConfigError(f"refusing to write unsafe key {key!r}")
    parts = key.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise ConfigError(f"refusing to write unsafe key {key!r}")
    return posixpath.join(*parts)
