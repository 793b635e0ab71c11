"""Step ``monitor`` (not a DVC stage: it reads the live prediction log): one run of the production monitor.

    distill monitor [--params params.yaml] [--bundle models/bundle] [--data data/ingested.parquet]
                    [--teacher-dir models/teacher] [--log-url sqlite:///.distill/predictions.db]

Writes ``monitor.report_path``, two snapshots into the Evidently workspace, and a feedback part when the
student and the teacher disagreed. The work is :func:`pipeline.monitor.run_monitor`; the scheduled
Prefect flow (flows/monitor.py) calls the same function.
"""

from __future__ import annotations

from collections.abc import Sequence

from pipeline import outputs
from pipeline.stages import load_stage_params, run_stage, stage_parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = stage_parser("distill monitor", __doc__)
    known = outputs.paths()
    parser.add_argument("--bundle", default=None,
                        help=f"student bundle (predictions on the reference set; default {known.get('bundle')})")
    parser.add_argument("--data", default=None,
                        help=f"ingested table (reference rows, vocabulary; default {known.get('ingested')})")
    parser.add_argument("--teacher-dir", default=None, help=f"teacher directory (default {known.get('teacher')})")
    parser.add_argument("--log-url", default=None, help="prediction log URL (default: env or .distill/predictions.db)")

    def body(args) -> None:
        from pipeline.monitor import run_monitor

        result = run_monitor(load_stage_params(args), bundle_dir=args.bundle, ingested_path=args.data,
                             teacher_dir=args.teacher_dir, log_url=args.log_url)
        print(f"monitor: {result.status}; report {result.summary.report_path}")

    return run_stage("monitor", body, parser, argv)


if __name__ == "__main__":
    raise SystemExit(main())
