"""Fused item quality: one Bayesian estimate per item from all three engines.

Let rating ``j`` be by rater ``u`` of item ``i``, normalised to ``r_j`` in [0, 1]. The reliability engine
gives the rater's noise precision ``E[alpha_u]`` and bias ``b_u``; the text engine the review's fake
probability ``p_j``; the trust engine the observer's trust ``T_j`` in the reviewer (the baseline
observer, the operator root, for the public view). Each rating enters a Gaussian model of the item's
quality ``q_i ~ N(mu0, 1/tau0)`` with the observation ``y_j = r_j - b_u ~ N(q_i, 1/lambda_j)`` and the
precision

    lambda_j = alpha_ref * rho_u * kappa_u * a_j * tau_j * beta_j * g_j * w_j

where

- ``alpha_ref`` is the median rater precision, so the other factors are relative;
- ``rho_u = clip(E[alpha_u] / alpha_ref, floor, cap)`` is the rater's relative reliability (a rater the
  reliability engine has not seen gets ``unknown_rater_reliability``);
- ``kappa_u = n / (n + n0)`` is the rater's track record, ``n`` its ratings of *other* items (seed 000:
  "if all of those bots have no previous track record of trustworthy ratings, then their votes won't
  be worth much"); a fresh account with no other rating gets ``track_record_floor``;
- ``a_j = 1 - p_j`` is the review's authenticity;
- ``tau_j = t0 + (1 - t0) T_j`` is the observer's trust, ``t0 = trust_unknown`` the prior weight of a
  reviewer with no trust path (strangers count, trusted reviewers count up to ``1/t0`` times more);
- ``beta_j`` damps bursts: when the item's ratings inside a window of ``burst_window_hours`` around the
  rating number ``c`` and exceed the item's expected count ``e = n_i W / span_i`` by more than
  ``burst_z * sqrt(e)`` (and ``c >= burst_min_ratings``), each counts ``beta = e / c``, so the burst
  weighs what an ordinary window would;
- ``g_j = max(1 - E_j, floor)`` is the integrity factor: ``E_j`` the integrity engine's detector evidence
  for the rating (ring, aged cohort, near-duplicate text; not bursts, which ``beta`` handles, nor change
  points, which a genuine change shares), and ratings of one detected group (a ring, or a cohort on one
  item) have *bounded influence*: after weighting, a group's total weight on an item is capped at
  ``fusion_ring_max_share`` times the weight of the item's ratings outside any group (all its ratings
  are scaled down together), so a ring of any size moves an item at most as much as a minority of
  that size;
- ``w_j = (nu + 1) / (nu + alpha_ref rho_u (y_j - m_i)^2)`` is the Student-t weight of iteratively
  reweighted least squares (``robust_nu`` degrees of freedom), started from the median weighted by every
  factor except ``rho`` (consistent raters must not pick the starting basin), so
  that a rating far from the item's consensus, relative to its rater's own precision, counts less.

The posterior is ``q_i | y ~ N(m_i, s_i^2)`` with ``1/s_i^2 = tau0 + sum_j lambda_j`` and
``m_i = s_i^2 (tau0 mu0 + sum_j lambda_j y_j)``; the effective number of reviews is
``n_eff = sum_j lambda_j / alpha_ref`` (in typical-rater units). Every factor is kept per rating, so any
item's estimate can be explained review by review (:meth:`FusedQuality.explain`).

Global context and per-item kernel
----------------------------------
Only a few quantities look beyond one item: ``alpha_ref`` (a median over all raters), ``rho_u`` and the
rater's rating count ``n_u`` (per rater, over all items), the prior, the mean rating over all ratings
(the Bayesian average's anchor) and the integrity settings. :func:`fusion_context` computes them once;
every other step -- burst windows, the starting median, the IRLS sweeps, the group caps, the posterior
-- involves only one item's ratings and is :func:`fuse_items`, which takes a block of items' rows
(:class:`ItemRows`) with the per-rating context attached. The block may be one item (a grouped pandas
function in ``truescore spark rank``) or every item (:func:`fuse`, vectorised): every per-item sum is a
sequential ``np.bincount`` over that item's rows in the given order and no step uses an offset shared
across items, so an item's numbers are the same either way, bit for bit, when its rows come in the same
order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from truescore.config import LOWER_BOUND_Z, IntegritySettings, RankingSettings
from truescore.integrity.bursts import burst_damping

__all__ = ["FusedQuality", "FusionContext", "FusionInputs", "ItemFusion", "ItemRows", "ReviewWeight",
           "fuse", "fuse_items", "fused_quality", "fusion_context", "item_rows", "rater_reliability",
           "weighted_median"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
ObjArray = npt.NDArray[np.object_]

_EPS = 1e-12
_FACTORS = ("reliability", "track_record", "authenticity", "trust", "burst", "integrity", "robust")


@dataclass(slots=True)
class FusionInputs:
    """Per-rating evidence from the three engines (arrays of one length, indices into items/users).

    Attributes
    ----------
    item_idx, user_idx : int arrays
    rating : float array
        Normalised rating in [0, 1].
    created_at : float array
        UTC epoch seconds.
    n_items, n_users : int
    reliability : float array, one per user
        ``E[alpha_u]`` from the reliability engine; NaN where the rater was not fitted.
    bias : float array, one per user
        Rater bias on the normalised scale (0 where unknown).
    fake_probability : float array, one per rating
        From the text engine; NaN where unscored.
    trust : float array, one per rating
        The observer's trust ``T`` in the reviewer, 0 for a stranger.
    prior_mean, prior_precision : float
        The item-quality prior ``N(mu0, 1/tau0)`` (normalised scale), e.g. the reliability engine's.
    review_ids, item_ids, user_ids : object arrays, optional
        External ids, for explanations.
    integrity : float array, one per rating, optional
        Detector evidence ``E_j`` in [0, 1] from the integrity engine (None: no integrity factor).
    group : int array, one per rating, optional
        Detected group (ring or cohort) of each rating, -1 for none; a group's weight per item is capped.
    group_labels : dict, optional
        Group id -> a description for explanations ("ring of 87 accounts that ...").
    """

    item_idx: IntArray
    user_idx: IntArray
    rating: FloatArray
    created_at: FloatArray
    n_items: int
    n_users: int
    reliability: FloatArray
    bias: FloatArray
    fake_probability: FloatArray
    trust: FloatArray
    prior_mean: float
    prior_precision: float
    review_ids: ObjArray | None = None
    item_ids: ObjArray | None = None
    user_ids: ObjArray | None = None
    integrity: FloatArray | None = None
    group: IntArray | None = None
    group_labels: dict[int, str] | None = None

    def __post_init__(self) -> None:
        n = self.rating.shape[0]
        for name in ("item_idx", "user_idx", "created_at", "fake_probability", "trust", "integrity", "group"):
            if getattr(self, name) is not None and getattr(self, name).shape[0] != n:
                raise ValueError(f"FusionInputs.{name} has {getattr(self, name).shape[0]} entries, expected {n}")
        for name in ("reliability", "bias"):
            if getattr(self, name).shape[0] != self.n_users:
                raise ValueError(f"FusionInputs.{name} needs one entry per user ({self.n_users})")
        if n and (self.item_idx.min() < 0 or self.item_idx.max() >= self.n_items):
            raise ValueError("FusionInputs.item_idx out of range")
        if not np.isfinite(self.rating).all():
            raise ValueError("FusionInputs.rating must be finite")
        if self.prior_precision <= 0:
            raise ValueError("FusionInputs.prior_precision must be positive")


@dataclass(frozen=True, slots=True)
class ReviewWeight:
    """How much one rating counted in its item's fused estimate, and why."""

    review_id: str
    user_id: str
    rating: float
    weight: float
    share: float
    factors: dict[str, float]
    reason: str


