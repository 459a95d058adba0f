"""One stored file read into what the exchange derives from it: its manifest and overlap sketch.

This is what the exchange's worker processes run on every uploaded or published blob
(``exchange.verification``). It lives here, importing only the catalogue's own modules, so that
a worker process does not import the exchange's web and database stack to run it; and the fork
server that starts those workers preloads :mod:`catalog.derivation_preload`, which also builds
the overlap sketch's tables, so each worker starts with them already in its memory.
"""

from __future__ import annotations

from catalog.documents import IngestOptions
from catalog.errors import IngestError
from catalog.ingest import ingest_file
from catalog.overlap import FileSketch
from ledger.canonical import canonical_bytes

PRELOAD = "catalog.derivation_preload"
"""The module the deriving workers' fork server imports before it forks any of them."""


def derive_file(path: str, digest: str, name: str, rule: str) -> tuple[bytes, bytes]:
    """Read the file at ``path`` once, as the corpus file ``name`` with document ``rule``: the
    canonical bytes of its manifest and its sketch (``FileSketch.to_bytes``). IngestError if its
    bytes do not ingest, or do not hash to ``digest``."""
    sketch = FileSketch(name)
    # The stored blob is not read again soon: it need not fill the page cache (StoredFile).
    manifest = ingest_file(
        path, name=name, options=IngestOptions.for_rule(rule), observer=sketch, drop_cache=True
    )
    if manifest.sha256 != digest:
        raise IngestError(f"the stored bytes hash to {manifest.sha256}, not {digest}", file=name)
    return canonical_bytes(manifest.to_json()), sketch.to_bytes()
