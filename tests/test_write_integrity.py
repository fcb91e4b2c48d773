"""Issue 10, part B: the write API as a hostile user tries it, on SQLite and PostgreSQL.

Each test replays one break of the issue (numbered as there) and checks that it is refused with a 4xx
whose detail names the rule, that nothing was written (row counts and the change sequence), and that
the public view (the anonymous baseline, the item summary) is unchanged. Expected numbers are read from
the store or the server before the attack, never typed in.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from test_api_endpoints import auth, build_world, settings_for_tests
from truescore.api import create_app
from truescore.store import Store, service


@pytest.fixture
def world(store_url: str) -> Iterator[Store]:
    store = Store.open(store_url)
    build_world(store)
    yield store
    store.close()


@pytest.fixture
def client(world: Store) -> Iterator[TestClient]:
    with TestClient(create_app(world, settings_for_tests())) as c:
        yield c


def key_for(store: Store, user: str | None, *scopes: str, **limits: Any) -> str:
    return service.create_key(store, f"key of {user}", user_id=user, scopes=list(scopes) or None, **limits)[1]


def public_view(client: TestClient, item: str = "lamp") -> tuple[Any, ...]:
    """What the public sees of ``item``: the baseline (rounded: its recency weights move with the clock),
    the contributing reviews, the summary and the Schema.org document's name, value and count."""
    base = client.get(f"/items/{item}/baseline").json()
    summary = client.get(f"/items/{item}").json()
    org = client.get(f"/items/{item}/schema-org")
    doc = org.json() if org.status_code == 200 else {}
    agg = doc.get("aggregateRating") or {}
    return (None if base.get("rating") is None else round(base["rating"], 6),
            sorted(c["review_id"] for c in base.get("contributions", [])),
            summary["n_reviews"], summary["plain_mean"], summary.get("title"), org.status_code,
            doc.get("name"), agg.get("reviewCount"), None if agg.get("ratingValue") is None
            else round(float(agg["ratingValue"]), 4))


def state_of(store: Store) -> tuple[dict[str, int], int]:
    counts = store.counts()
    return {k: counts[k] for k in ("users", "items", "reviews", "votes", "trust", "flags")}, service.current_seq(store)


def restarts(store: Store) -> None:
    """A new server process on the same store starts and answers the public view."""
    with TestClient(create_app(store, settings_for_tests())) as c:
        assert c.get("/health").status_code == 200
        assert c.get("/items/lamp/baseline").status_code == 200


def refused(r: httpx.Response, status: int, *words: str) -> None:
    assert r.status_code == status, r.text
    detail = r.json()["detail"].lower()
    for w in words:
        assert w.lower() in detail, detail


# ------------------------------------------------------------------------------------------ 1. identity
def test_1_a_write_key_acts_only_as_its_user(client: TestClient, world: Store) -> None:
    shill = key_for(world, "shill", "write")
    before, view = state_of(world), public_view(client)
    attacks = [
        ("/trust", {"truster_id": "operator", "trustee_id": "shill", "domain": "reviews.public", "level": 1.0}),
        ("/flags", {"review_id": "r-bob", "flagger_id": "operator", "reason": "FAKE", "severity": 10}),
        ("/reviews", {"id": "fake-bob", "item_id": "lamp", "user_id": "bob", "rating": 5}),
        ("/votes", {"review_id": "r-carol", "voter_id": "alice", "helpful": False}),
    ]
    for path, body in attacks:
        refused(client.post(path, json=body, headers=auth(shill)), 403, "authored by that user", "admin")
    assert state_of(world) == before and public_view(client) == view
    # its own review is accepted
    r = client.post("/reviews", json={"id": "shill-1", "item_id": "lamp", "user_id": "shill", "rating": 5},
                    headers=auth(shill))
    assert r.status_code == 201 and r.json()["inserted"] == 1
    restarts(world)


def test_1_privileged_identities_need_admin(client: TestClient, world: Store) -> None:
    as_operator = key_for(world, "operator", "write")
    as_mod = key_for(world, "mod", "write")
    mallory = key_for(world, "mallory", "write")
    before, view = state_of(world), public_view(client)
    edge = {"truster_id": "operator", "trustee_id": "mallory", "domain": "reviews.public", "level": 1.0}
    refused(client.post("/trust", json=edge, headers=auth(as_operator)), 403, "baseline observer")
    refused(client.post("/flags", json={"review_id": "r-bob", "flagger_id": "mod", "reason": "FAKE"},
                        headers=auth(as_mod)), 403, "moderator", "moderate")
    refused(client.post("/trust", json={"truster_id": "mallory", "trustee_id": "mallory", "level": 1.0,
                                         "domain": "reviews.moderation"}, headers=auth(mallory)), 403, "moderation")
    assert state_of(world) == before and public_view(client) == view
    # an admin key writes on behalf of anyone (platform back-fills)
    admin = key_for(world, None, "admin")
    assert client.post("/trust", json=edge, headers=auth(admin)).status_code == 201


