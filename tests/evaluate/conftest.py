"""Real, simple predictors on a BANKING77 subset for behavioural gate tests (scikit-learn, seconds to fit)."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest

from tests.conftest import require_banking77

CLASSES = 8


class SklearnPredictor:
    """A fitted scikit-learn pipeline as a gate predictor (labels in the pipeline's class order)."""

    def __init__(self, model, labels):
        self.model, self.labels = model, list(labels)

    def predict_proba(self, texts):
        probs = self.model.predict_proba(list(texts))
        order = [list(self.model.classes_).index(c) for c in self.labels]
        return probs[:, order]


class MajorityPredictor:
    """Always the most frequent training class, fully confident: the weakest possible student."""

    def __init__(self, labels, majority):
        self.labels = list(labels)
        self._row = np.eye(len(labels))[self.labels.index(majority)]

    def predict_proba(self, texts):
        return np.tile(self._row, (len(texts), 1))


@pytest.fixture(scope="session")
def banking_models(tmp_path_factory):
    """(EvalData, teacher, good student, majority student, model file of the good student)."""
    import pandas as pd
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline, make_union

    from pipeline.evaluate.suites import EvalData

    root = require_banking77()
    train, test = pd.read_csv(root / "train.csv"), pd.read_csv(root / "test.csv")
    labels = sorted(train["category"].unique())[:CLASSES]
    train = train[train["category"].isin(labels)].sample(frac=1.0, random_state=0).reset_index(drop=True)
    test = test[test["category"].isin(labels)].reset_index(drop=True)
    gold, transfer, heldout = train[:500], train[500:1000], train[1000:]
    teacher = make_pipeline(make_union(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
                                       TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True)),
                            LogisticRegression(C=20, max_iter=2000)).fit(gold["text"], gold["category"])
    teacher = SklearnPredictor(teacher, labels)
    soft = teacher.predict_proba(transfer["text"].tolist())
    student = make_pipeline(TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True),
                            LogisticRegression(C=20, max_iter=2000))
    student.fit(pd.concat([gold["text"], transfer["text"]]),
                list(gold["category"]) + [labels[i] for i in soft.argmax(1)])
    path = tmp_path_factory.mktemp("student") / "student.pkl"
    path.write_bytes(pickle.dumps(student))
    data = EvalData(labels=labels, test_texts=test["text"].tolist(),
                    test_targets=np.array([labels.index(c) for c in test["category"]]),
                    heldout_texts=heldout["text"].tolist(),
                    heldout_teacher=teacher.predict_proba(heldout["text"].tolist()))
    majority = gold["category"].value_counts().index[0]
    return data, teacher, SklearnPredictor(student, labels), MajorityPredictor(labels, majority), path


@pytest.fixture(scope="session")
def weak_student(banking_models):
    """``weak_student(seed)``: the weak student of the gate's target, one epoch over 256 hashed buckets.

    The distilled student's own recipe cut short: SGD on log loss over the held-out texts' teacher
    labels (a stand-in transfer set), one pass, features hashed into 256 buckets; the seed shuffles."""
    from sklearn.feature_extraction.text import HashingVectorizer
    from sklearn.linear_model import SGDClassifier
    from sklearn.pipeline import make_pipeline

    data = banking_models[0]
    texts = data.heldout_texts
    targets = [data.labels[i] for i in np.argmax(data.heldout_teacher, axis=1)]

    def build(seed: int) -> SklearnPredictor:
        model = make_pipeline(HashingVectorizer(n_features=256, ngram_range=(1, 2), alternate_sign=False),
                              SGDClassifier(loss="log_loss", max_iter=1, tol=None, random_state=seed))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # one epoch does not converge: that is the point
            model.fit(texts, targets)
        return SklearnPredictor(model, data.labels)

    return build
