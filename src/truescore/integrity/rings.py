"""Lockstep rings: groups of accounts that push the same items the same way, against everyone else.

A paid ring is reused: its accounts rate several targets, each target the same way (all up, or all
down for review bombing), and differently from the target's other raters. Honest co-rating (people who
buy strings also buy picks) is common, but it agrees with everyone else. The detector has two steps.

**1. Co-targeted item pairs.** For a direction (up: ``r >= 0.75``, down: ``r <= 0.25`` on the normalised
scale), let ``X`` be the account x item incidence of the polar ratings of the ``N`` accounts with at
least two and at most ``ring_max_user_ratings`` ratings, ``d_A`` an item's polar raters among them. The
shared raters of items ``A, B`` are ``o_AB = (X^T X)_AB`` and the lift compares the chance of rating
``B`` among ``A``'s raters with the chance among everyone else, in both directions:

    lift_AB = min( (o/d_A) / ((d_B - o + 1)/(N - d_A + 1)),  (o/d_B) / ((d_A - o + 1)/(N - d_B + 1)) ).

Unlike ``o / E[o]`` under independence (which a large ring defeats, since it inflates ``d_A`` and
``d_B`` with the very co-raters it adds), this conditional lift grows with the ring: a ring that is
most of both items' raters has ``o ~ d`` and a tiny chance of ``B`` outside ``A``.

A pair is *co-targeted* when ``o_AB >= ring_min_members``, ``lift_AB >= ring_min_lift`` and on both
items the shared raters' mean rating differs from the other raters' mean by at least ``ring_min_gap``
in the ring's direction (``gap_A = mean_{co}(r_A) - mean_{rest}(r_A)``, from ``X_r^T X`` with ``X_r``
holding the ratings; at least 3 other raters are needed to judge). The other raters' mean is weighted
by ``v_u = 1 - b_u`` (``b_u`` the behavioural account score, when given): what counts is how the ring
differs from the item's *ordinary* raters, so a community that warns against a scammer together, whose
other raters are the scammer's own accomplices, is not taken for a bombing ring.

**2. The ring.** Co-targeted pairs are joined into connected components of items ``T``; the candidate
members are the accounts with polar ratings on at least two items of ``T``. FRAUDAR's weighted peeling
(:mod:`~truescore.integrity.fraudar`, column weight ``1/log(d_i + 5)`` with ``d_i`` all the item's
raters) over candidates x ``T`` keeps the densest block: accounts that joined by chance have few
heavy edges and are peeled first. A block with at least ``ring_min_members`` accounts is a ring:
members, targets, the time window of the members' ratings of the targets, and the evidence (shared
raters, lift, gap, density).

**Lockstep in time** (CopyCatch, Beutel et al. WWW 2013): a campaign on one target runs for a bounded
time, however slowly. A target stays in the ring only when the central 80% of the members' ratings of
it (10th to 90th percentile of their times) span at most ``ring_max_window_days``; a ring needs two such
targets. Honest co-raters of two items, or a community that warns against the same scammer over the
years, accumulate over the items' whole lives and are not rings.

**Against an independent consensus.** Coordination is not manipulation by itself: members of a
community who warn against the same scammers rate the same targets the same way, and what makes them
honest is that they agree with everyone else who knows the target. A ring must therefore push its
targets *against* the consensus of the targets' independent raters: those outside every candidate ring,
each weighted by ``v_u = 1 - b_u`` (ordinary accounts define the consensus). On target ``t`` with such
raters' weighted mean ``c_t``, weighted sd ``s_t`` (floored at :data:`_SD_FLOOR`) and effective number
``n_t = (sum v)^2 / sum v^2``, the ring's mean ``m_t`` must contradict it in the ring's direction with

    z_t = sign * (m_t - c_t) / (s_t / sqrt(n_t)) >= consensus_z   (default 2),

a one-sample test of "the ring rates ``t`` as its independent raters do". A target without independent
raters cannot be contradicted and fails. Two targets must pass, as for the lockstep test: each at the
conventional one-sided 2-sigma level (p ~ 0.023), jointly p ~ 5e-4 when the targets' raters are
independent. The candidate rings are few (tens), so this joint level leaves room for their number. A ring that
makes up all of its targets' raters is thus left to the behaviour score: with no independent witness,
the data cannot tell a bombing ring from the only people who dealt with a scammer.

Strength ``s = clip(1/2 + overlap, 1/2, 1)``, ``overlap`` the median over the ring's co-targeted pairs
of ``o_AB / min(d_A, d_B)`` (the share of the smaller item's polar raters that the pair shares: 1 when
one item's raters are all the ring), is the evidence given to each of the ring's ratings of its
targets and to its members. A ring on a single target cannot be told from an
item's ordinary raters by co-rating; the cohort, burst and change-point detectors cover that case.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from truescore.integrity._common import DAY, DEFAULTS, FloatArray, IntArray, IntegrityInputs
from truescore.integrity.fraudar import column_weights, peel

__all__ = ["Ring", "RingDetection", "consensus_z", "detect_rings"]

#: floor of the independent raters' sd (normalised scale): a unanimous handful is not infinitely sure
_SD_FLOOR = 0.1


@dataclass(frozen=True, slots=True)
class Ring:
    """One detected ring (inner indices; :meth:`to_record` gives external ids)."""

    ring_id: int
    direction: str
    members: IntArray
    targets: IntArray
    window_start: float
    window_end: float
    n_ratings: int
    lift: float
    gap: float
    density: float
    strength: float

    @property
    def window_days(self) -> float:
        return (self.window_end - self.window_start) / DAY

    def describe(self) -> str:
        """'ring of 87 accounts that co-rated 6 items (up) within 9 days'."""
        verb = "boosted" if self.direction == "up" else "bombed"
        return (f"ring of {self.members.size} accounts that {verb} {self.targets.size} items together within "
                f"{self.window_days:,.0f} days")

    def evidence(self) -> dict[str, float | int | str]:
        return {"direction": self.direction, "ratings": self.n_ratings, "median_lift": round(self.lift, 1),
                "rating_gap": round(self.gap, 3), "density": round(self.density, 3),
                "strength": round(self.strength, 3), "description": self.describe()}


@dataclass(slots=True)
class RingDetection:
    """Rings and the per-rating / per-account evidence they give.

    Attributes
    ----------
    rings : list of Ring
    review_ring, user_ring : int arrays
        Ring id of each rating (of a target, by a member) and of each account; -1 for none.
    review_evidence, user_evidence : float arrays in [0, 1]
        The ring's strength, 0 outside rings.
    """

    rings: list[Ring] = field(default_factory=list)
    review_ring: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    user_ring: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    review_evidence: FloatArray = field(default_factory=lambda: np.zeros(0))
    user_evidence: FloatArray = field(default_factory=lambda: np.zeros(0))


def _pairs(inp: IntegrityInputs, polar: np.ndarray, direction: str, *, max_user: int, min_members: int,
           min_lift: float, min_gap: float, weight: FloatArray) -> tuple[list[np.ndarray], Any, dict[Any, Any]]:
    """Co-targeted item pairs of one direction, joined into components (lists of item indices)."""
    n_all = np.bincount(inp.user_idx, minlength=inp.n_users)
    sel = polar & (n_all[inp.user_idx] <= max_user)
    u, i, r = inp.user_idx[sel], inp.item_idx[sel], inp.rating[sel]
    if u.size == 0:
        return [], np.zeros(0), {}
    key = u * inp.n_items + i
    _, first = np.unique(key, return_index=True)
    u, i, r = u[first], i[first], r[first]
    n_u = np.bincount(u, minlength=inp.n_users)
    keep = n_u[u] >= 2
    u, i, r = u[keep], i[keep], r[keep]
    if u.size == 0:
        return [], np.zeros(0), {}
    x = sp.csr_matrix((np.ones(u.size), (u, i)), shape=(inp.n_users, inp.n_items))
    xr = sp.csr_matrix((r, (u, i)), shape=(inp.n_users, inp.n_items))
    co = (x.T @ x).tocoo()
    up = (co.row < co.col) & (co.data >= min_members)
    a, b, o = co.row[up], co.col[up], co.data[up]
    if a.size == 0:
        return [], np.zeros(0), {}
    d = np.asarray(x.sum(axis=0)).ravel()
    n_acc = float(np.count_nonzero(np.asarray(x.sum(axis=1)).ravel()))
    lift_ab = (o / d[a]) / ((d[b] - o + 1.0) / (n_acc - d[a] + 1.0))
    lift_ba = (o / d[b]) / ((d[a] - o + 1.0) / (n_acc - d[b] + 1.0))
    lift = np.minimum(lift_ab, lift_ba)
    ok = lift >= min_lift
    a, b, o, lift = a[ok], b[ok], o[ok], lift[ok]
    if a.size == 0:
        return [], np.zeros(0), {}
    vu = weight[u]
    xw = sp.csr_matrix((vu, (u, i)), shape=(inp.n_users, inp.n_items))
    xwr = sp.csr_matrix((vu * r, (u, i)), shape=(inp.n_users, inp.n_items))
    sum_ab = np.asarray((xr.T @ x)[a, b]).ravel()     # co-raters' ratings of a
    sum_ba = np.asarray((x.T @ xr)[a, b]).ravel()     # co-raters' ratings of b
    wsum_ab = np.asarray((xwr.T @ x)[a, b]).ravel()   # the same, weighted by v
    wsum_ba = np.asarray((x.T @ xwr)[a, b]).ravel()
    w_ab = np.asarray((xw.T @ x)[a, b]).ravel()       # co-raters' weight on a
    w_ba = np.asarray((x.T @ xw)[a, b]).ravel()
    wall = weight[inp.user_idx]
    tot = np.bincount(inp.item_idx, weights=wall * inp.rating, minlength=inp.n_items)
    wtot = np.bincount(inp.item_idx, weights=wall, minlength=inp.n_items)
    cnt = np.bincount(inp.item_idx, minlength=inp.n_items).astype(np.float64)
    sign = 1.0 if direction == "up" else -1.0

    def gap(item: np.ndarray, s_co: np.ndarray, ws_co: np.ndarray, w_co: np.ndarray) -> np.ndarray:
        rest = cnt[item] - o
        with np.errstate(invalid="ignore", divide="ignore"):
            g = sign * (s_co / o - (tot[item] - ws_co) / (wtot[item] - w_co))
        return np.where((rest >= 3) & (wtot[item] - w_co > 1e-9), g, -np.inf)

    g = np.minimum(gap(a, sum_ab, wsum_ab, w_ab), gap(b, sum_ba, wsum_ba, w_ba))
    ok = g >= min_gap
    a, b, lift, g = a[ok], b[ok], lift[ok], g[ok]
    if a.size == 0:
        return [], np.zeros(0), {}
    nodes, inv = np.unique(np.r_[a, b], return_inverse=True)
    graph = sp.coo_matrix((np.ones(a.size), (inv[: a.size], inv[a.size:])), shape=(nodes.size, nodes.size))
    n_comp, label = connected_components(graph, directed=False)
    comps = [nodes[label == k] for k in range(n_comp)]
    pair_lift: dict[tuple[int, int], tuple[float, ...]] = {}
    o_ok = o[ok]
    overlap = o_ok / np.maximum(np.minimum(d[a], d[b]), 1.0)
    for aa, bb, ll, gg, ov in zip(a.tolist(), b.tolist(), lift.tolist(), g.tolist(), overlap.tolist(), strict=True):
        pair_lift[(aa, bb)] = (ll, gg, ov)
    return comps, x.tocsc(), pair_lift


def _lockstep_targets(inp: IntegrityInputs, members: IntArray, targets: IntArray, polar: np.ndarray,
                      max_window_days: float) -> IntArray:
    """The targets on which the members' polar ratings (central 80%) fall within ``max_window_days``."""
    sel = polar & np.isin(inp.user_idx, members) & np.isin(inp.item_idx, targets)
    keep = []
    for t in targets.tolist():
        times = inp.created_at[sel & (inp.item_idx == t)]
        if times.size and np.subtract(*np.percentile(times, [90, 10])) <= max_window_days * DAY:
            keep.append(t)
    return np.asarray(keep, dtype=np.int64)


