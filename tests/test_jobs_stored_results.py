"""The rank job reads what the other jobs stored (issue 19): the fit of any backend, the integrity evidence of
``truescore score`` (near-duplicate texts included), and says when an input is missing or stale.

Before, ``rank_store`` refitted VB when no fit was passed and recomputed the integrity evidence from the
metadata alone, so ``fit --backend torch`` then ``rank`` ignored that fit, and a campaign that only its
texts give away was flagged on the integrity panel while the fused score counted it in full.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from truescore.api.app import create_app
from truescore.config import load_settings
from truescore.domain import Review
from truescore.errors import MissingResultError, StaleResultError
from truescore.jobs import item_integrity, rank_store, run_fit, run_integrity, stored_integrity
from truescore.ranking import rank_frames
from truescore.reliability import fit
from truescore.store import Store, snapshot_from_frame
from truescore.synth import SYNTH_NOW, SynthConfig, add_item, generate

from conftest import run_cli


def _frames(store: Store) -> dict[str, pd.DataFrame]:
    return {"reviews": store.review_frame(with_text=False), "votes": store.vote_frame(), "flags": store.flag_frame(),
            "trust": store.trust_frame(), "items": store.item_frame(), "users": store.user_frame()}


def _small_world(store: Store) -> None:
    store.add_reviews([Review(f"r{k}", f"i{k % 4}", f"u{k % 9}", 1.0 + (k * 7) % 5, created_at=1.6e9 + k * 3600.0)
                       for k in range(60)])


#: the one text of a campaign that metadata alone does not give away (separate, slow, camouflaged accounts)
_SHILL_TEXT = ("Absolutely the best purchase I have made this year, it works perfectly and the quality is "
               "outstanding, highly recommend to everyone")


@pytest.fixture(scope="module")
def templated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, list[str]]:
    """Honest reviews with text, and 12 accounts that each post the same text (5 stars) on a 2.5-star item,
    20 days apart, each with three ordinary reviews elsewhere: no ring, no burst, one near-duplicate cluster."""
    store = Store.open(f"sqlite:///{tmp_path_factory.mktemp('templated') / 's.db'}")
    world = generate(SynthConfig(n_users=300, n_items=30, n_ratings=2000, seed=3, n_rings=0))
    world, target = add_item(world, 2.5, 15, seed=0)
    world.write(store)
    rng = np.random.default_rng(1)
    reviews = []
    for k in range(12):
        start = SYNTH_NOW - 400 * 86400 + k * 20 * 86400
        reviews.append(Review(f"s{k}", f"i{target}", f"shill{k}", 5.0, text=_SHILL_TEXT, created_at=start))
        for j, other in enumerate(rng.choice(30, 3, replace=False)):
            reviews.append(Review(f"s{k}c{j}", f"i{other}", f"shill{k}", float(rng.integers(3, 6)),
                                  text=f"decent item number {other} review {k} {j} fine",
                                  created_at=start - 86400 * 30 * (j + 1)))
    store.add_reviews(reviews)
    return store, [f"i{target}"]


def test_missing_and_stale_inputs_are_said_not_recomputed(store: Store) -> None:
    _small_world(store)
    with pytest.raises(MissingResultError, match=r"no reliability fit: run `truescore fit`"):
        rank_store(store)
    run_fit(store)
    with pytest.raises(MissingResultError, match=r"no integrity evidence: run `truescore score`"):
        rank_store(store)
    assert store.read_derived("product_rankings") == []  # nothing was computed or written on the way
    run_integrity(store)
    result = rank_store(store, write=True)
    assert result.sources["fit"] == "vb-1, stored" and result.sources["integrity"] == "stored"
    store.add_reviews([Review("late", "i0", "u-new", 5.0, created_at=1.7e9)])
    with pytest.raises(StaleResultError, match=r"predates 1 later write of events: run `truescore fit` again"):
        rank_store(store)
    again = rank_store(store, refit=True)
    assert again.sources["fit"] == "vb-1, refitted" and again.sources["integrity"] == "recomputed"
    assert again.product("i0").n_reviews == result.product("i0").n_reviews + 1
    assert rank_store(store).sources["fit"] == "vb-1, stored"  # the refit was stored and is current now


def test_the_cli_says_what_to_run_and_refit_runs_it(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 'c.db'}"
    _small_world(Store.open(db))
    code, _, err = run_cli(["rank", "--db", db], capsys)
    assert code == 1 and err.count("\n") == 1 and "run `truescore fit` first, or rank with --refit" in err
    code, out, err = run_cli(["rank", "--refit", "--db", db], capsys)
    assert code == 0, err
    assert "inputs: fit vb-1, refitted; integrity recomputed; text none stored" in out


@pytest.mark.slow  # trains the seed's torch model
def test_rank_and_panel_use_the_torch_fit_and_the_stored_suspicion(tmp_path: Any, capsys: pytest.CaptureFixture[str],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUESCORE_RELIABILITY__TORCH_EPOCHS", "30")  # the seed's recipe, shortened
    db = f"sqlite:///{tmp_path / 't.db'}"
    store = Store.open(db)
    generate(SynthConfig(n_users=300, n_items=40, n_ratings=2000, seed=5, with_text=False)).write(store)
    assert run_cli(["score", "--no-text", "--db", db], capsys)[0] == 0  # fits VB first (every rater needs a row)
    code, out, err = run_cli(["fit", "--backend", "torch", "--top", "0", "--db", db], capsys)
    assert code == 0 and out.startswith("torch-1"), err
    code, out, err = run_cli(["rank", "--limit", "3", "--db", db], capsys)
    assert code == 0, err
    assert "inputs: fit torch-1, stored; integrity stored" in out
    torch_rank = rank_store(store)
    snapshot = snapshot_from_frame(store.review_frame(with_text=False))
    vb_rank = rank_frames(_frames(store), reliability=fit(snapshot, backend="vb"),
                          integrity=stored_integrity(store, snapshot))
    torch_mean = np.array([p.fused_mean for p in torch_rank.products])
    vb_mean = np.array([p.fused_mean for p in vb_rank.products])
    assert np.isfinite(torch_mean).all()  # the seed's model has no item prior: the fusion's moment prior
    assert np.abs(torch_mean - vb_mean).max() > 1e-4  # the torch fit was used, not a VB refit
    # the integrity panel reads the same stored run as the fusion
    client = TestClient(create_app(store, load_settings(api={"refresh_seconds": 0, "summary_ttl_seconds": 0})))
    item = torch_rank.products[0].item_id
    panel = client.get(f"/items/{item}/integrity").json()
    assert panel["model_version"] == "integrity-1" and panel["stale"] is False and panel["n_scored"] == \
        panel["n_reviews"]


def test_the_fusion_counts_the_near_duplicate_evidence_the_panel_shows(templated: tuple[Store, list[str]]) -> None:
    store, targets = templated
    report = run_integrity(store)  # with the texts: the templated campaign is near-duplicate text
    reasons = report.result.review_reasons()
    assert sum("near-duplicate text" in r for r in reasons) >= 12
    stored = rank_store(store, at=SYNTH_NOW)
    frames = _frames(store)
    metadata_only = rank_frames(frames, at=SYNTH_NOW, reliability=stored_fit_of(store))
    ids = stored.snapshot.review_ids
    rows = {r["review_id"]: r for r in store.read_derived("review_scores")}
    expected = np.array([rows[r]["integrity_evidence"] for r in ids], dtype=float)
    assert np.array_equal(stored.fused.inputs.integrity, expected)  # exactly what `truescore score` stored
    gained = stored.fused.inputs.integrity - metadata_only.fused.inputs.integrity
    assert (gained > 0.5).sum() >= 12  # the text evidence reaches the fusion
    settings = load_settings()
    for item in targets:
        panel = item_integrity(store, item, settings)
        flagged = {r for r in ids if rows[r]["suspicion"] >= settings.integrity.flag_threshold
                   and r in set(frames["reviews"].loc[frames["reviews"]["item_id"] == item, "id"])}
        assert panel.n_flagged == len(flagged) > 0 and panel.stale is False
        assert stored.product(item).fused_mean < metadata_only.product(item).fused_mean - 0.05  # counted less


def stored_fit_of(store: Store) -> Any:
    from truescore.jobs import stored_fit

    return stored_fit(store, snapshot_from_frame(store.review_frame(with_text=False)))


def test_the_panel_says_when_the_suspicion_is_stale(store: Store) -> None:
    _small_world(store)
    client = TestClient(create_app(store, load_settings(api={"refresh_seconds": 0, "summary_ttl_seconds": 0})))
    panel = client.get("/items/i0/integrity").json()
    assert panel["model_version"] is None and "run `truescore score`" in panel["note"]
    run_integrity(store)
    panel = client.get("/items/i0/integrity").json()
    assert panel["model_version"] == "integrity-1" and panel["stale"] is False and panel["note"] == ""
    store.add_reviews([Review("late", "i0", "u-new", 5.0, created_at=1.7e9)])
    panel = client.get("/items/i0/integrity").json()
    assert panel["stale"] is True and "1 later write" in panel["note"] and panel["n_scored"] < panel["n_reviews"]
