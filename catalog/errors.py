"""The catalog's one error tree.

    CatalogError
     ├── IngestError          a corpus file that cannot become part of a version (names the file,
     │    │                   and the record and line when one is at fault)
     │    └── FileChangedError    the file changed between scanning and reading, or while read
     ├── ManifestError        a manifest or proof bundle that does not parse (strict JSON shapes)
     ├── ClaimMismatchError   a file's recomputed manifest differs from what was claimed for it
     ├── ProofError           a well-formed proof that does not verify: says expected vs found
     ├── DatasetNotFound      no dataset has that slug
     └── VersionNotFound      no version has that id

Parsers never leak a bare ``ValueError``; errors of ``ledger`` met while verifying are translated
into :class:`ProofError` or :class:`ManifestError` at this package's boundary.
"""

from __future__ import annotations


class CatalogError(Exception):
    """Base of every error raised by the catalog package."""


class IngestError(CatalogError):
    """Bad input met while scanning or ingesting corpus files.

    ``file`` is the file's name within the version (or the path given, before it has a name),
    ``record`` the 0-based index of the document at fault (its leaf index in the file's document
    tree), ``line`` the 1-based line number for line-oriented formats.
    """

    def __init__(
        self,
        reason: str,
        *,
        file: str | None = None,
        record: int | None = None,
        line: int | None = None,
    ) -> None:
        self.reason = reason
        self.file = file
        self.record = record
        self.line = line
        super().__init__(self._compose())

    def _compose(self) -> str:
        where = []
        if self.record is not None:
            where.append(f"record {self.record}")
        if self.line is not None:
            where.append(f"line {self.line}")
        prefix = f"{self.file}: " if self.file is not None else ""
        location = f"{', '.join(where)}: " if where else ""
        return f"{prefix}{location}{self.reason}"

    def __reduce__(self) -> tuple[object, ...]:
        # Errors cross the process pool by pickling; keyword-only fields need spelling out.
        return (
            _rebuild,
            (type(self), self.reason, self.file, self.record, self.line),
        )


def _rebuild(
    cls: type[IngestError], reason: str, file: str | None, record: int | None, line: int | None
) -> IngestError:
    return cls(reason, file=file, record=record, line=line)


class FileChangedError(IngestError):
    """The file's size, times or identity changed while it was being read: read it again."""


class ManifestError(CatalogError):
    """A manifest, file entry or proof bundle whose JSON does not have the required shape."""


class ClaimMismatchError(CatalogError):
    """Recomputing a file's manifest gave different values than the ones claimed.

    ``differences`` maps each differing field to ``(claimed, found)``.
    """

    def __init__(self, message: str, *, differences: dict[str, tuple[object, object]]) -> None:
        super().__init__(message)
        self.differences = differences

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_mismatch, (str(self), self.differences))


def _rebuild_mismatch(
    message: str, differences: dict[str, tuple[object, object]]
) -> ClaimMismatchError:
    return ClaimMismatchError(message, differences=differences)


class ProofError(CatalogError):
    """A proof or bundle that is well-formed but does not verify."""


class DatasetNotFound(CatalogError):
    """No dataset has that slug."""


class VersionNotFound(CatalogError):
    """No version has that id."""


class IndexDamaged(CatalogError):
    """The overlap index does not hold what it says it holds (a segment missing or not hashing
    to its digest): the exchange's fault, never the caller's."""
