"""The one server-side renderer: markdown source to safe HTML, through an allow-list.

Layer: security (used by the chat, imports nothing of it).

What a person or an agent writes is stored verbatim (``content``); for
``contentType: "markdown"`` this module makes the HTML every client shows
(``html`` beside ``content`` on every surface).  Two steps, both maintained
libraries, neither a regex over HTML:

1. markdown-it-py, CommonMark with tables and strikethrough, **raw HTML
   off** (``<script>`` in the source becomes the text ``&lt;script&gt;``),
   images off unless ``CHAT_MARKDOWN_IMAGES`` is set, nesting capped by the
   CommonMark preset (20 levels), no linkify.
2. nh3 (html5ever, an HTML5 parser) with the allow-list below: only these
   elements survive; the only attributes are a link's ``href`` and
   ``title``, a list's ``start``, a code block's ``language-*`` class and,
   with images enabled, an image's ``src``/``alt``/``title``; URLs must be
   absolute ``http``, ``https`` or ``mailto`` (relative ones are removed,
   since the HTML is shown on other origins); every link gets
   ``rel="nofollow noopener"`` and ``target="_blank"``.

The second step is the guarantee: even if the first produced something
unexpected, nothing outside the allow-list reaches a client
(``tests/unit/test_render.py`` checks it with a real HTML parser over
hypothesis text and every hostile string the tests know).

Cost: both steps are linear in the source (CommonMark parsing is designed
so; nh3 is a streaming tokenizer).  Measured per message in
``tests/unit/test_render.py`` and reported in ``docs/protocol.md``; the
HTML is rendered once, when the message is stored, and read back from the
database afterwards.
"""

from __future__ import annotations

import re
from functools import cache

import nh3
from django.conf import settings
from markdown_it import MarkdownIt

TEXT, MARKDOWN = "text", "markdown"

#: Elements the HTML may contain (images only with ``CHAT_MARKDOWN_IMAGES``).
ALLOWED_TAGS = frozenset(
    {
        "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "s", "code", "pre",
        "blockquote", "ul", "ol", "li", "a", "table", "thead", "tbody", "tr", "th", "td",
    }
)  # fmt: skip
IMAGE_TAGS = frozenset({"img"})
ALLOWED_ATTRIBUTES: dict[str, frozenset[str]] = {
    "a": frozenset({"href", "title"}),
    "ol": frozenset({"start"}),
    "code": frozenset({"class"}),
    "*": frozenset(),  # no generic attribute (nh3 would otherwise keep title and lang everywhere)
}
IMAGE_ATTRIBUTES: dict[str, frozenset[str]] = {"img": frozenset({"src", "alt", "title"})}
URL_SCHEMES = frozenset({"http", "https", "mailto"})
LINK_REL = "nofollow noopener"
#: Elements removed with everything inside them, should they ever reach the sanitiser.
REMOVED_WITH_CONTENT = frozenset({"script", "style", "iframe", "noscript", "template", "textarea", "title", "svg", "math"})

#: The one class kept: a fenced block's language (```python), as markdown-it writes it.
_LANGUAGE_CLASS = re.compile(r"language-[A-Za-z0-9_+#.-]{1,40}")


def _attribute_filter(element: str, attribute: str, value: str) -> str | None:
    if element == "code" and attribute == "class":
        return value if _LANGUAGE_CLASS.fullmatch(value) else None
    if element == "ol" and attribute == "start":
        return value if value.isdigit() and len(value) <= 9 else None
    return value


def images_enabled() -> bool:
    return bool(settings.CHAT.markdown_images)


@cache
def _parser(images: bool) -> MarkdownIt:
    parser = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    parser.enable(["table", "strikethrough"])
    if not images:
        parser.disable("image")
    return parser


@cache
def _cleaner(images: bool) -> nh3.Cleaner:
    tags = ALLOWED_TAGS | IMAGE_TAGS if images else ALLOWED_TAGS
    attributes = {**ALLOWED_ATTRIBUTES, **(IMAGE_ATTRIBUTES if images else {})}
    return nh3.Cleaner(
        tags=set(tags),
        clean_content_tags=set(REMOVED_WITH_CONTENT),
        attributes={tag: set(names) for tag, names in attributes.items()},
        attribute_filter=_attribute_filter,
        strip_comments=True,
        link_rel=LINK_REL,
        set_tag_attribute_values={"a": {"target": "_blank"}},
        url_schemes=set(URL_SCHEMES),
        url_relative="deny",
    )


def render_markdown(source: str, *, images: bool | None = None) -> str:
    """Safe HTML for markdown ``source`` (see the module docstring for what it may contain)."""
    images = images_enabled() if images is None else images
    return _cleaner(images).clean(_parser(images).render(source))


def html_for(content: str, content_type: str) -> str:
    """The HTML stored beside ``content``: rendered markdown, or ``""`` for text (which carries none)."""
    return render_markdown(content) if content_type == MARKDOWN else ""
