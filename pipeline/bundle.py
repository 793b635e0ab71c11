"""The serving bundle: ONNX student + featurizer, loadable without torch.

``load_bundle("models/bundle")`` reads ``bundle.json`` (format ``distill-bundle/1``, see
docs/contracts.md), checks the files against the recorded digest, and predicts with onnxruntime and the
same featurizer training used (pipeline/students/featurize.py). Serving, evaluation and benchmarks use
this; none of them needs torch or params.yaml.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import DistillError

FORMAT = "distill-bundle/1"
MANIFEST = "bundle.json"
# Texts per onnxruntime call in Bundle.logits: memory of one call grows with its texts (9,000 BANKING77
# texts took 2 GB), while each row's logits do not depend on the others in its call.
PREDICT_ROWS = 4096
TRIM_ROWS = 16  # rows per graph call in run_trimmed: 16 measured fastest of 8, 16, 32 and the whole batch


class BundleError(DistillError):
    """A bundle folder is missing files, corrupt, or of another format."""


def files_digest(folder: Path, names: list[str]) -> str:
    """sha256 over the named files (name and bytes), in the given order."""
    h = hashlib.sha256()
    for name in names:
        h.update(name.encode() + b"\0")
        h.update((folder / name).read_bytes())
    return h.hexdigest()


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = logits.astype(np.float64) / temperature
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def in_domain_score(logits: np.ndarray) -> np.ndarray:
    """The student's in-domain score: logsumexp of its raw logits (the negative free energy; higher: more
    like its training data). On the project's out-of-domain suite it separates out-of-domain text from
    in-domain text better than the top probability (docs/evaluation.md#out-of-domain)."""
    z = logits.astype(np.float64)
    top = z.max(axis=1)
    return top + np.log(np.exp(z - top[:, None]).sum(axis=1))


def run_trimmed(session, ids: np.ndarray, rows: int = TRIM_ROWS) -> np.ndarray:
    """Logits of the ``ids`` matrix, run in groups of ``rows`` rows of similar length, each cut after its
    last non-padding column.

    A batch is padded to its longest text, and the graph gathers and sums every column: on BANKING77
    two thirds of a 64-text batch's ids are padding. Trailing padding adds nothing (its embedding row is
    zero), so the logits are those of the padded batch up to float rounding, and the graph runs about
    1.4x faster. Row order is kept."""
    if len(ids) <= rows:
        return session.run(None, {"ids": ids})[0]
    real = ids != 0
    width = np.where(real.any(axis=1), ids.shape[1] - np.argmax(real[:, ::-1], axis=1), 1)
    order = np.argsort(width, kind="stable")
    out = None
    for start in range(0, len(ids), rows):
        group = order[start:start + rows]
        part = session.run(None, {"ids": np.ascontiguousarray(ids[group, :int(width[group].max())])})[0]
        if out is None:
            out = np.empty((len(ids), part.shape[1]), dtype=part.dtype)
        out[group] = part
    return out


def runtime_files(manifest: dict[str, Any]) -> list[str]:
    """The files beside ``bundle.json`` that a runtime loads: the int8 model, and the tokenizer file of a
    WordPiece featurizer (the words featurizer has none). What the web page fetches (docs/web.md)."""
    return [manifest["files"]["int8"]] + [t for t in [manifest["featurizer"].get("tokenizer")] if t]


class Bundle:
    """A loaded bundle: ``labels``, ``digest``, ``predict_proba(texts, variant)``, ``predict(texts)``."""

    def __init__(self, folder: Path, manifest: dict[str, Any], threads: int | None = None):
        from pipeline.students.featurize import Featurizer, spec_from_dict

        self.folder = folder
        self.manifest = manifest
        self.labels: list[str] = list(manifest["labels"])
        self.digest: str = manifest["digest"]
        self.temperature = float(manifest.get("temperature", 1.0))
        tokenizer = manifest["featurizer"].get("tokenizer")  # None: the words featurizer, no file
        tokenizer_json = "" if tokenizer is None else (folder / tokenizer).read_text(encoding="utf-8")
        self.featurizer = Featurizer(spec_from_dict(manifest["featurizer"]["config"], tokenizer_json))
        self.threads = threads
        self._sessions: dict[str, Any] = {}

    @property
    def variants(self) -> list[str]:
        return list(self.manifest["files"])

    def session(self, variant: str = "int8"):
        if variant not in self.manifest["files"]:
            raise BundleError(f"bundle has no variant {variant!r}; it has {self.variants}")
        if variant not in self._sessions:
            import onnxruntime as ort

            opts = ort.SessionOptions()
            if self.threads:
                opts.intra_op_num_threads = self.threads
                opts.inter_op_num_threads = 1
            path = str(self.folder / self.manifest["files"][variant])
            self._sessions[variant] = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        return self._sessions[variant]

    def logits(self, texts: list[str], variant: str = "int8") -> np.ndarray:
        """Logits ``[n, len(labels)]``, computed :data:`PREDICT_ROWS` texts at a time: the graph's
        intermediates grow with the batch (the evaluate stage's 100,000 held-out texts took 10 GB in one call)."""
        texts = list(texts)
        session = self.session(variant)
        if len(texts) <= PREDICT_ROWS:
            return run_trimmed(session, self.featurizer(texts))
        out = None
        for start in range(0, len(texts), PREDICT_ROWS):
            part = run_trimmed(session, self.featurizer(texts[start:start + PREDICT_ROWS]))
            if out is None:
                out = np.empty((len(texts), part.shape[1]), dtype=part.dtype)
            out[start:start + len(part)] = part
        return out

    def predict_proba(self, texts: list[str], variant: str = "int8") -> np.ndarray:
        """Class probabilities ``[n, len(labels)]`` (float32), columns in ``labels`` order."""
        if len(texts) == 0:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        return softmax(self.logits(texts, variant), self.temperature)

    def predict_scored(self, texts: list[str], variant: str = "int8") -> tuple[np.ndarray, np.ndarray]:
        """(class probabilities, in-domain scores) from one pass: what the server abstains by."""
        if len(texts) == 0:
            return np.zeros((0, len(self.labels)), dtype=np.float32), np.zeros(0)
        logits = self.logits(texts, variant)
        return softmax(logits, self.temperature), in_domain_score(logits)

    @property
    def ood_threshold(self) -> float | None:
        """The in-domain score below which a text is out-of-domain, fitted by the evaluate stage on
        held-out rows and stored at registration (None: the bundle was never registered with one)."""
        value = (self.manifest.get("ood") or {}).get("threshold")
        return None if value is None else float(value)

    def predict(self, texts: list[str], variant: str = "int8") -> list[str]:
        return [self.labels[i] for i in self.predict_proba(texts, variant).argmax(axis=1)]


def load_bundle(folder: str | Path, threads: int | None = None, verify: bool = True) -> Bundle:
    """Open a bundle folder; ``verify`` recomputes the file digest so a corrupt copy fails here."""
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.exists():
        raise BundleError(f"{folder}: no {MANIFEST} (run the export stage first)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise BundleError(f"{path}: not valid JSON ({exc})") from None
    if manifest.get("format") != FORMAT:
        raise BundleError(f"{path}: format {manifest.get('format')!r} is not {FORMAT!r}; re-run the export stage")
    names = manifest.get("digest_files", [])
    missing = [n for n in names if not (folder / n).exists()]
    if missing:
        raise BundleError(f"{folder}: bundle files missing: {missing}")
    if verify and files_digest(folder, names) != manifest.get("digest"):
        raise BundleError(f"{folder}: files do not match the digest in {MANIFEST} (corrupt or edited); re-export")
    return Bundle(folder, manifest, threads)


SMOKE_TEXT = "smoke test: is this model able to answer?"


def smoke_check(bundle: "Bundle", text: str = SMOKE_TEXT) -> None:
    """Predict one text with the int8 model; a row that is not a probability distribution is a BundleError."""
    try:
        probs = bundle.predict_proba([text], "int8")
    except Exception as exc:  # someone else's file may break onnxruntime in any way
        raise BundleError(f"{bundle.folder}: the int8 model cannot predict: {type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else ''}") from None
    if probs.shape != (1, len(bundle.labels)) or not np.isfinite(probs).all() or abs(float(probs.sum()) - 1) > 1e-3:
        raise BundleError(f"{bundle.folder}: smoke prediction is not a probability row over {len(bundle.labels)} "
                          f"labels (shape {probs.shape}, sum {float(np.nansum(probs)):.4f})")

