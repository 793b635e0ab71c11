"""The `llm` teacher against a real model: Gemma 3 270M behind llama.cpp's server, on this machine.

    python benchmarks/llm_teacher.py                  # the test split of examples/llm-local's sample
    python benchmarks/llm_teacher.py --split labeled  # rows that are not test: where prompts are chosen

It builds or reuses the server and the model (``distill llm-local install``), starts the server on
127.0.0.1, and labels the same texts four ways: the chat endpoint (llama.cpp's built-in Gemma template)
and the completion endpoint, each zero-shot and few-shot (the params' ``examples``). Everything else is
examples/llm-local/params.yaml's teacher. Per way it prints accuracy against the gold labels (a text
that failed counts as wrong) beside the majority-class share, the answers that were no label code,
failures, calls per second, tokens per call and the call latency p50/p99, with the load average, and
writes the table to bench/llm_teacher.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def sample(params_path: Path, n: int, split: str, seed: int):
    """(params, texts, their gold labels): ``n`` rows of ``split`` of the params' ingested sample."""
    from pipeline.config import load_params
    from pipeline.ingest import ingest

    params = load_params(params_path)
    table = ingest(params.ingest, params.seed).table
    rows = table[table["split"].isin(["labeled", "unlabeled"] if split == "labeled" else [split])]
    rows = rows[rows["label"].notna()].sample(frac=1.0, random_state=seed).head(n)
    return params, list(rows["text"].astype(str)), list(rows["label"].astype(str))


def measure(params, texts: list[str], gold: list[str], endpoint: str, examples: list[dict], base_url: str) -> dict:
    from pipeline.teachers.llm import LLMTeacher

    cfg = params.teacher.llm.model_copy(update={"endpoint": endpoint, "base_url": base_url})
    cfg = type(cfg).model_validate(cfg.model_dump() | {"examples": examples})
    teacher = LLMTeacher(cfg)
    started = time.perf_counter()
    probs, failures = teacher.predict_proba_partial(texts)
    seconds = time.perf_counter() - started
    ok = [i for i in range(len(texts)) if i not in failures]
    predicted = [teacher.labels[int(np.argmax(probs[i]))] for i in ok]
    correct = sum(p == gold[i] for p, i in zip(predicted, ok))
    usage = teacher.usage
    latencies = np.array(teacher._usage.latencies_s) * 1000
    sums = probs[ok].sum(axis=1) if ok else np.array([1.0])
    return {
        "endpoint": endpoint, "shots": len(examples), "texts": len(texts),
        "accuracy": round(correct / len(texts), 4),  # failed texts count as wrong
        "answered": len(ok), "failures": len(failures), "malformed": usage["malformed"],
        "malformed_answers": dict(teacher.malformed_answers.most_common(3)),
        "predicted_share": {label: round(predicted.count(label) / max(len(ok), 1), 3) for label in teacher.labels},
        "calls": usage["calls"], "calls_per_s": round(usage["calls"] / seconds, 2),
        "prompt_tokens_per_call": round(usage["prompt_tokens"] / max(usage["calls"], 1), 1),
        "completion_tokens_per_call": round(usage["completion_tokens"] / max(usage["calls"], 1), 2),
        "p50_ms": round(float(np.percentile(latencies, 50)), 1) if len(latencies) else None,
        "p99_ms": round(float(np.percentile(latencies, 99)), 1) if len(latencies) else None,
        "max_row_sum_error": float(np.abs(sums - 1).max()),
        "seconds": round(seconds, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", default=str(ROOT / "examples" / "llm-local" / "params.yaml"))
    parser.add_argument("--texts", type=int, default=300)
    parser.add_argument("--split", default="test", choices=["test", "labeled"],
                        help="test: report; labeled: the non-test rows (choose prompts here, never on test)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ways", default="chat:0,chat:few,completion:0,completion:few",
                        help="endpoint:shots pairs to measure (shots: 0 or few = the params' examples)")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--out", default="bench/llm_teacher.json")
    args = parser.parse_args(argv)

    from pipeline.teachers.llama_local import LlamaServer, install, tools_dir

    binary, model = install(tools_dir(ROOT))
    params, texts, gold = sample(Path(args.params), args.texts, args.split, args.seed)
    examples = [e.model_dump() for e in params.teacher.llm.examples]
    majority = max(gold.count(g) for g in set(gold)) / len(gold)
    print(f"{len(texts)} {args.split} texts ({', '.join(f'{g}: {gold.count(g)}' for g in sorted(set(gold)))}; "
          f"majority share {majority:.3f}), {len(examples)} few-shot examples from the params", flush=True)
    rows = []
    log = Path(args.out).with_suffix(".server.log")
    log.parent.mkdir(parents=True, exist_ok=True)
    with LlamaServer(binary, model, port=args.port, parallel=params.teacher.llm.concurrency, log_path=log) as server:
        for way in args.ways.split(","):
            endpoint, shots = way.split(":")
            row = measure(params, texts, gold, endpoint, examples if shots == "few" else [], server.base_url)
            rows.append(row)
            print(json.dumps(row), flush=True)
    load = os.getloadavg()
    header = "| endpoint | shots | accuracy | failures | malformed answers | calls/s | prompt tok/call | " \
             "p50 ms | p99 ms |"
    print(f"\n{args.split} split, majority-class share {majority:.3f}; load average {load[0]:.2f} {load[1]:.2f} "
          f"{load[2]:.2f}, {os.cpu_count()} CPUs\n")
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for r in rows:
        print(f"| {r['endpoint']} | {r['shots']} | {r['accuracy']:.3f} | {r['failures']} | {r['malformed']} | "
              f"{r['calls_per_s']} | {r['prompt_tokens_per_call']} | {r['p50_ms']} | {r['p99_ms']} |")
    Path(args.out).write_text(json.dumps({"rows": rows, "load_average": load, "cpus": os.cpu_count(),
                                          "texts": len(texts), "split": args.split, "majority_share": majority},
                                         indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
