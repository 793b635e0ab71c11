"""The training loop: seeded, early stopping on teacher agreement, checkpoint per epoch, resumable,
single process or torch DDP (gloo on CPU).

Determinism: the model is initialized from ``torch.manual_seed(seed)`` and epoch ``e`` shuffles with
``numpy.random.default_rng([seed, e])``, so a run resumed from the checkpoint of epoch ``k`` takes the
same steps as an uninterrupted one. Batches are global: with ``p`` processes each takes every ``p``-th
row of a batch and DDP averages the gradients. The step count (which sets a scheduled learning rate)
and the weight average are part of the checkpoint, so a resumed run continues both where they were.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import tempfile
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.distill.checkpoint import CheckpointError, read_checkpoint, save_checkpoint
from pipeline.distill.data import StoredTransferSet, TransferSet
from pipeline.distill.rows import chunks, epoch_batches

log = logging.getLogger("distill.train")


@dataclass
class TrainJob:
    """Everything a training process needs (picklable, sent to DDP workers)."""

    data: TransferSet | StoredTransferSet
    cfg: Any  # DistillConfig
    spec: Any  # FeaturizerSpec
    seed: int
    checkpoint: str
    stop_after_epoch: int | None = None

    @property
    def fingerprint(self) -> str:
        """Resume only a checkpoint made from the same data, config and seed."""
        cfg = self.cfg.model_dump(mode="json", exclude={"processes"})
        raw = json.dumps([cfg, self.spec.digest, self.data.digest, self.seed], sort_keys=True)
        return hashlib.sha256(raw.encode()).hexdigest()[:16]


def predict_logits(model, featurizer, texts: list[str], batch_size: int = 512) -> np.ndarray:
    """Student logits for texts, featurized batch by batch with the shared featurizer.

    Each batch is copied into one preallocated result: keeping every batch's small logits array alive
    between the large embedding temporaries of later batches fragmented the heap, and a 65,536-text call
    grew the process by about 1.8 GB."""
    import torch

    out = None
    with torch.no_grad():
        for i in range(0, len(texts), batch_size):
            ids = torch.from_numpy(featurizer(texts[i:i + batch_size]))
            logits = model(ids).numpy()
            if out is None:
                out = np.empty((len(texts), logits.shape[1]), dtype=logits.dtype)
            out[i:i + len(logits)] = logits
            del ids, logits
    return out if out is not None else np.zeros((0, 0), dtype=np.float32)


def make_optimizers(model, cfg) -> list:
    """AdamW for dense weights, SparseAdam for embeddings with sparse gradients.

    Sparse gradients keep the backward pass and the update to the rows of the batch; dense AdamW on a
    large hashed table made every step a full pass over the table.
    """
    import torch

    sparse = [m.weight for m in model.modules() if isinstance(m, torch.nn.Embedding) and m.sparse]
    ids = {id(p) for p in sparse}
    dense = [p for p in model.parameters() if id(p) not in ids]
    out = [torch.optim.AdamW(dense, lr=cfg.lr, weight_decay=cfg.weight_decay)]
    if sparse:
        out.append(torch.optim.SparseAdam(sparse, lr=cfg.lr))
    return out


def learning_rate(cfg, step: int, total_steps: int) -> float:
    """The learning rate of training step ``step`` (0-based) of ``total_steps``.

    ``constant``: ``cfg.lr`` throughout. ``cosine``: half a cosine from ``cfg.lr`` down to 0 at the last
    step of ``cfg.epochs`` epochs; early stopping may end training before the rate gets there."""
    if cfg.schedule == "constant":
        return cfg.lr
    return 0.5 * cfg.lr * (1.0 + math.cos(math.pi * min(step, total_steps) / max(total_steps, 1)))


class WeightAverage:
    """Exponential moving average of a model's floating-point weights, updated after every step.

    ``avg = d * avg + (1 - d) * weights`` with ``d = min(decay, (1 + step) / (10 + step))``: the ramp keeps
    the random initial weights from dominating the average of a short run (a 60-row transfer set takes one
    step per epoch; 30 steps at a flat 0.99 would leave 74 % of the average at the start). Validation,
    early stopping and the saved best state use the average (``swapped_in``); training continues from the
    raw weights. One update costs a pass over the weights, a few milliseconds for the default table."""

    def __init__(self, model, decay: float, state: dict | None = None):
        self.model, self.decay = model, decay
        self.avg = state if state is not None else {k: v.detach().clone() for k, v in model.state_dict().items()}

    def update(self, step: int) -> None:
        import torch

        decay = min(self.decay, (1.0 + step) / (10.0 + step))
        with torch.no_grad():
            for name, value in self.model.state_dict().items():
                if value.dtype.is_floating_point:
                    self.avg[name].mul_(decay).add_(value, alpha=1.0 - decay)

    @contextmanager
    def swapped_in(self):
        raw = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        self.model.load_state_dict(self.avg)
        try:
            yield
        finally:
            self.model.load_state_dict(raw)


def run_training(job: TrainJob) -> None:
    """Train (or resume) to completion, writing the checkpoint after every epoch."""
    world = job.cfg.processes
    if world == 1:
        _worker(0, 1, job, None)
        return
    import torch.multiprocessing as mp

    with tempfile.TemporaryDirectory(prefix="distill-ddp-") as tmp:
        rendezvous = f"file://{Path(tmp) / 'rendezvous'}"
        mp.spawn(_worker, args=(world, job, rendezvous), nprocs=world, join=True)


def _resume_state(job: TrainJob) -> dict[str, Any] | None:
    path = Path(job.checkpoint)
    if not path.exists():
        return None
    ckpt = read_checkpoint(path)
    training = ckpt.get("training") or {}
    if training.get("fingerprint") != job.fingerprint:
        log.info("%s was made from other data or config: starting fresh", path)
        return None
    return ckpt


def _worker(rank: int, world: int, job: TrainJob, rendezvous: str | None) -> None:
    import torch
    import torch.distributed as dist

    from pipeline.distill.hints import hint_loss, hinted
    from pipeline.losses import build_objective
    from pipeline.students import build_student
    from pipeline.stages import setup_logging
    from pipeline.students.featurize import Featurizer

    setup_logging()
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    if world > 1:
        dist.init_process_group("gloo", init_method=rendezvous, rank=rank, world_size=world)
    try:
        cfg, data = job.cfg, job.data
        featurizer = Featurizer(job.spec)
        torch.manual_seed(job.seed)
        k = len(data.labels)
        model = build_student(cfg.student.name, featurizer.num_features, k, job.spec, **cfg.student.kwargs)
        train_rows, val_rows = data.train_rows(), data.val_rows()
        hint_width = (train_rows.k or k) - k  # train rows carry the teacher's embedding after the probabilities
        use_hint = cfg.hint_weight > 0 and hint_width > 0 and hasattr(model, "feature_width")
        if hint_width > 0 and not use_hint and rank == 0:
            log.warning("student %s declares no feature_width (the width of its features(), where the teacher's "
                        "embeddings would be learned): hint loss off", cfg.student.name)
        trainee = hinted(model, hint_width) if use_hint else model  # what trains; `model` is what is saved
        optimizers = make_optimizers(trainee, cfg)
        state = {"epoch": 0, "best_epoch": 0, "best_val": -1.0, "bad_epochs": 0, "history": [], "done": False,
                 "step": 0}
        average_state = None
        best_state = {k: v.clone() for k, v in model.state_dict().items()}
        ckpt = _resume_state(job)
        if ckpt is not None:
            tr = ckpt["training"]
            model.load_state_dict(tr["last_state"])
            if use_hint and tr.get("hint_state") is not None:
                trainee.projection.load_state_dict(tr["hint_state"])
            for opt, saved in zip(optimizers, tr["optimizer"], strict=True):
                opt.load_state_dict(saved)
            best_state = ckpt["state_dict"]
            state = {k: tr.get(k, state[k]) for k in state}  # "step" is new: older checkpoints lack it
            average_state = tr.get("average_state")
            if rank == 0:
                log.info("resuming after epoch %d (best %.4f at epoch %d)", state["epoch"], state["best_val"],
                         state["best_epoch"])
        net = torch.nn.parallel.DistributedDataParallel(trainee) if world > 1 else trainee
        objective = build_objective(cfg.losses)
        average = None if cfg.ema is None else WeightAverage(model, cfg.ema, average_state)
        total_steps = math.ceil(train_rows.n / cfg.batch_size) * cfg.epochs
        val_teacher = np.concatenate([p.argmax(axis=1) for _, p, _ in chunks(val_rows)])

        for epoch in range(state["epoch"], cfg.epochs):
            if state["done"]:
                break
            model.train()
            total, hint_total, rows = 0.0, 0.0, 0
            for texts, probs, targets in epoch_batches(train_rows, cfg.batch_size, world, rank, job.seed, epoch,
                                                       cfg.window_rows):
                if not cfg.use_gold:
                    targets = np.full_like(targets, -1)
                ids = torch.from_numpy(featurizer(texts))
                teacher = torch.from_numpy(probs)
                if use_hint:
                    logits, projected = net(ids)
                    hint = hint_loss(projected, teacher[:, k:])
                    loss = objective(logits, teacher[:, :k], torch.from_numpy(targets)) + cfg.hint_weight * hint
                    hint_total += float(hint.detach()) * len(texts)
                else:
                    loss = objective(net(ids), teacher[:, :k], torch.from_numpy(targets))
                for opt in optimizers:
                    opt.zero_grad(set_to_none=True)
                loss.backward()
                lr = learning_rate(cfg, state["step"], total_steps)
                for opt in optimizers:
                    for group in opt.param_groups:
                        group["lr"] = lr
                    opt.step()
                if average is not None:
                    average.update(state["step"])
                state["step"] += 1
                total += float(loss.detach()) * len(texts)
                rows += len(texts)
            if world > 1:
                sums = torch.tensor([total, hint_total, float(rows)], dtype=torch.float64)
                dist.all_reduce(sums)
                total, hint_total, rows = float(sums[0]), float(sums[1]), float(sums[2])
            model.eval()
            with average.swapped_in() if average is not None else nullcontext():
                val_pred = np.concatenate([predict_logits(model, featurizer, texts).argmax(axis=1)
                                           for texts, _, _ in chunks(val_rows)])
                agreement = float((val_pred == val_teacher).mean())
                improved = agreement > state["best_val"]
                if improved:  # the weights validated: the average when there is one
                    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            epoch_loss = total / max(rows, 1)
            state["history"].append({"epoch": epoch + 1, "loss": epoch_loss, "val_agreement": agreement,
                                     **({"hint_cosine": 1.0 - hint_total / max(rows, 1)} if use_hint else {})})
            state["epoch"] = epoch + 1
            if improved:
                state.update(best_val=agreement, best_epoch=epoch + 1, bad_epochs=0)
            else:
                state["bad_epochs"] += 1
            if state["bad_epochs"] >= cfg.patience or state["epoch"] >= cfg.epochs:
                state["done"] = True
            if rank == 0:
                log.info("epoch %d: loss %.4f, validation agreement %.4f%s", epoch + 1, epoch_loss, agreement,
                         " (best)" if state["best_epoch"] == epoch + 1 else "")
                save_checkpoint(job.checkpoint, {
                    "student": {"name": cfg.student.name, "kwargs": dict(cfg.student.kwargs)},
                    "labels": list(data.labels),
                    "featurizer": {"config": job.spec.config(), "tokenizer_json": job.spec.tokenizer_json},
                    "num_features": featurizer.num_features,
                    "state_dict": best_state,
                    "training": {"fingerprint": job.fingerprint, **state,
                                 "last_state": model.state_dict(), "optimizer": [o.state_dict() for o in optimizers],
                                 "average_state": None if average is None else average.avg,
                                 "hint_state": trainee.projection.state_dict() if use_hint else None},
                })
            if world > 1:
                dist.barrier()
            if job.stop_after_epoch is not None and state["epoch"] >= job.stop_after_epoch:
                break  # used by tests to simulate a kill after a saved epoch
    finally:
        if world > 1:
            dist.destroy_process_group()


def training_state(path: str | Path) -> dict[str, Any]:
    ckpt = read_checkpoint(path)
    if "training" not in ckpt:
        raise CheckpointError(f"{path}: checkpoint holds no training state")
    return ckpt["training"]
