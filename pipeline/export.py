"""Export: student checkpoint -> ONNX fp32 + int8 bundle, parity-checked and timed (the ``export`` stage's work).

    python -m pipeline.stages.export --checkpoint models/student/checkpoint.pt --data data/ingested.parquet \
        --labels data/labels.parquet --out models/bundle --metrics metrics/export.json

Reads the ``export`` params section. The ONNX graph takes the featurizer's int64 id matrix ``ids``
``[batch, length]`` (both dynamic) and returns ``logits``; it is exported with the legacy TorchScript
exporter (fast, one file) and quantized with onnxruntime dynamic int8 (QUInt8 weights by default:
QInt8 saturates on CPUs without VNNI). Parity of torch vs ONNX fp32 vs int8 is measured on the first
``export.parity_rows`` evaluation rows (test split first, then transfer texts; the stage reads only as
many as parity and timing use, in Parquet batches) and the stage fails when label agreement or
the largest probability difference breaches ``export.min_label_agreement`` / ``export.max_prob_diff``
/ ``export.max_fp32_prob_diff``. Latency and throughput are measured through
:func:`pipeline.bundle.load_bundle`, i.e. featurization included, as serving sees it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import DistillError

log = logging.getLogger("distill.export")

FP32, INT8, TOKENIZER = "model.onnx", "model.int8.onnx", "tokenizer.json"
SPEED_TEXTS = 2000  # texts of the throughput measurement (repeated when the evaluation rows are fewer)


class ParityError(DistillError):
    """The exported or quantized model disagrees with the torch student beyond the thresholds."""


def export_onnx(model, path: Path, opset: int) -> None:
    """Export with dynamic batch and length, one file, no external data."""
    import torch

    dummy = torch.tensor([[2, 3, 4, 0], [5, 6, 0, 0]], dtype=torch.int64)
    torch.onnx.export(model, (dummy,), str(path), input_names=["ids"], output_names=["logits"],
                      dynamic_axes={"ids": {0: "batch", 1: "length"}, "logits": {0: "batch"}},
                      opset_version=opset, dynamo=False)


def quantize_int8(src: Path, dst: Path, weight_type: str, reduce_range: bool) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # Only the embedding table (Gather) is quantized: it is the file's size. The dense layers are a few
    # hundred kB; quantizing them adds a DynamicQuantizeLinear + MatMulInteger per call and saves nothing.
    quantize_dynamic(str(src), str(dst), weight_type={"quint8": QuantType.QUInt8, "qint8": QuantType.QInt8}[weight_type],
                     reduce_range=reduce_range, op_types_to_quantize=["Gather"])


def parity(reference: np.ndarray, other: np.ndarray) -> dict[str, float]:
    """Label agreement and largest absolute probability difference of two probability matrices."""
    return {"label_agreement": float((reference.argmax(1) == other.argmax(1)).mean()),
            "max_prob_diff": float(np.abs(reference - other).max())}


# The tokenizer.json kind the web runtime implements (web/src/wordpiece.js): normalizer, pre-tokenizer, model.
WEB_TOKENIZER = ("BertNormalizer", "BertPreTokenizer", "WordPiece")


def web_support(spec) -> dict[str, Any]:
    """Whether the web runtime (web/, docs/web.md) can run a bundle of this featurizer, which files it loads,
    and if not, why: the words featurizer always; WordPiece when the tokenizer is of the BERT kind."""
    if spec.words:
        return {"ready": True, "featurizer": "words", "files": ["bundle.json", INT8]}
    tokenizer = json.loads(spec.tokenizer_json)
    kinds = tuple((tokenizer.get(part) or {}).get("type") for part in ("normalizer", "pre_tokenizer", "model"))
    if kinds != WEB_TOKENIZER:
        return {"ready": False, "featurizer": "wordpiece",
                "reason": f"tokenizer.json is {' + '.join(k or 'none' for k in kinds)}; the web runtime implements "
                          f"{' + '.join(WEB_TOKENIZER)} and the words featurizer"}
    return {"ready": True, "featurizer": "wordpiece", "files": ["bundle.json", INT8, TOKENIZER]}


def bundle_speed(bundle, texts: list[str], variant: str, single: int, batch: int) -> dict[str, float]:
    """p50/p99 single-text latency (ms) and throughput (texts/s) at ``batch``, featurization included."""
    from pipeline.timing import latency_summary, throughput

    predict = lambda batch_texts: bundle.predict_proba(batch_texts, variant)  # noqa: E731
    rate = throughput(predict, texts, batch)  # its warm-up batch also warms the single-text calls
    lat = latency_summary(predict, texts[:single])
    return {"p50_ms": lat["p50_ms"], "p99_ms": lat["p99_ms"], "texts_per_s": rate}


def export_bundle(checkpoint: str | Path, out_dir: str | Path, cfg, eval_texts: list[str]) -> dict[str, Any]:
    """Write the bundle, check parity, measure speed. Returns metrics; raises ParityError on breach."""
    from pipeline.distill.checkpoint import load_student
    from pipeline.io import staged_dir

    if not eval_texts:
        raise DistillError("export: no evaluation rows to check parity on (empty test and transfer sets)")
    student = load_student(checkpoint)
    final = Path(out_dir)
    # built in a staging folder outside the DVC output and moved into place whole: a killed export
    # leaves no half-written bundle, and its leftovers are swept by the next run (pipeline/io.py)
    with staged_dir(final) as out:  # a bundle that fails parity is kept too, for inspection; the stage fails
        return _write_and_check(student, out, cfg, eval_texts)


def _write_and_check(student, out: Path, cfg, eval_texts: list[str]) -> dict[str, Any]:
    import torch

    from pipeline.bundle import FORMAT, files_digest, load_bundle, softmax
    from pipeline.distill.train import predict_logits

    t0 = time.perf_counter()
    export_onnx(student.model, out / FP32, cfg.opset)
    quantize_int8(out / FP32, out / INT8, cfg.weight_type, cfg.reduce_range)
    words = student.featurizer_spec.words  # the words featurizer needs no tokenizer file
    if not words:
        (out / TOKENIZER).write_text(student.featurizer_spec.tokenizer_json, encoding="utf-8")
    export_s = time.perf_counter() - t0
    names = [FP32, INT8] if words else [FP32, INT8, TOKENIZER]
    manifest = {
        "format": FORMAT,
        "labels": student.labels,
        "featurizer": {"tokenizer": None if words else TOKENIZER, "config": student.featurizer_spec.config()},
        "temperature": 1.0,
        "files": {"fp32": FP32, "int8": INT8},
        "inputs": {"ids": "int64 [batch, length], 0 = padding"}, "outputs": {"logits": "float32 [batch, labels]"},
        "student": student.student,
        "training": {k: student.checkpoint["training"].get(k) for k in ("best_epoch", "best_val")}
        if "training" in student.checkpoint else {},
        "quantization": {"weight_type": cfg.weight_type, "reduce_range": cfg.reduce_range},
        "digest_files": names,
        "digest": files_digest(out, names),
    }
    (out / "bundle.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")

    torch.set_num_threads(cfg.threads)
    bundle = load_bundle(out, threads=cfg.threads)
    texts = eval_texts[:cfg.parity_rows]
    ref = softmax(predict_logits(student.model, bundle.featurizer, texts))
    fp32 = parity(ref, bundle.predict_proba(texts, "fp32"))
    int8 = parity(ref, bundle.predict_proba(texts, "int8"))
    metrics: dict[str, Any] = {
        "files_bytes": {"fp32": (out / FP32).stat().st_size, "int8": (out / INT8).stat().st_size,
                        "tokenizer": 0 if words else (out / TOKENIZER).stat().st_size},
        "parity_rows": len(texts),
        "fp32": fp32, "int8": int8,
        "thresholds": {"min_label_agreement": cfg.min_label_agreement, "max_prob_diff": cfg.max_prob_diff,
                       "max_fp32_prob_diff": cfg.max_fp32_prob_diff},
        "export_s": export_s,
        "threads": cfg.threads,
    }
    metrics["size_ratio_int8"] = metrics["files_bytes"]["int8"] / metrics["files_bytes"]["fp32"]
    metrics["web"] = web_support(student.featurizer_spec)
    speed_texts = (eval_texts * (1 + SPEED_TEXTS // len(eval_texts)))[:max(SPEED_TEXTS, cfg.latency_texts)]
    for variant in ("fp32", "int8"):
        metrics[f"speed_{variant}"] = bundle_speed(bundle, speed_texts, variant, cfg.latency_texts,
                                                    cfg.throughput_batch)
    metrics["throughput_batch"] = cfg.throughput_batch
    problems = []
    for name, result, limit in (("fp32", fp32, cfg.max_fp32_prob_diff), ("int8", int8, cfg.max_prob_diff)):
        if result["label_agreement"] < cfg.min_label_agreement:
            problems.append(f"{name} label agreement {result['label_agreement']:.4f} < {cfg.min_label_agreement}")
        if result["max_prob_diff"] > limit:
            problems.append(f"{name} max probability difference {result['max_prob_diff']:.2e} > {limit}")
    metrics["passed"] = not problems
    metrics["problems"] = problems
    return metrics


def evaluation_limit(cfg) -> int:
    """How many evaluation texts export reads: the parity rows and the timing sample, no more."""
    return max(cfg.parity_rows, SPEED_TEXTS, cfg.latency_texts)


def evaluation_texts(test_texts: Iterable[str], transfer_texts: Iterable[str], limit: int | None = None) -> list[str]:
    """Test-split texts first, then transfer texts not already included (deterministic order); the
    first ``limit`` of them. Both inputs are consumed lazily and only as far as ``limit`` needs, so
    a caller that streams them (the export stage) holds ``limit`` texts whatever the rows."""
    texts: list[str] = []
    for text in test_texts:
        if limit is not None and len(texts) >= limit:
            return texts
        texts.append(str(text))
    seen = set(texts)
    for text in transfer_texts:
        if limit is not None and len(texts) >= limit:
            break
        text = str(text)
        if text not in seen:
            seen.add(text)
            texts.append(text)
    return texts


def stream_evaluation_texts(ingested_path: str | Path, labels_path: str | Path, limit: int,
                            batch_rows: int = 65_536) -> list[str]:
    """:func:`evaluation_texts` read from the stage files in Parquet batches of the columns it needs."""
    from pipeline.outputs import column_batches

    def test_split():
        for batch in column_batches(ingested_path, ("text", "split"), "run the ingest stage first (dvc repro ingest)",
                                    batch_rows):
            for text, split in zip(batch.column("text").to_pylist(), batch.column("split").to_pylist()):
                if split == "test":
                    yield text

    def transfer():
        for batch in column_batches(labels_path, ("text",), "run the label stage first (dvc repro label)", batch_rows):
            yield from batch.column("text").to_pylist()

    return evaluation_texts(test_split(), transfer(), limit)
