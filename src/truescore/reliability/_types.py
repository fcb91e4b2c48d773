"""Result types of the reliability engine and the records it writes to the derived tables.

Every engine (closed-form VB, the seed's torch model, the online updater) returns a
:class:`ReliabilityResult`: plain numpy arrays indexed like the snapshot's items and users, with the
item quality on the item's own display scale and every estimate with its uncertainty.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from truescore.config import LOWER_BOUND_Z

__all__ = [
    "Hyperparameters",
    "ItemQuality",
    "RaterReliability",
    "ReliabilityResult",
    "derived_records",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
ObjArray = npt.NDArray[np.object_]


@dataclass(frozen=True, slots=True)
class Hyperparameters:
    """Prior hyperparameters on the normalised scale (final values after any empirical-Bayes updates).

    Attributes
    ----------
    mu0, tau0 : float
        Item quality prior ``x_i ~ N(mu0, 1/tau0)``.
    a0, b0 : float
        Rater precision prior ``alpha_u ~ Gamma(a0, b0)`` (shape, rate; prior mean ``a0/b0``).
    tau_b : float
        Rater bias prior ``b_u ~ N(0, 1/tau_b)`` (unused when the bias is off).
    """

    mu0: float
    tau0: float
    a0: float
    b0: float
    tau_b: float


@dataclass(frozen=True, slots=True)
class ItemQuality:
    """One item's estimate, as written to the ``item_quality`` table (quality on the item's own scale)."""

    item_id: str
    quality: float
    quality_sd: float
    n_ratings: int
    effective_weight: float


@dataclass(frozen=True, slots=True)
class RaterReliability:
    """One rater's estimate, as written to the ``user_reliability`` table (normalised scale)."""

    user_id: str
    reliability: float
    reliability_lo: float
    reliability_hi: float
    bias: float
    n_ratings: int


@dataclass(slots=True)
class ReliabilityResult:
    """Item quality and rater reliability from one fit.

    Item arrays have one entry per snapshot item, user arrays one per snapshot user.

    Attributes
    ----------
    backend : str
        ``"vb"``, ``"torch"`` or ``"online"``.
    item_ids : object array
    item_mean, item_sd : float arrays
        Posterior mean and sd of the item quality ``x_i`` on the normalised scale [0, 1].
    item_quality, item_quality_sd : float arrays
        The same on the item's own display scale ``item_min + x * (item_max - item_min)``.
    item_n_ratings : int array
    item_effective_weight : float array
        Total precision the item's ratings contribute, ``sum_u w_ui`` (normalised scale), i.e. the
        posterior precision minus the prior precision ``tau0``. A rating by a rater of noise sd ``s``
        contributes about ``1/s^2``; a fresh account contributes the prior mean ``a0/b0``.
    user_ids : object array
    reliability : float array
        ``E[alpha_u]``, the posterior mean precision of the rater's noise (normalised scale; a rater
        whose ratings scatter with sd 0.1 of the scale has reliability about 100).
    reliability_lo, reliability_hi : float arrays
        Equal-tailed credible interval of ``alpha_u`` at ``credible_level`` (default 90%).
    rater_shape, rater_rate : float arrays
        The Gamma posterior ``q(alpha_u) = Gamma(shape, rate)`` (torch: a plug-in approximation).
    bias, bias_sd : float arrays
        Posterior mean and sd of the rater bias ``b_u`` (normalised; zeros when the bias is off).
    user_n_ratings : int array
    hyper : Hyperparameters
    elbo_history : float array
        Evidence lower bound after each sweep (VB with ``track_elbo``; else the final value only);
        for torch, the mean training loss per epoch.
    delta_history : float array
        Largest change of an item mean per sweep (the convergence criterion).
    n_iter : int
        Sweeps (VB) or epochs (torch) run.
    converged : bool
    fit_seconds : float
    credible_level : float
    item_min, item_max : float arrays
        The items' display scales (copied from the snapshot).
    """

    backend: str
    item_ids: ObjArray
    item_mean: FloatArray
    item_sd: FloatArray
    item_quality: FloatArray
    item_quality_sd: FloatArray
    item_n_ratings: IntArray
    item_effective_weight: FloatArray
    user_ids: ObjArray
    reliability: FloatArray
    reliability_lo: FloatArray
    reliability_hi: FloatArray
    rater_shape: FloatArray
    rater_rate: FloatArray
    bias: FloatArray
    bias_sd: FloatArray
    user_n_ratings: IntArray
    hyper: Hyperparameters
    elbo_history: FloatArray
    delta_history: FloatArray
    n_iter: int
    converged: bool
    fit_seconds: float
    credible_level: float
    item_min: FloatArray
    item_max: FloatArray
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def n_items(self) -> int:
        return int(self.item_mean.shape[0])

    @property
    def n_users(self) -> int:
        return int(self.reliability.shape[0])

    def item(self, k: int) -> ItemQuality:
        """The typed record of item ``k`` (inner index)."""
        return ItemQuality(
            item_id=str(self.item_ids[k]),
            quality=float(self.item_quality[k]),
            quality_sd=float(self.item_quality_sd[k]),
            n_ratings=int(self.item_n_ratings[k]),
            effective_weight=float(self.item_effective_weight[k]),
        )

    def rater(self, k: int) -> RaterReliability:
        """The typed record of user ``k`` (inner index)."""
        return RaterReliability(
            user_id=str(self.user_ids[k]),
            reliability=float(self.reliability[k]),
            reliability_lo=float(self.reliability_lo[k]),
            reliability_hi=float(self.reliability_hi[k]),
            bias=float(self.bias[k]),
            n_ratings=int(self.user_n_ratings[k]),
        )

    def top_items(self, k: int = 10, *, z: float = LOWER_BOUND_Z) -> list[ItemQuality]:
        """The ``k`` rated items with the highest lower bound ``mean - z * sd`` (normalised scale)."""
        rated = np.flatnonzero(self.item_n_ratings > 0)
        score = self.item_mean[rated] - z * self.item_sd[rated]
        order = rated[np.argsort(-score, kind="stable")[:k]]
        return [self.item(int(j)) for j in order]

    def least_reliable(self, k: int = 10) -> list[RaterReliability]:
        """The ``k`` raters (with at least one rating) we are most confident are unreliable: lowest upper
        credible bound ``reliability_hi`` (a fresh account is uncertain, not known to be bad)."""
        rated = np.flatnonzero(self.user_n_ratings > 0)
        order = rated[np.argsort(self.reliability_hi[rated], kind="stable")[:k]]
        return [self.rater(int(j)) for j in order]


def derived_records(result: ReliabilityResult) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Rows for the ``item_quality`` and ``user_reliability`` derived tables.

    Returns
    -------
    items, users : list of dict
        Column names as in the store's derived-table schema (``model_version`` and ``fitted_at`` are
        added by ``store.write_derived``).
    """
    items = [
        {"item_id": str(i), "quality": float(q), "quality_sd": float(s), "n_ratings": int(n),
         "effective_weight": float(w)}
        for i, q, s, n, w in zip(result.item_ids, result.item_quality, result.item_quality_sd,
                                 result.item_n_ratings, result.item_effective_weight, strict=True)
    ]
    users = [
        {"user_id": str(u), "reliability": float(a), "reliability_lo": float(lo), "reliability_hi": float(hi),
         "bias": float(b), "n_ratings": int(n)}
        for u, a, lo, hi, b, n in zip(result.user_ids, result.reliability, result.reliability_lo,
                                      result.reliability_hi, result.bias, result.user_n_ratings, strict=True)
    ]
    return items, users
