"""The integrity engine: each detector on data small enough to check, the suspicion, the store path."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from truescore.integrity import (
    IntegrityInputs,
    change_points,
    cohort_concentration,
    detect_rings,
    integrity_scores,
    near_duplicates,
    peel,
    percentile_rank,
)
from truescore.integrity._common import DAY, group_cumsum
from truescore.synth import SynthConfig, account_labels, add_item, add_ring_campaign, generate

from conftest import run_cli


def _inputs(user, item, rating, t, **kw) -> IntegrityInputs:  # type: ignore[no-untyped-def]
    user, item = np.asarray(user, dtype=np.int64), np.asarray(item, dtype=np.int64)
    return IntegrityInputs(user_idx=user, item_idx=item, rating=np.asarray(rating, float),
                           created_at=np.asarray(t, float), n_users=int(user.max()) + 1,
                           n_items=int(item.max()) + 1, **kw)


def test_percentile_rank_ties_and_missing() -> None:
    p = percentile_rank([1.0, 2.0, 2.0, np.nan, 3.0])
    assert p[3] == 0.5
    assert p[1] == p[2] and p[0] < p[1] < p[4]
    assert p[0] == pytest.approx(0.5 / 4) and p[4] == pytest.approx(3.5 / 4)


def test_group_cumsum_restarts() -> None:
    assert group_cumsum(np.array([1.0, 2, 3, 4, 5]), np.array([0, 2])).tolist() == [1, 3, 3, 7, 12]


def test_peel_finds_the_planted_block_under_camouflage() -> None:
    rng = np.random.default_rng(0)
    # 200 honest rows rating 50 columns sparsely; 10 fraud rows rate columns 50..54 fully and camouflage on
    # the popular columns 0..4
    rows, cols = [], []
    for u in range(200):
        for c in rng.choice(50, 3, replace=False):
            rows.append(u)
            cols.append(c)
    for u in range(200, 210):
        rows += [u] * 10
        cols += [50, 51, 52, 53, 54, 0, 1, 2, 3, 4]
    r, c = np.array(rows), np.array(cols)
    deg = np.bincount(c, minlength=55).astype(float)
    block = peel(r, c, 1.0 / np.log(deg[c] + 5), 210, 55, eps=0.01)
    assert set(block.rows.tolist()) == set(range(200, 210))
    assert {50, 51, 52, 53, 54} <= set(block.cols.tolist())


def test_peel_rejects_bad_eps() -> None:
    with pytest.raises(ValueError, match="eps"):
        peel(np.array([0]), np.array([0]), np.array([1.0]), 1, 1, eps=0)


def test_change_point_at_the_shift() -> None:
    n = 60
    rating = np.r_[np.full(30, 0.8), np.full(30, 0.2)] + np.random.default_rng(1).normal(0, 0.05, n)
    inp = _inputs(np.arange(n), np.zeros(n), np.clip(rating, 0, 1), np.arange(n) * DAY)
    cp = change_points(inp, z0=4.0, min_ratings=10)
    assert cp.z[0] > 4
    assert cp.at[0] == pytest.approx(29 * DAY)
    assert (cp.evidence[30:] > 0).all() and (cp.evidence[:30] == 0).all()


def test_no_change_point_on_stationary_ratings() -> None:
    n = 80
    rating = np.clip(0.6 + np.random.default_rng(2).normal(0, 0.2, n), 0, 1)
    cp = change_points(_inputs(np.arange(n), np.zeros(n), rating, np.arange(n) * DAY))
    assert cp.z[0] == 0 and not cp.evidence.any()


def test_cohort_created_together_stands_out() -> None:
    rng = np.random.default_rng(3)
    # 1000 honest accounts created over 4 years rate 40 items; 12 accounts created on one day rate item 0 later
    n_h = 1000
    created = np.r_[rng.uniform(0, 4 * 365, n_h), np.full(12, 500.0) + rng.uniform(0, 1, 12)] * DAY
    users = np.r_[np.arange(n_h), np.arange(n_h, n_h + 12)]
    items = np.r_[rng.integers(0, 40, n_h), np.zeros(12, dtype=int)]
    times = created[users] + rng.uniform(30, 200, users.size) * DAY
    inp = _inputs(users, items, np.full(users.size, 1.0), times, user_created_at=created)
    res = cohort_concentration(inp, bucket_days=14, min_accounts=5, min_lift=10)
    assert (res.evidence[n_h:] > 0).all()
    assert (res.evidence[:n_h] > 0).mean() < 0.02


def test_near_duplicates_need_several_accounts_and_length() -> None:
    text = "Best lamp ever, amazing quality and the light is warm and bright, highly recommend to all"
    texts = [text, text + "!", text, "Great product", "Great product", "Great product",
             "A completely different review that says the base wobbles and the switch broke after a week"]
    inp = _inputs([0, 1, 2, 3, 4, 5, 6], [0] * 7, [1.0] * 7, np.arange(7) * DAY, texts=texts)
    d = near_duplicates(inp, threshold=0.8, min_accounts=3, min_words=8, min_lift=0)
    assert d.evidence.tolist() == [1, 1, 1, 0, 0, 0, 0]


def test_a_stock_text_everywhere_is_not_a_campaign() -> None:
    stock = "Works as described and arrived quickly, would order from this seller again without a doubt"
    rng = np.random.default_rng(9)
    vocab = [f"w{k}" for k in range(2000)]

    def other() -> str:
        return " ".join(rng.choice(vocab, 12))

    texts, items = [], []
    for item in range(6):
        texts += [stock] * 3 + [other() for _ in range(3)]
        items += [item] * 6
    inp = _inputs(np.arange(36), items, [1.0] * 36, np.arange(36) * DAY, texts=texts)
    assert not near_duplicates(inp, min_lift=20).evidence.any()
    # the same three copies piled onto one item among many other texts are a campaign's signature
    texts2 = [stock] * 3 + [other() for _ in range(400)]
    items2 = [0] * 3 + [k % 40 for k in range(400)]
    inp2 = _inputs(np.arange(403), items2, [1.0] * 403, np.arange(403) * DAY, texts=texts2)
    assert near_duplicates(inp2, min_lift=20).evidence[:3].tolist() == [1, 1, 1]


def test_near_duplicates_from_signatures_computed_per_batch_equal_from_texts() -> None:
    from truescore.integrity.duplicates import SIGNATURE_BYTES, TextSignatures, pack_signatures, unpack_signatures

    stock = "Best lamp ever, amazing quality and the light is warm and bright, highly recommend to all"
    rng = np.random.default_rng(4)
    vocab = [f"w{k}" for k in range(300)]
    texts: list[str | None] = [stock if k % 7 == 0 else " ".join(rng.choice(vocab, 10)) for k in range(120)]
    texts[3], texts[5], texts[8] = None, "", "too short to count"
    users, items = np.arange(120) % 50, np.where(np.arange(120) % 7 == 0, 0, np.arange(120) % 9)
    want = near_duplicates(_inputs(users, items, [1.0] * 120, np.arange(120) * DAY, texts=texts), min_lift=2)
    assert want.evidence.sum() >= 3
    packed = pack_signatures(texts[:50], 8) + pack_signatures(texts[50:], 8)  # two batches, as Spark's
    assert packed[3] is None and packed[5] is None and packed[8] is None
    assert all(len(p) == SIGNATURE_BYTES for p in packed if p is not None)
    sigs = unpack_signatures(packed, 8)
    got = near_duplicates(_inputs(users, items, [1.0] * 120, np.arange(120) * DAY, signatures=sigs), min_lift=2)
    for name in ("group", "accounts", "evidence", "lift"):
        assert np.array_equal(getattr(got, name), getattr(want, name), equal_nan=True), name
    with pytest.raises(ValueError, match="min_words=8"):
        near_duplicates(_inputs(users, items, [1.0] * 120, np.arange(120) * DAY, signatures=sigs), min_words=5)
    with pytest.raises(ValueError, match="not several"):
        _inputs(users, items, [1.0] * 120, np.arange(120) * DAY, texts=texts, signatures=sigs)
    with pytest.raises(ValueError, match="increasing"):
        _inputs(users, items, [1.0] * 120, np.arange(120) * DAY,
                signatures=TextSignatures(sigs.rows[::-1].copy(), sigs.values, 8))


@pytest.fixture(scope="module")
def attacked() -> tuple:  # type: ignore[type-arg]
    world = generate(SynthConfig(n_users=1500, n_items=200, n_ratings=15_000, n_rings=0, with_text=False))
    targets = []
    for k in range(3):
        world, t = add_item(world, 3.0, 20, seed=k)
        targets.append(t)
    clean = world
    attacked = add_ring_campaign(world, targets, 60, rating=1.0, accounts="aged", seed=5)
    return clean, attacked, targets


def _scores(world):  # type: ignore[no-untyped-def]
    snap = world.snapshot()
    inp = IntegrityInputs.from_snapshot(snap, user_created_at=world.users["created_at"])
    return snap, integrity_scores(inp)


def test_reused_bombing_ring_is_found_and_flagged(attacked) -> None:  # type: ignore[no-untyped-def]
    _, world, targets = attacked
    _snap, res = _scores(world)
    assert len(res.rings.rings) >= 1
    ring = res.rings.rings[0]
    assert ring.direction == "down"
    assert set(ring.targets.tolist()) == set(targets)
    labels = account_labels(world)
    members = set(ring.members.tolist())
    planted = set(np.flatnonzero(labels).tolist())
    assert len(members & planted) >= 0.9 * len(planted) and len(members - planted) <= 2
    assert res.flagged_accounts[labels].mean() > 0.9
    assert "ring of" in res.account_reasons()[int(next(iter(planted)))]


def test_no_reason_is_said_twice_and_author_and_review_deviation_read_differently(attacked) -> None:  # type: ignore[no-untyped-def]
    _, world, _ = attacked
    _snap, res = _scores(world)
    review_lines, account_lines = res.review_reasons(top=4), res.account_reasons(top=4)
    for line in review_lines + account_lines:
        parts = [p for p in line.split("; ") if p]
        assert len(parts) == len(set(parts)), line
    # the ring's bombing reviews sit far from their items' raters, and their authors' ratings do too: both said,
    # in different words
    both = [line for line in review_lines
            if "far from the item's other raters" in line and "its ratings far from other raters'" in line]
    assert both


def test_clean_world_has_no_ring_and_few_flags(attacked) -> None:  # type: ignore[no-untyped-def]
    clean, _, _ = attacked
    snap, res = _scores(clean)
    has = np.bincount(snap.user_idx, minlength=snap.n_users) > 0
    assert res.flagged_accounts[has].mean() <= 0.01
    for arr in (res.review_suspicion, res.account_suspicion):
        assert ((arr >= 0) & (arr <= 1)).all()


def test_fusion_bounds_the_ring(attacked) -> None:  # type: ignore[no-untyped-def]
    from truescore.ranking import rank_frames

    clean, world, targets = attacked
    at = world.ratings["created_at"].max() + 1
    base = rank_frames(clean.frames(with_text=False), at=at)
    on = rank_frames(world.frames(with_text=False), at=at)
    off = rank_frames(world.frames(with_text=False), at=at, use_integrity=False)
    for t in targets:
        shift_on = on.product(f"i{t}").fused_mean - base.product(f"i{t}").fused_mean
        shift_off = off.product(f"i{t}").fused_mean - base.product(f"i{t}").fused_mean
        assert abs(shift_on) < 0.5 < abs(shift_off)
    assert any("ring of" in w.reason for w in on.explain(f"i{targets[0]}"))


def test_inputs_validate_lengths() -> None:
    with pytest.raises(ValueError, match="created_at"):
        IntegrityInputs(user_idx=np.zeros(2, dtype=np.int64), item_idx=np.zeros(2, dtype=np.int64),
                        rating=np.ones(2), created_at=np.ones(3), n_users=1, n_items=1)


def test_score_cli_metadata_only_writes_every_row_without_the_encoder(tmp_path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import truescore.text.embed as embed

    def no_encoder(*a, **k):  # type: ignore[no-untyped-def]
        raise AssertionError("the metadata path must not load the encoder")

    monkeypatch.setattr(embed, "get_encoder", no_encoder)
    world = generate(SynthConfig(n_users=300, n_items=60, n_ratings=3000, with_text=False))
    csv = tmp_path / "reviews.csv"
    f = world.frames(with_text=False)["reviews"]
    f[["id", "item_id", "user_id", "rating", "min_rating", "max_rating", "created_at"]].to_csv(csv, index=False)
    db = f"sqlite:///{tmp_path / 's.db'}"
    assert run_cli(["import", str(csv), "--kind", "reviews", "--db", db], capsys)[0] == 0
    assert run_cli(["fit", "--db", db], capsys)[0] == 0
    code, out, err = run_cli(["score", "--db", db], capsys)
    assert code == 0, err
    assert "text engine: skipped" in out
    for table, key, n in (("review_scores", "review_id", len(f)), ("user_reliability", "user_id",
                                                                   f["user_id"].nunique())):
        path = tmp_path / f"{table}.csv"
        assert run_cli(["export", table, "--out", str(path), "--db", db], capsys)[0] == 0
        df = pd.read_csv(path)
        assert "suspicion" in df.columns and len(df) == n and df[key].is_unique
        assert df["suspicion"].between(0, 1).all()


def test_migration_adds_columns_to_an_old_store(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import sqlite3

    from truescore.store import Store

    path = tmp_path / "old.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE review_scores (review_id VARCHAR(256) PRIMARY KEY, quality FLOAT NOT NULL, "
                "fake_probability FLOAT NOT NULL, sentiment FLOAT NOT NULL, model_version VARCHAR(64) NOT NULL, "
                "fitted_at FLOAT NOT NULL)")
    con.execute("INSERT INTO review_scores VALUES ('r1', 0.5, 0.1, 0.9, 'text-x', 1.0)")
    con.commit()
    con.close()
    for _ in range(2):  # idempotent
        store = Store.open(f"sqlite:///{path}")
        rows = store.read_derived("review_scores")
        assert rows[0]["quality"] == 0.5 and "suspicion" in rows[0]
        store.close()
    from truescore.store.integrity_io import write_review_suspicion

    store = Store.open(f"sqlite:///{path}")
    write_review_suspicion(store, ["r1", "r2"], np.array([0.3, 0.7]), ["", "x"], "integrity-1")
    rows = {r["review_id"]: r for r in store.read_derived("review_scores")}
    assert rows["r1"]["quality"] == 0.5 and rows["r1"]["suspicion"] == 0.3
    assert rows["r2"]["quality"] is None and rows["r2"]["suspicion"] == 0.7


def test_api_report_and_panel_after_score(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from truescore.api.app import create_app
    from truescore.store import Store

    world = generate(SynthConfig(n_users=400, n_items=60, n_ratings=4000, n_rings=0, with_text=False))
    targets = []
    for k in range(3):
        world, t = add_item(world, 3.0, 10, seed=k)
        targets.append(t)
    world = add_ring_campaign(world, targets, 30, accounts="aged", seed=1)
    db = f"sqlite:///{tmp_path / 'a.db'}"
    world.write(Store.open(db))
    assert run_cli(["score", "--db", db], capsys)[0] == 0
    client = TestClient(create_app(db))
    rings = client.get("/rings").json()
    assert rings["count"] >= 1 and set(rings["data"][0]["targets"]) == {f"i{t}" for t in targets}
    panel = client.get(f"/items/i{targets[0]}/integrity").json()
    assert panel["attack_detected"] and panel["rings"] and panel["n_flagged"] >= 25
    assert panel["evidence_grade"] == "D"
    clean = client.get("/items/i0/integrity").json()
    assert not clean["attack_detected"] and clean["n_flagged"] == 0
    assert client.get("/items/nope/integrity").status_code == 404
    out = tmp_path / "report.html"
    assert run_cli(["report", "--out", str(out), "--db", db], capsys)[0] == 0
    page = out.read_text()
    assert page.startswith("<!doctype html>") and "<svg" in page and "ring-1" in page
    assert "<script" not in page and "https://" not in page


def test_report_refuses_an_unscored_store(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    from truescore.domain import Review
    from truescore.store import Store

    db = f"sqlite:///{tmp_path / 'b.db'}"
    Store.open(db).add_reviews([Review("r1", "lamp", "ann", 4.0)])
    code, _, err = run_cli(["report", "--out", str(tmp_path / "r.html"), "--db", db], capsys)
    assert code == 1 and "truescore score" in err


def test_co_rating_spread_over_years_is_not_a_ring() -> None:
    # 8 accounts co-rate items 0 and 1 with 5 stars against 10 other raters at 1 star, but over 6 years
    rng = np.random.default_rng(4)
    users, items, ratings, times = [], [], [], []
    for u in range(8):
        for it in (0, 1):
            users.append(u)
            items.append(it)
            ratings.append(1.0)
            times.append(rng.uniform(0, 6 * 365) * DAY)
    for u in range(8, 200):
        for it in rng.choice(np.arange(2, 40), 3, replace=False).tolist() + ([0, 1] if u < 18 else []):
            users.append(u)
            items.append(it)
            ratings.append(0.0 if it in (0, 1) else 0.75)
            times.append(rng.uniform(0, 6 * 365) * DAY)
    inp = _inputs(users, items, ratings, times)
    assert not detect_rings(inp, max_window_days=365).rings
    spread = detect_rings(inp, max_window_days=36500).rings
    assert spread and set(spread[0].members.tolist()) == set(range(8))


def test_run_integrity_on_both_backends(store) -> None:  # type: ignore[no-untyped-def]
    from truescore.jobs import run_integrity
    from truescore.store.integrity_io import read_rings

    world = generate(SynthConfig(n_users=300, n_items=50, n_ratings=3000, n_rings=0, with_text=False))
    targets = []
    for k in range(2):
        world, t = add_item(world, 3.0, 10, seed=k)
        targets.append(t)
    world = add_ring_campaign(world, targets, 20, accounts="aged", seed=2)
    world.write(store)
    report = run_integrity(store)
    again = run_integrity(store)  # idempotent: rows updated, rings replaced
    scores = store.read_table("review_scores")
    users = store.read_table("user_reliability")
    assert len(scores) == world.n_ratings and scores["suspicion"].notna().all()
    assert scores["quality"].isna().all()
    assert users["suspicion"].notna().all() and len(users) == report.snapshot.n_users
    rings = read_rings(store)
    assert len(rings) == len(again.result.rings.rings) >= 1
    assert set(rings[0]["targets"]) == {f"i{t}" for t in targets}


def test_score_with_texts_but_no_models_still_writes_suspicion(tmp_path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import truescore.jobs as jobs_pkg

    def missing(*a, **k):  # type: ignore[no-untyped-def]
        raise FileNotFoundError("fake.joblib not found")

    monkeypatch.setattr(jobs_pkg, "score_text", missing)
    from truescore.domain import Review
    from truescore.store import Store

    db = f"sqlite:///{tmp_path / 'c.db'}"
    Store.open(db).add_reviews([Review(f"r{k}", f"i{k % 3}", f"u{k}", 1.0 + k % 5, text="a text") for k in range(12)])
    code, out, err = run_cli(["score", "--db", db], capsys)
    assert code == 0, err
    assert "models cannot be loaded" in out
    assert len(Store.open(db).read_table("review_scores")) == 12
    code, _, err = run_cli(["score", "--text", "--db", db], capsys)
    assert code == 1 and "text engine cannot run" in err


# --- issue 11b: the independent-consensus test, and reviews that inherit their author's suspicion ---


def test_consensus_z_by_hand() -> None:
    from truescore.integrity.rings import consensus_z

    # members 0, 1 rate item 0 with 0; independent raters 2, 3, 4 rate it 1, 1, 0.5; item 1 has no
    # independent rater
    inp = _inputs([0, 1, 2, 3, 4, 0, 1], [0, 0, 0, 0, 0, 1, 1], [0, 0, 1, 1, 0.5, 0, 0], np.zeros(7))
    independent = np.array([False, False, True, True, True])
    z = consensus_z(inp, np.array([0, 1]), np.array([0, 1]), "down", independent, np.ones(5))
    c = 2.5 / 3
    sd = np.sqrt((2 * (1 - c) ** 2 + (0.5 - c) ** 2) / 3)
    assert z[0] == pytest.approx(c / (sd / np.sqrt(3)))
    assert z[1] == -np.inf
    # pushing the item the way its independent raters already rate it is no contradiction
    assert consensus_z(inp, np.array([0, 1]), np.array([0]), "up", independent, np.ones(5))[0] < 0


def _warning_world(others: list[float]) -> IntegrityInputs:
    """8 accounts rate items 0 and 1 with 0 within 30 days; each item also has its own independent raters
    (``others``, each rating only that item and background items); 100 harsh background accounts."""
    rng = np.random.default_rng(5)
    users, items, ratings, times = [], [], [], []

    def add(u: int, it: int, r: float, t: float) -> None:
        users.append(u)
        items.append(it)
        ratings.append(r)
        times.append(t * DAY)

    for u in range(8):
        for it in (0, 1):
            add(u, it, 0.0, 100 + rng.uniform(0, 30))
    u = 8
    for it in (0, 1):
        for r in others:
            add(u, it, r, rng.uniform(0, 400))
            for b in rng.choice(np.arange(2, 40), 3, replace=False):
                add(u, int(b), 0.75, rng.uniform(0, 400))
            u += 1
    for _ in range(100):
        for b in rng.choice(np.arange(2, 40), 2, replace=False):
            add(u, int(b), 0.0, rng.uniform(0, 400))
        u += 1
    return _inputs(users, items, ratings, times)


def test_a_ring_must_contradict_its_targets_independent_raters() -> None:
    # a handful of split independent raters (mean 0.375, sd 0.41, 4 of them: z = 1.8 < 2): no
    # contradiction strong enough; with the test off, the same group is a ring
    few = _warning_world([1.0, 0.0, 0.0, 0.5])
    assert not detect_rings(few).rings
    assert detect_rings(few, consensus_z_min=0.0).rings
    # twenty independent raters who like the targets: the group pushes against them, a bombing ring
    many = _warning_world([1.0, 0.75] * 10)
    rings = detect_rings(many).rings
    assert rings and set(rings[0].members.tolist()) == set(range(8)) and rings[0].direction == "down"


@pytest.mark.parametrize("cohort_rating, flagged", [(0.875, False), (0.0, True)], ids=["agrees", "contradicts"])
def test_cohort_must_contradict_the_items_other_raters(cohort_rating: float, flagged: bool) -> None:
    rng = np.random.default_rng(3)
    n_h = 1000
    created = np.r_[rng.uniform(0, 4 * 365, n_h), np.full(12, 500.0) + rng.uniform(0, 1, 12)] * DAY
    users = np.r_[np.arange(n_h), np.arange(n_h, n_h + 12)]
    items = np.r_[rng.integers(0, 40, n_h), np.zeros(12, dtype=int)]
    times = created[users] + rng.uniform(30, 200, users.size) * DAY
    ratings = np.r_[np.full(n_h, 1.0) - rng.uniform(0, 0.25, n_h), np.full(12, cohort_rating)]
    inp = _inputs(users, items, ratings, times, user_created_at=created)
    off = cohort_concentration(inp, bucket_days=14, min_accounts=5, min_lift=10)
    on = cohort_concentration(inp, bucket_days=14, min_accounts=5, min_lift=10, consensus_z=3.0)
    assert (off.evidence[n_h:] > 0).all()
    assert (on.evidence[n_h:] > 0).all() == flagged
    assert (on.evidence[:n_h] > 0).sum() <= (off.evidence[:n_h] > 0).sum()


def test_review_inherits_its_authors_suspicion() -> None:
    from truescore.integrity.behaviour import behaviour_scores
    from truescore.integrity.suspicion import inherited_review_score

    # accounts 0 and 1 write identical reviews (same item pattern, rating, time); only their account
    # suspicion differs
    inp = _inputs([0, 1, 2, 3, 2, 3], [0, 0, 0, 0, 1, 1], [1.0, 1.0, 0.5, 0.5, 0.5, 0.5],
                  [0, 0, DAY, 2 * DAY, 3 * DAY, 4 * DAY])
    beh = behaviour_scores(inp)
    assert beh.review[0] == beh.review[1]
    b = inherited_review_score(np.array([0.9, 0.1, 0.3, 0.3]), beh, inp.user_idx)
    assert b[0] > b[1]
    assert ((b >= 0) & (b <= 1)).all()


def test_a_family_of_correlated_features_counts_once() -> None:
    from truescore.integrity.behaviour import account_weights

    all_six = ["few_reviews", "busiest_day_share", "short_tenure", "rating_deviation", "extremity", "low_reliability"]
    w = account_weights(all_six, disagreement_weight=3.0, extremity_weight=0.0)
    assert sum(w[f] for f in ("few_reviews", "busiest_day_share", "short_tenure")) == pytest.approx(1.0)
    assert w["rating_deviation"] == w["low_reliability"] == pytest.approx(1.5)
    assert w["extremity"] == 0.0
    # without a reliability fit the deviation carries the disagreement family's whole weight
    w = account_weights([f for f in all_six if f != "low_reliability"], disagreement_weight=3.0, extremity_weight=0.0)
    assert w["rating_deviation"] == pytest.approx(3.0) and "low_reliability" not in w


def test_disagreement_weight_moves_the_account_score_toward_the_deviating_account() -> None:
    from truescore.integrity.behaviour import behaviour_scores

    # account 0: one review, far from the item's other raters; account 1: one review that agrees; 2..21 agree
    rng = np.random.default_rng(0)
    users = np.r_[0, 1, np.repeat(np.arange(2, 22), 5)]
    items = np.r_[0, 0, rng.integers(0, 3, 100)]
    ratings = np.r_[0.0, 1.0, np.full(100, 1.0)]
    times = np.r_[0.0, 0.0, rng.uniform(0, 300, 100)] * DAY
    inp = _inputs(users, items, ratings, times)
    activity_only = behaviour_scores(inp, disagreement_weight=0.0, extremity_weight=0.0)
    assert activity_only.account[0] == activity_only.account[1]   # the same activity: no difference
    default = behaviour_scores(inp)
    assert default.account[0] > default.account[1]


def test_a_detector_that_fires_on_most_reviews_carries_no_weight() -> None:
    from truescore.integrity.suspicion import rarity_weight

    rare, common = 0.1, 0.5
    assert rarity_weight(np.r_[np.ones(5), np.zeros(95)], rare, common) == 1.0
    assert rarity_weight(np.r_[np.ones(30), np.zeros(70)], rare, common) == pytest.approx(0.5)
    assert rarity_weight(np.r_[np.ones(80), np.zeros(20)], rare, common) == 0.0
    assert rarity_weight(np.zeros(0), rare, common) == 1.0


def test_detector_share_settings_are_validated() -> None:
    from truescore.config import IntegritySettings

    with pytest.raises(ValueError, match="detector_rare_share"):
        IntegritySettings(detector_rare_share=0.6, detector_common_share=0.5)
