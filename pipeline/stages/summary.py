"""Stage ``summary``: the run's headline numbers for ``dvc metrics show`` (keys: pipeline/summary.py).

    python -m pipeline.stages.summary --label metrics/label.json --export metrics/export.json \
        --evaluate metrics/evaluate.json --out metrics/summary.json
"""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.stages import run_stage, stage_parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = stage_parser("distill summary", __doc__, "--label=label_metrics --export=export_metrics "
                          "--evaluate=evaluate_metrics --out=summary_metrics")

    def body(args) -> None:
        from pipeline.io import read_json, write_json
        from pipeline.summary import summarize

        write_json(args.out, summarize(read_json(args.label), read_json(args.export), read_json(args.evaluate)))

    return run_stage("summary", body, parser, argv)


if __name__ == "__main__":
    raise SystemExit(main())
