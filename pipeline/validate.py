"""validate: a Great Expectations suite over the ingested table; failing data stops the pipeline.

    python -m pipeline.validate --data data/ingested.parquet --report reports/validation.json --metrics metrics/validate.json

Expectations (each named, so a failure says which rule broke): required columns, non-empty text,
text length within ``validate.min_chars..max_chars``, split in {labeled, unlabeled, test}, labeled
rows carry a label, labels in the label set (``validate.labels`` or the labels of the labeled
split), unique ids, no text shared between ``test`` and the training splits (leakage), a non-empty
labeled split, and every class holding at least ``min_class_ratio`` of an even share (1/k) of the
labeled rows (plus, when set, ``min_class_share`` of them) and at most ``max_class_share``.

Leakage and class shares are not single-column rules, so they run on derived data: a boolean
column ``test_text_leak`` on the table, and a small per-class table of labeled shares. The full GX
result is always written to ``--report``; on failure :class:`ValidationFailed` carries a readable
summary (expectation, failing rows, a few examples). GX is imported inside :func:`validate`
because its import costs seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any


if TYPE_CHECKING:
    import pandas as pd

    from pipeline.config.validate import ValidateConfig

REQUIRED_COLUMNS = ["id", "text", "label", "split", "source", "group"]
SPLITS = ["labeled", "unlabeled", "test"]


@dataclass
class ValidationOutcome:
    success: bool
    failures: list[dict[str, Any]]  # readable: name, expectation, unexpected_count, element_count, examples
    metrics: dict[str, Any]  # content of metrics/validate.json
    report: dict[str, Any]  # content of the --report file (includes the full GX result)


DOCS_SITE = "distill"


def _with_leak_column(table: "pd.DataFrame") -> "pd.DataFrame":
    """Copy of the table with ``test_text_leak``: the row's text occurs both in test and in a training split."""
    frame = table.copy()
    is_test = frame["split"] == "test"
    shared = set(frame.loc[is_test, "text"].dropna()) & set(frame.loc[~is_test, "text"].dropna())
    frame["test_text_leak"] = frame["text"].isin(shared)
    return frame


def _class_shares(table: "pd.DataFrame") -> "pd.DataFrame":
    import pandas as pd

    labels = table.loc[table["split"] == "labeled", "label"].dropna()
    counts = labels.value_counts()
    share = (counts.values / max(len(labels), 1)).astype(float)
    # share_of_even: the class's share over an even one (1/k); 1.0 = exactly balanced
    return pd.DataFrame({"label": counts.index.astype(str), "rows": counts.values, "share": share,
                         "share_of_even": share * max(len(counts), 1)})


def _suites(table: "pd.DataFrame", cfg: "ValidateConfig"):
    """(name, expectation) pairs for the main table and for the class-share table."""
    import great_expectations.expectations as gxe
    from great_expectations.expectations.row_conditions import Column

    def named(name: str, expectation):
        expectation.meta = {"name": name}
        return name, expectation

    main = [named(f"column_exists:{c}", gxe.ExpectColumnToExist(column=c)) for c in REQUIRED_COLUMNS]
    present = set(table.columns)
    if "text" in present:
        main += [
            named("text_not_null", gxe.ExpectColumnValuesToNotBeNull(column="text")),
            named("text_not_empty", gxe.ExpectColumnValuesToNotMatchRegex(column="text", regex=r"^\s*$")),
            named("text_length", gxe.ExpectColumnValueLengthsToBeBetween(column="text", min_value=cfg.min_chars,
                                                                        max_value=cfg.max_chars)),
        ]
    if "id" in present:
        main += [named("id_not_null", gxe.ExpectColumnValuesToNotBeNull(column="id")),
                 named("id_unique", gxe.ExpectColumnValuesToBeUnique(column="id"))]
    if "split" in present:
        main.append(named("split_in_set", gxe.ExpectColumnValuesToBeInSet(column="split", value_set=SPLITS)))
    if {"split", "label"} <= present:
        labels = cfg.labels if cfg.labels is not None else sorted(
            table.loc[table["split"] == "labeled", "label"].dropna().astype(str).unique())
        main += [
            named("labeled_rows_have_label", gxe.ExpectColumnValuesToNotBeNull(
                column="label", row_condition=Column("split") == "labeled")),
            named("label_in_label_set", gxe.ExpectColumnValuesToBeInSet(column="label", value_set=labels)),
        ]
    if {"split", "text"} <= present:
        main.append(named("no_test_leakage", gxe.ExpectColumnValuesToBeInSet(column="test_text_leak",
                                                                            value_set=[False])))
    shares = []
    if {"split", "label"} <= present:
        shares = [
            named("labeled_split_not_empty", gxe.ExpectTableRowCountToBeBetween(min_value=1)),
            named("class_share", gxe.ExpectColumnValuesToBeBetween(column="share", min_value=cfg.min_class_share,
                                                                   max_value=cfg.max_class_share)),
            named("class_share_of_even", gxe.ExpectColumnValuesToBeBetween(column="share_of_even",
                                                                           min_value=cfg.min_class_ratio)),
        ]
    return main, shares