def test_1_jobs_need_admin(client: TestClient, world: Store) -> None:
    writer = key_for(world, "bob", "write")
    refused(client.post("/fit", headers=auth(writer)), 403, "admin")
    refused(client.get("/audit", headers=auth(writer)), 403, "admin")


# ------------------------------------------------------------------------------------------ 2. one rating
def test_2_one_current_rating_per_user_and_item(client: TestClient, world: Store) -> None:
    bob = key_for(world, "bob", "write")
    summary = client.get("/items/pan").json()
    quality = client.get("/items/pan/quality").json()
    n_snapshot = world.snapshot().n_ratings
    t0 = time.time()
    body = [{"id": f"flood-{k}", "item_id": "pan", "user_id": "bob", "rating": 1, "created_at": t0 + k}
            for k in range(60)]
    r = client.post("/reviews", json=body, headers=auth(bob))
    assert r.status_code == 201 and r.json()["inserted"] == 60  # history is kept ...
    after = client.get("/items/pan").json()
    assert after["n_reviews"] == summary["n_reviews"]  # ... but counted once
    assert client.get("/items/pan/quality").json()["n_ratings"] == quality["n_ratings"]
    assert world.snapshot().n_ratings == n_snapshot
    assert [x.id for x in world.reviews_of_item("pan") if x.user_id == "bob"] == ["flood-59"]
    others = [x.rating for x in world.reviews_of_item("pan") if x.user_id != "bob"]
    assert after["plain_mean"] == pytest.approx((sum(others) + 1) / (len(others) + 1))
    base = client.get("/items/pan/baseline").json()
    assert sum(1 for c in base["contributions"] if c["reviewer"] == "bob") <= 1
    restarts(world)


# ------------------------------------------------------------------------------------------ 3. supersedes
def test_3_supersedes_only_the_authors_own_review_of_the_item(client: TestClient, world: Store) -> None:
    dave = key_for(world, "dave", "write")
    before, view = state_of(world), public_view(client)
    for target in ("r-bob", "p-dave", "no-such-review"):
        r = client.post("/reviews", json={"id": "hide", "item_id": "lamp", "user_id": "dave", "rating": 1,
                                          "supersedes": target}, headers=auth(dave))
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["field"] == "supersedes"
        expected = "does not exist" if target == "no-such-review" else "only its author's own review"
        assert expected in r.json()["detail"]
    assert state_of(world) == before and public_view(client) == view
    restarts(world)
    ok = client.post("/reviews", json={"id": "dave-2", "item_id": "lamp", "user_id": "dave", "rating": 4,
                                       "supersedes": "r-dave"}, headers=auth(dave))
    assert ok.status_code == 201


# ------------------------------------------------------------------------------------------ 4. item fields
def test_4_item_title_and_topic_change_only_by_admin(client: TestClient, world: Store) -> None:
    eve = key_for(world, "eve", "write")
    before, view = state_of(world), public_view(client)
    for extra in ({"item_title": "Totally different lamp"}, {"topic": "reviews.public.scam"}):
        r = client.post("/reviews", json={"id": "rename", "item_id": "lamp", "user_id": "eve", "rating": 5,
                                          **extra}, headers=auth(eve))
        refused(r, 403, "set when it is created", "admin")
    assert state_of(world) == before and public_view(client) == view
    item = world.get_item("lamp")
    assert item is not None and item.title == "Desk lamp"
    # a new item gets its title and topic from its first review
    r = client.post("/reviews", json={"id": "new-item", "item_id": "kettle", "user_id": "eve", "rating": 4,
                                      "item_title": "Kettle", "topic": "reviews.public.home.kitchen"},
                    headers=auth(eve))
    assert r.status_code == 201 and world.get_item("kettle").title == "Kettle"  # type: ignore[union-attr]


