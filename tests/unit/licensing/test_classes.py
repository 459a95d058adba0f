"""Licence classes: every DPI name, paraphrase and custom URL classifies as the DPI's tables say,
SPDX expressions combine as the DPI ranks classes, and each class gives the terms it promises."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from license_expression import get_spdx_licensing

from licensing.classes import (
    RANK,
    SPDX_TO_DPI,
    WITHOUT_SPDX_ID,
    LicenceClass,
    UseClass,
    classify,
    classify_dpi,
    custom_table,
    dpi_names,
    least_restrictive,
    licence_table,
    most_restrictive,
    paraphrases,
    terms_for,
)
from licensing.errors import LicenceClassError
from licensing.terms import PURPOSES

REFERENCE = Path(__file__).resolve().parents[3].parent / "shared" / "reference" / "dpi"
VENDORED = Path(__file__).resolve().parents[3] / "licensing" / "data" / "dpi"
USE = {
    "All": UseClass.COMMERCIAL,
    "NC": UseClass.NON_COMMERCIAL,
    "Acad": UseClass.ACADEMIC,
    "Unspecified": UseClass.UNSPECIFIED,
    "?": UseClass.ACADEMIC,
}
# The two places where classify() departs from license_classes.json, on purpose (see classes.py).
CORRECTED = {"CC BY-NC-SA": "share-alike added", "CC BY-ND 4.0": "share-alike removed (-ND)"}


def dpi_resolve(rows: list[tuple[str, str, str]]) -> tuple[str, int, int]:
    """resolve_multiple_licenses() of the DPI's src/helpers/filters.py, ported as it reads."""
    uses = [use for use, _, _ in rows]
    if "?" in uses or "Acad" in uses:
        use = "academic-only"
    elif "NC" in uses:
        use = "non-commercial"
    elif "Unspecified" in uses:
        use = "unspecified"
    else:
        use = "commercial"
    flag = [lambda v: int(v) if v.isnumeric() else 1][0]
    return use, max(flag(a) for _, a, _ in rows), max(flag(s) for _, _, s in rows)


@pytest.mark.parametrize("name", ["license_classes.json", "custom_license_classes.json", "LICENSE"])
def test_the_vendored_tables_are_the_reference_ones(name: str) -> None:
    assert (VENDORED / name).read_bytes() == (REFERENCE / name).read_bytes()


def test_the_vendored_paraphrases_are_the_reference_ones() -> None:
    vendored = json.loads((VENDORED / "license_paraphrases.json").read_text(encoding="utf-8"))
    reference = json.loads((REFERENCE / "license_paraphrases.json").read_text(encoding="utf-8"))
    assert vendored == reference


@pytest.mark.parametrize("name", dpi_names())
def test_every_dpi_name_classifies_as_its_row(name: str) -> None:
    use, attribution, share_alike = licence_table()[name]
    found = classify(name)
    assert found.use == USE[use]
    assert found.attribution == (attribution != "0")
    assert found.licences == (name,)
    assert found.no_derivatives == ("ND" in name.replace("-", " ").split())
    if name not in CORRECTED:
        assert found.share_alike == (share_alike != "0")


def test_the_two_corrections_of_the_table() -> None:
    assert licence_table()["CC BY-NC-SA"][2] == "0" and classify("CC BY-NC-SA").share_alike
    nd = classify("CC BY-ND 4.0")
    assert licence_table()["CC BY-ND 4.0"][2] == "1"
    assert nd.no_derivatives and not nd.share_alike
    assert not classify("CC BY-NC-ND 4.0").share_alike


def test_every_paraphrase_classifies_as_its_canonical_name() -> None:
    for spelling, canonical in paraphrases().items():
        if canonical == "Custom":
            if spelling in custom_table():
                assert classify(spelling).licences == (spelling,)
            else:
                with pytest.raises(LicenceClassError, match="custom licence"):
                    classify(spelling)
            continue
        found = classify(spelling)
        if spelling in licence_table():  # "MIT", "CC0", "Apache 2.0" are also names of their own
            assert found.licences == (spelling,)
        else:
            assert found == classify(canonical), spelling