def consensus_z(inp: IntegrityInputs, members: IntArray, targets: IntArray, direction: str,
                independent: np.ndarray, weight: FloatArray) -> FloatArray:
    """Per target: ``z_t`` of the ring's mean against its independent raters' consensus (module docstring).

    ``independent`` marks the accounts outside every candidate ring, ``weight`` is ``v_u``; a target
    without independent raters gets ``-inf``.
    """
    sign = 1.0 if direction == "up" else -1.0
    is_member = np.zeros(inp.n_users, dtype=bool)
    is_member[members] = True
    out = np.full(targets.size, -np.inf)
    on_t = np.isin(inp.item_idx, targets)
    for k, t in enumerate(targets.tolist()):
        on = on_t & (inp.item_idx == t)
        ring_r = inp.rating[on & is_member[inp.user_idx]]
        oth = on & independent[inp.user_idx] & ~is_member[inp.user_idx]
        v = weight[inp.user_idx[oth]]
        if ring_r.size == 0 or v.sum() <= 1e-9:
            continue
        r = inp.rating[oth]
        c = float((v * r).sum() / v.sum())
        sd = max(float(np.sqrt((v * (r - c) ** 2).sum() / v.sum())), _SD_FLOOR)
        n_eff = float(v.sum() ** 2 / (v ** 2).sum())
        out[k] = sign * (float(ring_r.mean()) - c) / (sd / np.sqrt(n_eff))
    return out