@dataclass(slots=True)
class ItemFusion:
    """What :func:`fuse_items` returns: per item of the block and per rating (see :class:`FusedQuality`)."""

    mean: FloatArray
    sd: FloatArray
    n_eff: FloatArray
    n_ratings: IntArray
    plain_mean: FloatArray
    bayes_average: FloatArray
    weight: FloatArray
    factors: dict[str, FloatArray]


@dataclass(slots=True)
class FusedQuality(ItemFusion):
    """Fused estimate per item (normalised scale) with the per-rating weights behind it.

    Attributes
    ----------
    mean, sd : float arrays, one per item
        Posterior mean and sd of the item quality.
    n_eff : float array
        Effective number of reviews, ``sum lambda / alpha_ref``.
    n_ratings : int array
    plain_mean : float array
        Unweighted mean rating (NaN without ratings).
    bayes_average : float array
        ``(m * global_mean + sum r) / (m + n)``, the usual Bayesian average baseline.
    weight : float array, one per rating
        ``lambda_j`` (normalised-scale precision).
    factors : dict of float arrays, one per rating
        ``reliability, track_record, authenticity, trust, burst, robust``.
    burst_items : int array
        Items where the burst detector damped at least one rating.
    alpha_ref : float
    """

    burst_items: IntArray
    alpha_ref: float
    inputs: FusionInputs = field(repr=False)

    def lower_bound(self, z: float = LOWER_BOUND_Z) -> FloatArray:
        """``mean - z * sd``: the ranking score (a 90% lower credible bound by default)."""
        return self.mean - z * self.sd

    def _group_label(self, j: int) -> str | None:
        inp = self.inputs
        if inp.group is None or inp.group[j] < 0:
            return None
        return (inp.group_labels or {}).get(int(inp.group[j]), "detected group")

    def explain(self, item: int) -> list[ReviewWeight]:
        """Every rating of item ``item`` (inner index) with its weight, share and factors, largest first."""
        inp = self.inputs
        rows = np.flatnonzero(inp.item_idx == item)
        total = float(self.weight[rows].sum()) or 1.0
        out = []
        for j in rows[np.argsort(-self.weight[rows], kind="stable")]:
            f = {k: float(v[j]) for k, v in self.factors.items()}
            out.append(ReviewWeight(
                review_id=str(inp.review_ids[j]) if inp.review_ids is not None else str(j),
                user_id=str(inp.user_ids[inp.user_idx[j]]) if inp.user_ids is not None else str(inp.user_idx[j]),
                rating=float(inp.rating[j]),
                weight=float(self.weight[j]),
                share=float(self.weight[j]) / total,
                factors=f,
                reason=_reason(f, self._group_label(int(j))),
            ))
        return out


