"""MIME-to-text on crafted messages: what the classifier sees must hold the body, never the headers."""

from __future__ import annotations

import base64

import pytest

from pipeline.ingest.email_text import html_to_text, message_text

pytestmark = pytest.mark.unit

HEADERS = "From: a@relay.spam.example\nTo: b@example.org\nX-Mailer: SpamBlaster 3\nReceived: from mx1.spam.example\n"


def test_plain_message_keeps_subject_first_and_drops_other_headers():
    out = message_text(HEADERS + "Subject: Lunch  on Friday\n\nSee you at noon.\n")
    assert out.text == "Lunch on Friday\nSee you at noon."
    assert out.issues == []


def test_multipart_alternative_prefers_text_plain():
    raw = (HEADERS + "Subject: offer\nMIME-Version: 1.0\nContent-Type: multipart/alternative; boundary=XX\n\n"
           "--XX\nContent-Type: text/plain; charset=us-ascii\n\nplain body\n"
           "--XX\nContent-Type: text/html\n\n<p>html body</p>\n--XX--\n")
    assert message_text(raw).text == "offer\nplain body"


def test_base64_part_is_decoded():
    body = base64.b64encode("Caf\u00e9 au lait for everyone".encode("utf-8")).decode()
    raw = (HEADERS + "Subject: b64\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n"
           f"Content-Transfer-Encoding: base64\n\n{body}\n")
    assert message_text(raw).text == "b64\nCaf\u00e9 au lait for everyone"


def test_quoted_printable_and_latin1_charset_are_decoded():
    raw = (HEADERS + "Subject: =?iso-8859-1?q?Gr=FC=DFe?=\nMIME-Version: 1.0\n"
           "Content-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable\n\n"
           "Sch=F6ne Gr=FC=DFe aus K=F6ln, a very long line that is soft=\n-wrapped\n").encode("ascii")
    assert message_text(raw).text == "Gr\u00fc\u00dfe\nSch\u00f6ne Gr\u00fc\u00dfe aus K\u00f6ln, a very long line that is soft-wrapped"


def test_raw_latin1_bytes_decode_with_declared_charset():
    raw = (HEADERS + "Subject: x\nContent-Type: text/plain; charset=latin-1\n"
           "Content-Transfer-Encoding: 8bit\n\n").encode() + "na\u00efve r\u00e9sum\u00e9".encode("latin-1")
    assert message_text(raw).text == "x\nna\u00efve r\u00e9sum\u00e9"


def test_unknown_charset_falls_back_and_is_reported():
    raw = (HEADERS + "Subject: x\nContent-Type: text/plain; charset=x-no-such-charset\n\nhello there\n")
    out = message_text(raw)
    assert out.text == "x\nhello there"
    assert "charset_fallback" in out.issues


def test_html_only_message_becomes_visible_text():
    raw = (HEADERS + "Subject: Win\nContent-Type: text/html\n\n<html><head><style>p{color:red}</style>"
           "<script>var x = 1;</script></head><body><p>You&nbsp;won &amp; more</p><div>Click   "
           "<a href='http://x'>here</a></div></body></html>\n")
    out = message_text(raw)
    assert out.text == "Win\nYou won & more\n\nClick here"
    assert "html_only" in out.issues


def test_html_to_text_unescapes_entities_and_drops_scripts():
    assert html_to_text("<p>a &lt; b &#233;</p><script>alert(1)</script><style>x{}</style>") == "a < b \u00e9"


def test_attachment_is_not_part_of_the_text():
    raw = (HEADERS + "Subject: report\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=B\n\n"
           "--B\nContent-Type: text/plain\n\nsee attached\n"
           "--B\nContent-Type: text/plain\nContent-Disposition: attachment; filename=a.txt\n\nSECRET ATTACHMENT\n--B--\n")
    assert message_text(raw).text == "report\nsee attached"


def test_malformed_mime_is_read_best_effort_and_reported():
    # multipart without its closing boundary, a part with a broken base64 payload, and a bad header line
    raw = (HEADERS + "Subject: broken\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=ZZ\n"
           "this is not a header\n\n--ZZ\nContent-Type: text/plain\nContent-Transfer-Encoding: base64\n\n"
           "aGVsbG8gd29ybGQ=!!!*\n")
    out = message_text(raw)
    assert "malformed_mime" in out.issues
    assert out.text.startswith("broken")


def test_mbox_from_line_is_not_part_of_the_text():
    out = message_text("From spammer@example.com  Thu Aug 22 13:17:22 2002\n" + HEADERS + "Subject: s\n\nbody\n")
    assert out.text == "s\nbody"
