"""Message content screening: abuse is refused, and what formerly refused markup is flagged, in linear time.

Layer: security (used by every surface that takes a message; imports nothing of the chat).

Text is text.  What a person types is stored and broadcast verbatim, and
every client renders ``content`` as text; markdown becomes HTML only
through :mod:`security.render`.  So content is never rewritten here, and
markup is not a reason to refuse a message.  What this module decides:

- :func:`find_hostile` -- whether the content *looks like an attack*
  (``script_injection``, ``event_handler``, ``obfuscated_url``: script
  tags, event-handler attributes, ``javascript:`` and HTML ``data:`` URLs,
  hosts hidden behind escapes), after undoing obfuscation (:func:`reveal`).
  Under a workspace's ``standard`` content policy that is a
  ``suspicious_activity`` security event and a strike for the sender, and
  the message goes through as text; under ``strict`` it is refused with
  :class:`~security.errors.MessageBlocked` and the reason, as it always was
  (:func:`check_content`).
- :func:`check_spam` -- abuse, refused under every policy with
  :class:`~security.errors.SpamDetected`: character floods and link floods
  (and, with :class:`RepeatTracker`, the same message over and over).

Errors carry a stable ``reason``, never the content.

Performance (issue #17, "One message freezes a worker"): every pattern
here runs in time linear in the text.  No unbounded quantifier is followed
by something it could also match, so a failed match never re-scans the
same span: separators between the letters of a scheme are a run of
``[\\s\\x00-\\x1f]`` followed by a letter or ``/``; spans inside a tag are
bounded (``{0,4000}``, ``{0,100}``) and end at a character they exclude.
Callers check the length first (``chat.services.messages.check_content``),
so the text is at most ``CHAT_MESSAGE_MAX_LENGTH`` characters.
``tests/unit/test_security_content.py`` times adversarial inputs at that
limit against ordinary text of the same length.
"""

from __future__ import annotations

import hashlib
import html
import re
import time
import unicodedata
from urllib.parse import unquote

from django.conf import settings

from security.errors import MessageBlocked, SpamDetected
from security.ratelimit import (
    BackendUnavailable,
    Clock,
    LimiterBackend,
    MemoryBackend,
    Rule,
    backend_down,
    backend_from_settings,
)

CONTENT_TYPES = ("text", "markdown")

#: Reasons carried by MessageBlocked / SpamDetected (stable: clients and the event log use them).
SCRIPT_INJECTION = "script_injection"
EVENT_HANDLER = "event_handler"
OBFUSCATED_URL = "obfuscated_url"
CHAR_FLOOD = "char_flood"
LINK_FLOOD = "link_flood"
REPEATED_MESSAGE = "repeated_message"


#: What :func:`find_hostile` may answer: the reasons ``strict`` refuses with.
HOSTILE_REASONS = (SCRIPT_INJECTION, EVENT_HANDLER, OBFUSCATED_URL)
#: Separators browsers ignore or tolerate inside a scheme (tab, newlines, controls).
_SEP = r"[\s\x00-\x1f]*"


def _spaced(word: str) -> str:
    return _SEP.join(re.escape(char) for char in word)


_SCRIPT_SCHEME = rf"(?:{_spaced('javascript')}|{_spaced('vbscript')}|{_spaced('livescript')}){_SEP}:"

