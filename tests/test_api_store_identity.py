"""A server whose store vanished or was replaced acknowledges nothing (503), and a server sees derived results
another process wrote (issue 20, items 6 and 7).

Before: with the SQLite file (and -wal, -shm) of a running server deleted, 5 of 5 writes answered 201 and
``/health`` stayed 200, and at restart the store was gone; a PostgreSQL database dropped and created anew
answered 500 (ProgrammingError) on every route; a `truescore fit` or `rank` from the CLI was not seen by a
running server until some unrelated write arrived.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from test_api_endpoints import build_world
from truescore.api import create_app
from truescore.config import load_settings
from truescore.jobs import rank_store, run_fit, run_integrity
from truescore.store import Store, service

REVIEW = {"id": "r-new", "item_id": "lamp", "user_id": "alice", "rating": 4.0}


def _client(store: Store, **api: Any) -> TestClient:
    return TestClient(create_app(store, load_settings(api={"refresh_seconds": 0, "summary_ttl_seconds": 0, **api})))


def test_a_deleted_sqlite_store_answers_503_and_acknowledges_no_write(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = Store.open(f"sqlite:///{path}")
    build_world(store)
    key = service.create_key(store, "alice", user_id="alice")[1]
    client = _client(store)
    assert client.get("/health").status_code == 200
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    for k in range(5):
        r = client.post("/reviews", json={**REVIEW, "id": f"r-new{k}"}, headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 503, r.text
        assert "deleted or moved" in r.json()["detail"]
    health = client.get("/health")
    assert health.status_code == 503 and "deleted" in health.json()["detail"]
    assert client.get("/items/lamp").status_code == 503  # no cached numbers of a store that is no more
    assert not path.exists()


def test_a_replaced_sqlite_file_is_noticed(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = Store.open(f"sqlite:///{path}")
    build_world(store)
    client = _client(store)
    other = tmp_path / "other.db"
    Store.open(f"sqlite:///{other}").close()
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    os.replace(other, path)
    assert client.get("/health").status_code == 503
    with pytest.raises(Exception, match="replaced"):
        store.add_reviews([])  # nothing to write, but the transaction still checks what it writes to
        with store.transaction():
            pass


@pytest.mark.postgres
def test_a_dropped_or_recreated_postgres_database_answers_503(pg_url: str) -> None:
    store = Store.open(pg_url)
    build_world(store)
    key = service.create_key(store, "alice", user_id="alice")[1]
    client = _client(store)
    assert client.get("/items/lamp").status_code == 200
    schema = pg_url.split("search_path%3D", 1)[1]
    engine = create_engine(pg_url.split("?", 1)[0])
    with engine.begin() as conn:  # the database dropped and created empty under the server
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    for path in ("/health", "/items/lamp", "/rankings", "/items/lamp/integrity"):
        r = client.get(path)
        assert r.status_code == 503, (path, r.status_code, r.text)
    r = client.post("/reviews", json=REVIEW, headers={"Authorization": f"Bearer {key}"})
    assert r.status_code in (401, 503), r.text  # the key's table is gone too: never a 201, never a 500
    Store.open(pg_url).close()  # created anew: another store under the same name
    r = client.get("/health")
    assert r.status_code == 503 and "replaced" in r.json()["detail"], r.text
    engine.dispose()


def test_a_fit_and_rank_by_another_process_are_seen_within_the_refresh_interval(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    store = Store.open(url)
    build_world(store)
    client = _client(store, refresh_seconds=0.2)
    with client:  # the lifespan starts the refresher
        assert client.get("/rankings").json()["data"] == []
        quality = client.get("/items/lamp").json()
        other = Store.open(url)  # another process: the CLI's `truescore fit`, `score`, `rank`
        run_fit(other)
        run_integrity(other)
        rank_store(other, write=True)
        deadline = time.monotonic() + 10
        while client.get("/rankings").json()["data"] == [] and time.monotonic() < deadline:
            time.sleep(0.1)
        data = client.get("/rankings").json()["data"]
        assert {row["item_id"] for row in data} == {"lamp", "pan"}
        assert client.get("/items/lamp").json() != quality  # the summary carries the new fit
