r"""Online updates of the VB reliability fit: ratings added, replaced and removed without a refit.

State
-----
The updater keeps the fit of :mod:`.vb` in the form its closed-form updates need: per item the
posterior :math:`m_i, v_i`; per rater the count :math:`n_u` and the sum of expected squared residuals
:math:`S_u = \sum_i s_{ui}`, :math:`s_{ui} = (r_{ui} - m_i)^2 + v_i`, from which
:math:`a_u = a_0 + n_u/2` and :math:`\beta_u = b_0 + S_u/2`. The invariant kept exactly is that
:math:`n_u` counts the rater's current ratings and :math:`S_u` is the sum over them with the *current*
:math:`m_i, v_i` (every re-solve of an item corrects :math:`S_{u'}` of each of its raters by
:math:`s^{new}_{u'i} - s^{old}_{u'i}`). Hence :math:`S_u \ge 0`, :math:`\beta_u \ge b_0 > 0` and the
reliability :math:`E[\alpha_u] = a_u/\beta_u` is finite and positive.

One new rating :math:`(u, i, r)` (update)
-----------------------------------------
1. **Rater**: :math:`n_u \mathrel{+}= 1`, :math:`S_u \mathrel{+}= (r - m_i)^2 + v_i` (O(1)).
2. **Item**: re-solve item :math:`i` exactly (step 3 of a VB sweep over its raters, with their current
   :math:`a, \beta`), then correct :math:`S_{u'}` of each of its raters for the change of
   :math:`m_i, v_i` (O(n_i)).
3. **Ripple** (seed 000's message passing): the rater's reliability changed, so its weight on every
   other item it rated changed; so did the reliability of item :math:`i`'s other raters, whose sums
   step 2 corrected. The first-order change of each item :math:`k` they rate,
   :math:`\Delta m_k \approx v_k \sum_{u'} \Delta\omega_{u'k}(r_{u'k} - m_k)`, is computed for all of
   the rater's items (O(n_u)) and those of at most ``budget`` of item :math:`i`'s raters (the ones whose
   :math:`\beta` moved most, by more than :math:`\sqrt{tol}` relatively); the items with the largest
   :math:`|\Delta m_k|` above ``tol`` are re-solved as in 2, at most ``budget`` of them, and if any was,
   item :math:`i` is re-solved once more (its raters' sums moved). The re-solves change the rater's
   reliability again (its items feed back into it), so the ripple is repeated from the new state, at
   most 3 rounds, while it finds items to re-solve.
4. **Rolling refresh**: ``refresh`` further items are re-solved in round-robin order, so every item is
   revisited at least every ``n_items / refresh`` updates and second-order effects (items whose raters
   changed through other items) cannot accumulate.

One removed rating :math:`(u, i, r)` (downdate)
-----------------------------------------------
The exact inverse of step 1, then steps 2-4 as for a new rating:

1. **Rater**: :math:`n_u \mathrel{-}= 1`, :math:`S_u \mathrel{-}= (r - m_i)^2 + v_i` with the
   *current* :math:`m_i, v_i`. By the invariant this is exactly the rating's present contribution to
   :math:`S_u` (the term step 1 of its update added, carried along by every later re-solve of item
   :math:`i`), so after it :math:`S_u` is the sum over the rater's remaining ratings. A rater left
   without ratings gets :math:`n_u = 0, S_u = 0` exactly: :math:`q(\alpha_u)` is the prior again.
2. **Item**: the rating leaves item :math:`i`'s list and the item is re-solved over its remaining
   ratings (the prior :math:`m_i = \mu_0, v_i = 1/\tau_0` if none is left), correcting the sums of its
   remaining raters.
3. and 4. **Ripple** and **rolling refresh** as for a new rating (the rater's reliability changed).

**Replace** (a rater re-rates an item, :math:`r \to r'`): the downdate of :math:`(u, i, r)` followed by
the update with :math:`(u, i, r')`, so :math:`n_u` is unchanged and
:math:`S_u \mathrel{+}= [(r' - m_i^{\setminus})^2 + v_i^{\setminus}] - [(r - m_i)^2 + v_i]`, where
:math:`m_i^{\setminus}, v_i^{\setminus}` is the item re-solved without the rating. Writing the new value
over the old one and only re-solving the item (what the API used to do) leaves the old rating's
:math:`(r - m_i)^2` in :math:`S_u` while the re-solve's correction is computed with the new value: the
rater's sum then no longer matches its ratings, can go negative, and so can its reliability.

**Remove a rater** (erasure): all its ratings are downdated at once: :math:`n_u = 0`, :math:`S_u = 0`,
and every item it rated is re-solved over its remaining ratings, with the ripple from that item's other
raters (the removed rater has no items left to ripple to).

Between full sweeps the updater is approximate (it re-solves locally and keeps the hyperparameters of
the last full fit); a replace followed by replacing back returns to the earlier state up to the ripple's
threshold ``tol`` (items whose estimated change is below it are not re-solved).

The cost of an update or a downdate is :math:`O(n_u + \sum_{k \in \text{solved}} n_k)`, independent of
the size of the data set apart from the degrees of the touched nodes. Hyperparameters stay at the values
of the last full fit. A **full sweep** (a warm-started :func:`~truescore.reliability.vb.vb_sweeps` over
all current ratings, which also re-estimates the empirical-Bayes hyperparameters and drops removed
ratings from storage) runs every ``full_sweep_every`` changes (ratings added or removed), or when
:meth:`OnlineReliability.full_sweep` is called; it bounds the drift from the batch fixed point. Rater
biases are not updated online (``use_bias=True`` is refused).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning

from truescore.config import ReliabilitySettings
from truescore.domain import RatingSnapshot
from truescore.reliability._layout import RatingLayout, check_arrays, snapshot_arrays
from truescore.reliability._types import ReliabilityResult
from truescore.reliability.vb import VBOptions, VBState, result_from_state, vb_sweeps

__all__ = ["OnlineReliability", "OnlineUpdate"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
_EMPTY = np.empty(0, dtype=np.int64)
#: most rounds of the ripple per change: each re-solves the items whose first-order change (given what
#: the previous round re-solved) is above ``tol``; a rater's items feed back into its reliability, which
#: under mean field takes 2-3 rounds to settle after a far re-rating
_RIPPLE_ROUNDS = 3


@dataclass(frozen=True, slots=True)
class OnlineUpdate:
    """What one :meth:`OnlineReliability.update` did."""

    user: int
    item: int
    item_mean: float
    item_sd: float
    reliability: float
    items_solved: int
    full_sweep: bool
    seconds: float


class _Grow:
    """A float or int array with amortised O(1) append and resize."""

    def __init__(self, values: np.ndarray) -> None:
        self.data = values.copy()
        self.size = values.shape[0]

    def ensure(self, size: int, fill: float) -> None:
        if size > self.data.shape[0]:
            new = np.full(max(size, 2 * self.data.shape[0], 16), fill, dtype=self.data.dtype)
            new[: self.size] = self.data[: self.size]
            self.data = new
        if size > self.size:
            self.data[self.size : size] = fill
            self.size = size

    @property
    def view(self) -> np.ndarray:
        return self.data[: self.size]


class OnlineReliability(BaseEstimator):
    """Streaming updates of the VB reliability fit (see the module docstring); a scikit-learn estimator
    whose one parameter is the settings section (``clone``, ``get_params``, ``set_params`` work).

    Ratings are added with :meth:`update`, re-rated with :meth:`replace` (downdate, then update),
    removed with :meth:`remove` (downdate) and :meth:`remove_user` (downdate of all of a rater's ratings).
    A full sweep (at :meth:`fit` and every ``online_full_sweep_every`` changes) that stops at ``max_iter``
    before meeting ``tol`` warns with a :class:`~sklearn.exceptions.ConvergenceWarning`.

    Parameters
    ----------
    settings : ReliabilitySettings, optional
        VB options (weighting, priors, tol) and the online fields ``online_budget``,
        ``online_refresh``, ``online_tol`` and ``online_full_sweep_every``.

    Attributes
    ----------
    n_ratings_, n_users_, n_items_ : int
        Current ratings (removed ones not counted); rater and item index ranges.
    item_mean_, item_var_ : ndarray
    rater_shape_, rater_rate_ : ndarray
    n_updates_ : int
        Changes (ratings added or removed) since the last full sweep.
    n_changes_ : int
        Changes since :meth:`fit` (full sweeps included); a cache key for :meth:`result`.
    """

    def __init__(self, settings: ReliabilitySettings | None = None) -> None:
        self.settings = settings

    # ------------------------------------------------------------------------------------------ fit
    def fit(self, snapshot: RatingSnapshot) -> OnlineReliability:
        """Batch VB fit of ``snapshot``; the starting point of the stream. Returns ``self``."""
        u, i, r, n_users, n_items = snapshot_arrays(snapshot)
        self._snapshot: RatingSnapshot | None = snapshot
        return self._fit_arrays(u, i, r, n_users, n_items)

    def fit_arrays(self, user_idx: npt.ArrayLike, item_idx: npt.ArrayLike, rating: npt.ArrayLike, n_users: int,
                   n_items: int) -> OnlineReliability:
        """Like :meth:`fit` on raw arrays (normalised ratings)."""
        u, i, r, n_users, n_items = check_arrays(user_idx, item_idx, rating, n_users, n_items)
        self._snapshot = None
        return self._fit_arrays(u, i, r, n_users, n_items)

    def _fit_arrays(self, u: IntArray, i: IntArray, r: FloatArray, n_users: int, n_items: int) -> OnlineReliability:
        s = self.settings if self.settings is not None else ReliabilitySettings()
        if s.use_bias:
            raise ValueError("use_bias: online updates support the model without rater bias (use_bias=False)")
        self._opts = VBOptions.from_settings(s)
        self._budget = s.online_budget
        self._refresh = s.online_refresh
        self._tol = s.online_tol
        self._neighbour_tol = float(np.sqrt(s.online_tol))
        self._every = s.online_full_sweep_every
        self._bulk_ratio = s.online_bulk_ratio
        self._cavity = self._opts.weighting == "cavity"
        self._ru = _Grow(u.astype(np.int64))
        self._ri = _Grow(i.astype(np.int64))
        self._rv = _Grow(r.astype(np.float64))
        self._n_users, self._n_items = n_users, n_items
        self.n_changes_ = 0
        self._sweep(None)
        return self

    def _sweep(self, init: VBState | None) -> None:
        """Full warm-started VB sweep over every rating; rebuilds the adjacency."""
        u, i, r = self._ru.view, self._ri.view, self._rv.view
        layout = RatingLayout.build(u, i, r, self._n_users, self._n_items)
        state = vb_sweeps(layout, self._opts, init)
        if not state.converged:
            warnings.warn(f"OnlineReliability: the full VB sweep stopped at max_iter={self._opts.max_iter} before "
                          f"the item means moved less than tol={self._opts.tol:g}", ConvergenceWarning, stacklevel=3)
        self._state = state
        self._layout = layout
        h = state.hyper
        self._mu0, self._tau0, self._a0, self._b0 = h.mu0, h.tau0, h.a0, h.b0
        self._m = _Grow(state.item_mean.copy())
        self._v = _Grow(state.item_var.copy())
        self._n = _Grow(layout.user_count.astype(np.float64))
        self._ss = _Grow(np.maximum(2.0 * (state.rate - h.b0), 0.0))
        self._beta = _Grow(state.rate.copy())
        # adjacency of the ratings so far (rating indices), plus small lists for ratings since then
        n = r.shape[0]
        self._alive = _Grow(np.ones(n, dtype=bool))
        self._n_removed = 0
        self._item_ptr = layout.indptr
        self._item_adj = layout.order.astype(np.int64)
        by_user = sp.csr_matrix((np.ones(n, np.int8), (u.astype(np.int32), np.arange(n, dtype=np.int32))),
                                shape=(self._n_users, n))
        self._user_ptr = by_user.indptr.astype(np.int64)
        self._user_adj = by_user.indices.astype(np.int64)
        self._base_users, self._base_items = self._n_users, self._n_items
        self._item_extra: dict[int, list[int]] = {}
        self._user_extra: dict[int, list[int]] = {}
        self._cursor = 0
        self.n_updates_ = 0

    # ------------------------------------------------------------------------------------------ adjacency
    def _item_ratings(self, j: int) -> IntArray:
        """Indices of the current ratings of item ``j``."""
        base = self._item_adj[self._item_ptr[j] : self._item_ptr[j + 1]] if j < self._base_items else _EMPTY
        extra = self._item_extra.get(j)
        idx = base if extra is None else np.concatenate([base, np.asarray(extra, dtype=np.int64)])
        return idx[self._alive.data[idx]] if self._n_removed else idx

    def _user_ratings(self, u: int) -> IntArray:
        """Indices of the current ratings of rater ``u``."""
        base = self._user_adj[self._user_ptr[u] : self._user_ptr[u + 1]] if u < self._base_users else _EMPTY
        extra = self._user_extra.get(u)
        idx = base if extra is None else np.concatenate([base, np.asarray(extra, dtype=np.int64)])
        return idx[self._alive.data[idx]] if self._n_removed else idx

    def ratings_of(self, user: int, item: int) -> IntArray:
        """Indices of the current ratings of ``item`` by ``user`` (empty if there is none)."""
        u, i = int(user), int(item)
        if not (0 <= u < self._n_users and 0 <= i < self._n_items):
            return _EMPTY
        idx = self._user_ratings(u)
        return idx[self._ri.data[idx] == i]

    # ------------------------------------------------------------------------------------------ updates
    def _weights(self, users: IntArray, s: FloatArray, n: FloatArray | None = None,
                 beta: FloatArray | None = None) -> FloatArray:
        r"""The weights :math:`\omega_{ui}` of ratings by ``users`` with expected squared residuals ``s``:
        cavity :math:`(a_u - 1/2) / \max(\beta_u - s/2, b_0)`, mean field :math:`a_u / \beta_u`, with
        :math:`a_u = a_0 + n_u/2`; ``n`` and ``beta`` (per rating) replace the raters' current
        :math:`n_u, \beta_u` (the ripple's weights before a change)."""
        a = self._a0 + 0.5 * (self._n.data[users] if n is None else n)
        beta = self._beta.data[users] if beta is None else beta
        if self._cavity:
            return (a - 0.5) / np.maximum(beta - 0.5 * s, self._b0)
        return a / beta

    def _set_rate(self, users: IntArray | int) -> None:
        r""":math:`\beta_u = b_0 + S_u/2` for ``users``.

        :math:`S_u` is a sum of non-negative terms, so it can only be below zero by rounding in the
        incremental corrections; it is clamped at 0, so that :math:`\beta_u \ge b_0 > 0` and the
        reliability :math:`a_u/\beta_u` stays finite and positive whatever the history of updates (a
        rater left without ratings has :math:`S_u` set to exactly 0 by the downdate).
        """
        ss = self._ss.data
        clamped = np.maximum(ss[users], 0.0)
        ss[users] = clamped
        self._beta.data[users] = self._b0 + 0.5 * clamped

    def _solve_item(self, j: int) -> tuple[IntArray, FloatArray]:
        r"""Exact :math:`q(x_j)` given its raters' current :math:`q(\alpha)`; keep :math:`S_u` of its raters
        consistent.

        :math:`1/v_j = \tau_0 + \sum_u \omega_{uj}`, :math:`m_j = v_j(\tau_0\mu_0 + \sum_u \omega_{uj} r_{uj})`
        over the current ratings of item :math:`j` (the prior if it has none), then
        :math:`S_u \mathrel{+}= s_{uj}^{new} - s_{uj}^{old}` for each of them. Returns the raters (one per
        rating) and :math:`s_{uj}^{new} - s_{uj}^{old}`.
        """
        idx = self._item_ratings(j)
        m, v = self._m.data, self._v.data
        if idx.shape[0] == 0:
            m[j], v[j] = self._mu0, 1.0 / self._tau0
            return _EMPTY, np.empty(0)
        users = self._ru.data[idx]
        r = self._rv.data[idx]
        s_old = (r - m[j]) ** 2 + v[j]
        w = self._weights(users, s_old)
        prec = self._tau0 + w.sum()
        mj = (self._tau0 * self._mu0 + w @ r) / prec
        vj = 1.0 / prec
        ds = (r - mj) ** 2 + vj - s_old
        np.add.at(self._ss.data, users, ds)
        self._set_rate(users)
        m[j], v[j] = mj, vj
        return users, ds

    def _propagate(self, u: int, i: int, others: IntArray, change_rater: Callable[[], None]) -> int:
        """Steps 1-4 of an update or a downdate: ``change_rater`` applies step 1 to rater ``u``; then item
        ``i`` is re-solved, the change ripples (:meth:`_ripple`) from the rater's other current ratings
        ``others`` and from the other raters of item ``i``, and the rolling refresh runs. Returns how
        many items were re-solved."""
        n_before, beta_before = float(self._n.data[u]), float(self._beta.data[u])
        change_rater()
        return self._solve_and_ripple(u, i, others, n_before, beta_before) + self._rolling_refresh()

    def _solve_and_ripple(self, u: int, i: int, others: IntArray, n_before: float, beta_before: float) -> int:
        """Steps 2 and 3: re-solve item ``i``, then up to ``_RIPPLE_ROUNDS`` rounds of :meth:`_ripple`
        (rater ``u`` had count ``n_before`` and rate ``beta_before`` before step 1), each followed by
        a re-solve of item ``i``. Returns how many items were re-solved."""
        users_i, ds = self._solve_item(i)
        solved = 1
        for _ in range(_RIPPLE_ROUNDS if self._budget > 0 else 0):
            n_start, beta_start = float(self._n.data[u]), float(self._beta.data[u])
            if n_start == n_before and abs(beta_start - beta_before) <= self._tol * beta_start:
                others = _EMPTY        # u's reliability barely moved since its items were last solved
            rippled = self._ripple(u, i, others, n_before, beta_before, users_i, ds)
            if not rippled:
                break
            # the re-solved neighbours moved the sums of item i's raters (and of u): solve i once more,
            # and ripple again from what the re-solves of this round saw
            users_i, ds = self._solve_item(i)
            solved += rippled + 1
            n_before, beta_before = n_start, beta_start
        return solved

    def _ripple(self, u: int, i: int, others: IntArray, n_before: float, beta_before: float, users_i: IntArray,
                ds: FloatArray) -> int:
        r"""Step 3: re-solve the items whose first-order change is largest.

        The reliability of rater :math:`u` changed (step 1 and the re-solve of item :math:`i`), and so
        did that of every other rater :math:`u'` of item :math:`i`, by
        :math:`\Delta\beta_{u'} = \tfrac12 (s^{new}_{u'i} - s^{old}_{u'i})`. Their weights on their
        other items :math:`k` change by :math:`\Delta\omega_{u'k}`, which moves item :math:`k` by
        :math:`\Delta m_k \approx v_k \sum_{u'} \Delta\omega_{u'k} (r_{u'k} - m_k)` (the derivative of
        :math:`m_k = v_k(\tau_0\mu_0 + \sum \omega r)`). The candidates are all of :math:`u`'s other
        ratings and those of the ``budget`` other raters of item :math:`i` with the largest relative
        change :math:`|\Delta\beta_{u'}|/\beta_{u'}`, if it exceeds :math:`\sqrt{tol}` (a heuristic
        screen: their weights change by about that fraction, and an item moves by that fraction times the
        rater's share :math:`\omega_{u'k} v_k \le 1` of its precision, which is small except on thinly
        rated items; on a popular item nearly every rater moves by more than ``tol`` and almost none
        matters). The items with the largest :math:`|\Delta m_k|` above ``tol`` are re-solved, at most
        ``budget`` of them. Returns how many.
        """
        # the raters whose weights changed: u (count and rate before step 1) and item i's other raters
        lists, n_b, beta_b = [others], [n_before], [beta_before]
        # item i's other raters whose rate moved by more than sqrt(tol) (relative), at most `budget`
        screen = (0.5 * np.abs(ds) > self._neighbour_tol * self._beta.data[users_i]) & (users_i != u)
        if np.any(screen):
            nb_users, inverse = np.unique(users_i[screen], return_inverse=True)
            dbeta = 0.5 * np.bincount(inverse, ds[screen], nb_users.shape[0])
            beta_now = self._beta.data[nb_users]
            pick = np.arange(nb_users.shape[0])
            if pick.shape[0] > self._budget:
                pick = np.argpartition(-np.abs(dbeta) / beta_now, self._budget - 1)[: self._budget]
            for t in pick.tolist():
                w = int(nb_users[t])
                idx = self._user_ratings(w)
                lists.append(idx[self._ri.data[idx] != i])
                n_b.append(float(self._n.data[w]))
                beta_b.append(float(beta_now[t] - dbeta[t]))
        if len(lists) == 1:
            idx = others
            n_rating, beta_rating = np.full(idx.shape[0], n_before), np.full(idx.shape[0], beta_before)
        else:
            lengths = np.array([x.shape[0] for x in lists])
            idx = np.concatenate(lists)
            n_rating = np.repeat(np.asarray(n_b), lengths)
            beta_rating = np.repeat(np.asarray(beta_b), lengths)
        if idx.shape[0] == 0:
            return 0
        m, v = self._m.data, self._v.data
        users, items, r = self._ru.data[idx], self._ri.data[idx], self._rv.data[idx]
        s = (r - m[items]) ** 2 + v[items]
        dw = self._weights(users, s) - self._weights(users, s, n_rating, beta_rating)
        if len(lists) == 1:        # one rater: one rating per item, except for repeated ratings
            uniq, change = items, np.abs(dw * (r - m[items]) * v[items])
        else:
            uniq, inverse = np.unique(items, return_inverse=True)
            change = np.abs(np.bincount(inverse, dw * (r - m[items]), uniq.shape[0]) * v[uniq])
        order = np.argsort(-change)[: self._budget]
        todo = uniq[order[change[order] > self._tol]]
        for j in todo.tolist():
            self._solve_item(int(j))
        return int(todo.shape[0])

    def _rolling_refresh(self) -> int:
        n = min(self._refresh, self._n_items)
        for _ in range(n):
            self._solve_item(self._cursor)
            self._cursor = (self._cursor + 1) % self._n_items
        return n

    def _changed(self, count: int = 1) -> bool:
        """Count ``count`` changes (ratings added or removed); run the full sweep if one is due. Returns
        whether it ran."""
        self.n_updates_ += count
        self.n_changes_ += 1
        if self.n_updates_ >= self._every:
            self.full_sweep()
            return True
        return False

    def _report(self, u: int, i: int, solved: int, swept: bool, start: float) -> OnlineUpdate:
        a = self._a0 + 0.5 * self._n.data[u]
        return OnlineUpdate(user=u, item=i, item_mean=float(self._m.data[i]), item_sd=float(np.sqrt(self._v.data[i])),
                            reliability=float(a / self._beta.data[u]), items_solved=solved, full_sweep=swept,
                            seconds=time.perf_counter() - start)

    @staticmethod
    def _check(user: int, item: int) -> tuple[int, int]:
        u, i = int(user), int(item)
        if u < 0 or i < 0:
            raise ValueError("user and item must be non-negative inner indices")
        return u, i

    def update(self, user: int, item: int, rating: float) -> OnlineUpdate:
        r"""Incorporate one new rating (inner indices; ``rating`` on the normalised scale).

        Step 1 is :math:`n_u \mathrel{+}= 1`, :math:`S_u \mathrel{+}= (r - m_i)^2 + v_i`, then the item
        re-solve, the ripple and the rolling refresh (module docstring). The rating is added next to any
        the rater already has on the item; use :meth:`replace` for a re-rating. New indices
        (``user >= n_users_`` or ``item >= n_items_``) create raters/items at the prior.

        Raises
        ------
        ValueError
            Negative index or non-finite rating.
        """
        start = time.perf_counter()
        u, i = self._check(user, item)
        r = float(rating)
        if not np.isfinite(r):
            raise ValueError("rating must be finite")
        solved = self._add(u, i, r)
        return self._report(u, i, solved, self._changed(), start)

    def _add(self, u: int, i: int, r: float) -> int:
        self._grow(u, i)
        k = self._ru.size
        for arr, value in ((self._ru, u), (self._ri, i), (self._rv, r), (self._alive, True)):
            arr.ensure(k + 1, value)
        self._ru.data[k], self._ri.data[k], self._rv.data[k], self._alive.data[k] = u, i, r, True
        self._item_extra.setdefault(i, []).append(k)
        others = self._user_ratings(u)                # before adding k: the rater's other ratings
        self._user_extra.setdefault(u, []).append(k)
        m, v = self._m.data, self._v.data

        def rater() -> None:
            self._n.data[u] += 1.0
            self._ss.data[u] += (r - m[i]) ** 2 + v[i]
            self._set_rate(u)

        return self._propagate(u, i, others, rater)

    def _drop(self, k: int) -> int:
        """The downdate of rating ``k`` (see the module docstring); returns the items re-solved."""
        u, i, r = int(self._ru.data[k]), int(self._ri.data[k]), float(self._rv.data[k])
        self._alive.data[k] = False
        self._n_removed += 1
        others = self._user_ratings(u)                # after removing k: the rater's other ratings
        m, v = self._m.data, self._v.data

        def rater() -> None:
            # exactly the rating's present contribution: by the invariant, S_u holds (r - m_i)^2 + v_i
            # with the current m_i, v_i for it
            self._n.data[u] -= 1.0
            self._ss.data[u] = self._ss.data[u] - ((r - m[i]) ** 2 + v[i]) if self._n.data[u] > 0 else 0.0
            self._set_rate(u)

        return self._propagate(u, i, others, rater)

    def remove(self, user: int, item: int) -> int:
        r"""Remove the rating(s) of ``item`` by ``user``: the exact downdate of each.

        Step 1 is :math:`n_u \mathrel{-}= 1`, :math:`S_u \mathrel{-}= (r - m_i)^2 + v_i` with the current
        :math:`m_i, v_i` (exactly what the rating contributes to :math:`S_u` by the invariant), then the
        item is re-solved without the rating, the ripple and the rolling refresh run (module docstring).
        Each removed rating counts as one change for the full-sweep schedule.

        Returns
        -------
        int
            How many ratings were removed (0: the pair holds none, nothing changes).
        """
        u, i = self._check(user, item)
        mine = self.ratings_of(u, i)
        for k in mine.tolist():
            self._drop(int(k))
        if mine.shape[0]:
            self._changed(int(mine.shape[0]))
        return int(mine.shape[0])

    def replace(self, user: int, item: int, rating: float) -> OnlineUpdate:
        r"""``user`` re-rates ``item``: the downdate of its current rating(s) of the item (:meth:`remove`),
        then the update with ``rating`` (:meth:`update`); with no current rating, just the update.

        With old value :math:`r` and new :math:`r'`, the rater's count is unchanged and
        :math:`S_u \mathrel{+}= [(r' - m_i^{\setminus})^2 + v_i^{\setminus}] - [(r - m_i)^2 + v_i]`,
        :math:`m_i^{\setminus}, v_i^{\setminus}` being the item re-solved without the rating.

        Raises
        ------
        ValueError
            Negative index or non-finite rating (then nothing changes).
        """
        start = time.perf_counter()
        u, i = self._check(user, item)
        r = float(rating)
        if not np.isfinite(r):
            raise ValueError("rating must be finite")
        mine = self.ratings_of(u, i)
        solved = 0
        for k in mine.tolist():
            solved += self._drop(int(k))
        solved += self._add(u, i, r)
        # the schedule is checked once both halves are in (a full sweep renumbers the ratings)
        return self._report(u, i, solved, self._changed(int(mine.shape[0]) + 1), start)

    def remove_user(self, user: int) -> int:
        r"""Remove every rating of ``user`` (erasure): all downdated at once.

        :math:`n_u = 0`, :math:`S_u = 0` (so :math:`q(\alpha_u)` is the prior :math:`\mathrm{Gamma}(a_0, b_0)`),
        then each item the rater rated is re-solved over its remaining ratings, correcting the sums of
        their raters, with the ripple from those raters (steps 2 and 3; the removed rater has no items
        left to ripple to). One rolling refresh follows, and the removal counts as one change per rating
        for the full-sweep schedule.

        Returns
        -------
        int
            How many ratings were removed.
        """
        u = int(user)
        if u < 0:
            raise ValueError("user must be a non-negative inner index")
        if u >= self._n_users:
            return 0
        mine = self._user_ratings(u)
        if mine.shape[0] == 0:
            return 0
        self._alive.data[mine] = False
        self._n_removed += int(mine.shape[0])
        self._n.data[u] = 0.0
        self._ss.data[u] = 0.0
        self._set_rate(u)
        for j in np.unique(self._ri.data[mine]).tolist():
            self._solve_and_ripple(u, int(j), _EMPTY, 0.0, self._b0)
        self._rolling_refresh()
        self._changed(int(mine.shape[0]))
        return int(mine.shape[0])

    def update_many(self, users: npt.ArrayLike, items: npt.ArrayLike, ratings: npt.ArrayLike) -> list[OnlineUpdate]:
        """:meth:`update` for each rating in order."""
        return [self.update(int(a), int(b), float(c)) for a, b, c in zip(
            np.asarray(users), np.asarray(items), np.asarray(ratings), strict=True)]

    def extend(self, users: npt.ArrayLike, items: npt.ArrayLike, ratings: npt.ArrayLike) -> int:
        r"""Many ratings at once, each its rater's current rating of the item (a later one of a pair in
        the batch replaces an earlier): the ratings the pairs held are removed, the new ones stored, then
        one warm-started full sweep (:meth:`full_sweep`) re-solves everything.

        The result is the batch fixed point over the current ratings, closer to a refit than a chain of
        per-rating updates (which stop at ``online_tol``), and cheaper from a few hundred ratings on: a
        sweep costs a few passes over every rating (milliseconds at :math:`10^5`), an update
        :math:`O(n_u + \sum_k n_k)` with Python overhead per rating. New indices create raters and items.

        Returns
        -------
        int
            How many ratings held by the pairs were replaced.

        Raises
        ------
        ValueError
            Negative index or non-finite rating (then nothing changes).
        """
        u = np.asarray(users, dtype=np.int64).ravel()
        i = np.asarray(items, dtype=np.int64).ravel()
        r = np.asarray(ratings, dtype=np.float64).ravel()
        if not (u.shape == i.shape == r.shape):
            raise ValueError("users, items and ratings must have the same length")
        if u.size == 0:
            return 0
        if (u < 0).any() or (i < 0).any():
            raise ValueError("user and item must be non-negative inner indices")
        if not np.isfinite(r).all():
            raise ValueError("rating must be finite")
        # the last rating of each pair in the batch is the one that stays
        pairs = u * (int(i.max()) + 1) + i
        _, last_from_end = np.unique(pairs[::-1], return_index=True)
        keep = np.sort(u.size - 1 - last_from_end)
        u, i, r = u[keep], i[keep], r[keep]
        replaced = 0
        for a, b in zip(u.tolist(), i.tolist(), strict=True):
            held = self.ratings_of(a, b)
            if held.shape[0]:
                self._alive.data[held] = False
                self._n_removed += int(held.shape[0])
                replaced += 1
        self._grow(int(u.max()), int(i.max()))
        k, n = self._ru.size, u.shape[0]
        for arr, values, fill in ((self._ru, u, 0), (self._ri, i, 0), (self._rv, r, 0.0), (self._alive, True, True)):
            arr.ensure(k + n, fill)
            arr.data[k : k + n] = values
        self.full_sweep()
        return replaced

    def prefers_extend(self, n: int) -> bool:
        """Is :meth:`extend` the cheaper way to merge a write of ``n`` ratings? (``n >= 2`` and
        ``n * online_bulk_ratio >= n_ratings_``: a warm sweep costs about 0.3 us per rating held, an
        update about 0.7 ms per rating written, a replace twice that, on the demo store.)"""
        return n >= 2 and n * self._bulk_ratio >= self.n_ratings_

    def _grow(self, u: int, i: int) -> None:
        if i >= self._n_items:
            self._m.ensure(i + 1, self._mu0)
            self._v.ensure(i + 1, 1.0 / self._tau0)
            self._n_items = i + 1
        if u >= self._n_users:
            self._n.ensure(u + 1, 0.0)
            self._ss.ensure(u + 1, 0.0)
            self._beta.ensure(u + 1, self._b0)
            self._n_users = u + 1

    def full_sweep(self) -> None:
        """Warm-started batch VB over every current rating (also re-estimates the EB hyperparameters);
        removed ratings are dropped from storage."""
        if self._n_removed:
            keep = self._alive.view.copy()
            self._ru = _Grow(self._ru.view[keep])
            self._ri = _Grow(self._ri.view[keep])
            self._rv = _Grow(self._rv.view[keep])
        init = replace(self._state, item_mean=self._m.view.copy(), item_var=self._v.view.copy(),
                       bias_mean=np.zeros(0), bias_var=np.zeros(0))
        self._sweep(init)
        self.n_changes_ += 1

    # ------------------------------------------------------------------------------------------ outputs
    def _current(self) -> tuple[IntArray, IntArray, FloatArray]:
        """``(user, item, rating)`` of the current ratings."""
        u, i, r = self._ru.view, self._ri.view, self._rv.view
        if not self._n_removed:
            return u, i, r
        keep = self._alive.view
        return u[keep], i[keep], r[keep]

    @property
    def n_ratings_(self) -> int:
        return self._ru.size - self._n_removed

    @property
    def n_users_(self) -> int:
        return self._n_users

    @property
    def n_items_(self) -> int:
        return self._n_items

    @property
    def item_mean_(self) -> FloatArray:
        return self._m.view

    @property
    def item_var_(self) -> FloatArray:
        return self._v.view

    @property
    def rater_shape_(self) -> FloatArray:
        return self._a0 + 0.5 * self._n.view

    @property
    def rater_rate_(self) -> FloatArray:
        return self._beta.view

    def result(self, snapshot: RatingSnapshot | None = None) -> ReliabilityResult:
        """The current estimates as a :class:`ReliabilityResult` (ids and scales from ``snapshot``, else
        from the fitted snapshot, extended with index ids and a [0, 1] scale for new items/users)."""
        snap = snapshot if snapshot is not None else self._snapshot
        n_users, n_items = self._n_users, self._n_items
        user_ids = np.array([str(k) for k in range(n_users)], dtype=object)
        item_ids = np.array([str(k) for k in range(n_items)], dtype=object)
        lo, hi = np.zeros(n_items), np.ones(n_items)
        if snap is not None:
            user_ids[: snap.n_users] = snap.user_ids[: n_users]
            item_ids[: snap.n_items] = snap.item_ids[: n_items]
            lo[: snap.n_items], hi[: snap.n_items] = snap.item_min[:n_items], snap.item_max[:n_items]
        view = RatingSnapshot(user_ids=user_ids, item_ids=item_ids, review_ids=np.empty(0, dtype=object),
                              user_idx=_EMPTY, item_idx=_EMPTY, rating=np.empty(0), created_at=np.empty(0),
                              item_min=lo, item_max=hi, item_topic=np.empty(0, dtype=object))
        users, items, r = self._current()
        n_i = np.bincount(items, minlength=n_items).astype(np.int64)
        m, v = self._m.view, self._v.view
        s = (r - m[items]) ** 2 + v[items]
        w = self._weights(users, s)
        state = replace(self._state, item_mean=m.copy(), item_var=v.copy(), shape=self.rater_shape_.copy(),
                        rate=self._beta.view.copy(), bias_mean=np.zeros(n_users), bias_var=np.zeros(n_users),
                        weight_sum=np.bincount(items, w, n_items))  # type: ignore[arg-type]

        user_count = np.bincount(users, minlength=n_users).astype(np.int64)
        res = result_from_state(state, view, n_i, user_count, backend="online", fit_seconds=0.0,
                                credible_level=self._opts.credible_level)
        return res
