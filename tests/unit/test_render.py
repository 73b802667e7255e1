"""security.render: the one server-side renderer (markdown to safe HTML) -- safe for any text, and linear.

The property: for any text -- hypothesis text built from markdown syntax and
hostile fragments, and every hostile string the suite knows
(``tests/hostile_corpus.py``) -- the HTML, parsed by a real HTML parser
(the standard library's, which tokenizes as browsers do), has no script,
no event-handler attribute, no ``javascript:``/``data:`` URL, and no element
or attribute outside the allow-list.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from security import render
from security.render import html_for, render_markdown
from tests.cost import best_cpu_time
from tests.hostile_corpus import FRAGMENTS, MARKDOWN_FRAGMENTS, adversarial, every_hostile_string
from tests.unit.security_support import override_chat

pytestmark = pytest.mark.usefixtures("default_security_settings")

#: Attributes each element may carry (``rel`` and ``target`` are the sanitiser's own, on links).
ALLOWED = {
    "a": {"href", "title", "rel", "target"},
    "ol": {"start"},
    "code": {"class"},
    "img": {"src", "alt", "title"},
}
URL_ATTRIBUTES = {"href", "src"}


class Parsed(HTMLParser):
    """Every element, attribute and raw-text block of an HTML fragment, as a browser's tokenizer sees them."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.text: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, attrs))

    handle_startendtag = handle_starttag

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def assert_safe(html: str, *, images: bool = False) -> None:
    parsed = Parsed(html)
    allowed_tags = render.ALLOWED_TAGS | (render.IMAGE_TAGS if images else frozenset())
    for tag, attrs in parsed.elements:
        assert tag in allowed_tags, f"<{tag}> outside the allow-list: {html!r}"
        for name, value in attrs:
            assert not name.startswith("on"), f"event handler {name}: {html!r}"
            assert name in ALLOWED.get(tag, set()), f"attribute {name} on <{tag}>: {html!r}"
            value = value or ""
            if name in URL_ATTRIBUTES:
                assert re.match(r"(?i)(https?|mailto):", value), f"{name}={value!r}: {html!r}"
            assert not re.match(r"(?i)\s*(javascript|vbscript|data):", value), f"{name}={value!r}: {html!r}"
            if name == "rel":
                assert value == "nofollow noopener", html
            if name == "class":
                assert re.fullmatch(r"language-[A-Za-z0-9_+#.-]+", value), html
    assert "<script" not in html.lower() and "<style" not in html.lower()


markdown_text = st.lists(
    st.one_of(st.sampled_from(MARKDOWN_FRAGMENTS + FRAGMENTS), st.text(max_size=6)), max_size=40
).map("".join)


@given(markdown_text)
@example("[x](javascript:alert(1)) <javascript:alert(1)> ![x](data:text/html,<script>)")
@example("<scr<script>ipt>alert(1)</script>")
@example("[a](<javascript:alert(1)>) [b]( java\tscript:x) [c](&#106;avascript:x)")
@example("```\n</code></pre><script>alert(1)</script>\n```")
@example("[x](https://ok.example \"t\" onclick=alert(1))")
@hsettings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_text_renders_to_safe_html(source: str) -> None:
    assert_safe(render_markdown(source, images=False))
    assert_safe(render_markdown(source, images=True), images=True)


@pytest.mark.parametrize("source", every_hostile_string(), ids=lambda s: repr(s[:24]))
def test_every_hostile_string_renders_to_safe_html(source: str) -> None:
    for images in (False, True):
        html = render_markdown(source, images=images)
        assert_safe(html, images=images)


# --- what markdown becomes -------------------------------------------------------------------------


def test_markdown_elements() -> None:
    assert render_markdown("**b** *i* `c` ~~s~~") == "<p><strong>b</strong> <em>i</em> <code>c</code> <s>s</s></p>\n"
    assert render_markdown("- a\n- b") == "<ul>\n<li>a</li>\n<li>b</li>\n</ul>\n"
    assert render_markdown("3. a\n4. b") == '<ol start="3">\n<li>a</li>\n<li>b</li>\n</ol>\n'
    assert render_markdown("> q") == "<blockquote>\n<p>q</p>\n</blockquote>\n"
    assert render_markdown("# h") == "<h1>h</h1>\n"
    assert "<table>" in render_markdown("| a |\n|---|\n| 1 |")


