"""Sentiment of a review text on 0-1 (0 very negative, 0.5 neutral, 1 very positive).

Model. Let :math:`t` be a text, :math:`\\phi(t) \\in \\mathbb{R}^{2688}` the normalised mean-pooled states of
the 7 encoder blocks (:meth:`Encoder.encode_layers`), :math:`v(t) = (c, p, n, u)` VADER's compound, positive,
negative and neutral scores, and :math:`\\psi(t)` the TF-IDF of word 1-2-grams and character 2-5-grams.
Two ridge regressions estimate the sentiment *intensity* :math:`s \\in [-1, 1]` (a human mean rating on
VADER's -4..4 scale divided by 4):

.. math::  \\hat s_d = w_d^\\top [\\phi(t); v(t)] + b_d, \\qquad \\hat s_w = w_w^\\top \\psi(t) + b_w,

each minimising :math:`\\sum_i (s_i - \\hat s_i)^2 + \\alpha \\lVert w \\rVert^2`, and are combined linearly,
:math:`\\hat s = c_0 + c_d \\hat s_d + c_w \\hat s_w`. With ``blend="stack"`` (default) the coefficients are a
least-squares fit of the targets on *out-of-fold* head predictions (``folds``-fold CV inside :meth:`fit`, so
the blend never sees a head's own training rows); with ``blend="fixed"`` they are
:math:`(0, 1 - \\lambda, \\lambda)`, :math:`\\lambda` = ``text_weight`` = 0.5.
The score is :math:`\\mathrm{clip}((1 + \\hat s) / 2, 0, 1)`: 0.5 is neutral (an intensity of 0).

Training data (the shipped model): the UCI Sentiment Labelled Sentences, Amazon and Yelp (CC BY 4.0),
whose 0/1 labels become intensities :math:`\\mp` ``binary_intensity`` (0.5, i.e. a human mean of +-2), and
VADER's Amazon review snippets (MIT) with their human means / 4. VADER alone (:func:`vader_sentiment`) is
the fallback when no trained model is available.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from truescore.text._common import check_texts, ngram_vectorizer
from truescore.text.features import vader_scores

__all__ = ["SentimentModel", "intensity_targets", "vader_sentiment"]


def vader_sentiment(texts: Sequence[str]) -> npt.NDArray[np.float64]:
    """VADER's compound score mapped to 0-1: :math:`(c + 1) / 2` (the fallback sentiment)."""
    return (vader_scores(check_texts(texts))[:, 0] + 1.0) / 2.0


