"""The catalogue's compiled modules (setup.py builds them), where they exist.

- ``catalog._jsonl``: the JSON Lines reader's fast path (catalog/_jsonl.c);
- ``catalog._digests``: per-document SHA-256, leaves and subtree roots (catalog/_digests.c);
- ``catalog._sketch``: the overlap sketch's inner loops (catalog/_sketch.c);
- ``catalog._text``: UTF-8 checks and counts of whole blocks, and splitting a column of
  documents at its offsets (catalog/_text.c).

Each computes exactly what the Python code beside it computes (the tests compare them), only
faster; without one, the Python code runs. Setting ``CORPUSX_PURE_PYTHON=1`` in the environment
ignores all four, to compare the two in one benchmark run or to rule them out when debugging.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

PURE_PYTHON_ENV = "CORPUSX_PURE_PYTHON"


def load(name: str) -> ModuleType | None:
    """``catalog.<name>``, or None if it was not built or pure Python is asked for."""
    if os.environ.get(PURE_PYTHON_ENV, "") not in ("", "0"):
        return None
    try:
        return importlib.import_module(f"catalog.{name}")
    except ImportError:  # built without a C compiler (or OpenSSL's headers, for _digests)
        return None


def built() -> dict[str, bool]:
    """Which compiled modules are in use (for benchmark records and ``--version``)."""
    return {name: load(name) is not None for name in ("_jsonl", "_digests", "_sketch", "_text")}
