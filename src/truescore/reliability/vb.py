r"""Closed-form variational Bayes for item quality and rater reliability (seed 000).

The model
---------
Let items be indexed by :math:`i`, raters by :math:`u`, and let :math:`r_{ui} \in [0, 1]` be the
normalised rating of item :math:`i` by rater :math:`u`. Seed 000's model, with an optional bias:

.. math::

    r_{ui} = x_i + b_u + \varepsilon_{ui}, \quad \varepsilon_{ui} \sim N(0, 1/\alpha_u),

    x_i \sim N(\mu_0, 1/\tau_0), \quad \alpha_u \sim \mathrm{Gamma}(a_0, b_0), \quad
    b_u \sim N(0, 1/\tau_b) \ (\text{only if the bias is on}).

:math:`x_i` is the item's true quality, :math:`\alpha_u` the rater's reliability (noise precision) and
:math:`b_u` a consistent harsh/lenient offset.

Mean-field variational Bayes
----------------------------
With :math:`q = \prod_i N(x_i; m_i, v_i) \prod_u \mathrm{Gamma}(\alpha_u; a_u, \beta_u)
\prod_u N(b_u; c_u, w_u)`, let :math:`s_{ui} = E_q[(r_{ui} - x_i - b_u)^2] = (r_{ui} - m_i - c_u)^2 + v_i
+ w_u` and :math:`\bar\alpha_u = a_u/\beta_u`. One sweep is, in this order (each step maximises the
evidence lower bound, ELBO, over one factor given the others):

1. :math:`a_u = a_0 + n_u/2`, :math:`\beta_u = b_0 + \tfrac12 \sum_i s_{ui}`;
2. (bias on) :math:`1/w_u = \tau_b + \sum_i \omega_{ui}`, :math:`c_u = w_u \sum_i \omega_{ui}(r_{ui} - m_i)`;
3. :math:`1/v_i = \tau_0 + \sum_u \omega_{ui}`,
   :math:`m_i = v_i(\tau_0\mu_0 + \sum_u \omega_{ui}(r_{ui} - c_u))`;
4. (empirical Bayes) every hyperparameter left free is set to its M-step value:
   :math:`\mu_0 = \overline{m}`, :math:`1/\tau_0 = \overline{(m_i-\mu_0)^2 + v_i}`,
   :math:`1/\tau_b = \overline{c_u^2 + w_u}`, and :math:`(a_0, b_0)` maximise
   :math:`\sum_u E_q[\log \mathrm{Gamma}(\alpha_u; a_0, b_0)]`
   (Newton on :math:`a_0`, then :math:`b_0 = a_0/\overline{\bar\alpha}`).

With ``weighting="meanfield"`` the rater weight is :math:`\omega_{ui} = \bar\alpha_u` and the sweep is
exact coordinate ascent on the ELBO (it never decreases). With the default ``weighting="cavity"`` the
weight is the rater's expected precision *given its other ratings*,

.. math::

    \omega_{ui} = E_{q^{\setminus i}}[\alpha_u] = \frac{a_u - 1/2}{\beta_u - s_{ui}/2},

the cavity distribution of expectation propagation (Minka 2001): the rating's own Gamma message
(shape 1/2, rate :math:`s_{ui}/2`) is removed before the rater's precision weighs that rating. This is
seed 000's "track record": a fresh account with one rating counts exactly the prior mean
:math:`a_0/b_0`, however well it agrees with the accounts that rate like it, whereas in mean field a ring
of agreeing fresh accounts confirms its own precision (docs/reliability.md, "Why the cavity").
The cavity fixed point is not the optimum of an ELBO, so its ELBO is reported but not guaranteed
monotone; the convergence test is the change of the item means.

Cost
----
A sweep is one pass over the ratings in item-major order (:class:`RatingLayout`): ``np.repeat`` of
item quantities, one gather of rater quantities through an int32 index, ``np.add.reduceat`` for item
sums and ``np.bincount`` for rater sums; O(number of ratings) time and memory, no Python loop over
ratings. Each numbered step is a small pure function of :mod:`truescore.reliability.kernels`, which
the Spark job (:mod:`truescore.spark.fit`) calls too; the few sums over all items, raters or ratings
(empirical Bayes, the starting mean) are exact there, so both paths give the same numbers.
Starting from the item means, about 6-10 sweeps reach ``tol = 1e-5``.

References
----------
C. M. Bishop, *Pattern Recognition and Machine Learning*, 2006, sections 10.1-10.3 (mean-field VB
for the Gaussian with unknown mean and precision).
T. Minka, Expectation Propagation for approximate Bayesian inference, UAI 2001 (cavity distributions).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.special import digamma
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning

from truescore.config import ReliabilitySettings
from truescore.domain import RatingSnapshot
from truescore.reliability import kernels as K
from truescore.reliability._layout import RatingLayout, check_arrays, snapshot_arrays
from truescore.reliability._stats import gamma_interval, gamma_kl_terms, gaussian_kl_terms
from truescore.reliability._types import Hyperparameters, ReliabilityResult

__all__ = ["VBOptions", "VBReliability", "VBState", "fit_vb", "result_from_state", "vb_fit_arrays", "vb_sweeps"]

FloatArray = npt.NDArray[np.float64]

_LOG_2PI = float(np.log(2.0 * np.pi))


#: The defaults of every VB option: those of :class:`~truescore.config.ReliabilitySettings` (their one source).
_DEFAULTS = ReliabilitySettings()


@dataclass(frozen=True, slots=True)
class VBOptions:
    """Settings of one VB fit (see :class:`truescore.config.ReliabilitySettings` for each field).

    Every default is the settings object's default, read from it (not written again here).
    """

    weighting: str = _DEFAULTS.weighting
    use_bias: bool = _DEFAULTS.use_bias
    mu0: float | None = _DEFAULTS.mu0
    tau0: float | None = _DEFAULTS.tau0
    a0: float | None = _DEFAULTS.a0
    b0: float | None = _DEFAULTS.b0
    tau_b: float | None = _DEFAULTS.tau_b
    empirical_bayes: bool = _DEFAULTS.empirical_bayes
    max_iter: int = _DEFAULTS.max_iter
    tol: float = _DEFAULTS.tol
    track_elbo: bool = _DEFAULTS.track_elbo
    credible_level: float = _DEFAULTS.credible_level

    @classmethod
    def from_settings(cls, settings: ReliabilitySettings | None = None, **overrides: Any) -> VBOptions:
        """Options from the configuration section, with keyword overrides (validated there).

        ``settings=None`` means the pure defaults of :class:`~truescore.config.ReliabilitySettings`.
        """
        checked = (settings if settings is not None else ReliabilitySettings()).with_overrides(**overrides)
        return cls(**{name: getattr(checked, name) for name in cls.__dataclass_fields__})


@dataclass(slots=True)
class VBState:
    """Variational parameters after a fit, on the normalised scale (arrays indexed like the layout).

    ``item_mean``/``item_var`` are :math:`m_i, v_i`; ``shape``/``rate`` are :math:`a_u, \\beta_u`;
    ``bias_mean``/``bias_var`` are :math:`c_u, w_u`; ``weight_sum`` is :math:`\\sum_u \\omega_{ui}`.
    """

    item_mean: FloatArray
    item_var: FloatArray
    shape: FloatArray
    rate: FloatArray
    bias_mean: FloatArray
    bias_var: FloatArray
    weight_sum: FloatArray
    hyper: Hyperparameters
    elbo_history: list[float] = field(default_factory=list)
    delta_history: list[float] = field(default_factory=list)
    n_iter: int = 0
    converged: bool = False

    @property
    def precision(self) -> FloatArray:
        """:math:`E[\\alpha_u]`."""
        return self.shape / self.rate


#: The hyperparameter state and the Gamma M-step live with the other step kernels (shared with Spark).
_Hyper = K.Hyper
_gamma_mstep = K.gamma_mstep


def _initial_hyper(opts: VBOptions, layout: RatingLayout) -> _Hyper:
    """Starting hyperparameters; the mean and variance of the ratings are exact sums (as in Spark)."""
    n = layout.n_ratings
    mean_rating = K.exact_mean(layout.rating) if n else 0.5
    var_rating = K.rating_var(layout.rating, mean_rating).value() / n if n > 1 else 0.25
    return K.initial_hyper(opts, n, mean_rating, var_rating)


def _elbo(layout: RatingLayout, m: FloatArray, v: FloatArray, shape: FloatArray, rate: FloatArray,
          c: FloatArray, w: FloatArray, h: _Hyper, use_bias: bool) -> float:
    """The evidence lower bound of ``q`` (an independent pass; used for monitoring and tests)."""
    e = layout.rating - layout.expand_items(m)
    if use_bias:
        e -= c[layout.user]
    s = e * e + layout.expand_items(v)
    ss = layout.user_sum(s)
    if use_bias:
        ss += layout.user_count * w
    n = layout.user_count.astype(np.float64)
    elog = digamma(shape) - np.log(rate)
    loglik = float(np.sum(0.5 * n * (elog - _LOG_2PI) - 0.5 * (shape / rate) * ss))
    total = loglik + gaussian_kl_terms(m, v, h.mu0, h.tau0) + gamma_kl_terms(shape, rate, h.a0, h.b0)
    if use_bias:
        total += gaussian_kl_terms(c, w, 0.0, h.tau_b)
    return total


def vb_sweeps(layout: RatingLayout, opts: VBOptions, init: VBState | None = None) -> VBState:
    """Run VB sweeps on a prepared layout until the item means move less than ``opts.tol``.

    Parameters
    ----------
    layout : RatingLayout
    opts : VBOptions
    init : VBState, optional
        Warm start (item posteriors, rater biases, hyperparameters); arrays may be shorter than the
        layout (new items/raters start from the prior). Default: item means, zero biases.

    Returns
    -------
    VBState
    """
    if opts.weighting not in ("cavity", "meanfield"):
        raise ValueError(f"weighting must be 'cavity' or 'meanfield', not {opts.weighting!r}")
    n_items, n_users = layout.n_items, layout.n_users
    h = _initial_hyper(opts, layout)
    if init is not None:
        # warm start: free hyperparameters continue from their previous values
        for name in ("mu0", "tau0", "a0", "b0", "tau_b"):
            if getattr(h, f"free_{name}"):
                setattr(h, name, getattr(init.hyper, name))
    use_bias = opts.use_bias
    cavity = opts.weighting == "cavity"
    n_u = layout.user_count.astype(np.float64)
    n_i = layout.item_count.astype(np.float64)
    r = layout.rating
    user = layout.user

    # ---- initial state
    prior_alpha = h.a0 / h.b0
    c = np.zeros(n_users)
    w = np.full(n_users, 1.0 / h.tau_b) if use_bias else np.zeros(n_users)
    if init is None:
        sums = layout.item_sum(r)
        m = np.where(n_i > 0, sums / np.maximum(n_i, 1.0), h.mu0)
        v = 1.0 / (h.tau0 + n_i * prior_alpha)
    else:
        m = np.full(n_items, h.mu0)
        v = 1.0 / (h.tau0 + n_i * prior_alpha)
        k = min(n_items, init.item_mean.shape[0])
        m[:k], v[:k] = init.item_mean[:k], init.item_var[:k]
        if use_bias and init.bias_mean.shape[0]:
            ku = min(n_users, init.bias_mean.shape[0])
            c[:ku], w[:ku] = init.bias_mean[:ku], init.bias_var[:ku]
    shape = h.a0 + 0.5 * n_u
    rate = np.full(n_users, h.b0)
    weight_sum = np.zeros(n_items)
    state = VBState(m, v, shape, rate, c, w, weight_sum, h.frozen())
    if layout.n_ratings == 0:
        state.converged = True
        return state

    rated_u = n_u > 0
    rated_i = n_i > 0
    # cavity numerator a_u - 1/2 per rating (constant while a0 is fixed)
    cav_num = (shape - 0.5)[user] if cavity and not h.free_a0 else None

    for it in range(opts.max_iter):
        # 1. raters: q(alpha_u) from the expected squared residuals s_ui, then the weight of each rating
        e, s = K.expected_sq_residuals(r, layout.expand_items(m), layout.expand_items(v),
                                       c[user] if use_bias else None, w[user] if use_bias else None)
        shape, rate = K.rater_precision(h, n_u, layout.user_sum(s))
        if cavity:
            num = cav_num if cav_num is not None else (shape - 0.5)[user]
            omega = K.rating_weights(s, num, rate[user], h.b0, cavity=True)
        else:
            omega = K.rating_weights(s, shape[user], rate[user], h.b0, cavity=False)
        del s
        # 2. raters: q(b_u)
        if use_bias:
            c, w = K.rater_bias(h.tau_b, layout.user_sum(omega), layout.user_sum(omega * e))
            target = r - c[user]
        else:
            target = r
        del e
        # 3. items: q(x_i)
        weight_sum = layout.item_sum(omega)
        omega *= target
        m_new, v = K.item_posterior(h, weight_sum, layout.item_sum(omega))
        del omega, target
        if use_bias:
            K.bias_shift(h, m_new, c, rated_i, rated_u)
        delta = K.max_abs_change(m_new, m)
        m = m_new
        # 4. empirical Bayes M-step
        K.empirical_bayes(h, m, v, c, w, shape, rate)
        state.delta_history.append(delta)
        state.n_iter = it + 1
        if opts.track_elbo:
            sh, rt = _refresh_raters(layout, m, v, c, w, h, use_bias)
            state.elbo_history.append(_elbo(layout, m, v, sh, rt, c, w, h, use_bias))
        if delta < opts.tol:
            state.converged = True
            break

    # final rater posteriors consistent with the final item posteriors
    shape, rate = _refresh_raters(layout, m, v, c, w, h, use_bias)
    state.item_mean, state.item_var = m, v
    state.shape, state.rate = shape, rate
    state.bias_mean, state.bias_var = c, (w if use_bias else np.zeros(n_users))
    state.weight_sum = weight_sum
    state.hyper = h.frozen()
    if not opts.track_elbo:
        state.elbo_history.append(_elbo(layout, m, v, shape, rate, c, w, h, use_bias))
    return state


def _refresh_raters(layout: RatingLayout, m: FloatArray, v: FloatArray, c: FloatArray, w: FloatArray,
                    h: _Hyper, use_bias: bool) -> tuple[FloatArray, FloatArray]:
    """q(alpha_u) given the current item (and bias) posteriors: step 1 of a sweep."""
    _, s = K.expected_sq_residuals(layout.rating, layout.expand_items(m), layout.expand_items(v),
                                   c[layout.user] if use_bias else None)
    ss = layout.user_sum(s)
    if use_bias:
        ss += layout.user_count * w
    return K.rater_precision(h, layout.user_count, ss)


def vb_fit_arrays(user_idx: npt.ArrayLike, item_idx: npt.ArrayLike, rating: npt.ArrayLike, n_users: int,
                  n_items: int, opts: VBOptions | None = None, init: VBState | None = None
                  ) -> tuple[VBState, RatingLayout]:
    """Fit VB on raw arrays (ratings already on the normalised scale); returns the state and the layout."""
    u, i, r, n_users, n_items = check_arrays(user_idx, item_idx, rating, n_users, n_items)
    layout = RatingLayout.build(u, i, r, n_users, n_items)
    return vb_sweeps(layout, opts or VBOptions(), init), layout


def result_from_state(state: VBState, snapshot: RatingSnapshot, item_count: npt.NDArray[np.int64],
                      user_count: npt.NDArray[np.int64], *, backend: str, fit_seconds: float,
                      credible_level: float) -> ReliabilityResult:
    """Package a :class:`VBState` as a :class:`ReliabilityResult` on the snapshot's ids and scales."""
    span = snapshot.item_max - snapshot.item_min
    sd = np.sqrt(state.item_var)
    lo, hi = gamma_interval(state.shape, state.rate, credible_level)
    return ReliabilityResult(
        backend=backend,
        item_ids=snapshot.item_ids,
        item_mean=state.item_mean,
        item_sd=sd,
        item_quality=snapshot.item_min + state.item_mean * span,
        item_quality_sd=sd * span,
        item_n_ratings=item_count,
        item_effective_weight=state.weight_sum,
        user_ids=snapshot.user_ids,
        reliability=state.precision,
        reliability_lo=lo,
        reliability_hi=hi,
        rater_shape=state.shape,
        rater_rate=state.rate,
        bias=state.bias_mean,
        bias_sd=np.sqrt(state.bias_var),
        user_n_ratings=user_count,
        hyper=state.hyper,
        elbo_history=np.asarray(state.elbo_history, dtype=np.float64),
        delta_history=np.asarray(state.delta_history, dtype=np.float64),
        n_iter=state.n_iter,
        converged=state.converged,
        fit_seconds=fit_seconds,
        credible_level=credible_level,
        item_min=snapshot.item_min,
        item_max=snapshot.item_max,
    )


