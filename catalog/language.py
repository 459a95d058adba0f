"""A cheap, deterministic language-mix estimate: writing system first, then stop words.

No model and no network: the same bytes give the same answer on every machine, because the
result is part of the version manifest and the exchange recomputes it. The rule (v1, frozen with
the manifest format):

1. Sample: the first 64 documents of the file, and every document whose SHA-256 begins with
   nine zero bits (one in 512, wherever it is: the rule needs no global position, so a file can be
   read in parts); of each, the first 1024 bytes, decoded as UTF-8 (a character cut at the end is
   dropped).
2. Count the characters matched by each writing system's class (Unicode ranges below). None
   matched: the document is ``zxx`` (no linguistic content). The dominant system matches most
   characters (a tie goes to the one listed first).
3. The dominant writing system decides: Hangul ``ko``; Han or kana with any kana ``ja``; Han
   ``zh``; Greek ``el``; Hebrew ``he``; Thai ``th``; Armenian ``hy``; Georgian ``ka``. Latin and
   Cyrillic go to a stop-word vote among the languages listed in ``_STOP_WORDS``: the language
   with the most stop-word hits wins if it has at least 2 hits and strictly more than any other;
   otherwise ``und-Latn`` / ``und-Cyrl``. Other systems give ``und-<ISO 15924 code>``.

The file's ``languages`` are the counts of sampled documents per code.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

__all__ = ["LanguageSample", "classify_text", "sampled_positions"]

SAMPLE_HEAD = 64
SAMPLE_BYTES = 1024


def sampled_positions(start: int, digests: Sequence[bytes]) -> list[int]:
    """Positions in a batch (first record ``start``, document hashes ``digests``) to sample."""
    head = min(max(SAMPLE_HEAD - start, 0), len(digests))
    picked = [i for i in range(head, len(digests)) if not digests[i][0] and digests[i][1] < 0x80]
    return [*range(head), *picked]


# Writing systems by Unicode block: (ISO 15924 code, character class).
_SCRIPTS: tuple[tuple[str, str], ...] = (
    ("Latn", "A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u1e00-\u1eff"),
    ("Cyrl", "\u0400-\u04ff\u0500-\u052f"),
    ("Grek", "\u0370-\u03ff\u1f00-\u1fff"),
    ("Arab", "\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff"),
    ("Hebr", "\u0590-\u05ff"),
    ("Deva", "\u0900-\u097f"),
    ("Beng", "\u0980-\u09ff"),
    ("Taml", "\u0b80-\u0bff"),
    ("Thai", "\u0e00-\u0e7f"),
    ("Armn", "\u0530-\u058f"),
    ("Geor", "\u10a0-\u10ff"),
    ("Hang", "\u1100-\u11ff\u3130-\u318f\uac00-\ud7af"),
    ("Kana", "\u3040-\u309f\u30a0-\u30ff"),
    ("Hani", "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"),
)
# One pass over the text: each match is a run of letters of one writing system.
_SCRIPT_RUNS = re.compile("|".join(f"(?P<{code}>[{chars}]+)" for code, chars in _SCRIPTS))
_KANA = re.compile(f"[{dict(_SCRIPTS)['Kana']}]")
_LATIN_RUNS = re.compile(f"[{dict(_SCRIPTS)['Latn']}]+")
_SINGLE_LANGUAGE = {
    "Hang": "ko",
    "Grek": "el",
    "Hebr": "he",
    "Thai": "th",
    "Armn": "hy",
    "Geor": "ka",
}


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Short, frequent, mutually distinctive function words.
_STOP_WORDS: dict[str, dict[str, frozenset[str]]] = {
    "Latn": {
        "en": _words("the and of to is in that it was for with as on are this be"),
        "de": _words("der die und das ist nicht ein eine mit den sich auf dem zu ich"),
        "fr": _words("le la les et des est une dans que pour pas sur qui au du"),
        "es": _words("el la los las y es que en un una por con para del se"),
        "it": _words("il di che è la un una per non sono gli del della con"),
        "pt": _words("o a os as e é que não um uma do da em para com"),
        "nl": _words("de het een en van is dat niet op te zijn met voor"),
        "pl": _words("i w nie na się że jest z do to jak po"),
        "sv": _words("och att det som en är på för med inte av jag"),
        "tr": _words("ve bir bu için da de ile çok olan gibi daha"),
        "id": _words("dan yang di ini itu dengan untuk dari tidak ke pada"),
    },
    "Cyrl": {
        "ru": _words("и в не на что с как это по он но я к из"),  # noqa: RUF001 - Cyrillic on purpose
        "uk": _words("і в не на що з як це та до але я від"),  # noqa: RUF001 - Cyrillic on purpose
        "bg": _words("и на да се не от за че е в с са"),  # noqa: RUF001 - Cyrillic on purpose
    },
}
_WORD = re.compile(r"[^\W\d_]+")


class LanguageSample:
    """Counts of sampled documents per language code."""

    __slots__ = ("_counts", "_size")

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._size = 0

    @property
    def size(self) -> int:
        """How many documents were sampled."""
        return self._size

    def counts(self) -> dict[str, int]:
        return dict(sorted(self._counts.items()))

    def observe(self, document: bytes | memoryview) -> None:
        """Classify one sampled document (only its first SAMPLE_BYTES bytes are read)."""
        text = bytes(document[:SAMPLE_BYTES]).decode("utf-8", "ignore")
        self._counts[classify_text(text)] += 1
        self._size += 1


def classify_text(text: str) -> str:
    """The language code of a (short) text, by the rule in the module docstring."""
    if text.isascii():
        # The common case, without ten regex scans: ASCII letters are all Latin.
        script = "Latn" if any(c.isalpha() for c in text) else ""
    else:
        script = _dominant_script(text)
    if not script:
        return "zxx"
    if script in _SINGLE_LANGUAGE:
        return _SINGLE_LANGUAGE[script]
    if script in ("Hani", "Kana"):
        return "ja" if _KANA.search(text) else "zh"
    if script in _STOP_WORDS:
        return _vote(text, script)
    return f"und-{script}"


def _dominant_script(text: str) -> str:
    """The writing system whose class matches most characters (ties: the first in _SCRIPTS)."""
    latin = sum(map(len, _LATIN_RUNS.findall(text)))
    if latin > len(text) - len(text.encode("ascii", "ignore")):
        return "Latn"  # every other system is non-ASCII, and there are fewer of those in all
    counts = dict.fromkeys((code for code, _ in _SCRIPTS), 0)
    for run in _SCRIPT_RUNS.finditer(text):
        counts[run.lastgroup or ""] += run.end() - run.start()
    best = max(counts.values())
    return next(code for code, count in counts.items() if count == best) if best else ""


def _vote(text: str, script: str) -> str:
    words = Counter(_WORD.findall(text.lower()))
    scores = sorted(
        (
            (sum(words[w] for w in stops if w in words), code)
            for code, stops in _STOP_WORDS[script].items()
        ),
        reverse=True,
    )
    (top, code), (second, _) = scores[0], scores[1]
    return code if top >= 2 and top > second else f"und-{script}"
