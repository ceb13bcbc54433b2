"""S3 (and S3-compatible servers: SeaweedFS, MinIO, Ceph) as an object store.

One boto3 client per store instance, created on first use: building a client costs
about 100 ms, and Beam's own ``s3://`` filesystem pays that per file. The client is not
pickled; an unpickled store (in a Beam worker) builds its own on first use.

botocore exceptions stop here. Transport failures become ``StorageUnreachable``, refused
credentials ``StorageAuthError``, a missing bucket or key ``ObjectNotFound``; callers
never see botocore types.

Keys ending in ``/`` are "folder markers" written by consoles and sync tools, not
objects: ``list`` skips them, as ``LocalStore`` skips directories.
"""

from __future__ import annotations

import io
from datetime import timezone
from typing import Any, BinaryIO, Iterator

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError as BotoConnectionError,
    CredentialRetrievalError,
    HTTPClientError,
    IncompleteReadError,
    NoCredentialsError,
    PartialCredentialsError,
    ProfileNotFound,
)

from deeptrawl.config import S3Settings
from deeptrawl.errors import (
    ConfigError,
    DeeptrawlError,
    ObjectNotFound,
    StorageAuthError,
    StorageError,
    StorageUnreachable,
)
from deeptrawl.storage.base import ObjectInfo, ObjectStore, safe_key

#: S3's own maximum (and default) number of keys per ListObjectsV2 page.
DEFAULT_PAGE_SIZE = 1000

_AUTH_CODES = frozenset(
    {
        "AccessDenied",
        "AllAccessDisabled",
        "ExpiredToken",
        "InvalidAccessKeyId",
        "InvalidToken",
        "SignatureDoesNotMatch",
        "TokenRefreshRequired",
        "403",
    }
)
_MISSING_KEY_CODES = frozenset({"NoSuchKey", "404", "NotFound"})


