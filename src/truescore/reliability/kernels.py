r"""The step kernels of a VB sweep, shared by the single-machine fit and the Spark job.

Each function is one numbered step of the sweep in :mod:`truescore.reliability.vb` (see its docstring
for the model), written on plain arrays so that it does not care where the ratings live:

* :func:`expected_sq_residuals` -- per rating, :math:`e_{ui} = r_{ui} - m_i` and
  :math:`s_{ui} = E_q[(r_{ui} - x_i - b_u)^2] = (e_{ui} - c_u)^2 + v_i + w_u`;
* :func:`rater_precision` (step 1) -- :math:`a_u = a_0 + n_u/2`, :math:`\beta_u = b_0 + \tfrac12 S_u`
  from the rater sums :math:`S_u = \sum_i s_{ui}`;
* :func:`rating_weights` (step 1, the weights) -- :math:`\omega_{ui}`, cavity or mean field;
* :func:`rater_bias` (step 2) -- :math:`1/w_u = \tau_b + \sum_i \omega_{ui}`,
  :math:`c_u = w_u \sum_i \omega_{ui} e_{ui}`;
* :func:`item_posterior` (step 3) -- :math:`1/v_i = \tau_0 + \sum_u \omega_{ui}`,
  :math:`m_i = v_i(\tau_0\mu_0 + \sum_u \omega_{ui}(r_{ui} - c_u))`;
* :func:`bias_shift` (step 3, bias on) -- the exact move along :math:`(x_i + d, b_u - d)`;
* :func:`empirical_bayes` (step 4) -- the M-step of every free hyperparameter.

Where the sums are taken
------------------------
Per-item sums are always taken over *all* of an item's ratings in item-major order (contiguous
segments, ``np.add.reduceat``) and per-rater sums over all of a rater's ratings in item-major order
(``np.bincount``, which adds in array order). The Spark job partitions the ratings by item for the
first and by rater for the second (ALS-style), so no per-item or per-rater sum is ever split, and each
is computed by the same numpy call on the same numbers in the same order as on one machine.

The only sums over *everything* (the mean rating at the start, the means of the empirical-Bayes step)
are exact: :class:`ExactSum` keeps the sum of float64 values as integers per binary exponent, so
partial sums from any partitioning combine without rounding and the result is the correctly rounded
exact sum, the same on every path (like ``math.fsum``, but vectorised).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.special import digamma, polygamma

__all__ = [
    "ExactSum",
    "Hyper",
    "bias_shift",
    "empirical_bayes",
    "exact_mean",
    "exact_sum",
    "expected_sq_residuals",
    "gamma_mstep",
    "initial_hyper",
    "item_posterior",
    "rater_bias",
    "rater_precision",
    "rating_weights",
]

FloatArray = npt.NDArray[np.float64]

#: Fallback values of free hyperparameters when empirical Bayes is switched off.
FIXED_TAU_B = 16.0  # bias sd of a quarter of the scale
A0_BOUNDS = (1e-3, 1e6)
B0_FLOOR = 1e-10

_SPLIT = 26                      # mantissa = hi * 2**26 + lo
_LO_MASK = (1 << _SPLIT) - 1
_EXP_OFFSET = 1100               # np.frexp exponents lie in [-1073, 1024]
_N_BINS = 2200
_CHUNK = 1 << 24                 # per chunk, bin sums of 27-bit integers stay below 2**51: exact in float64


class ExactSum:
    """Exact sum of float64 values, mergeable across partitions.

    Every finite double is :math:`M 2^{e-53}` with an integer :math:`|M| < 2^{53}` (``np.frexp``);
    :math:`M` is split into 27- and 26-bit halves whose sums per exponent are exact integers. Adding
    arrays, merging accumulators and reading :meth:`value` (the exact total rounded once to the
    nearest double) is therefore independent of order and partitioning.
    """

    __slots__ = ("bins", "count")

    def __init__(self) -> None:
        self.bins: dict[int, int] = {}
        self.count = 0

    def add(self, values: npt.ArrayLike) -> ExactSum:
        x = np.asarray(values, dtype=np.float64).ravel()
        if x.size and not np.all(np.isfinite(x)):
            raise ValueError("ExactSum: values must be finite")
        self.count += int(x.size)
        for start in range(0, x.size, _CHUNK):
            part = x[start:start + _CHUNK]
            mant, exp = np.frexp(part)
            m = np.ldexp(mant, 53).astype(np.int64)
            hi = (m >> _SPLIT).astype(np.float64)
            lo = (m & _LO_MASK).astype(np.float64)
            idx = exp.astype(np.int64) + _EXP_OFFSET
            hs = np.bincount(idx, weights=hi, minlength=_N_BINS)
            ls = np.bincount(idx, weights=lo, minlength=_N_BINS)
            for b in np.flatnonzero((hs != 0) | (ls != 0)):
                e = int(b) - _EXP_OFFSET
                self.bins[e] = self.bins.get(e, 0) + (int(hs[b]) << _SPLIT) + int(ls[b])
        return self

    def merge(self, other: ExactSum) -> ExactSum:
        for e, v in other.bins.items():
            self.bins[e] = self.bins.get(e, 0) + v
        self.count += other.count
        return self

    def to_state(self) -> dict[str, Any]:
        """A picklable / JSON-able form (integers as decimal strings), e.g. to ship from a worker."""
        return {"count": self.count, "bins": {str(e): str(v) for e, v in self.bins.items()}}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ExactSum:
        out = cls()
        out.count = int(state["count"])
        out.bins = {int(e): int(v) for e, v in state["bins"].items()}
        return out

    def value(self) -> float:
        """The exact sum, rounded once to the nearest double."""
        if not self.bins:
            return 0.0
        low = min(self.bins)
        total = sum(v << (e - low) for e, v in self.bins.items())
        return float(Fraction(total) * Fraction(2) ** (low - 53))


def exact_sum(values: npt.ArrayLike) -> float:
    """Correctly rounded sum of ``values`` (order-independent)."""
    return ExactSum().add(values).value()


def exact_mean(values: npt.ArrayLike) -> float:
    """Correctly rounded sum divided by the count (0.0 for no values)."""
    acc = ExactSum().add(values)
    return acc.value() / acc.count if acc.count else 0.0


@dataclass(slots=True)
class Hyper:
    """Current hyperparameters and which of them empirical Bayes moves."""

    mu0: float
    tau0: float
    a0: float
    b0: float
    tau_b: float
    free_mu0: bool
    free_tau0: bool
    free_a0: bool
    free_b0: bool
    free_tau_b: bool

    def frozen(self) -> Any:
        from truescore.reliability._types import Hyperparameters

        return Hyperparameters(mu0=self.mu0, tau0=self.tau0, a0=self.a0, b0=self.b0, tau_b=self.tau_b)


def initial_hyper(opts: Any, n_ratings: int, mean_rating: float, var_rating: float) -> Hyper:
    """Starting hyperparameters from the options and the (exact) mean and variance of the ratings.

    ``opts`` is a :class:`truescore.reliability.vb.VBOptions`; ``mean_rating`` / ``var_rating`` are
    ignored when there are no ratings / fewer than two.
    """
    eb = opts.empirical_bayes
    mean_rating = mean_rating if n_ratings else 0.5
    var_rating = var_rating if n_ratings > 1 else 0.25
    mu0 = opts.mu0 if opts.mu0 is not None else mean_rating
    # Free item precision: start from the spread of the ratings (EB refines it).
    tau0 = opts.tau0 if opts.tau0 is not None else 1.0 / max(var_rating, 1e-4)
    if opts.a0 is not None and opts.b0 is not None:
        a0, b0 = opts.a0, opts.b0
    elif opts.a0 is not None:
        a0, b0 = opts.a0, opts.a0 * max(var_rating, 1e-4)
    elif opts.b0 is not None:
        a0, b0 = 1.0, opts.b0
    else:
        a0, b0 = 1.0, max(var_rating, 1e-4)
    tau_b = opts.tau_b if opts.tau_b is not None else FIXED_TAU_B
    return Hyper(
        mu0=mu0, tau0=tau0, a0=a0, b0=b0, tau_b=tau_b,
        free_mu0=eb and opts.mu0 is None, free_tau0=eb and opts.tau0 is None,
        free_a0=eb and opts.a0 is None, free_b0=eb and opts.b0 is None,
        free_tau_b=eb and opts.use_bias and opts.tau_b is None,
    )


def rating_var(rating: FloatArray, mean: float) -> ExactSum:
    """Exact accumulator of :math:`\\sum (r - \\bar r)^2` (the two-pass variance; mergeable)."""
    d = rating - mean
    return ExactSum().add(d * d)


# ------------------------------------------------------------------------------------------ per-rating
def expected_sq_residuals(r: FloatArray, m_i: FloatArray, v_i: FloatArray, c_u: FloatArray | None = None,
                          w_u: FloatArray | None = None) -> tuple[FloatArray, FloatArray]:
    """``(e, s)`` per rating: :math:`e = r - m_i` and :math:`s = (e - c_u)^2 + v_i + w_u`.

    ``m_i, v_i`` (and ``c_u, w_u`` when the bias is on) are already gathered to one value per rating.
    """
    e = r - m_i
    if c_u is not None:
        eb = e - c_u
        s = eb * eb
        del eb
    else:
        s = e * e
    s += v_i
    if w_u is not None:
        s += w_u
    return e, s


def rater_precision(h: Hyper, n_u: npt.NDArray[Any], s_sum_u: npt.NDArray[Any]) -> tuple[FloatArray, FloatArray]:
    """Step 1: :math:`q(\\alpha_u) = \\mathrm{Gamma}(a_0 + n_u/2,\\ b_0 + S_u/2)` (counts and sums may come
    as integer arrays: the result is float64)."""
    return h.a0 + 0.5 * n_u, h.b0 + 0.5 * s_sum_u


def rating_weights(s: FloatArray, shape_num: FloatArray, rate_u: FloatArray, b0: float, cavity: bool
                   ) -> FloatArray:
    """Step 1, the weights: :math:`\\omega_{ui}` of every rating.

    Cavity: ``shape_num`` is :math:`a_u - 1/2` per rating and ``rate_u`` is :math:`\\beta_u` per
    rating; :math:`\\omega = (a_u - 1/2) / \\max(\\beta_u - s/2, b_0)`. Mean field: ``shape_num`` is
    :math:`a_u` per rating and :math:`\\omega = a_u / \\beta_u`. ``rate_u`` may be overwritten.
    """
    if cavity:
        den = rate_u
        den -= 0.5 * s
        np.maximum(den, b0, out=den)          # = b0 + sum over the rater's other ratings >= b0
        return shape_num / den
    return shape_num / rate_u


def rater_bias(tau_b: float, omega_sum_u: FloatArray, omega_e_sum_u: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Step 2: ``(c_u, w_u)`` from :math:`\\sum_i \\omega_{ui}` and :math:`\\sum_i \\omega_{ui} e_{ui}`."""
    return omega_e_sum_u / (tau_b + omega_sum_u), 1.0 / (tau_b + omega_sum_u)


