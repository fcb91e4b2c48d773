"""Assembling a :class:`~truescore.trust.results.WeightedRatingResult` from the review weights.

The rating is :math:`\\sum w z / \\sum w` over the contributing reviews (largest weight first), shown on
the item's display scale, with the confidence range, confidence, polarization, agreement and display
line of :mod:`truescore.trust.factors`; :func:`fill_baseline` adds the QRP-0002 baseline fields.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from truescore.config import TrustSettings
from truescore.trust import factors
from truescore.trust.graph import NodeIndex
from truescore.trust.index import ReviewIndex
from truescore.trust.results import ReviewContribution, WeightedRatingResult
from truescore.trust.topics import topic_chain
from truescore.trust.weights import BOOTSTRAP, ReviewWeights

__all__ = ["build_result", "contributing_order", "fill_baseline"]

IntArray = npt.NDArray[np.int64]


def contributing_order(wt: ReviewWeights) -> IntArray:
    """Positions of the contributing rows, largest weight first (stable)."""
    c = np.flatnonzero(wt.contrib)
    return c[np.argsort(-wt.w[c], kind="stable")]


def build_result(
    index: ReviewIndex,
    nodes: NodeIndex,
    settings: TrustSettings,
    item: int,
    item_id: str,
    observer: str,
    topic: str,
    clock: float,
    wt: ReviewWeights,
    c: IntArray,
    paths: list[list[str] | None],
    include_paths: bool,
) -> WeightedRatingResult:
    """The seed's rating and QRP-0002 fields from the weights; ``c`` = :func:`contributing_order`,
    ``paths`` the best path of each of those rows."""
    s, idx = settings, index
    lo, hi = float(idx.item_min[item]), float(idx.item_max[item])
    span = hi - lo
    z_all = idx.r_norm[wt.rows]
    weights = wt.w[c]
    z = z_all[c]
    total = float(weights.sum())
    mean, sd = factors.weighted_mean_sd(z, weights)
    n = int(c.shape[0])
    rating = lo + mean * span if n else None
    cr = factors.confidence_range(sd, weights) * span if n else 0.0
    pol = factors.polarization(sd) if n else 0.0
    rows = wt.rows[c]
    chain_names = [d for d, _ in topic_chain(topic)]
    which = wt.which[c].tolist()
    columns = zip(
        idx.review_ids[rows].tolist(),
        nodes.ids_array(wt.users[c]).tolist(),
        (lo + z * span).tolist(),
        idx.r_rating[rows].tolist(),
        idx.r_min[rows].tolist(),
        idx.r_max[rows].tolist(),
        wt.T[c].tolist(),
        wt.H[c].tolist(),
        wt.A[c].tolist(),
        wt.R[c].tolist(),
        wt.F[c].tolist(),
        weights.tolist(),
        wt.age_days[c].tolist(),
        paths,
        which,
        strict=True,
    )
    contributions = [
        ReviewContribution(
            review_id=rid,
            reviewer=reviewer,
            rating=shown,
            original_rating=orig,
            original_min=omin,
            original_max=omax,
            T=t,
            H=h,
            A=a,
            R=r,
            F=f,
            weight=wgt,
            age_days=age,
            top_intermediary_quid=path[1] if path is not None and len(path) > 2 else None,
            path=path if include_paths else None,
            trust_domain=chain_names[k] if k >= 0 else None,
            trust_source="verified_purchase" if k == BOOTSTRAP else "path",
        )
        for rid, reviewer, shown, orig, omin, omax, t, h, a, r, f, wgt, age, path, k in columns
    ]
    n_considered = int(wt.rows.shape[0])
    unweighted = lo + float(z_all.mean()) * span if n_considered else None
    agreement = None
    if n >= 2:
        agreement = "trusted sources split" if pol >= s.polarization_split_threshold else "trusted sources agree"
    if rating is None:
        display = "no trusted reviews"
    else:
        display = f"{rating:.1f} ± {cr:.1f} based on {n} trusted review{'s' if n != 1 else ''}"
    return WeightedRatingResult(
        product=item_id,
        topic=topic,
        observer=observer,
        rating=rating,
        total_weight=total,
        contributing_reviews=n,
        total_reviews_considered=n_considered,
        unweighted_mean=unweighted,
        contributions=contributions,
        confidence_range=cr,
        confidence_pct=factors.confidence_pct(total, n, s.confidence_full_weight, s.confidence_full_contributors),
        polarization=pol,
        display=display,
        agreement=agreement,
        scale_min=lo,
        scale_max=hi,
        computed_at=clock,
    )


def fill_baseline(result: WeightedRatingResult, index: ReviewIndex, item: int, base: ReviewWeights) -> None:
    """QRP-0002: the baseline observer's rating, its weight and the personalization delta."""
    idx = index
    lo, hi = float(idx.item_min[item]), float(idx.item_max[item])
    c = np.flatnonzero(base.contrib)
    total = float(base.w[c].sum())
    result.anonymous_baseline_total_weight = total
    if c.size and total > 0:
        mean, _ = factors.weighted_mean_sd(idx.r_norm[base.rows[c]], base.w[c])
        result.anonymous_baseline_rating = lo + mean * (hi - lo)
        if result.rating is not None:
            result.personalization_delta = result.rating - result.anonymous_baseline_rating
