"""The evaluation's peers and selection (eval/peers, eval/integrity_eval): small hand-made cases that fail on a
wrong sign, a wrong threshold or a selection by the mean instead of the worst case."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from eval.integrity_eval import candidate_env, helpful_labels, lodo_select
from eval.peers import encode
from eval.peers.fraudeagle import fraudeagle, fraudeagle_scores
from eval.peers.priors import node_priors, speagle_priors
from eval.peers.rev2 import rev2, rev2_scores
from eval.peers.ugfraud_compat import ugfraud_available

# 4 users x 3 items: users 0-2 agree (items 0 and 1 good, item 2 bad); user 3 rates against them on every item
USER = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3])
ITEM = np.array([0, 1, 2] * 4)
Z = np.array([1, 1, 0, 1, 0.75, 0, 1, 1, 0.25, 0, 0, 1.0])


def _frame() -> pd.DataFrame:
    return pd.DataFrame({"id": [f"r{k}" for k in range(USER.size)], "item_id": [f"i{i}" for i in ITEM],
                         "user_id": [f"u{u}" for u in USER], "rating": 1 + 4 * Z, "min_rating": 1, "max_rating": 5,
                         "created_at": pd.date_range("2024-01-01", periods=USER.size, freq="3D", tz="UTC")
                         .strftime("%Y-%m-%dT%H:%M:%SZ")})


@pytest.mark.parametrize("denominator", ["paper", "code"])
def test_rev2_contrarian_is_least_fair(denominator: str) -> None:
    f, g, r = rev2(USER, ITEM, 2 * Z - 1, 4, 3, denominator=denominator)  # type: ignore[arg-type]
    assert np.argmin(f) == 3
    assert g[0] > 0 and g[1] > 0 and g[2] < 0
    assert r[USER == 3].max() < r[USER != 3].min()


def test_rev2_denominators_differ_and_bad_name_is_refused() -> None:
    f_paper = rev2(USER, ITEM, 2 * Z - 1, 4, 3, denominator="paper")[0]
    f_code = rev2(USER, ITEM, 2 * Z - 1, 4, 3, denominator="code")[0]
    assert not np.allclose(f_paper, f_code)
    with pytest.raises(ValueError, match="denominator"):
        rev2(USER, ITEM, 2 * Z - 1, 4, 3, denominator="mean")  # type: ignore[arg-type]


def test_rev2_scores_rank_the_contrarian_first() -> None:
    s = rev2_scores(encode(_frame()))
    assert s.account.idxmax() == "u3"


def test_fraudeagle_contrarian_is_most_fraudulent() -> None:
    b_u, b_p, fake = fraudeagle(USER, ITEM, Z > 0.5, 4, 3)
    assert np.argmax(b_u) == 3 and b_u[3] > 0.5 > b_u[:3].max()
    assert b_p[2] > 0.5 > max(b_p[0], b_p[1])          # the item the majority pans is the bad one
    assert fake[USER == 3].min() > fake[USER != 3].max()


def test_fraudeagle_scores_leave_middle_ratings_to_their_author() -> None:
    df = _frame()
    df.loc[0, "rating"] = 3.0                           # z = 0.5: no sign, no edge
    s = fraudeagle_scores(encode(df))
    assert s.review["r0"] == pytest.approx(s.account["u0"])
    assert s.account.idxmax() == "u3"


def test_helpful_labels_thresholds() -> None:
    votes = pd.DataFrame({"user_id": ["a", "a", "b", "c", "d", "e", "f"],
                          "yes": [1, 0, 19, 10, 5, 0, 2],
                          "total": [10, 10, 20, 10, 25, 4, 10]})
    lab = helpful_labels(votes, min_votes=5)
    # a: 1/20 = 0.05 fraud; b: 0.95 benign; c: 1.0 benign; d: 0.2 is not < 0.2 -> unlabelled;
    # e: 4 votes < 5 -> unlabelled; f: 0.2 exactly -> unlabelled
    assert lab.to_dict() == {"a": 1, "b": 0, "c": 0}
    assert helpful_labels(votes, min_votes=1)["e"] == 1
    assert "b" not in helpful_labels(votes, min_votes=21)


def test_lodo_picks_by_the_worst_case_not_the_mean() -> None:
    # "peaky" has the best mean on every split but collapses on one set; "steady" has the best worst case
    table = {"shipped default": {"A": 0.70, "B": 0.70, "C": 0.60, "D": 0.70},
             "peaky": {"A": 0.99, "B": 0.99, "C": 0.99, "D": 0.40},
             "steady": {"A": 0.80, "B": 0.80, "C": 0.80, "D": 0.75}}
    rows = {r["held out"]: r for r in lodo_select(table)}
    assert rows["A"]["chosen"] == "steady"
    assert rows["D"]["chosen"] == "peaky"               # with D held out, peaky's worst on A-C is 0.99
    assert rows["D"]["chosen on held out"] == 0.40 and rows["D"]["default on held out"] == 0.70
    assert rows["B"]["chosen worst over others"] == pytest.approx(0.75)


def test_lodo_ties_go_to_the_default() -> None:
    table = {"other": {"A": 0.8, "B": 0.6}, "shipped default": {"A": 0.7, "B": 0.6}}
    rows = {r["held out"]: r["chosen"] for r in lodo_select(table)}
    assert rows == {"A": "shipped default", "B": "other"}   # held out A: both 0.6 on B, the default wins


def test_candidate_env_names_the_integrity_setting() -> None:
    assert candidate_env({"behaviour_weight": 0.2}) == {"TRUESCORE_INTEGRITY__BEHAVIOUR_WEIGHT": "0.2"}


def test_node_priors_follow_the_suspicious_direction() -> None:
    feats = pd.DataFrame({"hi": [0.0, 1.0, 2.0, 3.0], "lo": [3.0, 2.0, 1.0, 0.0]})
    p = node_priors(feats, {"hi": True, "lo": False})
    assert np.all(np.diff(p) > 0) and p.min() >= 0.001 and p.max() <= 0.999


def test_speagle_priors_single_review_author_is_more_suspicious() -> None:
    df = pd.concat([_frame(), pd.DataFrame({"id": ["r99"], "item_id": ["i0"], "user_id": ["u9"], "rating": [1.0],
                                            "min_rating": [1], "max_rating": [5],
                                            "created_at": ["2024-01-02T00:00:00Z"]})], ignore_index=True)
    enc = encode(df)
    up, pp, rp = speagle_priors(enc)
    assert up.shape == (5,) and pp.shape == (3,) and rp.shape == (13,)
    # a singleton's extreme early review is more suspicious than any review of the agreeing majority
    assert rp[-1] > rp[:12][USER != 3].max()


needs_ugfraud = pytest.mark.skipif(not ugfraud_available(),
                                   reason="needs the optional extra `peers` (pip install -e .[peers]: ugfraud)")


@needs_ugfraud
def test_ugfraud_scale_value_is_patched_to_keep_every_key() -> None:
    import UGFraud.Utils.helper as helper

    out = helper.scale_value({"a": 0.0, "b": 0.5, "c": 1.0, "d": 0.25})
    assert set(out) == {"a", "b", "c", "d"}
    assert out["b"] == pytest.approx(0.5) and out["a"] == pytest.approx(1e-7)


@needs_ugfraud
def test_ugfraud_detectors_score_every_review_and_account() -> None:
    from eval.peers import PEERS

    enc = encode(_frame())
    for name, (fn, needs_extra) in PEERS.items():
        if not needs_extra or name.startswith("fBox"):   # fBox's SVD needs more nodes than this toy graph
            continue
        s = fn(enc)
        assert len(s.review) == 12 and len(s.account) == 4, name
        assert np.isfinite(s.review.to_numpy()).all() and np.isfinite(s.account.to_numpy()).all(), name