def test_fenced_code_keeps_the_code_exactly() -> None:
    source = '```python\nif a < b and c > d:\n    print("<script>&amp;")\n```'
    html = render_markdown(source)
    assert html == (
        '<pre><code class="language-python">if a &lt; b and c &gt; d:\n'
        '    print("&lt;script&gt;&amp;amp;")\n</code></pre>\n'
    )
    # What a browser shows (and the Copy button copies) is the code as written, then the block's own line end.
    assert "".join(Parsed(html).text) == 'if a < b and c > d:\n    print("<script>&amp;")\n' + "\n"


def test_a_language_class_must_look_like_one() -> None:
    assert render_markdown("```x onclick=y\ncode\n```") == '<pre><code class="language-x">code\n</code></pre>\n'
    assert render_markdown('```"><script>\ncode\n```') == "<pre><code>code\n</code></pre>\n"


def test_raw_html_is_text() -> None:
    assert render_markdown("hello <b>bold</b> <script>alert(1)</script>") == (
        "<p>hello &lt;b&gt;bold&lt;/b&gt; &lt;script&gt;alert(1)&lt;/script&gt;</p>\n"
    )
    assert render_markdown("<img src=x onerror=alert(1)>") == "<p>&lt;img src=x onerror=alert(1)&gt;</p>\n"


def test_links_are_absolute_http_https_or_mailto_with_rel() -> None:
    rel = 'target="_blank" rel="nofollow noopener"'
    assert render_markdown("[x](https://e.example/a?b=1&c=2)") == (
        f'<p><a href="https://e.example/a?b=1&amp;c=2" {rel}>x</a></p>\n'
    )
    assert render_markdown("<mailto:a@e.example>") == f'<p><a href="mailto:a@e.example" {rel}>mailto:a@e.example</a></p>\n'
    for href in ("javascript:alert(1)", "vbscript:x", "data:text/html,x", "/relative", "//e.example/x", "ftp://e.example"):
        html = render_markdown(f"[x]({href})")
        assert "href" not in html, (href, html)
    assert render_markdown("javascript:alert(1)") == "<p>javascript:alert(1)</p>\n"


def test_images_only_when_enabled(settings) -> None:
    source = "![alt](https://e.example/a.png)"
    assert "<img" not in render_markdown(source)
    assert render_markdown(source, images=True) == '<p><img src="https://e.example/a.png" alt="alt"></p>\n'
    assert "src" not in render_markdown("![a](data:image/png;base64,AAAA)", images=True)
    override_chat(settings, markdown_images=True)
    assert "<img" in render_markdown(source)


def test_text_has_no_html() -> None:
    assert html_for("**not markdown** <b>x</b>", "text") == ""
    assert html_for("**b**", "markdown") == "<p><strong>b</strong></p>\n"


# --- cost ------------------------------------------------------------------------------------------

LIMIT = 10_000
#: Ordinary markdown of the same length: prose with emphasis, code, links, a list and a fenced block.
ORDINARY = (
    "Some *text* with `code` and [a link](https://example.com/docs). A **bold** claim, then:\n\n"
    "- one item\n- another item\n\n```python\nprint('hello')\n```\n\n"
) * 100
BUDGET_RATIO = 20



@pytest.mark.parametrize("name", sorted(adversarial(LIMIT)))
def test_rendering_adversarial_input_at_the_size_limit_stays_within_budget(name: str) -> None:
    """At most 20x ordinary markdown of the same length (a ratio within this test, best of three each).

    Measured (2026-12-07): ordinary 10,000 characters 10-24 ms; the worst,
    thousands of ``[`` or ``![`` (each starts a link label), 6-13x.
    """
    text = adversarial(LIMIT)[name]
    baseline = best_cpu_time(3, render_markdown, ORDINARY[: len(text)])
    elapsed = best_cpu_time(3, render_markdown, text)
    assert elapsed / baseline <= BUDGET_RATIO, f"{name}: {elapsed * 1000:.1f} ms, {elapsed / baseline:.1f}x"
