"""Rater.from_store and `truescore rate` on the worked example in a store (SQLite; PostgreSQL if available)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from test_trust_worked_example import NOW, SEED_HALF_LIFE, build_events  # pytest puts tests/ on sys.path
from truescore.domain import Flag, FlagReason, TrustEdge
from truescore.jobs import rater_from_store
from truescore.store import Store
from truescore.trust import Rater


@pytest.fixture
def xps_url(store_url: str) -> str:
    """The worked example in a store (SQLite, and PostgreSQL when the conftest finds a server)."""
    url = store_url
    events = build_events()
    with Store.open(url) as store:
        store.add_users(events["users"])
        store.add_items(events["items"])
        store.add_reviews(events["reviews"])
        store.add_votes(events["votes"])
        store.add_trust(events["trust"])
        # a superseded statement: the store keeps both, the latest (0.72 above) must win
        store.add_trust([TrustEdge("bob", "dave", "reviews.public.technology.laptops", 0.1, NOW.replace(year=2024))])
        store.add_flags([Flag("xps-eve", "mod", FlagReason.SPAM, 1.0, NOW)])
    return url


def test_from_store_equals_from_events(xps_url: str):
    with Store.open(xps_url) as store:
        from_store = rater_from_store(store, SEED_HALF_LIFE).effective_rating("laptop-xps15", "alice", at=NOW)
    from_events = Rater.from_events(**build_events(), settings=SEED_HALF_LIFE).effective_rating(
        "laptop-xps15", "alice", at=NOW
    )
    assert round(from_store.rating, 2) == 4.47
    assert from_store.rating == pytest.approx(from_events.rating, abs=1e-12)
    assert [c.review_id for c in from_store.contributions] == [c.review_id for c in from_events.contributions]
    assert from_store.anonymous_baseline_rating == pytest.approx(from_events.anonymous_baseline_rating)


def test_cli_rate_prints_a_table_with_paths_and_json_with_seed_names(xps_url: str, monkeypatch):
    from rich.console import Console

    import truescore.cli as cli
    from truescore.cli import app

    monkeypatch.setattr(cli, "console", Console(width=200))  # the runner's terminal is 80 wide
    runner = CliRunner()
    table = runner.invoke(app, ["rate", "laptop-xps15", "--observer", "alice", "--db", xps_url])
    assert table.exit_code == 0, table.output
    assert "alice -> bob -> dave" in table.output
    assert "contributions" in table.output and "based on 3 trusted reviews" in table.output
    out = runner.invoke(app, ["rate", "laptop-xps15", "--observer", "alice", "--json", "--db", xps_url])
    assert out.exit_code == 0, out.output
    payload = json.loads(out.output)
    assert payload["contributing_reviews"] == 3 and payload["product"] == "laptop-xps15"
    dave = next(c for c in payload["contributions"] if c["reviewer"] == "dave")
    assert dave["top_intermediary_quid"] == "bob" and dave["path"] == ["alice", "bob", "dave"]
    for key in ("T", "H", "A", "R", "weight", "review_id", "rating"):
        assert key in dave
    for key in ("anonymous_baseline_rating", "personalization_delta", "confidence_pct", "polarization"):
        assert key in payload


def test_cli_rate_unknown_item_is_one_readable_error(xps_url: str):
    from truescore.cli import app

    result = CliRunner().invoke(app, ["rate", "nope", "--observer", "alice", "--db", xps_url])
    assert result.exit_code != 0
    assert "item_id 'nope'" in str(result.exception or result.output)


def test_a_rater_built_from_a_store_takes_new_events(tmp_path) -> None:
    """Store frames carry extra columns; events added afterwards need only the index's own columns."""
    from datetime import UTC, datetime

    from truescore.domain import Flag, FlagReason, Item, Review, TrustEdge, User, UserRole, Vote
    from truescore.store import Store

    now = datetime(2025, 1, 1, tzinfo=UTC)
    store = Store.open(f"sqlite:///{tmp_path / 'r.db'}")
    store.add_items([Item("x", "reviews.public.books")])
    store.add_reviews([Review("r1", "x", "bob", 4.0, now, is_recommended=True)])
    store.add_trust([TrustEdge("alice", "bob", "reviews.public.books", 1.0, now)])
    rater = rater_from_store(store)
    rater.add_reviews([Review("r2", "x", "carol", 2.0, now)])
    rater.add_trust_edge(TrustEdge("alice", "carol", "reviews.public.books", 1.0, now))
    rater.add_votes([Vote("r1", "carol", True, now)])
    rater.add_flags([Flag("r2", "mod", FlagReason.SPAM, 1.0, now)])
    rater.add_users([User("mod", now, role=UserRole.MODERATOR)])
    result = rater.effective_rating("x", "alice", at=now)
    assert result.contributing_reviews == 2 and result.rating is not None
