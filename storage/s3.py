"""A content-addressed blob store in an S3 bucket (AWS, MinIO, Ceph, ...), through boto3.

A blob lives at ``<prefix>/sha256/ab/cd/<digest>``. Blobs smaller than ``multipart_threshold``
are hashed in memory and sent in one PutObject carrying their SHA-256, which S3 checks. Larger
ones go up as a multipart upload of ``part_size`` parts, each with its own SHA-256 checksum;
the whole-blob SHA-256 is computed locally as the parts go, and the upload is completed only if
it matches the digest (it is aborted on a mismatch or any failure), so no object ever becomes
visible under a digest with other bytes. Every botocore error is translated here.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, NoReturn

import boto3
import urllib3.exceptions
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ChecksumError,
    ClientError,
    ConnectionError,
    CredentialRetrievalError,
    FlexibleChecksumError,
    HTTPClientError,
    IncompleteReadError,
    NoCredentialsError,
    PartialCredentialsError,
)

from storage._streams import (
    CHUNK_SIZE,
    Rechunker,
    RunningDigest,
    Source,
    VerifiedMarks,
    check_range,
    check_size,
    chunks_of,
    exact_length,
    require_stored_size,
    verifying,
)
from storage.digests import ALGORITHM, blob_key, digest_from_key
from storage.errors import (
    BlobNotFound,
    InvalidRequest,
    StorageError,
    StorageUnavailable,
)
from storage.interfaces import BlobInfo, BlobReader

if TYPE_CHECKING:
    from botocore.response import StreamingBody
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef, HeadObjectOutputTypeDef

MiB = 1024 * 1024
MAX_PARTS = 10_000
MAX_PRESIGN_SECONDS = 7 * 24 * 3600  # SigV4 limit

_NOT_FOUND = frozenset({"NoSuchKey", "NotFound", "404"})
_UNAVAILABLE = frozenset(
    {
        "AccessDenied",
        "BadDigest",
        "ExpiredToken",
        "InternalError",
        "InvalidAccessKeyId",
        "InvalidDigest",
        "NoSuchBucket",
        "RequestTimeTooSkewed",
        "RequestTimeout",
        "ServiceUnavailable",
        "SignatureDoesNotMatch",
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "XAmzContentSHA256Mismatch",
    }
)
_TRANSIENT = (
    HTTPClientError,
    ConnectionError,
    IncompleteReadError,
    ChecksumError,
    FlexibleChecksumError,
    NoCredentialsError,
    PartialCredentialsError,
    CredentialRetrievalError,
)


class _Changed(StorageError):
    """A conditional read found another object than the one verified (HTTP 412)."""


def _error_code(exc: ClientError) -> tuple[str, int]:
    code = str(exc.response.get("Error", {}).get("Code", ""))
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
    return code, status


@contextlib.contextmanager
def _translated(action: str, digest: str | None = None) -> Iterator[None]:
    """The boundary: botocore errors become the storage error tree."""
    try:
        yield
    except ClientError as exc:
        _raise_for_client_error(exc, action, digest)
    except _TRANSIENT as exc:
        raise StorageUnavailable(f"S3 {action}: {exc}") from exc
    except BotoCoreError as exc:
        raise StorageError(f"S3 {action}: {exc}") from exc


def _raise_for_client_error(exc: ClientError, action: str, digest: str | None) -> NoReturn:
    code, status = _error_code(exc)
    not_found = code in _NOT_FOUND or (status == 404 and code != "NoSuchBucket")
    if digest is not None and not_found:
        raise BlobNotFound(digest) from None
    if code == "PreconditionFailed" or status == 412:
        raise _Changed(f"S3 {action}: the object changed") from None
    message = f"S3 {action}: {code or status} {exc.response.get('Error', {}).get('Message', '')}"
    if status >= 500 or code in _UNAVAILABLE:
        raise StorageUnavailable(message.rstrip()) from exc
    raise StorageError(message.rstrip()) from exc


def _b64_sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")


class S3Store:
    """Blobs in ``bucket`` under ``prefix``, through a boto3 S3 client.

    ``part_size`` must be at least 5 MiB on real S3 and MinIO (the last part may be smaller);
    blobs of ``multipart_threshold`` bytes or more go up in parts. When ``put`` is given the
    ``size``, the part size grows as needed to stay within S3's 10,000 parts. A client of
    your own should sign with SigV4 (``Config(signature_version="s3v4")``, as ``connect`` does)
    or its presigned URLs may use the legacy scheme.
    """

    def __init__(
        self,
        client: S3Client,
        bucket: str,
        prefix: str = "",
        *,
        part_size: int = 8 * MiB,
        multipart_threshold: int = 8 * MiB,
        chunk_size: int = CHUNK_SIZE,
        marks: int = 4096,
    ) -> None:
        if not bucket:
            raise InvalidRequest("an S3 store needs a bucket")
        for name, value in [
            ("part_size", part_size),
            ("multipart_threshold", multipart_threshold),
            ("chunk_size", chunk_size),
        ]:
            if value < 1:
                raise InvalidRequest(f"{name} must be positive, not {value}")
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._key_prefix = f"{self.prefix}/" if self.prefix else ""
        self._part_size = part_size
        self._threshold = multipart_threshold
        self._chunk_size = chunk_size
        self._verified = VerifiedMarks(marks)

    @classmethod
    def connect(
        cls,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        session_token: str | None = None,
        profile: str | None = None,
        addressing_style: Literal["auto", "virtual", "path"] | None = None,
        connect_timeout: float = 10,
        read_timeout: float = 60,
        max_attempts: int = 5,
        **options: Any,
    ) -> S3Store:
        """A store with its own client; unset settings come from boto3's usual environment
        (``AWS_ACCESS_KEY_ID``, ``AWS_ENDPOINT_URL``, ``~/.aws/config``, ...)."""
        config = Config(
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"max_attempts": max_attempts, "mode": "standard"},
            s3={"addressing_style": addressing_style or "auto"},
            signature_version="s3v4",
        )
        with _translated("creating a client"):
            session = boto3.session.Session(profile_name=profile)
            client = session.client(
                "s3",
                endpoint_url=endpoint_url,
                region_name=region,
                aws_access_key_id=access_key_id,
                aws_secret_access_key=secret_access_key,
                aws_session_token=session_token,
                config=config,
            )
        return cls(client, bucket, prefix, **options)

    def __repr__(self) -> str:
        return f"S3Store(bucket={self.bucket!r}, prefix={self.prefix!r})"

    def key_of(self, digest: str) -> str:
        """The object key the blob named ``digest`` is (or would be) stored under."""
        return self._key_prefix + blob_key(digest)

    # --- writing -------------------------------------------------------------------------

    def put(self, digest: str, source: Source, *, size: int | None = None) -> BlobInfo:
        check_size(size)
        key = self.key_of(digest)
        existing = self._head_or_none(key, digest)
        if existing is not None:
            stored = existing["ContentLength"]
            require_stored_size(digest, expected=size, stored=stored)
            return BlobInfo(digest, stored)
        running = RunningDigest(digest, size)
        stream = Rechunker(chunks_of(source, self._chunk_size))
        head = stream.read(self._threshold)
        if len(head) < self._threshold:
            running.update(head)
            running.require_match(f"refused sha256:{digest}")
            etag = self._put_whole(key, digest, head)
        else:
            stream.unread(head)
            etag = self._put_parts(key, stream, running)
        self._verified.mark(digest, (etag, running.size))
        return BlobInfo(digest, running.size)

    def _put_whole(self, key: str, digest: str, data: bytes) -> str:
        # S3 checks the bytes it received against ChecksumSHA256, which is the digest itself.
        checksum = base64.b64encode(bytes.fromhex(digest)).decode("ascii")
        with _translated(f"storing sha256:{digest}"):
            answer = self.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=data,
                ContentLength=len(data),
                ChecksumAlgorithm="SHA256",
                ChecksumSHA256=checksum,
            )
        return answer["ETag"]

    def _put_parts(self, key: str, stream: Rechunker, running: RunningDigest) -> str:
        digest = running.expected_digest
        with _translated(f"starting an upload of sha256:{digest}"):
            upload = self.client.create_multipart_upload(
                Bucket=self.bucket, Key=key, ChecksumAlgorithm="SHA256"
            )
        upload_id = upload["UploadId"]
        try:
            parts = self._upload_parts(key, upload_id, stream, running)
            running.require_match(f"refused sha256:{digest}")
            with _translated(f"completing the upload of sha256:{digest}"):
                done = self.client.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": parts},
                )
        except BaseException:
            self._abort_quietly(key, upload_id)
            raise
        return done["ETag"]

    def _upload_parts(
        self, key: str, upload_id: str, stream: Rechunker, running: RunningDigest
    ) -> list[CompletedPartTypeDef]:
        part_size = self._part_size_for(running.expected_size)
        parts: list[CompletedPartTypeDef] = []
        while part := stream.read(part_size):
            # Only the caller's source runs between these calls; its errors pass as they are.
            running.update(part)
            number = len(parts) + 1
            if number > MAX_PARTS:
                raise InvalidRequest(
                    f"sha256:{running.expected_digest} needs more than {MAX_PARTS} parts of "
                    f"{part_size} bytes: pass its size to put, or a larger part_size"
                )
            checksum = _b64_sha256(part)
            with _translated(f"uploading part {number} of sha256:{running.expected_digest}"):
                answer = self.client.upload_part(
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=part,
                    ContentLength=len(part),
                    ChecksumAlgorithm="SHA256",
                    ChecksumSHA256=checksum,
                )
            parts.append({"PartNumber": number, "ETag": answer["ETag"], "ChecksumSHA256": checksum})
        return parts

    def _part_size_for(self, size: int | None) -> int:
        if size is None:
            return self._part_size
        return max(self._part_size, math.ceil(size / MAX_PARTS))

    def _abort_quietly(self, key: str, upload_id: str) -> None:
        # Best effort: the original error matters more; remove_incomplete sweeps what is left.
        with contextlib.suppress(Exception):
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)

    # --- reading -------------------------------------------------------------------------

    def open(self, digest: str) -> BlobReader:
        key = self.key_of(digest)
        with _translated(f"reading sha256:{digest}", digest):
            answer = self.client.get_object(Bucket=self.bucket, Key=key)
        fingerprint = (answer["ETag"], answer["ContentLength"])
        body = answer["Body"]
        chunks = verifying(
            self._body_chunks(body, digest),
            digest=digest,
            on_verified=lambda: self._verified.mark(digest, fingerprint),
        )
        return BlobReader(BlobInfo(digest, answer["ContentLength"]), chunks, close=body.close)

    def read_range(self, digest: str, start: int, end: int) -> BlobReader:
        """Bytes ``[start, end)``, from a blob this process has verified whole.

        The first ranged read of a blob (per process) reads all of it to check its digest and
        remembers its ETag; later ranges are fetched with ``If-Match: <ETag>``, so an object
        replaced since is noticed (HTTP 412) and verified again.
        """
        key = self.key_of(digest)
        known = self._verified.get(digest)
        if isinstance(known, tuple) and start != end:
            etag, size = known
            check_range(start, end, size)
            try:
                return self._ranged(key, digest, etag=etag, size=size, start=start, end=end)
            except BlobNotFound:
                self._verified.forget(digest)
                raise
            except _Changed:
                self._verified.forget(digest)  # replaced since: verify the new one whole
        head = self._head(key, digest)
        etag, size = head["ETag"], head["ContentLength"]
        check_range(start, end, size)
        if start == end:
            return BlobReader(BlobInfo(digest, size), iter(()), start=start, end=end)
        try:
            self._verify_whole(key, digest, etag)
            return self._ranged(key, digest, etag=etag, size=size, start=start, end=end)
        except _Changed:
            raise StorageUnavailable(
                f"sha256:{digest} was replaced while it was being read; try again"
            ) from None

    def _verify_whole(self, key: str, digest: str, etag: str) -> None:
        with _translated(f"verifying sha256:{digest}", digest):
            answer = self.client.get_object(Bucket=self.bucket, Key=key, IfMatch=etag)
        body = answer["Body"]
        try:
            for _ in verifying(self._body_chunks(body, digest), digest=digest):
                pass
        finally:
            body.close()
        self._verified.mark(digest, (etag, answer["ContentLength"]))

    def _ranged(
        self, key: str, digest: str, *, etag: str, size: int, start: int, end: int
    ) -> BlobReader:
        with _translated(f"reading a range of sha256:{digest}", digest):
            answer = self.client.get_object(
                Bucket=self.bucket, Key=key, IfMatch=etag, Range=f"bytes={start}-{end - 1}"
            )
        body = answer["Body"]
        chunks = exact_length(self._body_chunks(body, digest), length=end - start, digest=digest)
        info = BlobInfo(digest, size)
        return BlobReader(info, chunks, start=start, end=end, close=body.close)

    def _body_chunks(self, body: StreamingBody, digest: str) -> Iterator[bytes]:
        chunks = body.iter_chunks(self._chunk_size)
        while True:
            try:
                with _translated(f"reading sha256:{digest}"):
                    chunk = next(chunks, None)
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                raise StorageUnavailable(f"S3 reading sha256:{digest}: {exc}") from exc
            if chunk is None:
                return
            if chunk:
                yield chunk

    def stat(self, digest: str) -> BlobInfo:
        return BlobInfo(digest, self._head(self.key_of(digest), digest)["ContentLength"])

    def exists(self, digest: str) -> bool:
        return self._head_or_none(self.key_of(digest), digest) is not None

    def fingerprint(self, digest: str) -> str:
        """ETag, size and last-modified time: objects are replaced whole, and a replacement
        changes the time (and the ETag, unless the bytes are equal)."""
        head = self._head(self.key_of(digest), digest)
        modified = head["LastModified"].isoformat()
        return f"s3:{head['ETag']}:{head['ContentLength']}:{modified}"

    def presigned_url(self, digest: str, *, expires_in: int) -> str | None:
        """A GET URL for the blob, valid ``expires_in`` seconds (1 s to 7 days)."""
        if isinstance(expires_in, bool) or not 1 <= expires_in <= MAX_PRESIGN_SECONDS:
            raise InvalidRequest(
                f"expires_in must be 1 to {MAX_PRESIGN_SECONDS} seconds, not {expires_in!r}"
            )
        key = self.key_of(digest)
        self._head(key, digest)
        with _translated(f"presigning sha256:{digest}", digest):
            return self.client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires_in
            )

    def _head(self, key: str, digest: str) -> HeadObjectOutputTypeDef:
        with _translated(f"looking up sha256:{digest}", digest):
            return self.client.head_object(Bucket=self.bucket, Key=key)

    def _head_or_none(self, key: str, digest: str) -> HeadObjectOutputTypeDef | None:
        try:
            return self._head(key, digest)
        except BlobNotFound:
            return None

    # --- sweeping ------------------------------------------------------------------------

    def delete(self, digest: str) -> None:
        key = self.key_of(digest)
        self._verified.forget(digest)
        with _translated(f"deleting sha256:{digest}"):
            self.client.delete_object(Bucket=self.bucket, Key=key)

    def iter_digests(self) -> Iterator[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=f"{self._key_prefix}{ALGORITHM}/"
        )
        with _translated("listing blobs"):
            for page in pages:
                for entry in page.get("Contents", []):
                    digest = digest_from_key(entry["Key"][len(self._key_prefix) :])
                    if digest is not None:
                        yield digest

    def remove_incomplete(self, *, older_than: float) -> int:
        """Abort multipart uploads under this store's prefix begun over ``older_than`` s ago."""
        cutoff = datetime.now(UTC) - timedelta(seconds=older_than)
        pages = self.client.get_paginator("list_multipart_uploads").paginate(
            Bucket=self.bucket, Prefix=f"{self._key_prefix}{ALGORITHM}/"
        )
        stale: list[tuple[str, str]] = []
        with _translated("listing incomplete uploads"):
            for page in pages:
                for upload in page.get("Uploads", []):
                    if upload["Initiated"] < cutoff:
                        stale.append((upload["Key"], upload["UploadId"]))
        for key, upload_id in stale:
            with _translated("aborting an incomplete upload"):
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        return len(stale)
