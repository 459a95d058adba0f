"""Ingestion: from a folder of corpus files to a version manifest, deterministically.

The provider's CLI runs :func:`ingest` on its own machine before signing; the exchange runs
:func:`verify_file` over the uploaded blobs to check every claim. Both run this code, so the
result depends on nothing but the bytes, the names and the options: not on the order in which
files were found or finished, the number of workers, the machine or the time.

- :func:`scan` lists the files (safe relative names, no escaping symlinks, no clashes).
- :func:`ingest_file` reads one file once, streaming, into a :class:`FileManifest`.
- :func:`ingest` does all of them on a process pool and reports progress in stored bytes.
"""

from __future__ import annotations

import multiprocessing
import os
import stat
import tempfile
import threading
import unicodedata
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing.context import BaseContext
from pathlib import Path
from queue import Empty, SimpleQueue
from typing import Any

from catalog.documents import (
    DocumentTree,
    IngestOptions,
    SourceKind,
    classify_name,
    digest_leaves,
    document_digests,
    logical_name,
)
from catalog.errors import CatalogError, ClaimMismatchError, IngestError
from catalog.language import LanguageSample, sampled_positions
from catalog.manifest import (
    FileEntry,
    FileManifest,
    TextStats,
    VersionManifest,
    estimate_tokens,
    manifest_differences,
    validate_name,
)
from catalog.readers import Batch, open_reader
from catalog.streams import FileStat, StoredFile

__all__ = [
    "INGEST_REVISION",
    "BatchObserver",
    "FileCallback",
    "IngestProgress",
    "ProgressCallback",
    "SourceFile",
    "check_claim",
    "ingest",
    "ingest_file",
    "pool_context",
    "scan",
    "verify_file",
]

PathInput = str | os.PathLike[str]


@dataclass(frozen=True, slots=True)
class SourceFile:
    """A corpus file found by :func:`scan`: where it is, the name it gets, and its stat."""

    path: Path
    name: str
    kind: SourceKind
    stat: FileStat

    @property
    def size(self) -> int:
        return self.stat.size

    @property
    def media_type(self) -> str:
        return self.kind.media_type


@dataclass(frozen=True, slots=True)
class IngestProgress:
    """Stored bytes read so far (each byte once) and files finished, of the whole run."""

    bytes_done: int
    bytes_total: int
    files_done: int
    files_total: int
    file: str | None


ProgressCallback = Callable[[IngestProgress], None]
FileCallback = Callable[[FileManifest], None]
BatchObserver = Callable[[Batch, list[bytes]], None]

INGEST_REVISION = 1
"""Names this ingestion code's output for the same bytes, names and rules. Bump it with any
change that alters a manifest (the exchange keys its cache of verified files on it)."""


# -- scanning ----------------------------------------------------------------------------------


def scan(paths: PathInput | Iterable[PathInput]) -> list[SourceFile]:
    """The corpus files under ``paths`` (folders, walked recursively, or single files), by name.

    A file inside a folder is named by its path relative to that folder, with ``/``; a file given
    directly is named by its base name. Entries whose name starts with ``.`` are skipped. Refused
    with IngestError: unknown file types, non-regular files, symlinks leading outside their
    folder (or to a folder), unsafe names, and names that clash exactly, by letter case, by a
    compression suffix (``a.jsonl`` and ``a.jsonl.gz``), or as file and folder.
    """
    items = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    found: list[SourceFile] = []
    for item in items:
        path = Path(item)
        try:
            st = os.stat(path)
        except OSError as exc:
            raise IngestError(f"cannot read: {exc.strerror or exc}", file=str(path)) from None
        if stat.S_ISDIR(st.st_mode):
            found.extend(_walk(path))
        else:
            found.append(_source(path, unicodedata.normalize("NFC", path.name), st))
    _check_clashes(found)
    return sorted(found, key=lambda s: s.name)


