"""The language-mix heuristic: writing systems, stop words, and the deterministic sample."""

from __future__ import annotations

import pytest

from catalog.language import LanguageSample, classify_text, is_sampled, sampled_indices


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


def test_sample_indices_agree_with_the_rule() -> None:
    for start, stop in [(0, 10), (0, 2000), (60, 70), (500, 1600), (1024, 1025), (7, 7)]:
        assert sampled_indices(start, stop) == [i for i in range(start, stop) if is_sampled(i)]


def test_sample_reads_only_the_first_kilobyte() -> None:
    sample = LanguageSample()
    sample.observe(("the cat and the dog " * 60).encode() + "是的".encode() * 10_000)
    sample.observe(memoryview("é".encode() * 600))  # cut inside a character at byte 1024
    assert sample.counts() == {"en": 1, "und-Latn": 1}
    assert sample.size == 2
