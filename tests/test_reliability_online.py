"""Online updates: streaming ends near a full refit, the bookkeeping stays exact, the API behaves."""

from __future__ import annotations

import numpy as np
import pytest

from truescore.config import ReliabilitySettings
from truescore.domain import RatingSnapshot
from truescore.reliability import ReliabilityResult, fit
from truescore.reliability.online import OnlineReliability
from truescore.synth import SynthConfig, generate


def stream_split(seed: int = 0, n_ratings: int = 20_000):
    world = generate(SynthConfig(n_users=1500, n_items=200, n_ratings=n_ratings, seed=seed, with_text=False))
    snap = world.snapshot()
    order = np.argsort(snap.created_at, kind="stable")
    return snap.user_idx[order], snap.item_idx[order], snap.rating[order], snap.n_users, snap.n_items


def run_stream(settings: ReliabilitySettings, seed: int = 0):
    u, i, r, nu, ni = stream_split(seed)
    cut = int(0.9 * u.shape[0])
    online = OnlineReliability(settings).fit_arrays(u[:cut], i[:cut], r[:cut], nu, ni)
    online.update_many(u[cut:], i[cut:], r[cut:])
    full = fit(RatingSnapshot.from_arrays(u, i, r, n_users=nu, n_items=ni), settings)
    return online, full


@pytest.mark.parametrize("weighting", ["cavity", "meanfield"])
def test_streaming_the_last_tenth_ends_within_001_of_a_full_refit(weighting: str) -> None:
    online, full = run_stream(ReliabilitySettings(weighting=weighting))
    assert online.n_updates_ == online.n_ratings_ - int(0.9 * online.n_ratings_)
    err = np.abs(online.item_mean_ - full.item_mean)
    assert err.max() < 0.01
    # and the raters too: relative error of E[alpha] for raters with a track record
    rel = np.abs(online.rater_shape_ / online.rater_rate_ - full.reliability) / full.reliability
    assert np.median(rel[full.user_n_ratings >= 5]) < 0.01


def test_the_ripple_is_what_keeps_the_stream_close() -> None:
    online, full = run_stream(ReliabilitySettings())
    lazy, _ = run_stream(ReliabilitySettings(online_budget=0, online_refresh=0))
    err = np.abs(online.item_mean_ - full.item_mean).max()
    err_lazy = np.abs(lazy.item_mean_ - full.item_mean).max()
    assert err < 0.5 * err_lazy


def test_rater_sums_stay_exact_after_updates() -> None:
    """Invariant: beta_u = b0 + 1/2 sum_i ((r_ui - m_i)^2 + v_i) with the current item posteriors."""
    u, i, r, nu, ni = stream_split(1, n_ratings=5_000)
    cut = 4_000
    online = OnlineReliability().fit_arrays(u[:cut], i[:cut], r[:cut], nu, ni)
    online.update_many(u[cut:], i[cut:], r[cut:])
    m, v = online.item_mean_, online.item_var_
    ss = np.bincount(u, (r - m[i]) ** 2 + v[i], nu)
    b0 = 0.025
    np.testing.assert_allclose(online.rater_rate_, b0 + 0.5 * ss, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(online.rater_shape_, 0.1 + 0.5 * np.bincount(u, minlength=nu), rtol=1e-12)


def test_full_sweep_matches_the_batch_fit_and_runs_on_schedule() -> None:
    u, i, r, nu, ni = stream_split(2, n_ratings=5_000)
    online = OnlineReliability(ReliabilitySettings(online_full_sweep_every=300)).fit_arrays(
        u[:4_500], i[:4_500], r[:4_500], nu, ni)
    ups = online.update_many(u[4_500:], i[4_500:], r[4_500:])
    assert [k for k, up in enumerate(ups) if up.full_sweep] == [299]
    assert online.n_updates_ == 200
    online.full_sweep()
    full = fit(RatingSnapshot.from_arrays(u, i, r, n_users=nu, n_items=ni))
    np.testing.assert_allclose(online.item_mean_, full.item_mean, atol=2e-5)


def test_new_items_and_raters_start_at_the_prior_and_grow_the_result() -> None:
    u, i, r, nu, ni = stream_split(3, n_ratings=3_000)
    online = OnlineReliability().fit_arrays(u, i, r, nu, ni)
    up = online.update(nu + 2, ni + 1, 0.75)
    assert online.n_users_ == nu + 3 and online.n_items_ == ni + 2
    # a fresh rater on a fresh item: weight a0/b0 = 4 against the prior tau0 = 1
    assert up.item_mean == pytest.approx((1.0 * online._mu0 + 4.0 * 0.75) / 5.0)
    assert up.item_sd == pytest.approx(np.sqrt(1 / 5.0))
    assert online.item_mean_[ni] == pytest.approx(online._mu0)   # the skipped index sits at the prior
    res = online.result()
    assert isinstance(res, ReliabilityResult) and res.backend == "online"
    assert res.item_mean.shape == (ni + 2,) and res.reliability.shape == (nu + 3,)
    assert res.item_n_ratings[ni + 1] == 1 and res.user_n_ratings[nu + 2] == 1


def test_result_uses_the_snapshot_ids_and_scales() -> None:
    snap = RatingSnapshot.from_arrays([0, 1, 2, 0], [0, 0, 1, 1], [4, 5, 2, 1], min_rating=1, max_rating=5)
    online = OnlineReliability().fit(snap)
    online.update(1, 1, 0.25)
    res = online.result()
    np.testing.assert_allclose(res.item_quality, 1 + 4 * res.item_mean)
    assert list(res.item_ids) == ["0", "1"]


def test_bad_input_is_refused() -> None:
    snap = RatingSnapshot.from_arrays([0, 1], [0, 0], [0.2, 0.4])
    with pytest.raises(ValueError, match="use_bias"):
        OnlineReliability(ReliabilitySettings(use_bias=True)).fit(snap)
    online = OnlineReliability().fit(snap)
    with pytest.raises(ValueError, match="finite"):
        online.update(0, 0, float("nan"))
    with pytest.raises(ValueError, match="non-negative"):
        online.update(-1, 0, 0.5)