# ------------------------------------------------------------------------------------------ 8. atomic batch
def test_8_a_batch_is_one_transaction(monkeypatch: pytest.MonkeyPatch, world: Store) -> None:
    monkeypatch.setenv("TRUESCORE_IMPORT_BATCH_SIZE", "2")  # the importer would commit every 2 rows
    import truescore.config as config_module

    monkeypatch.setattr(config_module, "_cached", None)
    calls = {"n": 0}
    real = Store.insert_columns

    def failing(self: Store, table: str, columns: dict[str, list[Any]], conn: Any = None) -> int:
        calls["n"] += 1
        if calls["n"] == 3:  # the server dies after two batches were written
            raise RuntimeError("simulated crash between batches")
        return real(self, table, columns, conn=conn)

    monkeypatch.setattr(Store, "insert_columns", failing)
    admin = key_for(world, None, "admin")
    before = state_of(world)
    body = [{"id": f"atomic-{k}", "item_id": "vase", "user_id": f"buyer{k}", "rating": 4} for k in range(6)]
    with TestClient(create_app(world, settings_for_tests()), raise_server_exceptions=False) as c:
        r = c.post("/reviews", json=body, headers=auth(admin))
    assert r.status_code == 500 and calls["n"] == 3
    assert state_of(world) == before
    assert world.existing_ids("reviews", [b["id"] for b in body]) == set()


# ------------------------------------------------------------------------------------------ 9. processes
def test_9_every_process_sees_every_others_writes(world: Store) -> None:
    admin = key_for(world, None, "admin")
    with TestClient(create_app(world, settings_for_tests())) as a, \
            TestClient(create_app(world, settings_for_tests())) as b:
        for c in (a, b):
            c.get("/items/lamp/baseline")  # warm
        assert a.post("/reviews", json={"id": "via-a", "item_id": "vase", "user_id": "ann", "rating": 5},
                      headers=auth(admin)).status_code == 201
        assert b.post("/reviews", json={"id": "via-b", "item_id": "vase", "user_id": "ben", "rating": 3},
                      headers=auth(admin)).status_code == 201
        for c in (a, b):  # what each server's refresher does every api.refresh_seconds
            c.app.state.truescore.check_store()  # type: ignore[attr-defined]
        stored = world.counts()["reviews"]
        for c in (a, b):
            assert c.get("/health").json()["counts"]["reviews"] == stored
            assert c.get("/items/vase").json()["n_reviews"] == 2
            state = c.app.state.truescore  # type: ignore[attr-defined]
            assert state.rater.index.item_code("vase") >= 0
            assert {x for x in ("via-a", "via-b") if state.rater.index._review_pos.get_indexer([x])[0] >= 0} \
                == {"via-a", "via-b"}


