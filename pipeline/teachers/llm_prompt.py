"""Label codes, prompt rendering and the two ways an LLM's answer becomes probabilities.

Pure functions, no network: the ``llm`` teacher (pipeline/teachers/llm.py) calls them per text.

Label codes are what the model must answer, one tokenizer token each, so the logprobs of the first
generated token cover every label:

- up to 26 labels: ``A`` .. ``Z``;
- 27 to 90 labels: two-digit numbers ``10`` .. ``99`` (no leading zero, which some tokenizers split);
- 91 to 900 labels: three-digit numbers ``100`` .. ``999`` (single tokens in the common BPE vocabularies).

All labels of one teacher use the same scheme, so no code is a prefix of another.
"""

from __future__ import annotations

import math
import string
from collections.abc import Sequence

from pipeline.teachers.base import TeacherError

MAX_LABELS = 900


def label_codes(n: int) -> list[str]:
    """The answer code of each of ``n`` labels, in label order."""
    if n < 2:
        raise TeacherError(f"the llm teacher needs at least 2 labels in teacher.llm.labels, got {n}")
    if n <= 26:
        return list(string.ascii_uppercase[:n])
    if n <= 90:
        return [str(10 + i) for i in range(n)]
    if n <= MAX_LABELS:
        return [str(100 + i) for i in range(n)]
    raise TeacherError(f"the llm teacher supports at most {MAX_LABELS} labels, got {n}")


def cut_text(text: str, max_chars: int | None) -> str:
    """``text`` cut to ``max_chars`` characters (None: as it is)."""
    return text if max_chars is None or len(text) <= max_chars else text[:max_chars]


def render_prompt(template: str, labels: dict[str, str], codes: Sequence[str], text: str) -> str:
    """Fill ``{labels}``, ``{codes}`` and ``{text}``; other braces in the template stay as written.

    ``str.replace`` instead of ``str.format`` so texts and templates may hold braces (JSON, code).
    The text is substituted last, so a text containing ``{labels}`` is not expanded.
    """
    lines = []
    for code, (name, description) in zip(codes, labels.items()):
        lines.append(f"{code}: {name} - {description}" if description else f"{code}: {name}")
    out = template.replace("{labels}", "\n".join(lines)).replace("{codes}", ", ".join(codes))
    return out.replace("{text}", text)


def normalize_answer(content: str) -> str:
    """The code in an answer such as ``"B"``, ``" b."`` or ``"12)"``: first word, no punctuation, upper case."""
    words = content.strip().split()
    if not words:
        return ""
    return words[0].strip(".,:;)]}\"'*").upper()


def probs_from_logprobs(top: Sequence[tuple[str, float]], codes: Sequence[str], floor: float) -> list[float]:
    """Softmax over the label codes' logprobs of the first generated token.

    ``top`` is the (token, logprob) list the endpoint returned. Tokens are matched to codes after
    :func:`normalize_answer` (so ``" A"`` and ``"a"`` count for ``A``; several matches add up). Codes not in
    the list get ``min(floor, smallest listed logprob)``: an unlisted token is at most as likely as the
    least likely listed one. Tokens that are not codes are dropped, which renormalizes over the labels.
    Raises ValueError when no listed token is a code (the answer is malformed).
    """
    index = {code: i for i, code in enumerate(codes)}
    found: list[list[float]] = [[] for _ in codes]
    for token, logprob in top:
        i = index.get(normalize_answer(token))
        if i is not None and math.isfinite(logprob):
            found[i].append(logprob)
    if not any(found):
        shown = ", ".join(repr(t) for t, _ in list(top)[:5])
        raise ValueError(f"no label code among the top logprobs ({shown})")
    listed = [lp for _, lp in top if math.isfinite(lp)]
    missing = min(floor, min(listed))
    logits = [_logsumexp(lps) if lps else missing for lps in found]
    peak = max(logits)
    weights = [math.exp(x - peak) for x in logits]
    total = sum(weights)
    return [w / total for w in weights]


def probs_from_votes(answers: Sequence[str], codes: Sequence[str]) -> list[float]:
    """Add-one smoothed vote shares: ``(count + 1) / (len(answers) + k)``; answers must be known codes."""
    counts = dict.fromkeys(codes, 0)
    for answer in answers:
        counts[answer] += 1
    total = len(answers) + len(codes)
    return [(counts[code] + 1) / total for code in codes]


def _logsumexp(values: Sequence[float]) -> float:
    peak = max(values)
    return peak + math.log(sum(math.exp(v - peak) for v in values))