def item_posterior(h: Hyper, omega_sum_i: FloatArray, omega_target_sum_i: FloatArray
                   ) -> tuple[FloatArray, FloatArray]:
    """Step 3: ``(m_i, v_i)`` from :math:`\\sum_u \\omega_{ui}` and :math:`\\sum_u \\omega_{ui}(r_{ui} - c_u)`."""
    prec = h.tau0 + omega_sum_i
    return (h.tau0 * h.mu0 + omega_target_sum_i) / prec, 1.0 / prec


def bias_shift(h: Hyper, m: FloatArray, c: FloatArray, rated_i: npt.NDArray[np.bool_],
               rated_u: npt.NDArray[np.bool_]) -> None:
    """Step 3, bias on: the exact move along :math:`(x_i + d, b_u - d)`, in place on ``m``, ``c``, ``h``.

    It leaves every residual unchanged, so only the priors change and the ELBO cannot decrease; it
    removes the slow mode in which item means and biases trade a common offset. With a free
    :math:`\\mu_0` the prior moves with the items and :math:`d = \\overline{c}` over rated raters;
    otherwise :math:`d = (\\tau_b \\sum c_u - \\tau_0 \\sum (m_i - \\mu_0)) / (\\tau_b n_u + \\tau_0 n_i)`.
    """
    cr = c[rated_u]
    if h.free_mu0:
        d = exact_mean(cr)
        m += d
        h.mu0 += d
    else:
        d = (h.tau_b * exact_sum(cr) - h.tau0 * exact_sum(m[rated_i] - h.mu0)) / (
            h.tau_b * cr.size + h.tau0 * int(rated_i.sum()))
        m[rated_i] += d
    c[rated_u] -= d


