"""The observer's personal estimate ``for_you`` (truescore.trust.personal): worked numbers for the
calibration and the combination, the clock (``at``), the trust part, the TTL cache and the API fields."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from truescore.config import PersonalSettings
from truescore.jobs import rater_from_store
from truescore.trust import Rater
from truescore.trust.cache import TTLCache
from truescore.trust.clock import parse_at
from truescore.trust.personal import (
    combine,
    moment_shrinkage,
    robust_offsets,
    shrunk_offset,
    trust_shift,
)

TOPIC = "reviews.public.movies"
GAUSS = PersonalSettings(robust_iterations=0, use_trust=False)


def _reviews(rows: list[tuple[str, str, float, float]]) -> pd.DataFrame:
    return pd.DataFrame({
        "id": [f"{u}:{i}" for u, i, _, _ in rows],
        "user_id": [u for u, _, _, _ in rows],
        "item_id": [i for _, i, _, _ in rows],
        "rating": [r for _, _, r, _ in rows],
        "min_rating": 0.0,
        "max_rating": 1.0,
        "created_at": [t for _, _, _, t in rows],
        "topic": TOPIC,
    })


NO_TRUST = pd.DataFrame(columns=["truster_id", "trustee_id", "domain", "level"])

# Two items, three users, ratings on 0..1 (so z = rating). mu = 3.4 / 6 = 0.56667.
SMALL = [("u1", "A", 0.8, 1.0), ("u2", "A", 0.6, 2.0), ("o", "A", 0.9, 3.0),
         ("u1", "B", 0.4, 1.0), ("u2", "B", 0.2, 2.0), ("o", "B", 0.5, 3.0)]


# ---------------------------------------------------------------------------------- pure functions


def test_moment_shrinkage_worked_example() -> None:
    # deviations from mu: A: .2333, .0333, .3333 (sum .6, sum of squares .16667); B: sum -.6, squares .16667
    # within = ((.16667 - .36/3) + (.16667 - .36/3)) / (6 - 2) = .023333
    # between = mean(.2^2, .2^2) - .023333 * mean(1/3, 1/3) = .04 - .0077778 = .032222; lambda = .72414
    within, lam = moment_shrinkage([0.6, -0.6], [1 / 6, 1 / 6], [3, 3], 1e6)
    assert within == pytest.approx(0.023333, abs=1e-6)
    assert lam == pytest.approx(0.72414, abs=1e-4)
    # no spread between groups: the offsets stay at the prior (max_shrinkage)
    assert moment_shrinkage([0.0, 0.0], [0.1, 0.1], [2, 2], 1e6)[1] == 1e6


def test_shrunk_and_robust_offsets() -> None:
    assert shrunk_offset([0.6], [2], 2.0)[0] == pytest.approx(0.15)  # 0.6 / (2 + 2)
    dev = np.array([0.2, 0.4])
    group = np.zeros(2, dtype=np.int64)
    b, w = robust_offsets(dev, group, 1, 2.0, 0.04, 4.0, 0)
    assert b[0] == pytest.approx(0.15) and w[0] == 2.0
    # one Student-t pass from 0.15: r = (.05, .25), w = 5 / (4 + r^2 / .04) = (1.23077, 0.89888),
    # b = (1.23077 * .2 + 0.89888 * .4) / (1.23077 + 0.89888 + 2) = 0.14667
    b, w = robust_offsets(dev, group, 1, 2.0, 0.04, 4.0, 1)
    assert b[0] == pytest.approx(0.14667, abs=1e-5)
    assert w[0] == pytest.approx(1.23077 + 0.89888, abs=1e-4)
    # an outlier counts less under t noise than under Gaussian noise
    out = np.array([0.0, 0.0, 0.0, 1.0])
    g4 = np.zeros(4, dtype=np.int64)
    assert robust_offsets(out, g4, 1, 1.0, 0.01, 4.0, 5)[0][0] < robust_offsets(out, g4, 1, 1.0, 0.01, 4.0, 0)[0][0]


def test_trust_shift_worked_example() -> None:
    # e_bar = .05, n = kish(1, 1) = 2, shift = .05 * 2 / (2 + 2) = .025, var = .01 * 2 / 4 = .005
    shift, var, e_bar, n = trust_shift([0.2, -0.1], [1.0, 1.0], [1.0, 1.0], 2.0, 0.01)
    assert (shift, var, e_bar, n) == pytest.approx((0.025, 0.005, 0.05, 2.0))
    # agreement 2 and 0: only the first counts; n = kish(2, 0) * (2 / 2) = 1, shift = .2 / 3
    shift, var, e_bar, n = trust_shift([0.2, -0.1], [1.0, 1.0], [2.0, 0.0], 2.0, 0.01)
    assert (shift, var, e_bar, n) == pytest.approx((0.2 / 3, 0.02 / 3, 0.2, 1.0))
    # switched off (gamma <= 0 in the data): no shift, prior variance
    assert trust_shift([0.2], [1.0], [1.0], math.inf, 0.01)[:2] == (0.0, 0.01)
    # t noise: one extreme trusted rating moves less than under Gaussian noise
    e, w, a = [0.0, 0.0, 0.9], [1.0, 1.0, 1.0], [1.0, 1.0, 1.0]
    robust = trust_shift(e, w, a, 1.0, 0.01, scale2=0.01, nu=4.0, iterations=5)[0]
    assert 0 < robust < trust_shift(e, w, a, 1.0, 0.01)[0]


def test_combine_worked_example() -> None:
    mean, sd = combine(0.6, 0.01, -0.05, 0.004, 0.025, 0.005)
    assert mean == pytest.approx(0.575)
    assert sd == pytest.approx(math.sqrt(0.019))
    assert combine(0.9, 0.0, 0.2, 0.0, 0.0, 0.0)[0] == 1.0  # clipped to the scale


# ---------------------------------------------------------------------------------- the model


def test_calibration_and_for_you_worked_example() -> None:
    """Gaussian noise (no reweighting), no trust: the baseline predictor with leave-one-out, by hand.

    Item fit: b_A = .6 / (3 + .72414) = .16111, b_B = -.16111. User deviations z - mu - b: u1 (.07222,
    -.00556), u2 (-.12778, -.20556), o (.17222, .09444); within = .003025, between = mean(.03333^2,
    .16667^2, .13333^2) - .003025 / 2 = .014043, lambda_c = .21541.
    for_you of o for A (o's own rating of A left out):
      public: (.2333 + .0333) / (2 + .72414) = .09789 -> .56667 + .09789 = .66456, from 2 reviews;
      calibration from B only: (.5 - .56667 + .16111) / (1 + .21541) = .07771;
      for_you = .66456 + .07771 = .74227.
    """
    rater = Rater.from_frames(NO_TRUST, _reviews(SMALL), personal=GAUSS)
    h = rater.personal.hyper_
    assert h.item_strength == pytest.approx(0.72414, abs=1e-4)
    assert h.within_user_var == pytest.approx(0.003025, abs=1e-5)
    assert h.user_strength == pytest.approx(0.21541, abs=1e-3)
    res = rater.effective_rating("A", "o", at=10.0)
    assert res.for_you_public == pytest.approx(0.66456, abs=1e-4)
    assert res.for_you_calibration == pytest.approx(0.07771, abs=1e-4)
    assert res.for_you == pytest.approx(0.74227, abs=1e-4)
    assert res.for_you_calibration_ratings == 1
    assert res.rating is None  # no trust path: the seed's rating is undefined, for_you is not
    assert "above the crowd (1 rating)" in (res.for_you_explanation or "")
    # an observer with no ratings gets the public estimate (all three ratings of A now count)
    new = rater.effective_rating("A", "nobody", at=10.0)
    assert new.for_you == pytest.approx(0.56667 + 0.16111, abs=1e-4)
    assert new.for_you_calibration == 0.0


def test_at_ignores_later_ratings() -> None:
    rater = Rater.from_frames(NO_TRUST, _reviews(SMALL), personal=GAUSS)
    early = rater.effective_rating("A", "nobody", at=1.5)  # only u1's ratings exist
    assert early.for_you_public_sd is not None
    assert early.for_you_trust_reviews == 0.0
    later = rater.effective_rating("A", "nobody", at=10.0)
    assert "(1 reviews)" in (early.for_you_explanation or "")
    assert "(3 reviews)" in (later.for_you_explanation or "")
    # the same as a model fitted on those ratings only
    alone = Rater.from_frames(NO_TRUST, _reviews(SMALL[:1] + SMALL[3:4]), personal=GAUSS)
    assert early.for_you == pytest.approx(alone.effective_rating("A", "nobody", at=1.5).for_you)
    assert rater.effective_rating("A", "nobody", at="1970-01-01T00:00:01.5Z").for_you == pytest.approx(early.for_you)


def _clustered() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two taste clusters; users trust members of their own cluster."""
    rng = np.random.default_rng(3)
    n_users, n_items = 24, 40
    quality = rng.uniform(0.3, 0.7, n_items)
    taste = rng.choice([-0.2, 0.2], n_items)
    rows, edges = [], []
    for u in range(n_users):
        sign = 1 if u % 2 == 0 else -1
        for i in range(n_items):
            if rng.random() < 0.6:
                z = float(np.clip(quality[i] + sign * taste[i] + rng.normal(0, 0.05), 0, 1))
                rows.append((f"u{u}", f"i{i}", z, 1.0))
        for v in range(u % 2, n_users, 2):
            if v != u and rng.random() < 0.5:
                edges.append((f"u{u}", f"u{v}"))
    trust = pd.DataFrame({"truster_id": [a for a, _ in edges], "trustee_id": [b for _, b in edges],
                          "domain": TOPIC, "level": 1.0})
    return _reviews(rows), trust


def test_trusted_reviewers_move_for_you_towards_their_taste() -> None:
    reviews, trust = _clustered()
    with_trust = Rater.from_frames(trust, reviews)
    without = Rater.from_frames(trust, reviews, personal=PersonalSettings(use_trust=False))
    h = with_trust.personal.hyper_
    assert h.trust_cov > 0 and math.isfinite(h.trust_strength) and h.n_pairs > 0
    # covariance by path length: [unused, direct edges, 2 hops, ...]; within a taste cluster every hop shares taste
    assert len(h.cov_by_hops) == PersonalSettings().max_hops + 1 and h.cov_by_hops[1] == h.trust_cov
    assert h.cov_by_hops[2] > 0
    errors = {"trust": [], "plain": []}
    for _, r in reviews.iloc[::7].iterrows():
        a = with_trust.effective_rating(r.item_id, r.user_id, at=10.0)
        b = without.effective_rating(r.item_id, r.user_id, at=10.0)
        assert a.for_you == pytest.approx(a.for_you_public + a.for_you_calibration + a.for_you_trust_shift, abs=1e-9) \
            or a.for_you in (0.0, 1.0)
        if a.contributing_reviews:
            assert a.for_you_trust_mean is not None and a.for_you_trust_agreement is not None
        errors["trust"].append(abs(a.for_you - r.rating))
        errors["plain"].append(abs(b.for_you - r.rating))
    assert np.mean(errors["trust"]) < np.mean(errors["plain"])


# ---------------------------------------------------------------------------------- cache and clock


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_ttl_cache_expiry_lru_and_tokens() -> None:
    clock = FakeClock()
    cache: TTLCache[str] = TTLCache(2, ttl=10.0, clock=clock)
    cache.put("a", "A", token=(1,))
    clock.now += 9.9
    assert cache.get("a", (1,)) == "A"
    clock.now += 0.2  # 10.1 s old
    assert cache.get("a", (1,)) is None and cache.expired == 1 and "a" not in cache
    cache.put("a", "A", token=(1,))
    assert cache.get("a", (2,)) is None  # stale token: dropped
    obj = object()
    cache.put("x", "X", token=(obj, 3))
    cache.put("y", "Y")
    cache.put("z", "Z")  # evicts x, the least recently used
    assert cache.get("x", (obj, 3)) is None and len(cache) == 2
    cache.get("y")
    cache.put("w", "W")  # y was used, so z goes
    assert "y" in cache and "z" not in cache
    assert cache.drop_where(lambda k, v: v == "W") == 1
    off: TTLCache[str] = TTLCache(0, ttl=10.0, clock=clock)
    off.put("a", "A")
    assert off.get("a") is None


def test_parse_at() -> None:
    assert parse_at("1300000000") == 1.3e9
    assert parse_at("1.3e9") == 1.3e9
    assert parse_at("2011-03-13T07:06:40Z") == 1.3e9
    assert parse_at("2011-03-13T07:06:40") == 1.3e9  # no zone: UTC
    assert parse_at("2011-03-13T08:06:40+01:00") == 1.3e9
    assert parse_at("2011-03-13") == datetime(2011, 3, 13, tzinfo=UTC).timestamp()
    with pytest.raises(ValueError, match=r"ISO 8601.*'yesterday'"):
        parse_at("yesterday")
    with pytest.raises(ValueError, match="finite"):
        parse_at("inf")


# ---------------------------------------------------------------------------------- API


def test_api_rating_has_for_you_and_takes_at(tmp_path: object) -> None:
    from fastapi.testclient import TestClient

    from truescore.api import create_app
    from truescore.config import load_settings
    from truescore.domain import Item, Review, TrustEdge, from_epoch
    from truescore.store import Store

    store = Store.open(f"sqlite:///{tmp_path}/s.db")  # type: ignore[str-bytes-safe]
    store.add_items([Item("A", TOPIC), Item("B", TOPIC)])
    store.add_reviews([Review(f"{u}:{i}", i, u, 1 + 4 * z, from_epoch(1.3e9 + t)) for u, i, z, t in SMALL])
    store.add_trust([TrustEdge("o", "u1", TOPIC, 1.0, from_epoch(1.3e9))])
    settings = load_settings(api={"refresh_seconds": 0, "summary_ttl_seconds": 0})
    with TestClient(create_app(store, settings)) as client:
        epoch = client.get("/items/A/rating", params={"observer": "o", "at": "1300000010"})
        assert epoch.status_code == 200
        body = epoch.json()
        for field in ("for_you", "for_you_sd", "for_you_explanation", "for_you_public", "for_you_calibration",
                      "for_you_trust_shift", "rating", "anonymous_baseline_rating", "personalization_delta"):
            assert field in body
        assert body["computed_at"] == 1.3e9 + 10
        assert body["rating"] == pytest.approx(1 + 4 * 0.8)  # u1, directly trusted, is the only contributor
        assert body["for_you"] is not None and body["for_you_sd"] > 0
        assert body["for_you_explanation"].startswith("for you ")
        expected = rater_from_store(store).effective_rating("A", "o", at=1.3e9 + 10)
        assert body["for_you"] == pytest.approx(expected.for_you, rel=1e-9)
        iso = client.get("/items/A/rating", params={"observer": "o", "at": "2011-03-13T07:06:50Z"}).json()
        assert iso["for_you"] == pytest.approx(body["for_you"], rel=1e-12)
        early = client.get("/items/A/rating", params={"observer": "o", "at": "1300000001.5"}).json()
        assert "(1 reviews)" in early["for_you_explanation"]  # u2's review did not exist yet
        bad = client.get("/items/A/rating", params={"observer": "o", "at": "soon"})
        assert bad.status_code == 422 and "'at'" in bad.text and "soon" in bad.text
    store.close()


def test_cli_rate_shows_for_you_and_takes_at(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from rich.console import Console
    from typer.testing import CliRunner

    import truescore.cli as cli
    from truescore.domain import Item, Review, TrustEdge, from_epoch
    from truescore.store import Store

    url = f"sqlite:///{tmp_path}/cli.db"  # type: ignore[str-bytes-safe]
    store = Store.open(url)
    store.add_items([Item("A", TOPIC), Item("B", TOPIC)])
    store.add_reviews([Review(f"{u}:{i}", i, u, 1 + 4 * z, from_epoch(1.3e9 + t)) for u, i, z, t in SMALL])
    store.add_trust([TrustEdge("o", "u1", TOPIC, 1.0, from_epoch(1.3e9))])
    store.close()
    monkeypatch.setattr(cli, "console", Console(width=200))
    runner = CliRunner()
    out = runner.invoke(cli.app, ["rate", "A", "--observer", "o", "--at", "2011-03-13T07:06:50Z", "--db", url])
    assert out.exit_code == 0, out.output
    assert "for you " in out.output and "seed 003 trust-weighted rating: 4.2" in out.output
    payload = json.loads(runner.invoke(cli.app, ["rate", "A", "--observer", "o", "--at", "1300000010", "--json",
                                                 "--db", url]).output)
    assert payload["computed_at"] == 1.3e9 + 10 and payload["for_you"] is not None
    assert "trusted source" in payload["for_you_explanation"]
    bad = runner.invoke(cli.app, ["rate", "A", "--observer", "o", "--at", "soon", "--db", url])
    assert bad.exit_code != 0


def test_warm_requests_reuse_the_estimate_until_something_changes() -> None:
    from truescore.domain import Review, from_epoch

    rater = Rater.from_frames(NO_TRUST, _reviews(SMALL), personal=GAUSS)
    first = rater.effective_rating("A", "o", at=10.0)
    assert rater.personal.estimates.hits == 0
    again = rater.effective_rating("A", "o", at=10.0)
    assert rater.personal.estimates.hits == 1 and again.for_you == first.for_you
    rater.add_reviews([Review("u3:A", "A", "u3", 0.1, from_epoch(5.0), min_rating=0.0, max_rating=1.0)])
    changed = rater.effective_rating("A", "o", at=10.0)  # a new review: new fit, new estimate
    assert changed.for_you < first.for_you and "(3 reviews)" in (changed.for_you_explanation or "")
