"""Stage ``teacher``: fit (``embedding-head``) or check the configured teacher into ``models/teacher/``.

    python -m pipeline.stages.teacher --data data/ingested.parquet --out models/teacher --suites-root .

The work is :func:`pipeline.teachers.prepare.prepare_teacher`. Then two checks the later stages would
make after labeling and training are made here, before the teacher labels anything: the labeled rows'
gold labels must be the teacher's labels, and with ``--suites-root`` (dvc.yaml passes the project) the
user suites of ``evaluate.user.paths`` must name only those labels.
"""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.stages import load_stage_params, run_stage, stage_parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = stage_parser("distill teacher", __doc__, "--data=ingested --out=teacher")
    parser.add_argument("--suites-root", default=None,
                        help="check the user suites (evaluate.user.paths, relative to this folder) against the "
                             "teacher's labels before any labeling; dvc.yaml passes the project")

    def body(args) -> None:
        from pipeline.outputs import read_ingested
        from pipeline.teachers.prepare import check_gold_labels, check_user_suites, prepare_teacher

        params = load_stage_params(args)
        labeled = read_ingested(args.data, ("id", "text", "split", "label"), splits=("labeled",))  # all it fits on
        record = prepare_teacher(params.teacher, labeled, args.out, params.seed)
        check_gold_labels(labeled, list(record["labels"]))
        if args.suites_root is not None:
            check_user_suites(params, list(record["labels"]), args.suites_root)

    return run_stage("teacher", body, parser, argv)


if __name__ == "__main__":
    raise SystemExit(main())
