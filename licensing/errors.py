"""The licensing package's one error tree.

    LicensingError
     ├── TermsError           terms that do not parse, name an unknown action, operand or value,
     │                        or contradict themselves (the message says which rule and why)
     ├── LicenceClassError    a licence name or SPDX expression that cannot be classified
     ├── LineageError         a derivation the sources' terms forbid, or sources that cannot be
     │                        combined (e.g. two different share-alike licences)
     ├── ManifestError        a training manifest that does not parse
     └── FormatError          other documents of this package that do not parse (ODRL JSON-LD,
                              DPI dataset summaries)

Parsers never leak a bare ``ValueError`` or ``KeyError``.
"""

from __future__ import annotations


class LicensingError(Exception):
    """Base of every error raised by the licensing package."""


class TermsError(LicensingError):
    """Malformed, unknown or contradictory licence terms."""


class LicenceClassError(LicensingError):
    """A licence that cannot be classified."""


class LineageError(LicensingError):
    """A derivation that the sources' terms forbid, or sources that cannot be combined."""


class ManifestError(LicensingError):
    """A training manifest that does not parse."""


class FormatError(LicensingError):
    """A document of this package (ODRL JSON-LD, a DPI summary) that does not parse."""