def intensity_targets(labels: npt.ArrayLike, *, binary_intensity: float = 0.5) -> npt.NDArray[np.float64]:
    """Map labels to intensities in [-1, 1].

    0/1 (or boolean) labels become :math:`\\mp` ``binary_intensity``; other numbers are taken as human means:
    already in [-1, 1] as they are, in [-4, 4] (VADER's scale) divided by 4, in [1, 5] (stars) as
    :math:`(r - 3) / 2`.

    Raises
    ------
    ValueError
        If labels are not numeric or fall outside every known scale.
    """
    try:
        y = np.asarray(labels, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError("sentiment labels must be numbers (0/1, intensities in [-4, 4], or stars 1-5)") from exc
    if y.size == 0 or np.isnan(y).any():
        raise ValueError("sentiment labels are empty or contain missing values")
    vals = set(np.unique(y).tolist())
    if vals <= {0.0, 1.0}:
        return np.where(y > 0.5, binary_intensity, -binary_intensity)
    lo, hi = float(y.min()), float(y.max())
    if lo >= -1.0 and hi <= 1.0:
        return y
    if lo >= 1.0 and hi <= 5.0 and np.allclose(y, np.round(y)):
        return (y - 3.0) / 2.0
    if lo >= -4.0 and hi <= 4.0:
        return y / 4.0
    raise ValueError(f"sentiment labels in [{lo}, {hi}] match no known scale (0/1, [-1,1], [-4,4], 1-5)")


@dataclass
class _Inputs:
    texts: list[str]
    dense: npt.NDArray[np.float64]


class SentimentModel(BaseEstimator):
    """Encoder + VADER ridge head blended with an n-gram ridge head; 0-1 sentiment (a scikit-learn estimator:
    ``__init__`` only stores, :meth:`fit` validates; both heads are closed-form ridge fits, so there is no
    iteration limit to reach).

    Parameters
    ----------
    dense_alpha : float, default=3.0
        Ridge penalty of the encoder+VADER head.
    text_alpha : float, default=1.0
        Ridge penalty of the n-gram head.
    blend : {"stack", "fixed"}, default="stack"
        Out-of-fold least-squares blend of the two heads, or the fixed average with ``text_weight``.
    text_weight : float, default=0.5
        :math:`\\lambda`, the n-gram head's share with ``blend="fixed"``.
    folds : int, default=5
        Folds of the internal CV that fits the stacked blend.
    binary_intensity : float, default=0.5
        Intensity given to 0/1-labelled training texts (used by :func:`intensity_targets` callers).

    Attributes
    ----------
    dense_ : Ridge
    text_ : Pipeline (n-gram TF-IDF, Ridge)
    blend_ : tuple of float
        :math:`(c_0, c_d, c_w)`.
    n_train_ : int
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "dense_alpha": [Interval(Real, 0, None, closed="left")],
        "text_alpha": [Interval(Real, 0, None, closed="left")],
        "blend": [StrOptions({"stack", "fixed"})],
        "text_weight": [Interval(Real, 0, 1, closed="both")],
        "folds": [Interval(Integral, 2, None, closed="left")],
        "binary_intensity": [Interval(Real, 0, 1, closed="right")],
    }

    def __init__(
        self,
        *,
        dense_alpha: float = 3.0,
        text_alpha: float = 1.0,
        blend: str = "stack",
        text_weight: float = 0.5,
        folds: int = 5,
        binary_intensity: float = 0.5,
    ) -> None:
        self.dense_alpha = dense_alpha
        self.text_alpha = text_alpha
        self.blend = blend
        self.text_weight = text_weight
        self.folds = folds
        self.binary_intensity = binary_intensity

    # -- inputs -----------------------------------------------------------------------------------------
    @staticmethod
    def _inputs(
        texts: Sequence[str],
        layers: npt.NDArray[np.floating[Any]] | None,
        vader: npt.NDArray[np.float64] | None,
    ) -> _Inputs:
        t = check_texts(texts)
        if layers is None:
            from truescore.text.embed import get_encoder

            layers = get_encoder().encode_layers(t)
        if vader is None:
            vader = vader_scores(t)
        if len(layers) != len(t) or len(vader) != len(t):
            raise ValueError("layers / vader rows do not match the number of texts")
        return _Inputs(t, np.hstack([np.asarray(layers, dtype=np.float64), vader]))

    # -- fit / predict ----------------------------------------------------------------------------------
    def fit(
        self,
        texts: Sequence[str],
        intensity: npt.ArrayLike,
        *,
        layers: npt.NDArray[np.floating[Any]] | None = None,
        vader: npt.NDArray[np.float64] | None = None,
    ) -> SentimentModel:
        """Fit both heads on texts and target intensities in [-1, 1] (see :func:`intensity_targets`)."""
        from sklearn.linear_model import LinearRegression
        from sklearn.model_selection import KFold

        # ranges in _parameter_constraints; InvalidParameterError is a ValueError (scikit-learn ships no annotations)
        self._validate_params()  # type: ignore[no-untyped-call]
        y = np.asarray(intensity, dtype=float)
        x = self._inputs(texts, layers, vader)
        if len(y) != len(x.texts):
            raise ValueError("intensity must have one value per text")
        if len(y) < 10:
            raise ValueError(f"need at least 10 training texts, got {len(y)}")
        self.blend_ = (0.0, 1.0 - self.text_weight, self.text_weight)
        if self.blend == "stack":
            oof = np.zeros((len(y), 2))
            for tr, te in KFold(self.folds, shuffle=True, random_state=0).split(x.dense):
                d, w = self._fit_heads([x.texts[i] for i in tr], x.dense[tr], y[tr])
                oof[te, 0] = d.predict(x.dense[te])
                oof[te, 1] = w.predict([x.texts[i] for i in te])
            lr = LinearRegression().fit(oof, y)
            self.blend_ = (float(lr.intercept_), float(lr.coef_[0]), float(lr.coef_[1]))
        self.dense_, self.text_ = self._fit_heads(x.texts, x.dense, y)
        self.n_train_ = len(y)
        return self

    def _fit_heads(self, texts: list[str], dense: npt.NDArray[np.float64], y: npt.NDArray[np.float64]) -> Any:
        from sklearn.linear_model import Ridge
        from sklearn.pipeline import make_pipeline

        d = Ridge(alpha=self.dense_alpha).fit(dense, y)
        w = make_pipeline(ngram_vectorizer(), Ridge(alpha=self.text_alpha)).fit(texts, y)
        return d, w

    def intensity(
        self,
        texts: Sequence[str],
        *,
        layers: npt.NDArray[np.floating[Any]] | None = None,
        vader: npt.NDArray[np.float64] | None = None,
    ) -> npt.NDArray[np.float64]:
        """Estimated intensity :math:`\\hat s` (about [-1, 1], not clipped)."""
        check_is_fitted(self, ("dense_", "text_", "blend_"))
        x = self._inputs(texts, layers, vader)
        c0, cd, cw = self.blend_
        dense = np.asarray(self.dense_.predict(x.dense), dtype=np.float64)
        text = np.asarray(self.text_.predict(x.texts), dtype=np.float64)
        return c0 + cd * dense + cw * text

    def predict(
        self,
        texts: Sequence[str],
        *,
        layers: npt.NDArray[np.floating[Any]] | None = None,
        vader: npt.NDArray[np.float64] | None = None,
    ) -> npt.NDArray[np.float64]:
        """Sentiment in [0, 1]: :math:`\\mathrm{clip}((1 + \\hat s)/2, 0, 1)`."""
        return np.clip((1.0 + self.intensity(texts, layers=layers, vader=vader)) / 2.0, 0.0, 1.0)
