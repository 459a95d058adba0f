"""Imported by the fork server that starts ingestion's and derivation's worker processes, and
nowhere else (``catalog.ingest.pool_context`` preloads it there).

When the fork server's last client exits, it ends at once (``os._exit`` as its first exit
handler) instead of tearing down an interpreter that holds numpy and pyarrow, ~0.1-0.2 s. It
inherited the command's standard output and error, so until it is gone a shell pipeline, or a
parent reading the output (``subprocess.run(..., capture_output=True)``), keeps waiting after
the command itself has finished. The fork server has nothing to flush or clean up: it only forks
the workers, which end with ``os._exit`` themselves, without exit handlers.
"""

from __future__ import annotations

import atexit
import os

atexit.register(os._exit, 0)
