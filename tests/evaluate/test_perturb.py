"""Perturbations: deterministic per (seed, text) and doing what their name says."""

import pytest

from pipeline.evaluate import perturb
from pipeline.evaluate.perturb import EMOJI, HOMOGLYPHS, ZERO_WIDTH, PerturbationError

pytestmark = pytest.mark.unit

TEXTS = ["Please send the quarterly report before Friday's meeting with the auditors.",
         "Win a free phone now, click the link and claim your prize today"]


@pytest.mark.parametrize("name", perturb.registered())
def test_each_perturbation_is_deterministic_and_changes_text(name):
    first = perturb.apply(name, TEXTS, seed=7)
    again = perturb.apply(name, list(reversed(TEXTS)), seed=7)[::-1]  # order of the batch does not matter
    assert first == again
    assert first != TEXTS  # every registered perturbation changes these texts with its defaults
    assert perturb.apply(name, TEXTS, seed=8) != first or name in ("casing", "truncate", "signature", "url")


def test_typos_swap_drop_or_double_letters_only():
    out = perturb.apply("typos", TEXTS, seed=1, rate=0.3)
    for before, after in zip(TEXTS, out):
        assert after != before
        assert abs(len(after) - len(before)) <= len(before) * 0.3
        assert sorted(c for c in after if not c.isalpha()) == sorted(c for c in before if not c.isalpha())
    assert perturb.apply("typos", TEXTS, seed=1, rate=0.0) == TEXTS


def test_casing_modes():
    assert perturb.apply("casing", TEXTS, 1, mode="upper") == [t.upper() for t in TEXTS]
    assert perturb.apply("casing", TEXTS, 1, mode="lower") == [t.lower() for t in TEXTS]
    mixed = perturb.apply("casing", TEXTS, 1)
    assert [m.lower() for m in mixed] == [t.lower() for t in TEXTS]
    with pytest.raises(PerturbationError, match="casing.mode"):
        perturb.apply("casing", TEXTS, 1, mode="shout")


def test_whitespace_keeps_the_words():
    out = perturb.apply("whitespace", TEXTS, 3, rate=1.0)
    assert [o.split() for o in out] == [t.split() for t in TEXTS]
    assert all(o != t for o, t in zip(out, TEXTS))


def test_homoglyphs_replace_with_look_alikes_of_same_length():
    out = perturb.apply("homoglyphs", TEXTS, 3, rate=1.0)
    for before, after in zip(TEXTS, out):
        assert len(after) == len(before)
        assert not any(c in HOMOGLYPHS for c in after)
        assert all(a == HOMOGLYPHS.get(b, b) for a, b in zip(after, before))


def test_zero_width_is_invisible_noise():
    out = perturb.apply("zero_width", TEXTS, 3, rate=0.5)
    for before, after in zip(TEXTS, out):
        assert any(z in after for z in ZERO_WIDTH)
        assert "".join(c for c in after if c not in ZERO_WIDTH) == before


def test_truncate_keeps_a_prefix_of_words():
    out = perturb.apply("truncate", TEXTS, 3, keep=0.5)
    for before, after in zip(TEXTS, out):
        words = before.split()
        assert after.split() == words[: round(len(words) * 0.5)]
    assert perturb.apply("truncate", ["one"], 3, keep=0.1) == ["one"]


def test_inserted_url_emoji_and_signature_leave_the_text_around_them():
    for before, after in zip(TEXTS, perturb.apply("url", TEXTS, 3)):
        assert [w for w in after.split() if not w.startswith("https://")] == before.split()
    for before, after in zip(TEXTS, perturb.apply("emoji", TEXTS, 3, count=3)):
        assert sum(after.count(e) for e in EMOJI) == 3
        assert [w for w in after.split(" ") if w not in EMOJI] == before.split(" ")
    for before, after in zip(TEXTS, perturb.apply("signature", TEXTS, 3)):
        assert after.startswith(before) and len(after.splitlines()) >= 3


def test_unknown_name_and_argument_are_named():
    with pytest.raises(PerturbationError, match="unknown perturbation 'leet'"):
        perturb.apply("leet", TEXTS, 1)
    with pytest.raises(PerturbationError, match=r"typos: unknown argument\(s\) prob; it takes: rate"):
        perturb.apply("typos", TEXTS, 1, prob=0.1)
    with pytest.raises(PerturbationError, match="within"):
        perturb.apply("homoglyphs", TEXTS, 1, rate=2.0)
