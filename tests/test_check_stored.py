"""``truescore check``: rows stored before a write rule existed are found and named (issue 20's leftover)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text
from typer.testing import CliRunner

from test_api_endpoints import build_world
from truescore.cli import app
from truescore.config import load_settings
from truescore.store import Store
from truescore.store.ingest import check_stored


def _plant(store: Store) -> None:
    """Rows as an older release could store them, written past today's rules with plain SQL."""
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE trust SET level = 50 WHERE truster_id = 'alice' AND trustee_id = 'bob'"))
        conn.execute(text("UPDATE reviews SET min_rating = 999999, max_rating = 1000000, rating = 1000000 "
                          "WHERE id = 'r-eve'"))
        conn.execute(text("INSERT INTO users (id, created_at, role) VALUES ('u33 ', 0, 'person')"))


def test_check_names_each_stored_row_that_the_rules_refuse(store: Store) -> None:
    build_world(store)
    settings = load_settings(allowed_scales=[[1, 5], [1, 10]])
    assert check_stored(store, settings=settings) == []
    _plant(store)
    problems = check_stored(store, settings=settings)
    found = {(p.table, p.key if isinstance(p.key, str) else p.key[:2], p.field) for p in problems}
    assert ("trust", ("alice", "bob"), "level") in found
    assert ("users", "u33 ", "id") in found
    assert any(p.table == "reviews" and p.key == "r-eve" for p in problems)
    assert len(check_stored(store, ["trust"], settings=settings)) == 1
    assert len(check_stored(store, settings=settings, limit=1)) == 1


def test_the_command_lists_them_and_exits_1(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    store = Store.open(url)
    build_world(store)
    runner = CliRunner()
    clean = runner.invoke(app, ["check", "--db", url])
    assert clean.exit_code == 0 and "passes today's write rules" in clean.output
    _plant(store)
    store.close()
    out = runner.invoke(app, ["check", "--db", url, "--kind", "trust", "--kind", "users"])
    assert out.exit_code == 1
    assert "trust ('alice', 'bob'" in out.output and "field level" in out.output
    assert "users 'u33 ', field id" in out.output
    assert runner.invoke(app, ["check", "--db", url, "--kind", "verdicts"]).exit_code != 0
