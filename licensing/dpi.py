"""Data Provenance Initiative dataset summaries: reading them and classifying their licences.

The DPI describes each dataset of its collection in a JSON summary (files of objects keyed by
"Unique Dataset Identifier"; the schema is the collection's ``_template_spec.yaml``). A dataset's
own use class is the most restrictive of its licences' classes, as the DPI resolves several
licences. The DPI records lineage ("Derived from Datasets") but does not carry licences along it;
:func:`classify_collection` does, transitively and through cycles, so that a dataset derived from
a non-commercial one is itself at best non-commercial. ``docs/licensing.md`` section 5 is
normative.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from licensing.classes import CUSTOM, RANK, UseClass, classify_dpi, custom_table
from licensing.errors import FormatError, LicenceClassError

URL_FIELDS = (
    "Dataset URL",
    "Hugging Face URL",
    "GitHub URL",
    "Papers with Code URL",
    "ArXiv URL",
    "Collection URL",
)
# URLs by which "Derived from Datasets" may name a dataset (the DPI often writes HF paths).
_LINEAGE_URL_FIELDS = ("Dataset URL", "Hugging Face URL", "GitHub URL")
_NO_URL = {"", "None", "none", "N/A"}


@dataclass(frozen=True)
class DpiDataset:
    """One dataset of a DPI summary, with the fields licensing needs."""

    uid: str
    name: str
    collection: str
    licences: tuple[tuple[str, str | None], ...]
    creators: tuple[str, ...]
    languages: tuple[str, ...]
    derived_from: tuple[str, ...]
    description: str
    urls: dict[str, str] = field(hash=False)


@dataclass(frozen=True)
class DpiClassification:
    """A dataset's use class from its own licences and, inherited, from its whole lineage.

    ``unknown_licences`` are licences the tables do not classify: an unknown name counts as
    unspecified, a ``Custom`` licence whose URL the table lacks as academic-only (the DPI's own
    default). ``unresolved_sources`` are "Derived from Datasets" entries naming no dataset of
    the collection; each counts as an unspecified source in ``inherited``.
    """

    uid: str
    own: UseClass
    inherited: UseClass
    unknown_licences: tuple[str, ...]
    unresolved_sources: tuple[str, ...]


# -- reading --------------------------------------------------------------------------------


def load_summaries(directory: Path) -> list[DpiDataset]:
    """Every dataset of every ``*.json`` summary in ``directory`` (not ``_template*``)."""
    if not directory.is_dir():
        raise FormatError(f"{directory} is not a directory of DPI summaries")
    datasets: list[DpiDataset] = []
    seen: dict[str, str] = {}
    for path in sorted(directory.glob("*.json")):
        if path.name.startswith("_"):
            continue
        for dataset in _read_file(path):
            if dataset.uid in seen:
                raise FormatError(
                    f"{path.name}: dataset {dataset.uid!r} is also in {seen[dataset.uid]}"
                )
            seen[dataset.uid] = path.name
            datasets.append(dataset)
    return datasets


def _read_file(path: Path) -> list[DpiDataset]:
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise FormatError(f"{path.name}: not a JSON file: {error}") from None
    return datasets_from_summary(path.name, content)


def datasets_from_summary(file: str, content: object) -> list[DpiDataset]:
    """The datasets of one summary's parsed JSON (``file`` names it in errors)."""
    if not isinstance(content, dict):
        raise FormatError(f"{file}: a DPI summary is an object of datasets keyed by uid")
    return [_dataset(file, uid, row) for uid, row in content.items()]


def _dataset(file: str, uid: str, row: object) -> DpiDataset:
    where = f"{file}: dataset {uid!r}"
    if not isinstance(row, dict):
        raise FormatError(f"{where}: must be an object")
    if row.get("Unique Dataset Identifier") != uid:
        raise FormatError(f"{where}: 'Unique Dataset Identifier' must repeat its key")
    return DpiDataset(
        uid=uid,
        name=_text(row, "Dataset Name", where),
        collection=_text(row, "Collection", where),
        licences=_licences(row.get("Licenses"), where),
        creators=_texts(row, "Creators", where, required=False),
        languages=_texts(row, "Languages", where, required=True),
        derived_from=_texts(row, "Derived from Datasets", where, required=False),
        description=_description(row),
        urls={key: row[key] for key in URL_FIELDS if _is_url(row.get(key))},
    )


def _text(row: Mapping[str, Any], key: str, where: str) -> str:
    value = row.get(key)
    if not isinstance(value, str) or not value.strip():
        raise FormatError(f"{where}: {key!r} must be a non-empty string")
    return value


def _texts(row: Mapping[str, Any], key: str, where: str, *, required: bool) -> tuple[str, ...]:
    if key not in row and not required:
        return ()
    value = row.get(key)
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise FormatError(f"{where}: {key!r} must be a list of strings")
    return tuple(value)


def _licences(value: object, where: str) -> tuple[tuple[str, str | None], ...]:
    if not isinstance(value, list):
        raise FormatError(f"{where}: 'Licenses' must be a list of {{'License', 'License URL'}}")
    licences: list[tuple[str, str | None]] = []
    for item in value:
        name = item.get("License") if isinstance(item, dict) else None
        url = item.get("License URL") if isinstance(item, dict) else None
        if (
            not isinstance(name, str)
            or not name.strip()
            or not (url is None or isinstance(url, str))
        ):
            raise FormatError(
                f"{where}: each licence needs a 'License' name (and an optional 'License URL')"
            )
        licences.append((name, url if _is_url(url) else None))
    return tuple(licences)