def test_every_custom_url_classifies_and_unknown_flags_count_as_required() -> None:
    for url, (use, attribution, share_alike) in custom_table().items():
        found = classify(url)
        assert found.use == USE[use] and found.licences == (url,)
        assert found.attribution == (attribution != "0")
        assert found.share_alike == (share_alike != "0")
    unknown = classify("https://www.quora.com/about/tos")
    assert unknown == LicenceClass(
        UseClass.ACADEMIC, True, True, False, ("https://www.quora.com/about/tos",)
    )


def test_spellings_differing_in_case_or_separators() -> None:
    assert classify("cc by-nc 4.0").licences == ("CC BY-NC 4.0",)
    assert classify("  Apache_License 2.0 ").licences == ("Apache License 2.0",)


def test_custom_licences_in_summaries_are_looked_up_by_url() -> None:
    url = "https://microsoft.github.io/msmarco/"
    assert classify_dpi("Custom", url).use == UseClass.NON_COMMERCIAL
    default = classify_dpi("Custom", "https://example.org/our-terms")
    assert default.use == UseClass.ACADEMIC and default.attribution and default.share_alike
    assert classify_dpi("MIT License", None) == classify("MIT License")


def test_the_spdx_table_uses_current_ids_of_the_bundled_index() -> None:
    licensing = get_spdx_licensing()
    for spdx_id, name in SPDX_TO_DPI.items():
        assert str(licensing.parse(spdx_id, validate=True, strict=True)) == spdx_id
        assert name in licence_table()


def test_every_dpi_name_has_an_spdx_id_or_a_reason_why_not() -> None:
    mapped = set(SPDX_TO_DPI.values())
    assert set(dpi_names()) == mapped | set(WITHOUT_SPDX_ID)
    assert not mapped & set(WITHOUT_SPDX_ID)
    licensing = get_spdx_licensing()
    for name, reason in WITHOUT_SPDX_ID.items():
        if reason.startswith("a second DPI spelling"):  # "MIT" is the SPDX id of "MIT License"
            continue
        with pytest.raises(Exception):  # noqa: B017 - any refusal of the parser will do
            licensing.parse(name.replace(" ", "-"), validate=True, strict=True)


@pytest.mark.parametrize(
    ("expression", "use", "licences"),
    [
        ("CC-BY-NC-4.0", UseClass.NON_COMMERCIAL, ("CC BY-NC 4.0",)),
        ("Apache-2.0", UseClass.COMMERCIAL, ("Apache License 2.0",)),
        ("mit", UseClass.COMMERCIAL, ("MIT License",)),
        ("GPL-3.0", UseClass.COMMERCIAL, ("GNU General Public License v3.0",)),  # deprecated id
        ("MIT AND CC-BY-NC-4.0", UseClass.NON_COMMERCIAL, ("MIT License", "CC BY-NC 4.0")),
        ("MIT OR CC-BY-NC-4.0", UseClass.COMMERCIAL, ("MIT License",)),
        ("CC-BY-NC-4.0 OR MIT", UseClass.COMMERCIAL, ("MIT License",)),
        (
            "CC-BY-NC-SA-4.0 AND (MIT OR CC-BY-ND-4.0)",
            UseClass.NON_COMMERCIAL,
            ("CC BY-NC-SA 4.0", "MIT License"),
        ),
        (
            "GPL-2.0-or-later WITH Classpath-exception-2.0",
            UseClass.COMMERCIAL,
            ("GNU General Public License v2.0",),
        ),
        ("mit and apache-2.0", UseClass.COMMERCIAL, ("MIT License", "Apache License 2.0")),
    ],
)
def test_spdx_expressions(expression: str, use: UseClass, licences: tuple[str, ...]) -> None:
    found = classify(expression)
    assert found.use == use and found.licences == licences


def test_or_picks_the_alternative_with_fewer_duties() -> None:
    # Both commercial: CC BY 4.0 asks only for attribution, CC BY-SA 4.0 also for share-alike.
    assert classify("CC-BY-SA-4.0 OR CC-BY-4.0").licences == ("CC BY 4.0",)
    assert classify("CC-BY-ND-4.0 OR CC-BY-SA-4.0").licences == ("CC BY-SA 4.0",)
    assert classify("CC0-1.0 OR MIT").licences == ("CC0 1.0",)


