"""Stage ``ingest``: read the configured source into one table with deterministic splits.

    python -m pipeline.stages.ingest --out data/ingested.parquet --metrics metrics/ingest.json [--set ingest.spamassassin.per_group=50]

The work is :func:`pipeline.ingest.ingest_to` (sources, cleaning, splits: see that package); it streams
the source in batches, so the table never has to fit in memory.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from pipeline.stages import load_stage_params, run_stage, stage_parser

log = logging.getLogger("distill.ingest")


def main(argv: Sequence[str] | None = None) -> int:
    parser = stage_parser("distill ingest", __doc__, "--out=ingested --metrics=ingest_metrics")

    def body(args) -> None:
        from pipeline.ingest import ingest_to
        from pipeline.io import write_json

        params = load_stage_params(args)
        report = ingest_to(args.out, params.ingest, params.seed)
        write_json(args.metrics, report)
        log.info("ingest: %d rows %s; dropped %s; capped %s", report["rows"], report["splits"], report["dropped"],
                 report["capped"])

    return run_stage("ingest", body, parser, argv)


if __name__ == "__main__":
    raise SystemExit(main())