def _source(path: Path, name: str, st: os.stat_result) -> SourceFile:
    validate_name(name)
    if not stat.S_ISREG(st.st_mode):
        raise IngestError("not a regular file", file=name)
    return SourceFile(path, name, classify_name(name), FileStat.of(st))


def _walk(root: Path) -> Iterator[SourceFile]:
    real_root = os.path.realpath(root)
    stack: list[tuple[str, str]] = [(str(root), "")]
    while stack:
        directory, prefix = stack.pop()
        try:
            with os.scandir(directory) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except OSError as exc:
            raise IngestError(
                f"cannot list: {exc.strerror or exc}", file=prefix or str(root)
            ) from None
        for entry in entries:
            if entry.name.startswith("."):
                continue
            relative = unicodedata.normalize("NFC", prefix + entry.name)
            if entry.is_symlink():
                yield _linked_source(Path(entry.path), relative, real_root)
            elif entry.is_dir(follow_symlinks=False):
                stack.append((entry.path, relative + "/"))
            else:
                yield _source(Path(entry.path), relative, entry.stat(follow_symlinks=False))


def _linked_source(path: Path, name: str, real_root: str) -> SourceFile:
    target = os.path.realpath(path)
    if os.path.commonpath([target, real_root]) != real_root:
        raise IngestError("symlink points outside the folder", file=name)
    try:
        st = os.stat(target)
    except OSError:
        raise IngestError("broken symlink", file=name) from None
    if stat.S_ISDIR(st.st_mode):
        raise IngestError("symlink to a folder; folders are not followed through links", file=name)
    return _source(path, name, st)


def _check_clashes(found: Sequence[SourceFile]) -> None:
    exact: dict[str, SourceFile] = {}
    folded: dict[str, SourceFile] = {}
    for source in found:
        if source.name in exact:
            raise IngestError(
                f"two files have this name ({exact[source.name].path} and {source.path})",
                file=source.name,
            )
        exact[source.name] = source
        key = logical_name(source.name).casefold()
        other = folded.get(key)
        if other is not None:
            raise IngestError(
                f"clashes with {other.name!r}: names must differ by more than letter case or "
                "a compression suffix",
                file=source.name,
            )
        folded[key] = source
    folders = {name.casefold() for name in exact for name in _parents(name)}
    for source in found:
        if source.name.casefold() in folders:
            raise IngestError("is both a file and a folder", file=source.name)


def _parents(name: str) -> Iterator[str]:
    parts = name.split("/")
    for i in range(1, len(parts)):
        yield "/".join(parts[:i])


# -- one file ----------------------------------------------------------------------------------


def ingest_file(
    path: PathInput,
    *,
    name: str,
    options: IngestOptions | None = None,
    expected: FileStat | None = None,
    progress: Callable[[int], None] | None = None,
    observer: BatchObserver | None = None,
    drop_cache: bool = False,
) -> FileManifest:
    """Read one file once and describe it: digest, size, documents, root, statistics, schema.

    ``name`` decides the format (by its suffixes) and is what the manifest records. ``expected``
    is the stat from :func:`scan`: the file must still be that file. ``progress`` is called with
    the number of stored bytes read at each step; ``observer`` with each batch of documents and
    their leaf hashes (how proofs are built on the same single code path). ``drop_cache`` drops
    the file from the OS page cache behind the read (the exchange's blobs, :class:`StoredFile`).
    """
    options = options or IngestOptions()
    validate_name(name)
    kind = classify_name(name)
    with StoredFile(
        Path(path), name=name, expected=expected, progress=progress, drop_cache=drop_cache
    ) as stored:
        reader = open_reader(stored, kind, options)
        tree = DocumentTree()
        languages = LanguageSample()
        document_bytes = characters = 0
        batches = iter(reader)
        try:
            for batch in batches:
                documents = batch.documents
                digests = document_digests(documents)
                leaves = digest_leaves(digests)
                tree.extend(leaves)
                if observer is not None:
                    batch.digests = digests
                    observer(batch, leaves)
                for position in sampled_positions(batch.start, digests):
                    languages.observe(documents[position])
                document_bytes += batch.nbytes
                characters += batch.characters
        finally:
            batches.close()  # finish the reader while its file is still open
        schema = reader.schema()
        sha256, size = stored.finish()
    entry = FileEntry(
        name=name,
        size=size,
        media_type=kind.media_type,
        sha256=sha256,
        records=tree.size,
        document_root=tree.root().hex(),
        document_rule=options.document_rule(kind.format),
    )
    stats = TextStats(
        characters=characters,
        document_bytes=document_bytes,
        estimated_tokens=estimate_tokens(document_bytes),
        languages=tuple(languages.counts().items()),
        language_sample=languages.size,
    )
    return FileManifest(entry=entry, stats=stats, schema=schema)