@pytest.mark.parametrize(
    ("licence", "message"),
    [
        ("FOO-1.0", "unknown licence 'FOO-1.0'"),
        ("MIT AND FOO-1.0", "unknown licence 'MIT AND FOO-1.0'"),
        ("MIT AND", "unknown licence 'MIT AND'"),
        ("MS-PL", "the SPDX licence MS-PL has no DPI licence class"),
        ("MIT OR Unlicense", "the SPDX licence Unlicense has no DPI licence class"),
        ("Custom (commercial)", "a custom licence the DPI's tables do not classify"),
        ("https://example.org/licence", "unknown licence"),
        ("", "non-empty string"),
    ],
)
def test_unknown_licences_are_refused(licence: str, message: str) -> None:
    with pytest.raises(LicenceClassError) as raised:
        classify(licence)
    assert message in str(raised.value)


def test_ranking_follows_the_dpi() -> None:
    assert sorted(RANK, key=RANK.__getitem__) == [
        UseClass.COMMERCIAL,
        UseClass.UNSPECIFIED,
        UseClass.NON_COMMERCIAL,
        UseClass.ACADEMIC,
    ]
    # most_restrictive() agrees with the DPI's own resolution on every pair and triple of rows
    # (apart from the two corrected share-alike flags).
    names = [n for n in dpi_names() if n not in CORRECTED]
    for size in (2, 3):
        for group in itertools.islice(itertools.combinations(names, size), 0, None, 7 * size - 6):
            combined = most_restrictive(classify(n) for n in group)
            use, attribution, share_alike = dpi_resolve([licence_table()[n] for n in group])
            assert (combined.use.value, int(combined.attribution)) == (use, attribution), group
            assert int(combined.share_alike) == share_alike or combined.no_derivatives, group
            assert combined.licences == group


def test_combining_needs_something_to_combine() -> None:
    with pytest.raises(LicenceClassError):
        most_restrictive([])
    with pytest.raises(LicenceClassError):
        least_restrictive([])


def test_terms_of_a_commercial_licence() -> None:
    terms = terms_for(classify("MIT"))
    assert terms.purposes == frozenset(PURPOSES)
    assert terms.commercial and terms.derivation and terms.redistribution
    assert terms.attribution == () and terms.licence == "MIT"
    apache = terms_for(classify("Apache-2.0"), licence="Apache-2.0", notice="(c) Acme")
    assert apache.attribution == ("(c) Acme",) and apache.licence == "Apache-2.0"


def test_terms_of_a_non_commercial_licence() -> None:
    terms = terms_for(classify("CC-BY-NC-4.0"))
    assert terms.purposes == frozenset(PURPOSES) and not terms.commercial
    assert terms.derivation and terms.redistribution and not terms.share_alike
    assert terms.attribution == ("CC BY-NC 4.0",)


def test_terms_of_an_academic_licence() -> None:
    terms = terms_for(classify("Academic Research Purposes Only"))
    assert terms.purposes == frozenset({"research", "evaluation"})
    assert not terms.commercial and not terms.redistribution and terms.derivation


def test_no_derivatives_and_share_alike() -> None:
    nd = terms_for(classify("CC-BY-NC-ND-4.0"))
    assert not nd.derivation and not nd.share_alike
    sa = terms_for(classify("CC-BY-SA-4.0"), licence="CC-BY-SA-4.0")
    assert sa.derivation and sa.share_alike and sa.licence == "CC-BY-SA-4.0"
    both = terms_for(most_restrictive([classify("CC-BY-SA-4.0"), classify("CC-BY-ND-4.0")]))
    assert not both.derivation and not both.share_alike


def test_unspecified_grants_nothing() -> None:
    with pytest.raises(LicenceClassError, match="grants nothing machine-checkable"):
        terms_for(classify("Unspecified"))


def test_attribution_without_any_name_needs_a_notice() -> None:
    anonymous = LicenceClass(UseClass.COMMERCIAL, True, False, False, ())
    with pytest.raises(LicenceClassError, match="give the notice"):
        terms_for(anonymous)
    assert terms_for(anonymous, notice="(c) Acme").attribution == ("(c) Acme",)
