"""The object-store contract, stated once and run over every store, plus each store's own
edges. S3 runs against a real SeaweedFS server (auth, pagination, error mapping)."""

from __future__ import annotations

import hashlib
import os
import pickle
import socket
from datetime import timezone

import pytest
from botocore.exceptions import ClientError

from deeptrawl.config import S3Settings
from deeptrawl.errors import (
    ConfigError,
    ObjectNotFound,
    StorageAuthError,
    StorageUnreachable,
)
from deeptrawl.storage import (
    LocalStore,
    MemoryStore,
    ObjectStore,
    S3Store,
    open_store,
    read_uri,
    split_uri,
)
from deeptrawl.storage.local import TMP_PREFIX


@pytest.fixture
def aws_env(monkeypatch, tmp_path):
    """Isolate the AWS credential chain from the machine; returns a function that sets keys."""
    for var in list(os.environ):
        if var.startswith("AWS_"):
            monkeypatch.delenv(var)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")

    def use(env: dict[str, str]) -> None:
        for key, value in env.items():
            monkeypatch.setenv(key, value)

    return use


@pytest.fixture
def s3_store(s3_bucket, aws_env):
    server, bucket = s3_bucket
    aws_env(server.aws_env())
    return S3Store(bucket, "archive/2024", server.s3_settings())


@pytest.fixture(params=["local", "memory", "s3"])
def store(request, tmp_path) -> ObjectStore:
    if request.param == "local":
        return LocalStore(tmp_path)
    if request.param == "memory":
        return MemoryStore()
    return request.getfixturevalue("s3_store")


# --- the contract ---------------------------------------------------------------------


def test_write_read_round_trip(store):
    uri = store.write("a/b/photo.jpg", b"\xff\xd8 jpeg bytes", content_type="image/jpeg")
    assert uri == store.uri_for("a/b/photo.jpg")
    assert store.read("a/b/photo.jpg") == b"\xff\xd8 jpeg bytes"
    assert store.exists("a/b/photo.jpg")
    assert not store.exists("a/b/photo")
    [info] = store.list()
    assert (info.key, info.uri, info.size) == ("a/b/photo.jpg", uri, 13)
    assert info.mtime is not None and info.mtime.tzinfo is not None
    assert info.mtime.utcoffset() == timezone.utc.utcoffset(None)


def test_write_replaces(store):
    store.write("x.bin", b"first")
    store.write("x.bin", b"second, longer")
    assert store.read("x.bin") == b"second, longer"
    assert [i.size for i in store.list()] == [14]


def test_delete(store):
    store.write("a/x.bin", b"x")
    store.write("a/y.bin", b"y")
    store.delete("a/x.bin")
    store.delete("a/x.bin")  # already gone: not an error
    assert [i.key for i in store.list("a/")] == ["a/y.bin"]


KEYS = ["b.jpg", "a/b/c.jpg", "a/bc.jpg", "a/b.jpg", "a/a.jpg", "a.jpg", "a0.jpg"]


def in_listing_order(store: ObjectStore, keys: list[str]) -> list[str]:
    """The order ``store.list`` yields ``keys`` in.

    AWS S3 (and LocalStore, MemoryStore) list in UTF-8 byte order of the whole key:
    "." < "/" < "0", so ``a.jpg`` < ``a/b.jpg`` < ``a0.jpg``. SeaweedFS 4.48 does not: its
    filer walks directories, comparing one path segment at a time, so ``a/...`` comes
    before ``a.jpg``. Pagination is still complete and stable. Code that resumes a listing
    "after key K" must not assume byte order from every S3 server.
    """
    if isinstance(store, S3Store):  # SeaweedFS
        return sorted(keys, key=lambda k: k.split("/"))
    return sorted(keys)


