"""Digests, keys and the stream helpers the drivers share."""

from __future__ import annotations

import hashlib
import io

import pytest

from storage import IntegrityError, InvalidDigest, InvalidRequest, blob_key, digest_from_key
from storage import validate_digest as validate
from storage._streams import Rechunker, RunningDigest, VerifiedMarks, chunks_of, verifying

DIGEST = hashlib.sha256(b"corpus").hexdigest()


def test_keys() -> None:
    assert blob_key(DIGEST) == f"sha256/{DIGEST[:2]}/{DIGEST[2:4]}/{DIGEST}"
    assert digest_from_key(blob_key(DIGEST)) == DIGEST
    assert validate(DIGEST) == DIGEST


@pytest.mark.parametrize(
    "key",
    [
        f"sha256/{DIGEST[:2]}/{DIGEST[2:4]}/{DIGEST}/",
        f"sha256/{DIGEST[:2]}/00/{DIGEST}",
        f"sha512/{DIGEST[:2]}/{DIGEST[2:4]}/{DIGEST}",
        f"sha256/{DIGEST[:2]}/{DIGEST[2:4]}/{DIGEST.upper()}",
        f"x/sha256/{DIGEST[:2]}/{DIGEST[2:4]}/{DIGEST}",
        "sha256",
        "",
    ],
)
def test_other_keys_name_no_digest(key: str) -> None:
    assert digest_from_key(key) is None


def test_invalid_digests_are_storage_errors_not_value_errors() -> None:
    with pytest.raises(InvalidDigest) as caught:
        blob_key("nope")
    assert not isinstance(caught.value, ValueError)
    assert caught.value.digest == "nope"


def test_chunks_of_every_source() -> None:
    assert list(chunks_of(b"")) == []
    assert list(chunks_of(bytearray(b"ab"))) == [b"ab"]
    assert list(chunks_of(io.BytesIO(b"abcde"), 2)) == [b"ab", b"cd", b"e"]
    chunks: list[bytes | memoryview] = [b"a", b"", memoryview(b"bc")]
    assert list(chunks_of(chunks)) == [b"a", b"bc"]
    with pytest.raises(InvalidRequest):
        list(chunks_of("text"))  # type: ignore[arg-type]
    with pytest.raises(InvalidRequest):
        list(chunks_of([b"a", 1]))  # type: ignore[list-item]


def test_rechunker_cuts_exact_pieces() -> None:
    stream = Rechunker(iter([b"abc", b"defgh", b"i"]))
    assert stream.read(4) == b"abcd"
    stream.unread(b"cd")
    assert stream.read(2) == b"cd"
    assert stream.read(4) == b"efgh"
    assert stream.read(4) == b"i"
    assert stream.read(4) == b""


def test_running_digest_stops_at_once_past_the_named_size() -> None:
    running = RunningDigest(DIGEST, 6)
    running.update(b"corpus")
    running.require_match("check")
    with pytest.raises(IntegrityError) as caught:
        running.update(b"!")
    assert caught.value.expected_size == 6


def test_verifying_raises_only_after_the_last_chunk() -> None:
    seen: list[bytes] = []
    marked: list[bool] = []
    stream = verifying(
        iter([b"corp", b"us!"]), digest=DIGEST, on_verified=lambda: marked.append(True)
    )
    with pytest.raises(IntegrityError) as caught:
        for chunk in stream:
            seen.append(chunk)
    assert seen == [b"corp", b"us!"]
    assert caught.value.actual_digest == hashlib.sha256(b"corpus!").hexdigest()
    assert marked == []
    assert list(
        verifying(iter([b"corp", b"us"]), digest=DIGEST, on_verified=lambda: marked.append(True))
    ) == [b"corp", b"us"]
    assert marked == [True]


def test_verified_marks_are_bounded() -> None:
    marks = VerifiedMarks(2)
    marks.mark("a", 1)
    marks.mark("b", 2)
    assert marks.get("a") == 1  # now the most recent
    marks.mark("c", 3)
    assert (marks.get("a"), marks.get("b"), marks.get("c")) == (1, None, 3)
    marks.forget("a")
    assert marks.get("a") is None
