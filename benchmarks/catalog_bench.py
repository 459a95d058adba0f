"""Catalogue benchmarks: publishing a ~1 GiB corpus end to end, and search over 100,000 datasets.

    . .venv/bin/activate
    python benchmarks/catalog_bench.py                          # everything (about 30-60 min)
    python benchmarks/catalog_bench.py --size-gib 0.25 --only ingest,publish-local
    python benchmarks/catalog_bench.py --only search-sqlite --datasets 20000

Benchmarks (``--only``, comma-separated):

- ``ingest``: ``catalog.ingest.ingest`` (workers=2) over the corpus, beside ``sha256sum``.
- ``publish-local`` / ``publish-s3`` (``publish`` = both): ``exchange.publisher.publish_corpus``
  against a real server in another process (this script's ``_serve`` mode: ``create_app`` under
  uvicorn, as ``corpusx serve`` does, with timers wrapped around the server's verification,
  blob store and transaction), beside ``sha256sum`` over the same files in the same run. The S3
  store is moto's server (``python -m moto.server``) on a loopback port.
- ``profile``: cProfile of ``ingest_file`` on one file of each format (the code both the client's
  ingest and the server's verification run).
- ``search-sqlite`` / ``search-postgres`` (``search`` = both): 100,000 datasets inserted with
  ``catalog.services.create_dataset``, then ``catalog.search.search`` timed in-process for a mix
  of queries, and ``GET /datasets`` through the HTTP API for the end-to-end figure.

Corpora and data dirs live in a temporary directory under /tmp (removed at the end unless
``--keep``); PostgreSQL databases are named ``corpusx_bench_cat_*`` and dropped at the end.
Results go to ``benchmarks/results/catalog-YYYY-MM-DD.md`` (+ ``.json``). No figure is asserted:
the machine is shared and noisy, so compare the ratios measured side by side in one run.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import functools
import gc
import hashlib
import io
import json
import os
import platform
import pstats
import resource
import shlex
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python benchmarks/catalog_bench.py` from anywhere
    sys.path.insert(0, str(ROOT))

from benchmarks.meta import git as _git  # noqa: E402
from benchmarks.meta import version as _version  # noqa: E402

GiB = 1 << 30
MiB = 1 << 20
PG_ADMIN = os.environ.get("CORPUSX_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
ALL = (
    "ingest",
    "publish-local",
    "publish-s3",
    "profile",
    "overlap",
    "search-sqlite",
    "search-postgres",
)
ALIASES = {
    "publish": ("publish-local", "publish-s3"),
    "search": ("search-sqlite", "search-postgres"),
}
TIMINGS_ENV = "CATALOG_BENCH_TIMINGS"
PROFILE_ENV = "CATALOG_BENCH_PROFILE_DIR"
S3_CREDENTIALS = {"access_key_id": "testing", "secret_access_key": "testing"}
S3_REGION = "us-east-1"


def log(message: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", flush=True)


# =============================================================================================
# Text: random words from a fixed vocabulary, Zipf-distributed, with a seeded RNG
# =============================================================================================

COMMON = [
    "the",
    "of",
    "and",
    "to",
    "in",
    "a",
    "is",
    "that",
    "for",
    "it",
    "as",
    "was",
    "with",
    "be",
    "by",
    "on",
    "not",
    "he",
    "this",
    "are",
    "or",
    "his",
    "from",
    "at",
    "which",
    "but",
    "have",
    "an",
    "they",
    "you",
    "were",
    "her",
    "she",
    "there",
    "been",
    "one",
    "all",
    "we",
    "their",
    "has",
    "would",
    "when",
    "if",
    "so",
    "can",
    "no",
    "what",
    "more",
    "out",
    "up",
    "about",
    "into",
    "them",
    "some",
    "could",
    "time",
    "new",
    "other",
    "than",
    "only",
    "its",
    "also",
    "may",
    "after",
    "first",
    "two",
    "over",
    "such",
    "most",
    "these",
    "many",
    "where",
    "through",
    "years",
    "should",
    "between",
    "each",
    "used",
    "during",
    "very",
    "under",
]
# Frequent content words (no English stop words, so PostgreSQL's 'english' configuration keeps
# them): the "common word" queries draw from these.
CONTENT = [
    "data",
    "people",
    "state",
    "world",
    "system",
    "public",
    "market",
    "study",
    "report",
    "water",
    "health",
    "city",
    "music",
    "research",
    "government",
    "company",
    "school",
    "history",
    "language",
    "model",
    "network",
    "energy",
    "policy",
    "team",
    "court",
    "family",
    "result",
    "process",
    "field",
    "level",
    "group",
    "series",
    "game",
    "order",
    "community",
    "area",
    "support",
    "program",
    "power",
    "service",
    "science",
    "river",
    "council",
    "design",
    "century",
    "project",
    "record",
    "season",
    "film",
    "region",
    "country",
    "trade",
    "women",
    "children",
    "species",
    "body",
    "image",
    "light",
    "range",
    "value",
    "method",
    "theory",
    "analysis",
    "control",
    "account",
]
ACCENTED = [
    "café",
    "naïve",
    "über",
    "résumé",
    "façade",
    "déjà",
    "señor",
    "Zürich",
    "São",
    "Kraków",
    "año",
    "coöperate",
]
_SYLLABLES = [
    "ka",
    "lo",
    "mi",
    "ren",
    "tor",
    "sa",
    "vel",
    "qu",
    "dan",
    "pe",
    "ri",
    "on",
    "al",
    "ex",
    "mor",
    "tis",
    "ba",
    "ne",
    "gu",
    "ly",
    "ter",
    "ca",
    "dro",
    "fin",
    "ma",
    "sel",
    "po",
    "ta",
    "vi",
    "ran",
    "ko",
    "lu",
    "nor",
    "bel",
    "tri",
    "ce",
    "ga",
    "hu",
    "zen",
    "ar",
    "is",
    "um",
    "os",
    "el",
    "ra",
    "nd",
    "st",
    "pr",
    "in",
    "ve",
    "go",
    "fa",
]


@functools.cache
def build_vocabulary(size: int, seed: int) -> tuple[list[str], list[float]]:
    """A fixed vocabulary (common English words, pseudo-words, some punctuated/capitalised
    forms and a few accented words) with Zipf weights in that order."""
    import numpy as np

    rng = np.random.default_rng(seed)
    words: list[str] = list(dict.fromkeys(COMMON + CONTENT))
    seen = set(words)
    while len(words) < size:
        n = int(rng.integers(2, 5))
        word = "".join(_SYLLABLES[int(i)] for i in rng.integers(0, len(_SYLLABLES), n))
        if word not in seen:
            seen.add(word)
            words.append(word)
    extra: list[str] = []
    for word in words[:2000:7]:
        extra += [word + ",", word + ".", word.capitalize()]
    vocabulary = words[:200] + extra + ACCENTED + words[200:]
    ranks = np.arange(1, len(vocabulary) + 1, dtype=np.float64)
    weights = 1.0 / (ranks + 2.7)
    weights /= weights.sum()
    return vocabulary, weights.tolist()


class TextGen:
    """Documents of about ``mean_bytes`` bytes, generated fast with numpy (seeded)."""

    def __init__(self, seed: int, *, mean_bytes: int = 1000, vocabulary: int = 30_000) -> None:
        import numpy as np

        self.np = np
        self.rng = np.random.default_rng(seed)
        words, weights = build_vocabulary(vocabulary, 20261128)
        self.words = np.array(words, dtype=object)
        self.lengths = np.array([len(w) + 1 for w in words], dtype=np.int64)  # + the space
        self.cdf = np.cumsum(np.array(weights))
        self.cdf[-1] = 1.0
        mean_word = float((self.lengths * np.array(weights)).sum())
        mean_utf8 = float(
            (np.array([len(w.encode()) + 1 for w in words]) * np.array(weights)).sum()
        )
        self.mean_words = max(10, round(mean_bytes / mean_utf8))
        self.mean_chars = mean_word

    def documents(self, n: int) -> list[str]:
        np = self.np
        counts = self.rng.integers(self.mean_words // 2, self.mean_words * 3 // 2 + 1, n)
        total = int(counts.sum())
        index = np.searchsorted(self.cdf, self.rng.random(total), side="right")
        index = np.minimum(index, len(self.words) - 1)
        text = " ".join(self.words[index].tolist()) + " "
        char_end = np.cumsum(self.lengths[index])  # position after each word's space
        word_end = np.cumsum(counts)  # index after each document's last word
        ends = (char_end[word_end - 1] - 1).tolist()
        starts = [0, *char_end[word_end[:-1] - 1].tolist()]
        return [text[s:e] for s, e in zip(starts, ends, strict=True)]


def _write_jsonl(path: Path, target: int, seed: int, first_id: int) -> dict[str, int]:
    gen = TextGen(seed)
    docs = written = 0
    with path.open("wb") as out:
        while written < target:
            batch = gen.documents(20_000)
            lines = []
            for offset, text in enumerate(batch):
                i = first_id + docs + offset
                lines.append(
                    f'{{"id": {i}, "url": "https://example.org/page/{i}", "text": "{text}"}}\n'
                )
            data = "".join(lines).encode("utf-8")
            if written + len(data) > target:  # keep whole lines, stop near the target
                keep = data[: target - written]
                keep = keep[: keep.rfind(b"\n") + 1]
                docs += keep.count(b"\n")
                out.write(keep)
                written += len(keep)
                break
            out.write(data)
            written += len(data)
            docs += len(batch)
    return {"documents": docs, "bytes": written}


def _write_parquet(path: Path, target: int, seed: int, first_id: int) -> dict[str, int]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    gen = TextGen(seed)
    rows = 20_000

    def table(start: int, n: int) -> Any:
        texts = gen.documents(n)
        ids = list(range(start, start + n))
        return pa.table(
            {
                "id": pa.array(ids, pa.int64()),
                "url": pa.array([f"https://example.org/page/{i}" for i in ids], pa.string()),
                "text": pa.array(texts, pa.string()),
            }
        )

    sample = table(first_id, rows)
    sink = pa.BufferOutputStream()
    pq.write_table(sample, sink)
    per_row = sink.getvalue().size / rows
    total_rows = max(rows, int(target / per_row))
    docs = 0
    with pq.ParquetWriter(path, sample.schema) as writer:
        writer.write_table(sample)
        docs += rows
        while docs < total_rows:
            n = min(rows, total_rows - docs)
            writer.write_table(table(first_id + docs, n))
            docs += n
    return {"documents": docs, "bytes": path.stat().st_size}


def _write_one(job: tuple[str, str, int, int, int]) -> dict[str, Any]:
    fmt, path, target, seed, first_id = job
    writer = _write_jsonl if fmt == "jsonl" else _write_parquet
    return {"path": path, **writer(Path(path), target, seed, first_id)}


def make_corpus(root: Path, fmt: str, size: int, files: int, seed: int) -> dict[str, Any]:
    """``files`` files of ``fmt`` adding up to about ``size`` stored bytes, written on 2 cores."""
    from concurrent.futures import ProcessPoolExecutor

    root.mkdir(parents=True, exist_ok=True)
    suffix = "jsonl" if fmt == "jsonl" else "parquet"
    per_file = size // files
    jobs = [
        (fmt, str(root / f"part-{i:03d}.{suffix}"), per_file, seed * 1000 + i, i * 10_000_000)
        for i in range(files)
    ]
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=2) as pool:
        parts = list(pool.map(_write_one, jobs))
    return {
        "format": fmt,
        "root": str(root),
        "files": [p["path"] for p in parts],
        "documents": sum(p["documents"] for p in parts),
        "bytes": sum(p["bytes"] for p in parts),
        "generated_in_s": time.perf_counter() - started,
    }


# =============================================================================================
# Floors: sha256sum over the same files
# =============================================================================================


def time_sha256sum(files: list[str], parallel: int = 1) -> float:
    """Wall time of ``sha256sum`` over the files (``parallel`` > 1: split over that many)."""
    started = time.perf_counter()
    if parallel <= 1:
        subprocess.run(["sha256sum", *files], check=True, stdout=subprocess.DEVNULL)
    else:
        groups = [files[i::parallel] for i in range(parallel)]
        procs = [
            subprocess.Popen(["sha256sum", *g], stdout=subprocess.DEVNULL) for g in groups if g
        ]
        for p in procs:
            if p.wait() != 0:
                raise RuntimeError("sha256sum failed")
    return time.perf_counter() - started


def time_hashlib(files: list[str]) -> float:
    import hashlib

    started = time.perf_counter()
    for name in files:
        h = hashlib.sha256()
        with open(name, "rb", buffering=0) as handle:
            while chunk := handle.read(MiB):
                h.update(chunk)
        h.hexdigest()
    return time.perf_counter() - started


def warm(files: list[str]) -> None:
    """Read the files once so every timed pass starts from the page cache."""
    time_sha256sum(files)


# =============================================================================================
# Processes: moto's S3 server, the exchange server
# =============================================================================================


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_http(url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: the process exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@contextlib.contextmanager
def moto_server(workdir: Path) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    logfile = (workdir / f"moto-{port}.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdin=subprocess.DEVNULL,
        stdout=logfile,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_http(f"{url}/moto-api/", process)
        yield url
    finally:
        _stop(process)
        logfile.close()


def s3_client(endpoint: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        region_name=S3_REGION,
        aws_access_key_id=S3_CREDENTIALS["access_key_id"],
        aws_secret_access_key=S3_CREDENTIALS["secret_access_key"],
        config=Config(signature_version="s3v4"),
    )


def empty_bucket(client: Any, bucket: str) -> None:
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys})
    client.delete_bucket(Bucket=bucket)


class Exchange:
    """A prepared data dir and a server process on a loopback port (this script, ``_serve``)."""

    def __init__(self, workdir: Path, name: str, env: dict[str, str] | None = None) -> None:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        from exchange.settings import Settings
        from exchange.setup import initialise

        self.data_dir = workdir / name
        self.env = {k: v for k, v in (env or {}).items() if v is not None}
        self.timings = workdir / f"{name}.timings.jsonl"
        settings = Settings(data_dir=self.data_dir, **_settings_fields(self.env))
        self.operator_key = Ed25519PrivateKey.generate()
        done = initialise(
            settings, operator="operator", operator_name="Operator", operator_key=self.operator_key
        )
        self.operator_token = done.token
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.logfile: Any = None

    def start(self) -> Exchange:
        env = {
            **os.environ,
            **self.env,
            "CORPUSX_DATA_DIR": str(self.data_dir),
            "CORPUSX_HOST": "127.0.0.1",
            "CORPUSX_PORT": str(self.port),
            TIMINGS_ENV: str(self.timings),
        }
        self.logfile = (self.data_dir / "server.log").open("wb")
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "_serve"],
            env=env,
            cwd=str(ROOT),
            stdin=subprocess.DEVNULL,
            stdout=self.logfile,
            stderr=subprocess.STDOUT,
        )
        _wait_http(f"{self.url}/healthz", self.process)
        return self

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process)
            self.process = None
        if self.logfile is not None:
            self.logfile.close()
            self.logfile = None

    def server_log_tail(self) -> str:
        path = self.data_dir / "server.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def operator(self) -> Any:
        from exchange.client import ExchangeClient

        return ExchangeClient(
            self.url, token=self.operator_token, member="operator", key=self.operator_key
        )

    def register(self, member_id: str, roles: list[str]) -> Any:
        """A new member through the API (as tests/integration/helpers.py does); its client."""
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        from exchange.keys import raw_public_key
        from ledger.audit import registration_body

        key = Ed25519PrivateKey.generate()
        body = registration_body(
            member_id, raw_public_key(key), name=member_id.title(), roles=roles
        )
        with self.operator() as operator:
            token = operator.register_member(body)["token"]
        return TimedClient(self.url, token=token, member=member_id, key=key, timeout=600)

    def register_cli(self, member_id: str) -> tuple[str, str, Path]:
        """A provider for the ``corpusx`` command: its id, its token and its key file."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        from exchange.keys import raw_public_key
        from ledger.audit import registration_body

        key = Ed25519PrivateKey.generate()
        body = registration_body(
            member_id, raw_public_key(key), name=member_id.title(), roles=["provider"]
        )
        with self.operator() as operator:
            token = operator.register_member(body)["token"]
        key_file = self.data_dir / f"{member_id}.key"
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        key_file.chmod(0o600)
        return member_id, str(token), key_file

    def server_timings(self) -> list[dict[str, Any]]:
        if not self.timings.exists():
            return []
        return [json.loads(line) for line in self.timings.read_text().splitlines() if line]

    def __enter__(self) -> Exchange:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


