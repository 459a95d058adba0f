"""The S3 store against moto's S3 server over HTTP: the shared contract, plus what only S3 has."""

from __future__ import annotations

import base64
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import BotoCoreError, ClientError

from storage import (
    BlobInfo,
    BlobNotFound,
    InvalidRequest,
    S3Store,
    StorageError,
    StorageUnavailable,
    digest_from_key,
    open_store,
)
from storage.s3 import MAX_PARTS
from tests.integration.storage.s3server import MIN_PART_SIZE, MotoServer, free_port
from tests.unit.storage.contract import BlobStoreContract, blob, in_chunks, sha256

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

PART = MIN_PART_SIZE
PREFIX = "corpus/blobs"


def make_store(server: MotoServer, bucket: str, prefix: str = PREFIX) -> S3Store:
    return S3Store(server.client(), bucket, prefix, part_size=PART, multipart_threshold=PART)


@dataclass
class S3Harness:
    store: S3Store
    raw: S3Client
    server: MotoServer
    large: int = PART + 100

    def reopen(self) -> S3Store:
        return make_store(self.server, self.store.bucket, self.store.prefix)

    def corrupt(self, digest: str, *, truncate: bool = False) -> None:
        key = self.store.key_of(digest)
        data = bytearray(self.raw.get_object(Bucket=self.store.bucket, Key=key)["Body"].read())
        if truncate:
            del data[-1]
        else:
            data[len(data) // 2] ^= 0x01
        self.raw.put_object(Bucket=self.store.bucket, Key=key, Body=bytes(data))

    def debris(self) -> list[str]:
        bucket = self.store.bucket
        uploads = self.raw.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        objects = self.raw.list_objects_v2(Bucket=bucket).get("Contents", [])
        return [f"upload {upload['Key']}" for upload in uploads] + [
            entry["Key"] for entry in objects if not self.is_blob(entry["Key"])
        ]

    def is_blob(self, key: str) -> bool:
        digest = digest_from_key(key.removeprefix(f"{self.store.prefix}/"))
        return digest is not None and self.store.key_of(digest) == key

    def leave_debris(self, digest: str) -> None:
        key = self.store.key_of(digest)
        upload = self.raw.create_multipart_upload(Bucket=self.store.bucket, Key=key)
        self.raw.upload_part(
            Bucket=self.store.bucket,
            Key=key,
            UploadId=upload["UploadId"],
            PartNumber=1,
            Body=b"half",
        )


@pytest.fixture
def s3_harness(moto_server: MotoServer, s3_bucket: str) -> S3Harness:
    return S3Harness(make_store(moto_server, s3_bucket), moto_server.client(), moto_server)


class TestS3Store(BlobStoreContract):
    @pytest.fixture
    def harness(self, s3_harness: S3Harness) -> S3Harness:
        return s3_harness


class Calls:
    """The S3 operations a client sends, with their parameters (botocore's event hooks)."""

    def __init__(self, client: S3Client) -> None:
        self.seen: list[tuple[str, dict[str, Any]]] = []
        client.meta.events.register("provide-client-params.s3.*", self._record)

    def _record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.seen.append((model.name, dict(params)))

    def names(self) -> list[str]:
        return [name for name, _ in self.seen]

    def of(self, name: str) -> list[dict[str, Any]]:
        return [params for seen, params in self.seen if seen == name]


def test_layout_under_the_prefix(s3_harness: S3Harness) -> None:
    data = b"corpus"
    digest = sha256(data)
    s3_harness.store.put(digest, data)
    keys = [
        o["Key"] for o in s3_harness.raw.list_objects_v2(Bucket=s3_harness.store.bucket)["Contents"]
    ]
    assert keys == [f"{PREFIX}/sha256/{digest[:2]}/{digest[2:4]}/{digest}"]


def test_without_a_prefix(moto_server: MotoServer, s3_bucket: str) -> None:
    store = make_store(moto_server, s3_bucket, prefix="")
    blobs = [blob(n, seed=n) for n in (1, PART * 2)]
    for data in blobs:
        store.put(sha256(data), data)
    raw = moto_server.client()
    raw.put_object(Bucket=s3_bucket, Key="notes/readme.txt", Body=b"not a blob")
    keys = sorted(o["Key"] for o in raw.list_objects_v2(Bucket=s3_bucket)["Contents"])
    blob_keys = sorted(f"sha256/{d[:2]}/{d[2:4]}/{d}" for d in map(sha256, blobs))
    assert keys == ["notes/readme.txt", *blob_keys]
    assert list(store.iter_digests()) == sorted(map(sha256, blobs))
    assert [store.open(sha256(data)).read_all() for data in blobs] == blobs


def test_prefixes_keep_stores_apart(moto_server: MotoServer, s3_bucket: str) -> None:
    one, two = make_store(moto_server, s3_bucket, "one"), make_store(moto_server, s3_bucket, "two")
    one.put(sha256(b"1"), b"1")
    assert not two.exists(sha256(b"1"))
    assert list(two.iter_digests()) == []


def test_a_small_blob_is_one_put_that_s3_can_check(s3_harness: S3Harness) -> None:
    calls = Calls(s3_harness.store.client)
    data = blob(PART - 1)
    digest = sha256(data)
    s3_harness.store.put(digest, data)
    assert calls.names() == ["HeadObject", "PutObject"]
    expected = base64.b64encode(bytes.fromhex(digest)).decode()
    assert calls.of("PutObject")[0]["ChecksumSHA256"] == expected
    head = s3_harness.raw.head_object(
        Bucket=s3_harness.store.bucket, Key=s3_harness.store.key_of(digest), ChecksumMode="ENABLED"
    )
    assert head["ChecksumSHA256"] == expected


def test_a_large_blob_goes_up_in_checked_parts(s3_harness: S3Harness) -> None:
    calls = Calls(s3_harness.store.client)
    data = blob(3 * PART + 1)
    digest = sha256(data)
    s3_harness.store.put(digest, in_chunks(data))
    assert calls.names() == [
        "HeadObject",
        "CreateMultipartUpload",
        "UploadPart",
        "UploadPart",
        "UploadPart",
        "UploadPart",
        "CompleteMultipartUpload",
    ]
    assert calls.of("CreateMultipartUpload")[0]["ChecksumAlgorithm"] == "SHA256"
    parts = calls.of("UploadPart")
    assert [p["ContentLength"] for p in parts] == [PART, PART, PART, 1]
    for number, part in enumerate(parts, 1):
        piece = data[(number - 1) * PART : number * PART]
        assert part["PartNumber"] == number
        assert part["ChecksumSHA256"] == base64.b64encode(bytes.fromhex(sha256(piece))).decode()
    completed = calls.of("CompleteMultipartUpload")[0]["MultipartUpload"]["Parts"]
    assert [p["ChecksumSHA256"] for p in completed] == [p["ChecksumSHA256"] for p in parts]
    head = s3_harness.raw.head_object(
        Bucket=s3_harness.store.bucket, Key=s3_harness.store.key_of(digest)
    )
    assert head["ETag"].endswith('-4"')


def test_exactly_the_threshold_goes_multipart(s3_harness: S3Harness) -> None:
    calls = Calls(s3_harness.store.client)
    data = blob(PART)
    s3_harness.store.put(sha256(data), data)
    assert calls.names().count("UploadPart") == 1
    assert s3_harness.store.open(sha256(data)).read_all() == data


def test_a_wrong_large_blob_is_aborted_before_completion(s3_harness: S3Harness) -> None:
    calls = Calls(s3_harness.store.client)
    data = blob(2 * PART + 1)
    with pytest.raises(StorageError):
        s3_harness.store.put(sha256(b"something else"), data)
    assert "CompleteMultipartUpload" not in calls.names()
    assert calls.names()[-1] == "AbortMultipartUpload"
    assert s3_harness.debris() == []


def test_the_part_size_grows_to_fit_the_part_limit(moto_server: MotoServer) -> None:
    store = make_store(moto_server, "unused")
    assert store._part_size_for(None) == PART
    assert store._part_size_for(PART * MAX_PARTS) == PART
    assert store._part_size_for(PART * MAX_PARTS + 1) == PART + 1
    assert store._part_size_for(10**12) == 100_000_000


def test_a_presigned_url_fetches_the_blob(s3_harness: S3Harness) -> None:
    data = blob(PART * 2 + 3)
    digest = sha256(data)
    s3_harness.store.put(digest, data)
    url = s3_harness.store.presigned_url(digest, expires_in=300)
    assert url is not None
    assert url.startswith(s3_harness.server.endpoint_url)
    assert "X-Amz-Expires=300" in url
    with urllib.request.urlopen(url, timeout=30) as answer:
        assert answer.read() == data


@pytest.mark.parametrize("expires_in", [0, -1, 7 * 24 * 3600 + 1, True])
def test_presigned_url_lifetimes_are_bounded(s3_harness: S3Harness, expires_in: int) -> None:
    digest = sha256(b"x")
    s3_harness.store.put(digest, b"x")
    with pytest.raises(InvalidRequest):
        s3_harness.store.presigned_url(digest, expires_in=expires_in)


def test_a_replaced_object_is_verified_again(s3_harness: S3Harness) -> None:
    data = blob(PART + 10)
    digest = sha256(data)
    store = s3_harness.store
    store.put(digest, data)
    calls = Calls(store.client)
    assert store.read_range(digest, 0, 4).read_all() == data[:4]
    assert calls.names() == ["GetObject"]  # marked verified by the put: one ranged GET
    s3_harness.raw.put_object(Bucket=store.bucket, Key=store.key_of(digest), Body=data)
    calls.seen.clear()
    assert store.read_range(digest, 4, 8).read_all() == data[4:8]
    assert calls.names() == ["GetObject", "HeadObject", "GetObject", "GetObject"]
    assert all(params.get("IfMatch") for params in calls.of("GetObject"))


def test_recent_uploads_are_kept(s3_harness: S3Harness) -> None:
    s3_harness.leave_debris(sha256(b"still being written"))
    (upload,) = s3_harness.raw.list_multipart_uploads(Bucket=s3_harness.store.bucket)["Uploads"]
    # moto reports one fixed, long past start time for every upload: count from it.
    age = (datetime.now(UTC) - upload["Initiated"]).total_seconds()
    assert s3_harness.store.remove_incomplete(older_than=age + 3600) == 0
    assert len(s3_harness.debris()) == 1
    assert s3_harness.store.remove_incomplete(older_than=age - 3600) == 1
    assert s3_harness.debris() == []


def test_open_store_with_options(moto_server: MotoServer, s3_bucket: str) -> None:
    store = open_store(f"s3://{s3_bucket}/some/prefix/", part_size=PART, **moto_server.options)
    assert isinstance(store, S3Store)
    assert (store.bucket, store.prefix) == (s3_bucket, "some/prefix")
    data = blob(PART * 2)
    assert store.put(sha256(data), data) == BlobInfo(sha256(data), len(data))
    assert store.open(sha256(data)).read_all() == data


def test_open_store_from_the_environment(
    moto_server: MotoServer, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    store = open_store(f"s3://{s3_bucket}")
    store.put(sha256(b"env"), b"env")
    assert store.open(sha256(b"env")).read_all() == b"env"


def assert_ours(exc: BaseException) -> None:
    assert isinstance(exc, StorageError)
    assert not isinstance(exc, BotoCoreError | ClientError)


def test_an_unreachable_server_is_unavailable() -> None:
    store = S3Store.connect(
        "bucket",
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        region="us-east-1",
        access_key_id="testing",
        secret_access_key="testing",
        max_attempts=1,
        connect_timeout=2,
    )
    digest = sha256(b"data")
    calls: list[Callable[[], object]] = [
        lambda: store.put(digest, b"data"),
        lambda: store.open(digest),
        lambda: store.read_range(digest, 0, 1),
        lambda: store.stat(digest),
        lambda: store.exists(digest),
        lambda: store.delete(digest),
        lambda: store.presigned_url(digest, expires_in=60),
        lambda: list(store.iter_digests()),
        lambda: store.remove_incomplete(older_than=0),
    ]
    for call in calls:
        with pytest.raises(StorageUnavailable) as caught:
            call()
        assert_ours(caught.value)


def test_a_missing_bucket_is_unavailable(moto_server: MotoServer) -> None:
    store = make_store(moto_server, "no-such-bucket-here")
    digest = sha256(b"data")
    calls: list[Callable[[], object]] = [
        lambda: store.put(digest, b"data"),
        lambda: store.put(digest, blob(PART * 2)),
        lambda: store.open(digest),
        lambda: list(store.iter_digests()),
    ]
    for call in calls:
        with pytest.raises(StorageUnavailable, match="NoSuchBucket") as caught:
            call()
        assert_ours(caught.value)


def test_a_vanished_blob_is_not_found(s3_harness: S3Harness) -> None:
    data = blob(PART + 1)
    digest = sha256(data)
    store = s3_harness.store
    store.put(digest, data)
    s3_harness.raw.delete_object(Bucket=store.bucket, Key=store.key_of(digest))
    calls: list[Callable[[], object]] = [
        lambda: store.read_range(digest, 0, 1),  # marked verified, yet gone
        lambda: store.open(digest),
        lambda: store.stat(digest),
    ]
    for call in calls:
        with pytest.raises(BlobNotFound) as caught:
            call()
        assert caught.value.__cause__ is None
        assert caught.value.__suppress_context__
