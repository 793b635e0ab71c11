"""The distill stage's streamed transfer set: same rows and training as the in-memory path on small data,
and a block-shuffled, windowed read (disjoint across DDP ranks) on large data."""

import numpy as np
import pandas as pd
import pytest

from pipeline.distill import CHECKPOINT_NAME, train_from_files, train_from_frames
from pipeline.distill.data import build_transfer_set, stream_transfer_set
from pipeline.distill.rows import BLOCK_ROWS, MemoryRows, RowWriter, epoch_batches
from tests.distill.test_training import _cfg as training_cfg
from tests.student_data import banking77_frames, write_labels_parquet

pytestmark = pytest.mark.model


def _cfg(**overrides):
    return training_cfg(**{"epochs": 2, **overrides})


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The frames with augmented variants added, written in small row groups so streaming takes many batches."""
    ingested, labels, names = banking77_frames(per_class_train=16, test_rows=300, seed=0)
    sources = labels[labels.split == "unlabeled"].head(200)
    aug = sources.assign(id=[f"aug-{i}" for i in sources["id"]], origin_id=sources["id"].values,
                         text=[t + " thanks" for t in sources["text"]], split="augmented")
    labels = pd.concat([labels, aug], ignore_index=True)
    root = tmp_path_factory.mktemp("rows")
    ingested.to_parquet(root / "ingested.parquet", row_group_size=97)
    write_labels_parquet(root / "labels.parquet", labels, names)
    no_test = labels[labels.split != "test"].reset_index(drop=True)
    write_labels_parquet(root / "labels-no-test.parquet", no_test, names)
    return root, ingested, labels, no_test, names


def _all(rows):
    texts, probs, targets = rows.read(0, rows.n)
    return texts, probs, targets


@pytest.mark.parametrize("labels_file", ["labels.parquet", "labels-no-test.parquet"])
def test_streamed_transfer_set_holds_the_rows_of_the_in_memory_one(files, tmp_path, labels_file):
    root, ingested, labels, no_test, names = files
    frame = labels if labels_file == "labels.parquet" else no_test
    memory = build_transfer_set(ingested, frame, names, 0.15)
    stored = stream_transfer_set(root / "ingested.parquet", root / labels_file, 0.15, True, tmp_path, batch_rows=50)
    assert stored.labels == memory.labels and stored.digest == memory.digest
    for ours, theirs in ((stored.train, memory.train_rows()), (stored.val, memory.val_rows()),
                         (stored.test, memory.test_rows())):
        a, b = _all(ours), _all(theirs)
        assert a[0] == b[0]
        assert (a[1] is None) == (b[1] is None) and (a[1] is None or np.array_equal(a[1], b[1]))
        assert np.array_equal(a[2], b[2])
    assert stored.train.n > BLOCK_ROWS  # several blocks, and a partial last one
    assert (_all(stored.train)[2] >= 0).sum() == (memory.train_targets >= 0).sum() > 0
    assert (stored.test.k is None) == (labels_file == "labels-no-test.parquet")


def test_the_distill_stage_trains_from_files_exactly_as_from_frames(files, tmp_path):
    import torch

    root, ingested, labels, _, names = files
    a = train_from_frames(ingested, labels, names, _cfg(), seed=5, out_dir=tmp_path / "frames")
    b = train_from_files(root / "ingested.parquet", root / "labels.parquet", _cfg(), seed=5, out_dir=tmp_path / "files")
    assert a.metrics == b.metrics and a.history == b.history and a.confusion == b.confusion
    x = torch.load(tmp_path / "frames" / CHECKPOINT_NAME, weights_only=True)
    y = torch.load(tmp_path / "files" / CHECKPOINT_NAME, weights_only=True)
    assert x["training"]["fingerprint"] == y["training"]["fingerprint"]
    for key in x["state_dict"]:
        assert torch.equal(x["state_dict"][key], y["state_dict"][key]), key


def _rows(n, k=3, seed=0):
    rng = np.random.default_rng(seed)
    return MemoryRows([f"text {i}" for i in range(n)], rng.random((n, k), dtype=np.float32),
                      np.arange(n, dtype=np.int64))


def test_a_small_transfer_set_is_one_permutation_per_epoch():
    rows = _rows(500)
    seen = [t for batch in epoch_batches(rows, 64, 1, 0, seed=9, epoch=2, window_rows=500) for t in batch[2]]
    assert seen == np.random.default_rng([9, 2]).permutation(500).tolist()


def test_a_large_transfer_set_is_read_a_window_of_blocks_at_a_time_and_disk_reads_match_memory(tmp_path):
    n = 5 * BLOCK_ROWS + 300
    rows = _rows(n)
    writer = RowWriter(tmp_path / "store", 3)
    for start in range(0, n, 777):  # appends that do not line up with blocks
        writer.append(*[part[start:start + 777] for part in (rows.texts, rows.probs, rows.targets)])
    store = writer.close()
    assert store.n == n
    whole = [list(range(n))]
    per_epoch = []
    for source in (rows, store):
        batches = list(epoch_batches(source, 64, 1, 0, seed=1, epoch=0, window_rows=2 * BLOCK_ROWS))
        ids = [int(i) for _, _, targets in batches for i in targets]
        assert sorted(ids) == whole[0]  # every row once
        for texts, probs, targets in batches:  # each row keeps its text and probabilities
            assert texts == [rows.texts[i] for i in targets] and np.array_equal(probs, rows.probs[targets])
        per_epoch.append(ids)
    assert per_epoch[0] == per_epoch[1]  # the disk store reads what memory holds
    # a block shuffle: consecutive rows of one batch come from at most two windows' worth of blocks
    first = next(epoch_batches(rows, 64, 1, 0, seed=1, epoch=0, window_rows=2 * BLOCK_ROWS))[2]
    assert len({int(i) // BLOCK_ROWS for i in first}) <= 2
    assert per_epoch[0] != [int(i) for _, _, t in epoch_batches(rows, 64, 1, 0, 1, 1, 2 * BLOCK_ROWS) for i in t]


def test_ddp_ranks_read_disjoint_windows_and_take_the_same_number_of_steps():
    n = 7 * BLOCK_ROWS + 10
    rows = _rows(n)
    ranks = [list(epoch_batches(rows, 64, 2, r, seed=3, epoch=0, window_rows=2 * BLOCK_ROWS)) for r in range(2)]
    assert len(ranks[0]) == len(ranks[1]) > 0
    blocks = [{int(i) // BLOCK_ROWS for _, _, t in batches for i in t} for batches in ranks]
    assert not blocks[0] & blocks[1]  # no block is read by both ranks
    assert all(len(b[0]) <= 32 for batches in ranks for b in batches)  # local batches: batch_size / world
    ids = [int(i) for batches in ranks for _, _, t in batches for i in t]
    assert set(ids) == set(range(n))  # every row trained on; the rank with fewer rows repeats a few
    assert len(ids) - n <= BLOCK_ROWS + 32  # ranks differ by at most one (partial) block of rows


def test_ddp_trains_from_streamed_windows(files, tmp_path):
    from pipeline.distill.checkpoint import load_student

    root, *_, names = files
    result = train_from_files(root / "ingested.parquet", root / "labels.parquet",
                              _cfg(processes=2, window_rows=1024), seed=1, out_dir=tmp_path)
    assert result.metrics["epochs_run"] == 2 and load_student(result.checkpoint).labels == names
    assert result.metrics["val_agreement"] > 0.05