# ------------------------------------------------------------------------------------------ 11. auth first
@pytest.mark.parametrize("header", [None, "Bearer not-a-key"])
def test_11_the_key_is_checked_before_the_body_is_read(world: Store, header: str | None) -> None:
    import anyio

    app = create_app(world, settings_for_tests())
    body_reads = {"n": 0}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        body_reads["n"] += 1
        return {"type": "http.request", "body": b"[" + b"0," * 1000 + b"0]", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    headers = [(b"content-type", b"application/json"), (b"content-length", b"4700000")]
    if header:
        headers.append((b"authorization", header.encode()))
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/reviews", "raw_path": b"/reviews", "query_string": b"", "root_path": "", "headers": headers,
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
    anyio.run(app, scope, receive, send)
    assert sent[0]["status"] == (401 if header is None else 403)
    assert body_reads["n"] == 0


# ------------------------------------------------------------------------------------------ 12. limits
def test_12_rate_limit_answers_429_and_spares_other_keys(world: Store) -> None:
    flooder = key_for(world, "bob", "write", rate_limit=5)
    reader = key_for(world, "alice", "write")
    with TestClient(create_app(world, settings_for_tests(require_key_for_reads=True, rate_burst_seconds=0,
                                                         rate_refusal_delay_seconds=0))) as c:
        codes = [c.get("/items/lamp", headers=auth(flooder)).status_code for _ in range(8)]
        assert codes[:5] == [200] * 5 and codes[5:] == [429] * 3
        r = c.get("/items/lamp", headers=auth(flooder))
        assert int(r.headers["Retry-After"]) >= 1 and "rate limit" in r.json()["detail"]
        assert all(c.get("/items/lamp", headers=auth(reader)).status_code == 200 for _ in range(10))


def test_12_the_allowance_is_spread_over_slices_of_the_window(world: Store) -> None:
    """120 per 60 s with 1 s slices: 2 per second, the third in the same second is refused until the next."""
    from truescore.api.limits import Limiter, RateLimited
    from truescore.config import load_settings

    settings = load_settings(api={"rate_limit_requests": 120, "rate_window_seconds": 60, "rate_burst_seconds": 1})
    limiter = Limiter(world, settings)
    principal = service.verify_key(world, key_for(world, "bob", "write"))
    assert principal is not None
    limiter.hit(principal, now=1200.1)
    limiter.hit(principal, now=1200.5)
    with pytest.raises(RateLimited) as refused_burst:
        limiter.hit(principal, now=1200.9)
    assert refused_burst.value.retry_after == 1 and "rate_burst_seconds" in refused_burst.value.detail
    limiter.hit(principal, now=1201.0)  # the next slice has its own allowance
    unsliced = Limiter(world, load_settings(api={"rate_limit_requests": 120, "rate_burst_seconds": 0}))
    for k in range(10):  # without slices the same burst is within the window's allowance
        unsliced.hit(principal, now=1300.0 + k / 100)


def test_12_a_refusal_is_answered_after_the_delay(world: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """A key over its rate waits ``rate_refusal_delay_seconds`` (capped by Retry-After) for its 429; others do not."""
    import truescore.api.limits as limits

    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(limits.anyio, "sleep", record)
    flooder = key_for(world, "bob", "write", rate_limit=2)
    reader = key_for(world, "alice", "write")
    settings = settings_for_tests(require_key_for_reads=True, rate_burst_seconds=0, rate_refusal_delay_seconds=0.5)
    with TestClient(create_app(world, settings)) as c:
        codes = [c.get("/items/lamp", headers=auth(flooder)).status_code for _ in range(4)]
        assert codes == [200, 200, 429, 429]
        assert waits == [0.5, 0.5]
        assert c.get("/items/lamp", headers=auth(reader)).status_code == 200
        assert waits == [0.5, 0.5]


def test_12_daily_quota_refuses_the_batch_and_writes_nothing(client: TestClient, world: Store) -> None:
    frank = key_for(world, "frank", "write", daily_quota=3)
    before, view = state_of(world), public_view(client, "vase")
    body = [{"id": f"q-{k}", "item_id": "vase", "user_id": "frank", "rating": 5, "created_at": time.time() - k}
            for k in range(4)]
    r = client.post("/reviews", json=body, headers=auth(frank))
    refused(r, 429, "daily quota")
    assert int(r.headers["Retry-After"]) >= 1
    assert state_of(world) == before and public_view(client, "vase") == view
    assert client.post("/reviews", json=body[:3], headers=auth(frank)).status_code == 201  # the refusal cost nothing


def test_12_database_counters_are_shared(world: Store) -> None:
    """Two limiters on one store (two server processes) share the database counters."""
    from truescore.api.limits import Limiter, RateLimited
    from truescore.config import load_settings

    settings = load_settings(api={"rate_backend": "database", "rate_limit_requests": 4, "rate_burst_seconds": 0})
    one, two = Limiter(world, settings), Limiter(world, settings)
    principal = service.verify_key(world, key_for(world, "bob", "write"))
    assert principal is not None
    for limiter in (one, two, one, two):
        limiter.hit(principal, now=1000.0)
    with pytest.raises(RateLimited):
        two.hit(principal, now=1000.0)


# ------------------------------------------------------------------------------------------ 13. jobs
def test_13_jobs_of_a_dead_server_become_interrupted_and_jobs_cancel(world: Store) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    running = service.create_job(world, "fit", owner=f"{socket.gethostname()}:{dead.pid}")
    service.update_job(world, running, "running")
    orphan = service.create_job(world, "score", owner=f"{socket.gethostname()}:{dead.pid}")  # queued
    elsewhere = service.create_job(world, "fit", owner="another-host:1")
    admin = key_for(world, None, "admin")
    writer = key_for(world, "bob", "write")
    with TestClient(create_app(world, settings_for_tests())) as c:
        assert c.get(f"/jobs/{running}").json()["status"] == "interrupted"
        assert c.get(f"/jobs/{orphan}").json()["status"] == "interrupted"
        assert c.get(f"/jobs/{elsewhere}").json()["status"] == "queued"
        refused(c.post(f"/jobs/{elsewhere}/cancel", headers=auth(writer)), 403, "admin")
        r = c.post(f"/jobs/{elsewhere}/cancel", headers=auth(admin))
        assert r.status_code == 200 and r.json()["status"] == "cancelled"
        assert c.post("/jobs/nope/cancel", headers=auth(admin)).status_code == 404
        assert {j["id"] for j in c.get("/jobs", headers=auth(admin)).json()["data"]} >= {running, orphan, elsewhere}


def test_13_a_cancelled_fit_stops_before_the_ranking_is_written(world: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Cancelled while its reliability fit runs, a fit job stops at the next step boundary: the ranking is
    neither computed nor written, and the job stays cancelled."""
    import truescore.api.jobs as report_module

    real_fit = report_module.run_fit

    def fit_then_get_cancelled(store: Store, **kwargs: Any) -> Any:
        report = real_fit(store, **kwargs)
        (job,) = [j for j in service.list_jobs(store) if j["kind"] == "fit" and j["status"] == "running"]
        service.cancel_job(store, job["id"])  # as POST /jobs/{id}/cancel from another request would
        return report

    monkeypatch.setattr(report_module, "run_fit", fit_then_get_cancelled)
    rankings_before = world.read_table("product_rankings")
    admin = key_for(world, None, "admin")
    app = create_app(world, settings_for_tests())
    with TestClient(app) as c:
        job = c.post("/fit", headers=auth(admin)).json()
        app.state.jobs.shutdown(wait=True)  # the job thread has finished whatever it was going to do
        done = c.get(f"/jobs/{job['id']}").json()
    assert done["status"] == "cancelled"
    assert len(world.read_table("item_quality")) > 0  # the step that ran wrote its rows
    after = world.read_table("product_rankings")
    assert len(after) == len(rankings_before) and set(after["fitted_at"]) == set(rankings_before["fitted_at"])


# ------------------------------------------------------------------------------------------ 14. re-post
def test_14_reposting_an_id_with_other_content_is_409(client: TestClient, world: Store) -> None:
    carol = key_for(world, "carol", "write")
    body = {"id": "c-1", "item_id": "vase", "user_id": "carol", "rating": 4, "text": "Nice."}
    assert client.post("/reviews", json=body, headers=auth(carol)).status_code == 201
    before, view = state_of(world), public_view(client, "vase")
    again = client.post("/reviews", json=body, headers=auth(carol))
    assert again.status_code == 201 and again.json()["inserted"] == 0  # the same content: idempotent
    refused(client.post("/reviews", json={**body, "rating": 1}, headers=auth(carol)), 409, "rating", "immutable")
    vote = {"review_id": "r-bob", "voter_id": "carol", "helpful": True}
    assert client.post("/votes", json=vote, headers=auth(carol)).status_code == 201
    refused(client.post("/votes", json={**vote, "helpful": False}, headers=auth(carol)), 409, "helpful")
    assert state_of(world)[0]["reviews"] == before[0]["reviews"] and public_view(client, "vase") == view


# ------------------------------------------------------------------------------------------ audit, erasure
def test_audit_records_the_key_of_every_write(client: TestClient, world: Store) -> None:
    bob_key = key_for(world, "bob", "write")
    admin = key_for(world, None, "admin")
    bob_id = next(k["id"] for k in service.list_keys(world) if k["user_id"] == "bob")
    client.post("/reviews", json={"id": "b-vase", "item_id": "vase", "user_id": "bob", "rating": 4},
                headers=auth(bob_key))
    rows = client.get("/audit", params={"key_id": bob_id}, headers=auth(admin)).json()["data"]
    assert rows[0]["action"] == "write" and rows[0]["kind"] == "reviews" and rows[0]["refs"] == ["b-vase"]
    assert rows[0]["user_id"] == "bob" and rows[0]["at"] <= time.time()


def test_erasure_by_the_users_own_key(client: TestClient, world: Store) -> None:
    bob = key_for(world, "bob", "write")
    dave = key_for(world, "dave", "write")
    admin = key_for(world, None, "admin")
    refused(client.delete("/users/bob", headers=auth(dave)), 403, "own key")
    r = client.delete("/users/bob", headers=auth(bob))
    assert r.status_code == 200 and r.json()["reviews"] == 2
    assert world.get_user("bob") is None and not world.reviews_by_user("bob")
    assert not world.trust_frame().query("truster_id == 'bob' or trustee_id == 'bob'").shape[0]
    assert all(c["reviewer"] != "bob" for c in client.get("/items/lamp/baseline").json()["contributions"])
    erase = client.get("/audit", headers=auth(admin)).json()["data"][0]
    assert erase["action"] == "erase" and erase["refs"] == [] and "bob" not in str(erase)


def test_delete_review_by_its_author_only(client: TestClient, world: Store) -> None:
    eve = key_for(world, "eve", "write")
    dave = key_for(world, "dave", "write")
    refused(client.delete("/reviews/r-eve", headers=auth(dave)), 403, "author")
    assert client.delete("/reviews/r-eve", headers=auth(eve)).status_code == 200
    assert world.get_review("r-eve") is None
    assert "r-eve" not in {c["review_id"] for c in client.get("/items/lamp/baseline").json()["contributions"]}


def test_old_keys_without_a_user_are_admin(world: Store) -> None:
    """Migration: a key stored before keys had users (user and scopes NULL) keeps working as admin."""
    from sqlalchemy import update

    from truescore.store import schema

    key_id, secret = service.create_key(world, "old", scopes=["admin"])
    with world.engine.begin() as c:
        c.execute(update(schema.api_keys).where(schema.api_keys.c.id == key_id).values(user_id=None, scopes=None))
    principal = service.verify_key(world, secret)
    assert principal is not None and principal.is_admin and principal.user_id is None


# ------------------------------------------------------------------------------------------ servers
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_two_servers_on_one_store_see_every_acknowledged_write(store_url: str, tmp_path: Path) -> None:
    from bench.common import start_server

    store = Store.open(store_url)
    build_world(store)
    admin = key_for(store, None, "admin")
    refresh = 1.0
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRUESCORE_")}
    env.update({"TRUESCORE_API__ACCESS_LOG": "false", "TRUESCORE_API__REFRESH_SECONDS": str(refresh),
                "TRUESCORE_API__RATE_LIMIT_REQUESTS": "0"})  # a write burst, not a rate-limit test
    ports = [_free_port(), _free_port()]
    procs = [start_server(store_url, p, tmp_path / f"server{k}.log", env, timeout=120) for k, p in enumerate(ports)]
    try:
        clients = [httpx.Client(base_url=f"http://127.0.0.1:{p}", headers=auth(admin), timeout=30) for p in ports]
        acked = 0
        for k in range(40):
            r = clients[k % 2].post("/reviews", json={"id": f"two-{k}", "item_id": "vase", "user_id": f"w{k}",
                                                      "rating": 1 + k % 5})
            assert r.status_code == 201
            acked += 1
        deadline = time.monotonic() + 3 * refresh + 5
        while True:
            seen = [c.get("/items/vase").json()["n_reviews"] for c in clients]
            if seen == [acked, acked] or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert seen == [acked, acked]
        base = [len(c.get("/items/vase/rating", params={"observer": "w1"}).json()["contributions"]) for c in clients]
        assert base[0] == base[1]
        for c in clients:
            c.close()
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=30)
        store.close()


def test_2_through_the_importer_history_is_kept_and_counted_once(store: Store, tmp_path: Path) -> None:
    from truescore.store.ingest import import_file

    path = tmp_path / "reviews.csv"
    path.write_text("id,item_id,user_id,rating,created_at\n"
                    "a1,i1,u1,5,2024-01-01\na2,i1,u1,1,2024-02-01\na3,i1,u1,2,2024-03-01\nb1,i1,u2,4,2024-01-05\n")
    import_file(store, path, "reviews")
    assert store.counts()["reviews"] == 4  # history kept
    snap = store.snapshot()
    assert snap.n_ratings == 2 and sorted(snap.review_ids.tolist()) == ["a3", "b1"]  # counted once
    assert [r.id for r in store.reviews_by_user("u1")] == ["a3"]
    assert len(store.review_frame()) == 2


def test_12_redis_counters_are_shared(world: Store) -> None:
    """With api.redis_url, every server's limiter counts in Redis (skipped when no Redis answers)."""
    redis = pytest.importorskip("redis")
    from truescore.api.limits import Limiter, RateLimited
    from truescore.config import load_settings

    url = os.environ.get("TRUESCORE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    try:
        redis.Redis.from_url(url, socket_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.skip(f"no Redis at {url}: {exc}")
    settings = load_settings(api={"redis_url": url, "rate_limit_requests": 3, "rate_burst_seconds": 0})
    one, two = Limiter(world, settings), Limiter(world, settings)
    assert one.backend == "redis"
    principal = service.verify_key(world, key_for(world, "bob", "write"))
    assert principal is not None
    now = time.time()
    for limiter in (one, two, one):
        limiter.hit(principal, now=now)
    with pytest.raises(RateLimited):
        two.hit(principal, now=now)
