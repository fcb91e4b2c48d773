"""The closed-form VB reliability engine: updates vs brute force, invariances, robustness, API."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import optimize, stats
from scipy.special import digamma, gammaln

from truescore.config import ReliabilitySettings
from truescore.domain import RatingSnapshot
from truescore.jobs import write_result
from truescore.reliability import ReliabilityResult, VBReliability, derived_records, fit
from truescore.reliability._layout import RatingLayout
from truescore.reliability._stats import gamma_interval
from truescore.reliability.vb import VBOptions, VBState, _gamma_mstep, _Hyper, vb_fit_arrays, vb_sweeps
from truescore.store import Store

# ---------------------------------------------------------------------------------------------- fixtures


def tiny() -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
    """4 raters x 3 items, 10 ratings on [0, 1]; rater 3 is noisy, rater 2 lenient."""
    u = np.array([0, 0, 0, 1, 1, 1, 2, 2, 3, 3])
    i = np.array([0, 1, 2, 0, 1, 2, 0, 2, 1, 2])
    r = np.array([0.20, 0.55, 0.90, 0.25, 0.50, 0.85, 0.40, 1.00, 0.05, 0.45])
    return u, i, r, 4, 3


def world(seed: int = 0, n_users: int = 300, n_items: int = 60, n_ratings: int = 4000):
    """A small marketplace: item quality, raters with planted noise sd (normalised scale)."""
    rng = np.random.default_rng(seed)
    q = rng.beta(4, 2, n_items)
    sd = np.exp(rng.normal(np.log(0.12), 0.7, n_users))
    u = rng.integers(0, n_users, n_ratings)
    i = rng.integers(0, n_items, n_ratings)
    key = np.unique(u * n_items + i)
    u, i = key // n_items, key % n_items
    r = q[i] + sd[u] * rng.standard_normal(u.shape[0])  # unclipped: the planted precision is exact
    return u, i, r, q, sd


def elbo_by_hand(u, i, r, m, v, a, b, c, w, mu0, tau0, a0, b0, tau_b, use_bias) -> float:
    """The ELBO written out rating by rating, independently of the engine's vectorised code."""
    total = 0.0
    for uu, ii, rr in zip(u, i, r, strict=True):
        cu, wu = (c[uu], w[uu]) if use_bias else (0.0, 0.0)
        s = (rr - m[ii] - cu) ** 2 + v[ii] + wu
        elog = digamma(a[uu]) - math.log(b[uu])
        total += 0.5 * elog - 0.5 * math.log(2 * math.pi) - 0.5 * (a[uu] / b[uu]) * s
    for k in range(len(m)):
        # E log N(x; mu0, 1/tau0) + entropy of N(m, v)
        total += 0.5 * math.log(tau0 / (2 * math.pi)) - 0.5 * tau0 * ((m[k] - mu0) ** 2 + v[k])
        total += 0.5 * math.log(2 * math.pi * math.e * v[k])
    for k in range(len(a)):
        elog = digamma(a[k]) - math.log(b[k])
        total += a0 * math.log(b0) - gammaln(a0) + (a0 - 1) * elog - b0 * a[k] / b[k]
        total += a[k] - math.log(b[k]) + gammaln(a[k]) + (1 - a[k]) * digamma(a[k])
        if use_bias:
            total += 0.5 * math.log(tau_b / (2 * math.pi)) - 0.5 * tau_b * (c[k] ** 2 + w[k])
            total += 0.5 * math.log(2 * math.pi * math.e * w[k])
    return total


FIXED = dict(mu0=0.5, tau0=2.0, a0=1.5, b0=0.05, tau_b=20.0, empirical_bayes=False)


def fit_tiny(use_bias: bool, weighting: str = "meanfield", **kw) -> VBState:
    u, i, r, nu, ni = tiny()
    opts = VBOptions(weighting=weighting, use_bias=use_bias, max_iter=5000, tol=1e-13, **{**FIXED, **kw})
    state, _ = vb_fit_arrays(u, i, r, nu, ni, opts)
    return state


