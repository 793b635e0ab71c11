"""Stage ``teacher``: fit (``embedding-head``) or check the configured teacher into ``models/teacher/``.

    python -m pipeline.stages.teacher --data data/ingested.parquet --out models/teacher

The work is :func:`pipeline.teachers.prepare.prepare_teacher`.
"""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.stages import load_stage_params, run_stage, stage_parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = stage_parser("distill teacher", __doc__, "--data=ingested --out=teacher")

    def body(args) -> None:
        from pipeline.outputs import read_ingested
        from pipeline.teachers.prepare import prepare_teacher

        params = load_stage_params(args)
        labeled = read_ingested(args.data, ("id", "text", "split", "label"), splits=("labeled",))  # all it fits on
        prepare_teacher(params.teacher, labeled, args.out, params.seed)

    return run_stage("teacher", body, parser, argv)


if __name__ == "__main__":
    raise SystemExit(main())
