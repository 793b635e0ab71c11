"""Labeling: soft labels from the teacher for every ingested row plus augmented transfer texts.

Entry: ``python -m pipeline.stages.label`` (pipeline/stages/label.py). Parts: ``cache``
(content-addressed SQLite cache), ``calls`` (batches, retries, splitting, cached calls), ``scale``
(Dask workers), ``progress`` (bar or log lines), ``table`` (the labels table and its file).
"""

from pipeline.label.table import LabelingFailed, LabelsWriter, label_table, write_labels

__all__ = ["LabelingFailed", "LabelsWriter", "label_table", "write_labels"]
