"""Stage ``validate``: the Great Expectations suite over the ingested table; failing data stops the run.

    python -m pipeline.stages.validate --data data/ingested.parquet --report reports/validation.json --metrics metrics/validate.json \
        [--docs reports/data-docs]

With ``--docs``, Great Expectations' Data Docs of the run are built there (``index.html``).

The work is :func:`pipeline.validate.validate_file` (the expectations are listed there); it reads the
table one row group at a time.
"""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.stages import load_stage_params, run_stage, stage_parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = stage_parser("distill validate", __doc__,
                          "--data=ingested --report=validation_report --metrics=validate_metrics")
    parser.add_argument("--docs", default=None, metavar="DIR", help="build Great Expectations Data Docs here "
                        "(dvc.yaml passes the data_docs path)")

    def body(args) -> None:
        from pipeline.errors import ValidationFailed
        from pipeline.io import write_json
        from pipeline.validate import format_failures, validate_file

        params = load_stage_params(args)
        outcome = validate_file(args.data, params.validate_, docs_dir=args.docs)
        write_json(args.report, outcome.report)
        write_json(args.metrics, outcome.metrics)
        if not outcome.success:
            docs = f"; Data Docs: {args.docs}/index.html" if args.docs else ""
            raise ValidationFailed(f"{args.data}: {format_failures(outcome.failures)}\nfull result: {args.report}{docs}")

    return run_stage("validate", body, parser, argv)


if __name__ == "__main__":
    raise SystemExit(main())
