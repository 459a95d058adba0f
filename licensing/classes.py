"""Licence classes of well-known licences, from the Data Provenance Initiative's tables.

A :class:`LicenceClass` says what a licence allows in the DPI's terms — its use class
(commercial, non-commercial, academic-only, unspecified), whether it requires attribution, asks
derivatives to share alike, or forbids derivatives — and :func:`terms_for` turns a class into the
machine-checkable :class:`~licensing.terms.Terms` an offer can carry.

:func:`classify` accepts a DPI licence name (``"CC BY-NC 4.0"``), one of the DPI's paraphrases
(``"cc-by-nc-4.0"``, ``"Apache 2.0 License"``), a custom licence URL from the DPI's table, or an
SPDX expression (``"MIT AND (Apache-2.0 OR GPL-3.0-only)"``), parsed with ``license-expression``
against its bundled SPDX index (offline). ``AND`` is the most restrictive of both sides, ``OR``
the least restrictive alternative (the licensee may choose), ``WITH`` the licence itself (an
exception only adds permissions). ``docs/licensing.md`` section 4 is normative.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from importlib.resources import files
from typing import Any

from license_expression import ExpressionError, get_spdx_licensing

from licensing.errors import LicenceClassError
from licensing.terms import EVALUATION, PURPOSES, RESEARCH, Terms


class UseClass(StrEnum):
    COMMERCIAL = "commercial"
    NON_COMMERCIAL = "non-commercial"
    ACADEMIC = "academic-only"
    UNSPECIFIED = "unspecified"


# The DPI's order, least restrictive first: constants.LICENSE_USE_TYPES = ['commercial',
# 'unspecified', 'non-commercial', 'academic-only'] (src/helpers/constants.py), and
# resolve_multiple_licenses() (src/helpers/filters.py, src/download_and_filter.py) gives a dataset
# with several licences "academic-only" if any is "?" or "Acad", else "non-commercial" if any is
# "NC", else "unspecified" if any is "Unspecified", else "commercial".
# (github.com/Data-Provenance-Initiative/Data-Provenance-Collection)
RANK: Mapping[UseClass, int] = {
    UseClass.COMMERCIAL: 0,
    UseClass.UNSPECIFIED: 1,
    UseClass.NON_COMMERCIAL: 2,
    UseClass.ACADEMIC: 3,
}
# "?" (the table does not know) resolves to academic-only, as in resolve_multiple_licenses().
_DPI_USE = {
    "All": UseClass.COMMERCIAL,
    "NC": UseClass.NON_COMMERCIAL,
    "Acad": UseClass.ACADEMIC,
    "Unspecified": UseClass.UNSPECIFIED,
    "?": UseClass.ACADEMIC,
}
CUSTOM = "Custom"  # the DPI's name for a licence identified only by its URL
_NO_DERIVATIVES = re.compile(r"(?:^|[\s-])ND(?:[\s-]|$)")
_SHARE_ALIKE = re.compile(r"(?:^|[\s-])SA(?:[\s-]|$)")

# Every DPI licence name that has an SPDX identifier in license-expression's bundled index.
# Deprecated ids (GPL-3.0, LGPL-2.1+, ...) are normalised by the index to these current ones.
SPDX_TO_DPI: Mapping[str, str] = {
    "AFL-3.0": "Academic Free License v3.0",
    "Apache-2.0": "Apache License 2.0",
    "Artistic-2.0": "Artistic License 2.0",
    "BSD-2-Clause": "BSD 2-Clause License",
    "BSD-3-Clause": "BSD 3-Clause License",
    "C-UDA-1.0": "C-UDA",
    "CC-BY-2.0": "CC BY 2.0",
    "CC-BY-2.5": "CC BY 2.5",
    "CC-BY-3.0": "CC BY 3.0",
    "CC-BY-4.0": "CC BY 4.0",
    "CC-BY-NC-2.0": "CC BY-NC 2.0",
    "CC-BY-NC-3.0": "CC BY-NC 3.0",
    "CC-BY-NC-4.0": "CC BY-NC 4.0",
    "CC-BY-NC-ND-3.0": "CC BY-NC-ND 3.0",
    "CC-BY-NC-ND-4.0": "CC BY-NC-ND 4.0",
    "CC-BY-NC-SA-3.0": "CC BY-NC-SA 3.0",
    "CC-BY-NC-SA-4.0": "CC BY-NC-SA 4.0",
    "CC-BY-ND-4.0": "CC BY-ND 4.0",
    "CC-BY-SA-2.0": "CC BY-SA 2.0",
    "CC-BY-SA-3.0": "CC BY-SA 3.0",
    "CC-BY-SA-4.0": "CC BY-SA 4.0",
    "CC0-1.0": "CC0 1.0",
    "CDLA-Permissive-1.0": "CDLA Permissive 1.0",
    "CDLA-Permissive-2.0": "CDLA Permissive 2.0",
    "CDLA-Sharing-1.0": "CDLA Sharing 1.0",
    "EPL-1.0": "EPL 1.0",
    "GPL-2.0-only": "GNU General Public License v2.0",
    "GPL-2.0-or-later": "GNU General Public License v2.0",
    "GPL-3.0-only": "GNU General Public License v3.0",
    "GPL-3.0-or-later": "GNU General Public License v3.0",
    # The DPI lists "GNU Affero General Public License v3.0" as a paraphrase of GPL v3.0.
    "AGPL-3.0-only": "GNU General Public License v3.0",
    "AGPL-3.0-or-later": "GNU General Public License v3.0",
    "ISC": "ISC License",
    "LGPL-2.1-only": "LGPL 2.1",
    "LGPL-2.1-or-later": "LGPL 2.1",
    "LGPL-3.0-only": "LGPL 3.0",
    "LGPL-3.0-or-later": "LGPL 3.0",
    "MIT": "MIT License",
    "MPL-2.0": "MPL 2.0",
    "ODC-By-1.0": "ODC BY 1.0",
    "OGL-UK-3.0": "OGL 3.0",
    # Open Data Commons' public domain dedication: the DPI's "Public Domain".
    "PDDL-1.0": "Public Domain",
}

# The DPI names that no SPDX identifier stands for, and why (checked by the tests).
WITHOUT_SPDX_ID: Mapping[str, str] = {
    **dict.fromkeys(
        ("Apache 2.0", "CC0", "MIT"),
        "a second DPI spelling of a licence whose SPDX id maps to the first",
    ),
    **dict.fromkeys(
        ("CC BY", "CC BY SA", "CC BY-SA", "CC BY-NC-ND", "CC BY-NC-SA"),
        "no version given: SPDX ids name one version",
    ),
    **dict.fromkeys(
        (
            "AI2 ImpACT License - Low Risk",
            "BigScience OpenRAIL-M",
            "Llama 2",
            "Meta Llama3 Community License",
            "Skywork Community License",
            "LMSYS-Chat-1M Dataset License",
            "Microsoft Data Licensing Agreement",
            "CSLU Agreement",
            "LDC User Agreement",
            "OANC",
            "Google Cloud Translation API",
            "OpenAI",
            "Anthropic",
        ),
        "a vendor's or dataset's own terms, not in the bundled SPDX index",
    ),
    **dict.fromkeys(
        (
            "Academic Research Purposes Only",
            "All Uses-Attribution",
            "Non Commercial",
            "No License",
            "Open Access",
            "Request Form",
            "Unclear",
            "Unspecified",
            "Various",
        ),
        "a DPI category, not a licence",
    ),
}


@dataclass(frozen=True)
class LicenceClass:
    """What a licence allows, in the DPI's terms; ``licences`` names where it came from."""

    use: UseClass
    attribution: bool
    share_alike: bool
    no_derivatives: bool
    licences: tuple[str, ...]

    def restrictiveness(self) -> tuple[int, bool, bool, bool]:
        """Orders classes for choosing among alternatives: use class first, then the duties."""
        return (RANK[self.use], self.no_derivatives, self.share_alike, self.attribution)


