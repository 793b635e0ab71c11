"""The peers a user would train instead of distill's student, on exactly the student's labels.

``distill bench`` trains each peer twice, in the same run as the student:

- **distilled:** on the student's own training rows (the transfer set minus its validation slice), with
  the gold label where the student has one (``labeled`` rows) and the teacher's top label elsewhere;
- **gold only:** on the gold-only baseline's rows (``labeled`` rows minus their validation slice).

Every peer chooses its one regularisation setting on the same validation slice the student stops on
(agreement with the teacher when distilled, gold accuracy when gold only), never on test. It is then
timed through :func:`pipeline.timing.throughput` on the same texts, thread count and batch as the
teacher and the student, and its size is the bytes it would ship with.

Peers:

- ``tfidf-lr``: TF-IDF of word 1-2-grams and ``char_wb`` 2-5-grams + multinomial LogisticRegression
  (scikit-learn);
- ``fasttext``: fastText supervised (``fasttext-community``, the maintained build of the bindings):
  word bigrams and char 3-5-grams, its epochs and learning rate chosen on validation;
- ``model2vec-lr``: static embeddings distilled offline from the teacher's own encoder by
  ``model2vec.distill`` (256 dimensions) + LogisticRegression. Needs an encoder teacher
  (``teacher.kind: embedding-head``); the table is distilled once and kept beside the embedding cache.
"""

from __future__ import annotations

import io
import logging
import pickle
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.config.base import ConfigError
from pipeline.plugins import Plugins

log = logging.getLogger("distill.bench")

# Peer trainers by name, for ``distill bench --peers``: (PeerData, classes, seed, **extra) -> FittedPeer.
PEERS: Plugins[Callable[..., "FittedPeer"]] = Plugins("distill bench --peers entry", ConfigError)

C_GRID = (1.0, 10.0, 100.0)
MODEL2VEC_DIMS = 256


@dataclass
class PeerData:
    """Training rows and targets of one peer fit, plus the validation rows it selects on."""

    train_texts: list[str]
    train_targets: np.ndarray  # int64 class index
    val_texts: list[str]
    val_targets: np.ndarray


def distilled_targets(data) -> np.ndarray:
    """The student's hard view of its transfer set: gold where it trains on gold, else the teacher's top label."""
    return np.where(data.train_targets >= 0, data.train_targets, data.train_probs.argmax(axis=1)).astype(np.int64)


def peer_data(data, gold_only: bool) -> PeerData:
    """Rows and targets from a :class:`pipeline.distill.data.TransferSet` (the one the student trained on).

    For the gold-only set, ``train_probs``/``val_probs`` are one-hot gold, so argmax is the gold label.
    """
    return PeerData(train_texts=list(data.train_texts),
                    train_targets=data.train_probs.argmax(axis=1).astype(np.int64) if gold_only
                    else distilled_targets(data),
                    val_texts=list(data.val_texts), val_targets=data.val_probs.argmax(axis=1).astype(np.int64))


@dataclass
class FittedPeer:
    name: str
    predict_proba: Callable[[list[str]], np.ndarray]
    bytes: int
    settings: dict[str, float]  # what was selected on validation (C, or fastText's epochs and lr)
    val_score: float
    regime: str = "distilled"  # or "gold_only"; set by fit_peers


def peer_key(name: str, regime: str) -> str:
    """bench.json key of a peer fit: ``tfidf-lr`` (the student's labels) or ``tfidf-lr-gold-only``."""
    return name if regime == "distilled" else f"{name}-gold-only"


def _pickled_bytes(*objects: Any) -> int:
    buf = io.BytesIO()
    for obj in objects:
        pickle.dump(obj, buf, protocol=pickle.HIGHEST_PROTOCOL)
    return buf.tell()


def _full_probs(clf, x, k: int) -> np.ndarray:
    """Probabilities over all ``k`` classes (a class absent from the peer's rows gets 0)."""
    out = np.zeros((x.shape[0], k), dtype=np.float64)
    out[:, clf.classes_] = clf.predict_proba(x)
    return out


def _select_and_fit(x_train, y, x_val, y_val, seed: int):
    from sklearn.linear_model import LogisticRegression

    best = None
    for c in C_GRID:
        clf = LogisticRegression(C=c, max_iter=1000, random_state=seed).fit(x_train, y)
        score = float((clf.predict(x_val) == y_val).mean())
        log.info("bench: peer C=%g validation score %.4f", c, score)
        if best is None or score > best[1]:
            best = (clf, score, {"C": c})
    return best


@PEERS.register("tfidf-lr")
def fit_tfidf_lr(data: PeerData, k: int, seed: int, **_: Any) -> FittedPeer:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import FeatureUnion

    vectorizer = FeatureUnion([
        ("word", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)),
        ("char", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2)),
    ])
    x = vectorizer.fit_transform(data.train_texts)
    clf, score, settings = _select_and_fit(x, data.train_targets, vectorizer.transform(data.val_texts),
                                           data.val_targets, seed)
    return FittedPeer("tfidf-lr", lambda texts: _full_probs(clf, vectorizer.transform(texts), k),
                      _pickled_bytes(vectorizer, clf), settings, score)


