"""The observer's personal estimate ``for_you``: the public estimate, their own calibration and their
trusted reviewers, combined as one Gaussian posterior (issue 13).

Model
-----
Ratings are normalised to ``z`` in [0, 1]. The rating observer ``o`` would give item ``i`` is

.. math::

    z_{oi} = \\mu + b_i + c_o + g_{oi} + \\varepsilon_{oi},

with independent Gaussian parts: the global mean :math:`\\mu`; the item's offset
:math:`b_i \\sim N(0, \\sigma_b^2)` (what the crowd thinks of the item); the observer's calibration
:math:`c_o \\sim N(0, \\sigma_c^2)` (how they rate against the crowd); their personal taste for this item
:math:`g_{oi} \\sim N(0, \\gamma)`, the part their trusted reviewers may share; and noise. ``for_you``
is the posterior mean :math:`\\hat z = \\hat p_i + \\hat c_o + \\hat g_{oi}` with the sum of the three
posterior variances as ``for_you_sd``:

(a) **Public estimate (the prior).** With the item's ``n`` ratings at or before the clock, the
    observer's own rating left out, :math:`S = \\sum (z - \\mu)`:

    .. math:: \\hat p_i = \\mu + \\frac{S}{n + \\lambda_b}, \\qquad
              \\operatorname{var} = \\frac{\\sigma_w^2}{n + \\lambda_b}, \\qquad
              \\lambda_b = \\sigma_w^2 / \\sigma_b^2 .

    This is the Gaussian item posterior of the fusion model (:mod:`truescore.ranking.fusion`) with the
    rating evidence only, so it can be recomputed as of any clock in microseconds; the fused estimate
    is reported beside it in ``docs/results/trust_eval.md``.

(c) **Calibration**, estimated against that same prior: over the observer's ``m`` other ratings ``j``
    (at or before the clock; the rating of ``i`` itself left out), against the fitted public estimates
    :math:`\\hat p_j` of those items (as in the baseline predictor, the observer's rating of ``j`` is one
    of the ratings behind :math:`\\hat p_j`),

    .. math:: \\hat c_o = \\frac{\\sum_j (z_{oj} - \\hat p_j)}{m + \\lambda_c}, \\qquad
              \\operatorname{var} = \\frac{\\sigma_{wc}^2}{m + \\lambda_c}, \\qquad
              \\lambda_c = \\sigma_{wc}^2 / \\sigma_c^2 .

    (a) and (c) together are the regularised baseline predictor "global mean + user offset + item
    offset" (Koren, *Factor in the neighbors*, TKDD 2010, eq. 2-3). Both sums are robust: with
    Student-t noise (``robust_nu`` degrees of freedom) each deviation carries the weight
    :math:`\\omega = (\\nu + 1)/(\\nu + r^2/s^2)` of iteratively reweighted least squares
    (:func:`robust_offsets`), ``n`` becomes :math:`\\sum \\omega` and :math:`s^2 = \\sigma^2 (\\nu - 2)/\\nu`.

(b) **Trusted reviewers.** Each contributing review of the seed's rating (weight :math:`w_v` =
    T x H x A x R x F) has the residual :math:`e_v = z_{vi} - \\hat p_i - \\hat c_v` (the reviewer's
    rating against the crowd, their own calibration removed). If :math:`e_v = g_{oi} + \\eta_v`,
    :math:`\\eta_v \\sim N(0, \\sigma_r^2 - \\gamma)`, the weighted mean :math:`\\bar e` of
    :math:`n` effective reviews gives

    .. math:: \\hat g_{oi} = \\bar e \\, \\frac{n}{n + \\lambda_g}, \\qquad
              \\operatorname{var} = \\frac{\\gamma \\lambda_g}{n + \\lambda_g}, \\qquad
              \\lambda_g = \\frac{\\sigma_r^2 - \\gamma}{\\gamma},

    where :math:`\\gamma` is the covariance of the baseline residuals of an observer and a reviewer
    they trust directly on the same item and :math:`\\sigma_r^2` the residual variance (both over
    residuals passed through the Student-t influence function :math:`r (\\nu + 1)/(\\nu + r^2/s^2)`,
    the same noise model as the offsets, so a few extreme co-ratings cannot make up shared taste).
    Agreement: each reviewer's weight is multiplied by :math:`\\alpha_v = \\operatorname{clip}(
    \\hat\\gamma_{ov} / \\gamma, 0, \\alpha_{max})` with the pair's own residual covariance over
    co-rated items shrunk to the average covariance :math:`\\gamma_d` of pairs as many trust hops apart
    (``d`` = length of the reviewer's best path; :math:`\\gamma_1 = \\gamma`),
    :math:`\\hat\\gamma_{ov} = (\\sum_j r_{oj} r_{vj} + \\kappa \\gamma_d)/(m_{ov} + \\kappa)`;
    :math:`\\bar e = \\sum w_v \\alpha_v e_v / \\sum w_v \\alpha_v` and :math:`n` is Kish's effective
    number of those weights times their weighted mean agreement :math:`\\sum w\\alpha / \\sum w`. With
    :math:`\\gamma \\le 0` (trust does not predict taste in this data) the trust part is switched off.

Empirical Bayes
---------------
No shrinkage strength is set by hand. At fit time, by the method of moments on all ratings: the
pooled within-item variance :math:`\\sigma_w^2` and the between-item variance
:math:`\\sigma_b^2 = \\overline{(\\bar z_j - \\mu)^2} - \\sigma_w^2 \\overline{1/n_j}`; the same on the
leave-one-out baseline deviations grouped by user for :math:`\\sigma_{wc}^2, \\sigma_c^2`; and on a
seeded sample of direct trust edges for :math:`\\gamma`, :math:`\\sigma_r^2` and the between-pair
variance :math:`\\tau^2` of pair covariances, giving :math:`\\kappa = \\overline{r_o^2 r_v^2} /
\\tau^2`; and on the users a seeded sample of observers reach in exactly ``d`` hops for
:math:`\\gamma_d`. A component estimated as <= 0 gets ``max_shrinkage`` (its part stays at the prior).

The clock
---------
The offsets and variance ratios are fitted on the ratings created at or before the clock (one fit
per distinct cutoff, cached), so ``at`` gives the estimate as of that time; the item's and the
observer's parts are refitted per request without the observer's rating of the item. The trust
covariances (:math:`\\gamma, \\gamma_d, \\kappa, \\lambda_g`: a handful of population constants
that need graph searches) come from the fit of every rating and are reused for earlier clocks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import cast

import numpy as np
import numpy.typing as npt

from truescore.config import PersonalSettings
from truescore.trust.cache import TTLCache
from truescore.trust.factors import kish_effective_n
from truescore.trust.graph import DomainGraph, TrustGraph
from truescore.trust.index import ReviewIndex, gather

__all__ = [
    "Fit",
    "Hyper",
    "PersonalEstimate",
    "PersonalModel",
    "combine",
    "explain",
    "moment_shrinkage",
    "robust_offsets",
    "shrunk_offset",
    "t_scale",
    "trust_shift",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


# ----------------------------------------------------------------------------------------------
# pure functions (worked examples in tests/test_personal.py)
# ----------------------------------------------------------------------------------------------


def shrunk_offset(total: npt.ArrayLike, count: npt.ArrayLike, strength: float) -> FloatArray:
    """Posterior mean of a Gaussian offset from ``count`` deviations summing to ``total``:
    ``total / (count + strength)`` (``strength = noise variance / prior variance``)."""
    return np.asarray(total, dtype=np.float64) / (np.asarray(count, dtype=np.float64) + strength)


def t_scale(nu: float) -> float:
    """``(nu - 2) / nu``: the squared scale of a Student-t with ``nu`` degrees of freedom per unit of
    variance (its variance is ``scale^2 nu / (nu - 2)``)."""
    return (nu - 2.0) / nu


def robust_offsets(
    dev: FloatArray, group: IntArray, n_groups: int, strength: float, scale2: float, nu: float, iterations: int
) -> tuple[FloatArray, FloatArray]:
    """Posterior-mode offsets of groups under Student-t noise, by iteratively reweighted least squares.

    Deviation ``d`` of group ``g`` is ``b_g + noise``, noise Student-t with ``nu`` degrees of freedom
    and squared scale ``scale2`` (a Gaussian scale mixture), ``b_g ~ N(0, scale2 / strength)``. Each
    pass sets the weights :math:`w = (\nu + 1)/(\nu + (d - b_g)^2 / s^2)` and
    :math:`b_g = \\sum w d / (\\sum w + \text{strength})`. With 0 passes (or ``nu = inf``) it is the
    Gaussian :func:`shrunk_offset`. Returns ``(b, sum of weights per group)``.
    """
    ones = np.ones_like(dev)
    wsum = np.bincount(group, weights=ones, minlength=n_groups)
    b = np.bincount(group, weights=dev, minlength=n_groups) / (wsum + strength)
    if scale2 <= 0 or not math.isfinite(nu):
        return cast(FloatArray, b), cast(FloatArray, wsum)
    for _ in range(iterations):
        r = dev - b[group]
        w = (nu + 1.0) / (nu + r * r / scale2)
        wsum = np.bincount(group, weights=w, minlength=n_groups)
        b = np.bincount(group, weights=w * dev, minlength=n_groups) / (wsum + strength)
    return cast(FloatArray, b), cast(FloatArray, wsum)


def moment_shrinkage(
    sums: npt.ArrayLike, sumsq: npt.ArrayLike, counts: npt.ArrayLike, max_shrinkage: float
) -> tuple[float, float]:
    """Method-of-moments variance components of deviations grouped into units (items or users).

    With group means :math:`\\bar d_j` of :math:`n_j` deviations around 0, the pooled within variance
    :math:`\\sigma_w^2 = \\sum_j \\sum (d - \\bar d_j)^2 / (N - J)` and the between variance
    :math:`\\sigma_b^2 = \\operatorname{mean}_j \\bar d_j^2 - \\sigma_w^2 \\operatorname{mean}_j 1/n_j`
    (groups with a rating). Returns :math:`(\\sigma_w^2, \\lambda = \\sigma_w^2 / \\sigma_b^2)`;
    ``max_shrinkage`` when :math:`\\sigma_b^2 \\le 0`.
    """
    s = np.asarray(sums, dtype=np.float64)
    q = np.asarray(sumsq, dtype=np.float64)
    n = np.asarray(counts, dtype=np.float64)
    has = n > 0
    s, q, n = s[has], q[has], n[has]
    if n.size == 0:
        return 0.0, max_shrinkage
    dof = float(n.sum() - n.size)
    within = float((q - s * s / n).sum() / dof) if dof > 0 else float((q / n).mean())
    between = float(((s / n) ** 2).mean() - within * (1.0 / n).mean())
    if between <= 0 or within <= 0:
        return max(within, 0.0), max_shrinkage
    return within, min(max_shrinkage, within / between)


def trust_shift(
    residuals: npt.ArrayLike,
    weights: npt.ArrayLike,
    agreement: npt.ArrayLike,
    strength: float,
    gamma: float,
    *,
    scale2: float = 0.0,
    nu: float = math.inf,
    iterations: int = 0,
) -> tuple[float, float, float, float]:
    """The trusted reviewers' part (b): ``(shift, variance, mean residual, effective reviews)``.

    With :math:`u = w a \\omega`: ``e_bar = sum(u e) / sum(u)``, ``n = kish(u) * sum(u) / sum(w)``,
    ``shift = e_bar n / (n + strength)``, ``variance = gamma strength / (n + strength)`` (the prior
    variance ``gamma`` when there is no evidence). :math:`\\omega = 1` for Gaussian noise; with
    Student-t noise (``nu``, squared scale ``scale2``) each pass sets
    :math:`\\omega_v = (\nu + 1)/(\nu + (e_v - \text{shift})^2 / s^2)`, so one extreme trusted
    rating cannot carry the estimate. ``strength = inf`` switches the part off.
    """
    e = np.asarray(residuals, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    a = np.asarray(agreement, dtype=np.float64)
    gamma = max(gamma, 0.0)
    wa = w * a
    total = float(wa.sum())
    if e.size == 0 or total <= 0:
        return 0.0, gamma, math.nan, 0.0
    if not math.isfinite(strength):
        return 0.0, gamma, float((wa * e).sum() / total), 0.0
    u = wa
    shift, n, e_bar = 0.0, 0.0, 0.0
    for k in range(max(0, iterations) + 1):
        if k > 0:
            if scale2 <= 0 or not math.isfinite(nu):
                break
            u = wa * (nu + 1.0) / (nu + (e - shift) ** 2 / scale2)
        tot_u = float(u.sum())
        e_bar = float((u * e).sum() / tot_u)
        n = kish_effective_n(u) * tot_u / float(w.sum())
        shift = e_bar * n / (n + strength)
    return shift, gamma * strength / (n + strength), e_bar, n


def combine(
    prior: float, prior_var: float, calibration: float, calibration_var: float, shift: float, shift_var: float
) -> tuple[float, float]:
    """``for_you`` on the normalised scale: ``(clip(prior + calibration + shift, 0, 1), sd)`` with
    ``sd = sqrt(prior_var + calibration_var + shift_var)`` (independent posterior parts)."""
    mean = min(1.0, max(0.0, prior + calibration + shift))
    return mean, math.sqrt(max(0.0, prior_var + calibration_var + shift_var))


# ----------------------------------------------------------------------------------------------
# results
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hyper:
    """Empirical-Bayes hyperparameters (normalised scale; see the module docstring).

    Attributes
    ----------
    within_item_var, item_strength : float
        :math:`\\sigma_w^2` and :math:`\\lambda_b` of the item offsets (a).
    within_user_var, user_strength : float
        :math:`\\sigma_{wc}^2` and :math:`\\lambda_c` of the calibration (c).
    residual_var : float
        :math:`\\sigma_r^2` of the baseline residuals through the Student-t influence function.
    trust_cov, trust_strength : float
        :math:`\\gamma` (direct trust pairs) and :math:`\\lambda_g` (inf: trust part off).
    pair_strength : float
        :math:`\\kappa`, the prior weight of the average in a pair's agreement.
    n_pairs, n_pair_ratings : int
        Sampled direct pairs with co-ratings, and their co-ratings.
    raw_residual_var : float
        Residual variance before the influence function (its scale).
    cov_by_hops : tuple of float
        :math:`\\gamma_d` for d = 0..max_hops (index 0 unused, :math:`\\gamma_1 = \\gamma`).
    """

    within_item_var: float
    item_strength: float
    within_user_var: float
    user_strength: float
    residual_var: float
    trust_cov: float
    trust_strength: float
    pair_strength: float
    n_pairs: int
    n_pair_ratings: int
    raw_residual_var: float = 0.0
    #: gamma_d: residual covariance of an observer and a user ``d`` trust hops away (index d; [0] unused)
    cov_by_hops: tuple[float, ...] = ()


@dataclass(frozen=True, slots=True)
class PersonalEstimate:
    """``for_you`` and its parts, on the item's display scale (shifts as differences on that scale).

    Attributes
    ----------
    for_you, for_you_sd : float
    public, public_sd : float
        The prior (a): the crowd's estimate without the observer's own rating.
    public_reviews : int
    calibration : float
        (c): how the observer usually rates against the crowd, shrunk (display-scale difference).
    calibration_ratings : int
    trust_mean : float or None
        (b): how far the trusted reviewers rate this item from the crowd, their calibration removed.
    trust_shift : float
        The part of ``trust_mean`` that for_you takes (shrunk by evidence and agreement).
    trust_reviews : float
        Effective number of trusted reviews after agreement.
    trust_agreement : float or None
        Weighted mean agreement of those reviewers with the observer (1 = the average trusted pair).
    explanation : str
    """

    for_you: float
    for_you_sd: float
    public: float
    public_sd: float
    public_reviews: int
    calibration: float
    calibration_ratings: int
    trust_mean: float | None
    trust_shift: float
    trust_reviews: float
    trust_agreement: float | None
    explanation: str


def explain(est: PersonalEstimate, contributors: int) -> str:
    """The estimate in words, e.g. "for you 3.1 ± 0.4: the crowd 3.2 ± 0.1 (45 reviews); your 2
    trusted sources rate it 0.30 above the crowd (counted +0.12); you usually rate 0.20 below the crowd
    (57 ratings)"."""

    def side(x: float) -> str:
        return f"{abs(x):.2f} {'above' if x >= 0 else 'below'}"

    parts = [f"the crowd {est.public:.2f} ± {est.public_sd:.2f} ({est.public_reviews} reviews)"]
    if est.trust_mean is None or contributors == 0:
        parts.append("none of your trusted sources reviewed it")
    else:
        src = f"your {contributors} trusted source{'s' if contributors != 1 else ''}"
        agree = "" if est.trust_agreement is None else f", agreement {est.trust_agreement:.2f}"
        parts.append(f"{src} rate it {side(est.trust_mean)} the crowd (counted {est.trust_shift:+.2f}{agree})")
    if est.calibration_ratings == 0:
        parts.append("you have no other ratings to calibrate against")
    else:
        plural = "s" if est.calibration_ratings != 1 else ""
        parts.append(f"you usually rate {side(est.calibration)} the crowd ({est.calibration_ratings} rating{plural})")
    return f"for you {est.for_you:.2f} ± {est.for_you_sd:.2f}: " + "; ".join(parts)


