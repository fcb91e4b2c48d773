"""The trainable text heads on small hand-made data (no encoder: layer embeddings are given)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from truescore.text.fake import FakeDetector
from truescore.text.features import compute_features
from truescore.text.quality import QualityModel, helpfulness_label, product_quality, proxy_label
from truescore.text.sentiment import SentimentModel, intensity_targets, vader_sentiment

POS = ["I love this, works great!", "Excellent sound, very happy.", "Best strings I have bought.",
       "Great value and fast shipping.", "Wonderful tone, highly recommend.", "Superb build quality, love it."]
NEG = ["Terrible, it broke in a day.", "Awful sound, very disappointed.", "Worst purchase ever, avoid.",
       "Cheap junk that stopped working.", "Horrible quality, returned it.", "Bad tone and poor build."]


def _layers(n: int, signal: np.ndarray | None = None, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2688))
    if signal is not None:
        x[:, :8] += 3.0 * signal[:, None]
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_intensity_targets_scales() -> None:
    assert intensity_targets([0, 1]).tolist() == [-0.5, 0.5]
    assert intensity_targets([-4.0, 2.0, 0.5]).tolist() == [-1.0, 0.5, 0.125]
    assert intensity_targets([1, 3, 5, 4]).tolist() == [-1.0, 0.0, 1.0, 0.5]
    with pytest.raises(ValueError, match="no known scale"):
        intensity_targets([-10.0, 10.0])
    with pytest.raises(ValueError, match="numbers"):
        intensity_targets(["good", "bad"])


def test_vader_fallback_orders_texts() -> None:
    s = vader_sentiment(["I love it, wonderful!", "It is a box.", "I hate it, awful."])
    assert s[0] > 0.5 > s[2]
    assert s[1] == pytest.approx(0.5)


def test_sentiment_model_learns_and_stays_in_unit_interval() -> None:
    texts = (POS + NEG) * 3
    y = np.r_[np.ones(len(POS)), np.zeros(len(NEG))].tolist() * 3
    lay = _layers(len(texts), signal=np.asarray(y) * 2 - 1)
    m = SentimentModel().fit(texts, intensity_targets(y), layers=lay)
    p = m.predict(texts, layers=lay)
    assert ((p >= 0) & (p <= 1)).all()
    assert ((p > 0.5) == np.asarray(y, bool)).mean() == 1.0
    assert len(m.blend_) == 3 and m.blend_[1] > 0  # stacked blend: the encoder head carries signal here
    fixed = SentimentModel(blend="fixed").fit(texts, intensity_targets(y), layers=lay)
    assert fixed.blend_ == (0.0, 0.5, 0.5)
    with pytest.raises(ValueError, match="blend"):
        SentimentModel(blend="median").fit(texts, intensity_targets(y), layers=lay)
    with pytest.raises(ValueError, match="string"):
        m.predict(["fine", 3], layers=lay[:2])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="empty"):
        m.predict([], layers=lay[:0])


def _fake_data(n: int = 80) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    genuine = ["The neck is a bit thick, but the 3rd fret buzzes less after a setup ($40). Solid for the price.",
               "Took two weeks to arrive; tuners hold pitch fine. My son uses it daily (beginner)."]
    fake = ["I love this product it is the best product ever I love it so much the best",
            "This is a great product. I would recommend it. This is a great product.I love it and the"]
    y = rng.integers(0, 2, size=n)
    texts = [(fake if yi else genuine)[i % 2] + f" {i}" for i, yi in enumerate(y)]
    return pd.DataFrame({"text": texts}), y, _layers(n, signal=y * 2.0 - 1, seed=2)


@pytest.mark.slow  # trains a text model
def test_fake_detector_probabilities_and_determinism() -> None:
    df, y, lay = _fake_data()
    feats = compute_features(df, global_duplicates=False)
    a = FakeDetector(gbm_estimators=30).fit(df, y, layers=lay, features=feats)
    b = FakeDetector(gbm_estimators=30).fit(df, y, layers=lay, features=feats)
    pa = a.predict_proba(df, layers=lay, features=feats)
    assert ((pa >= 0) & (pa <= 1)).all()
    assert np.array_equal(pa, b.predict_proba(df, layers=lay, features=feats))
    assert ((pa > 0.5) == y).mean() > 0.9
    parts = a.predict_parts(df, layers=lay, features=feats)
    assert list(parts.columns) == ["ngram", "gbm", "transformer", "char_svm", "word_svm", "mean", "fake_probability"]
    mean_model = FakeDetector(combine="mean", gbm_estimators=30).fit(df, y, layers=lay, features=feats)
    pm = mean_model.predict_proba(df, layers=lay, features=feats)
    assert ((pm >= 0) & (pm <= 1)).all()


@pytest.mark.parametrize(("labels", "match"), [([0] * 80, "both classes"), (["x"] * 80, "0/1"), ([0, 1], "80 reviews")])
def test_fake_detector_rejects_bad_labels(labels: list[object], match: str) -> None:
    df, _, lay = _fake_data()
    with pytest.raises(ValueError, match=match):
        FakeDetector().fit(df, labels, layers=lay, features=compute_features(df, global_duplicates=False))


def test_helpfulness_and_proxy_labels() -> None:
    df = pd.DataFrame({"text": ["a", "b", "c", "d"], "helpful_yes": [3, 1, 0, 9], "helpful_total": [4, 4, 1, 10]})
    labelled, y = helpfulness_label(df)
    assert labelled.tolist() == [True, True, False, True]
    assert y[labelled].tolist() == [1, 0, 1]
    inc = df.assign(is_incentivized=[True, None, False, False])
    lab2, y2, kind = proxy_label(inc)
    assert kind == "is_incentivized" and lab2.tolist() == [True, False, True, True] and y2[0] == 1
    _, y3, kind3 = proxy_label(inc.assign(flag=["yes", "no", "no", "yes"]), "flag")
    assert kind3 == "column" and y3.tolist() == [1, 0, 0, 1]
    with pytest.raises(ValueError, match="not in the data"):
        proxy_label(df, "nope")


@pytest.mark.slow  # trains a text model
def test_quality_model_unit_interval_and_no_vote_leak() -> None:
    rng = np.random.default_rng(3)
    n = 120
    words = rng.integers(3, 200, size=n)
    df = pd.DataFrame({
        "text": ["word " * int(w) for w in words], "rating": rng.integers(1, 6, size=n).astype(float),
        "helpful_yes": rng.integers(0, 5, size=n), "helpful_total": 5, "user_id": [f"u{i % 9}" for i in range(n)],
    })
    _, y = helpfulness_label(df)
    feats = compute_features(df, global_duplicates=False)
    m = QualityModel(gbm_estimators=30).fit(feats, _layers(n), y, label_kind="helpfulness")
    assert "helpful_votes" not in m.feature_names_ and "word_count" in m.feature_names_
    q = m.predict(feats, _layers(n))
    assert ((q >= 0) & (q <= 1)).all()
    m2 = QualityModel(gbm_estimators=30).fit(feats, _layers(n), y, label_kind="is_incentivized")
    assert "helpful_votes" in m2.feature_names_


def test_product_quality_aggregates() -> None:
    s = pd.DataFrame({"item_id": ["a", "a", "a", "b"], "quality": [0.9, 0.5, 0.1, 0.7]})
    out = product_quality(s).set_index("item_id")
    assert out.loc["a", "mean_quality"] == pytest.approx(0.5)
    assert out.loc["a", "share_high"] == pytest.approx(1 / 3)
    assert out.loc["a", "share_low"] == pytest.approx(1 / 3)
    assert out.loc["b", "share_high"] == 1.0 and out.loc["b", "n_reviews"] == 1
    with pytest.raises(ValueError, match="item_id"):
        product_quality(pd.DataFrame({"quality": [0.1]}))


def test_calibration_table_and_ece() -> None:
    from truescore.text.calibration import expected_calibration_error, reliability_table

    rng = np.random.default_rng(5)
    p = rng.uniform(size=20_000)
    y = (rng.uniform(size=p.size) < p).astype(int)  # calibrated by construction
    t = reliability_table(p, y, bins=10)
    assert len(t) == 10 and t["n"].sum() == p.size
    assert np.allclose(t["mean_predicted"], t["observed_rate"], atol=0.03)
    assert expected_calibration_error(p, y) < 0.02
    assert expected_calibration_error(np.clip(p * 0.3 + 0.7, 0, 1), y) > 0.2  # over-confident scores
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        reliability_table([1.5], [1])


@pytest.mark.slow  # trains a text model
def test_fake_probabilities_are_calibrated_out_of_fold() -> None:
    """With 20% label noise the stacked out-of-fold probabilities match observed rates (sane calibration)."""
    from truescore.text.calibration import expected_calibration_error

    rng = np.random.default_rng(6)
    n = 300
    truth = rng.integers(0, 2, size=n)
    y = np.where(rng.uniform(size=n) < 0.2, 1 - truth, truth)
    words = np.array(["sound", "tone", "neck", "case", "price", "strap", "string", "knob"])
    texts = [" ".join(rng.choice(words, size=8)) + (" amazing product" if t else " works okay") for t in truth]
    df = pd.DataFrame({"text": texts})
    m = FakeDetector(gbm_estimators=30).fit(df, y, layers=_layers(n, signal=truth * 2.0 - 1, seed=7),
                                            features=compute_features(df, global_duplicates=False))
    assert expected_calibration_error(m.oof_probability_, y) < 0.08
    assert abs(m.oof_probability_.mean() - y.mean()) < 0.03
