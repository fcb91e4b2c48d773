"""Sentiment calibrated per topic from the store's stars (issue 22, item 1): the fit, its fallbacks, the job."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from truescore.config import load_settings
from truescore.jobs import score_text
from truescore.text.star_calibration import IDENTITY, StarCalibration, fit_star_calibration, star_labels


def _domain(n: int, positive_share: float, a: float, b: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A head that ranks well but is off in this domain: the true log odds are a*logit(s)+b."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 2.0, n)
    s = expit(z)
    y = (rng.random(n) < expit(a * z + b)).astype(float)
    keep = rng.random(n) < np.where(y == 1, positive_share, 1 - positive_share) * 2  # tilt the class prior
    return s[keep], y[keep]


def test_star_labels_are_the_top_and_bottom_quarters_of_each_scale() -> None:
    got = star_labels([1, 2, 3, 4, 5, 10, 1, np.nan], [1, 1, 1, 1, 1, 1, 1, 1], [5, 5, 5, 5, 5, 10, 1, 5])
    np.testing.assert_array_equal(got[:6], [0, 0, np.nan, 1, 1, 1])
    assert np.isnan(got[6]) and np.isnan(got[7])  # a one-point scale, no rating: no label


def test_the_fit_fixes_the_threshold_of_a_head_that_ranks_well() -> None:
    s, y = _domain(4000, 0.5, a=2.5, b=2.0, seed=0)  # no tilt of the prior: the fit recovers a and b
    topics = ["music"] * len(s)
    raw_acc = float(((s >= 0.5) == y).mean())
    half = len(s) // 2
    cal = fit_star_calibration(s[:half], y[:half], topics[:half])
    p = cal.apply(s[half:], topics[half:])
    acc = float(((p >= 0.5) == y[half:]).mean())
    assert acc > raw_acc + 0.03
    fit = cal.for_topic("music")
    assert fit.a == pytest.approx(2.5, abs=0.5) and fit.b == pytest.approx(2.0, abs=0.6)
    assert cal.fitted and cal.version.startswith("cal-") and cal.version != "cal-none"


def test_small_topics_take_the_stores_fit_and_small_stores_the_shipped_head() -> None:
    s1, y1 = _domain(3000, 0.9, a=2.0, b=1.5, seed=1)
    s2, y2 = _domain(60, 0.5, a=1.0, b=-1.0, seed=2)
    s = np.concatenate([s1, s2[:30]])
    y = np.concatenate([y1, y2[:30]])
    topics = ["big"] * len(s1) + ["small"] * 30
    cal = fit_star_calibration(s, y, topics, min_labels=50)
    assert set(cal.topics) == {"big"} and cal.for_topic("small") == cal.store_fit
    # reviews without a label (a 3, or no stars) get their topic's calibrated score too
    unlabelled = np.array([0.2, 0.6])
    np.testing.assert_allclose(cal.apply(unlabelled, ["big", "small"]),
                               [cal.topics["big"].apply([0.2])[0], cal.store_fit.apply([0.6])[0]])
    few = fit_star_calibration(s[:40], y[:40], topics[:40], min_labels=50)
    assert few == StarCalibration() and not few.fitted and few.version == "cal-none"
    np.testing.assert_allclose(few.apply(unlabelled, ["big", "big"]), unlabelled, atol=1e-9)


def test_the_prior_pulls_a_one_class_topic_towards_the_store() -> None:
    """A topic whose labels are all positive does not run off to infinity: the prior holds it."""
    s, y = _domain(2000, 0.7, a=1.5, b=0.5, seed=3)
    s_one = np.linspace(0.05, 0.95, 80)
    cal = fit_star_calibration(np.concatenate([s, s_one]), np.concatenate([y, np.ones(80)]),
                               ["a"] * len(s) + ["one-class"] * 80, prior_strength=10.0)
    one = cal.topics["one-class"]
    assert np.isfinite(one.a) and np.isfinite(one.b) and one.b < 20 and one.n_negative == 0


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="one entry per review"):
        fit_star_calibration([0.5, 0.5], [1.0], ["t", "t"])
    with pytest.raises(ValueError, match="min_labels"):
        fit_star_calibration([0.5], [1.0], ["t"], min_labels=0)
    with pytest.raises(ValueError, match="one topic per score"):
        StarCalibration().apply([0.5, 0.4], ["t"])
    with pytest.raises(ValueError):
        load_settings(text={"calibration_min_labels": 0})
    assert IDENTITY.apply([0.3])[0] == pytest.approx(0.3)


class _Store:
    """What score_text needs of a store, with reviews of two topics and stars."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame, self.written, self.runs = frame, [], []

    def change_seq(self) -> int:
        return 1

    def review_frame(self, topic: str | None = None) -> pd.DataFrame:
        return self.frame.copy()

    def vote_frame(self) -> pd.DataFrame:
        return pd.DataFrame(columns=["review_id", "voter_id", "helpful"])

    def write_derived(self, table: str, rows: list[dict[str, object]], version: str) -> None:
        self.written.append((table, rows, version))

    def record_run(self, job: str, model_version: str, *, seq: int, details: dict[str, object]) -> None:
        self.runs.append((job, model_version, details))