# check_content patterns (applied to the de-obfuscated text).
#: ``<``, separators, an optional ``/`` and separators, ``script`` or ``iframe``.  Written so that
#: the two separator runs can never share characters: ``<{_SEP}/?{_SEP}`` re-split a run of
#: spaces at every position, which made ``"<" + " " * 9999`` quadratic (issue #17).
_SCRIPT_TAG = re.compile(rf"<{_SEP}(?:/{_SEP})?(?:script|iframe)\b", re.IGNORECASE)
_HTML_DATA_URL = re.compile(
    rf"{_spaced('data')}{_SEP}:{_SEP}(?:text/html|text/(?:x-)?(?:java|ecma)script|application/(?:x-)?"
    r"(?:java|ecma)script|application/xhtml\+xml|image/svg\+xml)",
    re.IGNORECASE,
)
_BAD_SCHEME = re.compile(rf"{_SCRIPT_SCHEME}", re.IGNORECASE)
#: A start tag and its attributes up to the next ``<`` or ``>`` (bounded; matches never overlap).
_TAG_BODY = re.compile(r"<[A-Za-z][^<>]{0,4000}")
#: Elements that load or run something as soon as they carry an attribute (``<object data=``...).
_ACTIVE_TAG = re.compile(r"<(?:object|embed|applet|frame|frameset|base|meta|link|form|portal)\b[^<>]*=", re.IGNORECASE)
#: Script in CSS (old IE ``expression()``, ``behavior:``, Firefox ``-moz-binding``), inside a tag.
_CSS_SCRIPT = re.compile(r"expression[\s\x00-\x1f]*\(|-moz-binding|behavior[\s\x00-\x1f]*:", re.IGNORECASE)
#: ``on`` + a name, up to the ``=``; the name may carry junk (``onload!#$=``), which old parsers accepted.
#: The name part excludes what the separator run takes (controls), so the two never split one span.
_HANDLER_ATTRIBUTE = re.compile(rf"[\s\"'/`]on[a-z]{{3}}[^\s=>\x00-\x1f]{{0,100}}{_SEP}=", re.IGNORECASE)
_ESCAPE = re.compile(
    r"%[0-9a-fA-F]{2}|\\x[0-9a-fA-F]{2}|\\u\{[0-9a-fA-F]{1,6}\}|\\u[0-9a-fA-F]{4}|&#[xX][0-9a-fA-F]{1,8};?|&#[0-9]{1,9};?"
)
_JS_ESCAPE = re.compile(r"\\x([0-9a-fA-F]{2})|\\u\{([0-9a-fA-F]{1,6})\}|\\u([0-9a-fA-F]{4})")
_URL_SCHEME = re.compile(
    r"(?<![a-z0-9+.\-])(?:https?|ftps?|wss?|file|mailto|blob|javascript|vbscript|data):", re.IGNORECASE
)
#: A URL whose host is hidden: percent-escaped, or an IPv4 address written as one number, in hex or in octal.
_OBFUSCATED_HOST = re.compile(
    r"\b(?:https?|ftps?|wss?)://(?:[^\s/?#@]{0,255}@)?"
    r"(?:[^\s/?#%]{0,255}%[0-9a-f]{2}|\d{6,10}(?![\d.])|0x[0-9a-f]{1,8}\b|0[0-7]{1,11}\.)",
    re.IGNORECASE,
)
_LINK = re.compile(r"\b(?:https?://|ftps?://|www\.)", re.IGNORECASE)
#: The end of every scheme the rules look for: ``javascript:``, ``vbscript:``,
#: ``livescript:`` and ``data:``, separators allowed before the colon.
_SCHEME_END = re.compile(r"[ta][\s\x00-\x1f]*:", re.IGNORECASE)


def _may_hide(text: str) -> bool:
    """Whether :func:`reveal` could change ``text``: entities, percent and JS escapes, compatibility characters."""
    return not text.isascii() or "&" in text or "%" in text or "\\" in text


def _may_name_a_scheme(text: str) -> bool:
    return ":" in text and _SCHEME_END.search(text) is not None


# --- refusing ----------------------------------------------------------------------------------


def _decode_js_escape(match: re.Match[str]) -> str:
    digits = next(group for group in match.groups() if group)
    code = int(digits, 16)
    if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        return match.group(0)
    return chr(code)


def reveal(content: str, rounds: int = 3) -> str:
    """``content`` with obfuscation undone: NFKC, HTML entities, percent and JS escapes, up to ``rounds`` deep."""
    text = unicodedata.normalize("NFKC", content)
    for _ in range(rounds):
        decoded = html.unescape(text) if "&" in text else text
        if "%" in decoded:
            decoded = unquote(decoded, errors="replace")
        if "\\" in decoded:
            decoded = _JS_ESCAPE.sub(_decode_js_escape, decoded)
        if decoded == text:  # nothing decoded: ``text`` is already normal (NFKC is idempotent)
            break
        decoded = unicodedata.normalize("NFKC", decoded)
        if decoded == text:
            break
        text = decoded
    return text


def _escapes_a_letter(content: str) -> bool:
    """Whether an escape sequence in ``content`` encodes an ASCII letter (never needed in honest text)."""
    for match in _ESCAPE.finditer(content):
        decoded = reveal(match.group(0), rounds=1)
        if len(decoded) == 1 and decoded.isascii() and decoded.isalpha():
            return True
    return False


def _scan_tags(text: str) -> str | None:
    """The reason to block found inside a start tag's attributes, if any."""
    for tag in _TAG_BODY.finditer(text):
        body = tag.group(0)
        if _HANDLER_ATTRIBUTE.search(body):
            return EVENT_HANDLER
        if _CSS_SCRIPT.search(body):
            return SCRIPT_INJECTION
    return None


def _has_char_flood(content: str, max_run: int) -> bool:
    return len(content) > max_run and re.search(r"(\S)\1{%d,}" % max_run, content) is not None


def _count_links(content: str, stop_after: int) -> int:
    if "://" not in content and "www." not in content.lower():
        return 0
    count = 0
    for _ in _LINK.finditer(content):
        count += 1
        if count > stop_after:
            break
    return count


