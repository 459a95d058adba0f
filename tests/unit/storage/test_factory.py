"""open_store: one URL chooses and configures the backend."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage import InvalidRequest, LocalStore, S3Store, open_store


def test_a_plain_path(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "blobs"))
    assert isinstance(store, LocalStore)
    assert store.root == tmp_path / "blobs"


@pytest.mark.parametrize("host", ["", "localhost"])
def test_a_file_url(tmp_path: Path, host: str) -> None:
    store = open_store(f"file://{host}{tmp_path}/with%20space", chunk_size=10)
    assert isinstance(store, LocalStore)
    assert store.root == tmp_path / "with space"


@pytest.mark.parametrize(
    ("url", "prefix"),
    [
        ("s3://bucket", ""),
        ("s3://bucket/", ""),
        ("s3://bucket/a/b/", "a/b"),
        ("s3://b/x%20y", "x y"),
    ],
)
def test_an_s3_url(url: str, prefix: str) -> None:
    store = open_store(
        url,
        region="eu-west-1",
        endpoint_url="http://127.0.0.1:9",
        access_key_id="key",
        secret_access_key="secret",
        part_size=5 * 1024 * 1024,
    )
    assert isinstance(store, S3Store)
    assert store.bucket == url.split("/")[2]
    assert store.prefix == prefix
    assert store.client.meta.region_name == "eu-west-1"
    assert store.client.meta.endpoint_url == "http://127.0.0.1:9"


@pytest.mark.parametrize(
    "url",
    [
        "",
        "ftp://host/path",
        "http://bucket/prefix",
        "s3://",
        "s3:///prefix",
        "s3://bucket/prefix?versioning=1",
        "file://otherhost/path",
        "file://",
    ],
)
def test_unsupported_urls(url: str) -> None:
    with pytest.raises(InvalidRequest):
        open_store(url)


def test_unknown_options(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest, match="option"):
        open_store(str(tmp_path), colour="blue")
    with pytest.raises(InvalidRequest, match="option"):
        open_store("s3://bucket", region="us-east-1", colour="blue")


@pytest.mark.parametrize("option", ["part_size", "multipart_threshold", "chunk_size"])
def test_bad_sizes(option: str) -> None:
    with pytest.raises(InvalidRequest, match=option):
        open_store("s3://bucket", region="us-east-1", **{option: 0})