def fit_vb(snapshot: RatingSnapshot, opts: VBOptions | None = None) -> ReliabilityResult:
    """Fit the VB reliability model to a snapshot (the plain function behind :class:`VBReliability`).

    Parameters
    ----------
    snapshot : RatingSnapshot
        Normalised ratings with inner indices.
    opts : VBOptions, optional
        Default: the documented defaults (``VBOptions()``, those of
        :class:`~truescore.config.ReliabilitySettings`), exactly what :func:`truescore.reliability.fit`
        uses without settings, so ``fit_vb(s)`` and ``fit(s)`` agree.

    Returns
    -------
    ReliabilityResult

    Raises
    ------
    ValueError
        If the snapshot's arrays are inconsistent (the message names the field).
    """
    if opts is None:
        opts = VBOptions()
    start = time.perf_counter()
    u, i, r, n_users, n_items = snapshot_arrays(snapshot)
    layout = RatingLayout.build(u, i, r, n_users, n_items)
    state = vb_sweeps(layout, opts)
    elapsed = time.perf_counter() - start
    result = result_from_state(state, snapshot, layout.item_count, layout.user_count, backend="vb",
                               fit_seconds=elapsed, credible_level=opts.credible_level)
    result.extras["weighting"] = opts.weighting
    result.extras["use_bias"] = opts.use_bias
    return result