def test_list_is_in_key_order(store):
    for key in KEYS:
        store.write(key, key.encode())
    listed = [i.key for i in store.list()]
    assert listed == in_listing_order(store, KEYS)
    if isinstance(store, S3Store):
        assert listed == ["a/a.jpg", "a/b/c.jpg", "a/b.jpg", "a/bc.jpg", "a.jpg", "a0.jpg", "b.jpg"]
    else:
        assert listed == ["a.jpg", "a/a.jpg", "a/b.jpg", "a/b/c.jpg", "a/bc.jpg", "a0.jpg", "b.jpg"]


def test_prefix_is_a_string_prefix(store):
    for key in KEYS:
        store.write(key, key.encode())

    def listed(prefix: str) -> list[str]:
        return [i.key for i in store.list(prefix)]

    assert listed("a/b") == in_listing_order(store, ["a/b.jpg", "a/b/c.jpg", "a/bc.jpg"])
    assert listed("a/b/") == ["a/b/c.jpg"]
    assert listed("a") == in_listing_order(store, [k for k in KEYS if k.startswith("a")])
    assert listed("zzz") == []


def test_names_with_spaces_and_unicode(store):
    keys = ["holiday 2024/Straße café.jpg", "日本/写真 1.png", "emoji 🙂.gif"]
    for key in keys:
        store.write(key, key.encode())
    listed = [i.key for i in store.list()]
    assert listed == in_listing_order(store, keys)
    for key in keys:
        assert store.read(key) == key.encode()


@pytest.mark.parametrize("bad", ["../x", "/abs", "a/../../b", "a//b", "./a", "a/", "", "a\\b"])
def test_write_refuses_unsafe_keys(store, bad):
    with pytest.raises(ConfigError, match="unsafe key"):
        store.write(bad, b"x")
    assert list(store.list()) == []


def test_open_streams(store):
    data = bytes(range(256)) * 4096  # 1 MiB
    store.write("big.bin", data)
    chunks = []
    with store.open("big.bin") as stream:
        while chunk := stream.read(65536):
            assert len(chunk) <= 65536
            chunks.append(chunk)
    assert b"".join(chunks) == data
    assert len(chunks) >= 16


def test_missing_object(store):
    store.write("there.jpg", b"x")
    with pytest.raises(ObjectNotFound):
        store.open("not-there.jpg")


# --- LocalStore -----------------------------------------------------------------------


def test_local_missing_root(tmp_path):
    with pytest.raises(ConfigError, match="source folder .* does not exist"):
        LocalStore(tmp_path / "nope")
    with pytest.raises(ConfigError, match="does not exist"):
        open_store(str(tmp_path / "nope"))
    assert LocalStore(tmp_path / "made", create=True).root == str(tmp_path / "made")


def test_local_uris_and_layout(tmp_path):
    store = LocalStore(tmp_path)
    uri = store.write("d/e/f.txt", b"hi")
    assert uri == str(tmp_path / "d" / "e" / "f.txt") and os.path.isabs(uri)
    assert (tmp_path / "d" / "e" / "f.txt").read_bytes() == b"hi"
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(TMP_PREFIX)]
    (tmp_path / "empty-dir").mkdir()
    (tmp_path / f"{TMP_PREFIX}leftover").write_bytes(b"crash debris")
    assert [i.key for i in store.list()] == ["d/e/f.txt"]
    assert [i.etag for i in store.list()] == [None]


def test_local_symlinks_stay_inside_root(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"secret")
    root = tmp_path / "root"
    root.mkdir()
    (root / "real.txt").write_bytes(b"real")
    (root / "link-in.txt").symlink_to(root / "real.txt")
    (root / "link-out.txt").symlink_to(outside / "secret.txt")
    (root / "dir-out").symlink_to(outside, target_is_directory=True)
    (root / "loop").symlink_to(root, target_is_directory=True)
    store = LocalStore(root)
    assert [i.key for i in store.list()] == ["link-in.txt", "real.txt"]
    with pytest.raises(ObjectNotFound):
        store.open("link-out.txt")
    with pytest.raises(ObjectNotFound):
        store.open("../outside/secret.txt")
    with pytest.raises(ConfigError, match="outside"):
        store.write("dir-out/planted.txt", b"x")
    assert not (outside / "planted.txt").exists()


