"""Seeded text perturbations, registered by name, for invariance suites.

Each perturbation is ``f(text, rng, **kwargs) -> text`` with ``rng`` a :class:`random.Random`.
:func:`apply` seeds the generator from (seed, perturbation name, text), so the same text always gets
the same perturbed version, whatever else is in the batch and in whichever order it is processed.
params.yaml ``evaluate.perturbations.kinds`` picks perturbations by name with their keyword arguments.
"""

from __future__ import annotations

import hashlib
import inspect
import random
from collections.abc import Callable, Sequence

from pipeline.errors import DistillError
from pipeline.plugins import Plugins

Perturbation = Callable[..., str]


class PerturbationError(DistillError):
    """An unknown perturbation name or arguments it does not take."""


# Perturbations by name: ``f(text, rng, **kwargs) -> str``.
PERTURBATIONS: Plugins[Perturbation] = Plugins("perturbation", PerturbationError)
perturbation = PERTURBATIONS.register
registered = PERTURBATIONS.names
get = PERTURBATIONS.get


def check_kwargs(name: str, kwargs: dict) -> None:
    """Fail before any text is touched when params name an argument the perturbation does not take."""
    params = inspect.signature(get(name)).parameters
    allowed = [p for p in params if p not in ("text", "rng")]
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise PerturbationError(f"evaluate.perturbations.kinds.{name}: unknown argument(s) {', '.join(unknown)}; "
                                f"it takes: {', '.join(allowed) or 'no arguments'}")


def apply(name: str, texts: Sequence[str], seed: int, **kwargs) -> list[str]:
    """Perturb every text with ``name``; deterministic per (seed, name, text)."""
    check_kwargs(name, kwargs)
    func = get(name)
    out = []
    for text in texts:
        digest = hashlib.sha256(f"{seed}\x1f{name}\x1f{text}".encode()).digest()
        out.append(func(text, random.Random(int.from_bytes(digest[:8], "big")), **kwargs))
    return out


def _rate_check(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise PerturbationError(f"{name} must be within [0, 1], got {value}")


@perturbation("typos")
def typos(text: str, rng: random.Random, rate: float = 0.03) -> str:
    """Keyboard slips on letters: swap with the next letter, drop, or double a letter, each with ``rate``."""
    _rate_check("typos.rate", rate)
    chars = list(text)
    out: list[str] = []
    i = 0
    while i < len(chars):
        c = chars[i]
        if c.isalpha() and rng.random() < rate:
            action = rng.randrange(3)
            if action == 0 and i + 1 < len(chars) and chars[i + 1].isalpha():
                out += [chars[i + 1], c]
                i += 2
                continue
            if action == 1:
                i += 1
                continue
            out += [c, c]
            i += 1
            continue
        out.append(c)
        i += 1
    return "".join(out)


@perturbation("casing")
def casing(text: str, rng: random.Random, mode: str = "mixed") -> str:
    """Change letter case: ``upper``, ``lower``, or ``mixed`` (each word upper, lower or title at random)."""
    if mode == "upper":
        return text.upper()
    if mode == "lower":
        return text.lower()
    if mode != "mixed":
        raise PerturbationError(f"casing.mode must be upper, lower or mixed, got {mode!r}")
    words = text.split(" ")
    return " ".join(rng.choice((str.upper, str.lower, str.title))(w) for w in words)


@perturbation("whitespace")
def whitespace(text: str, rng: random.Random, rate: float = 0.3) -> str:
    """Widen gaps between words with runs of spaces, tabs or newlines, and pad both ends."""
    _rate_check("whitespace.rate", rate)
    words = text.split(" ")
    gaps = [rng.choice(["  ", "   ", "\t", " \n ", "\n\n"]) if rng.random() < rate else " " for _ in words[1:]]
    body = words[0] + "".join(g + w for g, w in zip(gaps, words[1:]))
    return rng.choice([" ", "\n", "\t "]) + body + rng.choice([" ", "\n", "  \n"])


# Latin letters and look-alikes from Cyrillic and Greek that render the same in most fonts.
HOMOGLYPHS = {"a": "\u0430", "c": "\u0441", "e": "\u0435", "o": "\u043e", "p": "\u0440", "x": "\u0445",
              "y": "\u0443", "i": "\u0456", "s": "\u0455", "A": "\u0391", "B": "\u0392", "E": "\u0395",
              "H": "\u0397", "K": "\u039a", "M": "\u039c", "O": "\u039f", "P": "\u03a1", "T": "\u03a4"}


@perturbation("homoglyphs")
def homoglyphs(text: str, rng: random.Random, rate: float = 0.1) -> str:
    """Replace Latin letters with Cyrillic/Greek look-alikes (a spammer's filter evasion)."""
    _rate_check("homoglyphs.rate", rate)
    return "".join(HOMOGLYPHS[c] if c in HOMOGLYPHS and rng.random() < rate else c for c in text)


ZERO_WIDTH = ("\u200b", "\u200c", "\u200d", "\ufeff")


@perturbation("zero_width")
def zero_width(text: str, rng: random.Random, rate: float = 0.1) -> str:
    """Insert invisible zero-width characters after letters."""
    _rate_check("zero_width.rate", rate)
    return "".join(c + rng.choice(ZERO_WIDTH) if c.isalpha() and rng.random() < rate else c for c in text)


@perturbation("truncate")
def truncate(text: str, rng: random.Random, keep: float = 0.6) -> str:
    """Keep the first ``keep`` share of the words (at least one), as a cut-off preview would."""
    if not 0.0 < keep <= 1.0:
        raise PerturbationError(f"truncate.keep must be within (0, 1], got {keep}")
    words = text.split()
    return " ".join(words[: max(1, round(len(words) * keep))])


def _insert(text: str, rng: random.Random, piece: str) -> str:
    words = text.split(" ")
    at = rng.randrange(len(words) + 1)
    return " ".join(words[:at] + [piece] + words[at:])


@perturbation("url")
def url(text: str, rng: random.Random) -> str:
    """Insert one made-up URL at a random word position."""
    host = rng.choice(["example.com", "docs.example.org", "files.example.net", "status.example.io"])
    path = rng.choice(["", "/help", "/a/b?id=42", "/2026/11/notes.html"])
    return _insert(text, rng, f"https://{host}{path}")


EMOJI = ("\U0001f600", "\U0001f44d", "\U0001f389", "\U0001f525", "\u2764\ufe0f", "\U0001f914", "\u2705")


@perturbation("emoji")
def emoji(text: str, rng: random.Random, count: int = 2) -> str:
    """Insert ``count`` emoji at random word positions."""
    for _ in range(count):
        text = _insert(text, rng, rng.choice(EMOJI))
    return text


SIGNATURES = (
    "--\nKind regards,\nSam Lee\nOperations | Northfield Ltd\n+44 20 0000 0000",
    "Best,\nR.\nSent from my phone",
    "--\nThis message and any attachments are confidential and intended only for the addressee.",
    "Thanks!\nJo\n(she/her) | Field support, team blue",
)


@perturbation("signature")
def signature(text: str, rng: random.Random) -> str:
    """Append an email signature block."""
    return text.rstrip() + "\n\n" + rng.choice(SIGNATURES)
