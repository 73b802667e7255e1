"""What an upload is, from its bytes alone (``chat.services.sniff``)."""

from __future__ import annotations

import pytest

from chat.services import sniff
from tests.integration import attachment_files as files


@pytest.mark.parametrize(
    "data, expected",
    [
        (files.png(640, 480), ("image/png", 640, 480)),
        (files.GIF, ("image/gif", 2, 1)),
        (files.JPEG_HEAD, ("image/jpeg", 64, 32)),
        (b"RIFF\x24\x00\x00\x00WEBPVP8X\x0a\x00\x00\x00\x00\x00\x00\x00\x3f\x00\x00\x1f\x00\x00", ("image/webp", 64, 32)),
        (files.PDF, ("application/pdf", None, None)),
        (files.TEXT, ("text/plain", None, None)),
        ("héllo wörld\n".encode(), ("text/plain", None, None)),
        (files.BINARY, ("application/octet-stream", None, None)),
        (b"FWS\x09", ("application/x-shockwave-flash", None, None)),
    ],
)
def test_types_and_sizes_from_magic_numbers(data, expected):
    found = sniff.sniff(data)
    assert (found.content_type, found.width, found.height) == expected


@pytest.mark.parametrize(
    "data, expected",
    [
        (files.HTML, "text/html"),
        (b"\xef\xbb\xbf  \n<script>alert(1)</script>", "text/html"),
        (b"<IFRAME src=x>", "text/html"),
        (b"<!-- x --><p>hi", "text/html"),
        (files.SVG, "image/svg+xml"),
        (b"<svg onload=alert(1)>", "image/svg+xml"),
        (b"<?xml version='1.0'?><x/>", "application/xml"),
        (b"<custom>", "application/xml"),
    ],
)
def test_markup_is_recognised_as_scriptable(data, expected):
    assert sniff.sniff(data).content_type == expected
    assert expected in sniff.SCRIPTABLE


def test_text_means_the_whole_file():
    check = sniff.TextCheck()
    assert check.feed("plain start ".encode()) and check.feed("é".encode()[:1])  # a character split across chunks
    assert check.feed("é".encode()[1:] + b" more", final=True)
    late_nul = sniff.TextCheck()
    assert late_nul.feed(b"fine so far") and not late_nul.feed(b"then \x00 binary")
    broken = sniff.TextCheck()
    assert not broken.feed(b"\xff\xfe", final=True)


def test_a_truncated_or_hostile_jpeg_header_ends():
    assert sniff.sniff(b"\xff\xd8\xff").content_type == "image/jpeg"
    looping = b"\xff\xd8" + b"\xff\xe0\x00\x00" * 1000  # a zero segment length must not loop
    assert sniff.sniff(looping) == sniff.Sniffed("image/jpeg")
