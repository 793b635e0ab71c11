r"""Stage ``distill``: train the student on the teacher's soft labels.

    python -m pipeline.stages.distill --data data/ingested.parquet --labels data/labels.parquet \
        --teacher-dir models/teacher --out models/student --metrics metrics/distill.json --plots plots/distill

The teacher is read only for the hint loss (``distill.hint_weight``): an ``embedding-head`` teacher's
sentence embeddings of the training texts, from its embedding cache. Writes ``<out>/checkpoint.pt``
(self-describing, resumable after a kill), the metrics JSON and the DVC plots ``history.csv`` and
``confusion.csv``. The work is :func:`pipeline.distill.train_from_files`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from pipeline.stages import load_stage_params, run_stage, stage_parser

log = logging.getLogger("distill.distill")


def main(argv: Sequence[str] | None = None) -> int:
    parser = stage_parser("distill distill", __doc__,
                          "--data=ingested --labels=labels --teacher-dir=teacher "
                          "--out=student --metrics=distill_metrics --plots=distill_plots")

    def body(args) -> None:
        from pipeline.distill import train_from_files, write_outputs
        from pipeline.distill.hints import stage_embedder

        params = load_stage_params(args)
        hints = stage_embedder(params.teacher, args.teacher_dir) if params.distill.hint_weight > 0 else None
        result = train_from_files(args.data, args.labels, params.distill, params.seed, args.out, hints=hints)
        write_outputs(result, args.metrics, args.plots)
        log.info("best epoch %s: validation agreement %.4f, test accuracy %s", result.metrics["best_epoch"],
                 result.metrics["val_agreement"], result.metrics.get("test_accuracy"))

    return run_stage("distill", body, parser, argv)


if __name__ == "__main__":
    raise SystemExit(main())
