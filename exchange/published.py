"""What a provider signs to publish a version: the ``dataset.version.published`` body.

The client builds it (``exchange.publisher``) and the exchange checks it
(``exchange.publishing``), so it lives apart from both: the ``corpusx`` command imports only
this, not the exchange's database stack, to sign a version.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from exchange.errors import InvalidInput

if TYPE_CHECKING:
    from catalog.manifest import VersionManifest

PUBLISHED = "dataset.version.published"

MAX_SOURCES = 100
_METHOD = re.compile(r"^[\w][\w .,+/-]{0,99}$")
_VERSION_ID = re.compile(r"^sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class Declared:
    """The lineage a provider declares (and signs) for a new version."""

    method: str
    sources: tuple[tuple[str, str | None], ...]  # (source version id, agreement id or None)

    def to_body(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "derived_from": [{"version": v, "agreement": a} for v, a in self.sources],
        }

    @classmethod
    def from_json(cls, method: object, derived_from: object) -> Declared:
        if not isinstance(method, str) or not _METHOD.fullmatch(method):
            raise InvalidInput(
                "method must say how the version was derived (e.g. filtered, deduplicated, "
                "merged): 1-100 word characters"
            )
        if not isinstance(derived_from, list) or not 0 < len(derived_from) <= MAX_SOURCES:
            raise InvalidInput(f"derived_from must list 1-{MAX_SOURCES} source versions")
        sources: list[tuple[str, str | None]] = []
        for i, item in enumerate(derived_from):
            if not isinstance(item, dict) or set(item) != {"version", "agreement"}:
                raise InvalidInput(f"derived_from[{i}] must be {{version, agreement}}")
            version, agreement = item["version"], item["agreement"]
            if not isinstance(version, str) or not _VERSION_ID.fullmatch(version):
                raise InvalidInput(f"derived_from[{i}].version must be a version id")
            if agreement is not None and not isinstance(agreement, str):
                raise InvalidInput(f"derived_from[{i}].agreement must be an agreement id or null")
            sources.append((version, agreement))
        if len({v for v, _ in sources}) != len(sources):
            raise InvalidInput("derived_from names a source version twice")
        return cls(method, tuple(sources))


def statement_body(
    slug: str, label: str, manifest: VersionManifest, lineage: Declared | None = None
) -> dict[str, object]:
    """The body a provider signs: it names the exact version and its manifest root, and, for a
    derived version, its sources and the agreements they are used under."""
    body: dict[str, object] = {
        "dataset": slug,
        "label": label,
        "version": manifest.version_id,
        "manifest_root": manifest.manifest_root,
        "records": manifest.records,
        "size": manifest.size,
    }
    if lineage is not None:
        body.update(lineage.to_body())
    return body
