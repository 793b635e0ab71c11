"""Stage ``label``: soft labels from the teacher for every ingested row plus augmented transfer texts.

    python -m pipeline.label --data data/ingested.parquet --teacher-dir models/teacher \
        --out data/labels.parquet --metrics metrics/label.json

Parts: ``cache`` (content-addressed SQLite cache), ``calls`` (batches, retries, splitting),
``scale`` (Dask workers), ``progress`` (bar or log lines), ``stage`` (the table and the entry point).
"""

from pipeline.label.stage import LabelingFailed, label_table, main

__all__ = ["LabelingFailed", "label_table", "main"]
