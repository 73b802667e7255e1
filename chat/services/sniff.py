"""What an uploaded file is, told from its bytes: never from the client's name or declared type.

Layer: chat services (pure: bytes in, a verdict out; no Django, no I/O).

:func:`sniff` reads the first bytes (:data:`HEAD_BYTES`) and answers one
content type: raster images by their magic numbers (with their size in
pixels when the header says it), PDF, text, or one of the scriptable types
(:data:`SCRIPTABLE`: HTML, SVG and other XML, Flash), which are refused
whatever a workspace allows, because a browser could run them.  Text is
text only if the whole file is UTF-8 without control characters
(:class:`TextCheck` is fed the rest) and does not start like markup
(the WHATWG sniffing algorithm's HTML signatures).
"""

from __future__ import annotations

import codecs
import re
import struct
from dataclasses import dataclass

#: What :func:`sniff` reads: enough for every header below, JPEG's frame header included.
HEAD_BYTES = 64 * 1024

OCTET_STREAM = "application/octet-stream"
TEXT = "text/plain"
#: Never accepted, whatever a workspace's list says: a browser can run what is in them.
SCRIPTABLE = frozenset(
    {"text/html", "image/svg+xml", "application/xml", "application/xhtml+xml", "application/x-shockwave-flash",
     "text/javascript", "text/xml"}
)
#: Served inline (shown in an ``<img>``); everything else is served as a download.
RASTER_IMAGES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})


@dataclass(frozen=True)
class Sniffed:
    content_type: str
    width: int | None = None
    height: int | None = None


_MARKUP = re.compile(
    rb"<(?:!doctype html|html|head|script|iframe|h1|div|font|table|a|style|title|b|body|br|p|svg|!--)[\s>/]",
    re.IGNORECASE,
)
#: Control characters that never occur in text (tab, line feed, form feed and carriage return do).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


def sniff(head: bytes) -> Sniffed:
    """The type of a file whose first bytes are ``head`` (``TEXT`` still needs :class:`TextCheck` on the rest)."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return _png(head)
    if head.startswith(b"\xff\xd8\xff"):
        return _jpeg(head)
    if head[:6] in (b"GIF87a", b"GIF89a"):
        width, height = struct.unpack("<HH", head[6:10]) if len(head) >= 10 else (None, None)
        return Sniffed("image/gif", width, height)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return _webp(head)
    if head.startswith(b"%PDF-"):
        return Sniffed("application/pdf")
    if head[:3] in (b"FWS", b"CWS", b"ZWS"):
        return Sniffed("application/x-shockwave-flash")
    stripped = head.removeprefix(b"\xef\xbb\xbf").lstrip(b" \t\r\n\x0c")
    if stripped.startswith(b"<"):
        if b"<svg" in stripped[:4096].lower():
            return Sniffed("image/svg+xml")
        return Sniffed("text/html" if _MARKUP.match(stripped[:512]) else "application/xml")
    check = TextCheck()
    return Sniffed(TEXT) if check.feed(head) else Sniffed(OCTET_STREAM)


class TextCheck:
    """Fed a file chunk by chunk: whether it is all UTF-8 text without control characters."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self.ok = True

    def feed(self, chunk: bytes, final: bool = False) -> bool:
        if self.ok:
            try:
                text = self._decoder.decode(chunk, final)
            except UnicodeDecodeError:
                self.ok = False
            else:
                self.ok = _CONTROL.search(text) is None
        return self.ok


def _png(head: bytes) -> Sniffed:
    if len(head) >= 24 and head[12:16] == b"IHDR":
        width, height = struct.unpack(">II", head[16:24])
        return Sniffed("image/png", width, height)
    return Sniffed("image/png")


#: JPEG start-of-frame markers (baseline, progressive, lossless...), which carry the image's size.
_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})


def _jpeg(head: bytes) -> Sniffed:
    """Walk the segments (each jump moves forward, so this ends) to the first frame header."""
    position = 2
    while position + 9 <= len(head) and head[position] == 0xFF:
        marker = head[position + 1]
        if marker in _SOF:
            height, width = struct.unpack(">HH", head[position + 5 : position + 9])
            return Sniffed("image/jpeg", width, height)
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        (length,) = struct.unpack(">H", head[position + 2 : position + 4])
        if length < 2:
            break
        position += 2 + length
    return Sniffed("image/jpeg")


def _webp(head: bytes) -> Sniffed:
    chunk = head[12:16]
    if chunk == b"VP8X" and len(head) >= 30:
        width = int.from_bytes(head[24:27], "little") + 1
        height = int.from_bytes(head[27:30], "little") + 1
        return Sniffed("image/webp", width, height)
    if chunk == b"VP8 " and len(head) >= 30 and head[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", head[26:30])
        return Sniffed("image/webp", width & 0x3FFF, height & 0x3FFF)
    if chunk == b"VP8L" and len(head) >= 25 and head[20] == 0x2F:
        bits = int.from_bytes(head[21:25], "little")
        return Sniffed("image/webp", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    return Sniffed("image/webp")
