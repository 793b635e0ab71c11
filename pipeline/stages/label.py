r"""Stage ``label``: soft labels from the teacher for every ingested row, augmented text and feedback text.

    python -m pipeline.stages.label --data data/ingested.parquet --teacher-dir models/teacher \
        --out data/labels.parquet --metrics metrics/label.json [--feedback feedback]

Every distinct text is looked up in the label cache first; only the missing ones reach the teacher.
The work is :func:`pipeline.label.label_table`.
"""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.stages import load_stage_params, run_stage, stage_parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = stage_parser("distill label", __doc__,
                          "--data=ingested --teacher-dir=teacher --out=labels --metrics=label_metrics")
    parser.add_argument("--feedback", default=None,
                        help="folder of monitor feedback parts (feedback/): disagreements join the transfer set")
    parser.add_argument("--state", default=None,
                        help="rounds of budgeted / active labeling (chosen ids per round; a resumed run continues it)")
    parser.add_argument("--plots", default=None, help="folder for rounds.csv (round, texts sent, validation agreement)")

    def body(args) -> None:
        from pipeline.io import write_json
        from pipeline.label import LabelingFailed, label_table, write_labels
        from pipeline.outputs import read_ingested

        params = load_stage_params(args)
        fb = None
        if args.feedback:
            from pipeline.monitor.feedback import read_feedback

            fb = read_feedback(args.feedback)
        kept, labels, metrics = label_table(read_ingested(args.data, ("id", "text", "split")), params,
                                            args.teacher_dir, feedback=fb, state_path=args.state)
        write_json(args.metrics, metrics)
        if args.plots:
            from pipeline.label.table import write_rounds_csv

            write_rounds_csv(args.plots, metrics)
        if metrics["failure_rate"] > params.label.max_failure_rate:
            raise LabelingFailed(
                f"{metrics['failed_rows']} of {metrics['rows']} rows ({metrics['failure_rate']:.1%}) got no teacher "
                f"label, above label.max_failure_rate={params.label.max_failure_rate:.1%}; reasons: "
                f"{metrics['failures_by_reason']} (see the log; fix the teacher or raise the threshold)")
        write_labels(args.out, kept, labels)

    return run_stage("label", body, parser, argv)


if __name__ == "__main__":
    raise SystemExit(main())
