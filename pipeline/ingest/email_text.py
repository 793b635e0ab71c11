"""Turn one raw RFC 822 / MIME message into the text a classifier should see.

Why: mail headers leak the label (spam relays, mailer names, list headers), so only the Subject
survives, as the first line. The body is the text/plain parts when there are any, else the HTML
parts converted to text. Transfer encodings (base64, quoted-printable) and charsets are decoded by
the standard ``email`` package (``policy.default``); an unknown or wrong charset falls back to
UTF-8 with replacement characters. Malformed MIME never raises: the message is read as best the
parser can and the problem is recorded in :attr:`MessageText.issues` so the caller can count it.
"""

from __future__ import annotations

import email
import re
from dataclasses import dataclass, field
from email import policy
from email.message import Message
from html.parser import HTMLParser

_BLOCK_TAGS = {"br", "p", "div", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "blockquote", "hr"}
_SKIP_TAGS = {"script", "style", "head", "title"}
_LOOKS_HTML = re.compile(r"<(html|body)\b", re.IGNORECASE)


@dataclass
class MessageText:
    """The cleaned text of a message and what went wrong on the way (issue names, for counting)."""

    text: str
    issues: list[str] = field(default_factory=list)


class _HtmlToText(HTMLParser):
    """Collects visible text: drops script/style, turns block tags into line breaks."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)  # entities (&amp; &#233; ...) are unescaped for us
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in _SKIP_TAGS:
            self._skip += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self._skip = max(0, self._skip - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """Visible text of an HTML document, whitespace collapsed."""
    parser = _HtmlToText()
    try:
        parser.feed(html)
        parser.close()
    except Exception:  # html.parser is lenient; this guards against pathological input only
        return normalize_whitespace(re.sub(r"<[^>]*>", " ", html))
    return normalize_whitespace("".join(parser.parts))


def normalize_whitespace(text: str) -> str:
    """Collapse runs of spaces/tabs, strip lines, keep at most one blank line between paragraphs."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\xa0", " ")
    lines = [re.sub(r"[ \t\f\v]+", " ", line).strip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def parse_message(raw: str | bytes) -> Message:
    """Parse a message from text or bytes with the modern policy (never raises on bad MIME)."""
    if isinstance(raw, bytes):
        return email.message_from_bytes(raw, policy=policy.default)
    return email.message_from_string(raw, policy=policy.default)


def message_text(raw: str | bytes | Message) -> MessageText:
    """Subject line + body text of one message. See the module docstring for the rules."""
    issues: list[str] = []
    try:
        msg = raw if isinstance(raw, Message) else parse_message(raw)
    except Exception:  # the feed parser is defensive, but a broken header object can still raise
        issues.append("malformed_mime")
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        return MessageText(normalize_whitespace(text), issues)

    subject = _subject(msg, issues)
    plain: list[str] = []
    html: list[str] = []
    defects = list(getattr(msg, "defects", []))
    for part in msg.walk():
        defects.extend(getattr(part, "defects", []))
        if part.is_multipart() or _is_attachment(part):
            continue
        ctype = part.get_content_type()
        if ctype == "text/plain":
            plain.append(_decoded(part, issues))
        elif ctype == "text/html":
            html.append(_decoded(part, issues))
    if defects:
        issues.append("malformed_mime")

    body = normalize_whitespace("\n\n".join(plain))
    if _LOOKS_HTML.search(body):  # HTML sent as text/plain (common in spam): show its visible text
        body = html_to_text(body)
        issues.append("html_in_plain")
    if not body and html:
        body = html_to_text("\n".join(html))
        issues.append("html_only")
    text = "\n".join(p for p in (subject, body) if p)
    return MessageText(text, sorted(set(issues)))


def _subject(msg: Message, issues: list[str]) -> str:
    try:
        value = msg.get("subject")
    except Exception:  # an undecodable encoded-word in the header
        issues.append("malformed_mime")
        value = msg.get_all("subject", [""])[0] if hasattr(msg, "get_all") else ""
    return normalize_whitespace(str(value or "")).replace("\n", " ")


def _is_attachment(part: Message) -> bool:
    try:
        return part.get_content_disposition() == "attachment"
    except Exception:
        return False


def _decoded(part: Message, issues: list[str]) -> str:
    """Text of one leaf part: transfer encoding and charset decoded, with graceful fallbacks."""
    try:
        content = part.get_content()
        if isinstance(content, str):
            return content
    except (LookupError, UnicodeError):
        issues.append("charset_fallback")
    except Exception:
        issues.append("malformed_mime")
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        return payload.decode("utf-8", "replace")
    raw = part.get_payload()
    return raw if isinstance(raw, str) else ""