# ---------------------------------------------------------------------------------------------- brute force


@pytest.mark.parametrize("use_bias", [False, True], ids=["no-bias", "bias"])
def test_engine_elbo_matches_hand_written_elbo(use_bias: bool) -> None:
    u, i, r, _, _ = tiny()
    st = fit_tiny(use_bias)
    c, w = st.bias_mean, st.bias_var
    by_hand = elbo_by_hand(u, i, r, st.item_mean, st.item_var, st.shape, st.rate, c, w,
                           **{k: FIXED[k] for k in ("mu0", "tau0", "a0", "b0", "tau_b")}, use_bias=use_bias)
    assert st.elbo_history[-1] == pytest.approx(by_hand, rel=1e-10, abs=1e-9)


@pytest.mark.parametrize("use_bias", [False, True], ids=["no-bias", "bias"])
def test_converged_vb_is_a_numerical_optimum_of_the_elbo(use_bias: bool) -> None:
    """At the VB fixed point no direction in the variational parameters raises the ELBO."""
    u, i, r, nu, ni = tiny()
    st = fit_tiny(use_bias)
    assert st.converged
    hp = {k: FIXED[k] for k in ("mu0", "tau0", "a0", "b0", "tau_b")}

    def pack(m, v, a, b, c, w):
        parts = [m, np.log(v), np.log(a), np.log(b)]
        if use_bias:
            parts += [c, np.log(w)]
        return np.concatenate(parts)

    def neg(theta):
        m, lv = theta[:ni], theta[ni : 2 * ni]
        la, lb = theta[2 * ni : 2 * ni + nu], theta[2 * ni + nu : 2 * ni + 2 * nu]
        if use_bias:
            c, lw = theta[2 * ni + 2 * nu : 2 * ni + 3 * nu], theta[2 * ni + 3 * nu :]
            cw = (c, np.exp(lw))
        else:
            cw = (np.zeros(nu), np.zeros(nu))
        return -elbo_by_hand(u, i, r, m, np.exp(lv), np.exp(la), np.exp(lb), *cw, **hp, use_bias=use_bias)

    theta0 = pack(st.item_mean, st.item_var, st.shape, st.rate, st.bias_mean, st.bias_var)
    f0 = neg(theta0)
    # start the optimiser away from the VB solution: it must come back to (no better than) it
    rng = np.random.default_rng(1)
    opt = optimize.minimize(neg, theta0 + 0.05 * rng.standard_normal(theta0.shape), method="L-BFGS-B",
                            options={"maxiter": 20000, "ftol": 1e-15, "gtol": 1e-10})
    assert opt.fun >= f0 - 1e-7
    assert opt.fun == pytest.approx(f0, abs=1e-5)
    np.testing.assert_allclose(opt.x[:ni], st.item_mean, atol=1e-3)
    np.testing.assert_allclose(np.exp(opt.x[2 * ni : 2 * ni + nu]) / np.exp(opt.x[2 * ni + nu : 2 * ni + 2 * nu]),
                               st.precision, rtol=1e-2)


