"""security.content: what looks like an attack (flagged, or refused under strict), spam, repeats, linear time.

Content is never rewritten (issue #20, "Text is text"): these tests pin the
reason :func:`find_hostile` gives for each vector of the corpus
(``tests/hostile_corpus.py``), that :func:`check_content` -- the ``strict``
policy -- refuses them with it, that benign text passes, and that screening
adversarial input at the size limit costs about what ordinary text of the
same length costs (issue #17, "One message freezes a worker").
"""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from chat.errors import ChatError
from security import content
from security.content import RepeatTracker, check_content, check_spam, find_hostile, fingerprint, reveal
from security.errors import MessageBlocked, SpamDetected
from security.ratelimit import BackendUnavailable, MemoryBackend
from tests.cost import best_cpu_time
from tests.hostile_corpus import (
    FRAGMENTS,
    HANDLER,
    HOSTILE,
    ISSUE_20_TABLE,
    NEAR_MISSES,
    OBFUSCATED,
    SCRIPT,
    adversarial,
)
from tests.unit.security_support import FakeClock, override_chat

pytestmark = pytest.mark.usefixtures("default_security_settings")


def reason_of(text: str) -> str | None:
    try:
        check_content(text)
    except (MessageBlocked, SpamDetected) as error:
        return error.reason
    return None


# --- the hostile corpus ---------------------------------------------------------------------


def test_corpus_is_large_enough() -> None:
    assert len(HOSTILE) >= 30
    assert len({row[0] for row in HOSTILE}) == len(HOSTILE)


@pytest.mark.parametrize("vector, reason", HOSTILE)
def test_hostile_vector(vector: str, reason: str) -> None:
    assert find_hostile(vector) == reason
    with pytest.raises(MessageBlocked) as caught:  # the strict policy
        check_content(vector)
    assert caught.value.reason == reason
    assert caught.value.code == "message_blocked"


@pytest.mark.parametrize("text, reason", ISSUE_20_TABLE)
def test_the_issue_table_keeps_todays_reasons(text: str, reason: str | None) -> None:
    """Under strict the issue's first four are refused with today's reasons; the fifth never was."""
    assert find_hostile(text) == reason


def test_blocked_error_never_echoes_the_content() -> None:
    secret = "<img src=x onerror=alert('very-identifiable-payload')>"
    with pytest.raises(MessageBlocked) as caught:
        check_content(secret)
    payload = caught.value.as_payload()
    assert payload == {"error": MessageBlocked.default_message, "code": "message_blocked", "reason": HANDLER}
    assert "identifiable" not in repr(payload) and "identifiable" not in str(caught.value)
    assert isinstance(caught.value, ChatError)


# --- benign content passes ------------------------------------------------------------------

BENIGN = [
    "hello world",
    "a < b & c",
    "1 < 2 > 0 and x <= y",
    "Tom & Jerry &c.",
    "see data: 5 rows, metadata: none",
    "http://example.com/?next=http%3A%2F%2Fexample.org%2F",
    "search https://example.com/q?term=caf%C3%A9 please",
    "git clone https://user@bitbucket.org/team/repo.git",
    "**bold** and _italic_ and `code && more`",
    "> a quote\n> over two lines",
    "List<T> is generic? no: List < T >",
    "if (a < b && c > d) { onLoad = 1 }",
    "emoji 😀😀😀 and ---- a divider ----",
    "=" * 50,
    "   lots      of     spaces   " + " " * 200 + "end",
    "mailto:someone@example.com",
    "ports 127.0.0.1:8000 and 0x1F are fine",
    "https://a.example https://b.example https://c.example",
    "C:\\Users\\me\\x41 is a path",
    "price is 100% sure, 50%off",
]


@pytest.mark.parametrize("text", BENIGN)
def test_benign_content_passes(text: str) -> None:
    check_content(text)


# --- properties -------------------------------------------------------------------------------

hostile_text = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=5)), max_size=40).map("".join)


@given(st.text(max_size=200))
@hsettings(max_examples=300, deadline=None)
def test_check_content_only_raises_its_own_errors(text: str) -> None:
    try:
        check_content(text)
    except (MessageBlocked, SpamDetected) as error:
        assert error.reason in {SCRIPT, HANDLER, OBFUSCATED, "char_flood", "link_flood"}


near_miss_text = st.lists(st.sampled_from(NEAR_MISSES + FRAGMENTS), max_size=30).map("".join)


def _blocked_reason(text: str, *, thorough: bool) -> str | None:
    return find_hostile(text, thorough=thorough)