def _settings_fields(env: dict[str, str]) -> dict[str, Any]:
    fields = {}
    for key, value in env.items():
        if key.startswith("CORPUSX_"):
            fields[key.removeprefix("CORPUSX_").lower()] = value
    return fields


def _make_timed_client_class() -> type:
    from exchange.client import ExchangeClient

    class _TimedClient(ExchangeClient):  # type: ignore[misc]
        """The product client, with the wall clock noted around each step of publishing."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.marks: list[tuple[str, float, float]] = []

        def _timed(self, name: str, call: Callable[[], Any]) -> Any:
            started = time.perf_counter()
            try:
                return call()
            finally:
                self.marks.append((name, started, time.perf_counter()))

        def missing_blobs(self, digests: list[str]) -> list[str]:
            return self._timed(
                "missing_blobs", lambda: super(_TimedClient, self).missing_blobs(digests)
            )  # type: ignore[no-any-return]

        def upload_blob(self, digest: str, path: Path, **kwargs: Any) -> Any:
            return self._timed(
                "upload_blob", lambda: super(_TimedClient, self).upload_blob(digest, path, **kwargs)
            )

        def dataset(self, slug: str) -> Any:
            return self._timed("dataset", lambda: super(_TimedClient, self).dataset(slug))

        def sign(self, entry_type: str, body: dict[str, Any]) -> Any:
            return self._timed("sign", lambda: super(_TimedClient, self).sign(entry_type, body))

        def publish_version(self, slug: str, body: dict[str, Any]) -> Any:
            return self._timed(
                "publish_version", lambda: super(_TimedClient, self).publish_version(slug, body)
            )

    return _TimedClient


def TimedClient(*args: Any, **kwargs: Any) -> Any:
    return _make_timed_client_class()(*args, **kwargs)


# -- the server process ---------------------------------------------------------------------


def serve_main() -> None:
    """``python benchmarks/catalog_bench.py _serve``: the exchange app under uvicorn, as
    ``corpusx serve`` runs it, with timers (appended to $CATALOG_BENCH_TIMINGS) around the
    publish route's verification (and its blob download, for S3), transaction, and blob puts.
    Product code is not changed: the module attributes the routes call are wrapped here."""
    import threading

    import uvicorn

    import exchange.publishing as publishing
    from exchange.app import create_app
    from exchange.settings import load_settings
    from storage.local import LocalStore
    from storage.s3 import S3Store

    out_path = os.environ.get(TIMINGS_ENV)
    lock = threading.Lock()

    def note(what: str, started: float, extra: dict[str, Any] | None = None) -> None:
        if out_path is None:
            return
        record = {"what": what, "seconds": time.perf_counter() - started, **(extra or {})}
        with lock, open(out_path, "a") as handle:
            handle.write(json.dumps(record) + "\n")

    def wrap(owner: Any, name: str, what: str, context: bool = False) -> None:
        original = getattr(owner, name)
        if context:

            @contextlib.contextmanager
            def timed_cm(*args: Any, **kwargs: Any) -> Iterator[Any]:
                started = time.perf_counter()
                with original(*args, **kwargs) as value:
                    note(what, started)
                    yield value

            setattr(owner, name, timed_cm)
            return

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                note(what, started)

        setattr(owner, name, timed)

    profile_dir = os.environ.get(PROFILE_ENV)
    if profile_dir:
        # The local store's uploads go through put_read (put calls it too), S3's through put.
        for owner, method in ((LocalStore, "put_read"), (S3Store, "put")):
            original_put = getattr(owner, method)

            def profiled_put(*args: Any, _original: Any = original_put, **kwargs: Any) -> Any:
                profiler = cProfile.Profile()
                profiler.enable()  # this thread only: the worker thread the upload runs in
                try:
                    return _original(*args, **kwargs)
                finally:
                    profiler.disable()
                    profiler.dump_stats(os.path.join(profile_dir, f"put-{time.time_ns()}.prof"))

            setattr(owner, method, profiled_put)
    import exchange.verification as verification

    wrap(publishing, "verify_claims", "verify_claims")
    wrap(publishing, "local_copies", "local_copies", context=True)  # S3: download to scratch
    wrap(publishing, "record_version", "record_version")
    # The server's own reading of each upload (worker process), and its cache of them.
    wrap(verification, "derive_upload", "derive_upload")
    if hasattr(verification, "UploadDerivation"):  # derived from the local store's temp file
        wrap(verification.UploadDerivation, "__call__", "derive_upload")
    wrap(verification.Verifier, "derive", "derive")
    if hasattr(publishing, "_derivations"):
        wrap(publishing, "_derivations", "derivations")
    for name in ("find_overlaps", "index_version"):  # overlap detection (in the transaction)
        if hasattr(publishing, name):
            wrap(publishing, name, name)
    wrap(LocalStore, "put_read" if hasattr(LocalStore, "put_read") else "put", "store_put")
    wrap(S3Store, "put", "store_put")
    settings = load_settings()
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="warning")


# =============================================================================================
# 1. Ingest and publish
# =============================================================================================


def run_ingest(corpus: dict[str, Any], repeat: int) -> dict[str, Any]:
    from catalog.ingest import ingest, scan

    files = corpus["files"]
    warm(files)
    rows = []
    for rep in range(repeat):
        sha = time_sha256sum(files)
        sha2 = time_sha256sum(files, parallel=2)
        pyhash = time_hashlib(files)
        sources = scan(files)
        gc.collect()
        started = time.perf_counter()
        manifest = ingest(sources, workers=2)
        t2 = time.perf_counter() - started
        sha_after = time_sha256sum(files)
        rows.append(
            {
                "rep": rep,
                "sha256sum_s": (sha + sha_after) / 2,
                "sha256sum_before_after_s": [sha, sha_after],
                "sha256sum_2procs_s": sha2,
                "hashlib_1proc_s": pyhash,
                "ingest_w2_s": t2,
                "records": manifest.records,
                "load1": os.getloadavg()[0],
            }
        )
        log(
            f"ingest {corpus['format']} rep {rep}: ingest w=2 {t2:.2f}s, sha256sum {sha:.2f}/"
            f"{sha_after:.2f}s, 2 procs {sha2:.2f}s, hashlib {pyhash:.2f}s"
        )
    started = time.perf_counter()
    ingest(scan(files), workers=1)
    t1 = time.perf_counter() - started
    log(f"ingest {corpus['format']} workers=1: {t1:.2f}s")
    return {"runs": rows, "ingest_w1_s": t1, **_ratios(rows, "ingest_w2_s")}


def _ratios(rows: list[dict[str, Any]], key: str) -> dict[str, Any]:
    ratios = [r[key] / r["sha256sum_s"] for r in rows]
    ratios2 = [r[key] / r["sha256sum_2procs_s"] for r in rows if r.get("sha256sum_2procs_s")]
    return {
        "median_s": statistics.median(r[key] for r in rows),
        "median_sha256sum_s": statistics.median(r["sha256sum_s"] for r in rows),
        "ratio_median": statistics.median(ratios),
        "ratio_min": min(ratios),
        "ratio_2procs_median": statistics.median(ratios2) if ratios2 else None,
    }


CLI_MARKS_ENV = "CATALOG_BENCH_CLI_MARKS"
CLI_PROFILE_ENV = "CATALOG_BENCH_CLI_PROFILE"


def cli_main(argv: list[str]) -> int:
    """``python benchmarks/catalog_bench.py _cli dataset publish ...``: the ``corpusx`` command
    itself (``exchange.cli.main``), with the wall clock noted around the publisher's steps
    (``ingest``, each client request), written as JSON to $CATALOG_BENCH_CLI_MARKS at exit.
    Product code is not changed: module and class attributes are wrapped, as in ``_serve``."""
    import threading

    import exchange.publisher as publisher
    from exchange.cli import main as corpusx
    from exchange.client import ExchangeClient

    marks: list[tuple[str, float, float]] = []
    lock = threading.Lock()

    def timed(owner: Any, name: str) -> None:
        original = getattr(owner, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                with lock:
                    marks.append((name, started, time.perf_counter()))

        setattr(owner, name, wrapper)

    timed(publisher, "ingest")
    timed(publisher, "publish_corpus")
    for name in ("missing_blobs", "upload_blob", "dataset", "sign", "publish_version"):
        timed(ExchangeClient, name)
    sys.argv = ["corpusx", *argv]
    profiler = cProfile.Profile() if os.environ.get(CLI_PROFILE_ENV) else None
    started = time.perf_counter()
    code = 0
    try:
        if profiler is not None:
            profiler.enable()
        corpusx()
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    finally:
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(os.environ[CLI_PROFILE_ENV])
        out = os.environ.get(CLI_MARKS_ENV)
        if out:
            # This process and its descendants (the fork server, which reaped the ingest
            # workers): once this process exits the fork server is no child to be waited for.
            cpu = tree_cpu(os.getpid())
            Path(out).write_text(json.dumps({"started": started, "marks": marks, "cpu_s": cpu}))
    return code


def tree_cpu(pid: int) -> float:
    """CPU seconds of a live process and all its descendants (user + system, reaped children
    included), from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    used: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            text = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        parents[int(entry)] = int(fields[1])
        used[int(entry)] = sum(int(x) for x in fields[11:15]) / ticks
    total, stack = 0.0, [pid]
    while stack:
        current = stack.pop()
        total += used.get(current, 0.0)
        stack.extend(child for child, parent in parents.items() if parent == current)
    return total


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def publish_once(
    corpus: dict[str, Any],
    workdir: Path,
    name: str,
    env: dict[str, str],
    slug: str,
    profile: dict[str, Any] | None = None,
    paths: list[Path] | None = None,
) -> dict[str, Any]:
    """One ``corpusx dataset publish`` (a new process) into a fresh exchange; wall and CPU
    time of both sides, and the client's and the server's step times.

    With ``profile`` (a dict to fill), the CLI runs under cProfile (its main thread) and the
    server profiles each blob ``put`` (in the thread it runs in)."""
    profile_dir = None
    if profile is not None:
        profile_dir = workdir / f"{name}-profiles"
        profile_dir.mkdir(parents=True, exist_ok=True)
        env = {**env, PROFILE_ENV: str(profile_dir)}
    exchange = Exchange(workdir, name, env)
    marks_path = workdir / f"{name}.cli-marks.json"
    try:
        with exchange:
            member, token, key_file = exchange.register_cli("bench-provider")
            command = [
                sys.executable,
                str(Path(__file__).resolve()),
                "_cli",
                "dataset",
                "publish",
                *map(str, paths or [Path(corpus["root"])]),
                "--dataset",
                slug,
                "--title",
                f"Benchmark corpus ({corpus['format']})",
                "--tag",
                "bench",
                "--json",
                "--server",
                exchange.url,
                "--token",
                token,
                "--key",
                str(key_file),
                "--member",
                member,
            ]
            cli_env = {
                **os.environ,
                CLI_MARKS_ENV: str(marks_path),
                "CORPUSX_CONFIG_DIR": str(workdir / f"{name}-config"),
            }
            if profile_dir is not None:
                cli_env[CLI_PROFILE_ENV] = str(profile_dir / "cli.prof")
            gc.collect()
            assert exchange.process is not None
            server_cpu = tree_cpu(exchange.process.pid)
            client_cpu = children_cpu()
            started = time.perf_counter()
            done = subprocess.run(command, env=cli_env, capture_output=True, check=False)
            total = time.perf_counter() - started
            client_cpu = children_cpu() - client_cpu
            server_cpu = tree_cpu(exchange.process.pid) - server_cpu
            if done.returncode != 0:
                raise RuntimeError(
                    f"corpusx dataset publish failed ({done.returncode}): "
                    f"{done.stderr.decode(errors='replace')[-2000:]}"
                )
            result = json.loads(done.stdout)
            if profile is not None and profile_dir is not None:
                exchange.stop()  # the put profiles are on disk
                profile["client"] = _top(pstats.Stats(str(profile_dir / "cli.prof")), 12)
                dumps = sorted(profile_dir.glob("put-*.prof"))
                if dumps:
                    profile["server_put"] = _top(pstats.Stats(*map(str, dumps)), 12)
                shutil.rmtree(profile_dir, ignore_errors=True)
            server = exchange.server_timings()
            cli = json.loads(marks_path.read_text())
    except Exception:
        log(exchange.server_log_tail())
        raise
    finally:
        shutil.rmtree(exchange.data_dir, ignore_errors=True)
        shutil.rmtree(workdir / f"{name}-config", ignore_errors=True)
        exchange.timings.unlink(missing_ok=True)
        marks_path.unlink(missing_ok=True)
    return {
        "publish_s": total,
        "client_cpu_s": max(client_cpu, cli.get("cpu_s", 0.0)),
        "server_cpu_s": server_cpu,
        **_steps(cli, server, started, total),
        "records": result["records"],
        "version": result["id"],
    }