def verify_file(
    path: PathInput, *, claimed: FileManifest, observer: BatchObserver | None = None
) -> FileManifest:
    """Recompute a file's manifest with the rule it claims; ClaimMismatchError if it differs.

    What the exchange runs on each uploaded blob (``path``) of a version it is asked to publish.
    """
    options = IngestOptions.for_rule(claimed.document_rule)
    found = ingest_file(path, name=claimed.name, options=options, observer=observer)
    check_claim(claimed, found=found)
    return found


def check_claim(claimed: FileManifest, *, found: FileManifest) -> None:
    """ClaimMismatchError, naming each field, unless ``found`` (derived from the bytes) is
    exactly ``claimed``."""
    if found != claimed:
        differences = manifest_differences(claimed, found)
        fields = ", ".join(sorted(differences)) or "representation"
        raise ClaimMismatchError(
            f"{claimed.name}: the claimed manifest differs from the file in {fields}",
            differences=differences,
        )


# -- a whole version ---------------------------------------------------------------------------


def ingest(
    paths: PathInput | Iterable[PathInput] | Sequence[SourceFile],
    *,
    options: IngestOptions | None = None,
    workers: int = 2,
    progress: ProgressCallback | None = None,
    on_file: FileCallback | None = None,
) -> VersionManifest:
    """Scan ``paths`` (or take already scanned files) and ingest every file into one manifest.

    Files are spread over ``workers`` processes, this one included; the manifest is the same
    for any number of workers. ``on_file`` is called in this process with each file's manifest
    as soon as that file is done (in no set order): a publisher uploads it meanwhile. Raises
    IngestError for the first bad file met (the others are stopped), or for an empty corpus:
    no files, or no documents in any of them.
    """
    options = options or IngestOptions()
    sources = _sources(paths)
    if not sources:
        raise IngestError("empty corpus: no files to ingest")
    tracker = _Tracker(sources, progress, on_file)
    if workers <= 1 or len(sources) == 1:
        files = []
        for source in sources:
            files.append(
                ingest_file(
                    source.path,
                    name=source.name,
                    options=options,
                    expected=source.stat,
                    progress=tracker.hook(source.name),
                )
            )
            tracker.file_done(files[-1])
    else:
        files = _ingest_parallel(sources, options, min(workers, len(sources)), tracker)
    manifest = VersionManifest.build(files)
    if manifest.records == 0:
        raise IngestError(f"empty corpus: none of the {len(files)} files holds a document")
    return manifest


def _sources(paths: PathInput | Iterable[PathInput] | Sequence[SourceFile]) -> list[SourceFile]:
    if isinstance(paths, str | os.PathLike):
        return scan(paths)
    items = list(paths)
    if items and all(isinstance(item, SourceFile) for item in items):
        sources = [item for item in items if isinstance(item, SourceFile)]
        _check_clashes(sources)
        return sorted(sources, key=lambda s: s.name)
    if any(isinstance(item, SourceFile) for item in items):
        raise IngestError("give either paths or scanned files, not both")
    return scan([item for item in items if not isinstance(item, SourceFile)])


