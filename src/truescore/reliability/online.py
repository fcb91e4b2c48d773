r"""Online updates of the VB reliability fit: new ratings without refitting from scratch.

State
-----
The updater keeps the fit of :mod:`.vb` in the form its closed-form updates need: per item the
posterior :math:`m_i, v_i`; per rater the count :math:`n_u` and the sum of expected squared residuals
:math:`S_u = \sum_i s_{ui}`, :math:`s_{ui} = (r_{ui} - m_i)^2 + v_i`, from which
:math:`a_u = a_0 + n_u/2` and :math:`\beta_u = b_0 + S_u/2`. The invariant kept exactly is that
:math:`S_u` is the sum over the rater's ratings with the *current* :math:`m_i, v_i`.

One new rating :math:`(u, i, r)`
--------------------------------
1. **Rater**: :math:`n_u \mathrel{+}= 1`, :math:`S_u \mathrel{+}= (r - m_i)^2 + v_i` (O(1)).
2. **Item**: re-solve item :math:`i` exactly (step 3 of a VB sweep over its raters, with their current
   :math:`a, \beta`), then correct :math:`S_{u'}` of each of its raters for the change of
   :math:`m_i, v_i` (O(n_i)).
3. **Ripple** (seed 000's message passing): the rater's reliability changed, so its weight on every
   other item it rated changed; the first-order change of each such item,
   :math:`\Delta m_k \approx \Delta\omega_{uk}(r_{uk} - m_k) v_k`, is computed for all of them
   (O(n_u)) and the items with the largest :math:`|\Delta m_k|` above ``tol`` are re-solved as in 2,
   at most ``budget`` of them.
4. **Rolling refresh**: ``refresh`` further items are re-solved in round-robin order, so every item is
   revisited at least every ``n_items / refresh`` updates and second-order effects (items whose raters
   changed through other items) cannot accumulate.

The cost of an update is :math:`O(n_u + \sum_{k \in \text{solved}} n_k)`, independent of the size of the
data set apart from the degrees of the touched nodes. Hyperparameters stay at the values of the last
full fit. A **full sweep** (a warm-started :func:`~truescore.reliability.vb.vb_sweeps` over all ratings,
which also re-estimates the empirical-Bayes hyperparameters) runs every ``full_sweep_every`` ratings, or
when :meth:`OnlineReliability.full_sweep` is called; it bounds the drift from the batch fixed point.
Rater biases are not updated online (``use_bias=True`` is refused).
"""

from __future__ import annotations