def _steps(
    cli: dict[str, Any], server: list[dict[str, Any]], spawned: float, total: float
) -> dict[str, Any]:
    """Step times from the CLI's marks (``perf_counter`` readings) and the server's."""
    marks = cli["marks"]

    def spans(kind: str) -> list[tuple[float, float]]:
        return [(a, b) for name, a, b in marks if name == kind]

    def busy(kind: str) -> float:
        return sum(b - a for a, b in spans(kind))

    def on_server(what: str) -> float:
        return sum(t["seconds"] for t in server if t["what"] == what)

    (publish_start, publish_end), *_ = spans("publish_corpus")
    (ingest_start, ingest_end), *_ = spans("ingest")
    uploads = spans("upload_blob")
    last_upload = max((b for _, b in uploads), default=ingest_end)
    request = busy("publish_version")
    verify = on_server("verify_claims")
    steps = {
        # perf_counter is CLOCK_MONOTONIC, one clock for every process: ``spawned`` is the
        # parent's reading just before it started the ``corpusx`` process.
        "cli_startup_s": publish_start - spawned,
        "client_ingest_s": ingest_end - ingest_start,
        "uploads_busy_s": busy("upload_blob"),
        "uploads": len(uploads),
        "upload_tail_s": max(0.0, last_upload - ingest_end),
        "server_store_put_s": on_server("store_put"),
        "server_derive_upload_s": on_server("derive_upload"),
        "label_and_sign_s": busy("dataset") + busy("sign"),
        "publish_request_s": request,
        "server_verify_s": verify,
        "server_verify_derivations_s": on_server("derivations"),
        "server_verify_download_s": on_server("local_copies"),
        "server_record_version_s": on_server("record_version"),
        "server_find_overlaps_s": on_server("find_overlaps"),
        "server_index_version_s": on_server("index_version"),
        "server_transaction_and_rest_s": request - verify,
        "cli_exit_s": spawned + total - publish_end,
    }
    # The publisher's steps follow each other: ingest (with uploads in flight), the rest of
    # the uploads, then label + sign + the publish request.
    return steps


def run_publish(
    corpus: dict[str, Any], store: str, workdir: Path, repeat: int, s3_endpoint: str | None
) -> dict[str, Any]:
    files = corpus["files"]
    warm(files)
    rows = []
    for rep in range(repeat):
        env: dict[str, str] = {}
        bucket = None
        if store == "s3":
            assert s3_endpoint is not None
            bucket = f"corpusx-bench-{os.getpid()}-{corpus['format']}-{rep}"
            s3_client(s3_endpoint).create_bucket(Bucket=bucket)
            env = {
                "CORPUSX_BLOB_STORE": f"s3://{bucket}/blobs",
                "CORPUSX_S3_ENDPOINT_URL": s3_endpoint,
                "CORPUSX_S3_REGION": S3_REGION,
                "CORPUSX_S3_ACCESS_KEY_ID": S3_CREDENTIALS["access_key_id"],
                "CORPUSX_S3_SECRET_ACCESS_KEY": S3_CREDENTIALS["secret_access_key"],
            }
        try:
            sha_cpu = children_cpu()
            sha = time_sha256sum(files)
            sha_cpu = children_cpu() - sha_cpu
            sha2 = time_sha256sum(files, parallel=2)
            row = publish_once(
                corpus,
                workdir,
                f"pub-{store}-{corpus['format']}-{rep}",
                env,
                f"bench-{corpus['format']}",
            )
            sha_after = time_sha256sum(files)
        finally:
            if bucket is not None and s3_endpoint is not None:
                empty_bucket(s3_client(s3_endpoint), bucket)
        row.update(
            rep=rep,
            sha256sum_cpu_s=sha_cpu,
            sha256sum_s=(sha + sha_after) / 2,
            sha256sum_before_after_s=[sha, sha_after],
            sha256sum_2procs_s=sha2,
            load1=os.getloadavg()[0],
        )
        rows.append(row)
        log(
            f"publish {store} {corpus['format']} rep {rep}: {row['publish_s']:.2f}s = "
            f"{row['publish_s'] / row['sha256sum_s']:.2f}x sha256sum {sha:.2f}/{sha_after:.2f}s "
            f"(ingest {row['client_ingest_s']:.2f}, upload tail {row['upload_tail_s']:.2f}, "
            f"server derive {row['server_derive_upload_s']:.2f}, request "
            f"{row['publish_request_s']:.2f} [verify {row['server_verify_s']:.2f}]; CPU client "
            f"{row['client_cpu_s']:.1f} server {row['server_cpu_s']:.1f} sha256sum {sha_cpu:.1f})"
        )
    out: dict[str, Any] = {"runs": rows, **_ratios(rows, "publish_s")}
    if store == "s3" and s3_endpoint is not None:
        out["raw_s3"] = raw_s3_floor(files, s3_endpoint)
    return out


def raw_s3_floor(files: list[str], endpoint: str) -> dict[str, float]:
    """boto3 straight to the same moto server: upload_file then download of every file
    (the transfer manager's defaults: 8 MiB multipart, 10 threads)."""
    client = s3_client(endpoint)
    bucket = f"corpusx-bench-raw-{os.getpid()}"
    client.create_bucket(Bucket=bucket)
    try:
        started = time.perf_counter()
        for name in files:
            client.upload_file(name, bucket, Path(name).name)
        put = time.perf_counter() - started
        started = time.perf_counter()
        for name in files:
            body = client.get_object(Bucket=bucket, Key=Path(name).name)["Body"]
            for _ in body.iter_chunks(MiB):
                pass
        get = time.perf_counter() - started
    finally:
        empty_bucket(client, bucket)
    log(f"raw S3 (moto): put {put:.2f}s, get {get:.2f}s")
    return {"put_s": put, "get_s": get}


def _top(stats: pstats.Stats, top: int) -> dict[str, Any]:
    total = stats.total_tt  # type: ignore[attr-defined]
    rows = []
    for (filename, line, func), (_cc, nc, tt, ct, _callers) in sorted(
        stats.stats.items(),  # type: ignore[attr-defined]
        key=lambda item: -item[1][2],
    )[:top]:
        where = f"{Path(filename).name}:{line}" if line else filename
        rows.append(
            {
                "function": f"{func} ({where})",
                "calls": nc,
                "tottime_s": tt,
                "cumtime_s": ct,
                "share": tt / total if total else 0,
            }
        )
    return {"total_s": total, "top": rows}


def run_profile(corpora: dict[str, dict[str, Any]], top: int, workdir: Path) -> dict[str, Any]:
    """cProfile of ingest_file on one file per format, in this process."""
    from catalog.ingest import ingest_file

    out = {}
    for fmt, corpus in corpora.items():
        path = Path(corpus["files"][0])
        warm([str(path)])
        ingest_file(path, name=path.name)  # imports, caches
        started = time.perf_counter()
        ingest_file(path, name=path.name)
        plain = time.perf_counter() - started
        profiler = cProfile.Profile()
        profiler.enable()
        ingest_file(path, name=path.name)
        profiler.disable()
        found = _top(pstats.Stats(profiler), top)
        claimed = ingest_file(path, name=path.name)
        from catalog.derivation import derive_file

        def verify(job: tuple[Path, Any]) -> Any:
            """What a server worker runs on an upload: ingest_file + the overlap sketch."""
            path, claimed = job
            return derive_file(str(path), claimed.sha256, claimed.name, claimed.document_rule)

        started = time.perf_counter()
        verify((path, claimed))
        verify_plain = time.perf_counter() - started
        profiler = cProfile.Profile()
        profiler.enable()
        verify((path, claimed))
        profiler.disable()
        verified = _top(pstats.Stats(profiler), top)
        sha = time_sha256sum([str(path)])
        out[fmt] = {
            "file": path.name,
            "bytes": path.stat().st_size,
            "ingest_file_s": plain,
            "sha256sum_s": sha,
            "profiled_total_s": found["total_s"],
            "top": found["top"],
            "verify_s": verify_plain,
            "verify_profiled_total_s": verified["total_s"],
            "verify_top": verified["top"],
        }
        log(
            f"profile {fmt}: ingest_file {plain:.2f}s, server _verify {verify_plain:.2f}s vs "
            f"sha256sum {sha:.2f}s"
        )
    if "jsonl" in corpora:
        profiles: dict[str, Any] = {}
        first = Path(corpora["jsonl"]["files"][0])
        row = publish_once(
            corpora["jsonl"],
            workdir,
            "pub-profiled",
            {},
            "bench-profiled",
            profile=profiles,
            paths=[first],
        )
        out["publish"] = {
            "corpus": "jsonl",
            "store": "local",
            "file": first.name,
            "bytes": first.stat().st_size,
            "publish_s": row["publish_s"],
            "upload_s": row["uploads_busy_s"],
            **profiles,
        }
        log(f"profile publish (jsonl, local, under cProfile): {row['publish_s']:.2f}s")
    return out