def gamma_mstep(h: Hyper, shape: FloatArray, rate: FloatArray) -> None:
    """M-step of the Gamma prior: maximise :math:`\\sum_u E_q[\\log \\mathrm{Gamma}(\\alpha_u; a_0, b_0)]`."""
    mean_alpha = exact_mean(shape / rate)
    mean_log = exact_mean(digamma(shape) - np.log(rate))
    if h.free_a0:
        if h.free_b0:
            # log a0 - digamma(a0) = log mean(E alpha) - mean(E log alpha) =: s  (s > 0 by Jensen)
            s = max(np.log(mean_alpha) - mean_log, 1e-12)
            a0 = (3.0 - s + np.sqrt((s - 3.0) ** 2 + 24.0 * s)) / (12.0 * s)  # Minka's initialisation
            for _ in range(30):
                g = np.log(a0) - digamma(a0) - s
                dg = 1.0 / a0 - polygamma(1, a0)
                step = g / dg
                a0 = max(a0 - step, a0 / 10.0)
                if abs(step) < 1e-10 * a0:
                    break
        else:
            # digamma(a0) = log b0 + mean(E log alpha)
            target = np.log(h.b0) + mean_log
            a0 = max(h.a0, 1e-3)
            for _ in range(50):
                step = (digamma(a0) - target) / polygamma(1, a0)
                a0 = max(a0 - step, a0 / 10.0)
                if abs(step) < 1e-10 * a0:
                    break
        h.a0 = float(np.clip(a0, *A0_BOUNDS))
    if h.free_b0:
        h.b0 = max(h.a0 / mean_alpha, B0_FLOOR)


def empirical_bayes(h: Hyper, m: FloatArray, v: FloatArray, c: FloatArray, w: FloatArray, shape: FloatArray,
                    rate: FloatArray) -> None:
    """Step 4: every free hyperparameter set to its M-step value, in place on ``h`` (exact means)."""
    if h.free_mu0:
        h.mu0 = exact_mean(m)
    if h.free_tau0:
        d = m - h.mu0
        h.tau0 = float(1.0 / max(exact_mean(d * d + v), 1e-12))
    if h.free_tau_b:
        h.tau_b = float(1.0 / max(exact_mean(c * c + w), 1e-12))
    if h.free_a0 or h.free_b0:
        gamma_mstep(h, shape, rate)


def max_abs_change(new: FloatArray, old: FloatArray) -> float:
    """The convergence test's :math:`\\max_i |m_i^{new} - m_i|` (exact; 0.0 for no items)."""
    return float(np.max(np.abs(new - old))) if new.size else 0.0
