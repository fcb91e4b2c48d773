"""The HTTP API through an HTTP client, on SQLite and PostgreSQL: every endpoint's shape and numbers, 404s,
401/403 for writes, 422 naming the row and field, 413, and writes visible to the next read.

Expected numbers come from the engines called directly on the same store (never typed in), so the tests
check that the API serves what the library computes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from truescore.api import create_app
from truescore.api.jobs import job_available
from truescore.config import Settings, load_settings
from truescore.domain import Item, Review, TrustEdge, User, UserRole, Vote
from truescore.jobs import rater_from_store
from truescore.store import Store, service

NOW = datetime.now(UTC)
LAMP_TOPIC = "reviews.public.home.lamps"


def days_ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def build_world(store: Store) -> None:
    """Seed 003's laptop example moved to a lamp, plus a pan (for activity and votes) and an unreviewed vase."""
    store.add_users([User("operator", role=UserRole.OPERATOR), User("mod", role=UserRole.MODERATOR),
                     *(User(u, display_name=u.title()) for u in ("alice", "bob", "carol", "dave", "eve", "frank"))])
    store.add_items([Item("lamp", LAMP_TOPIC, "Desk lamp"), Item("pan", "reviews.public.home.kitchen", "Frying pan"),
                     Item("vase", "reviews.public.home.decor", "Vase")])
    store.add_reviews([
        Review("r-bob", "lamp", "bob", 4.5, days_ago(30), text="Sturdy base, warm light."),
        Review("r-carol", "lamp", "carol", 2.0, days_ago(90), text="Flickers."),
        Review("r-dave", "lamp", "dave", 4.8, days_ago(5), text="Great lamp."),
        Review("r-eve", "lamp", "eve", 5.0, days_ago(60), text="BEST LAMP EVER!!!"),
        Review("r-frank", "lamp", "frank", 4.2, days_ago(540), text="Solid after a year and a half."),
        Review("p-bob", "pan", "bob", 4.0, days_ago(100)),
        Review("p-dave", "pan", "dave", 3.0, days_ago(200)),
        Review("p-frank", "pan", "frank", 4.0, days_ago(300)),
        Review("p-carol", "pan", "carol", 1.0, days_ago(20)),
    ])
    store.add_trust([
        TrustEdge("alice", "bob", "reviews.public.home", 1.0, days_ago(400)),
        TrustEdge("bob", "dave", "reviews.public.home", 0.72, days_ago(400)),
        TrustEdge("alice", "frank", "reviews.public", 0.9, days_ago(400)),
        TrustEdge("alice", "mod", "reviews.moderation", 1.0, days_ago(400)),
        TrustEdge("operator", "bob", "reviews.public", 0.8, days_ago(400)),
        TrustEdge("operator", "carol", "reviews.public", 0.8, days_ago(400)),
        TrustEdge("operator", "frank", "reviews.public", 0.9, days_ago(400)),
    ])
    store.add_votes([Vote("p-bob", "alice", True, days_ago(90)), Vote("p-dave", "bob", True, days_ago(150)),
                     Vote("p-carol", "frank", False, days_ago(10))])


def settings_for_tests(**api: Any) -> Settings:
    return load_settings(api={"refresh_seconds": 0, "summary_ttl_seconds": 0, **api})


@pytest.fixture
def world_store(store_url: str) -> Iterator[Store]:
    store = Store.open(store_url)
    build_world(store)
    yield store
    store.close()


@pytest.fixture
def key(world_store: Store) -> str:
    return service.create_key(world_store, "tests")[1]


