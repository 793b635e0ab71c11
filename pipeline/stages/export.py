r"""Stage ``export``: student checkpoint -> ONNX fp32 + int8 bundle, parity-checked and timed.

    python -m pipeline.stages.export --checkpoint models/student/checkpoint.pt --data data/ingested.parquet \
        --labels data/labels.parquet --out models/bundle --metrics metrics/export.json

Fails when the parity check fails. The work is :func:`pipeline.export.export_bundle`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from pipeline.stages import load_stage_params, run_stage, stage_parser

log = logging.getLogger("distill.export")


def main(argv: Sequence[str] | None = None) -> int:
    parser = stage_parser("distill export", __doc__,
                          "--checkpoint=checkpoint --data=ingested "
                          "--labels=labels --out=bundle --metrics=export_metrics")

    def body(args) -> None:
        from pipeline.export import ParityError, evaluation_limit, export_bundle, stream_evaluation_texts
        from pipeline.io import write_json

        cfg = load_stage_params(args).export
        # a bounded sample, read in batches: export's memory does not grow with the rows
        texts = stream_evaluation_texts(args.data, args.labels, evaluation_limit(cfg))
        metrics = export_bundle(args.checkpoint, args.out, cfg, texts)
        write_json(args.metrics, metrics)
        log.info("int8 %.0f KB (%.2fx fp32); int8 agreement %.4f; %.0f texts/s", metrics["files_bytes"]["int8"] / 1024,
                 metrics["size_ratio_int8"], metrics["int8"]["label_agreement"], metrics["speed_int8"]["texts_per_s"])
        web = metrics["web"]
        log.info("web runtime: %s", f"ready ({web['featurizer']} featurizer; loads {', '.join(web['files'])})"
                 if web["ready"] else f"not supported: {web['reason']}")
        if not metrics["passed"]:
            raise ParityError("parity check failed: " + "; ".join(metrics["problems"]) + " (see " + args.metrics + ")")

    return run_stage("export", body, parser, argv)


if __name__ == "__main__":
    raise SystemExit(main())
