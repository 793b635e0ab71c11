r"""Stage ``evaluate``: score teacher, student fp32 and student int8 on every suite and write the gate.

    python -m pipeline.stages.evaluate --bundle models/bundle --teacher-dir models/teacher \
        --data data/ingested.parquet --labels data/labels.parquet --suites-root . \
        --gate reports/gate.json --report reports/gate.md --metrics metrics/evaluate.json \
        --calibration models/calibration.json

A failed gate is a result, not a crash: the stage exits 0 and ``reports/gate.json`` says ``passed: false``;
the retrain flow reads it and never makes a failing model the candidate. The work is
:func:`pipeline.evaluate.evaluation.evaluate_stage`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from pipeline import outputs
from pipeline.stages import load_stage_params, run_stage, stage_parser

log = logging.getLogger("distill.evaluate")


def main(argv: Sequence[str] | None = None) -> int:
    parser = stage_parser("distill evaluate", __doc__,
                          "--bundle=bundle --teacher-dir=teacher --data=ingested "
                          "--labels=labels --gate=gate --report=gate_report --metrics=evaluate_metrics")
    parser.add_argument("--suites-root", default=".",
                        help="folder that evaluate.ood.path and evaluate.user.paths are relative to")
    parser.add_argument("--calibration", default=None, help=f"fitted temperature JSON (dvc.yaml passes {outputs.path('calibration')})")

    def body(args) -> None:
        from pipeline.evaluate.evaluation import evaluate_stage, write_outputs

        params = load_stage_params(args)
        result, info = evaluate_stage(params, args.bundle, args.teacher_dir, args.data, args.labels, args.suites_root)
        docs = outputs.paths().get("data_docs")  # a dvc.yaml of your own may not build Data Docs
        write_outputs(result, info, args.gate, args.report, args.metrics, args.calibration, data_docs=docs)
        verdict = result.verdict
        log.info("gate %s: %d checks, %d failing%s", "PASSED" if verdict.passed else "FAILED", len(verdict.checks),
                 len(verdict.failing), "".join(f"\n  - {c.suite} {c.metric} [{c.model}]" for c in verdict.failing))

    return run_stage("evaluate", body, parser, argv)


if __name__ == "__main__":
    raise SystemExit(main())