# -- the DPI tables --------------------------------------------------------------------------


def _read(name: str) -> dict[str, Any]:
    text = files("licensing").joinpath(f"data/dpi/{name}").read_text(encoding="utf-8")
    table: dict[str, Any] = json.loads(text)
    return table


@cache
def licence_table() -> Mapping[str, tuple[str, str, str]]:
    """``license_classes.json``: DPI licence name -> (use, attribution, share-alike)."""
    return {name: tuple(row) for name, row in _read("license_classes.json").items()}


@cache
def custom_table() -> Mapping[str, tuple[str, str, str]]:
    """``custom_license_classes.json``: custom licence URL -> (use, attribution, share-alike)."""
    return {url: tuple(row) for url, row in _read("custom_license_classes.json").items()}


@cache
def paraphrases() -> Mapping[str, str]:
    """``license_paraphrases.json`` inverted: alternative spelling -> canonical DPI name."""
    return {alt: canon for canon, alts in _read("license_paraphrases.json").items() for alt in alts}


def dpi_names() -> tuple[str, ...]:
    return tuple(licence_table())


def _flag(value: str) -> bool:
    # The DPI reads an unknown ("?") attribution or share-alike flag as required.
    return value != "0"


def _from_row(row: tuple[str, str, str], licence: str, *, name_rules: bool) -> LicenceClass:
    use, attribution, share_alike = row
    no_derivatives = name_rules and bool(_NO_DERIVATIVES.search(licence))
    sharing = _flag(share_alike)
    if name_rules:
        # Two corrections of the table, read off the licence's own name: an "-SA" licence always
        # asks derivatives to share alike (the table has "CC BY-NC-SA" without), and an "-ND"
        # licence allows no derivative that could (the table marks "CC BY-ND 4.0" share-alike).
        sharing = (sharing or bool(_SHARE_ALIKE.search(licence))) and not no_derivatives
    return LicenceClass(_DPI_USE[use], _flag(attribution), sharing, no_derivatives, (licence,))