# ----------------------------------------------------------------------------------------------
# the model over a review index
# ----------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Fit:
    """The fitted public model over the ratings created at or before one clock.

    ``rows`` are index rows in the fit; ``item_offset`` / ``user_offset`` are the robust posterior means
    ``b_j`` and ``c_u`` (normalised scale) of every item code / node id; ``item_weight`` the sum of
    robust weights behind each ``b_j``.
    """

    cutoff: int
    mu: float
    item_offset: FloatArray
    item_weight: FloatArray
    user_offset: FloatArray
    user_count: FloatArray
    hyper: Hyper
    in_fit: npt.NDArray[np.bool_]


class PersonalModel:
    """The public model (a, c) fitted over a :class:`ReviewIndex` and the per-request estimate.

    A fit covers the ratings created at or before a clock; the fit of everything is refreshed when the
    index version changes, and fits for earlier clocks (requests with ``at``) are kept in an LRU of
    ``max_cached_fits``. :meth:`estimate` then costs O(ratings of the item, of the observer and of the
    trusted reviewers).

    Parameters
    ----------
    index : ReviewIndex
    graph : TrustGraph, optional
        Its direct edges give the pairs for the trust covariance (none: the trust part is off).
    settings : PersonalSettings
    """

    def __init__(self, index: ReviewIndex, graph: TrustGraph | None, settings: PersonalSettings,
                 cache: TTLCache[tuple[FloatArray, PersonalEstimate]] | None = None) -> None:
        self.index = index
        self.graph = graph
        self.settings = settings
        #: (item, observer, fit cutoff) -> (the contributions it used, the estimate); see :meth:`estimate`
        self.estimates: TTLCache[tuple[FloatArray, PersonalEstimate]] = cache if cache is not None else TTLCache(0, 0)
        self._version = -1
        self._times: FloatArray = np.zeros(0)
        self._fits: TTLCache[Fit] = TTLCache(settings.max_cached_fits, math.inf)
        self._full: Fit | None = None
        #: the index's merged_events when the trust covariances were last estimated
        self._hyper_events = 0
        #: re-estimate the trust covariances in fit_for once hyper_refresh_events events are merged
        #: (False: only a new model estimates them; the API rebuilds its Rater in the background instead)
        self.inline_hyper_refresh = True

    # -- fit -----------------------------------------------------------------------------------

    def fit_for(self, clock: float) -> Fit:
        """The fit over the ratings created at or before ``clock`` (cached; rebuilt after index changes)."""
        idx = self.index
        idx.ensure()
        if self._version != idx.version:
            self._fits.clear()
            self._times = np.sort(idx.r_created.astype(np.float64))
            self._version = idx.version
            previous, self._full = self._full, None
            # issue 10: a write refits the offsets (milliseconds) and keeps the trust covariances (the
            # graph searches of the sample, ~0.6 s on the demo store) until hyper_refresh_events events
            # have been merged since they were estimated, or for good when inline_hyper_refresh is off
            # (the API re-estimates them off the read path, in a background rebuild)
            if previous is not None and (
                not self.inline_hyper_refresh or self.stale_events < self.settings.hyper_refresh_events
            ):
                self._full = self._fit(math.inf, int(self._times.shape[0]), previous.hyper)
        cutoff = int(np.searchsorted(self._times, clock, side="right"))
        if cutoff == self._times.shape[0]:
            if self._full is None:
                self._full = self._fit(math.inf, cutoff, None)
                self._hyper_events = idx.merged_events
            return self._full
        fit = self._fits.get(cutoff)
        if fit is None:
            full = self.fit_for(math.inf)
            fit = self._fit(clock, cutoff, full.hyper)
            self._fits.put(cutoff, fit)
        return fit

    @property
    def stale_events(self) -> int:
        """Events merged into the index since the trust covariances of the full fit were estimated."""
        return self.index.merged_events - self._hyper_events

    @property
    def _t(self) -> float:
        """Squared t scale per unit variance; 1 when there is no reweighting (Gaussian noise)."""
        return t_scale(self.settings.robust_nu) if self.settings.robust_iterations > 0 else 1.0

    @property
    def hyper_(self) -> Hyper:
        """Hyperparameters of the fit over every rating."""
        return self.fit_for(math.inf).hyper

    def _robust(self, dev: FloatArray, group: IntArray, n: int, strength: float, scale2: float
                ) -> tuple[FloatArray, FloatArray]:
        return robust_offsets(dev, group, n, strength, scale2, self.settings.robust_nu,
                              self.settings.robust_iterations)

    def _fit(self, clock: float, cutoff: int, trust_from: Hyper | None) -> Fit:
        """Offsets and variance ratios over the ratings at or before ``clock``; the trust covariances
        are estimated here for the fit of every rating and taken from it (``trust_from``) for earlier
        clocks (a handful of population constants; re-estimating them per clock would cost the graph
        searches of the sample each time)."""
        s, idx = self.settings, self.index
        in_fit = idx.r_created <= clock
        rows = np.flatnonzero(in_fit)
        n_items = idx.item_indptr.shape[0] - 1
        n_users = len(idx.nodes)
        z = idx.r_norm[rows].astype(np.float64)
        item = idx.r_item[rows].astype(np.int64)
        user = idx.r_user[rows].astype(np.int64)
        mu = float(z.mean()) if z.size else 0.5
        d = z - mu
        icnt = np.bincount(item, minlength=n_items).astype(np.float64)
        within_i, lam_i = moment_shrinkage(np.bincount(item, weights=d, minlength=n_items),
                                           np.bincount(item, weights=d * d, minlength=n_items), icnt,
                                           s.max_shrinkage)
        t = self._t
        b, bw = self._robust(d, item, n_items, lam_i * t, within_i * t)
        dev = d - b[item]
        ucnt = np.bincount(user, minlength=n_users).astype(np.float64)
        within_u, lam_u = moment_shrinkage(np.bincount(user, weights=dev, minlength=n_users),
                                           np.bincount(user, weights=dev * dev, minlength=n_users), ucnt,
                                           s.max_shrinkage)
        c, _ = self._robust(dev, user, n_users, lam_u * t, within_u * t)
        resid = dev - c[user]
        raw_var = float((resid * resid).mean()) if resid.size else 0.0
        resid = self._psi(resid, raw_var)
        resid_var = float((resid * resid).mean()) if resid.size else 0.0
        full = np.zeros(idx.r_norm.shape[0])
        full[rows] = resid
        if trust_from is None:
            gamma, lam_g, kappa, n_pairs, n_pr = self._fit_trust(in_fit, full, resid_var)
            by_hops = self._fit_hops(in_fit, full, gamma, clock) if math.isfinite(lam_g) else ()
        else:
            src = trust_from
            gamma, lam_g, kappa, n_pairs, n_pr = (src.trust_cov, src.trust_strength, src.pair_strength,
                                                  src.n_pairs, src.n_pair_ratings)
            by_hops = src.cov_by_hops
        hyper = Hyper(within_i, lam_i, within_u, lam_u, resid_var, gamma, lam_g, kappa, n_pairs, n_pr, raw_var,
                      by_hops)
        return Fit(cutoff, mu, b, bw, c, ucnt, hyper, in_fit)

    def _psi(self, resid: FloatArray, raw_var: float) -> FloatArray:
        """Residuals through the Student-t influence function, ``r (nu + 1) / (nu + r^2 / s^2)`` with
        ``s^2 = t_scale * var``: the robust residuals the trust covariances are estimated from (the
        same noise model as the offsets; identity with no reweighting)."""
        if self.settings.robust_iterations == 0 or raw_var <= 0:
            return resid
        nu = self.settings.robust_nu
        return resid * (nu + 1.0) / (nu + resid * resid / (raw_var * self._t))

    def _fit_trust(self, in_fit: npt.NDArray[np.bool_], resid: FloatArray, resid_var: float
                   ) -> tuple[float, float, float, int, int]:
        """gamma, lambda_g, kappa from a seeded sample of direct trust edges (module docstring)."""
        s, idx = self.settings, self.index
        off = (0.0, math.inf, s.max_shrinkage, 0, 0)
        if self.graph is None or not s.use_trust or not in_fit.any():
            return off
        heads, tails = [], []
        for domain in sorted(self.graph.domains):
            src, dst = _edges_of(self.graph.domains[domain])
            heads.append(src)
            tails.append(dst)
        if not heads:
            return off
        src = np.concatenate(heads)
        dst = np.concatenate(tails)
        keep = src != dst
        src, dst = src[keep], dst[keep]
        if src.size > s.pair_sample:
            pick = np.random.default_rng(s.random_state).choice(src.size, s.pair_sample, replace=False)
            src, dst = src[pick], dst[pick]
        # co-rated items of each sampled pair: (pair, item) keys of both sides, matched by sorting
        n_items = idx.item_indptr.shape[0]
        pa, oa = gather(idx.user_indptr, src)
        pb, ob = gather(idx.user_indptr, dst)
        ra, rb = idx.user_rows[pa], idx.user_rows[pb]
        la, lb = in_fit[ra], in_fit[rb]
        ra, oa, rb, ob = ra[la], oa[la], rb[lb], ob[lb]
        ka = oa * n_items + idx.r_item[ra]
        kb = ob * n_items + idx.r_item[rb]
        common, ia, ib = np.intersect1d(ka, kb, assume_unique=False, return_indices=True)
        if common.size < 2:
            return off
        prod = resid[ra[ia]] * resid[rb[ib]]
        pair = oa[ia]
        gamma = float(prod.mean())
        if gamma <= 0 or resid_var <= gamma:
            return (gamma, math.inf, s.max_shrinkage, int(np.unique(pair).size), int(common.size))
        lam_g = (resid_var - gamma) / gamma
        m = np.bincount(pair, minlength=src.size).astype(np.float64)
        tot = np.bincount(pair, weights=prod, minlength=src.size)
        has = m > 0
        noise = float((prod * prod).mean())  # E[r_o^2 r_v^2]: sampling variance of one product
        tau2 = float(((tot[has] / m[has] - gamma) ** 2).mean() - (noise / m[has]).mean())
        kappa = min(s.max_shrinkage, noise / tau2) if tau2 > 0 else s.max_shrinkage
        return gamma, lam_g, kappa, int(has.sum()), int(common.size)

    def _fit_hops(self, in_fit: npt.NDArray[np.bool_], resid: FloatArray, gamma: float, clock: float
                  ) -> tuple[float, ...]:
        """gamma_d for d = 1..max_hops: the mean product of residuals on co-rated items of an observer
        and the users they reach in exactly ``d`` hops (best path), over ``hop_observers`` sampled
        observers (seeded) and at most ``hop_pairs`` users per observer and distance. gamma_1 is the
        direct-edge estimate. A distance with fewer than 2 co-ratings gets 0 (no evidence of shared taste)."""
        s, idx, graph = self.settings, self.index, self.graph
        hops_max = s.max_hops
        sums = np.zeros(hops_max + 1)
        counts = np.zeros(hops_max + 1)
        if graph is None or hops_max < 2:
            return (0.0, gamma)
        rng = np.random.default_rng(s.random_state + 1)
        n_items = idx.item_indptr.shape[0]
        for domain in sorted(graph.domains):
            src, _ = _edges_of(graph.domains[domain])
            trusters = np.unique(src)
            if trusters.size == 0:
                continue
            chosen = rng.choice(trusters, size=min(s.hop_observers, trusters.size), replace=False)
            pa_all, pb_all, hop_all = [], [], []
            for o in chosen.tolist():
                found = graph.search(int(o), domain, hops_max, at=clock if math.isfinite(clock) else None)
                nodes, _, hops = found.reach(hops_max)
                for d in range(2, hops_max + 1):
                    at_d = nodes[hops == d]
                    if at_d.size > s.hop_pairs:
                        at_d = rng.choice(at_d, size=s.hop_pairs, replace=False)
                    pa_all.append(np.full(at_d.size, o, dtype=np.int64))
                    pb_all.append(at_d.astype(np.int64))
                    hop_all.append(np.full(at_d.size, d, dtype=np.int64))
            if not pa_all:
                continue
            a_nodes, b_nodes, pair_hops = np.concatenate(pa_all), np.concatenate(pb_all), np.concatenate(hop_all)
            pa, oa = gather(idx.user_indptr, a_nodes)
            pb, ob = gather(idx.user_indptr, b_nodes)
            ra, rb = idx.user_rows[pa], idx.user_rows[pb]
            la, lb = in_fit[ra], in_fit[rb]
            ra, oa, rb, ob = ra[la], oa[la], rb[lb], ob[lb]
            common, ia, ib = np.intersect1d(oa * n_items + idx.r_item[ra], ob * n_items + idx.r_item[rb],
                                            return_indices=True)
            if common.size == 0:
                continue
            prod = resid[ra[ia]] * resid[rb[ib]]
            d_of = pair_hops[oa[ia]]
            sums += np.bincount(d_of, weights=prod, minlength=hops_max + 1)
            counts += np.bincount(d_of, minlength=hops_max + 1)
        out = [0.0, gamma]
        for d in range(2, hops_max + 1):
            out.append(float(sums[d] / counts[d]) if counts[d] >= 2 else 0.0)
        return tuple(out)

    # -- per request -------------------------------------------------------------------------

    def _rows_of(self, indptr: IntArray, order: IntArray, key: int, fit: Fit) -> IntArray:
        if key < 0 or key + 1 >= indptr.shape[0]:
            return np.zeros(0, dtype=np.int64)
        rows = order[indptr[key] : indptr[key + 1]]
        return rows[fit.in_fit[rows]]

    def public(self, item: int, observer: int, clock: float) -> tuple[float, float, int]:
        """(a): the public estimate of ``item`` as of ``clock`` without ``observer``'s rating:
        ``(mean, variance, ratings)`` on the normalised scale."""
        fit = self.fit_for(clock)
        return self._public(fit, item, observer)

    def _public(self, fit: Fit, item: int, observer: int) -> tuple[float, float, int]:
        idx, h, t = self.index, fit.hyper, self._t
        rows = self._rows_of(idx.item_indptr, idx.item_rows, item, fit)
        own = idx.r_user[rows] == observer
        if observer >= 0 and own.any():  # refit this one item without the observer's rating
            rows = rows[~own]
            d = idx.r_norm[rows] - fit.mu
            b, w = self._robust(d, np.zeros(rows.shape[0], dtype=np.int64), 1, h.item_strength * t,
                                h.within_item_var * t)
            offset, weight = float(b[0]), float(w[0])
        else:
            offset, weight = float(fit.item_offset[item]), float(fit.item_weight[item])
        var = h.within_item_var * t / (weight + h.item_strength * t)
        return fit.mu + offset, var, int(rows.shape[0])

    def _calibration(self, fit: Fit, observer: int, item: int) -> tuple[float, int]:
        """(c) of the observer without their rating of ``item``: ``(offset, ratings)``."""
        if observer < 0:
            return 0.0, 0
        idx, h, t = self.index, fit.hyper, self._t
        rows = self._rows_of(idx.user_indptr, idx.user_rows, observer, fit)
        other = idx.r_item[rows] != item
        if other.all():
            return float(fit.user_offset[observer]) if observer < fit.user_offset.shape[0] else 0.0, int(rows.size)
        rows = rows[other]
        dev = idx.r_norm[rows] - fit.mu - fit.item_offset[idx.r_item[rows]]
        c, _ = self._robust(dev, np.zeros(rows.shape[0], dtype=np.int64), 1, h.user_strength * t,
                            h.within_user_var * t)
        return float(c[0]), int(rows.shape[0])

    def estimate(
        self,
        item: int,
        observer: int,
        clock: float,
        reviewers: IntArray,
        ratings: FloatArray,
        weights: FloatArray,
        hops: IntArray | None = None,
    ) -> PersonalEstimate:
        """``for_you`` of ``observer`` (node id, -1 if unknown) for ``item`` (index code).

        ``reviewers``, ``ratings`` (normalised), ``weights`` and ``hops`` (length of each one's best
        trust path; None = 1) are the contributing reviews of the seed's rating (b). The result is on
        the item's display scale.
        """
        fit = self.fit_for(clock)
        # A warm request: the same fit (token: the fit object) and the same contributions (reviewers,
        # hops and weights; weights within 1e-4 relative, the drift of R within a cache TTL) give the
        # same estimate.
        key = (item, observer, fit.cutoff)
        signature = np.concatenate([reviewers.astype(np.float64), ratings, weights,
                                    np.zeros(0) if hops is None else np.asarray(hops, dtype=np.float64)])
        hit = self.estimates.get(key, (fit,))
        if hit is not None and hit[0].shape == signature.shape and np.allclose(hit[0], signature, rtol=1e-4, atol=0):
            return hit[1]
        est = self._estimate(fit, item, observer, reviewers, ratings, weights, hops)
        self.estimates.put(key, (signature, est), (fit,))
        return est

    def _estimate(self, fit: Fit, item: int, observer: int, reviewers: IntArray, ratings: FloatArray,
                  weights: FloatArray, hops: IntArray | None) -> PersonalEstimate:
        h = fit.hyper
        idx = self.index
        lo, hi = float(idx.item_min[item]), float(idx.item_max[item])
        span = hi - lo
        p, p_var, n_pub = self._public(fit, item, observer)
        c_o, m_o = self._calibration(fit, observer, item)
        c_var = h.within_user_var / (m_o + h.user_strength)
        shift, s_var, e_mean, n_eff, agree_mean = 0.0, max(h.trust_cov, 0.0), None, 0.0, None
        use = self.settings.use_trust and math.isfinite(h.trust_strength)
        if reviewers.size > 0:
            users = reviewers.astype(np.int64)
            known = users < fit.user_offset.shape[0]
            c_v = np.where(known, fit.user_offset[np.where(known, users, 0)], 0.0)
            e = ratings - p - c_v
            hop = np.ones(users.size, dtype=np.int64) if hops is None else np.asarray(hops, dtype=np.int64)
            agree = self._agreement(fit, observer, users, item, hop) if use else np.ones(e.size)
            shift, s_var, e_bar, n_eff = trust_shift(
                e, weights, agree, h.trust_strength if use else math.inf, h.trust_cov,
                scale2=max(h.residual_var - h.trust_cov, 0.0) * self._t,
                nu=self.settings.robust_nu, iterations=self.settings.robust_iterations,
            )
            if not math.isfinite(e_bar):
                e_bar = float((weights * e).sum() / weights.sum()) if weights.sum() > 0 else math.nan
            e_mean = e_bar * span if math.isfinite(e_bar) else None
            agree_mean = float((weights * agree).sum() / weights.sum()) if use and weights.sum() > 0 else None
        mean, sd = combine(p, p_var, c_o, c_var, shift, s_var)
        est = PersonalEstimate(
            for_you=lo + mean * span,
            for_you_sd=sd * span,
            public=lo + min(1.0, max(0.0, p)) * span,
            public_sd=math.sqrt(p_var) * span,
            public_reviews=n_pub,
            calibration=c_o * span,
            calibration_ratings=m_o,
            trust_mean=e_mean,
            trust_shift=shift * span,
            trust_reviews=n_eff,
            trust_agreement=agree_mean,
            explanation="",
        )
        text = explain(est, int(reviewers.size))
        return PersonalEstimate(**{**{f: getattr(est, f) for f in est.__dataclass_fields__}, "explanation": text})

    def _agreement(self, fit: Fit, observer: int, reviewers: IntArray, item: int, hops: IntArray) -> FloatArray:
        """alpha_v of each reviewer (module docstring): the pair's covariance over co-rated items, shrunk
        to the average covariance of pairs as many trust hops apart, relative to direct pairs'."""
        h = fit.hyper
        k = reviewers.shape[0]
        if h.trust_cov <= 0:
            return np.ones(k)
        by_hops = np.asarray(h.cov_by_hops if h.cov_by_hops else (0.0, h.trust_cov))
        prior = np.clip(by_hops[np.clip(hops, 1, by_hops.size - 1)] / h.trust_cov, 0.0, self.settings.agreement_cap)
        idx = self.index
        mine = self._rows_of(idx.user_indptr, idx.user_rows, observer, fit) if observer >= 0 else np.zeros(0, np.int64)
        mine = mine[idx.r_item[mine] != item]
        if mine.size == 0:
            return prior
        o_items = idx.r_item[mine].astype(np.int64)
        order = np.argsort(o_items, kind="stable")
        o_items, mine = o_items[order], mine[order]
        o_res = self._residuals(fit, mine)
        pos, owner = gather(idx.user_indptr, reviewers)
        rows = idx.user_rows[pos]
        live = fit.in_fit[rows]
        rows, owner = rows[live], owner[live]
        items = idx.r_item[rows].astype(np.int64)
        at = np.minimum(np.searchsorted(o_items, items), o_items.size - 1)
        hit = (o_items[at] == items) & (items != item)
        prod = np.where(hit, self._residuals(fit, rows) * o_res[at], 0.0)
        tot = np.bincount(owner, weights=prod, minlength=k)
        m = np.bincount(owner, weights=hit.astype(np.float64), minlength=k)
        cov = (tot + h.pair_strength * prior * h.trust_cov) / (m + h.pair_strength)
        return np.clip(cov / h.trust_cov, 0.0, self.settings.agreement_cap)

    def _residuals(self, fit: Fit, rows: IntArray) -> FloatArray:
        idx = self.index
        raw = (idx.r_norm[rows] - fit.mu - fit.item_offset[idx.r_item[rows]]
               - fit.user_offset[idx.r_user[rows].astype(np.int64)])
        return self._psi(raw, fit.hyper.raw_residual_var)


def _edges_of(domain_graph: DomainGraph) -> tuple[IntArray, IntArray]:
    """(truster, trustee) node ids of the positive edges of one domain's CSR arrays (edges added
    since the graph was built sit in an overlay and are left out of this estimate)."""
    indptr = domain_graph.indptr
    heads = domain_graph.indices.astype(np.int64)
    tails = np.repeat(np.arange(indptr.shape[0] - 1, dtype=np.int64), np.diff(indptr))
    positive = domain_graph.level > 0
    return tails[positive], heads[positive]