def _reason(f: dict[str, float], group: str | None = None) -> str:
    notes = []
    if group:
        notes.append(f"part of a {group}")
    elif f.get("integrity", 1.0) < 0.5:
        notes.append("flagged by the integrity detectors")
    if f["track_record"] < 0.2:
        notes.append("new rater without a track record")
    if f["reliability"] < 0.5:
        notes.append("unreliable rater")
    elif f["reliability"] > 1.5:
        notes.append("reliable rater")
    if f["authenticity"] < 0.5:
        notes.append("text looks fake")
    if f["trust"] > 0.75:
        notes.append("trusted reviewer")
    if f["burst"] < 0.5:
        notes.append("part of a burst")
    if f["robust"] < 0.5:
        notes.append("far from the consensus")
    return "; ".join(notes) or "ordinary review"


def weighted_median(values: FloatArray, weights: FloatArray, groups: IntArray, n_groups: int) -> FloatArray:
    """Weighted median of ``values`` within each group (NaN for empty groups).

    Within a group the values are sorted (ties in row order) and the median is the first value whose
    cumulative weight reaches half the group's total; the cumulative sums start at 0 in every group, so a
    group's median does not depend on the other groups.
    """
    out = np.full(n_groups, np.nan)
    if values.size == 0:
        return out
    order = np.lexsort((values, groups))
    g, v, w = groups[order], values[order], weights[order]
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    ends = np.r_[starts[1:], g.size]
    for s, e in zip(starts, ends, strict=True):
        csum = np.cumsum(w[s:e])
        t = csum[-1]
        k = s + int(np.searchsorted(csum, 0.5 * t)) if t > 0 else s + (e - s - 1) // 2
        out[g[s]] = v[min(k, e - 1)]
    return out


@dataclass(frozen=True, slots=True)
class FusionContext:
    """The global pieces of the fusion, computed once over all ratings (:func:`fusion_context`).

    Attributes
    ----------
    alpha_ref : float
        Median ``E[alpha_u]`` over the raters with a rating and a known precision (``1/0.15^2`` if none).
    prior_mean, prior_precision : float
        The item prior ``N(mu0, 1/tau0)``.
    global_mean : float
        Mean normalised rating over all ratings, the anchor of the Bayesian average (``mu0`` if none).
    evidence_floor, ring_max_share : float
        ``fusion_evidence_floor`` and ``fusion_ring_max_share`` of the integrity settings.
    """

    alpha_ref: float
    prior_mean: float
    prior_precision: float
    global_mean: float
    evidence_floor: float
    ring_max_share: float


