"""Fake / incentivized / machine-generated review probability (0-1, "not binary": downstream decides).

Model. For a review with text :math:`t` and feature row :math:`f` (:mod:`truescore.text.features`: the text
and style categories always; rating, history, timing, engagement, duplication and disclosure where the
training data has them), five base models score the positive class (fake):

1. :math:`p_w`: logistic regression on the TF-IDF of word 1-2-grams and character 2-5-grams within words
   (:math:`C` = ``ngram_C``), the classic deceptive-opinion-spam model;
2. :math:`p_g`: gradient-boosted trees (LightGBM) on the feature row (NaN routed natively);
3. :math:`p_e`: logistic regression on the encoder's 7 normalised layer means
   (:meth:`Encoder.encode_layers`), the "transformer" model (frozen MiniLM with a trained head);
4. :math:`m_c`: the margin of a linear SVM on character 3-6-grams across word boundaries;
5. :math:`m_v`: the margin of a linear SVM on word 1-3-grams.

Two ways to combine them (``combine``), both fitted on out-of-fold base outputs of the training data
(``calibration_folds``-fold CV inside :meth:`FakeDetector.fit`, so the combiner never sees a base model's
own training rows):

- ``"stack"`` (default): logistic regression on the base logits and margins (stacking),

  .. math::  p = \\sigma\\bigl(\\beta_0 + \\beta_w\\, \\mathrm{logit}\\, p_w + \\beta_g\\, \\mathrm{logit}\\, p_g
             + \\beta_e\\, \\mathrm{logit}\\, p_e + \\beta_c m_c + \\beta_v m_v\\bigr);

- ``"mean"``: the seed's 50/50 ensemble of "traditional ML" and "BERT",
  :math:`\\bar p = (1 - w) \\tfrac{1}{2} (p_w + p_g) + w\\, p_e` with :math:`w` = ``transformer_weight`` (0.5),
  Platt-calibrated, :math:`p = \\sigma(a\\, \\mathrm{logit}\\, \\bar p + b)`.

Stacking is the default because it is more accurate on both reference sets (``docs/results/text_eval.md``
shows both); its output is a calibrated probability by construction.

Labels: 1 = fake (deceptive, computer-generated, incentivized), 0 = genuine. The shipped model is trained on
salminen-fake-reviews (CC BY 4.0; OR vs CG); deceptive-opinion-spam (CC BY-NC-SA) is evaluation only.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from truescore.config import TextSettings
from truescore.text._common import check_texts, ngram_vectorizer, sigmoid
from truescore.text.features import FEATURES, TEXT_FEATURES, compute_features

__all__ = ["BASES", "FakeDetector"]

_EPS = 1e-6
#: base model outputs, in the order of the stacking features
BASES = ("ngram", "gbm", "transformer", "char_svm", "word_svm")
#: defaults kept in the settings object (their one source)
_SETTINGS = TextSettings()


def _logit(p: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    q = np.clip(p, _EPS, 1 - _EPS)
    return np.log(q / (1 - q))


class FakeDetector(BaseEstimator):
    """Stacked (or 50/50) ensemble of an n-gram model, a feature GBM and a frozen-encoder head.

    A scikit-learn estimator: ``__init__`` only stores, :meth:`fit` validates. The iterative solvers inside
    (the logistic regressions, LinearSVC) raise scikit-learn's own
    :class:`~sklearn.exceptions.ConvergenceWarning` if they stop at their iteration limit; nothing here
    catches it.

    Parameters
    ----------
    combine : {"stack", "mean"}, default="stack"
        Logistic stacking of the base logits, or the seed's weighted mean with Platt calibration.
    transformer_weight : float, default=0.5
        :math:`w`, the encoder head's share in ``combine="mean"`` (seed: 50% traditional + 50% BERT);
        default: ``TextSettings.fake_transformer_weight``.
    ngram_C : float, default=30.0
        Inverse L2 penalty of the n-gram logistic regression.
    embed_C : float, default=10.0
        Inverse L2 penalty of the encoder-head logistic regression.
    gbm_estimators : int, default=300
        Boosting rounds of the feature model.
    svm_features : int, default=50000
        Vocabulary cap of each of the two n-gram SVMs (keeps the artifact small).
    calibration_folds : int, default=5
        Folds of the internal cross-validation producing the out-of-fold base probabilities (>= 2).
    random_state : int, default=0
        Seed of the GBM and of the folds; default: ``TextSettings.random_state``.

    Attributes
    ----------
    feature_names_ : list of str
        Feature columns the GBM uses (those with any non-missing value in the training data).
    ngram_, char_, word_, gbm_, embed_ : fitted base models
    combiner_ : tuple of float
        ``stack``: intercept and one weight per base (:data:`BASES`); ``mean``: Platt :math:`(b, a)`.
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "combine": [StrOptions({"stack", "mean"})],
        "transformer_weight": [Interval(Real, 0, 1, closed="both")],
        "ngram_C": [Interval(Real, 0, None, closed="neither")],
        "embed_C": [Interval(Real, 0, None, closed="neither")],
        "gbm_estimators": [Interval(Integral, 1, None, closed="left")],
        "svm_features": [Interval(Integral, 1, None, closed="left")],
        "calibration_folds": [Interval(Integral, 2, None, closed="left")],
        "random_state": [Interval(Integral, 0, None, closed="left")],
    }

    def __init__(
        self,
        *,
        combine: str = "stack",
        transformer_weight: float = _SETTINGS.fake_transformer_weight,
        ngram_C: float = 30.0,
        embed_C: float = 10.0,
        gbm_estimators: int = 300,
        svm_features: int = 50_000,
        calibration_folds: int = 5,
        random_state: int = _SETTINGS.random_state,
    ) -> None:
        self.svm_features = svm_features
        self.combine = combine
        self.transformer_weight = transformer_weight
        self.ngram_C = ngram_C
        self.embed_C = embed_C
        self.gbm_estimators = gbm_estimators
        self.calibration_folds = calibration_folds
        self.random_state = random_state

    # -- inputs -----------------------------------------------------------------------------------------
    @staticmethod
    def prepare(
        reviews: pd.DataFrame | Sequence[str],
        *,
        layers: npt.NDArray[np.floating[Any]] | None = None,
        features: pd.DataFrame | None = None,
    ) -> tuple[list[str], npt.NDArray[np.float64], pd.DataFrame]:
        """Texts, layer embeddings and feature rows for a review frame or a list of texts."""
        frame = reviews if isinstance(reviews, pd.DataFrame) else pd.DataFrame({"text": check_texts(reviews)})
        if "text" not in frame.columns:
            raise ValueError("reviews frame has no 'text' column")
        texts = check_texts(frame["text"].tolist(), name="text")
        if features is None:
            features = compute_features(frame, global_duplicates=False)
        if layers is None:
            from truescore.text.embed import get_encoder

            layers = get_encoder().encode_layers(texts)
        if len(layers) != len(texts) or len(features) != len(texts):
            raise ValueError("layers / features rows do not match the number of reviews")
        return texts, np.asarray(layers, dtype=np.float64), features

    # -- fitting ----------------------------------------------------------------------------------------
    def _fit_bases(
        self, texts: list[str], layers: npt.NDArray[np.float64], feats: npt.NDArray[np.float64], y: npt.NDArray[Any]
    ) -> tuple[Any, Any, Any, Any, Any]:
        import lightgbm as lgb
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.svm import LinearSVC

        ngram = make_pipeline(ngram_vectorizer(), LogisticRegression(C=self.ngram_C, max_iter=3000)).fit(texts, y)
        char = make_pipeline(
            TfidfVectorizer(analyzer="char", ngram_range=(3, 6), sublinear_tf=True, min_df=2,
                            max_features=self.svm_features, dtype=np.float32),
            LinearSVC(C=1.0, random_state=self.random_state),
        ).fit(texts, y)
        word = make_pipeline(
            TfidfVectorizer(ngram_range=(1, 3), sublinear_tf=True, max_features=self.svm_features, dtype=np.float32),
            LinearSVC(C=1.0, random_state=self.random_state),
        ).fit(texts, y)
        gbm = lgb.LGBMClassifier(
            n_estimators=self.gbm_estimators, learning_rate=0.05, num_leaves=15, min_child_samples=10,
            subsample=0.8, subsample_freq=1, colsample_bytree=0.8, random_state=self.random_state,
            deterministic=True, n_jobs=1, verbose=-1,
        ).fit(feats, y)
        embed = LogisticRegression(C=self.embed_C, max_iter=3000).fit(layers, y)
        return ngram, char, word, gbm, embed

    @staticmethod
    def _base_scores(
        bases: tuple[Any, ...], texts: list[str], layers: npt.NDArray[np.float64],
        feats: npt.NDArray[np.float64],
    ) -> npt.NDArray[np.float64]:
        """Columns :data:`BASES`: the three probabilities, then the two SVM margins."""
        ngram, char, word, gbm, embed = bases
        return np.column_stack([
            ngram.predict_proba(texts)[:, 1], gbm.predict_proba(feats)[:, 1], embed.predict_proba(layers)[:, 1],
            char.decision_function(texts), word.decision_function(texts),
        ])

    def _combine(self, scores: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """(combiner inputs, the seed's weighted mean) for base scores (see :meth:`_base_scores`)."""
        w = self.transformer_weight
        mean = (1 - w) * 0.5 * (scores[:, 0] + scores[:, 1]) + w * scores[:, 2]
        if self.combine == "stack":
            return np.column_stack([_logit(scores[:, :3]), scores[:, 3:]]), mean
        return _logit(mean)[:, None], mean

    def fit(
        self,
        reviews: pd.DataFrame | Sequence[str],
        labels: npt.ArrayLike,
        *,
        layers: npt.NDArray[np.floating[Any]] | None = None,
        features: pd.DataFrame | None = None,
    ) -> FakeDetector:
        """Fit the three base models and the combiner on out-of-fold base probabilities.

        Raises
        ------
        ValueError
            If labels are not binary with both classes present, sizes disagree, or a setting is invalid.
        """
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import StratifiedKFold

        # ranges in _parameter_constraints; InvalidParameterError is a ValueError (scikit-learn ships no annotations)
        self._validate_params()  # type: ignore[no-untyped-call]
        texts, lay, frame = self.prepare(reviews, layers=layers, features=features)
        y = _binary_labels(labels, len(texts))
        if np.bincount(y).min() < self.calibration_folds:
            raise ValueError(f"need at least {self.calibration_folds} reviews of each class to train")
        names = {f.name for f in FEATURES}
        present = [c for c in frame.columns if c in names and frame[c].notna().any()]
        self.feature_names_ = [c for c in present if c in TEXT_FEATURES] + [
            c for c in present if c not in TEXT_FEATURES
        ]
        feats = frame[self.feature_names_].to_numpy(dtype=float)
        oof = np.zeros((len(y), len(BASES)))
        folds = StratifiedKFold(self.calibration_folds, shuffle=True, random_state=self.random_state)
        for tr, te in folds.split(feats, y):
            bases = self._fit_bases([texts[i] for i in tr], lay[tr], feats[tr], y[tr])
            oof[te] = self._base_scores(bases, [texts[i] for i in te], lay[te], feats[te])
        z, _ = self._combine(oof)
        lr = LogisticRegression(C=1.0 if self.combine == "stack" else 1e4, max_iter=1000).fit(z, y)
        self.combiner_ = (float(lr.intercept_[0]), *(float(c) for c in lr.coef_[0]))
        self.oof_probability_ = sigmoid(z @ np.asarray(self.combiner_[1:]) + self.combiner_[0])
        self.ngram_, self.char_, self.word_, self.gbm_, self.embed_ = self._fit_bases(texts, lay, feats, y)
        self.n_train_ = len(y)
        return self

    # -- prediction -------------------------------------------------------------------------------------
    def predict_parts(
        self,
        reviews: pd.DataFrame | Sequence[str],
        *,
        layers: npt.NDArray[np.floating[Any]] | None = None,
        features: pd.DataFrame | None = None,
    ) -> pd.DataFrame:
        """Per-review base outputs (:data:`BASES`: ``ngram, gbm, transformer`` probabilities, ``char_svm,
        word_svm`` margins), the seed's weighted ``mean`` and the final ``fake_probability``."""
        check_is_fitted(self, ("ngram_", "char_", "word_", "gbm_", "embed_", "combiner_"))
        texts, lay, frame = self.prepare(reviews, layers=layers, features=features)
        cols = [frame[c].to_numpy(dtype=float) if c in frame.columns else np.full(len(frame), np.nan)
                for c in self.feature_names_]
        feats = np.column_stack(cols) if cols else np.zeros((len(frame), 0))
        scores = self._base_scores((self.ngram_, self.char_, self.word_, self.gbm_, self.embed_), texts, lay, feats)
        z, mean = self._combine(scores)
        out = pd.DataFrame(scores, columns=list(BASES))
        out["mean"] = mean
        out["fake_probability"] = sigmoid(z @ np.asarray(self.combiner_[1:]) + self.combiner_[0])
        return out

    def predict_proba(
        self,
        reviews: pd.DataFrame | Sequence[str],
        *,
        layers: npt.NDArray[np.floating[Any]] | None = None,
        features: pd.DataFrame | None = None,
    ) -> npt.NDArray[np.float64]:
        """Calibrated fake probability per review, in [0, 1]."""
        parts = self.predict_parts(reviews, layers=layers, features=features)
        return np.asarray(parts["fake_probability"].to_numpy(), dtype=np.float64)


def _binary_labels(labels: npt.ArrayLike, n: int) -> npt.NDArray[np.int64]:
    y = np.asarray(labels)
    if len(y) != n:
        raise ValueError(f"labels has {len(y)} values for {n} reviews")
    if y.dtype == bool:
        y = y.astype(int)
    try:
        yf = y.astype(float)
    except (TypeError, ValueError) as exc:
        raise ValueError("labels must be 0/1 or boolean (1 = fake)") from exc
    if not set(np.unique(yf).tolist()) <= {0.0, 1.0}:
        raise ValueError("labels must be 0/1 or boolean (1 = fake)")
    yi = yf.astype(np.int64)
    if len(np.unique(yi)) < 2:
        raise ValueError("labels need both classes (fake and genuine) to train")
    return yi
