"""Issue 21 item 3, learning from moderation: the ``verdicts`` event kind at every door (importer, API, library),
its audit and erasure, and the learner (``truescore.integrity.moderation``): nothing changes without verdicts,
and a labelled row is never scored with its own label.

The store tests run on SQLite and PostgreSQL (the ``store`` fixture).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sklearn.metrics import roc_auc_score
from sqlalchemy import select

from truescore.api import create_app
from truescore.config import ConfigError, ModerationSettings, load_settings
from truescore.domain import Review, RowsRefused, Verdict, VerdictLabel
from truescore.integrity.moderation import _boost, cross_fit, verdict_labels
from truescore.integrity.runner import integrity_from_frame
from truescore.jobs import build_report, run_integrity
from truescore.store import Store, integrity_io, schema, service
from truescore.synth import SynthConfig, generate

from conftest import run_cli


def db_url(store: Store) -> str:
    return store.engine.url.render_as_string(hide_password=False)


def small_store(store: Store) -> None:
    store.add_reviews([Review("r1", "lamp", "ann", 5.0), Review("r2", "lamp", "bob", 1.0),
                       Review("r3", "desk", "cy", 4.0), Review("r4", "desk", "ann", 5.0)])


def verdicts(store: Store) -> list[tuple[str, str, str, str]]:
    df = store.verdict_frame()
    return sorted(zip(df["target"], df["target_id"], df["moderator_id"], df["verdict"], strict=True))


# ------------------------------------------------------------------------------------------ the importer
def test_import_a_good_file_in_one_transaction_with_its_audit_row(store: Store, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    small_store(store)
    path = tmp_path / "v.csv"
    path.write_text("review_id,user_id,verdict,moderator_id,created_at\nr1,,fake,mo,2026-01-01T00:00:00Z\n"
                    ",bob,GENUINE,,\nr3,,genuine,mo,\n", encoding="utf-8")
    code, _, err = run_cli(["import", str(path), "--kind", "verdicts", "--db", db_url(store)], capsys)
    assert code == 0, err
    assert verdicts(store) == [("review", "r1", "mo", "fake"), ("review", "r3", "mo", "genuine"),
                               ("user", "bob", "", "genuine")]
    (row,) = service.list_audit(store)
    assert (row["action"], row["kind"], row["n"]) == ("import", "verdicts", 3)
    # the JSON Lines and Parquet forms of the same file are read the same way
    jl = tmp_path / "v.jsonl"
    jl.write_text('{"user_id": "cy", "verdict": "fake", "moderator_id": "mo"}\n', encoding="utf-8")
    code, _, err = run_cli(["import", str(jl), "--kind", "verdicts", "--db", db_url(store)], capsys)
    assert code == 0, err
    pq = tmp_path / "v.parquet"
    pd.DataFrame({"review_id": ["r4"], "verdict": ["fake"]}).to_parquet(pq)
    code, _, err = run_cli(["import", str(pq), "--kind", "verdicts", "--db", db_url(store)], capsys)
    assert code == 0, err
    assert ("user", "cy", "mo", "fake") in verdicts(store) and ("review", "r4", "", "fake") in verdicts(store)
    out_csv = tmp_path / "export.csv"
    code, _, err = run_cli(["export", "verdicts", "--out", str(out_csv), "--db", db_url(store)], capsys)
    assert code == 0, err
    assert len(pd.read_csv(out_csv)) == 5


def test_import_bad_rows_are_named_and_nothing_is_written(store: Store, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    small_store(store)
    path = tmp_path / "bad.csv"
    path.write_text("review_id,user_id,verdict,moderator_id\nr1,,fake,mo\nr1,ann,fake,mo\n,,fake,mo\n"
                    "r2,,spam,mo\nr404,,fake,mo\n,nobody,genuine,mo\nr3,,,mo\nr3,,fake,a/b\n", encoding="utf-8")
    code, out, err = run_cli(["import", str(path), "--kind", "verdicts", "--db", db_url(store)], capsys)
    text = " ".join((out + err).split())
    assert code != 0
    assert "7 of 8 rows are invalid, nothing was imported" in text
    assert "row 2, field user_id: give exactly one of review_id and user_id" in text
    assert "row 3, field review_id: missing: give exactly one of review_id" in text
    assert "row 4, field verdict: 'spam' is not one of fake, genuine" in text
    assert "row 5, field review_id: review 'r404' is not in the store" in text
    assert "and 2 more" in text
    assert store.counts()["verdicts"] == 0 and service.list_audit(store) == []  # row 1 was good: one transaction
    from truescore.store.ingest import ImportValidationError, import_file

    with pytest.raises(ImportValidationError) as exc:
        import_file(store, path, "verdicts")
    fields = {(e.row, e.field) for e in exc.value.errors}
    assert {(6, "user_id"), (7, "verdict"), (8, "moderator_id")} <= fields
    assert "user 'nobody' is not in the store" in " ".join(e.reason for e in exc.value.errors)


def test_a_later_verdict_by_the_same_moderator_replaces_the_earlier_one(store: Store) -> None:
    small_store(store)
    assert store.add_verdicts([Verdict(VerdictLabel.FAKE, review_id="r1", moderator_id="mo", created_at=_t(10)),
                               Verdict(VerdictLabel.FAKE, review_id="r1", moderator_id="other", created_at=_t(10))]
                              ) == 2
    store.add_verdicts([Verdict(VerdictLabel.GENUINE, review_id="r1", moderator_id="mo", created_at=_t(20))])
    assert verdicts(store) == [("review", "r1", "mo", "genuine"), ("review", "r1", "other", "fake")]
    # an earlier verdict does not replace a later one
    store.add_verdicts([Verdict(VerdictLabel.FAKE, review_id="r1", moderator_id="mo", created_at=_t(15))])
    assert ("review", "r1", "mo", "genuine") in verdicts(store)
    # in one write too (PostgreSQL's bulk path): the latest of a repeated key wins, whatever its position
    store.add_verdicts([Verdict(VerdictLabel.FAKE, user_id="bob", moderator_id="mo", created_at=_t(30)),
                        Verdict(VerdictLabel.GENUINE, user_id="bob", moderator_id="mo", created_at=_t(25))])
    assert ("user", "bob", "mo", "fake") in verdicts(store)


def _t(day: int) -> Any:
    from datetime import UTC, datetime, timedelta

    return datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=day)


def test_the_library_refuses_what_the_importer_refuses(store: Store) -> None:
    small_store(store)
    with pytest.raises(RowsRefused) as exc:
        store.add_verdicts([Verdict(VerdictLabel.FAKE, review_id="r404"), Verdict(VerdictLabel.FAKE)])
    text = str(exc.value)
    assert "row 1, field review_id: review 'r404' is not in the store" in text
    assert "row 2, field review_id: missing: give exactly one of review_id" in text
    with pytest.raises(RowsRefused, match="give exactly one of review_id and user_id"):
        store.add_verdicts([Verdict(VerdictLabel.FAKE, review_id="r1", user_id="ann")])
    assert store.counts()["verdicts"] == 0


# ------------------------------------------------------------------------------------------ the API
@pytest.fixture
def api(store: Store) -> Any:
    small_store(store)
    keys = {name: service.create_key(store, name, user_id=user, scopes=scopes)[1]
            for name, user, scopes in (("writer", "wes", ["write"]), ("mod", "mo", ["moderate"]),
                                       ("admin", None, ["admin"]))}
    with TestClient(create_app(store, load_settings(api={"refresh_seconds": 0, "summary_ttl_seconds": 0}))) as c:
        yield c, {k: {"Authorization": f"Bearer {v}"} for k, v in keys.items()}


def test_post_verdicts_needs_the_moderate_or_admin_scope(store: Store, api: Any) -> None:
    client, auth = api
    body = {"review_id": "r1", "verdict": "fake"}
    r = client.post("/verdicts", json=body, headers=auth["writer"])
    assert r.status_code == 403 and "'moderate' or 'admin' scope" in r.json()["detail"], r.text
    assert client.post("/verdicts", json=body).status_code == 401
    r = client.post("/verdicts", json=body, headers=auth["mod"])
    assert r.status_code == 201, r.text
    assert r.json() == {"kind": "verdicts", "received": 1, "inserted": 1}
    # a moderate key writes as its own user only
    r = client.post("/verdicts", json={**body, "moderator_id": "someone"}, headers=auth["mod"])
    assert r.status_code == 403, r.text
    r = client.post("/verdicts", json=[{"user_id": "bob", "verdict": "genuine", "moderator_id": "boss"},
                                       {"review_id": "r2", "verdict": "FAKE"}], headers=auth["admin"])
    assert r.status_code == 201 and r.json()["inserted"] == 2, r.text
    assert verdicts(store) == [("review", "r1", "mo", "fake"), ("review", "r2", "", "fake"),
                               ("user", "bob", "boss", "genuine")]
    audit = [a for a in service.list_audit(store) if a["kind"] == "verdicts"]
    assert [(a["action"], a["n"], a["refs"]) for a in audit] == [
        ("write", 2, [["user", "bob", "boss"], ["review", "r2", ""]]), ("write", 1, [["review", "r1", "mo"]])]
    assert audit[1]["user_id"] == "mo"


@pytest.mark.parametrize("body", [
    {"review_id": "r1", "user_id": "ann", "verdict": "fake"}, {"verdict": "fake"}, {"review_id": "r1"},
    {"review_id": "r1", "verdict": "maybe"}, {"review_id": "r404", "verdict": "fake"},
    {"user_id": "nobody", "verdict": "fake"}, {"review_id": 5, "verdict": "fake"}, {"review_id": "", "verdict": "fake"},
    {"review_id": "a/b", "verdict": "fake"}, {"review_id": "r1", "verdict": "fake", "created_at": "yesterday"},
    {"review_id": "r1", "verdict": None}, [], [{"review_id": "r1", "verdict": "fake"}, "x"], "fake", None,
    {"review_id": "r1", "verdict": "fake", "extra": 1},
])
def test_bad_verdict_bodies_are_4xx_never_500(store: Store, api: Any, body: Any) -> None:
    client, auth = api
    r = client.post("/verdicts", json=body, headers=auth["admin"])
    assert 400 <= r.status_code < 500 or (body == [] and r.status_code == 201), (r.status_code, r.text)
    assert store.counts()["verdicts"] == 0


# ------------------------------------------------------------------------------------------ erasure
def test_erasure_removes_verdicts_about_the_user_their_reviews_and_those_they_gave(store: Store, api: Any) -> None:
    client, auth = api
    store.add_verdicts([Verdict(VerdictLabel.FAKE, review_id="r1", moderator_id="cy"),   # on ann's review
                        Verdict(VerdictLabel.FAKE, user_id="ann", moderator_id="cy"),    # on ann
                        Verdict(VerdictLabel.GENUINE, review_id="r3", moderator_id="ann"),  # given by ann
                        Verdict(VerdictLabel.FAKE, review_id="r2", moderator_id="cy")])  # stays
    r = client.delete("/users/ann", headers=auth["admin"])
    assert r.status_code == 200, r.text
    assert r.json()["verdicts"] == 3
    assert verdicts(store) == [("review", "r2", "cy", "fake")]
    with store.engine.connect() as conn:
        cells = [v for row in conn.execute(select(schema.verdicts)).all() for v in row]
    assert "ann" not in cells and "r1" not in cells and "r4" not in cells
    # deleting a review removes the verdicts on it
    assert service.delete_review(store, "r2") is not None
    assert store.counts()["verdicts"] == 0


def test_the_erase_job_removes_them_too(store: Store) -> None:
    from truescore.jobs import erase_user

    small_store(store)
    store.add_verdicts([Verdict(VerdictLabel.FAKE, user_id="bob", moderator_id="cy"),
                        Verdict(VerdictLabel.FAKE, user_id="ann", moderator_id="bob")])
    report = erase_user(store, "bob", refit=False)
    assert report.erasure.verdicts == 2 and store.counts()["verdicts"] == 0


# ------------------------------------------------------------------------------------------ learning
@pytest.fixture(scope="module")
def world() -> Any:
    return generate(SynthConfig(n_users=1200, n_items=150, n_ratings=10_000, with_text=False, seed=3))


def _synth_store(world: Any, url: str) -> Store:
    s = Store.open(url)
    world.write(s)
    return s


def _bots(world: Any) -> np.ndarray:
    return np.char.startswith(world.truth.user_kind.astype(str), "bot")


def _label_sample(world: Any, share: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    bots = _bots(world)
    lab = np.zeros(world.n_users, dtype=bool)
    for cls in (bots, ~bots):
        idx = np.flatnonzero(cls)
        lab[rng.choice(idx, round(idx.size * share), replace=False)] = True
    return lab


def _stored(store: Store) -> tuple[pd.Series, pd.Series]:
    rs = pd.DataFrame(store.read_derived("review_scores")).set_index("review_id")["suspicion"]
    ur = pd.DataFrame(store.read_derived("user_reliability")).set_index("user_id")["suspicion"]
    return rs.sort_index(), ur.sort_index()


def test_without_verdicts_nothing_changes_bit_for_bit(world: Any, tmp_path: Path) -> None:
    s = _synth_store(world, f"sqlite:///{tmp_path / 'a.db'}")
    cfg = load_settings()
    report = run_integrity(s, settings=cfg)
    assert report.moderation is None and "moderation" not in s.last_run("integrity")["details"]
    # the engine's own answer on the same inputs, the path from before verdicts existed
    reviews = integrity_io.review_columns(s, with_text=s.has_text())
    users = integrity_io.table_columns(s, "users", ["id", "created_at"])
    rel = integrity_io.table_columns(s, "user_reliability", ["user_id", "reliability_lo"])
    lo = pd.Series(rel["reliability_lo"].to_numpy(float), index=rel["user_id"].to_numpy(object))
    direct, snap = integrity_from_frame(reviews, users=users, reliability_lo=lo, settings=cfg)
    assert np.array_equal(report.result.review_suspicion, direct.review_suspicion)
    assert np.array_equal(report.result.account_suspicion, direct.account_suspicion)
    rs, ur = _stored(s)
    assert np.array_equal(rs.reindex(snap.review_ids).to_numpy(float), direct.review_suspicion)
    assert np.array_equal(ur.reindex(snap.user_ids).to_numpy(float), direct.account_suspicion)
    # too few labels of a class: nothing changes either, and the report says why
    s.add_verdicts([Verdict(VerdictLabel.FAKE, user_id=f"u{k}", moderator_id="mo")
                    for k in np.flatnonzero(_bots(world))[:3]])
    again = run_integrity(s, settings=cfg)
    assert again.moderation is not None and not again.moderation.applied
    assert "at least 10 of each are needed" in again.moderation.accounts.reason
    assert all(a.equals(b) for a, b in zip(_stored(s), (rs, ur), strict=True))
    assert "Learning from moderation" in build_report(s, cfg)


def test_verdicts_are_learned_from_and_recorded(world: Any, store_url: str) -> None:
    s = _synth_store(world, store_url)
    cfg = load_settings()
    base = run_integrity(s, settings=cfg)
    lab = _label_sample(world, 0.1, seed=0)
    bots = _bots(world)
    s.add_verdicts([Verdict(VerdictLabel.FAKE if bots[k] else VerdictLabel.GENUINE, user_id=f"u{k}",
                            moderator_id="mo") for k in np.flatnonzero(lab) if s.get_user(f"u{k}") is not None])
    report = run_integrity(s, settings=cfg)
    m = report.moderation
    assert m is not None and m.reviews.applied and m.accounts.applied
    details = s.last_run("integrity")["details"]["moderation"]
    assert details["verdicts"] == m.labels.n_verdicts > 0
    assert None not in (details["accounts"]["auc_learned_oof"], details["accounts"]["auc_unsupervised_oof"])
    # on the 90% never labelled, the learned suspicion ranks the bots better than the unsupervised one
    snap = report.snapshot
    k = np.array([int(u[1:]) for u in snap.user_ids])
    held = ~lab[k]
    y = bots[k]
    assert roc_auc_score(y[held], report.result.account_suspicion[held]) > \
        roc_auc_score(y[held], base.result.account_suspicion[held]) + 0.05
    # a probability: the stored suspicion is what was learned, in [0, 1]
    _, ur = _stored(s)
    assert np.allclose(ur.reindex(snap.user_ids).to_numpy(float), report.result.account_suspicion)
    assert ((report.result.review_suspicion >= 0) & (report.result.review_suspicion <= 1)).all()
    page = build_report(s, cfg)
    assert "Learning from moderation" in page and "AUC learned (out-of-fold)" in page


def test_labels_propagate_and_ties_are_no_label() -> None:
    v = pd.DataFrame({"target": ["review", "user", "review", "review", "user"],
                      "target_id": ["a1", "u2", "b1", "b1", "u9"],
                      "moderator_id": ["m", "m", "m", "n", "m"],
                      "verdict": ["fake", "fake", "fake", "genuine", "fake"]})
    lab = verdict_labels(v, ["a1", "a2", "b1", "c1"], ["u1", "u2", "u3"], [0, 0, 1, 2])
    # a1 fake -> its author u1 counts as fake (a2 inherits no such derived label); b1's own verdicts tie (no
    # label of its own), so it inherits its author u2's account verdict; c1 has none
    assert lab.account.tolist()[:2] == [1.0, 1.0] and np.isnan(lab.account[2])
    assert lab.review[0] == 1.0 and np.isnan(lab.review[1]) and lab.review[2] == 1.0 and np.isnan(lab.review[3])
    assert lab.n_verdicts == 4 and lab.n_account_verdicts == 1  # the verdict on u9 (not in the snapshot) is left out


# ------------------------------------------------------------------------------------------ leakage
def _noise(n_groups: int = 150, per: int = 3, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    group = np.repeat(np.arange(n_groups), per)
    x = pd.DataFrame(rng.normal(size=(group.size, 6)), columns=[f"f{k}" for k in range(6)])
    y = rng.integers(0, 2, group.size).astype(float)
    return x, y, group


def test_noise_labels_give_chance_out_of_fold_while_in_sample_would_be_perfect() -> None:
    x, y, group = _noise()
    cfg = ModerationSettings()
    fit = cross_fit(x, y, group, int(group.max()) + 1, cfg)
    oof = roc_auc_score(y, fit.prob)
    in_sample = roc_auc_score(y, _boost(x.to_numpy(float), y, cfg).predict_proba(x.to_numpy(float))[:, 1])
    assert abs(oof - 0.5) < 0.1, oof
    assert in_sample > 0.95, in_sample
    # a review's fold is its author's fold
    assert all(np.unique(fit.fold[group == g]).size == 1 for g in range(int(group.max()) + 1))


def test_a_labelled_row_does_not_follow_its_own_label() -> None:
    x, y, group = _noise(seed=1)
    cfg = ModerationSettings()
    n_groups = int(group.max()) + 1
    before = cross_fit(x, y, group, n_groups, cfg)
    # a genuine row in a group that has a fake row too (so the folds, dealt by group, stay the same)
    j = next(k for k in range(y.size) if y[k] == 0 and (y[group == group[k]] == 1).any())
    flipped = y.copy()
    flipped[j] = 1.0
    after = cross_fit(x, flipped, group, n_groups, cfg)
    assert np.array_equal(before.fold, after.fold)
    assert before.raw[j] == after.raw[j]  # its score comes from the model trained without it: unchanged
    assert abs(after.prob[j] - before.prob[j]) < 0.05  # the calibration (other folds') moves it at most a little
    # whereas the rows of other folds, whose models trained on row j, may follow it
    assert not np.array_equal(before.raw[before.fold != before.fold[j]], after.raw[after.fold != after.fold[j]])


def test_the_settings_are_validated() -> None:
    with pytest.raises(ConfigError, match=r"moderation\.folds"):
        load_settings(moderation={"folds": 1})
    with pytest.raises(ConfigError, match=r"moderation\.min_labels_per_class"):
        load_settings(moderation={"min_labels_per_class": 0})
    assert load_settings().moderation.folds == 5


def test_a_level_whose_model_does_not_beat_the_unsupervised_score_out_of_fold_is_left_alone() -> None:
    from truescore.integrity.moderation import _level

    x, y, group = _noise(seed=2)
    rng = np.random.default_rng(0)
    unsup = np.clip(0.3 + 0.4 * y + 0.01 * rng.random(y.size), 0, 1)  # already ranks every label right
    out, outcome = _level("accounts", x, y, group, int(group.max()) + 1, unsup, 0.6, ModerationSettings())
    assert not outcome.applied and "no better than the unsupervised suspicion" in outcome.reason
    assert out is unsup and outcome.auc_unsupervised == 1.0
    applied, _ = _level("accounts", x, y, group, int(group.max()) + 1, unsup, 0.6,
                        ModerationSettings(require_gain=False))
    assert not np.array_equal(applied, unsup)
