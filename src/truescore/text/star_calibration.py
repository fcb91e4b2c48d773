r"""Sentiment calibrated per topic from the store's own stars (issue 22, item 1).

The shipped sentiment head ranks reviews of a new domain well (AUC 0.92-0.93) but its 0.5 threshold does not
carry over: on Amazon musical instruments it says "positive" at 0.5 for 87% of 4-5 star reviews against 95%
for always saying positive. Every store holds weak labels for free: a review rated in the bottom quarter of
its scale (1-2 of 1-5) is negative, one in the top quarter (4-5) positive; the middle (3) is no label.

Model (Platt scaling on the head's logit)
-----------------------------------------
With the head's score :math:`s \in (0, 1)` and :math:`z = \operatorname{logit}(s)`, the calibrated score is
:math:`p = \sigma(a z + b)`. Per store a global :math:`(a_g, b_g)` and per topic :math:`(a_t, b_t)` are
the maximum a posteriori fits of the weak labels :math:`y \in \{0, 1\}`:

.. math::

    (a_g, b_g) = \arg\min_{a, b} \sum_i \ell(y_i, \sigma(a z_i + b)) + \tfrac{\lambda}{2}[(a - 1)^2 + b^2],

    (a_t, b_t) = \arg\min_{a, b} \sum_{i \in t} \ell(y_i, \sigma(a z_i + b))
                 + \tfrac{\lambda}{2}[(a - a_g)^2 + (b - b_g)^2],

:math:`\ell` the log loss and :math:`\lambda` = ``text.calibration_prior_strength`` (a Gaussian prior of
precision :math:`\lambda`: about :math:`\lambda` labels' worth of pull towards the shipped head, identity
:math:`a = 1, b = 0`, for the store, and towards the store's fit for a topic). The intercept absorbs the
domain's class prior (label shift, which Saerens et al. 2002 estimate by EM when no label is at hand:
here the stars give it directly), the slope the head's over- or under-confidence there (temperature
:math:`1/a`). A topic with fewer than ``text.calibration_min_labels`` labelled reviews takes the
store's fit; a store with fewer takes the shipped head unchanged. Reviews without stars (or with 3) get
their topic's calibrated score like every other.

The fit is data of the store: :meth:`StarCalibration.as_dict` is recorded with the text run
(``model_runs.details``), and its digest is part of the scores' model version.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.optimize import minimize
from scipy.special import expit, logit

from truescore.config import TextSettings
from truescore.domain import DEFAULT_TOPIC

log = logging.getLogger(__name__)

__all__ = ["PlattFit", "StarCalibration", "calibrate_scores", "fit_star_calibration", "star_labels"]

_EPS = 1e-6
#: normalised rating (0 = the scale's bottom, 1 = its top) at or below which a review is a negative label,
#: and at or above which (one minus it) a positive one: 1-2 and 4-5 of 1-5
LABEL_QUARTER = 0.25

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class PlattFit:
    """:math:`p = \\sigma(a \\operatorname{logit}(s) + b)` with the labels it was fitted on."""

    a: float = 1.0
    b: float = 0.0
    n_positive: int = 0
    n_negative: int = 0

    def apply(self, scores: npt.ArrayLike) -> FloatArray:
        z = logit(np.clip(np.asarray(scores, dtype=np.float64), _EPS, 1 - _EPS))
        return np.asarray(expit(self.a * z + self.b), dtype=np.float64)


#: the shipped head unchanged
IDENTITY = PlattFit()


@dataclass(frozen=True, slots=True)
class StarCalibration:
    """A store's fit: the global one and one per topic that had enough labels (see the module docstring)."""

    store_fit: PlattFit = IDENTITY
    topics: dict[str, PlattFit] = field(default_factory=dict)

    @property
    def fitted(self) -> bool:
        """Was anything fitted (False: the shipped head is used as it is)?"""
        return self.store_fit != IDENTITY or bool(self.topics)

    def for_topic(self, topic: str | None) -> PlattFit:
        return self.topics.get(str(topic), self.store_fit) if topic is not None else self.store_fit

    def apply(self, scores: npt.ArrayLike, topics: Sequence[str | None]) -> FloatArray:
        """Calibrated scores: each review by its topic's fit (the store's for a topic without one)."""
        s = np.asarray(scores, dtype=np.float64)
        if len(topics) != s.shape[0]:
            raise ValueError("one topic per score")
        out = self.store_fit.apply(s)
        keys = np.asarray([str(t) for t in topics], dtype=object)
        for topic, fit in self.topics.items():
            mask = keys == topic
            if mask.any():
                out[mask] = fit.apply(s[mask])
        return out

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready record: ``{"store": {a, b, n_positive, n_negative}, "topics": {topic: ...}}``."""
        def one(f: PlattFit) -> dict[str, Any]:
            return {"a": round(f.a, 6), "b": round(f.b, 6), "n_positive": f.n_positive, "n_negative": f.n_negative}

        return {"store": one(self.store_fit), "topics": {t: one(f) for t, f in sorted(self.topics.items())}}

    @property
    def version(self) -> str:
        """``cal-<first 8 hex digits of the SHA-256 of as_dict()>``, or ``cal-none`` when nothing was fitted."""
        if not self.fitted:
            return "cal-none"
        digest = hashlib.sha256(json.dumps(self.as_dict(), sort_keys=True).encode()).hexdigest()
        return f"cal-{digest[:8]}"


def star_labels(rating: npt.ArrayLike, min_rating: npt.ArrayLike, max_rating: npt.ArrayLike) -> FloatArray:
    """Weak sentiment labels from stars: 1.0 in the top quarter of the review's scale, 0.0 in the bottom
    quarter, NaN in between or where there is no rating (4-5 of 1-5 positive, 1-2 negative, 3 none)."""
    r = np.asarray(rating, dtype=np.float64)
    lo = np.asarray(min_rating, dtype=np.float64)
    hi = np.asarray(max_rating, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        x = (r - lo) / (hi - lo)
    out = np.full(r.shape, np.nan)
    out[x >= 1 - LABEL_QUARTER - 1e-9] = 1.0
    out[x <= LABEL_QUARTER + 1e-9] = 0.0
    out[~np.isfinite(x)] = np.nan
    return out


def _map_fit(z: FloatArray, y: FloatArray, strength: float, centre: PlattFit) -> PlattFit:
    """The MAP Platt fit of labels ``y`` on logits ``z`` with a Gaussian prior of precision ``strength``
    centred on ``centre`` (module docstring). The objective is convex; L-BFGS from the centre."""
    a0, b0 = centre.a, centre.b

    def objective(w: FloatArray) -> tuple[float, FloatArray]:
        t = w[0] * z + w[1]
        # log loss in the stable form log(1 + e^t) - y t
        loss = float(np.sum(np.logaddexp(0.0, t) - y * t)) + 0.5 * strength * ((w[0] - a0) ** 2 + (w[1] - b0) ** 2)
        g = expit(t) - y
        grad = np.array([float(g @ z) + strength * (w[0] - a0), float(g.sum()) + strength * (w[1] - b0)])
        return loss, grad

    res = minimize(objective, np.array([a0, b0]), jac=True, method="L-BFGS-B")
    n_pos = int((y == 1).sum())
    return PlattFit(float(res.x[0]), float(res.x[1]), n_pos, int(y.shape[0] - n_pos))


def fit_star_calibration(scores: npt.ArrayLike, labels: npt.ArrayLike, topics: Sequence[str | None], *,
                         min_labels: int = 50, prior_strength: float = 10.0) -> StarCalibration:
    """Fit the store's and each topic's calibration from weak star labels (:func:`star_labels`).

    Parameters
    ----------
    scores : array of float
        The sentiment head's scores in [0, 1], one per review.
    labels : array of float
        1 positive, 0 negative, NaN no label (a 3 of 1-5, or no rating).
    topics : sequence of str
        Each review's topic.
    min_labels : int, default=50
        Labelled reviews a fit needs (the store's, and a topic's); fewer: the shipped head, or the store's fit.
    prior_strength : float, default=10
        :math:`\\lambda`, the prior's precision (about that many labels' worth of pull).

    Returns
    -------
    StarCalibration
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    if s.shape != y.shape or len(topics) != s.shape[0]:
        raise ValueError("scores, labels and topics must have one entry per review")
    if min_labels < 1 or prior_strength < 0:
        raise ValueError("min_labels must be >= 1 and prior_strength >= 0")
    has = np.isfinite(y) & np.isfinite(s)
    if int(has.sum()) < min_labels:
        return StarCalibration()
    z = logit(np.clip(s, _EPS, 1 - _EPS))
    store_fit = _map_fit(z[has], y[has], prior_strength, IDENTITY)
    keys = np.asarray([str(t) for t in topics], dtype=object)
    fits: dict[str, PlattFit] = {}
    for topic in sorted(set(keys[has].tolist())):
        mask = has & (keys == topic)
        if int(mask.sum()) >= min_labels:
            fits[str(topic)] = _map_fit(z[mask], y[mask], prior_strength, store_fit)
    return StarCalibration(store_fit, fits)