def _example(row: dict[str, Any], width: int = 80) -> dict[str, Any]:
    return {k: (v[:width] + "..." if isinstance(v, str) and len(v) > width else v) for k, v in row.items()}


def _readable(result, examples: int) -> dict[str, Any]:
    res = result.result or {}
    exc = result.exception_info or {}
    raised = [v.get("exception_message") for v in exc.values() if isinstance(v, dict) and v.get("raised_exception")]
    if exc.get("raised_exception"):
        raised.append(exc.get("exception_message"))
    rows = res.get("partial_unexpected_index_list") or res.get("unexpected_index_list") or []
    if not rows:
        rows = [{"value": v} for v in res.get("partial_unexpected_list") or []]
    out = {
        "name": (result.expectation_config.meta or {}).get("name", result.expectation_config.type),
        "expectation": result.expectation_config.type,
        "column": result.expectation_config.kwargs.get("column"),
        "unexpected_count": res.get("unexpected_count"),
        "element_count": res.get("element_count", res.get("observed_value")),
        "examples": [_example(r) for r in rows[:examples]],
    }
    if raised:
        out["error"] = "; ".join(str(m) for m in raised if m)
    return out


def validate(table: "pd.DataFrame", cfg: "ValidateConfig", docs_dir: str | Path | None = None) -> ValidationOutcome:
    """Run the suite on ``table``; never raises on bad data (see :func:`check` for the raising form).

    With ``docs_dir``, Great Expectations' Data Docs of this run (the suites, and each validation with its
    failing rows) are built there, replacing what an earlier run left: open ``<docs_dir>/index.html``."""
    import logging

    logging.getLogger("great_expectations").setLevel(logging.WARNING)  # its INFO lines drown the stage log
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    if docs_dir is not None:
        import shutil

        shutil.rmtree(docs_dir, ignore_errors=True)
        context.add_data_docs_site(site_name=DOCS_SITE, site_config={
            "class_name": "SiteBuilder", "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(Path(docs_dir).resolve())}})
    source = context.data_sources.add_pandas("ingested")
    main_suite, share_suite = _suites(table, cfg)
    frame = _with_leak_column(table) if {"split", "text"} <= set(table.columns) else table
    runs = [("table", frame, main_suite, ["id"] if "id" in frame.columns else []),
            ("labeled_class_shares", _class_shares(table) if share_suite else None, share_suite, ["label"])]

    gx_results, failures, per_expectation = {}, [], {}
    for asset_name, data, expectations, index_columns in runs:
        if not expectations:
            continue
        batches = source.add_dataframe_asset(asset_name).add_batch_definition_whole_dataframe("all")
        suite = context.suites.add(gx.ExpectationSuite(name=asset_name))
        for _, expectation in expectations:
            suite.add_expectation(expectation)
        result_format = {"result_format": "SUMMARY", "partial_unexpected_count": max(cfg.examples, 1)}
        if index_columns:
            result_format["unexpected_index_column_names"] = index_columns
        definition = context.validation_definitions.add(gx.ValidationDefinition(name=asset_name, data=batches,
                                                                                suite=suite))
        result = definition.run(batch_parameters={"dataframe": data}, result_format=result_format)
        gx_results[asset_name] = result.to_json_dict()
        for r in result.results:
            item = _readable(r, cfg.examples)
            per_expectation[item["name"]] = {"success": bool(r.success), "unexpected_count": item["unexpected_count"],
                                             "element_count": item["element_count"]}
            if not r.success:
                failures.append(item)

    if docs_dir is not None:
        context.build_data_docs(site_names=[DOCS_SITE])
    success = not failures
    metrics = {"success": success, "rows": len(table), "failed": [f["name"] for f in failures],
               "expectations": dict(sorted(per_expectation.items()))}
    report = {"success": success, "failures": failures, "gx_results": gx_results}
    return ValidationOutcome(success, failures, metrics, report)


def format_failures(failures: list[dict[str, Any]]) -> str:
    """Readable summary: one block per failed expectation with counts and a few examples."""
    lines = [f"{len(failures)} expectation(s) failed:"]
    for f in failures:
        count = f"{f['unexpected_count']} of {f['element_count']} rows" if f["unexpected_count"] is not None else \
            f"observed {f['element_count']}"
        lines.append(f"- {f['name']} ({f['expectation']}{', column ' + f['column'] if f['column'] else ''}): {count}")
        if f.get("error"):
            lines.append(f"    error: {f['error']}")
        for ex in f["examples"]:
            lines.append(f"    e.g. {ex}")
    return "\n".join(lines)
