"""``truescore fit``: reads the store, fits, writes the derived tables, prints the tables."""

from __future__ import annotations

from pathlib import Path

import pytest

from truescore.store import Store
from truescore.synth import SynthConfig, generate

from conftest import run_cli


@pytest.fixture
def synth_db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'fit.db'}"
    world = generate(SynthConfig(n_users=300, n_items=40, n_ratings=3000, seed=3, with_text=False))
    with Store.open(url) as store:
        world.write(store)
    return url


def test_fit_writes_the_derived_tables_and_prints(synth_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(["fit", "--db", synth_db, "--top", "3"], capsys)
    assert code == 0, err
    assert "vb-1:" in out and "top items" in out and "least reliable raters" in out
    with Store.open(synth_db) as store:
        items = store.read_derived("item_quality")
        users = store.read_derived("user_reliability")
        assert len(items) == 40 and len(users) == store.review_frame()["user_id"].nunique()
        assert {r["model_version"] for r in items} == {"vb-1"}
        assert all(1.0 - 4.0 <= r["quality"] <= 5.0 + 4.0 for r in items)
        assert all(r["reliability_lo"] < r["reliability"] < r["reliability_hi"] for r in users)


def test_fit_by_topic_and_bad_backend(synth_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(["fit", "--db", synth_db, "--topic", "reviews.public.technology", "--top", "0"], capsys)
    assert code == 0, err
    assert "vb-1:" in out and "top items" not in out
    with Store.open(synth_db) as store:
        topics = {row["id"]: row for row in store.read_table("items").to_dict("records")}
        rows = store.read_derived("item_quality")
        assert rows and all(topics[r["item_id"]]["topic"].startswith("reviews.public.technology") for r in rows)
    code, _, err = run_cli(["fit", "--db", synth_db, "--backend", "sgd"], capsys)
    assert code == 1 and "backend" in err
