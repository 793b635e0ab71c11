"""Training rows (text, teacher probabilities, target) in memory or on disk, and the order an epoch reads them.

The distill stage writes its transfer set to a :class:`RowStore` in a scratch folder, in blocks of
:data:`BLOCK_ROWS` rows: texts in an Arrow IPC file (one record batch per block), probabilities and targets
as raw float32 / int64 files. Training then holds one window of blocks at a time, read with plain file
reads (not a memory map, so the page cache is not charged to the process), and its memory stops
growing with the rows.

The order of an epoch (:func:`epoch_batches`) is seeded by ``(seed, epoch)``:

- when every row fits in one window (``distill.window_rows``) it is one permutation of all rows, the order
  training used before rows lived on disk, so small data trains exactly as it did;
- otherwise blocks are permuted, grouped into windows, and each window's rows are permuted (a block
  shuffle). With DDP each rank reads only its own blocks (every ``world``-th of the permuted order), trains
  on local batches of ``batch_size / world`` rows, and every rank takes the same number of steps: a rank
  with fewer rows starts its windows again for the last few steps, the way ``DistributedSampler`` pads.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np

BLOCK_ROWS = 1024


class MemoryRows:
    """Rows held in arrays (the bench, active labeling's quick students, tests)."""

    def __init__(self, texts: list[str], probs: np.ndarray | None, targets: np.ndarray):
        self.texts, self.probs, self.targets = texts, probs, targets
        self.n = len(texts)
        self.k = None if probs is None else probs.shape[1]

    def read(self, start: int, stop: int) -> tuple[list[str], np.ndarray | None, np.ndarray]:
        probs = None if self.probs is None else self.probs[start:stop]
        return self.texts[start:stop], probs, self.targets[start:stop]

    def take_blocks(self, blocks) -> tuple[list[str], np.ndarray | None, np.ndarray]:
        index = np.concatenate([np.arange(b * BLOCK_ROWS, min((b + 1) * BLOCK_ROWS, self.n)) for b in blocks])
        probs = None if self.probs is None else self.probs[index]
        return [self.texts[i] for i in index], probs, self.targets[index]


class RowStore:
    """Rows on disk under ``folder``: ``texts.arrow``, ``probs.f32`` (``[n, k]``, absent when there are no
    probabilities) and ``targets.i64``. Write with :class:`RowWriter`; read windows with :meth:`take_blocks`."""

    def __init__(self, folder: str | Path, n: int, k: int | None):
        self.folder, self.n, self.k = Path(folder), n, k

    def __getstate__(self):  # sent to DDP workers: the paths, never the rows
        return {"folder": str(self.folder), "n": self.n, "k": self.k}

    def __setstate__(self, state):
        self.__init__(state["folder"], state["n"], state["k"])

    def _texts(self, blocks) -> list[str]:
        import pyarrow as pa

        with pa.OSFile(str(self.folder / "texts.arrow")) as source:
            reader = pa.ipc.open_file(source)
            out: list[str] = []
            for b in blocks:
                out.extend(reader.get_batch(int(b)).column(0).to_pylist())
            return out

    def _array(self, name: str, dtype, width: int, blocks) -> np.ndarray:
        parts = []
        with open(self.folder / name, "rb") as fh:
            for b in blocks:
                start, stop = int(b) * BLOCK_ROWS, min((int(b) + 1) * BLOCK_ROWS, self.n)
                fh.seek(start * width * np.dtype(dtype).itemsize)
                parts.append(np.fromfile(fh, dtype=dtype, count=(stop - start) * width))
        flat = np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)
        return flat.reshape(-1, width) if width > 1 else flat

    def take_blocks(self, blocks) -> tuple[list[str], np.ndarray | None, np.ndarray]:
        blocks = list(blocks)
        probs = None if self.k is None else self._array("probs.f32", np.float32, self.k, blocks)
        return self._texts(blocks), probs, self._array("targets.i64", np.int64, 1, blocks)

    def read(self, start: int, stop: int) -> tuple[list[str], np.ndarray | None, np.ndarray]:
        """Rows ``[start, stop)``; ``start`` must be a block boundary."""
        if start % BLOCK_ROWS:
            raise ValueError(f"read starts at {start}, not a multiple of {BLOCK_ROWS}")
        texts, probs, targets = self.take_blocks(range(start // BLOCK_ROWS, math.ceil(stop / BLOCK_ROWS)))
        m = stop - start
        return texts[:m], None if probs is None else probs[:m], targets[:m]


class RowWriter:
    """Append rows in any batch sizes; the store is written in blocks of :data:`BLOCK_ROWS`."""

    def __init__(self, folder: str | Path, k: int | None):
        import pyarrow as pa

        self.folder, self.k, self.n = Path(folder), k, 0
        self.folder.mkdir(parents=True, exist_ok=True)
        self._schema = pa.schema([("text", pa.string())])
        self._sink = pa.OSFile(str(self.folder / "texts.arrow"), "wb")
        self._writer = pa.ipc.new_file(self._sink, self._schema)
        self._probs = open(self.folder / "probs.f32", "wb") if k is not None else None
        self._targets = open(self.folder / "targets.i64", "wb")
        self._pending: list[str] = []

    def append(self, texts: list[str], probs: np.ndarray | None, targets: np.ndarray) -> None:
        if self._probs is not None:
            np.ascontiguousarray(probs, dtype=np.float32).tofile(self._probs)
        np.ascontiguousarray(targets, dtype=np.int64).tofile(self._targets)
        self._pending.extend(texts)
        self.n += len(texts)
        while len(self._pending) >= BLOCK_ROWS:
            self._flush(BLOCK_ROWS)

    def _flush(self, m: int) -> None:
        import pyarrow as pa

        self._writer.write_batch(pa.record_batch([pa.array(self._pending[:m], pa.string())], schema=self._schema))
        del self._pending[:m]

    def close(self) -> RowStore:
        if self._pending:
            self._flush(len(self._pending))
        self._writer.close()
        self._sink.close()
        for fh in (self._probs, self._targets):
            if fh is not None:
                fh.close()
        return RowStore(self.folder, self.n, self.k)


def chunks(rows, size: int = 65_536) -> Iterator[tuple[list[str], np.ndarray | None, np.ndarray]]:
    """All rows in order, ``size`` at a time (a multiple of :data:`BLOCK_ROWS` and of prediction batches)."""
    for start in range(0, rows.n, size):
        yield rows.read(start, min(start + size, rows.n))


def epoch_batches(rows, batch_size: int, world: int, rank: int, seed: int, epoch: int,
                  window_rows: int) -> Iterator[tuple[list[str], np.ndarray, np.ndarray]]:
    """This rank's training batches of one epoch: (texts, probabilities, targets)."""
    n = rows.n
    rng = np.random.default_rng([seed, epoch])
    if n <= window_rows or math.ceil(n / BLOCK_ROWS) < world:  # one window: a permutation of all rows, each global batch split across ranks
        texts, probs, targets = rows.read(0, n)
        order = rng.permutation(n)
        for start in range(0, n, batch_size):
            batch = order[start:start + batch_size]
            if len(batch) < world:
                continue  # a rank would get no rows
            mine = batch[rank::world]
            yield [texts[i] for i in mine], probs[mine], targets[mine]
        return
    blocks = math.ceil(n / BLOCK_ROWS)
    per_window = max(1, window_rows // BLOCK_ROWS)
    order = rng.permutation(blocks)
    local = max(1, batch_size // world)

    def size(part) -> int:
        return sum(min(BLOCK_ROWS, n - int(b) * BLOCK_ROWS) for b in part)

    # every world-th block of the permuted order is this rank's; a rank with fewer rows than the others
    # wraps around to its first window so that all take the same number of steps (as DistributedSampler pads)
    steps = max(math.ceil(size(order[r::world]) / local) for r in range(world))
    mine = order[rank::world]
    windows = [mine[i:i + per_window] for i in range(0, len(mine), per_window)]
    taken = 0
    while taken < steps:
        for w, window in enumerate(windows):
            texts, probs, targets = rows.take_blocks(window)
            perm = np.random.default_rng([seed, epoch, rank, w]).permutation(len(texts))
            for start in range(0, len(perm), local):
                if taken >= steps:
                    return
                pick = perm[start:start + local]
                taken += 1
                yield [texts[i] for i in pick], probs[pick], targets[pick]