@pytest.fixture
def client(world_store: Store) -> Iterator[TestClient]:
    with TestClient(create_app(world_store, settings_for_tests())) as c:
        yield c


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def wait_for_job(client: TestClient, job_id: str, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/jobs/{job_id}").json()
        if job["status"] in ("done", "failed", "cancelled", "interrupted") or time.monotonic() > deadline:
            return job
        time.sleep(0.05)


# ------------------------------------------------------------------------------------------ service
def test_health_reports_the_store(client: TestClient, world_store: Store) -> None:
    r = client.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["database"] == world_store.dialect
    assert body["counts"]["reviews"] == 9 and body["counts"]["items"] == 3
    assert body["engines"]["trust"] is True


def test_topics_and_observers(client: TestClient) -> None:
    topics = client.get("/topics").json()["data"]
    assert {t["topic"] for t in topics} == {LAMP_TOPIC, "reviews.public.home.kitchen", "reviews.public.home.decor"}
    obs = client.get("/observers", params={"limit": 2}).json()
    assert obs["baseline_observer"] == "operator"
    assert [o["id"] for o in obs["data"]] == ["operator", "alice"]  # alice states the most trust after the operator
    assert obs["data"][1]["n_trusted"] == 3


def test_openapi_documents_every_endpoint(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/health", "/items", "/items/{item_id}/quality", "/users/{user_id}/reliability",
                 "/items/{item_id}/rating", "/items/{item_id}/baseline", "/items/{item_id}/schema-org",
                 "/items/{item_id}/love", "/reviews/{review_id}/scores", "/rankings", "/reviews", "/votes", "/trust",
                 "/flags", "/fit", "/score", "/jobs/{job_id}"):
        assert path in paths, path


# ------------------------------------------------------------------------------------------ items
def test_items_paged_filtered_and_searched(client: TestClient) -> None:
    body = client.get("/items").json()
    assert body["count"] == 3 and [i["id"] for i in body["data"]] == ["lamp", "pan", "vase"]
    page = client.get("/items", params={"limit": 1, "offset": 1}).json()
    assert page["count"] == 3 and [i["id"] for i in page["data"]] == ["pan"]
    assert [i["id"] for i in client.get("/items", params={"topic": "reviews.public.home.lamps"}).json()["data"]] == [
        "lamp"]
    assert [i["id"] for i in client.get("/items", params={"q": "frying"}).json()["data"]] == ["pan"]
    lamp = body["data"][0]
    assert lamp["n_reviews"] == 5
    assert lamp["plain_mean"] == pytest.approx((4.5 + 2.0 + 4.8 + 5.0 + 4.2) / 5)
    assert body["data"][2]["n_reviews"] == 0 and body["data"][2]["plain_mean"] is None


def test_items_limit_is_capped(world_store: Store) -> None:
    with TestClient(create_app(world_store, settings_for_tests(max_page=10))) as c:
        assert c.get("/items", params={"limit": 1000}).json()["limit"] == 10


def test_items_bad_parameters_are_422(client: TestClient) -> None:
    r = client.get("/items", params={"topic": "Not A Topic"})
    assert r.status_code == 422
    assert "topic" in r.json()["detail"]
    assert client.get("/items", params={"limit": 0}).status_code == 422
    assert client.get("/items", params={"offset": -1}).status_code == 422


def test_item_and_its_reviews(client: TestClient) -> None:
    item = client.get("/items/lamp").json()
    assert item["title"] == "Desk lamp" and item["topic"] == LAMP_TOPIC
    reviews = client.get("/items/lamp/reviews").json()
    assert reviews["count"] == 5
    assert {r["id"] for r in reviews["data"]} == {"r-bob", "r-carol", "r-dave", "r-eve", "r-frank"}
    assert reviews["data"][0]["id"] == "r-frank"  # oldest first
    assert client.get("/items/lamp/reviews", params={"limit": 2, "offset": 4}).json()["data"][0]["id"] == "r-dave"


@pytest.mark.parametrize("path", ["/items/{}", "/items/{}/reviews", "/items/{}/quality", "/items/{}/rating",
                                  "/items/{}/baseline", "/items/{}/schema-org", "/items/{}/love"])
def test_unknown_item_is_404(client: TestClient, path: str) -> None:
    r = client.get(path.format("no-such-item"))
    assert r.status_code == 404
    assert r.json()["detail"] == "item 'no-such-item' not found"


def test_unknown_user_review_job_are_404(client: TestClient) -> None:
    assert client.get("/users/nobody/reliability").json()["detail"] == "user 'nobody' not found"
    assert client.get("/reviews/nope/scores").json()["detail"] == "review 'nope' not found"
    r = client.get("/jobs/nope")
    assert r.status_code == 404 and "job 'nope'" in r.json()["detail"]


# ------------------------------------------------------------------------------------------ trust engine
def test_rating_is_the_trust_engines_result(client: TestClient, world_store: Store) -> None:
    r = client.get("/items/lamp/rating", params={"observer": "alice"})
    assert r.status_code == 200
    body = r.json()
    expected = rater_from_store(world_store).effective_rating("lamp", "alice")
    assert body["rating"] == pytest.approx(expected.rating, rel=1e-6)
    assert body["contributing_reviews"] == expected.contributing_reviews == 3
    assert [c["review_id"] for c in body["contributions"]] == [c.review_id for c in expected.contributions]
    assert body["anonymous_baseline_rating"] == pytest.approx(expected.anonymous_baseline_rating, rel=1e-6)
    assert body["personalization_delta"] == pytest.approx(body["rating"] - body["anonymous_baseline_rating"])
    assert body["display"] == expected.display
    assert "based on 3 trusted reviews" in body["display"]
    assert body["agreement"] in ("trusted sources agree", "trusted sources split")
    by_id = {c["review_id"]: c for c in body["contributions"]}
    assert by_id["r-dave"]["top_intermediary_quid"] == "bob"  # "via Bob"
    assert by_id["r-dave"]["path"] == ["alice", "bob", "dave"]
    assert by_id["r-bob"]["top_intermediary_quid"] is None
    assert "r-eve" not in by_id  # no trust path to Eve
    for c in body["contributions"]:
        assert c["weight"] == pytest.approx(c["T"] * c["H"] * c["A"] * c["R"] * c["F"], rel=1e-9)


def test_rating_without_paths_and_for_strangers(client: TestClient) -> None:
    body = client.get("/items/lamp/rating", params={"observer": "alice", "paths": "false"}).json()
    assert all(c["path"] is None for c in body["contributions"])
    assert any(c["top_intermediary_quid"] == "bob" for c in body["contributions"])
    stranger = client.get("/items/lamp/rating", params={"observer": "someone-new"}).json()
    assert stranger["rating"] is None and stranger["contributions"] == []
    assert stranger["display"] == "no trusted reviews"


def test_rating_defaults_to_the_baseline_observer_and_topic_is_validated(client: TestClient) -> None:
    default = client.get("/items/lamp/rating").json()
    assert default["observer"] == "operator"
    assert client.get("/items/lamp/rating", params={"topic": "reviews..bad"}).status_code == 422
    scoped = client.get("/items/lamp/rating", params={"observer": "alice", "topic": "reviews.public.home"}).json()
    assert scoped["topic"] == "reviews.public.home"


def test_baseline_and_schema_org(client: TestClient, world_store: Store) -> None:
    base = client.get("/items/lamp/baseline").json()
    expected = rater_from_store(world_store).anonymous_baseline_rating("lamp")
    assert base["observer"] == "operator"
    assert base["rating"] == pytest.approx(expected.rating, rel=1e-6)
    r = client.get("/items/lamp/schema-org")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/ld+json")
    doc = r.json()
    assert doc["@context"] == "https://schema.org" and doc["@type"] == "AggregateRating"
    assert doc["ratingValue"] == pytest.approx(round(base["rating"], 2))
    assert doc["ratingCount"] == base["contributing_reviews"]
    assert doc["itemReviewed"] == {"@type": "Product", "name": "Desk lamp"}
    empty = client.get("/items/vase/schema-org")
    assert empty.status_code == 404 and "no baseline rating" in empty.json()["detail"]


# ------------------------------------------------------------------------------------------ reliability, ranking
def test_quality_and_reliability_online_then_after_fit(client: TestClient, world_store: Store, key: str) -> None:
    from truescore.reliability import fit

    q = client.get("/items/lamp/quality").json()
    expected = fit(world_store.snapshot())
    k = list(expected.item_ids).index("lamp")
    assert q["source"] == "online" and q["item_id"] == "lamp"
    assert q["quality"] == pytest.approx(expected.item_quality[k], rel=1e-6)
    assert q["quality_sd"] == pytest.approx(expected.item_quality_sd[k], rel=1e-6)
    assert q["n_ratings"] == 5
    u = client.get("/users/frank/reliability").json()
    j = list(expected.user_ids).index("frank")
    assert u["reliability"] == pytest.approx(expected.reliability[j], rel=1e-6)
    assert u["reliability_lo"] <= u["reliability"] <= u["reliability_hi"] and u["n_ratings"] == 2
    vase = client.get("/items/vase/quality")
    assert vase.status_code == 404 and "no quality estimate" in vase.json()["detail"]
    assert client.get("/items/lamp/love").status_code == 404  # no ranking yet

    job = client.post("/fit", headers=auth(key))
    assert job.status_code == 202 and job.headers["location"] == f"/jobs/{job.json()['id']}"
    done = wait_for_job(client, job.json()["id"])
    assert done["status"] == "done", done
    stored = world_store.read_derived("item_quality", "lamp")[0]
    assert stored["quality"] == pytest.approx(expected.item_quality[k], rel=1e-6)
    love = client.get("/items/lamp/love").json()
    row = world_store.read_derived("product_rankings", "lamp")[0]
    assert love["love_score"] == pytest.approx(row["love_score"]) and love["tier"] == row["tier"]
    assert isinstance(love["details"], dict)
    ranking = client.get("/rankings").json()
    assert ranking["count"] == 2  # the two reviewed items
    bounds = [p["lower_bound"] for p in ranking["data"]]
    assert bounds == sorted(bounds, reverse=True)
    assert [p["item_id"] for p in client.get("/rankings", params={"topic": LAMP_TOPIC}).json()["data"]] == ["lamp"]
    listed = client.get("/items", params={"q": "lamp"}).json()["data"][0]
    assert listed["love_score"] == pytest.approx(row["love_score"]) and listed["fused_mean"] is not None


def test_review_scores_come_from_the_text_engines_table(client: TestClient, world_store: Store) -> None:
    r = client.get("/reviews/r-eve/scores")
    assert r.status_code == 404 and "not been scored" in r.json()["detail"]
    world_store.write_derived("review_scores", [{"review_id": "r-eve", "quality": 0.1, "fake_probability": 0.9,
                                                 "sentiment": 0.95}], "test-1")
    body = client.get("/reviews/r-eve/scores").json()
    assert body["fake_probability"] == 0.9 and body["model_version"] == "test-1"


@pytest.mark.slow  # runs the text engine (loads the encoder) in a job
def test_score_job_runs(client: TestClient, world_store: Store, key: str) -> None:
    assert job_available("score") is None and job_available("nope") is not None  # every job kind is built
    r = client.post("/score", headers=auth(key))
    assert r.status_code == 202
    done = wait_for_job(client, r.json()["id"], timeout=300)
    assert done["status"] == "done", done
    assert world_store.counts()["review_scores"] == 9
    body = client.get("/reviews/r-eve/scores").json()
    assert 0.0 <= body["fake_probability"] <= 1.0
    listed = {x["id"]: x for x in client.get("/items/lamp/reviews").json()["data"]}
    assert listed["r-eve"]["fake_probability"] == pytest.approx(body["fake_probability"])


# ------------------------------------------------------------------------------------------ auth
REVIEW = {"id": "r-new", "item_id": "lamp", "user_id": "bob", "rating": 1.0}


def test_writes_need_a_valid_key(client: TestClient, world_store: Store, key: str) -> None:
    r = client.post("/reviews", json=REVIEW)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert "API key" in r.json()["detail"]
    assert client.post("/reviews", json=REVIEW, headers=auth("ts_wrong")).status_code == 403
    assert client.post("/reviews", json=REVIEW, headers={"Authorization": f"Basic {key}"}).status_code == 401
    for path in ("/votes", "/trust", "/flags", "/fit", "/score"):
        assert client.post(path, json={}).status_code == 401, path
    key_id, other = service.create_key(world_store, "to revoke")
    assert service.revoke_key(world_store, key_id)
    assert client.post("/reviews", json=REVIEW, headers=auth(other)).status_code == 403
    assert world_store.get_review("r-new") is None
    assert client.post("/reviews", json=REVIEW, headers=auth(key)).status_code == 201


def test_reads_can_require_a_key(world_store: Store, key: str) -> None:
    with TestClient(create_app(world_store, settings_for_tests(require_key_for_reads=True))) as c:
        assert c.get("/items").status_code == 401
        assert c.get("/items/lamp/rating", headers=auth("bad")).status_code == 403
        assert c.get("/items/lamp/rating", headers=auth(key)).status_code == 200


# ------------------------------------------------------------------------------------------ bad bodies
@pytest.mark.parametrize(("body", "row", "field", "reason"), [
    ({**REVIEW, "rating": 9}, 1, "rating", "outside the scale 1..5"),
    ([REVIEW, {**REVIEW, "id": "r-new2", "rating": "high"}], 2, "rating", "valid number"),
    ({k: v for k, v in REVIEW.items() if k != "user_id"}, 1, "user_id", "Field required"),
    ({**REVIEW, "color": "red"}, 1, "color", "Extra inputs"),
    ({**REVIEW, "text": "nul\x00byte"}, 1, "text", "NUL"),
    ({**REVIEW, "topic": "Home Lamps"}, 1, "topic", "pattern"),
    ({**REVIEW, "created_at": 1.7e12}, 1, "created_at", "milliseconds"),
    ({**REVIEW, "max_rating": 1.0}, 1, "max_rating", "empty"),
])
def test_bad_review_bodies_are_422_naming_row_and_field(client: TestClient, world_store: Store, key: str,
                                                         body: Any, row: int, field: str, reason: str) -> None:
    before = world_store.counts()["reviews"]
    r = client.post("/reviews", json=body, headers=auth(key))
    assert r.status_code == 422, r.text
    errors = r.json()["errors"]
    assert any(e["row"] == row and e["field"] == field and reason in e["reason"] for e in errors), errors
    assert f"row {row}" in r.json()["detail"]
    assert world_store.counts()["reviews"] == before  # all or nothing


def test_bad_votes_trust_flags_are_422(client: TestClient, key: str) -> None:
    vote = client.post("/votes", json={"review_id": "missing", "voter_id": "alice", "helpful": True},
                       headers=auth(key))
    assert vote.status_code == 422
    assert vote.json()["errors"][0] == {"row": 1, "field": "review_id",
                                        "reason": "review 'missing' is not in the store"}
    trust = client.post("/trust", json={"truster_id": "a", "trustee_id": "b", "level": 1.5}, headers=auth(key))
    assert trust.status_code == 422 and trust.json()["errors"][0]["field"] == "level"
    flag = client.post("/flags", json={"review_id": "r-eve", "flagger_id": "mod", "reason": "UGLY"}, headers=auth(key))
    assert flag.status_code == 422 and flag.json()["errors"][0]["field"] == "reason"
    notjson = client.post("/votes", content=b"{not json", headers={**auth(key), "content-type": "application/json"})
    assert notjson.status_code == 422


def test_oversized_bodies_and_batches_are_413(world_store: Store, key: str) -> None:
    with TestClient(create_app(world_store, settings_for_tests(max_body_bytes=2048, max_batch=3))) as c:
        big = c.post("/reviews", json={**REVIEW, "text": "x" * 5000}, headers=auth(key))
        assert big.status_code == 413 and "max_body_bytes" in big.json()["detail"]
        batch = [{**REVIEW, "id": f"b{k}"} for k in range(4)]
        many = c.post("/reviews", json=batch, headers=auth(key))
        assert many.status_code == 413 and "max_batch" in many.json()["detail"]
        assert world_store.get_review("b0") is None


# ------------------------------------------------------------------------------------------ writes are read back
def test_a_review_is_visible_to_the_next_read(client: TestClient, world_store: Store, key: str) -> None:
    before = client.get("/items/lamp/rating", params={"observer": "alice"}).json()
    quality_before = client.get("/items/lamp/quality").json()
    r = client.post("/reviews", json={"id": "r-bob-2", "item_id": "lamp", "user_id": "bob", "rating": 1.0},
                    headers=auth(key))
    assert r.status_code == 201 and r.json() == {"kind": "reviews", "received": 1, "inserted": 1}
    after = client.get("/items/lamp/rating", params={"observer": "alice"}).json()
    assert "r-bob-2" in {c["review_id"] for c in after["contributions"]}
    assert after["rating"] < before["rating"]
    expected = rater_from_store(world_store).effective_rating("lamp", "alice")
    assert after["rating"] == pytest.approx(expected.rating, rel=1e-6)
    quality_after = client.get("/items/lamp/quality").json()
    assert quality_after["n_ratings"] == quality_before["n_ratings"]  # one current rating per (user, item)
    assert quality_after["quality"] < quality_before["quality"]
    assert client.get("/items/lamp").json()["n_reviews"] == 5  # replaced, not added
    again = client.post("/reviews", json={"id": "r-bob-2", "item_id": "lamp", "user_id": "bob", "rating": 1.0},
                        headers=auth(key))
    assert again.json()["inserted"] == 0  # idempotent by id
    assert client.get("/items/lamp/quality").json()["n_ratings"] == quality_after["n_ratings"]


def test_a_new_item_from_a_review_batch(client: TestClient, key: str) -> None:
    batch = [{"id": f"k{k}", "item_id": "kettle", "user_id": u, "rating": 4, "topic": "reviews.public.home.kitchen",
              "item_title": "Kettle", "created_at": "2026-01-02T03:04:05Z"} for k, u in enumerate(["bob", "dave"])]
    r = client.post("/reviews", json=batch, headers=auth(key))
    assert r.status_code == 201 and r.json()["inserted"] == 2
    item = client.get("/items/kettle").json()
    assert item["topic"] == "reviews.public.home.kitchen" and item["title"] == "Kettle" and item["n_reviews"] == 2
    rating = client.get("/items/kettle/rating", params={"observer": "alice"}).json()
    assert rating["contributing_reviews"] == 2 and rating["topic"] == "reviews.public.home.kitchen"
    assert client.get("/items/kettle/quality").json()["n_ratings"] == 2
    assert client.get("/users/bob/reliability").json()["n_ratings"] == 3


def test_trust_vote_and_flag_are_visible_to_the_next_read(client: TestClient, key: str) -> None:
    def contributions() -> dict[str, Any]:
        body = client.get("/items/lamp/rating", params={"observer": "alice"}).json()
        return {c["review_id"]: c for c in body["contributions"]}

    assert "r-eve" not in contributions()
    t = client.post("/trust", json={"truster_id": "alice", "trustee_id": "eve", "domain": "reviews.public",
                                    "level": 0.5}, headers=auth(key))
    assert t.status_code == 201
    now = contributions()
    decay = load_settings().trust.topic_inheritance_decay
    assert now["r-eve"]["T"] == pytest.approx(0.5 * decay**2)  # reviews.public is two steps above the lamp topic
    h_before = now["r-eve"]["H"]
    v = client.post("/votes", json=[{"review_id": "r-eve", "voter_id": "bob", "helpful": True}], headers=auth(key))
    assert v.status_code == 201 and v.json()["inserted"] == 1
    assert contributions()["r-eve"]["H"] > h_before  # Bob, whom Alice trusts, found Eve's review helpful
    f = client.post("/flags", json={"review_id": "r-eve", "flagger_id": "mod", "reason": "fake", "severity": 1},
                    headers=auth(key))
    assert f.status_code == 201
    penalty = load_settings().trust.flag_penalty_per_severity
    assert contributions()["r-eve"]["F"] == pytest.approx(1.0 - penalty)  # Alice trusts the moderator


def test_events_written_by_another_process_are_picked_up(world_store: Store) -> None:
    with TestClient(create_app(world_store, settings_for_tests())) as c:
        assert c.get("/items/teapot").status_code == 404
        world_store.add_items([Item("teapot", "reviews.public.home.kitchen", "Teapot")])
        world_store.add_reviews([Review("t1", "teapot", "bob", 5.0, days_ago(1))])
        rating = c.get("/items/teapot/rating", params={"observer": "alice"})
        assert rating.status_code == 200 and rating.json()["contributing_reviews"] == 1
        world_store.add_trust([TrustEdge("alice", "carol", "reviews.public", 1.0, days_ago(1))])
        assert c.app.state.truescore.check_store() is True
        body = c.get("/items/lamp/rating", params={"observer": "alice"}).json()
        assert "r-carol" in {x["review_id"] for x in body["contributions"]}
        assert c.app.state.truescore.check_store() is False


# ------------------------------------------------------------------------------------------ errors of last resort
def test_unexpected_errors_are_clean_json_500(world_store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    app = create_app(world_store, settings_for_tests())
    with TestClient(app, raise_server_exceptions=False) as c:
        monkeypatch.setattr(world_store, "topics", lambda: 1 / 0)
        r = c.get("/topics")
        assert r.status_code == 500
        assert r.json() == {"detail": "internal error (ZeroDivisionError); it was logged on the server"}


def test_store_errors_are_503(world_store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    from truescore.store import StoreError

    def broken() -> None:
        raise StoreError("database is gone")

    with TestClient(create_app(world_store, settings_for_tests())) as c:
        monkeypatch.setattr(world_store, "topics", broken)
        r = c.get("/topics")
        assert r.status_code == 503 and "database is gone" in r.json()["detail"]


def test_cors_is_configurable(world_store: Store) -> None:
    with TestClient(create_app(world_store, settings_for_tests(cors_origins=["https://shop.example"]))) as c:
        r = c.options("/items", headers={"Origin": "https://shop.example", "Access-Control-Request-Method": "GET"})
        assert r.headers["access-control-allow-origin"] == "https://shop.example"
    with TestClient(create_app(world_store, settings_for_tests())) as c:
        r = c.get("/items", headers={"Origin": "https://shop.example"})
        assert "access-control-allow-origin" not in r.headers
