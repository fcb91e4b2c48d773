"""Fused quality: the closed form, each factor's effect, burst damping, explanations."""

from __future__ import annotations

import numpy as np
import pytest

from truescore.config import load_settings
from truescore.ranking import FusionInputs, burst_damping, fuse
from truescore.ranking.fusion import weighted_median

DAY = 86400.0


def inputs(ratings, users=None, items=None, *, times=None, reliability=None, fake=None, trust=None,
           n_items=None, n_users=None, extra_user_ratings=0) -> FusionInputs:
    r = np.asarray(ratings, dtype=float)
    n = r.size
    users = np.arange(n) if users is None else np.asarray(users)
    items = np.zeros(n, dtype=int) if items is None else np.asarray(items)
    n_users = int(users.max() + 1) if n_users is None else n_users
    n_items = int(items.max() + 1) if n_items is None else n_items
    # give every rater `extra_user_ratings` ratings of a dummy item so they have a track record
    if extra_user_ratings:
        dummy = n_items
        extra_u = np.repeat(np.arange(n_users), extra_user_ratings)
        users = np.concatenate([users, extra_u])
        items = np.concatenate([items, np.full(extra_u.size, dummy)])
        r = np.concatenate([r, np.full(extra_u.size, 0.5)])
        n_items += 1
    m = r.size
    pad = m - n
    return FusionInputs(
        item_idx=items.astype(np.int64), user_idx=users.astype(np.int64), rating=r,
        created_at=(np.arange(m) * 30 * DAY if times is None else np.concatenate([times, np.arange(pad) * DAY])),
        n_items=n_items, n_users=n_users,
        reliability=np.full(n_users, 50.0) if reliability is None else np.asarray(reliability, dtype=float),
        bias=np.zeros(n_users),
        fake_probability=np.concatenate([np.full(n, np.nan) if fake is None else np.asarray(fake, float),
                                         np.full(pad, np.nan)]),
        trust=np.concatenate([np.zeros(n) if trust is None else np.asarray(trust, float), np.zeros(pad)]),
        prior_mean=0.5, prior_precision=4.0,
    )


def plain_settings(**over):
    base = {"robust_iterations": 0, "track_record_n0": 0.0, "track_record_floor": 1.0, "trust_unknown": 1.0}
    return load_settings(ranking={**base, **over}).ranking


def test_closed_form_posterior_when_every_factor_is_one() -> None:
    inp = inputs([0.75, 1.0, 0.5, 0.75])
    f = fuse(inp, plain_settings())
    lam = 50.0
    prec = 4.0 + 4 * lam
    assert f.mean[0] == pytest.approx((4.0 * 0.5 + lam * 3.0) / prec)
    assert f.sd[0] == pytest.approx(prec**-0.5)
    assert f.n_eff[0] == pytest.approx(4.0)
    assert f.plain_mean[0] == pytest.approx(0.75)


def test_reliable_raters_weigh_more() -> None:
    # rater 0 (precise) says 0.9, rater 1 (noisy) says 0.1
    f = fuse(inputs([0.9, 0.1], reliability=[200.0, 10.0]), plain_settings())
    assert f.mean[0] > 0.6
    assert f.factors["reliability"][0] > 1.0 > f.factors["reliability"][1]


def test_fake_text_and_trust_move_the_weights() -> None:
    f = fuse(inputs([1.0, 0.0], fake=[0.9, 0.0]), plain_settings())
    assert f.mean[0] < 0.5 and f.factors["authenticity"][0] == pytest.approx(0.1)
    g = fuse(inputs([1.0, 0.0], trust=[1.0, 0.0]), plain_settings(trust_unknown=0.25))
    assert g.mean[0] > 0.5 and g.factors["trust"].tolist() == [1.0, 0.25]