@dataclass(slots=True)
class ItemRows:
    """One block of items' ratings with their per-rating context: the input of :func:`fuse_items`.

    Attributes
    ----------
    item : int array
        Item of each rating, ``0 .. n_items - 1`` within the block.
    rating, created_at : float arrays
        Normalised rating and epoch seconds.
    bias : float array
        The rater's bias ``b_u`` (0 where unknown), so ``y_j = rating - bias``.
    rho : float array
        The rater's relative reliability ``rho_u`` (:func:`rater_reliability`).
    rater_ratings : float array
        ``n_u``, the rater's ratings over all items (this one included).
    fake_probability, trust : float arrays
        As in :class:`FusionInputs` (NaN: unscored).
    integrity, group : arrays, optional
        Detector evidence and detected group of each rating (-1: none), as in :class:`FusionInputs`.
    """

    item: IntArray
    n_items: int
    rating: FloatArray
    created_at: FloatArray
    bias: FloatArray
    rho: FloatArray
    rater_ratings: FloatArray
    fake_probability: FloatArray
    trust: FloatArray
    integrity: FloatArray | None = None
    group: IntArray | None = None


def fusion_context(inputs: FusionInputs, settings: RankingSettings,
                   integrity_settings: IntegritySettings | None = None) -> FusionContext:
    """The global step: ``alpha_ref`` over the raters who rated, the prior and the global mean rating."""
    if integrity_settings is None:
        integrity_settings = IntegritySettings()
    rel = inputs.reliability[np.unique(inputs.user_idx)]
    known = rel[np.isfinite(rel) & (rel > 0)]
    return FusionContext(
        alpha_ref=float(np.median(known)) if known.size else 1.0 / 0.15**2,
        prior_mean=inputs.prior_mean, prior_precision=inputs.prior_precision,
        global_mean=float(inputs.rating.mean()) if inputs.rating.size else inputs.prior_mean,
        evidence_floor=integrity_settings.fusion_evidence_floor,
        ring_max_share=integrity_settings.fusion_ring_max_share,
    )


def rater_reliability(reliability: FloatArray, alpha_ref: float, settings: RankingSettings) -> FloatArray:
    """``rho_u = clip(E[alpha_u] / alpha_ref, floor, cap)``, ``unknown_rater_reliability`` where not fitted."""
    rho = np.where(np.isfinite(reliability) & (reliability > 0), reliability / alpha_ref,
                   settings.unknown_rater_reliability)
    return np.clip(rho, settings.reliability_floor, settings.reliability_cap)


def item_rows(inputs: FusionInputs, ctx: FusionContext, settings: RankingSettings) -> ItemRows:
    """All ratings of ``inputs`` as one block, the per-rater context gathered per rating."""
    user = inputs.user_idx
    n_user = np.bincount(user, minlength=inputs.n_users)
    return ItemRows(
        item=inputs.item_idx, n_items=inputs.n_items, rating=inputs.rating, created_at=inputs.created_at,
        bias=np.nan_to_num(inputs.bias, nan=0.0)[user],
        rho=rater_reliability(inputs.reliability, ctx.alpha_ref, settings)[user],
        rater_ratings=n_user[user].astype(np.float64), fake_probability=inputs.fake_probability,
        trust=inputs.trust, integrity=inputs.integrity, group=inputs.group,
    )


