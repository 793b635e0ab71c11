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

The stage streams (:func:`validate_file`): a first pass gathers what the cross-row rules need as
hashes (the label set, class counts, leaking texts, repeated ids), then the suite runs on each row
group of the table and the counts are summed; ``gx_results`` in the report holds one result per
batch (``table``, ``table.2``, ...). On a table of one row group the outcome is :func:`validate`'s.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np


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


class _Facts:
    """What the cross-row rules need, gathered in one pass over the table's batches: the row count, the
    columns, the labeled rows per class, and per row whether its text leaks between ``test`` and the
    training splits and whether its id repeats. Texts and ids are kept as 16-byte hashes, not strings."""

    def __init__(self, batches: Iterable["pd.DataFrame"]):
        self.rows, self.batches, self.columns = 0, 0, []
        self.labeled: Counter = Counter()
        text_keys, text_rows, is_test, id_keys, id_rows = [], [], [], [], []
        for frame in batches:
            if not self.batches:
                self.columns = list(frame.columns)
            present = set(frame.columns)
            if {"split", "label"} <= present:
                self.labeled.update(frame.loc[frame["split"] == "labeled", "label"].dropna().tolist())
            if {"split", "text"} <= present:
                texts = frame["text"].notna().to_numpy()
                text_keys.append(_keys(frame["text"][texts]))
                text_rows.append(self.rows + np.flatnonzero(texts))
                is_test.append((frame["split"] == "test").to_numpy()[texts])
            if "id" in present:
                ids = frame["id"].notna().to_numpy()
                id_keys.append(_keys(frame["id"][ids]))
                id_rows.append(self.rows + np.flatnonzero(ids))
            self.rows += len(frame)
            self.batches += 1
        self.leak = self.repeated = None
        if text_keys:
            self.leak = np.zeros(self.rows, dtype=bool)
            order, run = _runs(np.concatenate(text_keys))
            test = np.concatenate(is_test)[order]
            both = np.zeros(run[-1] + 1 if len(run) else 0, dtype=np.int8)
            np.bitwise_or.at(both, run, np.where(test, 1, 2).astype(np.int8))
            self.leak[np.concatenate(text_rows)[order][both[run] == 3]] = True
        if id_keys:
            self.repeated = np.zeros(self.rows, dtype=bool)
            order, run = _runs(np.concatenate(id_keys))
            size = np.bincount(run) if len(run) else np.zeros(0, dtype=np.int64)
            self.repeated[np.concatenate(id_rows)[order][size[run] > 1]] = True

    def label_set(self) -> list[str]:
        return sorted({str(label) for label in self.labeled})

    def class_shares(self) -> "pd.DataFrame":
        import pandas as pd

        # descending counts, ties as pandas' value_counts orders them (it sorts the first-seen order)
        counts = pd.Series(list(self.labeled.values()), index=list(self.labeled.keys()),
                           dtype="int64").sort_values(ascending=False)
        total = int(counts.sum())
        share = (counts.values / max(total, 1)).astype(float)
        # share_of_even: the class's share over an even one (1/k); 1.0 = exactly balanced
        return pd.DataFrame({"label": counts.index.astype(str), "rows": counts.values, "share": share,
                             "share_of_even": share * max(len(counts), 1)})


def _keys(values: "pd.Series") -> np.ndarray:
    """(n, 2) uint64: the first 16 bytes of sha256 of each value's text (equal keys: equal values)."""
    raw = b"".join(hashlib.sha256((v if isinstance(v, str) else f"\0{type(v).__name__}:{v!r}").encode(
        "utf-8", "surrogatepass")).digest()[:16] for v in values)
    return np.frombuffer(raw, dtype=np.uint64).reshape(-1, 2)


