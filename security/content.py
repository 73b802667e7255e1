"""Message content safety: what is stored can never be live markup, and hostile content is refused.

Why: messages are fanned out to every member's widget, so one stored
``<script>`` or ``javascript:`` link would run in everyone's browser.  Two
layers, both cheap and both needed:

- :func:`sanitize` rewrites content into a safe form (nh3, an HTML5 parser
  based sanitiser -- never regexes over HTML).  It is the guarantee.
- :func:`check_content` refuses content that is *trying* something
  (:class:`~security.errors.MessageBlocked`) or is spam
  (:class:`~security.errors.SpamDetected`), so that the attempt is reported
  and recorded rather than silently defused.  Errors carry a stable
  ``reason``, never the content.
- :class:`RepeatTracker` refuses the same message sent over and over.

The rule for ``text`` (decided here, tested in ``test_security_content``):
the widget renders text as text, so the stored text is what the reader
should *see*: tags (and comments) are removed by
``nh3.clean(content, tags=set())``, the content of script-like elements
is dropped, then entities are decoded (``html.unescape``) so that
``a < b & c`` is stored as written, not as ``a &lt; b &amp; c``.  Decoding
could bring markup back -- ``&lt;script&gt;`` decodes to ``<script>`` --
so, after decoding, every ``<`` that would open a tag, end tag, comment or
declaration in HTML (one followed by an ASCII letter, ``/``, ``!`` or
``?``) is stored as the entity ``&lt;``.  nh3 has already consumed every
real tag, so only a sender who typed an *encoded* tag sees an entity; all
other text round-trips (see the limitation below), and the stored text is
safe even for a consumer that renders it as HTML.  The result is idempotent.

Limitation (both types): an unescaped ``<`` directly followed by a letter
*is* the start of a tag to an HTML parser, so ``a<b`` loses ``<b``; write
``a < b``.  HTML parsing also normalises ``\\r\\n`` to ``\\n`` and drops NUL.

The rule for ``markdown``: the source is cleaned by nh3 with a small
allow-list (:data:`MARKDOWN_TAGS`; only ``a[href]`` may carry an attribute,
with the schemes ``http``, ``https`` and ``mailto`` only, relative URLs
removed, and ``rel="noopener noreferrer nofollow"`` forced).  nh3 escapes
text; markdown renderers decode entities in text, so that is what readers
see, with two readability fixes that cannot create markup: ``&gt;`` becomes
``>`` (blockquote syntax) and ``&amp;`` not followed by a character that
could start a character reference becomes ``&``.  ``&lt;`` always stays
encoded, because a markdown renderer passes raw ``<`` through as HTML.

Both types: a ``javascript:``, ``vbscript:`` or ``data:`` URL written as
plain text (a markdown link destination, an autolink, a URL the widget
might linkify) has its colon replaced by U+FF1A FULLWIDTH COLON, which no
URL parser accepts as a scheme delimiter, so it can never become a link.

Performance: nh3 is linear; every regex here is linear (no nested
quantifiers; scans are bounded), so a 10,000-character adversarial message
is checked in a few milliseconds.
"""

from __future__ import annotations

import hashlib
import html
import re
import time
import unicodedata
from urllib.parse import unquote

import nh3

from channels_socketio.errors import InvalidPayload
from security.conf import setting
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

#: Elements whose *content* is removed with the tag: it is code, or raw text
#: an HTML parser would otherwise turn into visible markup-like text.
RAW_CONTENT_TAGS = frozenset(
    {
        "script", "style", "iframe", "noembed", "noframes", "noscript", "xmp", "textarea",
        "title", "template", "plaintext", "svg", "math",
    }
)  # fmt: skip
MARKDOWN_TAGS = frozenset({"b", "strong", "i", "em", "code", "pre", "a", "br", "p", "ul", "ol", "li", "blockquote"})
#: ``"*"`` empty: no generic attribute (nh3 would otherwise keep ``title`` and ``lang`` everywhere).
MARKDOWN_ATTRIBUTES: dict[str, frozenset[str]] = {"a": frozenset({"href"}), "*": frozenset()}
MARKDOWN_URL_SCHEMES = frozenset({"http", "https", "mailto"})
LINK_REL = "noopener noreferrer nofollow"
CONTENT_TYPES = ("text", "markdown")

#: Reasons carried by MessageBlocked / SpamDetected (stable: clients and the event log use them).
SCRIPT_INJECTION = "script_injection"
EVENT_HANDLER = "event_handler"
OBFUSCATED_URL = "obfuscated_url"
CHAR_FLOOD = "char_flood"
LINK_FLOOD = "link_flood"
REPEATED_MESSAGE = "repeated_message"

DEFAULT_MAX_CHAR_RUN = 50
DEFAULT_MAX_LINKS = 10
DEFAULT_MAX_REPEATS = 3
DEFAULT_REPEAT_WINDOW_S = 60.0

_FULLWIDTH_COLON = "\uff1a"
#: Separators browsers ignore or tolerate inside a scheme (tab, newlines, controls).
_SEP = r"[\s\x00-\x1f]*"


def _spaced(word: str) -> str:
    return _SEP.join(re.escape(char) for char in word)