def test_each_closed_form_block_update_is_the_block_optimum() -> None:
    """Perturb the solution, apply one closed-form block update, compare with a numerical block optimum."""
    u, i, r, nu, ni = tiny()
    st = fit_tiny(True)
    hp = {k: FIXED[k] for k in ("mu0", "tau0", "a0", "b0", "tau_b")}
    m, v, a, b, c, w = (st.item_mean.copy(), st.item_var.copy(), st.shape.copy(), st.rate.copy(),
                        st.bias_mean.copy(), st.bias_var.copy())
    rng = np.random.default_rng(2)
    m += 0.1 * rng.standard_normal(ni)
    c += 0.05 * rng.standard_normal(nu)
    b *= np.exp(0.3 * rng.standard_normal(nu))

    def elbo(m_, v_, a_, b_, c_, w_):
        return elbo_by_hand(u, i, r, m_, v_, a_, b_, c_, w_, **hp, use_bias=True)

    # q(alpha_u): a_u = a0 + n_u/2, b_u = b0 + 1/2 sum_i s_ui
    s = (r - m[i] - c[u]) ** 2 + v[i] + w[u]
    a_cf = hp["a0"] + 0.5 * np.bincount(u, minlength=nu)
    b_cf = hp["b0"] + 0.5 * np.bincount(u, s, nu)
    opt = optimize.minimize(lambda t: -elbo(m, v, np.exp(t[:nu]), np.exp(t[nu:]), c, w),
                            np.zeros(2 * nu), method="L-BFGS-B", options={"ftol": 1e-15, "gtol": 1e-11})
    np.testing.assert_allclose(np.exp(opt.x[:nu]), a_cf, rtol=2e-3)
    np.testing.assert_allclose(np.exp(opt.x[nu:]), b_cf, rtol=2e-3)
    # q(b_u): 1/w_u = tau_b + n_u E[alpha_u], c_u = w_u E[alpha_u] sum_i (r_ui - m_i)
    ea = a_cf / b_cf
    n_u = np.bincount(u, minlength=nu)
    w_cf = 1.0 / (hp["tau_b"] + n_u * ea)
    c_cf = w_cf * ea * np.bincount(u, r - m[i], nu)
    opt = optimize.minimize(lambda t: -elbo(m, v, a_cf, b_cf, t[:nu], np.exp(t[nu:])),
                            np.r_[np.zeros(nu), np.log(w)], method="L-BFGS-B",
                            options={"ftol": 1e-15, "gtol": 1e-11})
    np.testing.assert_allclose(opt.x[:nu], c_cf, atol=1e-5)
    np.testing.assert_allclose(np.exp(opt.x[nu:]), w_cf, rtol=1e-3)
    # q(x_i): 1/v_i = tau0 + sum_u E[alpha_u], m_i = v_i (tau0 mu0 + sum_u E[alpha_u](r_ui - c_u))
    v_cf = 1.0 / (hp["tau0"] + np.bincount(i, ea[u], ni))
    m_cf = v_cf * (hp["tau0"] * hp["mu0"] + np.bincount(i, ea[u] * (r - c_cf[u]), ni))
    opt = optimize.minimize(lambda t: -elbo(t[:ni], np.exp(t[ni:]), a_cf, b_cf, c_cf, w_cf),
                            np.r_[np.full(ni, 0.5), np.log(v)], method="L-BFGS-B",
                            options={"ftol": 1e-15, "gtol": 1e-11})
    np.testing.assert_allclose(opt.x[:ni], m_cf, atol=1e-5)
    np.testing.assert_allclose(np.exp(opt.x[ni:]), v_cf, rtol=1e-3)
    # and the engine's one sweep from the same start does exactly these updates
    layout = RatingLayout.build(u, i, r, nu, ni)
    init = VBState(m, v, a, b, c, w, np.zeros(ni), st.hyper)
    one = VBOptions(weighting="meanfield", use_bias=True, max_iter=1, tol=1e-15, **FIXED)
    nxt = vb_sweeps(layout, one, init)
    # the engine also applies the exact offset move (x + d, b - d); undo it via the invariant sums
    np.testing.assert_allclose(nxt.item_mean[:, None] + nxt.bias_mean[None, :],
                               m_cf[:, None] + c_cf[None, :], atol=1e-12)
    np.testing.assert_allclose(nxt.item_var, v_cf, rtol=1e-12)