class S3Store(ObjectStore):
    """The objects in ``bucket`` under ``prefix``; keys are relative to the prefix."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        settings: S3Settings | None = None,
        *,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> None:
        if not bucket or "/" in bucket:
            raise ConfigError(f"invalid S3 bucket name {bucket!r}")
        if not 1 <= page_size <= DEFAULT_PAGE_SIZE:
            raise ConfigError(f"page_size must be in 1..{DEFAULT_PAGE_SIZE}, not {page_size}")
        self.bucket = bucket
        prefix = prefix.strip("/")
        #: The key prefix with its trailing slash ("" for a whole bucket).
        self.prefix = prefix + "/" if prefix else ""
        self.settings = settings if settings is not None else S3Settings()
        self.page_size = page_size
        self.root = f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
        self._client: Any = None

    def __repr__(self) -> str:
        return f"S3Store({self.root!r})"

    # --- pickling: the client stays behind --------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_client"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    # --- the client -------------------------------------------------------------------

    @property
    def client(self) -> Any:
        """The boto3 S3 client, built once per instance on first use."""
        if self._client is None:
            self._client = self._make_client()
        return self._client

    def _make_client(self) -> Any:
        s = self.settings
        config = Config(
            connect_timeout=s.connect_timeout_s,
            # "standard" mode counts the first try: max_attempts=1 means no retry.
            retries={"total_max_attempts": max(1, s.max_attempts), "mode": "standard"},
            # S3-compatible servers behind a custom endpoint rarely serve virtual hosts.
            s3={"addressing_style": "path"} if s.endpoint_url else None,
        )
        try:
            session = boto3.session.Session(profile_name=s.profile)
            return session.client(
                "s3", endpoint_url=s.endpoint_url, region_name=s.region, config=config
            )
        except ProfileNotFound as exc:
            raise ConfigError(f"AWS profile {s.profile!r} not found") from exc
        except (BotoCoreError, ValueError) as exc:
            raise ConfigError(f"cannot configure the S3 client: {exc}") from exc

    # --- ObjectStore ------------------------------------------------------------------

    def list(self, prefix: str = "", *, page_size: int | None = None) -> Iterator[ObjectInfo]:
        paginator = self.client.get_paginator("list_objects_v2")
        pages = paginator.paginate(
            Bucket=self.bucket,
            Prefix=self.prefix + prefix,
            PaginationConfig={"PageSize": page_size or self.page_size},
        )
        strip = len(self.prefix)
        try:
            for page in pages:
                for obj in page.get("Contents", ()):
                    full_key = obj["Key"]
                    key = full_key[strip:]
                    if not key or full_key.endswith("/"):
                        continue
                    etag = obj.get("ETag")
                    mtime = obj.get("LastModified")
                    yield ObjectInfo(
                        key=key,
                        uri=self.uri_for(key),
                        size=int(obj.get("Size", 0)),
                        etag=etag.strip('"') if etag else None,
                        mtime=mtime.astimezone(timezone.utc) if mtime else None,
                    )
        except (ClientError, BotoCoreError) as exc:
            raise self._map_error(exc, self.uri_for(prefix)) from exc

    def open(self, key: str) -> BinaryIO:
        uri = self.uri_for(key)
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self.prefix + key)
        except (ClientError, BotoCoreError) as exc:
            raise self._map_error(exc, uri) from exc
        return _Body(response["Body"], uri, self.settings.endpoint_url)

    def write(self, key: str, data: bytes, content_type: str | None = None) -> str:
        key = safe_key(key)
        uri = self.uri_for(key)
        extra = {"ContentType": content_type} if content_type else {}
        try:
            self.client.put_object(Bucket=self.bucket, Key=self.prefix + key, Body=data, **extra)
        except (ClientError, BotoCoreError) as exc:
            raise self._map_error(exc, uri) from exc
        return uri

    def delete(self, key: str) -> None:
        uri = self.uri_for(key)
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.prefix + safe_key(key))
        except (ClientError, BotoCoreError) as exc:
            raise self._map_error(exc, uri) from exc

    def uri_for(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.prefix}{key}"

    # --- error mapping ----------------------------------------------------------------

    def _map_error(self, exc: Exception, uri: str) -> DeeptrawlError:
        return map_s3_error(exc, uri=uri, bucket=self.bucket, endpoint=self.settings.endpoint_url)


def map_s3_error(
    exc: Exception, *, uri: str, bucket: str, endpoint: str | None = None
) -> DeeptrawlError:
    """The deeptrawl error for a botocore exception raised while touching ``uri``."""
    where = endpoint or "AWS S3"
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError, CredentialRetrievalError)):
        return StorageAuthError(
            f"no AWS credentials found for {uri} ({exc}); set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, a profile, or an instance role"
        )
    if isinstance(exc, (BotoConnectionError, HTTPClientError, IncompleteReadError)):
        return StorageUnreachable(f"cannot reach S3 endpoint {where} for {uri}: {exc}")
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in _AUTH_CODES or (status == 403 and not code):
            return StorageAuthError(f"S3 refused access to {uri} ({code}): check the credentials")
        if code == "NoSuchBucket":
            return ObjectNotFound(f"bucket {bucket!r} does not exist at {where}")
        if code in _MISSING_KEY_CODES:
            return ObjectNotFound(f"object {uri} does not exist")
        message = error.get("Message") or str(exc)
        return StorageError(f"S3 error {code or status} on {uri}: {message}")
    return StorageError(f"S3 error on {uri}: {exc}")


class _Body(io.RawIOBase):
    """The streaming body of one object, with read errors mapped like the rest."""

    def __init__(self, body: Any, uri: str, endpoint: str | None) -> None:
        super().__init__()
        self._body = body
        self._uri = uri
        self._endpoint = endpoint

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        try:
            return self._body.read(None if size is None or size < 0 else size)
        except (ClientError, BotoCoreError) as exc:
            raise self._mapped(exc) from exc
        except OSError as exc:  # urllib3 protocol errors while streaming
            raise StorageUnreachable(
                f"lost the connection while reading {self._uri}: {exc}"
            ) from exc

    def readall(self) -> bytes:
        return self.read(-1)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._body.close()
        super().close()

    def _mapped(self, exc: Exception) -> DeeptrawlError:
        bucket = self._uri.split("/", 3)[2]
        return map_s3_error(exc, uri=self._uri, bucket=bucket, endpoint=self._endpoint)
