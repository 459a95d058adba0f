"""Choosing a store from one URL: the one place where a backend is picked from settings."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

from storage.errors import InvalidRequest
from storage.interfaces import BlobStore
from storage.local import LocalStore


def open_store(url: str, **options: Any) -> BlobStore:
    """The store ``url`` names, built with ``options``.

    - ``/srv/blobs``, ``./blobs`` or ``file:///srv/blobs``: a ``LocalStore`` there
      (options: ``chunk_size``, ``marks``).
    - ``s3://bucket`` or ``s3://bucket/prefix``: an ``S3Store`` (options: ``endpoint_url``,
      ``region``, ``access_key_id``, ``secret_access_key``, ``session_token``, ``profile``,
      ``addressing_style``, timeouts, ``part_size``, ``multipart_threshold``, ...; whatever is
      not given comes from boto3's usual environment).
    """
    parts = urlsplit(url)
    try:
        if parts.scheme == "s3":
            if not parts.netloc or parts.query or parts.fragment:
                raise InvalidRequest(f"an S3 store URL is s3://bucket[/prefix], not {url!r}")
            from storage.s3 import S3Store  # boto3 loads slowly: only for an S3 store

            return S3Store.connect(parts.netloc, unquote(parts.path), **options)
        if parts.scheme == "file":
            if parts.netloc not in ("", "localhost") or not parts.path:
                raise InvalidRequest(f"a file store URL is file:///absolute/path, not {url!r}")
            return LocalStore(unquote(parts.path), **options)
        if parts.scheme == "" and url:
            return LocalStore(url, **options)
    except TypeError as exc:  # an option the chosen store does not take
        raise InvalidRequest(f"bad option for the store at {url!r}: {exc}") from None
    raise InvalidRequest(f"unsupported blob store URL {url!r} (use a path, file:// or s3://)")