def test_gamma_prior_m_step_matches_numerical_maximum() -> None:
    u, i, r, nu, ni = tiny()
    opts = VBOptions(weighting="meanfield", a0=None, b0=None, tau0=2.0, mu0=0.5, max_iter=3, tol=1e-15)
    state, _ = vb_fit_arrays(u, i, r, nu, ni, opts)
    # the M-step used the rater posteriors of the last sweep; recompute the objective numerically on the
    # final posteriors and check the reported (a0, b0) maximise it after one more M-step
    a, b = state.shape, state.rate
    elog, mean = digamma(a) - np.log(b), a / b

    def neg(t):
        a0, b0 = np.exp(t)
        return -np.sum(a0 * np.log(b0) - gammaln(a0) + (a0 - 1) * elog - b0 * mean)

    opt = optimize.minimize(neg, np.zeros(2), method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-14,
                                                                              "maxiter": 20000})
    h = _Hyper(0.5, 2.0, 1.0, 1.0, 16.0, False, False, True, True, False)
    _gamma_mstep(h, a, b)
    assert h.a0 == pytest.approx(np.exp(opt.x[0]), rel=1e-4)
    assert h.b0 == pytest.approx(np.exp(opt.x[1]), rel=1e-4)


@pytest.mark.parametrize("use_bias", [False, True], ids=["no-bias", "bias"])
def test_meanfield_elbo_never_decreases_with_empirical_bayes(use_bias: bool) -> None:
    u, i, r, _, _ = world(3, n_users=120, n_items=30, n_ratings=1500)
    opts = VBOptions(weighting="meanfield", use_bias=use_bias, mu0=None, tau0=None, a0=None, b0=None,
                     tau_b=None, track_elbo=True, max_iter=60, tol=1e-12)
    state, _ = vb_fit_arrays(u, i, r, 120, 30, opts)
    elbo = np.asarray(state.elbo_history)
    assert elbo.shape[0] >= 5
    assert np.all(np.diff(elbo) >= -1e-7 * np.abs(elbo[1:]))


# ---------------------------------------------------------------------------------------------- cavity


def test_cavity_weight_of_a_fresh_account_is_the_prior_mean() -> None:
    """Raters with one rating each weigh a0/b0, whatever their agreement: 1/v = tau0 + n a0/b0."""
    u = np.arange(7)
    i = np.zeros(7, dtype=int)
    r = np.array([0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.1])
    st, _ = vb_fit_arrays(u, i, r, 7, 1, VBOptions(tol=1e-12))
    assert 1.0 / st.item_var[0] == pytest.approx(1.0 + 7 * 0.1 / 0.025, rel=1e-12)
    assert st.weight_sum[0] == pytest.approx(7 * 4.0, rel=1e-12)


def test_cavity_weight_equals_leave_one_out_rater_precision() -> None:
    """omega_ui = (a_u - 1/2)/(b_u - s_ui/2): the rater's E[alpha] fitted without rating (u, i)."""
    u, i, r, nu, ni = tiny()
    opts = VBOptions(weighting="cavity", max_iter=1, tol=1e-15, **FIXED)
    layout = RatingLayout.build(u, i, r, nu, ni)
    m0 = np.array([0.3, 0.4, 0.8])
    v0 = np.array([0.01, 0.02, 0.01])
    init = VBState(m0, v0, np.ones(nu), np.ones(nu), np.zeros(nu), np.zeros(nu), np.zeros(ni),
                   fit_tiny(False).hyper)
    st = vb_sweeps(layout, opts, init)
    # brute force: for each rating, the Gamma posterior of its rater from the OTHER ratings
    weights = np.zeros(ni)
    for k in range(len(r)):
        others = (u == u[k]) & (np.arange(len(r)) != k)
        s = (r[others] - m0[i[others]]) ** 2 + v0[i[others]]
        weights[i[k]] += (FIXED["a0"] + 0.5 * others.sum()) / (FIXED["b0"] + 0.5 * s.sum())
    np.testing.assert_allclose(st.weight_sum, weights, rtol=1e-12)


