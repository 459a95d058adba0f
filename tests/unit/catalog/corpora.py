"""Small corpora written in tmp dirs, and an independent reading of what their documents are."""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ledger.merkle import leaf_hash, tree_root

TEXTS = [
    "The quick brown fox jumps over the lazy dog, and that is the end of it.",
    "Der schnelle braune Fuchs springt über den faulen Hund, und das ist nicht alles.",
    "Le renard brun rapide saute par-dessus le chien paresseux et les chats dans la rue.",
    "Быстрая коричневая лиса прыгает через ленивую собаку, и это не всё, что он знает.",
    "敏捷的棕色狐狸跳过了懒狗。",
    "素早い茶色の狐がのろまな犬を飛び越えた。",
    "Ζωηρή καφέ αλεπού πηδάει πάνω από τον τεμπέλη σκύλο.",
    "Emoji 😀 and tabs\tand unicode ☃ in the middle of the text for the test.",
    "",
]


def texts(count: int) -> list[str]:
    """``count`` distinct documents drawn from TEXTS."""
    return [f"{TEXTS[i % len(TEXTS)]} #{i}" for i in range(count)]


def compress(data: bytes, compression: str | None) -> bytes:
    if compression == "gzip":
        return gzip.compress(data, mtime=0)
    if compression == "zstd":
        return bytes(pa.compress(data, codec="zstd", asbytes=True))
    return data


def write_bytes(path: Path, data: bytes, compression: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(compress(data, compression))
    return path


def jsonl_bytes(records: Iterable[Any]) -> bytes:
    return b"".join(json.dumps(r, ensure_ascii=False).encode() + b"\n" for r in records)


def write_jsonl(path: Path, records: Iterable[Any], compression: str | None = None) -> Path:
    return write_bytes(path, jsonl_bytes(records), compression)


def write_parquet(path: Path, columns: dict[str, Any], **kwargs: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns), path, **kwargs)
    return path


def root_of(documents: Sequence[bytes]) -> str:
    """RFC 6962 root with ledger.merkle.tree_root over leaf(SHA-256(document))."""
    return tree_root(leaf_hash(hashlib.sha256(d).digest()) for d in documents).hex()


def jsonl_documents(data: bytes, field: str = "text") -> list[bytes]:
    """Documents of JSON Lines bytes, read the obvious way."""
    return [
        json.loads(line)[field].encode()
        for line in data.decode().split("\n")
        if line.strip(" \t\r")
    ]


def text_documents(data: bytes) -> list[bytes]:
    """Documents of a text file in line mode: lines without LF and one CR, empty ones dropped."""
    lines = [line[:-1] if line.endswith(b"\r") else line for line in data.split(b"\n")]
    return [line for line in lines if line]