def fuse_items(rows: ItemRows, ctx: FusionContext, settings: RankingSettings) -> ItemFusion:
    """The per-item kernel: the factors, the IRLS sweeps and the posterior of every item of the block.

    Needs nothing beyond the block's rows and ``ctx`` (see the module docstring for the math).
    """
    n_items, item = rows.n_items, rows.item
    rho = rows.rho
    n_other = rows.rater_ratings - 1.0
    kappa = np.where(n_other > 0, n_other / (n_other + settings.track_record_n0 + _EPS), 0.0)
    kappa = np.maximum(kappa, settings.track_record_floor)
    fake = np.where(np.isfinite(rows.fake_probability), rows.fake_probability, settings.unscored_fake_probability)
    authenticity = np.clip(1.0 - fake, 0.0, 1.0)
    tau = settings.trust_unknown + (1.0 - settings.trust_unknown) * np.clip(rows.trust, 0.0, 1.0)
    beta = burst_damping(item, rows.created_at, n_items, settings)
    if rows.integrity is not None:
        integrity = np.maximum(1.0 - np.clip(rows.integrity, 0.0, 1.0), ctx.evidence_floor)
    else:
        integrity = np.ones_like(beta)
    base = rho * kappa * authenticity * tau * beta * integrity
    cap = _GroupCap(rows.group, item, n_items, ctx.ring_max_share)
    y = rows.rating - rows.bias
    alpha_ref, tau0, mu0 = ctx.alpha_ref, ctx.prior_precision, ctx.prior_mean

    # start from a median that reliability does not weigh, so raters who are merely consistent cannot pick the basin
    m = weighted_median(y, base / rho, item, n_items)
    m = np.where(np.isfinite(m), m, mu0)
    robust = np.ones_like(y)
    for _ in range(settings.robust_iterations):
        resid2 = (y - m[item]) ** 2
        robust = (settings.robust_nu + 1.0) / (settings.robust_nu + alpha_ref * rho * resid2)
        lam = cap.apply(alpha_ref * base * robust)
        prec = tau0 + np.bincount(item, weights=lam, minlength=n_items)
        m = (tau0 * mu0 + np.bincount(item, weights=lam * y, minlength=n_items)) / prec
    lam = cap.apply(alpha_ref * base * robust)
    integrity = integrity * cap.scale
    prec = tau0 + np.bincount(item, weights=lam, minlength=n_items)
    mean = (tau0 * mu0 + np.bincount(item, weights=lam * y, minlength=n_items)) / prec

    n_ratings = np.bincount(item, minlength=n_items)
    sums = np.bincount(item, weights=rows.rating, minlength=n_items)
    with np.errstate(invalid="ignore", divide="ignore"):
        plain = np.where(n_ratings > 0, sums / n_ratings, np.nan)
    bayes = (settings.bayes_average_m * ctx.global_mean + sums) / (settings.bayes_average_m + n_ratings)
    return ItemFusion(
        mean=mean, sd=1.0 / np.sqrt(prec), n_eff=np.asarray((prec - tau0) / alpha_ref, dtype=np.float64),
        n_ratings=n_ratings.astype(np.int64),
        plain_mean=plain, bayes_average=bayes, weight=lam,
        factors=dict(zip(_FACTORS, (rho, kappa, authenticity, tau, beta, integrity, robust), strict=True)),
    )


def fuse(inputs: FusionInputs, settings: RankingSettings | None = None,
         integrity_settings: IntegritySettings | None = None) -> FusedQuality:
    """Fuse the engines' evidence into one posterior per item (see the module docstring): the global
    step (:func:`fusion_context`) and the per-item kernel (:func:`fuse_items`) over all items at once."""
    if settings is None:
        settings = RankingSettings()
    ctx = fusion_context(inputs, settings, integrity_settings)
    return fused_quality(inputs, ctx, fuse_items(item_rows(inputs, ctx, settings), ctx, settings))


def fused_quality(inputs: FusionInputs, ctx: FusionContext, part: ItemFusion) -> FusedQuality:
    """Wrap the kernel's result over all items of ``inputs`` with the inputs, for explanations."""
    return FusedQuality(
        mean=part.mean, sd=part.sd, n_eff=part.n_eff, n_ratings=part.n_ratings, plain_mean=part.plain_mean,
        bayes_average=part.bayes_average, weight=part.weight, factors=part.factors,
        burst_items=np.unique(inputs.item_idx[part.factors["burst"] < 1.0]).astype(np.int64),
        alpha_ref=ctx.alpha_ref, inputs=inputs,
    )


class _GroupCap:
    """Bounded influence of detected groups: per (item, group), the group's total weight is scaled down to
    at most ``share`` times the item's weight outside any group. ``scale`` holds the last factor used."""

    def __init__(self, group: IntArray | None, item: IntArray, n_items: int, share: float) -> None:
        self.active = group is not None and bool((group >= 0).any())
        self.scale = np.ones(item.shape[0])
        if not self.active:
            return
        assert group is not None
        self.in_group = group >= 0
        self.item, self.n_items, self.share = item, n_items, share
        codes = group[self.in_group].astype(np.int64) * n_items + item[self.in_group]
        self.keys, self.inv = np.unique(codes, return_inverse=True)
        self.key_item = self.keys % n_items

    def apply(self, lam: FloatArray) -> FloatArray:
        if not self.active:
            return lam
        outside = np.bincount(self.item[~self.in_group], weights=lam[~self.in_group], minlength=self.n_items)
        total = np.bincount(self.inv, weights=lam[self.in_group], minlength=self.keys.size)
        allowed = self.share * outside[self.key_item]
        factor = np.where(total > allowed, allowed / np.maximum(total, _EPS), 1.0)
        self.scale = np.ones(lam.shape[0])
        self.scale[self.in_group] = factor[self.inv]
        return lam * self.scale