def run_overlap_cost(
    corpora: dict[str, dict[str, Any]], workdir: Path, repeat: int
) -> dict[str, Any]:
    """The overlap check's cost per document, on one file of each format, in this process:
    sketching (``ingest_file`` with and without the ``FileSketch`` observer, CPU seconds, best
    of ``repeat``), then ``find_overlaps`` and ``index_version`` of that file's version against
    an index that already holds another provider's copy of it (every lookup hits), on SQLite
    and PostgreSQL."""
    from catalog.ingest import ingest_file
    from catalog.overlap import FileSketch, VersionSketch

    out: dict[str, Any] = {}
    for fmt, corpus in corpora.items():
        path = Path(corpus["files"][0])
        warm([str(path)])
        plain, sketched = [], []
        sketch = FileSketch(path.name)
        for _ in range(repeat):
            started = time.process_time()
            manifest = ingest_file(path, name=path.name)
            plain.append(time.process_time() - started)
            sketch = FileSketch(path.name)
            started = time.process_time()
            ingest_file(path, name=path.name, observer=sketch)
            sketched.append(time.process_time() - started)
        records = manifest.records
        version = VersionSketch.from_files([sketch])
        row: dict[str, Any] = {
            "file": path.name,
            "bytes": path.stat().st_size,
            "records": records,
            "distinct_documents": len(version.documents),
            "samples": len(version.sample_hashes),
            "sample_level": version.sample_level,
            "ingest_cpu_s": min(plain),
            "ingest_and_sketch_cpu_s": min(sketched),
            "sketch_us_per_document": 1e6 * (min(sketched) - min(plain)) / max(records, 1),
            "load1": os.getloadavg()[0],
        }
        for kind in ("sqlite", "postgres"):
            row[kind] = _time_overlap_index(kind, version, workdir, f"{fmt}-{os.getpid()}")
        out[fmt] = row
        log(
            f"overlap {fmt}: sketch {row['sketch_us_per_document']:.1f} us/document; "
            + "; ".join(
                f"{k} find {row[k]['find_us_per_document']:.1f} + index "
                f"{row[k]['index_us_per_document']:.1f} us/document"
                for k in ("sqlite", "postgres")
            )
        )
    return out


def provider_version(session: Any, who: str, records: int) -> str:
    """A provider ``who`` with a dataset ``d-who`` and its version ``v1`` (a bare row, as the
    overlap index needs it: no manifest, no ledger entry); returns the version id."""
    from catalog.models import Dataset, DatasetVersion
    from exchange.models import Member

    now = datetime.now(UTC)
    session.add(
        Member(id=who, display_name=who, roles="provider", registered_seq=0, created_at=now)
    )
    session.flush()
    dataset = Dataset(slug=f"d-{who}", provider=who, title=who, created_at=now, updated_at=now)
    session.add(dataset)
    session.flush()
    assert dataset.id is not None
    version = DatasetVersion(
        id="sha256:" + hashlib.sha256(who.encode()).hexdigest(),
        dataset_id=dataset.id,
        label="v1",
        manifest=b"{}",
        manifest_root="0" * 64,
        record_count=records,
        size_bytes=0,
        published_seq=0,
        created_at=now,
    )
    session.add(version)
    session.flush()
    return version.id


def _time_overlap_index(kind: str, sketch: Any, workdir: Path, suffix: str) -> dict[str, float]:
    """find_overlaps + index_version of ``sketch`` as provider B, with provider A's identical
    version already indexed, in one transaction (rolled back), on a fresh database."""
    from sqlmodel import Session, SQLModel

    import exchange.models  # noqa: F401  (every table)
    from catalog import overlap_index
    from catalog.overlap_index import find_overlaps, index_version
    from exchange.db import make_engine

    if kind == "postgres":
        name = f"corpusx_bench_cat_overlap_{suffix.replace('-', '_')}"
        pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        pg_admin(f'CREATE DATABASE "{name}"')
        url = pg_url(name)
    else:
        db = workdir / f"overlap-{suffix}.db"
        db.unlink(missing_ok=True)
        url = f"sqlite:///{db}"
    engine = make_engine(url)
    try:
        SQLModel.metadata.create_all(engine)
        with Session(engine) as session:
            versions = [provider_version(session, who, sketch.records) for who in ("a", "b")]
            index_version(session, versions[0], sketch)
            session.commit()
            overlap_index._ENTRIES.clear()  # the first lookup loads A's segment from the database
            started = time.perf_counter()
            report = find_overlaps(session, sketch, exclude_provider="b")
            find = time.perf_counter() - started
            started = time.perf_counter()
            again = find_overlaps(session, sketch, exclude_provider="b")
            find_again = time.perf_counter() - started
            assert again == report
            started = time.perf_counter()
            index_version(session, versions[1], sketch)
            index = time.perf_counter() - started
            session.rollback()
        assert report.substantial, "an identical copy must be found"
    finally:
        engine.dispose()
        if kind == "postgres":
            pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        else:
            Path(url.removeprefix("sqlite:///")).unlink(missing_ok=True)
    records = max(sketch.records, 1)
    return {
        "find_s": find,
        "index_s": index,
        "find_us_per_document": 1e6 * find / records,
        "find_again_s": find_again,
        "find_again_us_per_document": 1e6 * find_again / records,
        "index_us_per_document": 1e6 * index / records,
    }


def _find(row: dict[str, Any]) -> str:
    """First lookup / again, µs per document (results from before the second have one)."""
    first = _n(row["find_us_per_document"], 1)
    again = row.get("find_again_us_per_document")
    return first if again is None else f"{first} / {_n(again, 1)}"


# =============================================================================================
# 2. Search
# =============================================================================================

TAGS_SEED = 7
LANGS = [
    "en",
    "en",
    "en",
    "en",
    "en",
    "de",
    "fr",
    "es",
    "it",
    "nl",
    "pt",
    "pl",
    "sv",
    "ru",
    "uk",
    "cs",
    "ja",
    "zh",
    "ko",
    "ar",
    "hi",
    "tr",
    "el",
    "fi",
    "da",
    "no",
    "he",
    "hu",
    "ro",
    "bg",
    "hr",
    "sk",
    "sl",
    "lt",
    "lv",
    "et",
    "vi",
    "th",
    "id",
    "ms",
    "fa",
]
DOMAINS = [
    "web",
    "news",
    "legal",
    "medical",
    "code",
    "science",
    "finance",
    "books",
    "forum",
    "dialogue",
    "patents",
    "government",
    "education",
    "social",
    "reviews",
    "encyclopedia",
    "subtitles",
    "speech",
    "math",
    "chemistry",
]
TITLE_NOUNS = [
    "corpus",
    "dataset",
    "collection",
    "archive",
    "dump",
    "crawl",
    "transcripts",
    "articles",
    "papers",
    "questions",
    "answers",
    "abstracts",
    "records",
    "reports",
    "pages",
    "threads",
    "posts",
    "reviews",
]


