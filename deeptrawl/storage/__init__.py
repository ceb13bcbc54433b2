"""Object stores behind one narrow interface, chosen by URI.

* ``s3://bucket/prefix``   -> :class:`S3Store`
* ``memory://name``        -> :class:`MemoryStore` (one shared instance per URI in a process)
* ``/path``, ``./path``, ``file:///path`` -> :class:`LocalStore`
"""

from __future__ import annotations

import os
from urllib.parse import unquote, urlsplit

from deeptrawl.config import S3Settings
from deeptrawl.errors import ConfigError
from deeptrawl.storage.base import ObjectInfo, ObjectStore, safe_key
from deeptrawl.storage.local import LocalStore
from deeptrawl.storage.memory import MemoryStore, shared_memory_store
from deeptrawl.storage.s3 import S3Store

__all__ = [
    "LocalStore",
    "MemoryStore",
    "ObjectInfo",
    "ObjectStore",
    "S3Store",
    "open_store",
    "read_uri",
    "safe_key",
    "split_uri",
]


def open_store(uri: str, s3: S3Settings | None = None, *, create: bool = False) -> ObjectStore:
    """The store rooted at ``uri``. ``create`` makes a missing local folder (for outputs)."""
    scheme = _scheme(uri)
    if scheme == "s3":
        bucket, prefix = _s3_parts(uri)
        return S3Store(bucket, prefix, s3)
    if scheme == "memory":
        return shared_memory_store(uri)
    return LocalStore(_local_path(uri), create=create)


def split_uri(uri: str) -> tuple[str, str]:
    """Split the URI of one object into ``(store root URI, key)``.

    ``s3://b/p/x.jpg`` -> ``("s3://b/p", "x.jpg")``; ``/a/b/x.jpg`` -> ``("/a/b", "x.jpg")``;
    ``memory://name/d/x.jpg`` -> ``("memory://name", "d/x.jpg")`` (memory roots are one name).
    """
    scheme = _scheme(uri)
    if scheme == "s3":
        bucket, _ = _s3_parts(uri)
        path = uri.split("://", 1)[1].partition("/")[2]
        prefix, _, key = path.rpartition("/")
        if not key:
            raise ConfigError(f"{uri!r} names a bucket or folder, not an object")
        prefix = prefix.strip("/")
        return (f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"), key
    if scheme == "memory":
        parts = urlsplit(uri)
        key = parts.path.lstrip("/")
        if not key:
            raise ConfigError(f"{uri!r} names a store, not an object")
        return f"memory://{parts.netloc}", key
    path = os.path.abspath(_local_path(uri))
    folder, key = os.path.split(path)
    if not key:
        raise ConfigError(f"{uri!r} names a folder, not an object")
    return folder, key


def read_uri(uri: str, s3: S3Settings | None = None) -> bytes:
    """The bytes of the single object at ``uri``."""
    root, key = split_uri(uri)
    return open_store(root, s3).read(key)


def _scheme(uri: str) -> str:
    if "://" not in uri:
        return ""
    scheme = uri.split("://", 1)[0].lower()
    if scheme not in ("s3", "memory", "file"):
        raise ConfigError(f"unsupported storage URI {uri!r} (use s3://, file:// or a local path)")
    return scheme


def _s3_parts(uri: str) -> tuple[str, str]:
    rest = uri.split("://", 1)[1]
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise ConfigError(f"S3 URI {uri!r} has no bucket")
    return bucket, prefix.strip("/")


def _local_path(uri: str) -> str:
    if _scheme(uri) != "file":
        return uri
    parts = urlsplit(uri)
    if parts.netloc not in ("", "localhost"):
        raise ConfigError(f"file URI {uri!r} names a remote host")
    return unquote(parts.path)