_SCRIPT_SCHEME = rf"(?:{_spaced('javascript')}|{_spaced('vbscript')}|{_spaced('livescript')}){_SEP}:"
_DATA_URL = rf"{_spaced('data')}{_SEP}:(?={_SEP}(?:[a-z]+/|[;,]))"
#: Dangerous URL schemes as plain text (for defusing: any data: URL).
_DEFUSE_SCHEME = re.compile(rf"{_SCRIPT_SCHEME}|{_DATA_URL}", re.IGNORECASE)
#: A ``<`` that would open a tag, an end tag, a comment or a declaration.
_TAG_OPEN = re.compile(r"<(?=[A-Za-z/!?])")
_LOOSE_AMP = re.compile(r"&amp;(?![#A-Za-z0-9])")
#: What makes the HTML parser change plain text: tags, entities, carriage
#: returns (it normalises them to line feeds) and NUL.
_MARKUP = re.compile(r"[<&\r\x00]")

# check_content patterns (applied to the de-obfuscated text).
_SCRIPT_TAG = re.compile(rf"<{_SEP}/?{_SEP}(?:script|iframe)\b", re.IGNORECASE)
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
_HANDLER_ATTRIBUTE = re.compile(rf"[\s\"'/`]on[a-z]{{3}}[^\s=>]{{0,100}}{_SEP}=", re.IGNORECASE)
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


# --- sanitising ------------------------------------------------------------------------------


def _defuse_schemes(text: str) -> str:
    if not _may_name_a_scheme(text):
        return text
    return _DEFUSE_SCHEME.sub(lambda match: match.group(0)[:-1] + _FULLWIDTH_COLON, text)


def _clean_text(content: str) -> str:
    cleaned = nh3.clean(content, tags=set(), clean_content_tags=set(RAW_CONTENT_TAGS))
    visible = html.unescape(cleaned)
    return _defuse_schemes(_TAG_OPEN.sub("&lt;", visible))


def sanitize(content: str, content_type: str = "text") -> str:
    """The safe form of ``content`` to store and broadcast (see the module docstring for the rules)."""
    if content_type == "text":
        if not _MARKUP.search(content):
            # Nothing for the HTML parser to remove or rewrite: most chat
            # lines, for which the result is the same without the round trip.
            return _defuse_schemes(content)
        return _clean_text(content)
    if content_type == "markdown":
        cleaned = nh3.clean(
            content,
            tags=set(MARKDOWN_TAGS),
            clean_content_tags=set(RAW_CONTENT_TAGS),
            attributes={tag: set(names) for tag, names in MARKDOWN_ATTRIBUTES.items()},
            url_schemes=set(MARKDOWN_URL_SCHEMES),
            url_relative="deny",
            link_rel=LINK_REL,
            strip_comments=True,
        )
        # html5ever escapes ">" only in text (never in attribute values), so this touches text only.
        readable = _LOOSE_AMP.sub("&", cleaned.replace("&gt;", ">"))
        return _defuse_schemes(readable)
    raise InvalidPayload("contentType must be 'text' or 'markdown'.")


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
        decoded = html.unescape(text)
        if "%" in decoded:
            decoded = unquote(decoded, errors="replace")
        if "\\" in decoded:
            decoded = _JS_ESCAPE.sub(_decode_js_escape, decoded)
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


def _refuse_hostile(content: str, *, thorough: bool = False) -> None:
    """The blocking half of :func:`check_content`.

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
        raise MessageBlocked(SCRIPT_INJECTION)
    tag_reason = _scan_tags(revealed) if tags else None
    if tag_reason is not None:
        raise MessageBlocked(tag_reason)
    if revealed != content and _escapes_a_letter(content):
        if len(_URL_SCHEME.findall(revealed)) > len(_URL_SCHEME.findall(content)):
            raise MessageBlocked(OBFUSCATED_URL)
    seen = (content,) if revealed is content else (content, revealed)
    if any((thorough or "://" in text) and _OBFUSCATED_HOST.search(text) for text in seen):
        raise MessageBlocked(OBFUSCATED_URL)


def check_content(content: str, *, max_char_run: int | None = None, max_links: int | None = None) -> None:
    """Raise :class:`MessageBlocked` or :class:`SpamDetected` for hostile content; return quietly otherwise.

    Blocked (``reason``):

    - ``script_injection`` -- a ``<script``/``<iframe`` tag; an ``<object>``,
      ``<embed>``, ``<meta>``, ``<base>``, ``<form>``... tag with attributes;
      script in CSS; a ``javascript:``/``vbscript:`` URL or an HTML/script
      ``data:`` URL -- in any case, with separators inside, or hidden behind
      entities, percent, ``\\x``/``\\u`` escapes or compatibility characters;
    - ``event_handler`` -- an ``on*=`` attribute inside a tag;
    - ``obfuscated_url`` -- a URL scheme whose letters are escaped
      (``%68ttp://``), or a URL host that is percent-escaped or an IPv4
      address written as one number, in hex or in octal.

    Spam: ``char_flood`` -- one non-space character repeated more than
    ``max_char_run`` times in a row; ``link_flood`` -- more than ``max_links`` links.
    """
    _refuse_hostile(content)
    max_run = int(setting("spam_max_char_run", DEFAULT_MAX_CHAR_RUN)) if max_char_run is None else max_char_run
    if _has_char_flood(content, max_run):
        raise SpamDetected(CHAR_FLOOD)
    link_limit = int(setting("spam_max_links", DEFAULT_MAX_LINKS)) if max_links is None else max_links
    if _count_links(content, link_limit) > link_limit:
        raise SpamDetected(LINK_FLOOD)


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
        repeats = int(setting("spam_max_repeats", DEFAULT_MAX_REPEATS)) if max_repeats is None else max_repeats
        window = float(setting("spam_repeat_window_s", DEFAULT_REPEAT_WINDOW_S)) if window_s is None else window_s
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