class _Scorer:
    """A head that says 0.4 to everything positive and 0.1 to everything negative (ranks perfectly, thresholds
    badly): the job's calibration must move the positives above 0.5."""

    model_version = "text-test"

    def score_frame(self, part: pd.DataFrame, features: pd.DataFrame | None = None) -> pd.DataFrame:
        s = np.where(part["rating"] >= 3, 0.4, 0.1)
        return pd.DataFrame({"review_id": part["id"].tolist(), "quality": 0.5, "fake_probability": 0.1,
                             "sentiment": s})


def test_the_score_job_fits_applies_and_records_the_calibration() -> None:
    n = 300
    rng = np.random.default_rng(4)
    rating = rng.choice([1.0, 2.0, 3.0, 4.0, 5.0], n, p=[0.1, 0.05, 0.1, 0.3, 0.45])
    frame = pd.DataFrame({"id": [f"r{k}" for k in range(n)], "item_id": "i", "user_id": [f"u{k}" for k in range(n)],
                          "rating": rating, "min_rating": 1.0, "max_rating": 5.0, "text": "x",
                          "created_at": np.arange(n, dtype=float),
                          "topic": ["reviews.public.music" if k % 2 else "reviews.public.food" for k in range(n)]})
    store = _Store(frame)
    assert score_text(store, scorer=_Scorer(), batch_size=64) == n  # type: ignore[arg-type]
    rows = [r for _, part, _ in store.written for r in part]
    sentiment = np.array([r["sentiment"] for r in rows])
    positive = rating >= 4
    assert (sentiment[positive] > 0.5).all() and (sentiment[rating <= 2] < 0.5).all()
    (job, version, details), = store.runs
    assert job == "text"
    assert version.startswith("text-test+cal-") and all(v == version for _, _, v in store.written)
    assert set(details["sentiment_calibration"]["topics"]) == {"reviews.public.music", "reviews.public.food"}
    # switched off: the head as it is, and the plain version
    off = _Store(frame)
    score_text(off, scorer=_Scorer(), settings=load_settings(text={"calibrate_sentiment": False}))  # type: ignore[arg-type]
    assert [r["sentiment"] for _, part, _ in off.written for r in part][:2] == pytest.approx(
        list(np.where(rating[:2] >= 3, 0.4, 0.1)))
    assert off.runs[0][1] == "text-test" and "sentiment_calibration" not in off.runs[0][2]


def test_config_says_what_the_last_text_run_fitted(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from truescore.cli import app
    from truescore.store import Store

    url = f"sqlite:///{tmp_path / 'store.db'}"
    runner = CliRunner()
    plain = runner.invoke(app, ["config", "--db", url])
    assert plain.exit_code == 0 and "fitted from the store" not in plain.output
    assert not (tmp_path / "store.db").exists()  # asking never creates a store
    store = Store.open(url)
    cal = {"store": {"a": 2.5, "b": 1.25, "n_positive": 900, "n_negative": 80},
           "topics": {"reviews.public.music": {"a": 2.0, "b": 1.0, "n_positive": 400, "n_negative": 40}}}
    store.record_run("text", "text-x+cal-1234abcd", seq=store.change_seq(),
                     details={"reviews": 980, "sentiment_calibration": cal})
    store.close()
    out = runner.invoke(app, ["config", "--db", url])
    assert out.exit_code == 0, out.output
    assert "fitted from the store: sentiment calibration (text-x+cal-1234abcd): store a=2.500 b=1.250" in out.output
    assert "900 positive and 80 negative" in out.output and "1 topic(s)" in out.output
