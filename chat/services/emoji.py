"""Is this string one emoji?  A pure, linear-time check of one Unicode emoji grapheme.

Layer: chat services (pure: no Django, no I/O).  Used by
:mod:`chat.actions.reactions` for the emoji of a reaction.

Accepted (Unicode TR #51, section 1.4, "emoji sequences", without a data file):

- a pictograph (``Extended_Pictographic``, approximated by the ranges below),
  optionally followed by U+FE0F (emoji presentation) and/or one skin-tone
  modifier (U+1F3FB..U+1F3FF);
- a flag: two regional indicators (U+1F1E6..U+1F1FF);
- a keycap: ``0-9``, ``#`` or ``*``, optional U+FE0F, then U+20E3;
- a tag sequence (subdivision flags): U+1F3F4, tags U+E0020..U+E007E, U+E007F;
- a ZWJ sequence: elements of the first kind joined by U+200D (families,
  professions, "rainbow flag" = white flag + ZWJ + rainbow).

Refused: empty strings, text, markup, whitespace, lone surrogates, anything
over :data:`MAX_CODE_POINTS` code points (checked before anything is
scanned, so the scan is bounded as well as linear).  The set of emoji the
check accepts is a little wider than Unicode's list (any pictograph may take
a skin tone or join another), which is harmless: everything accepted is a
single pictographic grapheme that renders as text, never markup.
"""

from __future__ import annotations

#: The longest sequence in Unicode 15 (a family with skin tones) is 10 code points; tags need up to 7.
MAX_CODE_POINTS = 16

ZWJ = 0x200D
VS16 = 0xFE0F
KEYCAP = 0x20E3
BLACK_FLAG = 0x1F3F4
TAG_END = 0xE007F

#: Extended_Pictographic, as ranges (inclusive); regional indicators and skin tones excluded below.
PICTOGRAPHIC = (
    (0x00A9, 0x00A9),
    (0x00AE, 0x00AE),
    (0x203C, 0x203C),
    (0x2049, 0x2049),
    (0x2122, 0x2122),
    (0x2139, 0x2139),
    (0x2194, 0x2199),
    (0x21A9, 0x21AA),
    (0x231A, 0x231B),
    (0x2328, 0x2328),
    (0x23CF, 0x23CF),
    (0x23E9, 0x23F3),
    (0x23F8, 0x23FA),
    (0x24C2, 0x24C2),
    (0x25AA, 0x25AB),
    (0x25B6, 0x25B6),
    (0x25C0, 0x25C0),
    (0x25FB, 0x25FE),
    (0x2600, 0x27BF),
    (0x2934, 0x2935),
    (0x2B05, 0x2B07),
    (0x2B1B, 0x2B1C),
    (0x2B50, 0x2B50),
    (0x2B55, 0x2B55),
    (0x3030, 0x3030),
    (0x303D, 0x303D),
    (0x3297, 0x3297),
    (0x3299, 0x3299),
    (0x1F000, 0x1F1E5),
    (0x1F200, 0x1F3FA),
    (0x1F400, 0x1FAFF),
    (0x1FC00, 0x1FFFD),
)


def _pictographic(cp: int) -> bool:
    return any(low <= cp <= high for low, high in PICTOGRAPHIC)


def _regional(cp: int) -> bool:
    return 0x1F1E6 <= cp <= 0x1F1FF


def _skin_tone(cp: int) -> bool:
    return 0x1F3FB <= cp <= 0x1F3FF


def _tag(cp: int) -> bool:
    return 0xE0020 <= cp <= 0xE007E


def is_emoji(value: object) -> bool:
    """True when ``value`` is a string holding exactly one emoji (see the module's grammar)."""
    if not isinstance(value, str) or not 0 < len(value) <= MAX_CODE_POINTS:
        return False
    cps = [ord(char) for char in value]
    if len(cps) == 2 and _regional(cps[0]) and _regional(cps[1]):
        return True
    if cps[-1] == KEYCAP:
        return value[0] in "0123456789#*" and cps[1:] in ([KEYCAP], [VS16, KEYCAP])
    if cps[0] == BLACK_FLAG and len(cps) > 2 and cps[-1] == TAG_END:
        return all(_tag(cp) for cp in cps[1:-1])
    return _zwj_sequence(cps)


def _zwj_sequence(cps: list[int]) -> bool:
    """Elements (pictograph, then optional VS16 and skin tone) joined by ZWJ; one pass."""
    i, n = 0, len(cps)
    while True:
        if i >= n or not _pictographic(cps[i]):
            return False
        i += 1
        if i < n and cps[i] == VS16:
            i += 1
        if i < n and _skin_tone(cps[i]):
            i += 1
        if i == n:
            return True
        if cps[i] != ZWJ:
            return False
        i += 1
