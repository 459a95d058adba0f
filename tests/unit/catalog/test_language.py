"""The language-mix heuristic: writing systems, stop words, and the deterministic sample."""

from __future__ import annotations

import hashlib

import pytest

from catalog.language import LanguageSample, classify_text, sampled_positions


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("The cat is on the mat and it was happy with the dog.", "en"),
        ("Der Hund ist nicht in dem Haus, und die Katze auch nicht.", "de"),
        ("Le chat est dans la maison et les chiens sont sur le toit.", "fr"),
        ("El perro y el gato están en la casa con los niños para que se diviertan.", "es"),
        ("Кошка и собака не знают, что это было на самом деле.", "ru"),
        ("Кішка і собака не знають, що це було та як.", "uk"),  # noqa: RUF001
        ("敏捷的棕色狐狸跳过了懒狗。", "zh"),
        ("素早い茶色の狐がのろまな犬を飛び越えた。", "ja"),
        ("빠른 갈색 여우가 게으른 개를 뛰어넘었다.", "ko"),
        ("Ζωηρή καφέ αλεπού πηδάει πάνω από τον τεμπέλη σκύλο.", "el"),
        ("הכלב החום המהיר קפץ מעל הכלב העצלן", "he"),
        ("तेज़ भूरी लोमड़ी आलसी कुत्ते के ऊपर कूद गई", "und-Deva"),
        ("xyzzy plugh", "und-Latn"),
        ("12345 !!! ---", "zxx"),
        ("", "zxx"),
    ],
)
def test_classify_text(text: str, code: str) -> None:
    assert classify_text(text) == code


def test_sample_is_the_head_and_hashes_with_nine_zero_bits() -> None:
    zero = bytes(32)
    low = b"\x00\x7f" + bytes(30)
    high = b"\x00\x80" + bytes(30)
    other = b"\x01" + bytes(31)
    assert sampled_positions(0, [other] * 70) == list(range(64))
    assert sampled_positions(60, [other, zero, other, other, low, high, other]) == [0, 1, 2, 3, 4]
    assert sampled_positions(64, [other, zero, high, low]) == [1, 3]
    assert sampled_positions(1000, []) == []


def test_sample_of_a_file_is_about_one_in_512() -> None:
    documents = [f"document number {i}".encode() for i in range(100_000)]
    digests = [hashlib.sha256(d).digest() for d in documents]
    picked = sampled_positions(0, digests)
    assert picked[:64] == list(range(64))
    assert 100_000 // 512 * 0.8 < len(picked) - 64 < 100_000 // 512 * 1.2
    # The same documents in other batches are picked the same way.
    again = [p + 500 for p in sampled_positions(500, digests[500:])]
    assert again == [p for p in picked if p >= 500]


def test_sample_reads_only_the_first_kilobyte() -> None:
    sample = LanguageSample()
    sample.observe(("the cat and the dog " * 60).encode() + "是的".encode() * 10_000)
    sample.observe(memoryview("é".encode() * 600))  # cut inside a character at byte 1024
    assert sample.counts() == {"en": 1, "und-Latn": 1}
    assert sample.size == 2
