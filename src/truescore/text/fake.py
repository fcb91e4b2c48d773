"""Fake / incentivized / machine-generated review probability (0-1, "not binary": downstream decides).

Model. For a review with text :math:`t` and feature row :math:`f` (:mod:`truescore.text.features`: the text
and style categories always; rating, history, timing, engagement, duplication and disclosure where the
training data has them), three base models each output a probability of the positive class (fake):

1. :math:`p_w`: logistic regression on the TF-IDF of word 1-2-grams and character 2-5-grams
   (:math:`C` = ``ngram_C``), the classic deceptive-opinion-spam model;
2. :math:`p_g`: gradient-boosted trees (LightGBM) on the feature row (NaN routed natively);
3. :math:`p_e`: logistic regression on the encoder's 7 normalised layer means
   (:meth:`Encoder.encode_layers`), the "transformer" model (frozen MiniLM with a trained head).

Two ways to combine them (``combine``), both fitted on out-of-fold base probabilities of the training data
(``calibration_folds``-fold CV inside :meth:`FakeDetector.fit`, so the combiner never sees a base model's
own training rows):

- ``"stack"`` (default): a logistic regression on the base logits (stacking),

  .. math::  p = \\sigma\\bigl(\\beta_0 + \\beta_w\\, \\mathrm{logit}\\, p_w + \\beta_g\\, \\mathrm{logit}\\, p_g
             + \\beta_e\\, \\mathrm{logit}\\, p_e\\bigr);

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
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from truescore.text._common import check_texts, ngram_vectorizer, sigmoid
from truescore.text.features import FEATURES, TEXT_FEATURES, compute_features

__all__ = ["FakeDetector"]

_EPS = 1e-6


def _logit(p: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    q = np.clip(p, _EPS, 1 - _EPS)
    return np.log(q / (1 - q))


class FakeDetector:
    """Stacked (or 50/50) ensemble of an n-gram model, a feature GBM and a frozen-encoder head.

    Parameters
    ----------
    combine : {"stack", "mean"}, default="stack"
        Logistic stacking of the base logits, or the seed's weighted mean with Platt calibration.
    transformer_weight : float, default=0.5
        :math:`w`, the encoder head's share in ``combine="mean"`` (seed: 50% traditional + 50% BERT).
    ngram_C : float, default=30.0
        Inverse L2 penalty of the n-gram logistic regression.
    embed_C : float, default=10.0
        Inverse L2 penalty of the encoder-head logistic regression.
    gbm_estimators : int, default=300
        Boosting rounds of the feature model.
    calibration_folds : int, default=5
        Folds of the internal cross-validation producing the out-of-fold base probabilities (>= 2).
    random_state : int, default=0
        Seed of the GBM and of the folds.

    Attributes
    ----------
    feature_names_ : list of str
        Feature columns the GBM uses (those with any non-missing value in the training data).
    ngram_, gbm_, embed_ : fitted base models
    combiner_ : tuple of float
        ``stack``: :math:`(\\beta_0, \\beta_w, \\beta_g, \\beta_e)`; ``mean``: Platt :math:`(a, b)`.
    """

    def __init__(
        self,
        *,
        combine: str = "stack",
        transformer_weight: float = 0.5,
        ngram_C: float = 30.0,
        embed_C: float = 10.0,
        gbm_estimators: int = 300,
        calibration_folds: int = 5,
        random_state: int = 0,
    ) -> None:
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
    ) -> tuple[Any, Any, Any]:
        import lightgbm as lgb
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline

        ngram = make_pipeline(ngram_vectorizer(), LogisticRegression(C=self.ngram_C, max_iter=3000)).fit(texts, y)
        gbm = lgb.LGBMClassifier(
            n_estimators=self.gbm_estimators, learning_rate=0.05, num_leaves=15, min_child_samples=10,
            subsample=0.8, subsample_freq=1, colsample_bytree=0.8, random_state=self.random_state,
            deterministic=True, n_jobs=1, verbose=-1,
        ).fit(feats, y)
        embed = LogisticRegression(C=self.embed_C, max_iter=3000).fit(layers, y)
        return ngram, gbm, embed

    @staticmethod
    def _base_probs(
        bases: tuple[Any, Any, Any], texts: list[str], layers: npt.NDArray[np.float64],
        feats: npt.NDArray[np.float64],
    ) -> npt.NDArray[np.float64]:
        ngram, gbm, embed = bases
        return np.column_stack([
            ngram.predict_proba(texts)[:, 1], gbm.predict_proba(feats)[:, 1], embed.predict_proba(layers)[:, 1]
        ])

    def _combine(self, probs: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """(combined score before the final sigmoid, weighted mean) for base probabilities ``probs``."""
        w = self.transformer_weight
        mean = (1 - w) * 0.5 * (probs[:, 0] + probs[:, 1]) + w * probs[:, 2]
        if self.combine == "stack":
            return _logit(probs), mean
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

        if self.combine not in ("stack", "mean"):
            raise ValueError(f"combine must be 'stack' or 'mean', got {self.combine!r}")
        if not 0.0 <= self.transformer_weight <= 1.0:
            raise ValueError(f"transformer_weight must be in [0, 1], got {self.transformer_weight}")
        if self.calibration_folds < 2:
            raise ValueError(f"calibration_folds must be >= 2, got {self.calibration_folds}")
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
        oof = np.zeros((len(y), 3))
        folds = StratifiedKFold(self.calibration_folds, shuffle=True, random_state=self.random_state)
        for tr, te in folds.split(feats, y):
            bases = self._fit_bases([texts[i] for i in tr], lay[tr], feats[tr], y[tr])
            oof[te] = self._base_probs(bases, [texts[i] for i in te], lay[te], feats[te])
        z, _ = self._combine(oof)
        lr = LogisticRegression(C=1.0 if self.combine == "stack" else 1e4, max_iter=1000).fit(z, y)
        self.combiner_ = (float(lr.intercept_[0]), *(float(c) for c in lr.coef_[0]))
        self.oof_probability_ = sigmoid(z @ np.asarray(self.combiner_[1:]) + self.combiner_[0])
        self.ngram_, self.gbm_, self.embed_ = self._fit_bases(texts, lay, feats, y)
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
        """Per-review base probabilities (``ngram, gbm, transformer``), the seed's weighted ``mean`` and the
        final ``fake_probability``."""
        if not hasattr(self, "ngram_"):
            raise RuntimeError("FakeDetector is not fitted")
        texts, lay, frame = self.prepare(reviews, layers=layers, features=features)
        cols = [frame[c].to_numpy(dtype=float) if c in frame.columns else np.full(len(frame), np.nan)
                for c in self.feature_names_]
        feats = np.column_stack(cols) if cols else np.zeros((len(frame), 0))
        probs = self._base_probs((self.ngram_, self.gbm_, self.embed_), texts, lay, feats)
        z, mean = self._combine(probs)
        out = pd.DataFrame(probs, columns=["ngram", "gbm", "transformer"])
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
        return self.predict_parts(reviews, layers=layers, features=features)["fake_probability"].to_numpy()


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
