r"""Stage ``label``: soft labels from the teacher for every ingested row, augmented text and feedback text.

    python -m pipeline.stages.label --data data/ingested.parquet --teacher-dir models/teacher \
        --out data/labels.parquet --metrics metrics/label.json [--feedback feedback]

Every distinct text is looked up in the label cache first; only the missing ones reach the teacher.
The ingested table is read and labeled ``label.chunk_rows`` rows at a time, and each chunk's rows are
appended to the output as they are labeled. The work is :func:`pipeline.label.label_table`.
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
        from pipeline.label import LabelingFailed, LabelsWriter, label_table
        from pipeline.label.table import ingested_chunks
        from pipeline.teachers import load_teacher

        params = load_stage_params(args)
        fb = None
        if args.feedback:
            from pipeline.monitor.feedback import read_feedback

            fb = read_feedback(args.feedback)
        teacher = load_teacher(params.teacher, args.teacher_dir)
        with LabelsWriter(args.out, teacher.labels) as out:
            _, _, metrics = label_table(ingested_chunks(args.data, params.label.chunk_rows), params, args.teacher_dir,
                                        teacher=teacher, feedback=fb, state_path=args.state, on_rows=out.write)
            write_json(args.metrics, metrics)
            if args.plots:
                from pipeline.label.table import write_rounds_csv

                write_rounds_csv(args.plots, metrics)
            if metrics["failure_rate"] > params.label.max_failure_rate:
                raise LabelingFailed(
                    f"{metrics['failed_rows']} of {metrics['rows']} rows ({metrics['failure_rate']:.1%}) got no "
                    f"teacher label, above label.max_failure_rate={params.label.max_failure_rate:.1%}; reasons: "
                    f"{metrics['failures_by_reason']} (see the log; fix the teacher or raise the threshold)")
            out.commit()

    return run_stage("label", body, parser, argv)


if __name__ == "__main__":
    raise SystemExit(main())