class _Tracker:
    """Adds up progress from every file and tells the caller's callback.

    Workers' reports travel through a queue and may arrive after their file's result; a finished
    file counts as its whole size, and later reports for it are ignored, so totals are exact.
    """

    def __init__(
        self,
        sources: Sequence[SourceFile],
        callback: ProgressCallback | None,
        on_file: FileCallback | None = None,
    ) -> None:
        self._callback = callback
        self._on_file = on_file
        self._sizes = {s.name: s.size for s in sources}
        self._total = sum(self._sizes.values())
        self._read: dict[str, int] = dict.fromkeys(self._sizes, 0)
        self._finished: set[str] = set()
        self._done = 0

    def hook(self, name: str) -> Callable[[int], None]:
        def add(count: int) -> None:
            self.add(name, count)

        return add

    def add(self, name: str, count: int) -> None:
        if name in self._finished:
            return
        count = min(count, self._sizes[name] - self._read[name])
        self._read[name] += count
        self._done += count
        self._report(name)

    def file_done(self, result: FileManifest) -> None:
        name = result.name
        self.add(name, self._sizes[name])
        self._finished.add(name)
        self._report(name)
        if self._on_file is not None:
            self._on_file(result)

    def _report(self, name: str) -> None:
        if self._callback is not None:
            self._callback(
                IngestProgress(self._done, self._total, len(self._finished), len(self._sizes), name)
            )


# Worker-process state, set by the pool's initializer.
_worker_queue: Any = None
_worker_cancel: Any = None
_PROGRESS_STEP = 8 << 20


class _Cancelled(Exception):
    """Another file failed: this worker stops early; its result is not wanted."""


def _init_worker(queue: Any, cancel: Any) -> None:
    global _worker_queue, _worker_cancel
    _worker_queue, _worker_cancel = queue, cancel


def _worker_ingest(
    path: str, name: str, options: IngestOptions, expected: FileStat
) -> FileManifest:
    pending = 0

    def report(count: int) -> None:
        nonlocal pending
        pending += count
        if pending >= _PROGRESS_STEP:
            _worker_queue.put((name, pending))
            pending = 0
            if _worker_cancel.is_set():
                raise _Cancelled

    try:
        return ingest_file(path, name=name, options=options, expected=expected, progress=report)
    finally:
        if pending:
            _worker_queue.put((name, pending))


_SUN_PATH = 107  # bytes of a Unix socket path on Linux, less the final NUL
_FORKSERVER_SOCKET_NAME = 40  # what multiprocessing adds: "/pymp-XXXXXXXX/listener-XXXXXXXX"


_FORKSERVER_EXIT = "catalog.forkserver_exit"
"""Preloaded last: the fork server then exits without tearing its interpreter down."""


def pool_context(preload: Sequence[str] = ()) -> BaseContext:
    """How ingestion starts worker processes: a fork server that has imported this module and
    the modules in ``preload`` (never a plain fork of a possibly multi-threaded caller). A
    process has one fork server, started with the preload of the first pool that uses it."""
    # Never fork: the parent may be a server with threads (and pyarrow's thread pools). The fork
    # server imports this module once, so each worker starts with pyarrow already loaded. It
    # listens on a Unix socket in the temp dir, whose path must fit in sun_path: under a deep
    # TMPDIR spawn instead (slower to start, the same workers).
    fits = len(tempfile.gettempdir()) + _FORKSERVER_SOCKET_NAME < _SUN_PATH
    if fits and "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([__name__, *preload, _FORKSERVER_EXIT])
        return context
    return multiprocessing.get_context("spawn")


def _ingest_parallel(
    sources: Sequence[SourceFile], options: IngestOptions, workers: int, tracker: _Tracker
) -> list[FileManifest]:
    return _ParallelRun(sources, options, tracker).run(workers)