def _named(name: str) -> LicenceClass:
    return _from_row(licence_table()[name], name, name_rules=True)


def _custom(url: str) -> LicenceClass:
    return _from_row(custom_table()[url], url, name_rules=False)


# -- classification --------------------------------------------------------------------------


def classify(licence: str) -> LicenceClass:
    """The class of a DPI name or paraphrase, a custom licence URL, or an SPDX expression."""
    if not isinstance(licence, str) or not licence.strip():
        raise LicenceClassError("a licence to classify must be a non-empty string")
    text = licence.strip()
    found = _exact(text)
    if found is not None:
        return found
    expression = _spdx(text)
    if expression is not None:
        return _classify_expression(expression)
    candidates = _normalised().get(_normalise(text))
    if candidates:
        # A spelling that only differs in case or separators; if it could mean two classes
        # (only "MIT": the DPI's "MIT" and its "MIT License" differ in attribution), take the
        # stricter reading.
        return most_restrictive(_exact_or_fail(name) for name in sorted(candidates))
    raise LicenceClassError(
        f"unknown licence {licence!r}: not a DPI licence name or paraphrase, a custom licence "
        "URL of the DPI's table, or an SPDX expression of known licences"
    )


def classify_dpi(name: str, url: str | None) -> LicenceClass:
    """A licence as a DPI summary names it: ``Custom`` licences are looked up by URL.

    A custom licence the table lacks gets the DPI's own default, ``("?", "?", "?")``, i.e.
    academic-only with attribution and share-alike (``classify_license`` in the DPI's code).
    """
    if name == CUSTOM:
        if url is not None and url in custom_table():
            return _custom(url)
        return _from_row(("?", "?", "?"), f"{CUSTOM} <{url}>", name_rules=False)
    return classify(name)


def _exact(text: str) -> LicenceClass | None:
    if text in licence_table():
        return _named(text)
    if text in custom_table():
        return _custom(text)
    canonical = paraphrases().get(text)
    if canonical == CUSTOM:
        raise LicenceClassError(
            f"{text!r} is a custom licence the DPI's tables do not classify (its URL is not in "
            "custom_license_classes.json)"
        )
    return _named(canonical) if canonical is not None else None


def _exact_or_fail(text: str) -> LicenceClass:
    found = _exact(text)
    if found is None:
        raise LicenceClassError(f"unknown licence {text!r}")
    return found


