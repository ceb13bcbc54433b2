"""A dict-backed object store for unit tests of logic that sits above storage.

``open_store("memory://name")`` hands out one shared instance per URI within the
process, so a test can fill a store and point a pipeline at its URI; such a shared
store pickles by name (Beam pickles DoFns even when it runs them in-process) and
unpickles to the same instance. A ``MemoryStore`` built directly is private and
pickles by value. Nothing crosses a process boundary: this is not a real store.
"""

from __future__ import annotations

import hashlib
import io
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, BinaryIO, Iterator

from deeptrawl.errors import ObjectNotFound
from deeptrawl.storage.base import ObjectInfo, ObjectStore, safe_key


@dataclass(frozen=True)
class _Blob:
    data: bytes
    etag: str
    mtime: datetime
    content_type: str | None


class MemoryStore(ObjectStore):
    def __init__(self, root: str = "memory://test") -> None:
        self.root = root.rstrip("/")
        self._blobs: dict[str, _Blob] = {}
        self._lock = threading.Lock()
        self._shared = False

    def __repr__(self) -> str:
        return f"MemoryStore({self.root!r}, {len(self._blobs)} objects)"

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        with self._lock:
            items = sorted((k, b) for k, b in self._blobs.items() if k.startswith(prefix))
        for key, blob in items:
            yield ObjectInfo(
                key=key,
                uri=self.uri_for(key),
                size=len(blob.data),
                etag=blob.etag,
                mtime=blob.mtime,
            )

    def open(self, key: str) -> BinaryIO:
        with self._lock:
            blob = self._blobs.get(key)
        if blob is None:
            raise ObjectNotFound(f"object {self.uri_for(key)} does not exist")
        return io.BytesIO(blob.data)

    def write(self, key: str, data: bytes, content_type: str | None = None) -> str:
        key = safe_key(key)
        blob = _Blob(
            data=bytes(data),
            # S3's ETag of a simple put is the MD5 of the content.
            etag=hashlib.md5(data, usedforsecurity=False).hexdigest(),
            mtime=datetime.now(timezone.utc),
            content_type=content_type,
        )
        with self._lock:
            self._blobs[key] = blob
        return self.uri_for(key)

    def delete(self, key: str) -> None:
        with self._lock:
            self._blobs.pop(key, None)

    def uri_for(self, key: str) -> str:
        return f"{self.root}/{key}" if key else self.root

    def content_type(self, key: str) -> str | None:
        """The content type given to ``write`` (tests check that writers set one)."""
        with self._lock:
            blob = self._blobs.get(key)
        if blob is None:
            raise ObjectNotFound(f"object {self.uri_for(key)} does not exist")
        return blob.content_type

    def clear(self) -> None:
        with self._lock:
            self._blobs.clear()

    # --- pickling --------------------------------------------------------------------

    def __reduce__(self) -> Any:
        if self._shared:
            return (shared_memory_store, (self.root,))
        return (_restore, (self.root, dict(self._blobs)))


def _restore(root: str, blobs: dict[str, _Blob]) -> MemoryStore:
    store = MemoryStore(root)
    store._blobs.update(blobs)
    return store


_SHARED: dict[str, MemoryStore] = {}
_SHARED_LOCK = threading.Lock()


def shared_memory_store(uri: str) -> MemoryStore:
    """The process-wide store for ``uri`` (created empty on first use)."""
    root = uri.rstrip("/")
    with _SHARED_LOCK:
        store = _SHARED.get(root)
        if store is None:
            store = _SHARED[root] = MemoryStore(root)
            store._shared = True
        return store