def detect_rings(inp: IntegrityInputs, *, max_user_ratings: int = DEFAULTS.ring_max_user_ratings,
                 min_members: int = DEFAULTS.ring_min_members, min_lift: float = DEFAULTS.ring_min_lift,
                 min_gap: float = DEFAULTS.ring_min_gap, eps: float = DEFAULTS.ring_peel_eps,
                 max_rings: int = DEFAULTS.ring_max_rings, account_weight: FloatArray | None = None,
                 max_window_days: float = DEFAULTS.ring_max_window_days,
                 consensus_z_min: float = DEFAULTS.consensus_z) -> RingDetection:
    """Find lockstep rings (see the module docstring); ``account_weight`` is ``v_u`` (default 1)."""
    n = inp.n_ratings
    out = RingDetection(rings=[], review_ring=np.full(n, -1, dtype=np.int64),
                        user_ring=np.full(inp.n_users, -1, dtype=np.int64), review_evidence=np.zeros(n),
                        user_evidence=np.zeros(inp.n_users))
    if n == 0:
        return out
    weight = np.ones(inp.n_users) if account_weight is None else np.asarray(account_weight, dtype=np.float64)
    degree = np.bincount(inp.item_idx, minlength=inp.n_items).astype(np.float64)
    cw = column_weights(degree)
    found: list[tuple[str, np.ndarray, np.ndarray, float, float, float, float]] = []
    for direction, polar in (("up", inp.rating >= 0.75), ("down", inp.rating <= 0.25)):
        comps, xc, pair_info = _pairs(inp, polar, direction, max_user=max_user_ratings, min_members=min_members,
                                      min_lift=min_lift, min_gap=min_gap, weight=weight)
        for targets in comps:
            sub = xc[:, targets].tocoo()
            per_user = np.bincount(sub.row, minlength=inp.n_users)
            cand = per_user[sub.row] >= 2
            rows, cols = sub.row[cand], sub.col[cand]
            if np.unique(rows).size < min_members:
                continue
            block = peel(rows, cols, cw[targets][cols], inp.n_users, targets.size, eps=eps)
            members, tgt = block.rows, targets[block.cols]
            if members.size < min_members or tgt.size < 2:
                continue
            tgt = _lockstep_targets(inp, members, tgt, polar, max_window_days)
            if tgt.size < 2:
                continue
            info = np.array([pair_info[(p, q)] for p in tgt.tolist() for q in tgt.tolist()
                             if p < q and (p, q) in pair_info]).reshape(-1, 3)
            med = np.median(info, axis=0) if info.size else np.array([min_lift, min_gap, 0.0])
            found.append((direction, members, tgt, float(med[0]), float(med[1]), block.density, float(med[2])))
    # against an independent consensus: the targets' raters outside every candidate ring
    independent = np.ones(inp.n_users, dtype=bool)
    for f in found:
        independent[f[1]] = False
    kept = []
    for direction, members, tgt, lift, gap, density, overlap in found:
        z = consensus_z(inp, members, tgt, direction, independent, weight)
        tgt = tgt[z >= consensus_z_min]
        if tgt.size >= 2:
            kept.append((direction, members, tgt, lift, gap, density, overlap))
    found = kept
    found.sort(key=lambda f: -(f[1].size * f[2].size))
    for direction, members, tgt, lift, gap, density, overlap in found[:max_rings]:
        rid = len(out.rings)
        on = np.isin(inp.user_idx, members) & np.isin(inp.item_idx, tgt)
        on &= (inp.rating >= 0.75) if direction == "up" else (inp.rating <= 0.25)
        on &= out.review_ring < 0
        strength = float(np.clip(0.5 + overlap, 0.5, 1.0))
        times = inp.created_at[on]
        ring = Ring(ring_id=rid, direction=direction, members=members, targets=tgt,
                    window_start=float(times.min()) if times.size else 0.0,
                    window_end=float(times.max()) if times.size else 0.0, n_ratings=int(on.sum()), lift=lift,
                    gap=gap, density=density, strength=strength)
        out.rings.append(ring)
        out.review_ring[on] = rid
        out.review_evidence[on] = np.maximum(out.review_evidence[on], strength)
        free = out.user_ring[members] < 0
        out.user_ring[members[free]] = rid
        out.user_evidence[members] = np.maximum(out.user_evidence[members], strength)
    return out
