"""Erasure forgets every id of the user (issue 20, item 3): audit rows, other keys' audit refs, ring members,
the user's keys; and the refit it starts succeeds.

Before: after ``DELETE /users/{id}`` with the user's own key, 3 audit rows still named the user (and other
keys' audit rows held it in ``refs``), a ring's ``members`` kept it (public on ``/rings``), and the key stayed
live and at once re-created the user with a 201.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from test_api_endpoints import build_world
from truescore.api import create_app
from truescore.config import load_settings
from truescore.jobs import erase_user, run_fit
from truescore.store import Store, schema, service
from truescore.store.integrity_io import replace_rings

from conftest import run_cli

#: an id that no other value of the store contains, so a scan of every cell finds it if anything kept it
WHO = "zq-erasable-7"


def _cells_naming(store: Store, needle: str) -> list[tuple[str, str, Any]]:
    """Every (table, column, value) of the store whose text contains ``needle``."""
    found = []
    with store.engine.connect() as conn:
        for table in schema.metadata.sorted_tables:
            for row in conn.execute(select(table)).mappings():
                for col, value in row.items():
                    if value is not None and needle in str(value):
                        found.append((table.name, col, value))
    return found


def _world_with_traces(store: Store) -> tuple[str, str]:
    build_world(store)
    mine = service.create_key(store, "mine", user_id=WHO)[1]
    admin = service.create_key(store, "admin")[1]
    client = TestClient(create_app(store, load_settings(api={"refresh_seconds": 0, "summary_ttl_seconds": 0})))
    auth = {"Authorization": f"Bearer {mine}"}
    assert client.post("/reviews", json={"id": "zq-r1", "item_id": "lamp", "user_id": WHO, "rating": 5.0},
                       headers=auth).status_code == 201
    assert client.post("/votes", json={"review_id": "r-bob", "voter_id": WHO, "helpful": True},
                       headers=auth).status_code == 201
    assert client.post("/trust", json={"truster_id": WHO, "trustee_id": "bob", "domain": "reviews.public",
                                       "level": 0.5}, headers=auth).status_code == 201
    # another key's write that names the user (an operator's trust statement about them)
    assert client.post("/trust", json={"truster_id": "operator", "trustee_id": WHO, "domain": "reviews.public",
                                       "level": 0.2}, headers={"Authorization": f"Bearer {admin}"}).status_code == 201
    replace_rings(store, [{"ring_id": "ring-1", "direction": "up", "n_members": 3, "n_targets": 1,
                           "members": ["bob", WHO, "carol"], "targets": ["lamp"], "window_start": None,
                           "window_end": None, "strength": 0.9, "evidence": {"description": "a ring"}}],
                  "integrity-1")
    assert _cells_naming(store, WHO)  # the traces are there before
    return mine, admin


def test_erasure_through_the_api_leaves_no_id_and_no_live_key(store: Store) -> None:
    mine, _ = _world_with_traces(store)
    run_fit(store)  # a fitted store: the erasure queues a refit
    app = create_app(store, load_settings(api={"refresh_seconds": 0, "summary_ttl_seconds": 0}))
    with TestClient(app) as client:
        auth = {"Authorization": f"Bearer {mine}"}
        r = client.delete(f"/users/{WHO}", headers=auth)
        assert r.status_code == 200, r.text
        assert r.json()["keys_revoked"] == 1
        assert _cells_naming(store, WHO) == [] and _cells_naming(store, "zq-r1") == []
        assert [WHO in ring["members"] for ring in client.get("/rings").json()["data"]] == [False]
        # the key is gone: it can neither write nor re-create the user
        again = client.post("/reviews", json={"id": "zq-r2", "item_id": "lamp", "user_id": WHO, "rating": 5.0},
                            headers=auth)
        assert again.status_code == 403 and "not valid" in again.json()["detail"], again.text
        assert store.get_user(WHO) is None
        # the refit the erasure queued ran to the end
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            jobs = service.list_jobs(store)
            if jobs and jobs[0]["status"] not in ("queued", "running"):
                break
            time.sleep(0.1)
        assert jobs[0]["kind"] == "fit" and jobs[0]["status"] == "done", jobs[0]
    audit = service.list_audit(store, limit=100)
    assert audit[0]["action"] == "erase" and audit[0]["user_id"] is None  # the counts stay, no id
    assert any("(erased)" in json.dumps(row["refs"]) for row in audit)  # other keys' rows keep their shape


def test_erasure_from_the_library_and_cli_forgets_too(tmp_path: Any, capsys: Any) -> None:
    db = f"sqlite:///{tmp_path / 'e.db'}"
    store = Store.open(db)
    _world_with_traces(store)
    run_fit(store)
    code, out, err = run_cli(["erase", "--user", WHO, "--db", db], capsys)
    assert code == 0, err
    assert "refitted" in out
    assert _cells_naming(Store.open(db), WHO) == []
    other = Store.open(f"sqlite:///{tmp_path / 'f.db'}")
    _world_with_traces(other)
    report = erase_user(other, WHO, refit=False)
    assert report.erasure.keys == 1 and not report.refitted and _cells_naming(other, WHO) == []


def test_a_key_is_for_the_user_id_its_events_carry(store: Store) -> None:
    """A key created for ``"u33 "`` or a decomposed (NFD) name was accepted but could never write (issue 20):
    the key's user is the id as the id rule cleans it, the same as the events' author."""
    build_world(store)
    client = TestClient(create_app(store, load_settings(api={"refresh_seconds": 0, "summary_ttl_seconds": 0})))
    for raw, clean in (("u33 ", "u33"), ("Jose\u0301", "Jos\u00e9")):
        secret = service.create_key(store, "k", user_id=raw)[1]
        r = client.post("/reviews", json={"id": f"k-{clean}", "item_id": "lamp", "user_id": clean, "rating": 4.0},
                        headers={"Authorization": f"Bearer {secret}"})
        assert r.status_code == 201, r.text
    with pytest.raises(ValueError, match="user"):
        service.create_key(store, "k", user_id="   ")