def _runs(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The order that sorts ``keys`` and, per sorted position, the number of its run of equal keys."""
    order = np.lexsort((keys[:, 1], keys[:, 0]))
    ranked = keys[order]
    starts = np.r_[len(ranked) > 0, (ranked[1:] != ranked[:-1]).any(axis=1)] if len(ranked) else np.zeros(0, bool)
    return order, np.cumsum(starts) - 1


def _suites(columns: list[str], labels: list[str], cfg: "ValidateConfig"):
    """(name, expectation) pairs for the main table and for the class-share table; ``labels``: the labels
    of the labeled split (the label set unless ``validate.labels`` names it)."""
    import great_expectations.expectations as gxe
    from great_expectations.expectations.row_conditions import Column

    def named(name: str, expectation):
        expectation.meta = {"name": name}
        return name, expectation

    main = [named(f"column_exists:{c}", gxe.ExpectColumnToExist(column=c)) for c in REQUIRED_COLUMNS]
    present = set(columns)
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
        labels = cfg.labels if cfg.labels is not None else labels
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
    """A failing row for the message: long texts cut, NumPy scalars as plain numbers (shares to 4 digits)."""
    def plain(v: Any) -> Any:
        if isinstance(v, str):
            return v[:width] + "..." if len(v) > width else v
        if isinstance(v, np.generic):
            v = v.item()
        return round(v, 4) if isinstance(v, float) else v
    return {k: plain(v) for k, v in row.items()}


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
    """Run the suite on ``table`` in memory; never raises on bad data (see :func:`check` for the raising form).

    With ``docs_dir``, Great Expectations' Data Docs of this run (the suites, and each validation with its
    failing rows) are built there, replacing what an earlier run left: open ``<docs_dir>/index.html``."""
    return _validate(lambda: iter([table]), cfg, docs_dir)


def validate_file(path: str | Path, cfg: "ValidateConfig", docs_dir: str | Path | None = None) -> ValidationOutcome:
    """Run the suite on a Parquet table (``data/ingested.parquet``), one row group batch at a time
    (:data:`pipeline.io.PARQUET_ROW_GROUP` rows), so memory holds one batch plus about 40 bytes per row.

    A table of one batch gives exactly :func:`validate`'s outcome. With more, every row-wise expectation
    runs on each batch and the counts are summed. Uniqueness needs every copy of an id in one batch: rows
    whose id repeats anywhere in the table are taken out of their batch and validated together in a last
    batch. Leakage and class shares come from the whole table (see :class:`_Facts`)."""
    import pyarrow.parquet as pq

    from pipeline.io import PARQUET_ROW_GROUP
    from pipeline.outputs import read_ingested

    path = Path(path)
    if not path.exists():
        read_ingested(path)  # the error that says which stage to run

    def batches():
        for batch in pq.ParquetFile(path).iter_batches(batch_size=PARQUET_ROW_GROUP):
            yield batch.to_pandas()

    return _validate(batches, cfg, docs_dir)


def _validate(batches, cfg: "ValidateConfig", docs_dir: str | Path | None) -> ValidationOutcome:
    import logging

    import pandas as pd

    logging.getLogger("great_expectations").setLevel(logging.WARNING)  # its INFO lines drown the stage log
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    facts = _Facts(batches())
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    if docs_dir is not None:
        import shutil

        shutil.rmtree(docs_dir, ignore_errors=True)
        context.add_data_docs_site(site_name=DOCS_SITE, site_config={
            "class_name": "SiteBuilder", "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(Path(docs_dir).resolve())}})
    source = context.data_sources.add_pandas("ingested")
    main_suite, share_suite = _suites(facts.columns, facts.label_set(), cfg)
    split_out = facts.batches > 1 and facts.repeated is not None and facts.repeated.any()

    def table_batches():
        start, held = 0, []
        for frame in batches():
            rows = slice(start, start + len(frame))
            start += len(frame)
            if facts.leak is not None:
                frame = frame.assign(test_text_leak=facts.leak[rows])
            if split_out:
                repeated = facts.repeated[rows]
                held.append(frame[repeated])
                frame = frame[~repeated]
                if frame.empty:
                    continue
            yield frame
        if held:
            yield pd.concat(held)

    runs = [("table", table_batches, main_suite, ["id"] if "id" in facts.columns else []),
            ("labeled_class_shares", lambda: iter([facts.class_shares()]) if share_suite else iter(()), share_suite,
             ["label", "rows"])]  # a failing class is named with its labeled rows

    gx_results, merged = {}, {}
    for asset_name, data, expectations, index_columns in runs:
        if not expectations:
            continue
        definition_batches = source.add_dataframe_asset(asset_name).add_batch_definition_whole_dataframe("all")
        suite = context.suites.add(gx.ExpectationSuite(name=asset_name))
        for _, expectation in expectations:
            suite.add_expectation(expectation)
        result_format = {"result_format": "SUMMARY", "partial_unexpected_count": max(cfg.examples, 1)}
        if index_columns:
            result_format["unexpected_index_column_names"] = index_columns
        definition = context.validation_definitions.add(gx.ValidationDefinition(name=asset_name,
                                                                                data=definition_batches, suite=suite))
        for n, frame in enumerate(data(), 1):
            result = definition.run(batch_parameters={"dataframe": frame}, result_format=result_format)
            gx_results[asset_name if n == 1 else f"{asset_name}.{n}"] = result.to_json_dict()  # one key per batch
            for r in result.results:
                _merge(merged, _readable(r, cfg.examples), bool(r.success), cfg.examples)

    if docs_dir is not None:
        context.build_data_docs(site_names=[DOCS_SITE])
    failures = [item for item, ok in merged.values() if not ok]
    success = not failures
    per_expectation = {item["name"]: {"success": ok, "unexpected_count": item["unexpected_count"],
                                      "element_count": item["element_count"]} for item, ok in merged.values()}
    metrics = {"success": success, "rows": facts.rows, "failed": [f["name"] for f in failures],
               "expectations": dict(sorted(per_expectation.items()))}
    report = {"success": success, "failures": failures, "gx_results": gx_results}
    return ValidationOutcome(success, failures, metrics, report)


def _merge(merged: dict, item: dict[str, Any], ok: bool, examples: int) -> None:
    """Add one batch's result of an expectation: counts summed, examples kept up to ``examples``."""
    name = item["name"]
    if name not in merged:
        merged[name] = (item, ok)
        return
    seen, seen_ok = merged[name]
    for key in ("unexpected_count", "element_count"):
        if isinstance(seen[key], int) and isinstance(item[key], int):
            seen[key] += item[key]
    seen["examples"] = (seen["examples"] + item["examples"])[:examples]
    if item.get("error"):
        seen["error"] = "; ".join(e for e in (seen.get("error"), item["error"]) if e)
    merged[name] = (seen, seen_ok and ok)


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
