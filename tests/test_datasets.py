"""Every reference data set loads through its preset with the row counts of ../shared/data/README.md."""

from __future__ import annotations

import pytest

from truescore.store import Store
from truescore.store.datasets import load_preset

from conftest import require_data


@pytest.fixture
def mem_store(tmp_path) -> Store:
    return Store.open(f"sqlite:///{tmp_path / 'ds.db'}")


def _distinct(store: Store, sql: str) -> int:
    with store.engine.connect() as conn:
        return int(conn.exec_driver_sql(sql).scalar_one())


def test_bitcoin_otc(mem_store: Store) -> None:
    root = require_data("bitcoin-otc").parent
    report = load_preset(mem_store, "bitcoin-otc", root)
    assert report.rows_read["reviews"] == 35_592 and report.inserted["reviews"] == 35_592
    people = _distinct(mem_store, "SELECT count(*) FROM (SELECT user_id FROM reviews "
                                  "UNION SELECT item_id FROM reviews)")
    assert people == 5_881
    snap = mem_store.snapshot()
    assert snap.rating.min() == 0.0 and snap.rating.max() == 1.0  # -10..+10 normalised
    assert report.inserted["trust"] == report.rows_read["trust"] > 0


def test_crowd_emotion(mem_store: Store) -> None:
    root = require_data("crowd-emotion").parent
    report = load_preset(mem_store, "crowd-emotion", root)
    assert report.inserted["reviews"] == 7_000
    snap = mem_store.snapshot()
    assert (snap.n_items, snap.n_users) == (700, 38)
    assert set(snap.item_min) == {-100} and set(snap.item_max) == {100}


def test_filmtrust(mem_store: Store) -> None:
    root = require_data("filmtrust").parent
    report = load_preset(mem_store, "filmtrust", root)
    assert report.rows_read["reviews"] == 35_497
    assert report.inserted["reviews"] == 35_497 - 3  # the README's 3 duplicate (user, film) pairs, stored once
    assert report.inserted["trust"] == 1_853


def test_amazon_musical_instruments(mem_store: Store) -> None:
    root = require_data("amazon-musical-instruments").parent
    report = load_preset(mem_store, "amazon-musical-instruments", root)
    assert report.inserted["reviews"] == 10_261
    snap = mem_store.snapshot()
    assert (snap.n_users, snap.n_items) == (1_429, 900)
    frame = mem_store.review_frame()
    assert (frame["text"].fillna("") == "").sum() == 7  # the README's 7 empty texts
    assert report.inserted["votes"] > 0


def test_amazon_fashion(mem_store: Store) -> None:
    root = require_data("amazon-fashion").parent
    report = load_preset(mem_store, "amazon-fashion", root)
    assert report.rows_read["reviews"] == 3_176
    imp = report.imports["reviews"]
    # rows without stars are rejected with a reason; exact repeats are stored once
    assert imp.rows_rejected == len({e.row for e in imp.errors}) >= 1
    assert all(e.field == "rating" for e in imp.errors)
    assert 0 < report.inserted["reviews"] <= 3_176 - imp.rows_rejected
    assert mem_store.review_frame()["verified_purchase"].notna().all()


def test_unknown_preset(mem_store: Store) -> None:
    with pytest.raises(ValueError, match="unknown data set"):
        load_preset(mem_store, "imdb")
