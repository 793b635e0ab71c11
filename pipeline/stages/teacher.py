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


def check_gold_labels(labeled, labels: list[str]) -> None:
    """The labeled rows' gold labels are the teacher's labels (distill and evaluate stop on any other)."""
    from pipeline.errors import DataError

    known = set(labels)
    gold = labeled["label"].dropna().astype(str)
    unknown = gold[~gold.isin(known)].value_counts()
    if len(unknown):
        shown = ", ".join(f"{name!r} ({rows} rows)" for name, rows in unknown.head(10).items())
        raise DataError(f"gold labels of the labeled rows are not among the teacher's labels "
                        f"({', '.join(labels)}): {shown}. Checked before labeling: rename them in the data, or "
                        "fix the teacher's label names (teacher.llm.labels, or id2label in an hf model's config.json)")


def check_user_suites(params, labels: list[str], root: str) -> None:
    """Every case of the user suites names one of ``labels`` (the evaluate stage's own check, run early)."""
    from pipeline.errors import DataError
    from pipeline.evaluate.suitefile import SuiteFileError, load_suites

    if "user" not in params.evaluate.suites:
        return
    try:
        load_suites(params.evaluate.user.paths, root, labels=labels)
    except SuiteFileError as exc:
        raise DataError(f"{exc}. Checked before labeling: evaluate.user.paths "
                        f"({', '.join(params.evaluate.user.paths) or 'none'}) must name suite files written for "
                        "the teacher's labels (docs/evaluation.md shows the format), or be [] for none") from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = stage_parser("distill teacher", __doc__, "--data=ingested --out=teacher")
    parser.add_argument("--suites-root", default=None,
                        help="check the user suites (evaluate.user.paths, relative to this folder) against the "
                             "teacher's labels before any labeling; dvc.yaml passes the project")

    def body(args) -> None:
        from pipeline.outputs import read_ingested
        from pipeline.teachers.prepare import prepare_teacher

        params = load_stage_params(args)
        labeled = read_ingested(args.data, ("id", "text", "split", "label"), splits=("labeled",))  # all it fits on
        record = prepare_teacher(params.teacher, labeled, args.out, params.seed)
        check_gold_labels(labeled, list(record["labels"]))
        if args.suites_root is not None:
            check_user_suites(params, list(record["labels"]), args.suites_root)

    return run_stage("teacher", body, parser, argv)


if __name__ == "__main__":
    raise SystemExit(main())
