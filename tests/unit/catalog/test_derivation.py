"""catalog.derivation: what the exchange's workers derive from a stored file, and how they start."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from catalog.derivation import derive_file
from catalog.errors import IngestError
from catalog.ingest import ingest_file
from catalog.manifest import FileManifest
from catalog.overlap import FileSketch
from ledger.canonical import canonical_bytes, parse_json

ROOT = Path(__file__).resolve().parents[3]


def corpus_file(tmp_path: Path) -> Path:
    path = tmp_path / "web.jsonl"
    with path.open("w") as handle:
        for i in range(50):
            handle.write(json.dumps({"text": f"a document about cats and dogs, number {i}"}) + "\n")
    return path


def test_derive_file_is_the_manifest_and_sketch_of_one_read(tmp_path: Path) -> None:
    path = corpus_file(tmp_path)
    expected = ingest_file(path, name="web.jsonl")
    manifest, sketch = derive_file(str(path), expected.sha256, "web.jsonl", "field:text")
    assert manifest == canonical_bytes(expected.to_json())
    assert FileManifest.from_json(parse_json(manifest)) == expected
    found = FileSketch.from_bytes(sketch, name="web.jsonl")
    assert found.records == 50


def test_derive_file_refuses_bytes_of_another_digest(tmp_path: Path) -> None:
    path = corpus_file(tmp_path)
    with pytest.raises(IngestError, match="the stored bytes hash to"):
        derive_file(str(path), "0" * 64, "web.jsonl", "field:text")


PROBE = """
import sys
from concurrent.futures import ProcessPoolExecutor
from catalog.derivation import PRELOAD
from catalog.ingest import pool_context

context = pool_context(preload=[PRELOAD])
assert context.get_start_method() == "forkserver", context.get_start_method()
with ProcessPoolExecutor(1, mp_context=context) as pool:
    tables = pool.submit(eval, "__import__('catalog.overlap').overlap._fold_table.cache_info()[3]")
    stack = pool.submit(eval, "sorted({'sqlmodel', 'fastapi'} & set(__import__('sys').modules))")
    print(tables.result(), stack.result())
"""


def test_deriving_workers_start_with_the_sketch_tables_and_without_the_web_stack() -> None:
    """A fresh process (its fork server not yet started), as the exchange's server is: the
    workers forked for derivations have the overlap tables built before their first file, and
    never import the exchange's web and database modules."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "[]"]
