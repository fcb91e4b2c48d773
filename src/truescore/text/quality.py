"""Review quality score (0-1) and its product-level aggregates.

Model. The seed's 11 features :math:`f` (:data:`QUALITY_FEATURES`: text length, word count, sentences,
rating, rating extremity, recommendation, helpful and unhelpful votes, the user's review count and average
rating, photos) go into gradient-boosted trees, :math:`p_g = \\mathrm{GBM}(f)`; a logistic head on the frozen
encoder's layer means :math:`\\phi(t)` reads the text itself, :math:`p_e = \\sigma(w^\\top \\phi(t) + b)`.
The score is the Platt-calibrated average

.. math::  q = \\sigma\\bigl(a\\, \\mathrm{logit}(\\tfrac12 (p_g + p_e)) + c\\bigr),

with :math:`(a, c)` fitted on out-of-fold averages of the training data. Missing features (a text-only data
set, no votes) are NaN and routed by the trees.

Proxy label (:func:`proxy_label`): the seed's ``is_incentivized`` where the data has it, else any boolean
column named by the caller, else **helpfulness**: a review with at least ``min_votes`` (3) helpfulness votes
is high quality when at least ``threshold`` (75%) of them say helpful, low quality otherwise; reviews with
fewer votes are unlabelled. Readers' votes are the most direct public signal of a review's usefulness; the
vote minimum keeps one-vote noise out, and 75% splits the labelled Amazon Musical Instruments reviews about
70/30. With a helpfulness label the vote counts are *not* model inputs (they define the label).

Aggregates (:func:`product_quality`): per item, the mean quality, the share of reviews with
:math:`q \\ge 0.7` (high) and with :math:`q \\le 0.3` (low).
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted

from truescore.config import TextSettings
from truescore.text._common import check_texts, sigmoid
from truescore.text.features import compute_features

__all__ = ["QUALITY_FEATURES", "VOTE_FEATURES", "QualityModel", "helpfulness_label", "product_quality", "proxy_label"]

QUALITY_FEATURES: tuple[str, ...] = (
    "char_count",
    "word_count",
    "sentence_count",
    "rating_norm",
    "rating_extremity",
    "is_recommended",
    "helpful_votes",
    "unhelpful_votes",
    "user_review_count",
    "user_mean_rating",
    "photo_count",
)
VOTE_FEATURES: tuple[str, ...] = ("helpful_votes", "unhelpful_votes")
_EPS = 1e-6
#: defaults kept in the settings object (their one source)
_SETTINGS = TextSettings()


def _logit(p: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    q = np.clip(p, _EPS, 1 - _EPS)
    return np.log(q / (1 - q))


def helpfulness_label(
    reviews: pd.DataFrame, *, min_votes: int = 3, threshold: float = 0.75
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.int64]]:
    """``(labelled, y)``: reviews with >= ``min_votes`` votes, and 1 where helpful share >= ``threshold``.

    Uses ``helpful_yes``/``helpful_total`` columns.

    Raises
    ------
    ValueError
        If the columns are missing or the parameters are out of range.
    """
    if not {"helpful_yes", "helpful_total"}.issubset(reviews.columns):
        raise ValueError("helpfulness label needs columns 'helpful_yes' and 'helpful_total'")
    if min_votes < 1 or not 0.0 < threshold <= 1.0:
        raise ValueError("min_votes must be >= 1 and threshold in (0, 1]")
    yes = pd.to_numeric(reviews["helpful_yes"], errors="coerce").fillna(0).to_numpy(dtype=float)
    tot = pd.to_numeric(reviews["helpful_total"], errors="coerce").fillna(0).to_numpy(dtype=float)
    labelled = tot >= min_votes
    y = np.where(labelled, (yes / np.maximum(tot, 1)) >= threshold, False).astype(np.int64)
    return labelled, y


def proxy_label(
    reviews: pd.DataFrame, label_col: str | None = None, **helpfulness: Any
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.int64], str]:
    """The training label: ``(labelled, y, kind)`` with kind in {"column", "is_incentivized", "helpfulness"}.

    ``label_col`` (any boolean / 0-1 column) wins; else ``is_incentivized`` if it has values; else
    :func:`helpfulness_label`.
    """
    if label_col is not None:
        if label_col not in reviews.columns:
            raise ValueError(f"label column {label_col!r} not in the data (columns: {', '.join(reviews.columns)})")
        s = reviews[label_col]
        mapped = s.map(_to_bool)
        labelled = mapped.notna().to_numpy()
        return labelled, mapped.fillna(False).astype(int).to_numpy(), "column"
    if "is_incentivized" in reviews.columns and reviews["is_incentivized"].notna().any():
        s = reviews["is_incentivized"].map(_to_bool)
        return s.notna().to_numpy(), s.fillna(False).astype(int).to_numpy(), "is_incentivized"
    labelled, y = helpfulness_label(reviews, **helpfulness)
    return labelled, y, "helpfulness"


def _to_bool(v: Any) -> bool | None:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return None
    if isinstance(v, str):
        low = v.strip().lower()
        if low in ("1", "true", "yes", "y", "t"):
            return True
        if low in ("0", "false", "no", "n", "f"):
            return False
        raise ValueError(f"label value {v!r} is not boolean")
    if isinstance(v, bool | np.bool_):
        return bool(v)
    if float(v) in (0.0, 1.0):
        return bool(v)
    raise ValueError(f"label value {v!r} is not boolean (expected 0/1)")


class QualityModel(BaseEstimator):
    """GBM on the seed's 11 features averaged with an encoder head, Platt-calibrated.

    A scikit-learn estimator: ``__init__`` only stores, :meth:`fit` validates. The logistic regressions
    inside raise scikit-learn's own :class:`~sklearn.exceptions.ConvergenceWarning` if they stop at their
    iteration limit; nothing here catches it.

    Parameters
    ----------
    use_votes : bool or None, default=None
        Whether vote counts are inputs; None = decided at fit (False for a helpfulness label).
    embed_C : float, default=0.3
        Inverse L2 penalty of the encoder head.
    gbm_estimators : int, default=200
    calibration_folds : int, default=5
        0 disables calibration.
    random_state : int, default=0
        Default: ``TextSettings.random_state``.

    Attributes
    ----------
    feature_names_ : list of str
    label_kind_ : str
    gbm_, embed_, platt_
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "use_votes": ["boolean", None],
        "embed_C": [Interval(Real, 0, None, closed="neither")],
        "gbm_estimators": [Interval(Integral, 1, None, closed="left")],
        "calibration_folds": [Interval(Integral, 0, None, closed="left")],
        "random_state": [Interval(Integral, 0, None, closed="left")],
    }

    def __init__(
        self,
        *,
        use_votes: bool | None = None,
        embed_C: float = 0.3,
        gbm_estimators: int = 200,
        calibration_folds: int = 5,
        random_state: int = _SETTINGS.random_state,
    ) -> None:
        self.use_votes = use_votes
        self.embed_C = embed_C
        self.gbm_estimators = gbm_estimators
        self.calibration_folds = calibration_folds
        self.random_state = random_state

    def _fit_bases(self, f: npt.NDArray[np.float64], lay: npt.NDArray[np.float64], y: npt.NDArray[Any]) -> Any:
        import lightgbm as lgb
        from sklearn.linear_model import LogisticRegression

        gbm = lgb.LGBMClassifier(
            n_estimators=self.gbm_estimators, learning_rate=0.05, num_leaves=15, min_child_samples=20,
            subsample=0.8, subsample_freq=1, colsample_bytree=0.8, random_state=self.random_state,
            deterministic=True, n_jobs=1, verbose=-1,
        ).fit(f, y)
        emb = LogisticRegression(C=self.embed_C, max_iter=3000).fit(lay, y)
        return gbm, emb

    @staticmethod
    def _mean(bases: Any, f: npt.NDArray[np.float64], lay: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        gbm, emb = bases
        p_gbm = np.asarray(gbm.predict_proba(f)[:, 1], dtype=np.float64)
        p_emb = np.asarray(emb.predict_proba(lay)[:, 1], dtype=np.float64)
        return 0.5 * (p_gbm + p_emb)

    def fit(
        self,
        features: pd.DataFrame,
        layers: npt.NDArray[np.floating[Any]],
        y: npt.ArrayLike,
        *,
        label_kind: str = "column",
    ) -> QualityModel:
        """Fit on feature rows (:func:`compute_features` output), layer embeddings and 0/1 labels."""
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import StratifiedKFold

        # ranges in _parameter_constraints; InvalidParameterError is a ValueError (scikit-learn ships no annotations)
        self._validate_params()  # type: ignore[no-untyped-call]
        yy = np.asarray(y).astype(np.int64)
        if len(np.unique(yy)) < 2:
            raise ValueError("quality labels need both classes")
        lay = np.asarray(layers, dtype=np.float64)
        if len(features) != len(yy) or len(lay) != len(yy):
            raise ValueError("features, layers and labels must have the same number of rows")
        use_votes = self.use_votes if self.use_votes is not None else label_kind != "helpfulness"
        self.label_kind_ = label_kind
        self.feature_names_ = [c for c in QUALITY_FEATURES if use_votes or c not in VOTE_FEATURES]
        f = _select(features, self.feature_names_)
        self.platt_ = (1.0, 0.0)
        if self.calibration_folds >= 2 and np.bincount(yy).min() >= self.calibration_folds:
            oof = np.zeros(len(yy))
            folds = StratifiedKFold(self.calibration_folds, shuffle=True, random_state=self.random_state)
            for tr, te in folds.split(f, yy):
                oof[te] = self._mean(self._fit_bases(f[tr], lay[tr], yy[tr]), f[te], lay[te])
            lr = LogisticRegression(C=1e4, max_iter=1000).fit(_logit(oof)[:, None], yy)
            self.platt_ = (float(lr.coef_[0, 0]), float(lr.intercept_[0]))
        self.gbm_, self.embed_ = self._fit_bases(f, lay, yy)
        self.n_train_ = len(yy)
        return self

    def predict(self, features: pd.DataFrame, layers: npt.NDArray[np.floating[Any]]) -> npt.NDArray[np.float64]:
        """Quality in [0, 1] per review."""
        check_is_fitted(self, ("gbm_", "embed_", "platt_"))
        f = _select(features, self.feature_names_)
        lay = np.asarray(layers, dtype=np.float64)
        a, c = self.platt_
        return sigmoid(a * _logit(self._mean((self.gbm_, self.embed_), f, lay)) + c)

    def predict_reviews(
        self, reviews: pd.DataFrame, layers: npt.NDArray[np.floating[Any]] | None = None
    ) -> npt.NDArray[np.float64]:
        """Convenience: features and (if not given) embeddings computed here."""
        feats = compute_features(reviews, global_duplicates=False)
        if layers is None:
            from truescore.text.embed import get_encoder

            layers = get_encoder().encode_layers(check_texts(reviews["text"].tolist(), name="text"))
        return self.predict(feats, layers)


def _select(features: pd.DataFrame, names: Sequence[str]) -> npt.NDArray[np.float64]:
    cols = [features[c].to_numpy(dtype=float) if c in features.columns else np.full(len(features), np.nan)
            for c in names]
    return np.column_stack(cols) if cols else np.zeros((len(features), 0))


def product_quality(
    scores: pd.DataFrame, *, high: float = 0.7, low: float = 0.3
) -> pd.DataFrame:
    """Per-item aggregates of review quality.

    Parameters
    ----------
    scores : DataFrame
        Columns ``item_id`` and ``quality``.

    Returns
    -------
    DataFrame
        ``item_id, n_reviews, mean_quality, share_high (q >= high), share_low (q <= low)``.
    """
    if not {"item_id", "quality"}.issubset(scores.columns):
        raise ValueError("scores need columns 'item_id' and 'quality'")
    q = pd.to_numeric(scores["quality"], errors="coerce")
    frame = pd.DataFrame({"item_id": scores["item_id"], "q": q, "hi": q >= high, "lo": q <= low}).dropna(subset=["q"])
    g = frame.groupby("item_id", sort=True)
    out = pd.DataFrame({
        "n_reviews": g["q"].size(),
        "mean_quality": g["q"].mean(),
        "share_high": g["hi"].mean(),
        "share_low": g["lo"].mean(),
    }).reset_index()
    return out
