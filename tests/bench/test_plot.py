"""The bench plot: one point per row of a bench record, written as a PNG."""

from __future__ import annotations

import pytest

from pipeline.bench.plot import main, points

pytestmark = pytest.mark.unit


def _record(acc: float) -> dict:
    speed = {"1": {"texts_per_s": 10.0}, "2": {"texts_per_s": 20.0}}
    return {"threads": [1, 2], "machine": {"loadavg_1m": 1.5},
            "quality": {"teacher_accuracy": 0.9, "student_fp32_accuracy": acc, "student_int8_accuracy": acc},
            "speed": {"teacher": speed, "student_torch": speed, "student_int8": speed},
            "peers": {"tfidf-lr": {"regime": "distilled", "accuracy": 0.8, "texts_per_s": 5.0},
                      "tfidf-lr-gold-only": {"regime": "gold_only", "accuracy": 0.7, "texts_per_s": 6.0}}}


def test_every_row_is_a_point_at_the_most_threads():
    got = points(_record(0.85))
    assert got == [("teacher", 20.0, 0.9, False), ("student fp32", 20.0, 0.85, False),
                   ("student int8", 20.0, 0.85, False), ("tfidf-lr", 5.0, 0.8, False),
                   ("tfidf-lr-gold-only", 6.0, 0.7, True)]


def test_the_plot_is_a_png_with_one_panel_per_record(tmp_path):
    import json

    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "bench.json").write_text(json.dumps(_record(0.8)))
    out = tmp_path / "plot.png"
    main([str(tmp_path / "a" / "bench.json"), str(tmp_path / "b" / "bench.json"), "--out", str(out)])
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 5000
