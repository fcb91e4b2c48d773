"""The reliability acceptance figures that need no torch, recomputed with the default configuration.

The real-data checks skip when ../shared/data (TRUESCORE_DATA_DIR) is absent.
"""

from __future__ import annotations

import pytest

from eval.reliability_eval import bitcoin_otc, bot_attack, crowd_emotion, synthetic_marketplace

from conftest import data_dir, require_data


def test_synthetic_marketplace_vb_beats_the_mean_and_tracks_planted_reliability() -> None:
    rows = {r["method"]: r for r in synthetic_marketplace(0, None)}
    vb = rows["VB (default: cavity, no bias)"]
    assert vb["rmse"] < rows["plain mean"]["rmse"]
    assert vb["rmse"] < rows["median"]["rmse"]
    assert vb["rho2"] > 0.5


def test_bot_attack_with_100_fresh_accounts_moves_vb_at_most_half_as_much_as_the_mean() -> None:
    rows = bot_attack(0, 1, ks=(10, 100))
    by = {(r["method"], r["k"]): r for r in rows}
    assert by[("plain mean", 100)]["shift"] > 1.5
    assert by[("VB (default: cavity, no bias)", 100)]["ratio"] <= 0.5
    assert by[("VB (default: cavity, no bias)", 10)]["ratio"] <= 0.5


def test_crowd_emotion_mae_at_most_12_with_defaults() -> None:
    require_data("crowd-emotion", "answer.csv")
    rows = {r["method"]: r for r in crowd_emotion(data_dir())}
    assert rows["plain mean"]["mae"] == pytest.approx(12.022, abs=1e-3)
    assert rows["VB (default: cavity, no bias)"]["mae"] <= 12.0


def test_bitcoin_otc_rater_side_auc_at_least_085_with_defaults() -> None:
    require_data("bitcoin-otc", "otc_network.csv")
    out = bitcoin_otc(data_dir())
    rows = {(r["setting"], r["method"]): r for r in out["rows"]}
    main = rows[("full network", "VB default: reliability_lo (5% credible bound; the documented score)")]
    assert main["n_eval"] == 240
    assert main["auc"] >= 0.85
    assert rows[("full network", "fairness (Kumar 2016), reference")]["auc"] == pytest.approx(0.80, abs=0.02)
