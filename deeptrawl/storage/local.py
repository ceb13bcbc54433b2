"""A folder on local disk as an object store.

Listing walks the tree lazily and yields keys in the same order S3 does (code-point
order of the whole key, which equals UTF-8 byte order), so a scan of a folder and of
the same files uploaded to a bucket visit objects in the same sequence. To get that
order without collecting the whole tree, each directory's entries are sorted with
directories compared as ``name + "/"``: ``a.jpg`` < ``a/b.jpg`` < ``a0.jpg``.

Symbolic links: a symlinked *file* is listed when its target lies inside the root;
symlinked *directories* are never descended into (that would risk loops and listing
one file under two keys). Nothing outside the root is ever read or written.
"""

from __future__ import annotations

import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO, Iterator

from deeptrawl.errors import ConfigError, ObjectNotFound, StorageAuthError, StorageError
from deeptrawl.storage.base import ObjectInfo, ObjectStore, safe_key

#: Prefix of the temporary files ``write`` renames into place; never listed.
TMP_PREFIX = ".deeptrawl-tmp-"


class LocalStore(ObjectStore):
    """Objects are the regular files under ``root_path``; keys are ``/``-separated."""

    def __init__(self, root_path: str | os.PathLike[str], *, create: bool = False) -> None:
        path = Path(root_path).expanduser()
        if create:
            path.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            raise ConfigError(f"source folder {str(path)!r} does not exist")
        if not path.is_dir():
            raise ConfigError(f"source {str(path)!r} is not a folder")
        self._root = path.resolve()
        self.root = str(self._root)

    def __repr__(self) -> str:
        return f"LocalStore({self.root!r})"

    # --- listing ---------------------------------------------------------------------

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        yield from self._walk(self._root, "", prefix)

    def _walk(self, directory: Path, dir_key: str, prefix: str) -> Iterator[ObjectInfo]:
        try:
            with os.scandir(directory) as it:
                entries = list(it)
        except FileNotFoundError:
            return  # removed while we walked
        except PermissionError as exc:
            raise StorageAuthError(f"permission denied listing {str(directory)!r}") from exc
        except OSError as exc:
            raise StorageError(f"cannot list {str(directory)!r}: {exc}") from exc

        sortable = []
        for entry in entries:
            if entry.name.startswith(TMP_PREFIX):
                continue
            is_dir = entry.is_dir(follow_symlinks=False)
            key = dir_key + entry.name
            sortable.append((key + "/" if is_dir else key, is_dir, entry))
        sortable.sort(key=lambda t: t[0])

        for sort_key, is_dir, entry in sortable:
            if is_dir:
                # Descend only where the subtree can hold keys that match the prefix.
                if sort_key.startswith(prefix) or prefix.startswith(sort_key):
                    yield from self._walk(Path(entry.path), sort_key, prefix)
                continue
            if not sort_key.startswith(prefix):
                continue
            info = self._file_info(entry, sort_key)
            if info is not None:
                yield info

    def _file_info(self, entry: os.DirEntry[str], key: str) -> ObjectInfo | None:
        try:
            if entry.is_symlink() and not self._inside(Path(os.path.realpath(entry.path))):
                return None
            if not entry.is_file(follow_symlinks=True):
                return None  # dangling link, socket, fifo, symlinked directory
            st = entry.stat(follow_symlinks=True)
        except FileNotFoundError:
            return None
        return ObjectInfo(
            key=key,
            uri=self.uri_for(key),
            size=st.st_size,
            etag=None,
            mtime=datetime.fromtimestamp(st.st_mtime, tz=timezone.utc),
        )

    # --- reading and writing ---------------------------------------------------------

    def open(self, key: str) -> BinaryIO:
        path = self._read_path(key)
        try:
            return open(path, "rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise ObjectNotFound(f"object {path} does not exist") from exc
        except PermissionError as exc:
            raise StorageAuthError(f"permission denied reading {path}") from exc
        except OSError as exc:
            raise StorageError(f"cannot read {path}: {exc}") from exc

    def write(self, key: str, data: bytes, content_type: str | None = None) -> str:
        key = safe_key(key)
        path = self._root / key
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not self._inside(path.parent.resolve()):
                # A symlinked directory inside the root points elsewhere.
                raise ConfigError(f"refusing to write {key!r}: it resolves outside {self.root}")
            fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, dir=path.parent)
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except PermissionError as exc:
            raise StorageAuthError(f"permission denied writing {path}") from exc
        except OSError as exc:
            raise StorageError(f"cannot write {path}: {exc}") from exc
        return self.uri_for(key)

    def delete(self, key: str) -> None:
        path = self._root / safe_key(key)
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot delete {path}: {exc}") from exc

    def uri_for(self, key: str) -> str:
        return str(self._root / key) if key else self.root

    # --- helpers ---------------------------------------------------------------------

    def _inside(self, resolved: Path) -> bool:
        return resolved == self._root or resolved.is_relative_to(self._root)

    def _read_path(self, key: str) -> Path:
        # Listed keys may hold characters ``safe_key`` refuses for writing (a backslash is
        # a legal file-name character here), so reads only refuse escapes from the root.
        parts = key.split("/")
        if not key or key.startswith("/") or "\x00" in key or ".." in parts:
            raise ObjectNotFound(f"no object {key!r} under {self.root}")
        path = self._root / key
        if not self._inside(Path(os.path.realpath(path))):
            raise ObjectNotFound(f"no object {key!r} under {self.root}")
        return path