def test_a_rater_with_one_rating_does_not_dominate() -> None:
    """Five established raters put an item at 0.3; one fresh account says 1.0."""
    rng = np.random.default_rng(0)
    n_other = 12
    us, its, rs = [], [], []
    q = rng.uniform(0.2, 0.9, n_other)
    for rater in range(5):
        for k in range(n_other):
            us.append(rater), its.append(1 + k), rs.append(q[k] + 0.03 * rng.standard_normal())
        us.append(rater), its.append(0), rs.append(0.3 + 0.02 * (rater - 2))
    us.append(5), its.append(0), rs.append(1.0)
    u, i, r = np.array(us), np.array(its), np.array(rs)
    res = fit(RatingSnapshot.from_arrays(u, i, r))
    plain = r[i == 0].mean()
    assert plain - 0.3 > 0.1
    assert abs(res.item_mean[0] - 0.3) < 0.01
    # the fresh account counts the prior mean a0/b0 = 4, an established rater about 1/0.03^2
    assert res.reliability[5] < res.reliability[:5].min() / 10
    # and even 20 such accounts move the item less than half as much as they move the plain mean
    u2 = np.r_[u, 6 + np.arange(19)]
    i2 = np.r_[i, np.zeros(19, dtype=int)]
    r2 = np.r_[r, np.ones(19)]
    res2 = fit(RatingSnapshot.from_arrays(u2, i2, r2))
    assert res2.item_mean[0] - 0.3 < 0.5 * (r2[i2 == 0].mean() - 0.3)


def test_meanfield_lets_a_ring_of_fresh_accounts_confirm_itself() -> None:
    """The reason for the cavity: in plain mean field agreeing fresh accounts look precise."""
    rng = np.random.default_rng(4)
    us, its, rs = [], [], []
    for rater in range(10):
        for k in range(1, 6):
            us.append(rater), its.append(k), rs.append(0.5 + 0.05 * rng.standard_normal())
        us.append(rater), its.append(0), rs.append(0.3 + 0.05 * rng.standard_normal())
    for bot in range(40):
        us.append(10 + bot), its.append(0), rs.append(1.0)
    snap = RatingSnapshot.from_arrays(us, its, rs)
    honest = np.mean(np.array(rs)[:60][np.array(its)[:60] == 0])
    cav = fit(snap).item_mean[0]
    mf = fit(snap, weighting="meanfield").item_mean[0]
    assert cav - honest < 0.5 * (mf - honest)


# ---------------------------------------------------------------------------------------------- invariances


