"""The cheap trained judge (`type: trained_judge`): TF-IDF word + char n-grams and logistic regression on the labels.

Training is deterministic (fixed random_state, sorted items) and the fitted model is versioned by a
content hash of the training data, the hyperparameters and the scikit-learn version; it is saved
under the project state dir (`.evalplatform/judges/`), never committed, and refitted when the hash
is not there. Scoring predicts on the whole output column at once.
"""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import polars as pl
from pydantic import Field

from evalplatform.conversation import judge_inputs
from evalplatform.judges.calibration_set import CalibrationSet
from evalplatform.judges.identity import JudgeIdentity
from evalplatform.judges.llm_judge import JudgeScorerBase
from evalplatform.provenance import canonical_json, sha256_text
from evalplatform.scorers.base import register

MODEL_NAME = "trained/tfidf-logreg"
_loaded: dict[tuple[str, str], object] = {}
_lock = threading.Lock()


def _column(x, i: int):
    return x[:, i]


def _input_col(x):
    return _column(x, 0)


def _output_col(x):
    return _column(x, 1)


def hyperparameters(c: float) -> dict:
    return {"C": c, "word_ngram": [1, 2], "char_ngram": [2, 5], "sublinear_tf": True,
            "class_weight": "balanced", "solver": "liblinear", "random_state": 0}


def model_hash(cal: CalibrationSet, hp: dict) -> str:
    # The installed version from package metadata: `import sklearn` costs ~1 s, and the identity is
    # needed on every run (judge pins, calibration lookups), not only when the model is used.
    from importlib.metadata import version

    items = sorted((i.id, i.input, i.output, i.label) for i in cal.items)
    return sha256_text(canonical_json({"items": items, "hp": hp, "sklearn": version("scikit-learn")}))


def build_pipeline(hp: dict):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import FeatureUnion, Pipeline, make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    def text(col, **kw):
        return make_pipeline(FunctionTransformer(col), TfidfVectorizer(sublinear_tf=hp["sublinear_tf"], **kw))

    features = FeatureUnion([
        ("output_words", text(_output_col, ngram_range=tuple(hp["word_ngram"]), lowercase=True)),
        ("output_chars", text(_output_col, analyzer="char_wb", ngram_range=tuple(hp["char_ngram"]), lowercase=False)),
        ("input_words", text(_input_col, ngram_range=(1, 1), lowercase=True)),
    ])
    clf = LogisticRegression(C=hp["C"], class_weight=hp["class_weight"], solver=hp["solver"],
                             random_state=hp["random_state"], max_iter=1000)
    return Pipeline([("features", features), ("clf", clf)])


def training_arrays(cal: CalibrationSet) -> tuple[np.ndarray, np.ndarray, list[str]]:
    items = sorted(cal.items, key=lambda i: i.id)
    x = np.array([[i.input, i.output] for i in items], dtype=object)
    y = np.array([i.label == "PASS" for i in items], dtype=int)
    return x, y, [i.id for i in items]


def fit_or_load(cal: CalibrationSet, hp: dict, state_dir: Path):
    """The fitted model for this (data, hyperparameters, sklearn) hash: from memory, from disk, or trained now."""
    import joblib

    digest = model_hash(cal, hp)
    path = state_dir / "judges" / f"{cal.criterion}-{digest[:16]}.joblib"
    # Keyed by the file too: every project's state folder holds its own versioned copy of the model.
    key = (str(path), digest)
    with _lock:
        if key in _loaded:
            return _loaded[key], digest
        model = None
        if path.is_file():
            try:
                model = joblib.load(path)
            except Exception:  # a truncated or foreign file is refitted, not trusted
                model = None
        if model is None:
            x, y, _ = training_arrays(cal)
            model = build_pipeline(hp).fit(x, y)
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            os.close(fd)
            joblib.dump(model, tmp)
            os.replace(tmp, path)  # atomic: a concurrent reader sees the old file or the whole new one
        _loaded[key] = model
        return model, digest


def cross_validated_verdicts(cal: CalibrationSet, hp: dict, folds: int = 5) -> tuple[list[str], list[str], list[str]]:
    """Out-of-fold verdicts (stratified k-fold, fixed seed): (item ids, human labels, judge verdicts)."""
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    x, y, ids = training_arrays(cal)
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=0)
    pred = cross_val_predict(build_pipeline(hp), x, y, cv=cv)
    labels = ["PASS" if v else "FAIL" for v in y]
    return ids, labels, ["PASS" if v else "FAIL" for v in pred]


@register
class TrainedJudge(JudgeScorerBase):
    """A classifier fit on the criterion's calibration labels; score = P(PASS), pass at `threshold`."""

    type: Literal["trained_judge"] = "trained_judge"
    tier_cost: ClassVar[str] = "cheap_judge"

    threshold: float = Field(0.5, ge=0, le=1)
    C: float = Field(30.0, gt=0, description="Inverse regularisation strength of the logistic regression.")
    folds: int = Field(5, ge=2, le=20, description="Stratified folds for the cross-validated calibration.")

    @property
    def judge_name(self) -> str:
        return f"{self.criterion}:{MODEL_NAME}"

    def hyperparameters(self) -> dict:
        return hyperparameters(self.C)

    def identity(self) -> JudgeIdentity:
        return JudgeIdentity(kind="trained", criterion=self.criterion, model=MODEL_NAME, rubric_version="-",
                             prompt_sha256=model_hash(self.calibration_set(), self.hyperparameters()))

    def model(self):
        return fit_or_load(self.calibration_set(), self.hyperparameters(), self.state_dir())

    def score(self, frame: pl.DataFrame) -> pl.DataFrame:
        model, digest = self.model()
        key = self.identity().key
        x = np.column_stack([
            np.array(judge_inputs(frame, self.input_field), dtype=object),
            frame["output"].cast(pl.Utf8).fill_null("").to_numpy().astype(object),
        ]) if frame.height else np.empty((0, 2), dtype=object)
        p_pass = model.predict_proba(x)[:, 1] if frame.height else np.empty(0)
        s = pl.Series("score", p_pass, dtype=pl.Float64)
        return frame.with_columns(
            s,
            pl.format(f"[judge {key}] P(PASS) = {{}}", s.round(3)).alias("explanation"),
        )
