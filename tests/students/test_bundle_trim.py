"""Bundle.logits runs a batch in groups of similar length, each cut after its last padding column: the
same logits as the padded batch, rows in their order, less work for the graph."""

import numpy as np
import pytest

from pipeline.bundle import load_bundle, run_trimmed

pytestmark = pytest.mark.unit


class RecordingSession:
    """Logits = per-row sum of the ids and of their squares; records the width of every call."""

    def __init__(self):
        self.widths: list[int] = []

    def run(self, _outputs, feeds):
        ids = feeds["ids"]
        self.widths.append(ids.shape[1])
        return [np.stack([ids.sum(axis=1), (ids ** 2).sum(axis=1)], axis=1).astype(np.float32)]


def test_groups_are_cut_to_their_longest_row_and_rows_keep_their_order():
    rng = np.random.default_rng(0)
    lengths = rng.integers(0, 50, size=70)
    ids = np.zeros((70, 50), dtype=np.int64)
    for row, n in enumerate(lengths):
        ids[row, :n] = rng.integers(1, 1000, size=n)
    session = RecordingSession()
    out = run_trimmed(session, ids, rows=16)
    np.testing.assert_array_equal(out, RecordingSession().run(None, {"ids": ids})[0])
    assert len(session.widths) == 5  # 70 rows in groups of 16
    assert session.widths == sorted(session.widths) and session.widths[0] < 50
    # a gap inside a row (a featurizer with sections) is kept: only trailing padding is cut
    ids[:, 10] = 0
    np.testing.assert_array_equal(run_trimmed(RecordingSession(), ids, rows=16),
                                  RecordingSession().run(None, {"ids": ids})[0])


def test_bundle_logits_match_the_padded_batch(bundles):
    from tests.student_data import banking77_frames

    bundle = load_bundle(bundles["good_a"])
    ingested, _, _ = banking77_frames(per_class_train=2, test_rows=200, seed=1)
    texts = ingested["text"].tolist()[:200] + ["", "a", "word " * 300]
    session = bundle.session("int8")
    padded = session.run(None, {"ids": bundle.featurizer(texts)})[0]
    np.testing.assert_allclose(bundle.logits(texts), padded, rtol=1e-5, atol=1e-5)
    one_by_one = np.concatenate([bundle.logits([t]) for t in texts])
    np.testing.assert_allclose(bundle.logits(texts), one_by_one, rtol=1e-5, atol=1e-5)