class _ParallelRun:
    """``workers - 1`` pool processes take files from the large end; this process works too,
    from the small end, so that nothing waits while the pool starts.

    Each pool process is fed by a thread of this process that submits one file at a time and
    waits for it; the threads only pass events to this (main) thread, which alone updates the
    progress and calls the caller's callback.
    """

    def __init__(
        self, sources: Sequence[SourceFile], options: IngestOptions, tracker: _Tracker
    ) -> None:
        self._work = deque(sorted(sources, key=lambda s: (-s.size, s.name)))
        self._options = options
        self._tracker = tracker
        self._lock = threading.Lock()
        self._results: list[FileManifest] = []
        self._failure: BaseException | None = None
        self._events: SimpleQueue[tuple[str, FileManifest | None]] = SimpleQueue()
        self._queue: Any = None
        self._cancel: Any = None

    def run(self, workers: int) -> list[FileManifest]:
        context = pool_context()
        self._queue = context.Queue()
        self._cancel = context.Event()
        try:
            with ProcessPoolExecutor(
                max_workers=workers - 1,
                mp_context=context,
                initializer=_init_worker,
                initargs=(self._queue, self._cancel),
            ) as pool:
                feeders = [
                    threading.Thread(target=self._feed, args=(pool,), daemon=True)
                    for _ in range(workers - 1)
                ]
                for feeder in feeders:
                    feeder.start()
                try:
                    while (source := self._take(largest=False)) is not None:
                        self._ingest_here(source)
                    while any(feeder.is_alive() for feeder in feeders):
                        feeders[0].join(timeout=0.05)
                        self._service()
                except BaseException as exc:
                    self._fail(exc)
                    raise
                finally:
                    for feeder in feeders:
                        feeder.join()
            self._service()
        finally:
            self._queue.close()
        if self._failure is not None:
            raise self._failure
        return self._results

    def _take(self, *, largest: bool) -> SourceFile | None:
        with self._lock:
            if self._failure is not None or not self._work:
                return None
            return self._work.popleft() if largest else self._work.pop()

    def _feed(self, pool: ProcessPoolExecutor) -> None:
        while (source := self._take(largest=True)) is not None:
            try:
                result = pool.submit(
                    _worker_ingest, str(source.path), source.name, self._options, source.stat
                ).result()
            except _Cancelled:
                return
            except BaseException as exc:
                self._fail(_explain(exc, source))
                return
            self._events.put((source.name, result))

    def _ingest_here(self, source: SourceFile) -> None:
        def progress(count: int) -> None:
            self._tracker.add(source.name, count)
            self._service()
            if self._failure is not None:
                raise _Cancelled

        try:
            result = ingest_file(
                source.path,
                name=source.name,
                options=self._options,
                expected=source.stat,
                progress=progress,
            )
        except _Cancelled:
            return
        except CatalogError as exc:
            self._fail(exc)
            return
        self._events.put((source.name, result))
        self._service()

    def _service(self) -> None:
        """Take in progress reports and finished files (between steps of this thread's work)."""
        while True:
            try:
                name, count = self._queue.get_nowait()
            except Empty:
                break
            self._tracker.add(name, count)
        while not self._events.empty():
            name, result = self._events.get()
            if result is not None:
                self._results.append(result)
                self._tracker.file_done(result)

    def _fail(self, error: BaseException) -> None:
        with self._lock:
            if self._failure is None:
                self._failure = error
        self._cancel.set()  # pool processes stop at their next progress report


def _explain(error: BaseException, source: SourceFile) -> BaseException:
    if isinstance(error, BrokenProcessPool):
        return IngestError(
            "a worker process died while ingesting it (killed, out of memory, or started from a "
            "script without an 'if __name__ == \"__main__\":' guard)",
            file=source.name,
        )
    return error