def calibrate_scores(reviews: pd.DataFrame, scored: pd.DataFrame, cfg: TextSettings) -> StarCalibration:
    """What ``truescore score`` and ``truescore spark score`` do after scoring: fit the calibration from the
    stars of ``reviews`` (``rating``, ``min_rating``, ``max_rating``, ``topic``; one row per row of ``scored``,
    same order) and replace ``scored["sentiment"]`` by the calibrated scores, in place. With
    ``text.calibrate_sentiment`` off, or fewer than ``text.calibration_min_labels`` star labels, the shipped
    head stands (said in the log). Returns the fit (:attr:`StarCalibration.fitted` False: nothing changed)."""
    if not cfg.calibrate_sentiment:
        return StarCalibration()
    if len(reviews) != len(scored):
        raise ValueError("one review row per scored row")
    n = len(reviews)
    topics = (reviews["topic"].fillna(DEFAULT_TOPIC).astype(str).tolist() if "topic" in reviews.columns
              else [DEFAULT_TOPIC] * n)
    lo = reviews["min_rating"] if "min_rating" in reviews.columns else np.ones(n)
    hi = reviews["max_rating"] if "max_rating" in reviews.columns else np.full(n, 5.0)
    labels = star_labels(reviews["rating"], lo, hi)
    calibration = fit_star_calibration(scored["sentiment"].to_numpy(), labels, topics,
                                       min_labels=cfg.calibration_min_labels,
                                       prior_strength=cfg.calibration_prior_strength)
    if not calibration.fitted:
        log.info("sentiment: %d star-labelled reviews, fewer than text.calibration_min_labels (%d): the shipped "
                 "calibration is used", int(np.isfinite(labels).sum()), cfg.calibration_min_labels)
        return calibration
    scored["sentiment"] = calibration.apply(scored["sentiment"].to_numpy(), topics)
    fit = calibration.store_fit
    log.info("sentiment calibrated from the stars: store a=%.3f b=%.3f (%d positive, %d negative labels), "
             "%d topic(s) with their own fit", fit.a, fit.b, fit.n_positive, fit.n_negative, len(calibration.topics))
    return calibration