def find_hostile(content: str, *, thorough: bool = False) -> str | None:
    """What ``content`` looks like it is trying (a reason of :data:`HOSTILE_REASONS`), or ``None``.

    - ``script_injection`` -- a ``<script``/``<iframe`` tag; an ``<object>``,
      ``<embed>``, ``<meta>``, ``<base>``, ``<form>``... tag with attributes;
      script in CSS; a ``javascript:``/``vbscript:`` URL or an HTML/script
      ``data:`` URL -- in any case, with separators inside, or hidden behind
      entities, percent, ``\\x``/``\\u`` escapes or compatibility characters;
    - ``event_handler`` -- an ``on*=`` attribute inside a tag;
    - ``obfuscated_url`` -- a URL scheme whose letters are escaped
      (``%68ttp://``), or a URL host that is percent-escaped or an IPv4
      address written as one number, in hex or in octal.

    Each rule runs only where the character it cannot match without is
    present: most chat lines have nothing to reveal and no ``<``, so they
    cost a few character scans.  ``thorough`` runs every rule regardless
    (the tests compare the two).
    """
    revealed = reveal(content) if thorough or _may_hide(content) else content
    tags = thorough or "<" in revealed
    schemes = thorough or _may_name_a_scheme(revealed)
    if (tags and (_SCRIPT_TAG.search(revealed) or _ACTIVE_TAG.search(revealed))) or (
        schemes and (_BAD_SCHEME.search(revealed) or _HTML_DATA_URL.search(revealed))
    ):
        return SCRIPT_INJECTION
    tag_reason = _scan_tags(revealed) if tags else None
    if tag_reason is not None:
        return tag_reason
    if revealed != content and _escapes_a_letter(content):
        if len(_URL_SCHEME.findall(revealed)) > len(_URL_SCHEME.findall(content)):
            return OBFUSCATED_URL
    seen = (content,) if revealed is content else (content, revealed)
    if any((thorough or "://" in text) and _OBFUSCATED_HOST.search(text) for text in seen):
        return OBFUSCATED_URL
    return None


def check_spam(content: str, *, max_char_run: int | None = None, max_links: int | None = None) -> None:
    """Raise :class:`SpamDetected` for a flood, under every content policy.

    ``char_flood`` -- one non-space character repeated more than
    ``max_char_run`` times in a row; ``link_flood`` -- more than ``max_links`` links.
    """
    max_run = int(settings.CHAT.spam_max_char_run) if max_char_run is None else max_char_run
    if _has_char_flood(content, max_run):
        raise SpamDetected(CHAR_FLOOD)
    link_limit = int(settings.CHAT.spam_max_links) if max_links is None else max_links
    if _count_links(content, link_limit) > link_limit:
        raise SpamDetected(LINK_FLOOD)


def check_content(content: str, *, max_char_run: int | None = None, max_links: int | None = None) -> None:
    """The ``strict`` policy: :class:`MessageBlocked` for hostile-looking content, then :func:`check_spam`."""
    reason = find_hostile(content)
    if reason is not None:
        raise MessageBlocked(reason)
    check_spam(content, max_char_run=max_char_run, max_links=max_links)


# --- repeats ---------------------------------------------------------------------------------


def fingerprint(content: str) -> str:
    """A digest of the message as a reader would compare it (case, spacing and width ignored)."""
    normal = " ".join(unicodedata.normalize("NFKC", content).casefold().split())
    return hashlib.blake2b(normal.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


class RepeatTracker:
    """Refuse a message identical to ``max_repeats`` messages the same user sent within ``window_s``.

    Only digests are kept, never content: on the rate limiter's backend, as
    a sliding window per (user, digest).  With :class:`MemoryBackend` this
    is per process and bounded by its key cap (each key holds at most
    ``max_repeats`` timestamps, which expire with the window); with
    :class:`~security.ratelimit.RedisBackend` it is shared by all workers
    and every key has a TTL (if Redis is down it fails open, like the rate
    limiter).  Refused messages are not counted, so a user may send the
    message again once the oldest copy leaves the window.
    """

    def __init__(
        self,
        backend: LimiterBackend | None = None,
        *,
        max_repeats: int | None = None,
        window_s: float | None = None,
        clock: Clock = time.time,
    ) -> None:
        self.backend: LimiterBackend = backend if backend is not None else MemoryBackend(max_keys=50_000)
        repeats = int(settings.CHAT.spam_max_repeats) if max_repeats is None else max_repeats
        window = float(settings.CHAT.spam_repeat_window_s) if window_s is None else window_s
        self.rule = Rule(repeats, window)
        self.clock = clock

    async def check(self, user_key: str | int, content: str) -> None:
        """Count this message for ``user_key``; raise ``SpamDetected(reason="repeated_message")`` if too many."""
        key = f"repeat:{user_key}:{fingerprint(content)}"
        try:
            allowed, retry_after, _ = await self.backend.hit(
                key, self.rule.limit, self.rule.window_ms, int(self.clock() * 1000)
            )
        except BackendUnavailable as error:
            backend_down(error)  # fail open, like the rate limiter
            return
        if not allowed:
            raise SpamDetected(REPEATED_MESSAGE, retryAfter=retry_after)


def repeat_tracker_from_settings(backend: LimiterBackend | None = None) -> RepeatTracker:
    """Shared through Redis when ``settings.CHAT.redis_url`` is set, else per process."""
    return RepeatTracker(backend if backend is not None else backend_from_settings())