class VBReliability(BaseEstimator):
    """Closed-form VB estimator of item quality and rater reliability (a scikit-learn estimator).

    ``__init__`` only stores the parameters (so ``sklearn.base.clone``, ``get_params``/``set_params`` and
    the repr work); they are validated in :meth:`fit`, against the ranges declared once in
    :class:`~truescore.config.ReliabilitySettings`, whose defaults are also this class's defaults.
    ``fit`` takes a :class:`~truescore.domain.RatingSnapshot` rather than an array ``X`` (ratings are
    sparse (user, item, rating) triples with ids), so the array-based estimator checks do not apply
    (CONTRIBUTING.md, "Estimators").

    Parameters
    ----------
    weighting : {"cavity", "meanfield"}, default="cavity"
        How a rater's reliability weighs its rating of an item (see the module docstring).
    use_bias : bool, default=False
        Fit a per-rater bias ``b_u``.
    mu0, tau0, a0, b0, tau_b : float or None
        Prior hyperparameters on the normalised scale; None = empirical Bayes.
        Defaults: ``mu0=None, tau0=1.0, a0=0.1, b0=0.025, tau_b=None``.
    empirical_bayes : bool, default=True
    max_iter : int, default=200
        Most sweeps; a fit that stops here without meeting ``tol`` warns with a
        :class:`~sklearn.exceptions.ConvergenceWarning` (and ``converged_`` is False).
    tol : float, default=1e-5
        Stop when the largest change of an item mean between sweeps is below ``tol``.
    track_elbo : bool, default=False
    credible_level : float, default=0.9

    Attributes
    ----------
    item_mean_, item_var_ : ndarray of shape (n_items,)
        Posterior mean and variance of the item quality (normalised scale).
    rater_shape_, rater_rate_ : ndarray of shape (n_users,)
        ``q(alpha_u) = Gamma(shape, rate)``.
    rater_precision_ : ndarray of shape (n_users,)
        ``E[alpha_u]``.
    bias_mean_, bias_var_ : ndarray of shape (n_users,)
    hyper_ : Hyperparameters
    elbo_history_, delta_history_ : ndarray
    n_iter_ : int
    converged_ : bool
    result_ : ReliabilityResult

    Examples
    --------
    >>> from truescore.domain import RatingSnapshot
    >>> snap = RatingSnapshot.from_arrays([0, 1, 2, 0, 1, 2], [0, 0, 0, 1, 1, 1], [4, 4, 5, 2, 2, 1],
    ...                                   min_rating=1, max_rating=5)
    >>> est = VBReliability().fit(snap)
    >>> bool(est.result_.item_quality[0] > est.result_.item_quality[1])
    True
    >>> from sklearn.base import clone
    >>> clone(est.set_params(use_bias=True))
    VBReliability(use_bias=True)
    """

    def __init__(self, *, weighting: str = _DEFAULTS.weighting, use_bias: bool = _DEFAULTS.use_bias,
                 mu0: float | None = _DEFAULTS.mu0, tau0: float | None = _DEFAULTS.tau0,
                 a0: float | None = _DEFAULTS.a0, b0: float | None = _DEFAULTS.b0,
                 tau_b: float | None = _DEFAULTS.tau_b, empirical_bayes: bool = _DEFAULTS.empirical_bayes,
                 max_iter: int = _DEFAULTS.max_iter, tol: float = _DEFAULTS.tol,
                 track_elbo: bool = _DEFAULTS.track_elbo, credible_level: float = _DEFAULTS.credible_level) -> None:
        self.weighting = weighting
        self.use_bias = use_bias
        self.mu0 = mu0
        self.tau0 = tau0
        self.a0 = a0
        self.b0 = b0
        self.tau_b = tau_b
        self.empirical_bayes = empirical_bayes
        self.max_iter = max_iter
        self.tol = tol
        self.track_elbo = track_elbo
        self.credible_level = credible_level

    @classmethod
    def from_settings(cls, settings: ReliabilitySettings | None = None) -> VBReliability:
        """The estimator configured by ``settings`` (default: the documented defaults, as
        :func:`truescore.reliability.fit` uses them without settings)."""
        s = settings if settings is not None else _DEFAULTS
        return cls(**{name: getattr(s, name) for name in VBOptions.__dataclass_fields__})

    def _options(self) -> VBOptions:
        """The parameters as :class:`VBOptions`, validated by :class:`ReliabilitySettings` (ValueError)."""
        params = self.get_params()  # type: ignore[no-untyped-call]  # scikit-learn ships no annotations
        return VBOptions.from_settings(None, **params)

    def fit(self, snapshot: RatingSnapshot, y: None = None) -> VBReliability:
        """Fit to ``snapshot``; returns ``self``.

        Parameters
        ----------
        snapshot : RatingSnapshot
        y : None
            Ignored (scikit-learn's signature).

        Raises
        ------
        ValueError
            An out-of-range parameter (named), or a snapshot with inconsistent arrays.
        TypeError
            If ``snapshot`` is not a :class:`~truescore.domain.RatingSnapshot`.
        """
        if not isinstance(snapshot, RatingSnapshot):
            raise TypeError(f"VBReliability.fit takes a RatingSnapshot, not {type(snapshot).__name__}")
        result = fit_vb(snapshot, self._options())
        self.result_ = result
        self.item_mean_ = result.item_mean
        self.item_var_ = result.item_sd**2
        self.rater_shape_ = result.rater_shape
        self.rater_rate_ = result.rater_rate
        self.rater_precision_ = result.reliability
        self.bias_mean_ = result.bias
        self.bias_var_ = result.bias_sd**2
        self.hyper_ = result.hyper
        self.elbo_history_ = result.elbo_history
        self.delta_history_ = result.delta_history
        self.n_iter_ = result.n_iter
        self.converged_ = result.converged
        if not result.converged:
            last = float(result.delta_history[-1]) if result.delta_history.size else float("nan")
            warnings.warn(
                f"VBReliability stopped at max_iter={self.max_iter} sweeps before converging: the largest change "
                f"of an item mean in the last sweep was {last:.3g} > tol={self.tol:g}; raise max_iter or tol",
                ConvergenceWarning,
                stacklevel=2,
            )
        return self

    def fit_result(self, snapshot: RatingSnapshot) -> ReliabilityResult:
        """Fit and return the :class:`ReliabilityResult`."""
        return self.fit(snapshot).result_