def _normalise(text: str) -> str:
    return re.sub(r"[\s_-]+", " ", text.casefold()).strip()


@cache
def _normalised() -> Mapping[str, frozenset[str]]:
    """Normalised spelling -> the DPI names and paraphrases it could be."""
    index: dict[str, set[str]] = {}
    for spelling in (*licence_table(), *paraphrases()):
        if paraphrases().get(spelling) != CUSTOM:
            index.setdefault(_normalise(spelling), set()).add(spelling)
    return {key: frozenset(values) for key, values in index.items()}


@cache
def _licensing() -> Any:
    return get_spdx_licensing()


def _spdx(text: str) -> Any:
    """The parsed SPDX expression, or None when ``text`` is not one of known SPDX ids."""
    try:
        return _licensing().parse(text, validate=True, strict=True)
    except ExpressionError:
        return None


def _classify_expression(expression: Any) -> LicenceClass:
    licensing = _licensing()
    if isinstance(expression, licensing.AND):
        return most_restrictive(_classify_expression(arg) for arg in expression.args)
    if isinstance(expression, licensing.OR):
        return least_restrictive(_classify_expression(arg) for arg in expression.args)
    symbol = getattr(expression, "license_symbol", expression)  # X WITH exception -> X
    key = str(symbol.key)
    if key not in SPDX_TO_DPI:
        raise LicenceClassError(
            f"the SPDX licence {key} has no DPI licence class (see licensing.classes.SPDX_TO_DPI)"
        )
    return _named(SPDX_TO_DPI[key])


# -- combining ---------------------------------------------------------------------------------


def most_restrictive(classes: Iterable[LicenceClass]) -> LicenceClass:
    """All the licences at once: the most restrictive use class, every duty of any of them."""
    items = list(classes)
    if not items:
        raise LicenceClassError("no licence classes to combine")
    return LicenceClass(
        use=max((c.use for c in items), key=RANK.__getitem__),
        attribution=any(c.attribution for c in items),
        share_alike=any(c.share_alike for c in items),
        no_derivatives=any(c.no_derivatives for c in items),
        licences=tuple(dict.fromkeys(name for c in items for name in c.licences)),
    )


def least_restrictive(classes: Iterable[LicenceClass]) -> LicenceClass:
    """The licensee's best choice among alternatives (the first of equals)."""
    items = list(classes)
    if not items:
        raise LicenceClassError("no licence classes to choose from")
    return min(items, key=LicenceClass.restrictiveness)


# -- terms ---------------------------------------------------------------------------------------

_ACADEMIC_PURPOSES = frozenset({RESEARCH, EVALUATION})


def terms_for(
    licence_class: LicenceClass, *, licence: str | None = None, notice: str | None = None
) -> Terms:
    """The terms a licence of this class grants.

    commercial: every purpose, commercial use, redistribution, derivatives unless "-ND";
    non-commercial: the same without commercial use; academic-only: research and evaluation
    only, non-commercial, derivatives unless "-ND", no redistribution (academic and request-form
    licences bind the licensee who asked, so passing the data on would bypass them).
    Attribution adds a notice (``notice``, else the licence name); share-alike adds the duty to
    derivatives and keeps the licence name, so that derivatives can carry it on.
    """
    if licence_class.use == UseClass.UNSPECIFIED:
        raise LicenceClassError(
            "an unspecified licence grants nothing machine-checkable: no terms can be derived"
        )
    name = licence or " AND ".join(licence_class.licences) or None
    attribution: tuple[str, ...] = ()
    if licence_class.attribution:
        text = notice or name
        if text is None:
            raise LicenceClassError("attribution is required: give the notice to reproduce")
        attribution = (text,)
    academic = licence_class.use == UseClass.ACADEMIC
    derivation = not licence_class.no_derivatives
    return Terms(
        purposes=_ACADEMIC_PURPOSES if academic else frozenset(PURPOSES),
        commercial=licence_class.use == UseClass.COMMERCIAL,
        derivation=derivation,
        redistribution=not academic,
        attribution=attribution,
        share_alike=licence_class.share_alike and derivation,
        licence=name,
    )