def test_invariant_to_the_rating_scale() -> None:
    u, i, r, _, _ = world(5)
    stars = 1 + 4 * r
    pct = 100 * r
    signed = -10 + 20 * r
    base = fit(RatingSnapshot.from_arrays(u, i, stars, min_rating=1, max_rating=5))
    for values, lo, hi in ((pct, 0, 100), (signed, -10, 10)):
        other = fit(RatingSnapshot.from_arrays(u, i, values, min_rating=lo, max_rating=hi))
        np.testing.assert_allclose(other.item_mean, base.item_mean, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(other.reliability, base.reliability, rtol=1e-9)
        np.testing.assert_allclose(other.item_quality, lo + (hi - lo) * base.item_mean, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(other.item_quality_sd, (hi - lo) * base.item_sd, rtol=1e-9)


def test_invariant_to_the_order_of_ratings_and_ids() -> None:
    u, i, r, _, _ = world(6)
    perm = np.random.default_rng(0).permutation(u.shape[0])
    a = fit(RatingSnapshot.from_arrays(u, i, r, n_users=300, n_items=60))
    b = fit(RatingSnapshot.from_arrays(u[perm], i[perm], r[perm], n_users=300, n_items=60))
    np.testing.assert_allclose(a.item_mean, b.item_mean, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(a.reliability, b.reliability, rtol=1e-10)


# ---------------------------------------------------------------------------------------------- recovery


@pytest.mark.parametrize("settings", [{}, {"weighting": "meanfield"}, {"use_bias": True}],
                         ids=["cavity", "meanfield", "bias"])
def test_recovers_planted_quality_and_reliability(settings: dict) -> None:
    u, i, r, q, sd = world(7)
    res = fit(RatingSnapshot.from_arrays(u, i, r, n_users=300, n_items=60), **settings)
    n_i = np.bincount(i, minlength=60)
    plain = np.bincount(i, r, 60) / np.maximum(n_i, 1)
    rmse_vb = np.sqrt(np.mean((res.item_mean - q)[n_i > 0] ** 2))
    rmse_mean = np.sqrt(np.mean((plain - q)[n_i > 0] ** 2))
    assert res.converged
    assert rmse_vb < 0.85 * rmse_mean
    rated = res.user_n_ratings >= 5
    rho = stats.spearmanr(res.reliability[rated], 1 / sd[rated] ** 2)[0]
    assert rho > 0.8


def test_credible_intervals_cover_the_planted_precision_under_an_empirical_bayes_prior() -> None:
    """With the precision prior fitted to the population, 90% intervals cover about 90% of raters.

    (The default prior is deliberately pessimistic about raters without a long track record, so its
    intervals sit low for very precise raters with few ratings: see docs/reliability.md.)
    """
    u, i, r, _, sd = world(8)
    res = fit(RatingSnapshot.from_arrays(u, i, r, n_users=300, n_items=60), a0=None, b0=None)
    rated = res.user_n_ratings >= 5
    truth = 1 / sd[rated] ** 2
    cover = (res.reliability_lo[rated] <= truth) & (truth <= res.reliability_hi[rated])
    assert 0.8 < cover.mean() <= 0.97


def test_bias_model_recovers_harsh_and_lenient_raters() -> None:
    rng = np.random.default_rng(8)
    n_users, n_items = 200, 50
    q = rng.uniform(0.2, 0.8, n_items)
    bias = np.where(rng.random(n_users) < 0.3, rng.choice([-0.15, 0.15], n_users), 0.0)
    u = np.repeat(np.arange(n_users), 15)
    i = np.concatenate([rng.choice(n_items, 15, replace=False) for _ in range(n_users)])
    r = q[i] + bias[u] + 0.05 * rng.standard_normal(u.shape[0])
    res = fit(RatingSnapshot.from_arrays(u, i, r), use_bias=True)
    assert np.corrcoef(res.bias, bias)[0, 1] > 0.95
    off = fit(RatingSnapshot.from_arrays(u, i, r))
    # with the bias modelled, harsh/lenient raters are not judged unreliable
    biased = bias != 0
    ratio_on = res.reliability[biased].mean() / res.reliability[~biased].mean()
    ratio_off = off.reliability[biased].mean() / off.reliability[~biased].mean()
    assert ratio_on > 0.7
    assert ratio_off < 0.3


# ---------------------------------------------------------------------------------------------- API


def test_result_fields_records_and_store_write() -> None:
    u, i, r, _, _ = world(9, n_users=50, n_items=12, n_ratings=300)
    snap = RatingSnapshot.from_arrays(u, i, 1 + 4 * r, n_users=51, n_items=13, min_rating=1, max_rating=5)
    res = fit(snap)
    assert isinstance(res, ReliabilityResult)
    assert res.item_quality.shape == (13,) and res.reliability.shape == (51,)
    # the unrated item and user sit at the prior
    assert res.item_n_ratings[12] == 0 and res.item_sd[12] == pytest.approx(1.0)
    assert res.user_n_ratings[50] == 0 and res.reliability[50] == pytest.approx(0.1 / 0.025)
    assert np.all(res.reliability_lo < res.reliability) and np.all(res.reliability < res.reliability_hi)
    assert np.all((res.item_quality >= 1 - 4) & (res.item_quality <= 5 + 4))
    items, users = derived_records(res)
    assert set(items[0]) == {"item_id", "quality", "quality_sd", "n_ratings", "effective_weight"}
    assert set(users[0]) == {"user_id", "reliability", "reliability_lo", "reliability_hi", "bias", "n_ratings"}
    assert len(items) == 13 and len(users) == 51
    top = res.top_items(3)
    assert len(top) == 3 and top[0].n_ratings > 0
    worst = res.least_reliable(2)
    assert worst[0].reliability_hi <= worst[1].reliability_hi
    assert worst[0].reliability_hi <= res.reliability_hi[res.user_n_ratings > 0].min()

    store = Store.open("sqlite://")
    assert write_result(store, res, "vb-1") == (13, 51)
    assert len(store.read_derived("item_quality")) == 13 and len(store.read_derived("user_reliability")) == 51
    assert {r["model_version"] for r in store.read_derived("item_quality")} == {"vb-1"}
    run = store.last_run("fit")  # the fit job's record: what the ranking reads the fit back with
    assert run is not None and run["model_version"] == "vb-1" and run["details"]["tau0"] == res.hyper.tau0
    with pytest.raises(ValueError, match="model_version"):
        write_result(store, res, "")


def test_estimator_follows_the_sklearn_conventions() -> None:
    u, i, r, _, _ = world(10, n_users=40, n_items=10, n_ratings=250)
    snap = RatingSnapshot.from_arrays(u, i, r, n_users=40, n_items=10)
    est = VBReliability(use_bias=True, tau_b=16.0, tol=1e-7)
    assert est.get_params()["use_bias"] is True
    assert not hasattr(est, "item_mean_")
    assert est.fit(snap) is est
    for name in ("item_mean_", "item_var_", "rater_shape_", "rater_rate_", "rater_precision_", "bias_mean_",
                 "bias_var_", "hyper_", "elbo_history_", "delta_history_", "n_iter_", "converged_", "result_"):
        assert hasattr(est, name), name
    assert est.n_iter_ == len(est.delta_history_)
    assert est.delta_history_[-1] < 1e-7
    from_settings = VBReliability.from_settings(ReliabilitySettings(use_bias=True, tau_b=16.0, tol=1e-7)).fit(snap)
    np.testing.assert_allclose(from_settings.item_mean_, est.item_mean_)


def test_empty_snapshot_returns_the_prior() -> None:
    snap = RatingSnapshot.from_arrays(np.array([], int), np.array([], int), np.array([]), n_users=3, n_items=2)
    res = fit(snap)
    assert res.converged and res.n_iter == 0
    np.testing.assert_allclose(res.item_sd, 1.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tol": 0.0}, "tol"),
        ({"a0": -1.0}, "a0"),
        ({"weighting": "bogus"}, "weighting"),
        ({"max_iter": 0}, "max_iter"),
        ({"credible_level": 1.5}, "credible_level"),
    ],
)
def test_bad_settings_raise_value_error_naming_the_field(kwargs: dict, message: str) -> None:
    snap = RatingSnapshot.from_arrays([0, 1], [0, 0], [0.2, 0.4])
    with pytest.raises(ValueError, match=message):
        fit(snap, **kwargs)


def test_bad_arrays_raise_value_error_naming_the_field() -> None:
    snap = RatingSnapshot.from_arrays([0, 1], [0, 0], [0.2, 0.4])
    snap.rating = np.array([0.2, np.nan])
    with pytest.raises(ValueError, match="rating must be finite"):
        fit(snap)
    snap = RatingSnapshot.from_arrays([0, 1], [0, 0], [0.2, 0.4])
    snap.item_idx = np.array([0, 5])
    with pytest.raises(ValueError, match="item_idx"):
        fit(snap)
    snap = RatingSnapshot.from_arrays([0, 1], [0, 0], [0.2, 0.4])
    snap.user_idx = np.array([0])
    with pytest.raises(ValueError, match="equal length"):
        fit(snap)
    with pytest.raises(ValueError, match="backend"):
        fit(RatingSnapshot.from_arrays([0], [0], [0.5]), backend="sgd")


def test_gamma_interval_matches_scipy() -> None:
    shape = np.array([0.6, 0.6, 3.1, 50.1])
    rate = np.array([0.03, 2.0, 0.5, 0.2])
    lo, hi = gamma_interval(shape, rate, 0.9)
    np.testing.assert_allclose(lo, stats.gamma.ppf(0.05, shape, scale=1 / rate), rtol=1e-10)
    np.testing.assert_allclose(hi, stats.gamma.ppf(0.95, shape, scale=1 / rate), rtol=1e-10)
