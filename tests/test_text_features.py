"""Feature values on hand-made reviews (truescore.text.features)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from truescore.text.features import CATEGORIES, FEATURES, TEXT_FEATURES, compute_features, text_features

DAY = 86_400.0


@pytest.fixture
def reviews() -> pd.DataFrame:
    return pd.DataFrame({
        "id": ["r1", "r2", "r3", "r4"],
        "item_id": ["i1", "i1", "i1", "i2"],
        "user_id": ["u1", "u2", "u3", "u1"],
        "rating": [5.0, 1.0, 3.0, 4.0],
        "min_rating": 1.0,
        "max_rating": 5.0,
        "title": ["Best ever", "Broken", None, "Fine"],
        "text": [
            "I love it! My best purchase EVER!!",
            "Terrible. It broke after two days. Not good",
            "We got it for our trip. The room was small but the location was near the beach.",
            "I love it! My best purchase EVER!!",
        ],
        "created_at": [0.0, 3600.0, 10 * DAY, 20 * DAY],
        "photo_count": [2, 0, 0, 0],
        "verified_purchase": [True, False, None, True],
        "is_incentivized": [False, False, True, None],
    })


def test_at_least_60_features_in_8_categories() -> None:
    assert len(FEATURES) >= 60
    assert len({f.name for f in FEATURES}) == len(FEATURES)
    assert len(CATEGORIES) >= 8
    assert all(f.definition for f in FEATURES)


def test_docs_table_lists_every_feature() -> None:
    doc = Path(__file__).resolve().parents[1] / "docs" / "features.md"
    text = doc.read_text()
    for f in FEATURES:
        assert f"`{f.name}`" in text, f.name


def test_text_statistics_and_style(reviews: pd.DataFrame) -> None:
    f = compute_features(reviews)
    r1 = f.iloc[0]
    assert r1["word_count"] == 7  # I love it My best purchase EVER
    assert r1["exclamation_count"] == 3
    assert r1["sentence_count"] == 2
    assert r1["all_caps_word_ratio"] == pytest.approx(1 / 7)
    assert r1["first_person_singular"] == pytest.approx(2 / 7)
    assert r1["superlative_ratio"] == pytest.approx(2 / 7)  # best, ever
    assert r1["title_word_count"] == 2
    r2 = f.iloc[1]
    assert r2["ends_without_terminal"] == 1.0
    assert r2["negation_ratio"] > 0
    assert r2["vader_compound"] < 0 < r1["vader_compound"]
    r3 = f.iloc[2]
    assert r3["first_person_plural"] == pytest.approx(2 / 17)  # we, our
    assert r3["spatial_ratio"] == pytest.approx(4 / 17)  # room, small, location, near
    assert r3["exclusive_ratio"] == pytest.approx(1 / 17)  # but
    assert r3["family_social_ratio"] == pytest.approx(1 / 17)  # trip


def test_rating_history_timing_duplication_disclosure(reviews: pd.DataFrame) -> None:
    f = compute_features(reviews)
    # item i1 has ratings 5, 1, 3 -> normalised 1, 0, 0.5; leave-one-out consensus of r1 = 0.25
    assert f.loc[0, "rating_norm"] == 1.0
    assert f.loc[0, "item_consensus"] == pytest.approx(0.25)
    assert f.loc[0, "deviation_from_item"] == pytest.approx(0.75)
    assert f.loc[2, "rating_extremity"] == 0.0
    assert math.isnan(f.loc[3, "item_consensus"])  # alone on its item
    # user u1 wrote r1 and r4 (ratings 1.0 and 0.75 normalised), 20 days apart
    assert f.loc[0, "user_review_count"] == 2
    assert f.loc[3, "user_mean_rating"] == pytest.approx(0.875)
    assert f.loc[3, "user_account_age_days"] == pytest.approx(20.0)
    assert f.loc[0, "user_min_gap_hours"] == pytest.approx(480.0)
    # r1 and r2 on the same item within an hour; r3 ten days later
    assert f.loc[0, "item_reviews_same_day"] == 1
    assert f.loc[2, "item_reviews_same_day"] == 0
    assert f.loc[1, "review_rank_on_item"] == pytest.approx(0.5)
    # r1 and r4 are the same text
    assert f.loc[0, "exact_duplicate_count"] == 1
    assert f.loc[0, "max_sim_any"] == pytest.approx(1.0)
    assert f.loc[0, "max_sim_user"] == pytest.approx(1.0)
    assert f.loc[1, "exact_duplicate_count"] == 0
    assert f.loc[0, "has_photo"] == 1 and f.loc[1, "has_photo"] == 0
    assert f.loc[0, "verified_purchase"] == 1 and math.isnan(f.loc[2, "verified_purchase"])
    assert f.loc[2, "is_incentivized"] == 1


def test_votes_join_on_review_id(reviews: pd.DataFrame) -> None:
    votes = pd.DataFrame({"review_id": ["r1", "r1", "r1", "r2"], "voter_id": ["a", "b", "c", "a"],
                          "helpful": [True, True, False, False]})
    f = compute_features(reviews, votes)
    assert f.loc[0, "helpful_votes"] == 2 and f.loc[0, "unhelpful_votes"] == 1
    assert f.loc[0, "helpful_share"] == pytest.approx(3 / 5)
    assert f.loc[2, "total_votes"] == 0


def test_text_only_frame_degrades_to_nan() -> None:
    f = compute_features(pd.DataFrame({"text": ["Nice product.", "Awful, never again!"]}))
    assert list(f.columns) == [x.name for x in FEATURES]
    assert f[list(TEXT_FEATURES)].drop(columns=["title_word_count"]).notna().all().all()
    assert f["user_review_count"].isna().all() and f["rating_norm"].isna().all()


def test_incentive_wording() -> None:
    f = text_features(["I received this product free in exchange for my honest review.", "Works."])
    assert len(f) == 2
    full = compute_features(pd.DataFrame({"text": ["I received this product free in exchange for my honest "
                                                   "review.", "Works."]}))
    assert full["incentive_wording"].tolist() == [1.0, 0.0]


def test_generation_artefacts() -> None:
    f = compute_features(pd.DataFrame({"text": [
        "The story is well told. I like it. The story is well told.I liked the ending and the",
        "A clean sentence.",
    ]}))
    assert f.loc[0, "missing_space_after_period"] == 1
    assert f.loc[0, "ends_without_terminal"] == 1
    assert f.loc[0, "repeated_trigram_ratio"] > 0
    assert f.loc[1, "repeated_trigram_ratio"] == 0


@pytest.mark.parametrize("bad", [pd.DataFrame({"body": ["x"]}), pd.DataFrame({"text": ["ok", 3]}), ["a", "b"]])
def test_bad_input_is_a_clear_error(bad: object) -> None:
    with pytest.raises(ValueError, match=r"text|DataFrame"):
        compute_features(bad)  # type: ignore[arg-type]


def test_deterministic() -> None:
    df = pd.DataFrame({"text": ["Good value, great sound!", "Broke in a week."], "rating": [5, 1]})
    a = compute_features(df)
    b = compute_features(df)
    assert np.array_equal(a.to_numpy(), b.to_numpy(), equal_nan=True)