def test_fresh_accounts_without_track_record_barely_count() -> None:
    honest = [0.375] * 20
    bots = [1.0] * 100
    inp = inputs(honest + bots, n_users=120, extra_user_ratings=0)
    # honest raters have 10 other ratings each; bots none
    users = np.concatenate([inp.user_idx, np.repeat(np.arange(20), 10)])
    items = np.concatenate([inp.item_idx, np.full(200, 1)])
    inp.user_idx, inp.item_idx = users, items
    inp.rating = np.concatenate([inp.rating, np.full(200, 0.5)])
    inp.created_at = np.concatenate([inp.created_at, np.arange(200) * DAY])
    inp.fake_probability = np.full(users.size, np.nan)
    inp.trust = np.zeros(users.size)
    inp.n_items = 2
    settings = load_settings().ranking
    fused = fuse(inp, settings)
    plain_shift = np.mean(honest + bots) - 0.375
    assert plain_shift > 0.5
    assert fused.mean[0] - 0.375 < 0.05  # < 0.2 stars on a 1..5 scale
    assert fused.factors["track_record"][20:120].max() == settings.track_record_floor


def test_burst_damping_counts_a_burst_as_an_ordinary_window() -> None:
    settings = load_settings().ranking
    spread = np.arange(20) * 35 * DAY                      # 20 ratings over ~2 years
    burst = 700 * DAY + np.linspace(0, 40 * 3600, 100)     # 100 ratings within 40 hours
    times = np.concatenate([spread, burst])
    beta = burst_damping(np.zeros(120, dtype=np.int64), times, 1, settings)
    assert (beta[:20] == 1.0).all()
    assert beta[20:].max() < 0.05
    assert beta[20:].sum() == pytest.approx(100 * beta[20:].mean())
    # the same 120 ratings spread evenly are not a burst
    even = burst_damping(np.zeros(120, dtype=np.int64), np.arange(120) * 6 * DAY, 1, settings)
    assert (even == 1.0).all()
    # a burst on one item does not damp another item at the same time
    two = burst_damping(np.r_[np.zeros(120, dtype=np.int64), [1]], np.r_[times, 700 * DAY], 2, settings)
    assert two[-1] == 1.0


def test_robust_weights_discount_an_outlier() -> None:
    f = fuse(inputs([0.5, 0.52, 0.48, 0.5, 1.0]), plain_settings(robust_iterations=5))
    assert f.factors["robust"][4] < 0.4 < 1.0 < f.factors["robust"][0]
    assert abs(f.mean[0] - 0.5) < abs(np.mean([0.5, 0.52, 0.48, 0.5, 1.0]) - 0.5)


def test_explain_lists_every_rating_with_shares_summing_to_one() -> None:
    inp = inputs([0.75, 1.0, 0.25], fake=[0.0, 0.95, 0.0])
    inp.review_ids = np.array(["a", "b", "c"], dtype=object)
    inp.user_ids = np.array(["ann", "bob", "cy"], dtype=object)
    f = fuse(inp, load_settings().ranking)
    rows = f.explain(0)
    assert {r.review_id for r in rows} == {"a", "b", "c"}
    assert sum(r.share for r in rows) == pytest.approx(1.0)
    assert rows[-1].review_id == "b" and "text looks fake" in rows[-1].reason
    assert set(rows[0].factors) == {"reliability", "track_record", "authenticity", "trust", "burst", "integrity",
                                    "robust"}


def test_weighted_median() -> None:
    v = np.array([1.0, 2.0, 3.0, 10.0, 0.0])
    w = np.array([1.0, 1.0, 1.0, 0.1, 5.0])
    g = np.array([0, 0, 0, 0, 1])
    med = weighted_median(v, w, g, 3)
    assert med[0] == 2.0 and med[1] == 0.0 and np.isnan(med[2])


def test_bad_inputs_are_refused() -> None:
    inp = inputs([0.5, 0.6])
    with pytest.raises(ValueError, match="trust"):
        FusionInputs(**{**{k: getattr(inp, k) for k in inp.__dataclass_fields__}, "trust": np.zeros(3)})
    with pytest.raises(ValueError, match="rating must be finite"):
        FusionInputs(**{**{k: getattr(inp, k) for k in inp.__dataclass_fields__}, "rating": np.array([0.5, np.nan])})