def _is_url(value: object) -> bool:
    return isinstance(value, str) and value.strip() not in _NO_URL


def _description(row: Mapping[str, Any]) -> str:
    # The summaries have no description field; Papers with Code's, else the paper title.
    inferred = row.get("Inferred Metadata")
    text = inferred.get("PwC Description") if isinstance(inferred, dict) else None
    if not isinstance(text, str) or not text.strip():
        text = row.get("Paper Title")
    return text.strip() if isinstance(text, str) else ""


# -- classifying ----------------------------------------------------------------------------


def classify_collection(datasets: Sequence[DpiDataset]) -> dict[str, DpiClassification]:
    """Each dataset's own and inherited use class, by uid."""
    own: dict[str, UseClass] = {}
    unknown: dict[str, tuple[str, ...]] = {}
    for dataset in datasets:
        own[dataset.uid], unknown[dataset.uid] = _own_class(dataset)
    sources, unresolved = resolve_sources(datasets)
    # An unresolved source is one whose licence nobody recorded: unspecified, as the DPI
    # counts a dataset without licence information.
    seeds = {
        uid: _strictest([own[uid], UseClass.UNSPECIFIED]) if unresolved[uid] else own[uid]
        for uid in own
    }
    inherited = _propagate(seeds, sources)
    return {
        uid: DpiClassification(uid, own[uid], inherited[uid], unknown[uid], unresolved[uid])
        for uid in own
    }


def resolve_sources(
    datasets: Sequence[DpiDataset],
) -> tuple[dict[str, set[str]], dict[str, tuple[str, ...]]]:
    """For each dataset (by uid) the uids its "Derived from Datasets" entries name within the
    collection, and the entries that name none of it."""
    sources: dict[str, set[str]] = {}
    unresolved: dict[str, tuple[str, ...]] = {}
    for uid, named in references(datasets).items():
        sources[uid] = {match for _, matches in named for match in matches or ()}
        unresolved[uid] = tuple(reference for reference, matches in named if matches is None)
    return sources, unresolved


def references(
    datasets: Sequence[DpiDataset],
) -> dict[str, list[tuple[str, frozenset[str] | None]]]:
    """For each dataset, each "Derived from Datasets" entry and the uids it names in the
    collection: ``None`` when it names none, an empty set when it names only the dataset itself."""
    index = _lineage_index(datasets)
    found: dict[str, list[tuple[str, frozenset[str] | None]]] = {}
    for dataset in datasets:
        named: list[tuple[str, frozenset[str] | None]] = []
        for reference in dataset.derived_from:
            matches = frozenset(index.get(_key(reference), set()) - {dataset.uid})
            if not matches and _key(reference) not in _own_keys(dataset):
                named.append((reference, None))
            else:
                named.append((reference, matches))
        found[dataset.uid] = named
    return found


def _own_class(dataset: DpiDataset) -> tuple[UseClass, tuple[str, ...]]:
    uses: list[UseClass] = []
    unknown: list[str] = []
    for name, url in dataset.licences:
        try:
            licence_class = classify_dpi(name, url)
        except LicenceClassError:
            unknown.append(name)
            uses.append(UseClass.UNSPECIFIED)
            continue
        if name == CUSTOM and url not in custom_table():
            unknown.append(licence_class.licences[0])
        uses.append(licence_class.use)
    # A dataset that names no licence at all is unspecified, as in the DPI.
    return _strictest(uses or [UseClass.UNSPECIFIED]), tuple(dict.fromkeys(unknown))


def _strictest(uses: Iterable[UseClass]) -> UseClass:
    return max(uses, key=RANK.__getitem__)


def _key(text: str) -> str:
    """How lineage references are compared: case-insensitive, URLs without scheme or slash."""
    key = text.strip().casefold()
    for prefix in ("https://", "http://", "www."):
        key = key.removeprefix(prefix)
    return key.rstrip("/")


def _own_keys(dataset: DpiDataset) -> set[str]:
    return {_key(dataset.uid), _key(dataset.name), _key(dataset.collection)}


def _lineage_index(datasets: Iterable[DpiDataset]) -> dict[str, set[str]]:
    """Reference -> uids, by uid, dataset name, collection name (all its datasets) and URL."""
    index: dict[str, set[str]] = {}
    for dataset in datasets:
        names = [dataset.uid, dataset.name, dataset.collection]
        names += [dataset.urls[key] for key in _LINEAGE_URL_FIELDS if key in dataset.urls]
        for name in names:
            index.setdefault(_key(name), set()).add(dataset.uid)
    return index


def _propagate(
    seeds: Mapping[str, UseClass], sources: Mapping[str, set[str]]
) -> dict[str, UseClass]:
    """inherited(d) = the most restrictive seed of everything d derives from, itself included.

    Levels are visited from the most restrictive down; from every dataset of a level, a walk
    against the lineage edges marks each dataset derived from it, directly or not. A dataset is
    marked once, at the first (most restrictive) level that reaches it, so cycles end.
    """
    derived: dict[str, set[str]] = {uid: set() for uid in seeds}
    for uid, parents in sources.items():
        for parent in parents:
            derived[parent].add(uid)
    inherited: dict[str, UseClass] = {}
    for level in sorted(RANK, key=RANK.__getitem__, reverse=True):
        queue = deque(uid for uid, seed in seeds.items() if seed == level and uid not in inherited)
        inherited.update(dict.fromkeys(queue, level))
        while queue:
            for child in derived[queue.popleft()]:
                if child not in inherited:
                    inherited[child] = level
                    queue.append(child)
    return inherited