class CatalogGen:
    def __init__(self, seed: int) -> None:
        import numpy as np

        self.np = np
        self.rng = np.random.default_rng(seed)
        self.text = TextGen(seed + 1, mean_bytes=60)
        words, _ = build_vocabulary(30_000, 20261128)
        # Tags: 300 words from the vocabulary's common part, Zipf-picked.
        self.tags = [w.lower().strip(",.") for w in words[:1200:4]][:300]
        self.tags = list(dict.fromkeys(t for t in self.tags if t))
        self.tag_w = self._zipf(len(self.tags))
        self.lang_w = self._zipf(len(LANGS), 1.3)
        self.dom_w = self._zipf(len(DOMAINS))

    def _zipf(self, n: int, s: float = 1.0) -> Any:
        w = 1.0 / (self.np.arange(1, n + 1) ** s)
        return w / w.sum()

    def _pick(self, items: Any, weights: Any, low: int, high: int) -> tuple[str, ...]:
        n = int(self.rng.integers(low, high + 1))
        idx = self.rng.choice(len(items), size=min(n, len(items)), replace=False, p=weights)
        return tuple(sorted({items[int(i)] for i in idx}))

    def metas(self, n: int, first: int) -> list[tuple[str, Any, int, int]]:
        from catalog.services import DatasetMeta

        rng = self.rng
        title_words = self.text.documents(n)
        descriptions = TextGen(int(rng.integers(1 << 30)), mean_bytes=250).documents(n)
        cards = TextGen(int(rng.integers(1 << 30)), mean_bytes=700).documents(n)
        out = []
        for k in range(n):
            i = first + k
            words = title_words[k].split()[: int(rng.integers(2, 7))]
            noun = TITLE_NOUNS[int(rng.integers(len(TITLE_NOUNS)))]
            domains = self._pick(DOMAINS, self.dom_w, 1, 2)
            title = " ".join(words).strip(",.").capitalize() + f" {domains[0]} {noun}"
            meta = DatasetMeta(
                title=title[:300],
                description=descriptions[k],
                card=f"# {title}\n\n## Sources\n\n{cards[k]}\n\n## Licence\n\nSee the licence.",
                licence_summary="CC-BY-4.0" if k % 3 else "research only",
                tags=self._pick(self.tags, self.tag_w, 1, 6),
                languages=self._pick(LANGS, self.lang_w, 1, 3),
                domains=domains,
            )
            size = int(rng.lognormal(20, 2.5))
            out.append((f"ds-{i:06d}", meta, size, max(1, size // 1000)))
        return out


def _insert_batches(job: tuple[str, list[int], int, int, int, int]) -> dict[str, float]:
    """One process's share of the datasets: batches ``firsts`` of ``batch`` datasets, each in
    one transaction of ``create_dataset`` calls (the product's use case, unchanged)."""
    from sqlalchemy import event

    import exchange.models  # noqa: F401 - the member table the dataset's foreign key names
    from catalog.models import Dataset
    from catalog.services import create_dataset
    from exchange.db import make_engine, unit_of_work

    url, firsts, batch, total, providers, seed = job
    engine = make_engine(url)
    provider_ids = [f"provider-{p:03d}" for p in range(providers)]
    sizes: dict[str, tuple[int, int]] = {}

    def set_size(_mapper: Any, _connection: Any, target: Dataset) -> None:
        size = sizes.get(target.slug)
        if size is not None:  # the INSERT carries them: no extra UPDATE (and FTS re-index)
            target.size_bytes, target.record_count = size

    event.listen(Dataset, "before_insert", set_size)
    insert_s = generate_s = 0.0
    try:
        for first in firsts:
            n = min(batch, total - first)
            started = time.perf_counter()
            metas = CatalogGen(seed * 1_000_003 + first).metas(n, first)
            generate_s += time.perf_counter() - started
            sizes.clear()
            sizes.update({slug: (size, records) for slug, _, size, records in metas})
            started = time.perf_counter()
            with unit_of_work(engine) as session:
                for k, (slug, meta, _, _) in enumerate(metas):
                    create_dataset(
                        session,
                        slug=slug,
                        provider=provider_ids[(first + k) % providers],
                        meta=meta,
                    )
            insert_s += time.perf_counter() - started
            done_here = firsts.index(first) + 1
            if done_here % 5 == 0:
                log(
                    f"  {done_here} of this process's {len(firsts)} batches inserted "
                    f"({insert_s:.0f}s)"
                )
    finally:
        event.remove(Dataset, "before_insert", set_size)
        engine.dispose()
    return {"insert_s": insert_s, "generate_s": generate_s}


def create_search_db(kind: str, workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """A data dir (and a PostgreSQL database) with ``args.datasets`` datasets from
    ``args.providers`` providers (``Member`` rows inserted directly). With ``--reuse``, a
    database left by an earlier ``--keep`` run with the same parameters is used as it is."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from exchange.db import make_engine, unit_of_work
    from exchange.models import Member
    from exchange.settings import Settings
    from exchange.setup import initialise

    data_dir = workdir / f"search-{kind}{args.db_suffix}"
    env: dict[str, str] = {"CORPUSX_CHECKPOINT_INTERVAL": "0"}
    db_name = None
    if kind == "postgres":
        db_name = f"corpusx_bench_cat_search{args.db_suffix}"
        env["CORPUSX_DATABASE_URL"] = pg_url(db_name)
    settings = Settings(data_dir=data_dir, **_settings_fields(env))
    built = data_dir / "bench-build.json"
    wanted = {"datasets": args.datasets, "providers": args.providers, "seed": args.seed}
    if args.reuse and built.exists():
        info = json.loads(built.read_text())
        if info["parameters"] == wanted:
            log(f"search {kind}: reusing the database built at {info['built_at']}")
            return {
                **info,
                "data_dir": data_dir,
                "env": env,
                "db_name": db_name,
                "url": settings.resolved_database_url,
                "reused": True,
            }
    resumed_from = 0
    partial = data_dir / "bench-partial.json"
    if args.reuse and partial.exists() and json.loads(partial.read_text()) == wanted:
        # An interrupted build: batches commit whole, so skip those already there.
        engine = make_engine(settings.resolved_database_url)
        with engine.connect() as connection:
            present = {row[0] for row in connection.exec_driver_sql("SELECT slug FROM dataset")}
        resumed_from = len(present)
        log(f"search {kind}: resuming an interrupted build ({resumed_from:,} datasets there)")
    else:
        shutil.rmtree(data_dir, ignore_errors=True)
        if db_name:
            pg_admin(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
            pg_admin(f'CREATE DATABASE "{db_name}"')
        initialise(
            settings,
            operator="operator",
            operator_name="Operator",
            operator_key=Ed25519PrivateKey.generate(),
        )
        partial.write_text(json.dumps(wanted))
        engine = make_engine(settings.resolved_database_url)
        with unit_of_work(engine) as session:
            for p in range(args.providers):
                pid = f"provider-{p:03d}"
                session.add(
                    Member(
                        id=pid,
                        display_name=pid.title(),
                        roles="provider",
                        registered_seq=0,
                        created_at=datetime.now(UTC),
                    )
                )
        present = set()
    firsts = [
        first
        for first in range(0, args.datasets, args.insert_batch)
        if f"ds-{first:06d}" not in present
    ]
    procs = max(1, args.insert_procs)
    jobs = [
        (
            settings.resolved_database_url,
            firsts[w::procs],
            args.insert_batch,
            args.datasets,
            args.providers,
            args.seed,
        )
        for w in range(procs)
    ]
    log(f"search {kind}: inserting {args.datasets:,} datasets with {procs} process(es)")
    started = time.perf_counter()
    with ProcessPoolExecutor(procs, mp_context=multiprocessing.get_context("spawn")) as pool:
        parts = list(pool.map(_insert_batches, jobs))
    wall = time.perf_counter() - started
    with engine.connect() as connection:
        count = connection.exec_driver_sql("SELECT count(*) FROM dataset").scalar_one()
        labels = connection.exec_driver_sql("SELECT count(*) FROM dataset_label").scalar_one()
        connection.exec_driver_sql("ANALYZE")
        if kind == "postgres":
            size = connection.exec_driver_sql(
                "SELECT pg_database_size(current_database())"
            ).scalar_one()
        else:
            size = Path(settings.resolved_database_url.removeprefix("sqlite:///")).stat().st_size
        connection.commit()
    engine.dispose()
    if count != args.datasets:
        raise RuntimeError(f"{count} datasets in the database, expected {args.datasets}")
    info = {
        "kind": kind,
        "parameters": wanted,
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "datasets": args.datasets,
        "resumed_from": resumed_from,
        "labels": labels,
        "providers": args.providers,
        "insert_batch": args.insert_batch,
        "insert_procs": procs,
        "insert_s": wall,
        "insert_rate": (args.datasets - resumed_from) / wall if wall else None,
        "insert_process_s": [p["insert_s"] for p in parts],
        "generate_s": sum(p["generate_s"] for p in parts),
        "database_bytes": size,
    }
    built.write_text(json.dumps(info, indent=2) + "\n")
    partial.unlink(missing_ok=True)
    log(f"search {kind}: {count:,} datasets, {labels:,} labels in {wall:.0f}s")
    return {
        **info,
        "data_dir": data_dir,
        "env": env,
        "db_name": db_name,
        "url": settings.resolved_database_url,
        "reused": False,
    }


def pg_url(name: str) -> str:
    base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{base}/{name}"


def pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5) as connection:
        connection.execute(sql)  # type: ignore[arg-type]


QUERY_KINDS = (
    ("word-common", "one common word"),
    ("word-rare", "one rarer word"),
    ("two-words", "two words"),
    ("prefix", "a 4-letter prefix"),
    ("word+filters", "one word + language + domain filters"),
    ("word-page50", "one common word, page 50 (20 per page)"),
    ("filter-only", "no text, language + tag filters"),
    ("browse", "no text, no filter (newest first)"),
)


def query_mix(seed: int, n: int) -> dict[str, list[dict[str, Any]]]:
    """``n`` queries per kind, as SearchQuery keyword arguments (the same for both engines)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    words, _ = build_vocabulary(30_000, 20261128)
    plain = [w for w in words if w.isalpha() and w.islower() and w.isascii()]
    common = list(CONTENT)  # frequent content words (ranks ~100-200 of the Zipf list)
    rare = plain[2000:12000]
    prefixes = [w[:4] for w in plain[300:3000] if len(w) >= 6]
    top_langs = LANGS[:15]
    gen_tags = CatalogGen(TAGS_SEED).tags

    def pick(items: list[str]) -> str:
        return items[int(rng.integers(len(items)))]

    mix: dict[str, list[dict[str, Any]]] = {k: [] for k, _ in QUERY_KINDS}
    for _ in range(n):
        mix["word-common"].append({"text": pick(common)})
        mix["word-rare"].append({"text": pick(rare)})
        mix["two-words"].append({"text": f"{pick(common)} {pick(common + rare[:500])}"})
        mix["prefix"].append({"text": pick(prefixes)})
        mix["word+filters"].append(
            {"text": pick(common), "languages": (pick(top_langs),), "domains": (pick(DOMAINS),)}
        )
        mix["word-page50"].append({"text": pick(common[:30]), "page": 50})
        mix["filter-only"].append({"languages": (pick(top_langs),), "tags": (pick(gen_tags[:50]),)})
        mix["browse"].append({})
    return mix


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def _summary(values: list[float], totals: list[int], budget_hit: bool) -> dict[str, Any]:
    return {
        "n": len(values),
        "p50_ms": _pct(values, 0.5) * 1000,
        "p90_ms": _pct(values, 0.9) * 1000,
        "p99_ms": _pct(values, 0.99) * 1000,
        "max_ms": max(values) * 1000 if values else None,
        "mean_ms": statistics.fmean(values) * 1000 if values else None,
        "median_total_hits": statistics.median(totals) if totals else None,
        "budget_hit": budget_hit,
    }


def _timed_kinds(
    run: Callable[[dict[str, Any]], Any],
    kinds: tuple[str, ...],
    mix: dict[str, list[dict[str, Any]]],
    budget: float,
    label: str,
) -> tuple[dict[str, Any], dict[str, list[tuple[int, list[str]]]]]:
    """Each kind's queries in order until its time budget is spent (at least one query);
    the summary per kind, and each query's answer (total, page of slugs) for comparisons."""
    out: dict[str, Any] = {}
    answers: dict[str, list[tuple[int, list[str]]]] = {}
    for kind in kinds:
        times: list[float] = []
        totals: list[int] = []
        answers[kind] = []
        deadline = time.perf_counter() + budget
        hit = False
        for q in mix[kind]:
            if times and time.perf_counter() > deadline:
                hit = True
                break
            started = time.perf_counter()
            total, slugs = run(q)
            times.append(time.perf_counter() - started)
            totals.append(total)
            answers[kind].append((total, slugs))
        out[kind] = _summary(times, totals, hit)
        log(
            f"{label} {kind}: n={len(times)} p50 {out[kind]['p50_ms']:.1f} ms p99 "
            f"{out[kind]['p99_ms']:.1f} ms (median hits {out[kind]['median_total_hits']})"
        )
    return out, answers


def time_search_inprocess(
    db: dict[str, Any],
    mix: dict[str, list[dict[str, Any]]],
    budget: float,
    searcher: Callable[..., Any] | None = None,
    kinds: tuple[str, ...] | None = None,
    label: str = "in-process",
) -> tuple[dict[str, Any], dict[str, list[tuple[int, list[str]]]]]:
    """``search`` (or ``searcher``) with a new Session per query, as a request gets one."""
    from sqlmodel import Session

    from catalog.search import SearchQuery, search
    from exchange.db import make_engine

    engine = make_engine(db["url"])
    find = searcher or search

    def run(q: dict[str, Any]) -> tuple[int, list[str]]:
        with Session(engine) as session:
            page = find(session, SearchQuery(**q))
            return page.total, [d.slug for d in page.datasets]

    try:
        run({"text": "zzzzqx"})  # connect, load the schema; a query that matches nothing
        return _timed_kinds(
            run,
            kinds or tuple(k for k, _ in QUERY_KINDS),
            mix,
            budget,
            f"search {db['kind']} {label}",
        )
    finally:
        engine.dispose()


def _http_params(q: dict[str, Any]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if q.get("text"):
        params["q"] = q["text"]
    for key, name in (("languages", "language"), ("domains", "domain"), ("tags", "tag")):
        if q.get(key):
            params[name] = list(q[key])
    if q.get("page"):
        params["page"] = q["page"]
    return params


def time_search_http(
    db: dict[str, Any],
    mix: dict[str, list[dict[str, Any]]],
    per_kind: int,
    budget: float,
    workdir: Path,
) -> dict[str, Any]:
    """``GET /datasets`` through the server process: the last ``per_kind`` queries of each
    kind (not those timed in-process), sequential, one keep-alive client."""
    import httpx

    from exchange.db import make_engine, unit_of_work
    from exchange.members import issue_token

    engine = make_engine(db["url"])
    try:
        with unit_of_work(engine) as session:
            _, token = issue_token(session, "operator", label="catalog-bench")
    finally:
        engine.dispose()
    exchange = _ExistingExchange(db, workdir)
    tail = {k: v[-per_kind:] for k, v in mix.items()}
    with exchange:
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=exchange.url, headers=headers, timeout=1800) as client:

            def run(q: dict[str, Any]) -> tuple[int, list[str]]:
                answer = client.get("/datasets", params=_http_params(q))
                answer.raise_for_status()
                body = answer.json()
                return body["total"], [d["slug"] for d in body["datasets"]]

            run({"text": "zzzzqx"})
            out, _ = _timed_kinds(
                run, tuple(k for k, _ in QUERY_KINDS), tail, budget, f"search {db['kind']} HTTP"
            )
    everything = [out[k] for k, _ in QUERY_KINDS]
    out["all"] = {"n": sum(x["n"] for x in everything)}
    return out


class _ExistingExchange:
    """A server process over an already prepared data dir (the search database)."""

    def __init__(self, db: dict[str, Any], workdir: Path) -> None:
        self.data_dir = db["data_dir"]
        self.env = db["env"]
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.logfile: Any = None

    def __enter__(self) -> _ExistingExchange:
        Exchange.start(self)  # type: ignore[arg-type]
        return self

    def __exit__(self, *_: object) -> None:
        Exchange.stop(self)  # type: ignore[arg-type]

    @property
    def timings(self) -> Path:
        return self.data_dir / "timings.jsonl"


def explain_slowest(
    db: dict[str, Any], mix: dict[str, list[dict[str, Any]]], inproc: dict[str, Any]
) -> dict[str, Any]:
    """The query plan and a cProfile of the slowest kind's worst-case query (first of its kind
    with the most hits), to say where the time goes."""
    from sqlalchemy import select
    from sqlmodel import Session

    from catalog.search import SearchQuery, search
    from exchange.db import make_engine

    kind = max((k for k, _ in QUERY_KINDS), key=lambda k: inproc[k]["p99_ms"])
    query = SearchQuery(**mix[kind][0])
    engine = make_engine(db["url"])
    statements: list[tuple[str, Any, float]] = []
    from sqlalchemy import event

    def before(
        conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool
    ) -> None:
        conn.info["bench_started"] = time.perf_counter()

    def after(
        conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool
    ) -> None:
        statements.append((statement, params, time.perf_counter() - conn.info["bench_started"]))

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:
        profiler = cProfile.Profile()
        with Session(engine) as session:
            profiler.enable()
            search(session, query)
            profiler.disable()
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)
        plans = []
        with engine.connect() as connection:
            for statement, params, seconds in list(statements):
                if not statement.lstrip().upper().startswith("SELECT"):
                    continue
                prefix = (
                    "EXPLAIN QUERY PLAN "
                    if db["kind"] == "sqlite"
                    else "EXPLAIN (ANALYZE, BUFFERS) "
                )
                try:
                    rows = connection.exec_driver_sql(prefix + statement, params).fetchall()
                    plan = [" | ".join(str(c) for c in r) for r in rows]
                except Exception as exc:
                    plan = [f"(no plan: {exc})"]
                plans.append({"sql": statement, "seconds": seconds, "plan": plan})
            connection.rollback()
    finally:
        engine.dispose()
    stream = io.StringIO()
    pstats.Stats(profiler, stream=stream).sort_stats("tottime").print_stats(8)
    _ = select
    return {
        "kind": kind,
        "query": mix[kind][0],
        "statements": plans,
        "profile": stream.getvalue()[-3000:],
    }


# -- suggested fixes, measured beside the shipped queries (product code is not changed) ------

PG_SEARCH_COLUMN = "bench_search_doc"


def suggested_search(session: Any, query: Any) -> Any:
    """``catalog.search.search`` on PostgreSQL with the ranking fixed, for comparison only:
    rank and match on a stored tsvector column (generated from the same expression, with its own
    GIN index, added by :func:`prepare_suggested`), instead of re-parsing title, tags,
    description and card with ``to_tsvector`` for every matching row. (SQLite's fix, one FTS5
    scan for the matches and their bm25, has shipped in ``catalog.search``.)
    """
    from sqlalchemy import and_, func, literal_column, select
    from sqlmodel import col

    from catalog.models import Dataset
    from catalog.search import _WORD, MAX_PAGE_SIZE, SearchPage, _filters, _pg_safe

    words = _WORD.findall(query.text)[:16]
    if not words:
        raise ValueError("the suggested query is only for text searches")
    per_page = max(1, min(query.per_page, MAX_PAGE_SIZE))
    page = max(1, query.page)
    conditions = _filters(query)
    tsquery = func.to_tsquery("english", " & ".join(w + ":*" for w in _pg_safe(words)))
    document = literal_column(f"dataset.{PG_SEARCH_COLUMN}")
    conditions.append(document.op("@@")(tsquery))
    where = and_(True, *conditions)
    total = session.execute(select(func.count()).select_from(Dataset).where(where)).scalar_one()
    statement = (
        select(Dataset)
        .where(where)
        .order_by(-func.ts_rank(document, tsquery), col(Dataset.slug))
        .offset((page - 1) * per_page)
        .limit(per_page)
    )
    rows = session.execute(statement).scalars().all()
    return SearchPage(int(total), page, per_page, list(rows))


def prepare_suggested(db: dict[str, Any]) -> float:
    """PostgreSQL: add the stored tsvector column and its GIN index (the suggested migration)
    to the benchmark's own database; seconds taken. SQLite needs no schema change."""
    if db["kind"] != "postgres":
        return 0.0
    from catalog.search import PG_DOCUMENT
    from exchange.db import make_engine

    engine = make_engine(db["url"])
    started = time.perf_counter()
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(
                f"ALTER TABLE dataset ADD COLUMN IF NOT EXISTS {PG_SEARCH_COLUMN} tsvector "
                f"GENERATED ALWAYS AS ({PG_DOCUMENT.replace('dataset.', '')}) STORED"
            )
            connection.exec_driver_sql(
                f"CREATE INDEX IF NOT EXISTS ix_{PG_SEARCH_COLUMN} ON dataset "
                f"USING GIN ({PG_SEARCH_COLUMN})"
            )
            connection.exec_driver_sql("ANALYZE dataset")
    finally:
        engine.dispose()
    return time.perf_counter() - started


def drop_suggested(db: dict[str, Any]) -> float:
    """Undo :func:`prepare_suggested`, rewriting the table so a reused database is as built."""
    if db["kind"] != "postgres":
        return 0.0
    from exchange.db import make_engine

    engine = make_engine(db["url"], isolation_level="AUTOCOMMIT")
    started = time.perf_counter()
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql(
                f"ALTER TABLE dataset DROP COLUMN IF EXISTS {PG_SEARCH_COLUMN}"
            )
            connection.exec_driver_sql("VACUUM FULL ANALYZE dataset")
    finally:
        engine.dispose()
    return time.perf_counter() - started


TEXT_KINDS = ("word-common", "word-rare", "two-words", "prefix", "word+filters", "word-page50")


def time_suggested(
    db: dict[str, Any],
    mix: dict[str, list[dict[str, Any]]],
    budget: float,
    shipped: dict[str, list[tuple[int, list[str]]]],
) -> dict[str, Any]:
    """The text kinds again with :func:`suggested_search`; each answer is compared with the
    shipped ``search``'s answer to the same query (same total, same page of slugs in order)."""
    out: dict[str, Any] = {"schema_change_s": prepare_suggested(db)}
    try:
        timed, answers = time_search_inprocess(
            db, mix, budget, searcher=suggested_search, kinds=TEXT_KINDS, label="suggested"
        )
    finally:
        out["schema_restore_s"] = drop_suggested(db)
    for kind in TEXT_KINDS:
        pairs = list(zip(shipped.get(kind, []), answers[kind], strict=False))
        same = sum(1 for a, b in pairs if a == b)
        out[kind] = {**timed[kind], "same_results": f"{same}/{len(pairs)}"}
    return out


def run_search(
    kind: str,
    args: argparse.Namespace,
    workdir: Path,
    save_partial: Callable[[dict[str, Any]], None] = lambda out: None,
) -> dict[str, Any]:
    log(f"== search on {kind}: {args.datasets:,} datasets")
    db = create_search_db(kind, workdir, args)
    out: dict[str, Any] = {
        k: db[k]
        for k in (
            "datasets",
            "labels",
            "providers",
            "insert_batch",
            "insert_procs",
            "insert_s",
            "insert_rate",
            "insert_process_s",
            "database_bytes",
            "reused",
            "built_at",
            "resumed_from",
        )
    }
    try:
        mix = query_mix(args.seed + 99, args.queries)
        out["inprocess"], shipped = time_search_inprocess(db, mix, args.query_budget)
        save_partial(out)
        out["http"] = time_search_http(db, mix, args.http_per_kind, args.query_budget, workdir)
        save_partial(out)
        out["explain"] = explain_slowest(db, mix, out["inprocess"])
        save_partial(out)
        if db["kind"] == "postgres":  # SQLite's suggested fix has shipped
            out["suggested"] = time_suggested(db, mix, args.query_budget, shipped)
    finally:
        if not args.keep:
            shutil.rmtree(db["data_dir"], ignore_errors=True)
            if db["db_name"]:
                pg_admin(f'DROP DATABASE IF EXISTS "{db["db_name"]}" WITH (FORCE)')
    return out


# =============================================================================================
# Metadata, Markdown
# =============================================================================================


def machine_info() -> dict[str, Any]:
    cpu = mhz = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and cpu == "unknown":
                cpu = line.split(":", 1)[1].strip()
            if line.startswith("cpu MHz") and mhz == "unknown":
                mhz = line.split(":", 1)[1].strip()
    mem = "unknown"
    with contextlib.suppress(OSError, ValueError, IndexError):
        kb = int(Path("/proc/meminfo").read_text().split("\n")[0].split()[1])
        mem = f"{kb / (1 << 20):.1f} GiB"
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu,
        "cpu_mhz": mhz,
        "memory": mem,
        "kernel": platform.release(),
        "load_at_start": list(os.getloadavg()),
    }


def _compiled_modules() -> str:
    """Which of catalog's compiled modules this run uses (CORPUSX_PURE_PYTHON=1: none)."""
    from catalog import native

    used = [name for name, on in native.built().items() if on]
    pure = os.environ.get(native.PURE_PYTHON_ENV)
    return (", ".join(used) or "none") + (f" ({native.PURE_PYTHON_ENV}={pure})" if pure else "")


def collect_meta(args: argparse.Namespace, command: str) -> dict[str, Any]:
    pg = "not used"
    if "search-postgres" in args.selected:
        try:
            import psycopg

            with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5) as c:
                pg = str(c.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
        except Exception as exc:
            pg = f"unavailable ({type(exc).__name__})"
    sha_version = subprocess.run(
        ["sha256sum", "--version"], capture_output=True, text=True, check=False
    ).stdout.splitlines()[:1]
    import ssl

    return {
        "date": datetime.now().date().isoformat(),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command,
        "machine": machine_info(),
        "versions": {
            "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version,
            "postgresql": pg,
            "openssl (hashlib)": ssl.OPENSSL_VERSION,
            "sha256sum": sha_version[0] if sha_version else "unknown",
            **{
                p: _version(p)
                for p in (
                    "pyarrow",
                    "numpy",
                    "httpx",
                    "uvicorn",
                    "fastapi",
                    "boto3",
                    "moto",
                    "SQLAlchemy",
                    "psycopg",
                )
            },
        },
        "code": {
            "compiled_modules": _compiled_modules(),
            "git_head": _git("rev-parse", "--short", "HEAD"),
            "uncommitted_changes": _git(
                "status", "--porcelain", "--", "catalog", "exchange", "storage"
            ).splitlines(),
        },
        "parameters": {
            k: (str(v) if isinstance(v, Path) else v)
            for k, v in vars(args).items()
            if k not in ("out",)
        },
    }


def _n(x: Any, digits: int = 2) -> str:
    if x is None:
        return "–"
    if isinstance(x, float) and x != x:
        return "–"
    return f"{x:,.{digits}f}"


def _size(n: int) -> str:
    return f"{n / GiB:.2f} GiB" if n >= GiB // 2 else f"{n / MiB:.0f} MiB"


STEP_ROWS = (
    (
        "cli_startup_s",
        "`corpusx` process start (Python, this script's and the CLI's imports) until `publish_corpus`",
    ),
    ("client_ingest_s", "client ingest (`ingest`, 2 workers, uploads already running)"),
    ("upload_tail_s", "uploads still running after the ingest ended"),
    ("label_and_sign_s", "next label + signing"),
    ("publish_request_s", "`POST /datasets/{slug}/versions`"),
    ("server_verify_s", "  server `verify_claims` (claims vs the server's derivations)"),
    ("server_verify_derivations_s", "    of which finding/making derivations (cache misses)"),
    ("server_verify_download_s", "    of which `local_copies` (S3: download of a miss)"),
    (
        "server_record_version_s",
        "  server `record_version` (catalogue rows, ledger entry, overlap)",
    ),
    ("server_find_overlaps_s", "    of which `find_overlaps`"),
    ("server_index_version_s", "    of which `index_version` (overlap index rows)"),
    ("server_transaction_and_rest_s", "  transaction, commit, JSON (request − verification)"),
    ("cli_exit_s", "`corpusx` after `publish_corpus` (output, exit)"),
)
OVERLAPPED_ROWS = (
    ("uploads_busy_s", "`PUT /blobs/{digest}` requests, added up (2 at a time)"),
    (
        "server_store_put_s",
        "  server `store.put` (write + fsync + hash / S3 parts; local: the derivation below too)",
    ),
    ("server_derive_upload_s", "  server's derivation of the upload (it reads the file once)"),
)


def render_markdown(r: dict[str, Any]) -> str:
    m = r["meta"]
    lines: list[str] = []
    add = lines.append
    add(f"# Catalogue benchmarks — {m['date']}")
    add("")
    add("Produced by this exact command, from the repository root with the venv active:")
    add("")
    add("```")
    add(m["command"])
    add("```")
    add("")
    mach = m["machine"]
    add("| Machine | |")
    add("|---|---|")
    add(f"| nproc | {mach['nproc']} |")
    add(f"| CPU | {mach['cpu_model']} ({mach['cpu_mhz']} MHz) |")
    add(f"| memory | {mach['memory']} |")
    add(
        f"| load average at start / end | {', '.join(f'{x:.2f}' for x in mach['load_at_start'])}"
        f" / {', '.join(f'{x:.2f}' for x in r.get('load_at_end', []))} |"
    )
    add(f"| started (UTC) | {m['started']} |")
    add(f"| wall time of the whole run | {_n(r.get('wall_s'), 0)} s |")
    add("| versions | " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()) + " |")
    dirty = ", ".join(m["code"]["uncommitted_changes"]) or "none"
    add(
        f"| code | git {m['code']['git_head']}; uncommitted changes under catalog/ exchange/ "
        f"storage/: {dirty} |"
    )
    add(f"| compiled modules (catalog.native) | {m['code'].get('compiled_modules', 'unknown')} |")
    add("")
    add(
        "The machine is shared and noisy (other jobs ran during this run; see the load "
        "averages): compare the **ratios** — both sides measured in the same run, next to each "
        "other — not absolute times across runs. No figure here is asserted by any test."
    )
    add("")
    if r.get("errors"):
        add("**Errors during the run:**")
        add("")
        for e in r["errors"]:
            add(f"- `{e['section']}`: {e['error']}")
        add("")
    corpora = r.get("corpora", {})
    if corpora:
        add("## Corpora")
        add("")
        add(
            "Generated with a seeded RNG: words drawn Zipf-style from a fixed 30,000-word "
            "vocabulary (common English words first, then pseudo-words, some punctuated, "
            "capitalised and accented forms), about 1 KB of text per document; JSONL records "
            '`{"id", "url", "text"}`, Parquet columns `id` (int64), `url`, `text` (string, '
            "snappy, 20,000-row row groups). Page cache warm for every timed pass."
        )
        add("")
        add("| Corpus | files | documents | stored bytes | generated in |")
        add("|---|---|---|---|---|")
        for fmt, c in corpora.items():
            add(
                f"| {fmt} | {len(c['files'])} | {c['documents']:,} | {_size(c['bytes'])} "
                f"({c['bytes']:,} B) | {_n(c['generated_in_s'], 0)} s |"
            )
        add("")
    _render_targets(r, add)
    if "ingest" in r:
        add("## Ingest alone vs sha256sum")
        add("")
        add(
            "`catalog.ingest.ingest(scan(files), workers=2)` (fresh process pool each time), "
            "between `sha256sum` passes over the same files. `sha256sum` is one process (the "
            "floor named in the target); the 2-process column splits the files over two "
            "`sha256sum` processes; `hashlib` is one Python process reading 1 MiB chunks."
        )
        add("")
        add(
            "| Corpus | rep | ingest (2 workers) s | sha256sum s (before/after) | ratio | "
            "sha256sum ×2 procs s | hashlib s | load |"
        )
        add("|---|---|---|---|---|---|---|---|")
        for fmt, res in r["ingest"].items():
            for row in res["runs"]:
                b, a = row["sha256sum_before_after_s"]
                add(
                    f"| {fmt} | {row['rep']} | {_n(row['ingest_w2_s'])} | {_n(b)} / {_n(a)} | "
                    f"**{_n(row['ingest_w2_s'] / row['sha256sum_s'], 1)}×** | "
                    f"{_n(row['sha256sum_2procs_s'])} | {_n(row['hashlib_1proc_s'])} | "
                    f"{_n(row['load1'], 1)} |"
                )
        add("")
        add(
            "| Corpus | median ingest s | 1 worker s | median ratio to sha256sum | to sha256sum ×2 |"
        )
        add("|---|---|---|---|---|")
        for fmt, res in r["ingest"].items():
            add(
                f"| {fmt} | {_n(res['median_s'])} | {_n(res['ingest_w1_s'])} | "
                f"{_n(res['ratio_median'], 1)}× | {_n(res['ratio_2procs_median'], 1)}× |"
            )
        add("")
    for store in ("local", "s3"):
        key = f"publish-{store}"
        if key not in r:
            continue
        add(
            f"## Publish end to end — {'local blob store' if store == 'local' else 'S3 blob store (moto)'}"
        )
        add("")
        add(
            "`corpusx dataset publish CORPUS_DIR --dataset ... --json` (a new process, "
            "`exchange.cli.main` itself, run through this script's `_cli` mode, which only adds "
            "timers) against a fresh exchange each time (new data dir, SQLite, the server in its "
            "own process under uvicorn on a loopback port, the provider registered through the "
            "API). The wall time is the `corpusx` process's, start to exit. The server's steps "
            "are timed by wrappers installed in the server process around "
            "`verification.derive_upload` and `UploadDerivation` (the upload's derivation), "
            "`publishing.verify_claims`, `publishing.local_copies`, "
            "`publishing.record_version`, the overlap index calls and the store's `put` "
            "(`put_read` for the local store); the "
            "client's around `ingest`, `publish_corpus` and each `ExchangeClient` request. "
            "`sha256sum` ran just before and just after each publish."
        )
        if store == "s3":
            add("")
            add(
                "The S3 store is moto's server (`python -m moto.server`), a single-threaded "
                "Python process on the same two cores: its own cost is part of the figures. "
                "The raw S3 row is boto3 `upload_file` + `get_object` of the same files "
                "straight to that server, for scale."
            )
        add("")
        add(
            "| Corpus | rep | publish s | sha256sum s (before/after) | publish / sha256sum | "
            "publish / sha256sum ×2 | load |"
        )
        add("|---|---|---|---|---|---|---|")
        for fmt, res in r[key].items():
            for row in res["runs"]:
                b, a = row["sha256sum_before_after_s"]
                add(
                    f"| {fmt} | {row['rep']} | {_n(row['publish_s'])} | {_n(b)} / {_n(a)} | "
                    f"**{_n(row['publish_s'] / row['sha256sum_s'], 1)}×** | "
                    f"{_n(row['publish_s'] / row['sha256sum_2procs_s'], 1)}× | "
                    f"{_n(row['load1'], 1)} |"
                )
        add("")
        add("Where the time goes (median over the repetitions; share of the publish wall time):")
        add("")
        fmts = list(r[key])
        add("| Step | " + " | ".join(f"{f} s | {f} share" for f in fmts) + " |")
        add("|---|" + "---|---|" * len(fmts))
        for step, label in STEP_ROWS:
            cells = []
            for fmt in fmts:
                runs = r[key][fmt]["runs"]
                med = statistics.median(x.get(step, 0.0) for x in runs)
                tot = statistics.median(x["publish_s"] for x in runs)
                cells.append(f"{_n(med)} | {_n(100 * med / tot, 0)}%")
            add(f"| {label} | " + " | ".join(cells) + " |")
        add(
            "| **publish (total)** | "
            + " | ".join(f"**{_n(r[key][f]['median_s'])}** | 100%" for f in fmts)
            + " |"
        )
        add("")
        add(
            "Overlapping the steps above (uploads start while the client is still ingesting; "
            "the server reads each stored file in its worker processes before answering the "
            "upload): busy time added up, median."
        )
        add("")
        add("| In flight | " + " | ".join(f"{f} s" for f in fmts) + " |")
        add("|---|" + "---|" * len(fmts))
        for step, label in OVERLAPPED_ROWS:
            cells = [
                _n(statistics.median(x.get(step, 0.0) for x in r[key][f]["runs"])) for f in fmts
            ]
            add(f"| {label} | " + " | ".join(cells) + " |")
        add("")
        add(
            "CPU seconds (median): the `corpusx` process with its ingest workers; the server "
            "process with its derivation workers; one `sha256sum` pass over the same files."
        )
        add("")
        add("| CPU | " + " | ".join(f"{f} s" for f in fmts) + " |")
        add("|---|" + "---|" * len(fmts))
        for step, label in (
            ("client_cpu_s", "client (`corpusx`)"),
            ("server_cpu_s", "server (uvicorn + workers)"),
            ("sha256sum_cpu_s", "`sha256sum`"),
        ):
            cells = [
                _n(statistics.median(x.get(step, 0.0) for x in r[key][f]["runs"])) for f in fmts
            ]
            add(f"| {label} | " + " | ".join(cells) + " |")
        add(
            "| (client + server) / sha256sum | "
            + " | ".join(
                _n(
                    statistics.median(
                        (x.get("client_cpu_s", 0) + x.get("server_cpu_s", 0))
                        / max(x.get("sha256sum_cpu_s", 0), 1e-9)
                        for x in r[key][f]["runs"]
                    ),
                    1,
                )
                + "×"
                for f in fmts
            )
            + " |"
        )
        add("")
        for fmt in fmts:
            raw = r[key][fmt].get("raw_s3")
            if raw:
                add(
                    f"Raw S3 floor, {fmt}: boto3 put {_n(raw['put_s'])} s, get "
                    f"{_n(raw['get_s'])} s (same files, same moto server)."
                )
                add("")
    if "profile" in r:
        add("## cProfile of one file: client `ingest_file` and server verification")
        add("")
        for fmt, p in r["profile"].items():
            if fmt == "publish":
                continue
            add(
                f"**{fmt}** — `{p['file']}` ({_size(p['bytes'])}): `ingest_file` "
                f"{_n(p['ingest_file_s'])} s unprofiled vs `sha256sum` {_n(p['sha256sum_s'])} s "
                f"({_n(p['ingest_file_s'] / p['sha256sum_s'], 1)}×); under cProfile "
                f"{_n(p['profiled_total_s'])} s."
            )
            add("")
            add("| function | calls | tottime s | share | cumtime s |")
            add("|---|---|---|---|---|")
            for row in p["top"]:
                add(
                    f"| `{row['function']}` | {row['calls']:,} | {_n(row['tottime_s'])} | "
                    f"{_n(100 * row['share'], 0)}% | {_n(row['cumtime_s'])} |"
                )
            add("")
            if p.get("verify_top"):
                add(
                    f"Server side, same file: `catalog.derivation.derive_file` (`ingest_file` "
                    f"with the overlap `FileSketch` observer, as the server's workers run it on "
                    f"an upload) {_n(p['verify_s'])} s unprofiled "
                    f"({_n(p['verify_s'] / p['sha256sum_s'], 1)}× `sha256sum`); under cProfile "
                    f"{_n(p['verify_profiled_total_s'])} s:"
                )
                add("")
                add("| function | calls | tottime s | share | cumtime s |")
                add("|---|---|---|---|---|")
                for row in p["verify_top"]:
                    add(
                        f"| `{row['function']}` | {row['calls']:,} | {_n(row['tottime_s'])} | "
                        f"{_n(100 * row['share'], 0)}% | {_n(row['cumtime_s'])} |"
                    )
                add("")
    if r.get("overlap"):
        add("## Overlap check: cost per document")
        add("")
        add(
            "One file of each corpus, in the benchmark's own process. Sketching: CPU seconds of "
            "`ingest_file` with the `FileSketch` observer minus without it (best of the "
            "repetitions), per document. Lookups and indexing: `find_overlaps` then "
            "`index_version` of that file's version as provider B, on a fresh database that "
            "already indexes provider A's identical version (every lookup hits), wall time per "
            "document, in one transaction as at publish. The first lookup loads A's segment "
            "from the database into memory; the second (after the slash) finds it there, as "
            "a running server's later lookups do."
        )
        add("")
        add(
            "| Corpus | file | documents | samples (level) | ingest CPU s | + sketch CPU s | "
            "sketch µs/doc | SQLite find µs/doc | SQLite index µs/doc | PostgreSQL find µs/doc "
            "| PostgreSQL index µs/doc | load |"
        )
        add("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for fmt, o in r["overlap"].items():
            sq, pg = o["sqlite"], o["postgres"]
            add(
                f"| {fmt} | `{o['file']}` ({_size(o['bytes'])}) | {o['records']:,} | "
                f"{o['samples']:,} ({o['sample_level']}) | {_n(o['ingest_cpu_s'])} | "
                f"{_n(o['ingest_and_sketch_cpu_s'])} | **{_n(o['sketch_us_per_document'], 1)}** | "
                f"{_find(sq)} | {_n(sq['index_us_per_document'], 1)} | "
                f"{_find(pg)} | {_n(pg['index_us_per_document'], 1)} | "
                f"{_n(o['load1'], 1)} |"
            )
        add("")
    pp = r.get("profile", {}).get("publish")
    if pp:
        add("## cProfile of one publish (one JSONL file, local store): the upload path")
        add("")
        add(
            f"One more publish, of `{pp.get('file', '?')}` alone ({_size(pp.get('bytes', 0))}), "
            f"with the client's main thread under cProfile ({_n(pp['publish_s'])} s in all, "
            f"upload {_n(pp['upload_s'])} s; the server's verification and transaction show "
            "here only as `recv`, waiting for the answer) and every server-side `store.put` "
            "profiled in the worker thread it runs in."
        )
        add("")
        for side, title in (("client", "client main thread"), ("server_put", "server `put`")):
            prof = pp.get(side)
            if not prof:
                continue
            add(f"**{title}** ({_n(prof['total_s'])} s profiled)")
            add("")
            add("| function | calls | tottime s | share | cumtime s |")
            add("|---|---|---|---|---|")
            for row in prof["top"]:
                add(
                    f"| `{row['function']}` | {row['calls']:,} | {_n(row['tottime_s'])} | "
                    f"{_n(100 * row['share'], 0)}% | {_n(row['cumtime_s'])} |"
                )
            add("")
    for kind in ("sqlite", "postgres"):
        key = f"search-{kind}"
        if key not in r:
            continue
        s = r[key]
        engine = "SQLite (FTS5)" if kind == "sqlite" else "PostgreSQL (tsvector GIN)"
        add(f"## Search — {engine}, {s['datasets']:,} datasets")
        add("")
        reused = (
            f" (database built by an earlier `--keep` run of this script, finished at "
            f"{s['built_at']}, reused with `--reuse`)"
            if s.get("reused")
            else ""
        )
        if s.get("resumed_from"):
            reused += (
                f" (that build was interrupted and resumed at {s['resumed_from']:,} "
                "datasets; the time and rate are of the resumed part)"
            )
        add(
            f"{s['datasets']:,} datasets ({s['labels']:,} label rows) from {s['providers']} "
            f"providers, inserted with `catalog.services.create_dataset` in transactions of "
            f"{s['insert_batch']:,} by {s['insert_procs']} processes at once "
            f"({_n(s['insert_s'], 0)} s wall, {_n(s['insert_rate'], 0)} datasets/s){reused}; "
            f"database {_size(s['database_bytes'])}. "
            "Titles of 2–6 vocabulary words + a domain + a noun; descriptions ~250 B; cards "
            "~700 B of Markdown; 1–6 tags of 300 (Zipf), 1–3 of 40 languages, 1–2 of 20 "
            "domains; sizes log-normal."
        )
        add("")
        add(
            "In-process: `catalog.search.search(session, SearchQuery(...))` with a new "
            "`Session` per query (as a request gets), the page's rows loaded. HTTP: "
            "`GET /datasets?...` with one keep-alive httpx client, sequential, against the "
            "server process (which also loads each result's labels)."
        )
        add("")
        add(
            "| Query | in-process n | p50 ms | p99 ms | max ms | median hits | HTTP n | "
            "HTTP p50 ms | HTTP p99 ms |"
        )
        add("|---|---|---|---|---|---|---|---|---|")
        for qk, label in QUERY_KINDS:
            i = s.get("inprocess", {}).get(qk)
            h = s.get("http", {}).get(qk)
            if not i:
                continue
            budget = " (budget)" if i["budget_hit"] else ""
            hb = " (budget)" if h and h["budget_hit"] else ""
            add(
                f"| {label} | {i['n']}{budget} | {_n(i['p50_ms'], 1)} | {_n(i['p99_ms'], 1)} | "
                f"{_n(i['max_ms'], 1)} | {_n(i['median_total_hits'], 0)} | "
                f"{h['n'] if h else '–'}{hb} | {_n(h['p50_ms'] if h else None, 1)} | "
                f"{_n(h['p99_ms'] if h else None, 1)} |"
            )
        add("")
        allh = s.get("http", {}).get("all")
        add(
            "(budget) marks a kind whose time budget ran out before its last query; the "
            "in-process and HTTP runs use different queries of the same kind"
            + (f"; {allh['n']} HTTP requests in all." if allh else ".")
        )
        add("")
        sug = s.get("suggested")
        if sug:
            fix = (
                "match and rank on a stored generated `tsvector` column with its own GIN "
                f"index (added to the benchmark's database in {_n(sug['schema_change_s'], 0)} "
                "s) instead of recomputing `to_tsvector` of title, tags, description and "
                "card for every matching row"
            )
            add(
                f"**Suggested fix, measured in the same run** (`suggested_search` in this "
                f"script; product code unchanged): {fix}. Same results = same total and same "
                "page of slugs, in order, as the shipped `search`, for the first queries of "
                "each kind."
            )
            add("")
            add(
                "| Query | shipped p50 ms | shipped p99 ms | suggested n | suggested p50 ms | "
                "suggested p99 ms | p50 speed-up | same results |"
            )
            add("|---|---|---|---|---|---|---|---|")
            for qk, label in QUERY_KINDS:
                g = sug.get(qk)
                i = s.get("inprocess", {}).get(qk)
                if not g or not i:
                    continue
                up = i["p50_ms"] / g["p50_ms"] if g["p50_ms"] else None
                add(
                    f"| {label} | {_n(i['p50_ms'], 1)} | {_n(i['p99_ms'], 1)} | {g['n']} | "
                    f"{_n(g['p50_ms'], 1)} | {_n(g['p99_ms'], 1)} | {_n(up, 1)}× | "
                    f"{g['same_results']} |"
                )
            add("")
        ex = s.get("explain")
        if ex:
            add(
                f"Slowest kind by p99: **{ex['kind']}**; its first query `{ex['query']}` — "
                "statements, times and plans:"
            )
            add("")
            add("```")
            for st in ex["statements"]:
                add(f"-- {st['seconds'] * 1000:.1f} ms")
                add(" ".join(st["sql"].split())[:600])
                for line in st["plan"][:14]:
                    add("   " + line)
            add("```")
            add("")
    if r.get("analysis"):
        add("## Analysis")
        add("")
        add(r["analysis"])
        add("")
    return "\n".join(lines) + "\n"


def _render_targets(r: dict[str, Any], add: Callable[[str], None]) -> None:
    rows = []
    for store in ("local", "s3"):
        for fmt, res in r.get(f"publish-{store}", {}).items():
            ratio = res["ratio_median"]
            rows.append(
                f"| publish ≤ 1.5× sha256sum | {fmt}, {store} store | "
                f"{_n(res['median_s'])} s vs {_n(res['median_sha256sum_s'])} s = "
                f"**{_n(ratio, 1)}×** (best {_n(res['ratio_min'], 1)}×) | "
                f"{'yes' if ratio <= 1.5 else f'no ({_n(ratio / 1.5, 1)}× over)'} |"
            )
    for fmt, res in r.get("ingest", {}).items():
        rows.append(
            f"| (ingest alone, for reference) | {fmt} | {_n(res['median_s'])} s vs "
            f"{_n(res['median_sha256sum_s'])} s = **{_n(res['ratio_median'], 1)}×** | – |"
        )
    for kind in ("sqlite", "postgres"):
        s = r.get(f"search-{kind}")
        if s and "inprocess" in s:
            worst = max(s["inprocess"].items(), key=lambda kv: kv[1]["p99_ms"])
            best = min(s["inprocess"].items(), key=lambda kv: kv[1]["p50_ms"])
            http = s.get("http", {})
            hw = http.get(worst[0], {})
            rows.append(
                f"| search latency (no numeric target given) | {kind}, {s['datasets']:,} "
                f"datasets | fastest kind `{best[0]}` p50 {_n(best[1]['p50_ms'], 1)} ms; "
                f"slowest kind `{worst[0]}` p50 {_n(worst[1]['p50_ms'], 0)} ms / p99 "
                f"{_n(worst[1]['p99_ms'], 0)} ms in-process, HTTP p50 "
                f"{_n(hw.get('p50_ms'), 0)} ms | – |"
            )
    if rows:
        add("## Targets")
        add("")
        add("| Target | Case | Measured (median) | Met |")
        add("|---|---|---|---|")
        for row in rows:
            add(row)
        add("")


# =============================================================================================
# Main
# =============================================================================================


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--only", default="", help="comma-separated: " + ", ".join(ALL) + ", publish, search"
    )
    p.add_argument("--size-gib", type=float, default=1.0, help="size of each corpus (default 1)")
    p.add_argument("--files", type=int, default=8, help="files per corpus (default 8)")
    p.add_argument("--formats", default="jsonl,parquet")
    p.add_argument("--repeat", type=int, default=3, help="ingest repetitions (default 3)")
    p.add_argument("--publish-repeat", type=int, default=2, help="publishes per case (default 2)")
    p.add_argument("--profile-top", type=int, default=15)
    p.add_argument("--datasets", type=int, default=100_000)
    p.add_argument("--providers", type=int, default=50)
    p.add_argument("--insert-batch", type=int, default=1000, help="datasets per transaction")
    p.add_argument("--insert-procs", type=int, default=2, help="processes inserting at once")
    p.add_argument(
        "--reuse",
        action="store_true",
        help="search: use the databases a --keep run left in --workdir, if built "
        "with the same --datasets/--providers/--seed",
    )
    p.add_argument("--queries", type=int, default=200, help="in-process queries per kind")
    p.add_argument("--http-per-kind", type=int, default=40, help="HTTP requests per kind")
    p.add_argument("--query-budget", type=float, default=60.0, help="seconds per kind at most")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    p.add_argument("--tag", default=None, help="file name suffix (default: derived)")
    p.add_argument("--workdir", type=Path, default=None, help="default: a new dir under /tmp")
    p.add_argument("--keep", action="store_true", help="keep corpora, data dirs and databases")
    p.add_argument("--db-suffix", default="", help="suffix of the PostgreSQL database name")
    args = p.parse_args(argv)
    selected: list[str] = []
    for name in filter(None, (x.strip() for x in args.only.split(","))):
        for n in ALIASES.get(name, (name,)):
            if n not in ALL:
                p.error(f"unknown benchmark {n!r}")
            selected.append(n)
    args.selected = [n for n in ALL if n in selected] if selected else list(ALL)
    args.format_list = [f for f in args.formats.split(",") if f]
    return args


def _default_tag(args: argparse.Namespace) -> str:
    parts = []
    if args.selected != list(ALL):
        parts.append("+".join(args.selected))
    if args.size_gib != 1.0 and any(s in args.selected for s in ALL[:5]):
        parts.append(f"{args.size_gib:g}gib")
    if args.datasets != 100_000 and any(s.startswith("search") for s in args.selected):
        parts.append(f"n{args.datasets}")
    return ("-" + "-".join(parts)) if parts else ""


def main(argv: list[str] | None = None) -> int:
    if (argv if argv is not None else sys.argv[1:])[:1] == ["_serve"]:
        serve_main()
        return 0
    if (argv if argv is not None else sys.argv[1:])[:1] == ["_cli"]:
        return cli_main((argv if argv is not None else sys.argv[1:])[1:])
    args = parse_args(argv)
    command = "python benchmarks/catalog_bench.py" + (
        " " + shlex.join(argv if argv is not None else sys.argv[1:])
        if (argv if argv is not None else sys.argv[1:])
        else ""
    )
    results: dict[str, Any] = {"meta": collect_meta(args, command), "errors": []}
    date = results["meta"]["date"]
    tag = args.tag if args.tag is not None else _default_tag(args)
    args.out.mkdir(parents=True, exist_ok=True)
    md_path = args.out / f"catalog-{date}{tag}.md"
    json_path = args.out / f"catalog-{date}{tag}.json"
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="corpusx-catbench-", dir="/tmp"))
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    def save() -> None:
        results["wall_s"] = time.perf_counter() - started
        results["load_at_end"] = list(os.getloadavg())
        json_path.write_text(json.dumps(results, indent=2, default=str) + "\n")
        md_path.write_text(render_markdown(results))

    def section(name: str, run: Callable[[], Any]) -> None:
        try:
            results[name] = run()
        except Exception as exc:
            traceback.print_exc()
            results["errors"].append({"section": name, "error": f"{type(exc).__name__}: {exc}"})
        save()

    log(f"work dir {workdir}; results to {md_path}")
    try:
        needs_corpus = [
            s
            for s in args.selected
            if s in ("ingest", "publish-local", "publish-s3", "profile", "overlap")
        ]
        corpora: dict[str, dict[str, Any]] = {}
        if needs_corpus:
            for i, fmt in enumerate(args.format_list):
                log(f"generating the {fmt} corpus ({args.size_gib:g} GiB, {args.files} files)")
                corpora[fmt] = make_corpus(
                    workdir / f"corpus-{fmt}",
                    fmt,
                    int(args.size_gib * GiB),
                    args.files,
                    args.seed + i,
                )
                log(
                    f"  {corpora[fmt]['documents']:,} documents, {corpora[fmt]['bytes']:,} bytes "
                    f"in {corpora[fmt]['generated_in_s']:.0f}s"
                )
            results["corpora"] = {
                f: {k: v for k, v in c.items() if k != "root"} for f, c in corpora.items()
            }
            save()
        if "ingest" in args.selected:
            section("ingest", lambda: {f: run_ingest(c, args.repeat) for f, c in corpora.items()})
        if "publish-local" in args.selected:
            section(
                "publish-local",
                lambda: {
                    f: run_publish(c, "local", workdir, args.publish_repeat, None)
                    for f, c in corpora.items()
                },
            )
        if "publish-s3" in args.selected:

            def s3() -> dict[str, Any]:
                with moto_server(workdir) as endpoint:
                    return {
                        f: run_publish(c, "s3", workdir, args.publish_repeat, endpoint)
                        for f, c in corpora.items()
                    }

            section("publish-s3", s3)
        if "profile" in args.selected:
            section("profile", lambda: run_profile(corpora, args.profile_top, workdir))
        if "overlap" in args.selected:
            section("overlap", lambda: run_overlap_cost(corpora, workdir, args.repeat))
        for kind in ("sqlite", "postgres"):
            if f"search-{kind}" in args.selected:

                def partial(out: dict[str, Any], kind: str = kind) -> None:
                    results[f"search-{kind}"] = out
                    save()

                section(
                    f"search-{kind}",
                    lambda kind=kind, partial=partial: run_search(kind, args, workdir, partial),  # type: ignore[misc]
                )
    finally:
        try:
            save()
        finally:
            _cleanup(args, workdir)
        log(f"wrote {md_path} and {json_path}")
    return 1 if results["errors"] else 0


def _cleanup(args: argparse.Namespace, workdir: Path) -> None:
    """Remove the work data (unless --keep): the whole work dir if this run made it."""
    if args.keep:
        return
    if args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        for fmt in args.format_list:
            shutil.rmtree(workdir / f"corpus-{fmt}", ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