def test_file_uris_and_split(tmp_path):
    (tmp_path / "sub dir").mkdir()
    (tmp_path / "sub dir" / "x.jpg").write_bytes(b"jpeg")
    assert isinstance(open_store(f"file://{tmp_path}"), LocalStore)
    assert split_uri(str(tmp_path / "sub dir" / "x.jpg")) == (str(tmp_path / "sub dir"), "x.jpg")
    assert read_uri(f"file://{tmp_path}/sub%20dir/x.jpg") == b"jpeg"
    assert read_uri(str(tmp_path / "sub dir" / "x.jpg")) == b"jpeg"
    with pytest.raises(ObjectNotFound):
        read_uri(str(tmp_path / "sub dir" / "y.jpg"))


# --- MemoryStore and open_store -------------------------------------------------------


def test_open_store_by_uri():
    assert split_uri("s3://bkt/p/q/x.jpg") == ("s3://bkt/p/q", "x.jpg")
    assert split_uri("s3://bkt/x.jpg") == ("s3://bkt", "x.jpg")
    assert split_uri("memory://m/d/x.jpg") == ("memory://m", "d/x.jpg")
    s3 = open_store("s3://bkt/p/q/", S3Settings(region="eu-west-1"))
    assert isinstance(s3, S3Store) and s3.root == "s3://bkt/p/q"
    assert s3.uri_for("x.jpg") == "s3://bkt/p/q/x.jpg"
    assert open_store("s3://bkt").uri_for("x.jpg") == "s3://bkt/x.jpg"
    shared = open_store("memory://shared-test")
    assert open_store("memory://shared-test") is shared
    shared.write("k", b"v")
    assert read_uri("memory://shared-test/k") == b"v"
    assert pickle.loads(pickle.dumps(shared)) is shared
    private = MemoryStore()
    private.write("k", b"v")
    copy = pickle.loads(pickle.dumps(private))
    assert copy is not private and copy.read("k") == b"v"
    for bad in ("gs://bkt/x", "s3://", "s3:///x"):
        with pytest.raises(ConfigError):
            open_store(bad)
    with pytest.raises(ConfigError):
        split_uri("s3://bkt/dir/")


# --- S3Store against SeaweedFS --------------------------------------------------------


def test_s3_keys_are_relative_to_the_prefix(s3_bucket, s3_store):
    server, bucket = s3_bucket
    raw = server.client()
    raw.put_object(Bucket=bucket, Key="archive/2024/in.jpg", Body=b"in")
    raw.put_object(Bucket=bucket, Key="archive/2024x/sibling.jpg", Body=b"no")
    raw.put_object(Bucket=bucket, Key="other/out.jpg", Body=b"no")
    raw.put_object(Bucket=bucket, Key="archive/2024/folder/", Body=b"")  # console "folder"
    s3_store.write("new.png", b"png", content_type="image/png")
    infos = list(s3_store.list())
    assert [i.key for i in infos] == ["in.jpg", "new.png"]
    assert infos[0].uri == f"s3://{bucket}/archive/2024/in.jpg"
    assert infos[0].etag == hashlib.md5(b"in").hexdigest()  # quotes stripped
    head = raw.head_object(Bucket=bucket, Key="archive/2024/new.png")
    assert head["ContentType"] == "image/png"
    assert infos[1].etag == head["ETag"].strip('"')


def test_s3_pagination(s3_store):
    keys = [f"k{i}.jpg" for i in range(5)]
    for key in keys:
        s3_store.write(key, b"x")
    requests = []
    s3_store.client.meta.events.register(
        "before-send.s3.ListObjectsV2", lambda request, **_: requests.append(request.url)
    )
    assert [i.key for i in s3_store.list(page_size=2)] == keys
    assert len(requests) == 3
    requests.clear()
    small = S3Store(s3_store.bucket, "archive/2024", s3_store.settings, page_size=2)
    small.client.meta.events.register(
        "before-send.s3.ListObjectsV2", lambda request, **_: requests.append(request.url)
    )
    assert [i.key for i in small.list("k")] == keys
    assert len(requests) == 3