import time
import warnings
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

    A full sweep (at :meth:`fit` and every ``online_full_sweep_every`` ratings) that stops at ``max_iter``
    before meeting ``tol`` warns with a :class:`~sklearn.exceptions.ConvergenceWarning`.

    Parameters
    ----------
    settings : ReliabilitySettings, optional
        VB options (weighting, priors, tol) and the online fields ``online_budget``,
        ``online_refresh``, ``online_tol`` and ``online_full_sweep_every``.

    Attributes
    ----------
    n_ratings_, n_users_, n_items_ : int
    item_mean_, item_var_ : ndarray
    rater_shape_, rater_rate_ : ndarray
    n_updates_ : int
        Updates since the last full sweep.
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
        self._every = s.online_full_sweep_every
        self._cavity = self._opts.weighting == "cavity"
        self._ru = _Grow(u.astype(np.int64))
        self._ri = _Grow(i.astype(np.int64))
        self._rv = _Grow(r.astype(np.float64))
        self._n_users, self._n_items = n_users, n_items
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
        self._ss = _Grow(2.0 * (state.rate - h.b0))
        self._beta = _Grow(state.rate.copy())
        # adjacency of the ratings so far (rating indices), plus small lists for ratings since then
        n = r.shape[0]
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
        base = self._item_adj[self._item_ptr[j] : self._item_ptr[j + 1]] if j < self._base_items else _EMPTY
        extra = self._item_extra.get(j)
        return base if extra is None else np.concatenate([base, np.asarray(extra, dtype=np.int64)])

    def _user_ratings(self, u: int) -> IntArray:
        base = self._user_adj[self._user_ptr[u] : self._user_ptr[u + 1]] if u < self._base_users else _EMPTY
        extra = self._user_extra.get(u)
        return base if extra is None else np.concatenate([base, np.asarray(extra, dtype=np.int64)])

    # ------------------------------------------------------------------------------------------ updates
    def _weights(self, users: IntArray, s: FloatArray) -> FloatArray:
        a = self._a0 + 0.5 * self._n.data[users]
        beta = self._beta.data[users]
        if self._cavity:
            return (a - 0.5) / np.maximum(beta - 0.5 * s, self._b0)
        return a / beta

    def _solve_item(self, j: int) -> None:
        """Exact q(x_j) given its raters' current q(alpha); keep S_u of its raters consistent."""
        idx = self._item_ratings(j)
        m, v = self._m.data, self._v.data
        if idx.shape[0] == 0:
            m[j], v[j] = self._mu0, 1.0 / self._tau0
            return
        users = self._ru.data[idx]
        r = self._rv.data[idx]
        s_old = (r - m[j]) ** 2 + v[j]
        w = self._weights(users, s_old)
        prec = self._tau0 + w.sum()
        mj = (self._tau0 * self._mu0 + w @ r) / prec
        vj = 1.0 / prec
        s_new = (r - mj) ** 2 + vj
        np.add.at(self._ss.data, users, s_new - s_old)
        self._beta.data[users] = self._b0 + 0.5 * self._ss.data[users]
        m[j], v[j] = mj, vj

    def update(self, user: int, item: int, rating: float) -> OnlineUpdate:
        """Incorporate one rating (inner indices; ``rating`` on the normalised scale).

        New indices (``user >= n_users_`` or ``item >= n_items_``) create raters/items at the prior.

        Raises
        ------
        ValueError
            Negative index or non-finite rating.
        """
        start = time.perf_counter()
        u, i, r = int(user), int(item), float(rating)
        if u < 0 or i < 0:
            raise ValueError("user and item must be non-negative inner indices")
        if not np.isfinite(r):
            raise ValueError("rating must be finite")
        self._grow(u, i)
        k = self._ru.size
        self._ru.ensure(k + 1, 0)
        self._ri.ensure(k + 1, 0)
        self._rv.ensure(k + 1, 0.0)
        self._ru.data[k], self._ri.data[k], self._rv.data[k] = u, i, r
        self._item_extra.setdefault(i, []).append(k)
        others = self._user_ratings(u)                # before adding k: the rater's other ratings
        self._user_extra.setdefault(u, []).append(k)
        m, v = self._m.data, self._v.data
        # weights of the rater on its other items before the change (for the ripple estimate)
        if others.shape[0]:
            items_o = self._ri.data[others]
            r_o = self._rv.data[others]
            s_o = (r_o - m[items_o]) ** 2 + v[items_o]
            uu = np.full(others.shape[0], u)
            w_before = self._weights(uu, s_o)
        # 1. the rater
        self._n.data[u] += 1.0
        self._ss.data[u] += (r - m[i]) ** 2 + v[i]
        self._beta.data[u] = self._b0 + 0.5 * self._ss.data[u]
        # 2. the item
        self._solve_item(i)
        solved = 1
        # 3. ripple to the rater's other items, largest first-order change first
        if others.shape[0] and self._budget > 0:
            w_after = self._weights(uu, s_o)
            change = np.abs((w_after - w_before) * (r_o - m[items_o]) * v[items_o])
            order = np.argsort(-change)[: self._budget]
            for j in items_o[order[change[order] > self._tol]]:
                self._solve_item(int(j))
                solved += 1
        # 4. rolling refresh
        for _ in range(min(self._refresh, self._n_items)):
            self._solve_item(self._cursor)
            self._cursor = (self._cursor + 1) % self._n_items
            solved += 1
        self.n_updates_ += 1
        swept = False
        if self.n_updates_ >= self._every:
            self.full_sweep()
            swept = True
        a = self._a0 + 0.5 * self._n.data[u]
        return OnlineUpdate(user=u, item=i, item_mean=float(self._m.data[i]), item_sd=float(np.sqrt(self._v.data[i])),
                            reliability=float(a / self._beta.data[u]), items_solved=solved, full_sweep=swept,
                            seconds=time.perf_counter() - start)

    def update_many(self, users: npt.ArrayLike, items: npt.ArrayLike, ratings: npt.ArrayLike) -> list[OnlineUpdate]:
        """:meth:`update` for each rating in order."""
        return [self.update(int(a), int(b), float(c)) for a, b, c in zip(
            np.asarray(users), np.asarray(items), np.asarray(ratings), strict=True)]

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
        """Warm-started batch VB over every rating so far (also re-estimates the EB hyperparameters)."""
        init = replace(self._state, item_mean=self._m.view.copy(), item_var=self._v.view.copy(),
                       bias_mean=np.zeros(0), bias_var=np.zeros(0))
        self._sweep(init)

    # ------------------------------------------------------------------------------------------ outputs
    @property
    def n_ratings_(self) -> int:
        return self._ru.size

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
        n_i = np.bincount(self._ri.view, minlength=n_items).astype(np.int64)
        users = self._ru.view
        items = self._ri.view
        r = self._rv.view
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
