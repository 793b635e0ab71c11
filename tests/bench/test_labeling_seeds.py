"""`distill bench --labeling-curve --seeds`: the curves of several seeds combined into one table."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.unit


def test_curves_of_several_seeds_combine_to_means_with_their_range():
    from pipeline.bench.labeling import combine_curves, render_curve

    def run(whole, random25, active25, wall):
        point = lambda strategy, share, acc, labeled: {  # noqa: E731
            "strategy": strategy, "budget_share": share, "pool_texts_labeled": labeled, "teacher_texts": 100 + labeled,
            "accuracy": acc, "val_agreement": acc + 0.05, "share_of_whole_pool": acc / whole}
        return {"fixed_texts": 100, "pool_texts": 400, "active": {"epochs": 10}, "wall_s": wall,
                "points": [point("random", 0.25, random25, 100), point("random", 1.0, whole, 400),
                           point("active", 0.25, active25, 99)]}

    record = combine_curves([run(0.84, 0.83, 0.82, 10.0), run(0.86, 0.84, 0.85, 12.0)], [1, 2])
    by = {(p["strategy"], p["budget_share"]): p for p in record["points"]}
    assert record["seeds"] == [1, 2] and len(record["runs"]) == 2 and record["wall_s"] == 22.0
    assert by[("random", 1.0)]["accuracy"] == pytest.approx(0.85) and by[("random", 1.0)]["share_of_whole_pool"] == 1.0
    active = by[("active", 0.25)]
    assert active["accuracy"] == pytest.approx(0.835) and (active["accuracy_min"], active["accuracy_max"]) == (0.82, 0.85)
    assert active["share_of_whole_pool"] == pytest.approx(0.835 / 0.85)  # the ratio of the means
    assert active["pool_texts_labeled"] == 99 and active["seeds"] == 2
    table = render_curve(record)
    assert "mean of 2 seeds" in table and "| active | 25% | 99 | 83.5 % (82.0-85.0) | 98.2 % |" in table