def test_s3_store_pickles_without_its_client(s3_store):
    s3_store.write("p.jpg", b"pickled")
    assert s3_store._client is not None
    clone = pickle.loads(pickle.dumps(s3_store))
    assert clone._client is None
    assert clone.read("p.jpg") == b"pickled"
    assert clone.client is clone.client  # one client per instance


def test_s3_read_uri(s3_store, s3_bucket):
    server, bucket = s3_bucket
    s3_store.write("dir/x.jpg", b"by uri")
    assert read_uri(f"s3://{bucket}/archive/2024/dir/x.jpg", server.s3_settings()) == b"by uri"


def test_s3_dot_segments_and_odd_keys(s3_bucket, s3_store):
    """What SeaweedFS 4.48 does with odd keys written by other tools.

    ``.``/``..`` segments are refused at upload; ``//`` is folded and a leading ``/``
    dropped. (AWS itself stores ``a/../evil.jpg`` verbatim; S3Store never resolves
    keys, so such a key is just a name to list and read.)
    """
    server, bucket = s3_bucket
    raw = server.client()
    for key in ("archive/2024/a/../evil.jpg", "archive/2024/./x.jpg", "archive/2024/z/.."):
        with pytest.raises(ClientError) as err:
            raw.put_object(Bucket=bucket, Key=key, Body=b"evil")
        assert err.value.response["Error"]["Code"] == "InvalidRequest"
    raw.put_object(Bucket=bucket, Key="archive/2024/p//q.jpg", Body=b"double slash")
    raw.put_object(Bucket=bucket, Key="/archive/2024/lead.jpg", Body=b"leading slash")
    infos = list(s3_store.list())
    assert [i.key for i in infos] == ["lead.jpg", "p/q.jpg"]
    assert [s3_store.read(i.key) for i in infos] == [b"leading slash", b"double slash"]


def test_s3_wrong_secret(s3_bucket, aws_env):
    server, bucket = s3_bucket
    aws_env({**server.aws_env(), "AWS_SECRET_ACCESS_KEY": "wrong"})
    store = S3Store(bucket, "", server.s3_settings())
    with pytest.raises(StorageAuthError, match="SignatureDoesNotMatch"):
        list(store.list())
    with pytest.raises(StorageAuthError):
        store.write("x.jpg", b"x")
    aws_env({**server.aws_env(), "AWS_ACCESS_KEY_ID": "nobody"})
    with pytest.raises(StorageAuthError, match="InvalidAccessKeyId"):
        S3Store(bucket, "", server.s3_settings()).read("x.jpg")


def test_s3_no_credentials(s3_bucket, aws_env):
    server, bucket = s3_bucket
    store = S3Store(bucket, "", server.s3_settings())
    with pytest.raises(StorageAuthError, match="no AWS credentials found"):
        list(store.list())


def test_s3_missing_bucket(s3_server, s3_store):
    store = S3Store("no-such-bucket-here", "p", s3_store.settings)
    with pytest.raises(ObjectNotFound, match="bucket 'no-such-bucket-here' does not exist"):
        list(store.list())
    with pytest.raises(ObjectNotFound, match="does not exist"):
        store.read("x.jpg")


def test_s3_missing_key(s3_store):
    with pytest.raises(ObjectNotFound, match=r"object s3://.*/archive/2024/gone.jpg does not"):
        s3_store.open("gone.jpg")


def test_s3_unreachable(aws_env):
    aws_env({"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"})
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again below: nothing listens there
    settings = S3Settings(
        endpoint_url=f"http://127.0.0.1:{port}",
        region="us-east-1",
        connect_timeout_s=0.5,
        max_attempts=1,
    )
    store = S3Store("bkt", "", settings)
    with pytest.raises(StorageUnreachable, match="cannot reach S3 endpoint"):
        list(store.list())
    with pytest.raises(StorageUnreachable):
        store.read("x.jpg")
    with pytest.raises(StorageUnreachable):
        store.write("x.jpg", b"x")