@given(st.one_of(hostile_text, near_miss_text))
@example("java script:alert(1)")
@example("note: see http://2130706433/ at 10:30")
@example("script src=x onerror=alert(1)>")
@example("%3Cscript>alert(1)")
@example("&#x3C;iframe src=x>")
@example("\\x3cscript>")
@example("java&#x09;script&colon;alert(1)")
@example("\uff4a\uff41\uff56\uff41\uff53\uff43\uff52\uff49\uff50\uff54\uff1aalert(1)")
@hsettings(max_examples=1000, deadline=None)
def test_skipping_rules_that_cannot_match_changes_no_verdict(text: str) -> None:
    """A rule is skipped only where the character it needs is absent: the same verdict as running all of them."""
    assert _blocked_reason(text, thorough=False) == _blocked_reason(text, thorough=True)


@given(st.one_of(hostile_text, near_miss_text, st.text(max_size=60)))
@example("JavaScript\t:x data :text/html WWW.example.com")
@hsettings(max_examples=500, deadline=None)
def test_prefilters_change_no_result(text: str) -> None:
    """Link counting and the flood check skip text their patterns cannot match, with the same result."""
    assert content._count_links(text, 100) == len(content._LINK.findall(text)[:101])
    assert content._has_char_flood(text, 3) == (re.search(r"(\S)\1{3,}", text) is not None)


def test_floods_are_counted_in_text_the_blocking_rules_skip() -> None:
    with pytest.raises(SpamDetected) as flood:
        check_content("a" * 200)
    assert flood.value.reason == "char_flood"
    with pytest.raises(SpamDetected) as links:
        check_content(" ".join(["www.example.com"] * 20))
    assert links.value.reason == "link_flood"


# --- obfuscation -------------------------------------------------------------------------------


def test_reveal_undoes_layers() -> None:
    assert reveal("%26lt%3Bscript%26gt%3B") == "<script>"
    assert reveal("&amp;#x6A;") == "j"
    assert reveal("\\u{6A}\\x61\\u0076a") == "java"
    assert reveal("ｊａｖａ") == "java"


@pytest.mark.parametrize(
    "text, reason",
    [
        ("%26lt%3Bscript%26gt%3B", SCRIPT),  # double encoded
        ("JAVASCRIPT:alert(1)", SCRIPT),
        ("j a v a s c r i p t : alert(1)", SCRIPT),
        ("java\x00script:alert(1)", SCRIPT),
        ("&#x6A;&#x61;&#x76;&#x61;script:alert(1)", SCRIPT),
        ("\\u{6A}avascript:alert(1)", SCRIPT),
        ("ｊａｖａｓｃｒｉｐｔ:alert(1)", SCRIPT),
        ("data:application/javascript,alert(1)", SCRIPT),
        ("<link rel=import href=x>", SCRIPT),
        ('<x style="behavior: url(x.htc)">', SCRIPT),
        ("<div onclick\n=alert(1)>", HANDLER),
        ("<img src=x\nonerror=alert(1)>", HANDLER),
        ("HtTp://0x7f000001/", OBFUSCATED),
        ("http://2130706433/", OBFUSCATED),
        ("http://0177.0.0.1/", OBFUSCATED),
        ("https://%65vil.example/", OBFUSCATED),
        ("%77%77%77.evil.example %68ttp://x", OBFUSCATED),
    ],
)
def test_obfuscated_forms_are_blocked(text: str, reason: str) -> None:
    assert reason_of(text) == reason


# --- spam ----------------------------------------------------------------------------------------


def test_char_flood() -> None:
    assert reason_of("a" * 50) is None
    assert reason_of("x" + "a" * 51 + "y") == "char_flood"
    assert reason_of("😀" * 51) == "char_flood"
    assert reason_of("\u200b" * 51) == "char_flood"
    assert reason_of(" " * 5000) is None  # whitespace runs are layout, not a flood
    with pytest.raises(SpamDetected) as caught:
        check_content("!" * 11, max_char_run=10)
    assert caught.value.code == "spam_detected" and caught.value.details == {"reason": "char_flood"}


def test_link_flood() -> None:
    links = " ".join(f"https://example.com/{n}" for n in range(10))
    assert reason_of(links) is None
    assert reason_of(links + " www.example.org") == "link_flood"
    with pytest.raises(SpamDetected) as caught:
        check_content("http://a.example http://b.example", max_links=1)
    assert caught.value.reason == "link_flood"


def test_spam_thresholds_come_from_settings(settings) -> None:
    override_chat(settings, spam_max_links=1, spam_max_char_run=3)
    assert reason_of("http://a.example") is None
    assert reason_of("http://a.example http://b.example") == "link_flood"
    assert reason_of("aaaa") == "char_flood"


def test_blocking_wins_over_spam() -> None:
    assert reason_of("<script>" + "a" * 100) == SCRIPT


# --- performance (issue #17, "One message freezes a worker") ---------------------------------------

LIMIT = 10_000  # CHAT_MESSAGE_MAX_LENGTH's default: surfaces check the length before screening
#: Ordinary chat of the same length, with everything that sends screening down its full path:
#: a "<", an "&", a "%", "://" and a scheme-like colon, a backslash, non-ASCII text.
ORDINARY = (
    "Meeting at 10:30 — café & croissants. See https://example.com/docs?a=1&b=2 and use `if (a < b && c > d)` "
    "in JS; 50% done, C:\\temp is fine. "
) * 100
#: The most screening may cost on adversarial input, relative to ordinary text of the same length.
BUDGET_RATIO = 20



