"""The label stage with the real llm teacher against a local OpenAI-compatible server.

Per-text failures are recorded with their reason and never written; a re-run asks only for them.
"""

import pytest
import yaml

from pipeline.config import load_params
from pipeline.label import label_table
from tests.fake_openai import FakeOpenAI, completion, keyword_model
from tests.helpers.labeling import write_ingested

pytestmark = pytest.mark.integration


def test_label_stage_records_llm_failures_and_retries_only_them(tmp_path):
    import pandas as pd

    good = keyword_model({"refund": "A", "parcel": "B"}, default="C")
    broken = {"text": None}

    def respond(req):
        if req.text == broken["text"]:
            return completion("no idea")  # not a label code: malformed
        return good(req)

    frame = pd.read_parquet(write_ingested(tmp_path / "ingested.parquet", 12))
    broken["text"] = frame["text"].iloc[5]
    with FakeOpenAI(respond) as server:
        params_path = tmp_path / "params.yaml"
        params_path.write_text(yaml.safe_dump({
            "ingest": {},
            "teacher": {"kind": "llm", "llm": {"base_url": server.base_url, "max_retries": 1,
                                               "backoff_base_s": 0.01,
                                               "labels": {"billing": "money", "delivery": "parcels", "other": "rest"}}},
            "label": {"cache_dir": str(tmp_path / "cache"), "batch_size": 4},
        }))
        params = load_params(params_path)
        kept, labels, metrics = label_table(frame, params, tmp_path / "teacher")
        assert labels == ["billing", "delivery", "other"]
        assert metrics["failed_texts"] == 1 and metrics["failures_by_reason"] == {"malformed answer": 1}
        assert broken["text"] not in set(kept["text"]) and len(kept) == len(frame) - 1
        refund = kept[kept["text"].str.startswith("refund")]
        assert (refund["pred"] == "billing").all()
        assert metrics["usage"]["prompt_tokens"] > 0

        asked_before = len(server.requests)
        kept2, _, metrics2 = label_table(frame, params, tmp_path / "teacher")
        assert metrics2["cache_hits"] == len(frame) - 1 and metrics2["cache_misses"] == 1
        assert {r.text for r in server.requests[asked_before:]} == {broken["text"]}