def model2vec_model(encoder_source: str, folder: Path):
    """The teacher encoder's static embeddings (``model2vec.distill``), distilled once into ``folder``."""
    from model2vec import StaticModel

    from pipeline.teachers.files import source_digest

    target = folder / f"model2vec-{source_digest(encoder_source)[:12]}-{MODEL2VEC_DIMS}"
    if (target / "model.safetensors").exists():
        return StaticModel.from_pretrained(str(target))
    from model2vec.distill import distill

    log.info("bench: distilling static embeddings from %s with model2vec (about a minute on 2 cores)",
             encoder_source)
    model = distill(model_name=encoder_source, pca_dims=MODEL2VEC_DIMS)
    model.save_pretrained(str(target))
    return model


@PEERS.register("model2vec-lr")
def fit_model2vec_lr(data: PeerData, k: int, seed: int, static_model=None, **_: Any) -> FittedPeer:
    if static_model is None:
        raise ValueError("model2vec-lr needs the static model distilled from the teacher's encoder")
    x = static_model.encode(data.train_texts)
    clf, score, settings = _select_and_fit(x, data.train_targets, static_model.encode(data.val_texts),
                                           data.val_targets, seed)
    size = int(np.asarray(static_model.embedding).nbytes) + len(static_model.tokenizer.to_str().encode()) \
        + _pickled_bytes(clf)
    return FittedPeer("model2vec-lr", lambda texts: _full_probs(clf, static_model.encode(texts), k),
                      size, settings, score)


FASTTEXT_GRID = ((25, 0.5), (25, 1.0), (50, 1.0))  # (epochs, learning rate); fastText's small-data advice is lr 0.5-1.0


def _fasttext_line(text: str) -> str:
    return " ".join(text.split())  # one line per example, whitespace-separated


@PEERS.register("fasttext")
def fit_fasttext(data: PeerData, k: int, seed: int, **_: Any) -> FittedPeer:
    """fastText supervised (word bigrams, char 3-5-grams), one thread so a seed gives one model."""
    import tempfile

    import fasttext

    def probs(model, texts: list[str]) -> np.ndarray:
        labels, scores = model.predict([_fasttext_line(t) for t in texts], k=-1)
        out = np.zeros((len(texts), k), dtype=np.float64)
        for i, (names, values) in enumerate(zip(labels, scores)):
            out[i, [int(n[len("__label__"):]) for n in names]] = values
        return out

    with tempfile.TemporaryDirectory(prefix="distill-fasttext-") as tmp:
        train = Path(tmp) / "train.txt"
        train.write_text("".join(f"__label__{y} {_fasttext_line(t)}\n" for t, y in zip(data.train_texts,
                                                                                     data.train_targets)))
        best = None
        for epochs, lr in FASTTEXT_GRID:
            model = fasttext.train_supervised(input=str(train), epoch=epochs, lr=lr, wordNgrams=2, minn=3, maxn=5,
                                              bucket=200_000, dim=100, thread=1, seed=seed, verbose=0)
            score = float((probs(model, data.val_texts).argmax(axis=1) == data.val_targets).mean())
            log.info("bench: peer fasttext epoch=%d lr=%g validation score %.4f", epochs, lr, score)
            if best is None or score > best[1]:
                best = (model, score, {"epochs": epochs, "lr": lr})
        model, score, settings = best
        model.save_model(str(Path(tmp) / "model.bin"))
        size = (Path(tmp) / "model.bin").stat().st_size
    return FittedPeer("fasttext", lambda texts: probs(model, texts), size, settings, score)


def encoder_source_of(params) -> str | None:
    """The teacher's encoder folder when the teacher is an encoder (model2vec distils from it), else None."""
    if params.teacher.kind != "embedding-head":
        return None
    from pipeline.teachers.encoder import resolve_encoder

    return resolve_encoder(params.teacher.embedding_head.encoder)


def static_model_folder(params, workdir: Path) -> Path:
    """Beside the teacher's embedding cache when it has one (shared by every bench run), else in ``workdir``."""
    cache = params.teacher.embedding_head.cache_dir
    return Path(cache) if cache else Path(workdir)


def fit_peers(distilled_data, gold_data, k: int, seed: int, static_folder: Path, encoder_source: str | None,
              names: Sequence[str] | None = None) -> dict[str, FittedPeer]:
    """Every peer that can run here, fitted on both regimes: ``{peer_key(name, regime): FittedPeer}``."""
    trainers = {name: PEERS.get(name) for name in (PEERS.names() if names is None else names)}  # unknown: fails
    extra: dict[str, Any] = {}
    out: dict[str, FittedPeer] = {}
    for name, train in trainers.items():
        if name == "model2vec-lr":
            if encoder_source is None:
                log.warning("bench: model2vec-lr skipped: the teacher has no encoder to distil static embeddings from")
                continue
            extra["static_model"] = model2vec_model(encoder_source, static_folder)
        for regime, data in (("distilled", distilled_data), ("gold_only", gold_data)):
            peer = train(peer_data(data, gold_only=regime == "gold_only"), k, seed, **extra)
            peer.regime = regime
            out[peer_key(name, regime)] = peer
    return out