def screen(text: str) -> None:
    """Everything screening runs on a message (both policies run the same rules)."""
    find_hostile(text)
    try:
        check_spam(text)
    except SpamDetected:
        pass


def test_one_message_freezes_a_worker() -> None:
    """The finding: ``"<" + " " * 9999`` backtracked quadratically in the script-tag pattern (2.6 s).

    Now it costs what ordinary text of its length costs; and the pattern
    that did it still finds what it is for.
    """
    attack = "<" + " " * (LIMIT - 1)
    ordinary = ORDINARY[:LIMIT]
    baseline = best_cpu_time(5, screen, ordinary)
    elapsed = best_cpu_time(5, screen, attack)
    assert elapsed <= BUDGET_RATIO * baseline, f"{elapsed * 1000:.2f} ms vs {baseline * 1000:.2f} ms for ordinary text"
    # The rewritten pattern still matches what the old one did.
    for tag in ("<script>", "< script>", "</script>", "< / script", "<\t/\nscript", "<\x01iframe", "<  /  IFRAME "):
        assert content._SCRIPT_TAG.search(tag), tag
    for not_a_tag in ("< /x script", "<scripts", "</ /script"):
        assert not content._SCRIPT_TAG.search(not_a_tag), not_a_tag


@pytest.mark.parametrize("name", sorted(adversarial(LIMIT)))
def test_screening_adversarial_input_at_the_size_limit_stays_within_budget(name: str) -> None:
    """Every input built to make a matcher backtrack costs at most 20x ordinary text of the same length.

    A ratio measured in the same test (best of seven each), never an absolute
    time: the machine is shared.  Measured (2026-12-07): ordinary text 1.3 ms;
    every input 0.1-7x, except compatibility characters that NFKC expands
    18-fold (10,000 become 180,000, all of which the rules must see): 13-16x.
    """
    text = adversarial(LIMIT)[name]
    assert len(text) <= LIMIT
    baseline = best_cpu_time(7, screen, ORDINARY[: len(text)])
    elapsed = best_cpu_time(7, screen, text)
    ratio = elapsed / baseline
    assert ratio <= BUDGET_RATIO, f"{name}: {elapsed * 1000:.2f} ms, {ratio:.1f}x ordinary text"


# --- repeats -------------------------------------------------------------------------------------


def test_fingerprint_ignores_case_spacing_and_width() -> None:
    assert fingerprint("Buy  NOW\n") == fingerprint("buy now") == fingerprint("ＢＵＹ now")
    assert fingerprint("buy now") != fingerprint("buy later")
    assert "buy" not in fingerprint("buy now")


async def test_repeat_tracker_refuses_the_fourth_copy_in_the_window() -> None:
    clock = FakeClock()
    backend = MemoryBackend()
    tracker = RepeatTracker(backend, max_repeats=3, window_s=60, clock=clock)
    for _ in range(3):
        await tracker.check(7, "Buy cheap pills")
        clock.advance(10)
    with pytest.raises(SpamDetected) as caught:
        await tracker.check(7, "buy   CHEAP pills")
    assert caught.value.reason == "repeated_message"
    assert caught.value.details == {"reason": "repeated_message", "retryAfter": 30_000}
    # Other messages and other users are unaffected.
    await tracker.check(7, "something else")
    await tracker.check(8, "Buy cheap pills")
    # Once the first copy leaves the window, one more is allowed.
    clock.advance(30)
    await tracker.check(7, "Buy cheap pills")
    with pytest.raises(SpamDetected):
        await tracker.check(7, "Buy cheap pills")
    # Only digests are kept.
    assert all("pills" not in key for key in backend._windows)


async def test_repeat_tracker_defaults_from_settings(settings) -> None:
    tracker = RepeatTracker(MemoryBackend())
    assert (tracker.rule.limit, tracker.rule.window_s) == (3, 60.0)
    override_chat(settings, spam_max_repeats=1, spam_repeat_window_s=5)
    tracker = RepeatTracker(MemoryBackend(), clock=FakeClock())
    await tracker.check("u", "hi")
    with pytest.raises(SpamDetected):
        await tracker.check("u", "hi")


async def test_repeat_tracker_fails_open() -> None:
    class Down(MemoryBackend):
        async def hit(self, *args):
            raise BackendUnavailable("down")

    tracker = RepeatTracker(Down(), max_repeats=1)
    for _ in range(3):
        await tracker.check("u", "same")


def test_repeat_tracker_from_settings_uses_memory_without_redis() -> None:
    tracker = content.repeat_tracker_from_settings()
    assert isinstance(tracker.backend, MemoryBackend)
