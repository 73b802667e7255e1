"""``chat.services.emoji.is_emoji``: one emoji grapheme, nothing else, in linear time."""

from __future__ import annotations

import time

import pytest

from chat.services.emoji import MAX_CODE_POINTS, is_emoji

EMOJI = [
    "👍",
    "❤️",  # with U+FE0F
    "❤",  # text presentation
    "👍🏽",  # skin tone
    "🇫🇷",  # flag
    "1️⃣",  # keycap
    "#⃣",
    "👨‍👩‍👧‍👦",  # ZWJ family
    "🧑🏽‍💻",  # ZWJ with skin tone
    "🏳️‍🌈",  # rainbow flag
    "🏴󠁧󠁢󠁳󠁣󠁴󠁿",  # subdivision flag (tags)
    "©️",
    "🫠",
]

NOT_EMOJI = [
    "",
    " ",
    "a",
    "lol",
    ":+1:",
    "<b>x</b>",
    "<img src=x onerror=alert(1)>",
    "👍 ",
    " 👍",
    "👍👍",  # two graphemes
    "👍\u200d",  # dangling joiner
    "\u200d👍",
    "🏻",  # a lone skin tone
    "🇫",  # half a flag
    "🇫🇷🇩🇪",
    "1",
    "1\ufe0f",
    "\ud800",  # lone surrogate
    "👍\ud83d",
    "🏴\U000e0067",  # unterminated tag sequence
    "x" * 1000,
    "👍" * 1000,
    "\u202e👍",
    "\x00",
]


@pytest.mark.parametrize("value", EMOJI)
def test_emoji_are_accepted(value: str) -> None:
    assert is_emoji(value)


@pytest.mark.parametrize("value", NOT_EMOJI)
def test_everything_else_is_refused(value: str) -> None:
    assert not is_emoji(value)


@pytest.mark.parametrize("value", [None, 1, True, b"\xf0\x9f\x91\x8d", ["👍"], {"e": "👍"}])
def test_non_strings_are_refused(value: object) -> None:
    assert not is_emoji(value)


def test_length_is_bounded_before_anything_is_scanned() -> None:
    longest = "👨‍👩‍👧‍👦" + "\u200d👍" * ((MAX_CODE_POINTS - 7) // 2)
    assert len(longest) <= MAX_CODE_POINTS and is_emoji(longest)
    assert not is_emoji(longest + "\u200d👍")
    started = time.perf_counter()
    for _ in range(1000):
        is_emoji("👍" * 1_000_000)
    assert time.perf_counter() - started < 0.5
