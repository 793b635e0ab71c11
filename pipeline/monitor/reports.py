"""Evidently reports of one monitor run, the workspace that keeps them, and the project dashboard.

Two snapshots per run, tagged ``drift`` and ``quality``:
- drift: the window against the reference set over the text itself, its descriptors, the predicted
  label and the confidence (every test a p-value, except the text's domain-classifier score), plus
  the row count, mean confidence and label mix;
- quality: the student's predictions with the teacher's labels as the target on the sampled rows
  (accuracy = teacher agreement, per-class recall).
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pipeline.monitor.descriptors import DESCRIPTORS

DRIFT_COLUMNS = ["text", *DESCRIPTORS, "label", "confidence"]
DRIFT_TAG, QUALITY_TAG = "drift", "quality"
# monitor.thresholds recorded in every drift snapshot, drawn as lines beside the values they limit
THRESHOLD_COLUMNS = ("agreement_floor", "drift_share_ceiling")
# Evidently tests whose score is a p-value (drift when below the threshold); the others are distances
# or scores (drift when at or above it). Evidently names a default test "<name> p_value".
P_VALUE_TESTS = {"ks", "chisquare", "z", "fisher_exact", "t_test", "mannw", "anderson", "cramer_von_mises",
                 "g_test", "epps_singleton", "empirical_mmd"}

TAB = "Monitor"


def panels(labels: list[str] | None = None, thresholds=None) -> list[dict[str, Any]]:
    """The dashboard, top to bottom: counters of the latest run, then the series over runs.

    Per-label series carry the label as their legend; the alert thresholds (``monitor.thresholds``) are
    in the subtitles and drawn as lines (each run's drift snapshot records them, :func:`drift_snapshot`).
    docs/monitoring.md lists the same panels."""
    floor = getattr(thresholds, "agreement_floor", None)
    ceiling = getattr(thresholds, "drift_share_ceiling", None)
    agreement = {"metric": "Accuracy", "tags": [QUALITY_TAG]}
    drift = {"metric": "DriftedColumnsCount", "metric_labels": {"value_type": "share"}, "tags": [DRIFT_TAG]}
    confidence = {"metric": "MeanValue", "metric_labels": {"column": "confidence"}, "tags": [DRIFT_TAG]}
    rows = {"metric": "RowCount", "tags": [DRIFT_TAG]}
    alert_low = f"alert below {floor}" if floor is not None else None
    alert_high = f"alert above {ceiling}" if ceiling is not None else None
    names = list(labels or [])
    out = [
        {"title": "Teacher agreement (latest run)", "type": "counter", "subtitle": alert_low,
         "values": [{"legend": "agreement", **agreement}]},
        {"title": "Drift share (latest run)", "type": "counter", "subtitle": alert_high,
         "values": [{"legend": "drift share", **drift}]},
        {"title": "Mean confidence (latest run)", "type": "counter", "subtitle": None,
         "values": [{"legend": "confidence", **confidence}]},
        {"title": "Rows (latest run)", "type": "counter", "subtitle": None, "values": [{"legend": "rows", **rows}]},
        {"title": "Teacher agreement", "type": "line", "subtitle": alert_low,
         "values": [{"legend": "agreement", **agreement},
                    {"legend": "alert below", "metric": "MeanValue", "metric_labels": {"column": "agreement_floor"},
                     "tags": [DRIFT_TAG]}]},
        {"title": "Drift share", "type": "line", "subtitle": alert_high,
         "values": [{"legend": "drifted columns (share)", **drift},
                    {"legend": "alert above", "metric": "MeanValue",
                     "metric_labels": {"column": "drift_share_ceiling"}, "tags": [DRIFT_TAG]}]},
        {"title": "Label mix", "type": "bar", "subtitle": "share of the window's predictions per label",
         "values": ([{"legend": name, "metric": "UniqueValueCount", "tags": [DRIFT_TAG],
                      "metric_labels": {"column": "label", "value_type": "share", "label": name}} for name in names]
                    or [{"legend": "label share", "metric": "UniqueValueCount", "tags": [DRIFT_TAG],
                         "metric_labels": {"column": "label", "value_type": "share"}}])},
        {"title": "Recall against the teacher, per class", "type": "line",
         "subtitle": "share of the teacher's answers of each class the student gave too",
         "values": [{"legend": name, "metric": "RecallByLabel", "tags": [QUALITY_TAG],
                     "metric_labels": {"label": name}} for name in names]},
        {"title": "Confidence", "type": "line", "subtitle": None, "values": [{"legend": "mean confidence", **confidence}]},
        {"title": "Rows per run", "type": "bar", "subtitle": None, "values": [{"legend": "rows", **rows}]},
    ]
    return [p for p in out if p["values"]]


def drift_snapshot(current, reference, timestamp: datetime, metadata: dict[str, Any], thresholds=None):
    """The drift snapshot; with ``thresholds``, their alert limits ride along as constant columns whose
    means are the dashboard's threshold lines (not drift-tested: the preset names its columns)."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import MeanValue, RowCount, UniqueValueCount
    from evidently.presets import DataDriftPreset

    limits = {c: float(getattr(thresholds, c)) for c in THRESHOLD_COLUMNS} if thresholds is not None else {}
    definition = DataDefinition(text_columns=["text"], numerical_columns=[*DESCRIPTORS, "confidence", *limits],
                                categorical_columns=["label"])
    cur = Dataset.from_pandas(current[DRIFT_COLUMNS].assign(**limits), data_definition=definition)
    ref = Dataset.from_pandas(reference[DRIFT_COLUMNS].assign(**limits), data_definition=definition)
    report = Report([
        # p-value tests at every size (Evidently switches to distances past 1,000 rows by default), so
        # one descriptor threshold means the same thing for any window; the text uses a fast
        # domain-classifier score instead of the slow permutation test.
        DataDriftPreset(columns=DRIFT_COLUMNS, num_method="ks", cat_method="chisquare",
                        text_method="abs_text_content_drift"),
        RowCount(), MeanValue(column="confidence"), UniqueValueCount(column="label"),
        *[MeanValue(column=c) for c in limits],
    ], tags=[DRIFT_TAG], metadata=metadata)
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():  # the text test's quick domain classifier stops early by design
        warnings.simplefilter("ignore", ConvergenceWarning)
        return report.run(cur, ref, timestamp=timestamp, name="drift")


def quality_snapshot(sample, timestamp: datetime, metadata: dict[str, Any], labels: list[str] | None = None):
    """Student ``label`` vs teacher ``teacher_label`` on the rows the teacher labeled.

    Two labels (spam/ham) are a binary task for Evidently, with the model's last label as the positive
    class; more labels a multiclass one.
    """
    from evidently import BinaryClassification, DataDefinition, Dataset, MulticlassClassification, Report
    from evidently.presets import ClassificationPreset

    if labels is not None and len(labels) == 2:
        task = BinaryClassification(target="teacher_label", prediction_labels="label", pos_label=labels[-1])
    else:
        task = MulticlassClassification(target="teacher_label", prediction_labels="label")
    definition = DataDefinition(categorical_columns=["label", "teacher_label"], classification=[task])
    data = Dataset.from_pandas(sample[["label", "teacher_label"]], data_definition=definition)
    return Report([ClassificationPreset()], tags=[QUALITY_TAG], metadata=metadata).run(
        data, None, timestamp=timestamp, name="quality")


def _metrics(snapshot) -> list[dict[str, Any]]:
    return snapshot.dict()["metrics"]


def drift_numbers(snapshot) -> dict[str, Any]:
    """Drift share and, per column, the test's method, score and whether it drifted."""
    out: dict[str, Any] = {"columns": {}}
    for m in _metrics(snapshot):
        cfg = m["config"]
        kind = cfg["type"].rsplit(":", 1)[-1]
        if kind == "DriftedColumnsCount":
            out["drifted_columns"] = int(m["value"]["count"])
            out["drift_share"] = float(m["value"]["share"])
        elif kind == "ValueDrift":
            score = float(m["value"])
            is_p = "p_value" in cfg["method"] or cfg["method"] in P_VALUE_TESTS
            out["columns"][cfg["column"]] = {
                "method": cfg["method"], "score": score, "threshold": cfg["threshold"],
                "drifted": score < cfg["threshold"] if is_p else score >= cfg["threshold"], "p_value": is_p}
        elif kind == "RowCount":
            out["rows"] = int(m["value"])
        elif kind == "MeanValue" and cfg.get("column") == "confidence":
            out["mean_confidence"] = float(m["value"])
        elif kind == "UniqueValueCount":
            out["label_mix"] = {k: round(float(v), 4) for k, v in sorted(m["value"]["shares"].items())}
    return out


def quality_numbers(snapshot) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for m in _metrics(snapshot):
        kind = m["config"]["type"].rsplit(":", 1)[-1]
        if kind == "Accuracy":
            out["agreement"] = float(m["value"])
        elif kind == "RecallByLabel":
            out["recall_by_label"] = {k: round(float(v), 4) for k, v in m["value"].items()}
        elif kind == "F1Score":
            out["f1_macro"] = float(m["value"])
    return out


def open_project(workspace: str | Path, name: str, labels: list[str] | None = None, thresholds=None):
    """The workspace's project ``name`` (created on first use), its dashboard brought up to date."""
    from evidently.ui.workspace import Workspace

    ws = Workspace.create(str(workspace))
    found = ws.search_project(name)
    project = found[0] if found else ws.create_project(name, description="distill production monitor: drift of "
                                                       "traffic and agreement of the student with the teacher")
    ensure_dashboard(ws, project, labels, thresholds)
    return ws, project


def _plot(panel: dict[str, Any]):
    from evidently.sdk.models import DashboardPanelPlot, PanelMetric

    params: dict[str, Any] = {"plot_type": panel["type"]}
    if panel["type"] == "counter":
        params["aggregation"] = "last"
    if panel["type"] == "bar":
        params["is_stacked"] = True
    return DashboardPanelPlot(title=panel["title"], subtitle=panel["subtitle"], size="half",
                              values=[PanelMetric(**v) for v in panel["values"]], plot_params=params)


def _signature(plot) -> tuple:
    return (plot.title, plot.subtitle, tuple(sorted(plot.plot_params.items())),
            tuple((v.legend, v.metric, tuple(sorted(v.metric_labels.items()))) for v in plot.values))


def ensure_dashboard(ws, project, labels: list[str] | None = None, thresholds=None) -> None:
    """Make the project's dashboard :func:`panels` in one tab: left as it is when it matches, rewritten whole
    when not (a new label, a changed threshold, an older layout), so re-runs never duplicate panels."""
    from evidently.sdk.models import DashboardModel, DashboardTabModel

    wanted = [_plot(p) for p in panels(labels, thresholds)]
    if [_signature(p) for p in project.dashboard.model().panels] == [_signature(p) for p in wanted]:
        return
    ws.save_dashboard(project.id, DashboardModel(tabs=[DashboardTabModel(title=TAB, panels=[p.id for p in wanted])],
                                                 panels=wanted))


def save_snapshots(ws, project, snapshots) -> list[str]:
    return [str(ws.add_run(project.id, snap).id) for snap in snapshots]


def now_utc() -> datetime:
    return datetime.now(timezone.utc)
