"""Issue 10, part A: one rule-set for every entry point (breaks 5, 6, 7 and the rating / created_at /
zero-width parts of 14), on SQLite and PostgreSQL.

Each break is tried through the API and, where it applies, through the importer. Each must be refused
with a 4xx (or an import error) that names the rule, write nothing, leave the public view unchanged,
and leave a store on which a new app starts and every rating is finite.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from truescore.api import create_app
from truescore.api.schemas import ReviewCreate, TrustCreate
from truescore.config import ConfigError, Settings, load_settings
from truescore.domain import (
    MAX_EPOCH,
    Item,
    Review,
    RuleError,
    TrustEdge,
    User,
    UserRole,
    clean_id,
    clean_timestamp,
    clean_topic,
    epoch_seconds,
)
from truescore.jobs import rater_from_store
from truescore.store import Store, service
from truescore.store.ingest import ImportValidationError, import_file, import_frame
from truescore.trust.topics import topic_chain, validate_topic

from conftest import run_cli

T0 = 1_700_000_000.0  # 2023-11-14, epoch seconds
REVIEW = {"id": "r-new", "item_id": "i26", "user_id": "u30", "rating": 4}


def settings(**top: Any) -> Settings:
    return load_settings(api={"refresh_seconds": 0, "summary_ttl_seconds": 0}, **top)


def build(store: Store) -> None:
    store.add_users([User("operator", role=UserRole.OPERATOR), *(User(f"u{k}") for k in range(1, 8)), User("u30")])
    store.add_items([Item("i26", "reviews.public.home", "Kettle"), Item("i5", "reviews.public.home", "Lamp")])
    store.add_reviews([Review(f"r{k}", "i26", f"u{k}", float(1 + k % 5), created_at=pd.Timestamp(T0 + k, unit="s"))
                       for k in range(1, 8)])
    store.add_trust([TrustEdge("operator", f"u{k}", "reviews.public", 0.9) for k in range(1, 8)])


@pytest.fixture
def world(store_url: str) -> Iterator[str]:
    with Store.open(store_url) as s:
        build(s)
    yield store_url


@pytest.fixture
def key(world: str) -> str:
    with Store.open(world) as s:
        return service.create_key(s, "tests")[1]


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def public_view(client: TestClient) -> dict[str, Any]:
    """What the public sees of i26 (volatile fields removed)."""
    base = client.get("/items/i26/baseline").json()
    base.pop("computed_at", None)
    for c in base.get("contributions", []):
        c.pop("age_days", None)
        c.pop("R", None)
        c.pop("weight", None)
    return {"item": client.get("/items/i26").json(), "reviews": client.get("/items/i26/reviews").json(),
            "baseline": {k: base[k] for k in ("rating", "contributing_reviews", "total_reviews_considered",
                                              "unweighted_mean")},
            "users": [u["id"] for u in client.get("/items/i26/reviews").json()["data"]]}


def assert_store_sound(url: str, counts: dict[str, int]) -> None:
    """Nothing was written, every stored rating normalises to a finite number, and an app starts again."""
    with Store.open(url) as s:
        assert s.counts() == counts
        snap = s.snapshot()
        assert np.isfinite(snap.rating).all() and np.isfinite(snap.created_at).all()
        with TestClient(create_app(s, settings())) as again:
            assert again.get("/health").status_code == 200
            assert again.get("/items/i26/rating", params={"observer": "operator"}).status_code == 200
            assert again.get("/items/i26/reviews").status_code == 200


# ------------------------------------------------------------------------------------------ through the API
API_BREAKS = [
    # break 5: a scale so wide that the normalised rating is not finite
    pytest.param({**REVIEW, "rating": 1.7e308, "min_rating": -1.7e308, "max_rating": 1.7e308}, "max_rating",
                 "rating scale", id="5-huge-scale"),
    pytest.param({**REVIEW, "created_at": -1e11}, "created_at", "timestamp range", id="5-before-year-1"),
    # break 6: dates are never guessed
    pytest.param({**REVIEW, "created_at": "9999-12-31"}, "created_at", "timestamp range", id="6-year-9999"),
    pytest.param({**REVIEW, "created_at": 1_700_000_000_000}, "created_at", "epoch-unit ms", id="6-millis"),
    pytest.param({**REVIEW, "created_at": 100_000_000_001}, "created_at", "timestamp range", id="6-1e11"),
    # break 14: strict JSON types, ids without zero-width or bidi characters
    pytest.param({**REVIEW, "rating": True}, "rating", "valid number", id="14-rating-true"),
    pytest.param({**REVIEW, "rating": "3"}, "rating", "valid number", id="14-rating-string"),
    pytest.param({**REVIEW, "created_at": True}, "created_at", "", id="14-created-at-true"),
    pytest.param({**REVIEW, "created_at": "1700000000"}, "created_at", "JSON number", id="14-created-at-string"),
    pytest.param({**REVIEW, "user_id": "u30\u200b"}, "user_id", "zero-width", id="14-zero-width-user"),
    pytest.param({**REVIEW, "user_id": "u30\u202e"}, "user_id", "bidi", id="14-bidi-user"),
    pytest.param({**REVIEW, "item_id": "i26\u0007"}, "item_id", "control", id="14-control-item"),
    pytest.param({**REVIEW, "verified_purchase": 1}, "verified_purchase", "valid boolean", id="14-bool-as-int"),
]


@pytest.mark.parametrize(("body", "field", "reason"), API_BREAKS)
def test_api_refuses_each_break_and_writes_nothing(world: str, key: str, body: dict[str, Any], field: str,
                                                    reason: str) -> None:
    with Store.open(world) as store, TestClient(create_app(store, settings())) as client:
        before, counts = public_view(client), store.counts()
        r = client.post("/reviews", json=body, headers=auth(key))
        assert r.status_code == 422, r.text
        errors = r.json()["errors"]
        assert any(e["field"].startswith(field) and reason in e["reason"] for e in errors), errors
        assert public_view(client) == before
    assert_store_sound(world, counts)


def test_api_limits_come_from_the_apps_settings(world: str, key: str) -> None:
    """An app created with max_text_bytes=100 refuses a 5,000-byte review; max_id_length is the app's too."""
    with Store.open(world) as store:
        counts = store.counts()
        with TestClient(create_app(store, settings(max_text_bytes=100, max_id_length=8))) as client:
            long_text = client.post("/reviews", json={**REVIEW, "text": "x" * 5000}, headers=auth(key))
            assert long_text.status_code == 422
            assert long_text.json()["errors"][0]["field"] == "text"
            assert "max_text_bytes" in long_text.json()["errors"][0]["reason"]
            long_id = client.post("/reviews", json={**REVIEW, "id": "r" * 9}, headers=auth(key))
            assert long_id.status_code == 422 and "max_id_length" in long_id.json()["errors"][0]["reason"]
        assert store.counts() == counts
        with TestClient(create_app(store, settings(max_id_length=20))) as client:
            ok = client.post("/reviews", json={**REVIEW, "id": "r" * 20}, headers=auth(key))
            assert ok.status_code == 201, ok.text
            assert store.get_review("r" * 20) is not None
    with pytest.raises(ConfigError, match="max_id_length"):  # the store's id columns hold 256 characters
        settings(max_id_length=300)


def test_api_nfc_normalises_ids(world: str, key: str) -> None:
    """'e' + combining acute and the precomposed 'é' are one user."""
    with Store.open(world) as store, TestClient(create_app(store, settings())) as client:
        r = client.post("/reviews", json=[{**REVIEW, "id": "a1", "user_id": "Ame\u0301lie"},
                                          {**REVIEW, "id": "a2", "item_id": "i5", "user_id": "Am\u00e9lie"}],
                        headers=auth(key))
        assert r.status_code == 201, r.text
        assert {rv.user_id for rv in store.reviews_by_user("Am\u00e9lie")} == {"Am\u00e9lie"}
        assert len(store.reviews_by_user("Am\u00e9lie")) == 2


def test_api_trust_domain_rule(world: str, key: str) -> None:
    with Store.open(world) as store, TestClient(create_app(store, settings())) as client:
        edges = len(store.trust_edges())
        bad = client.post("/trust", json={"truster_id": "u1", "trustee_id": "u2", "domain": "Reviews.Public",
                                          "level": 1.0}, headers=auth(key))
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "domain"
        stamp = client.post("/trust", json={"truster_id": "u1", "trustee_id": "u2", "level": True}, headers=auth(key))
        assert stamp.status_code == 422 and stamp.json()["errors"][0]["field"] == "level"
        assert len(store.trust_edges()) == edges


# ------------------------------------------------------------------------------------------ through the importer
def _csv(tmp_path: Path, text: str, name: str = "in.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


IMPORT_BREAKS = [
    # break 7: a row with more (or fewer) fields than the header is refused, naming it
    pytest.param("id,item_id,user_id,rating\nok-1,i5,u1,3\nshift-1,i5,u7,4,5\n", 2, "record", "fields",
                 id="7-extra-field"),
    pytest.param("id,item_id,user_id,rating\nshort-1,i5,u7\n", 1, "record", "fields", id="7-missing-field"),
    pytest.param("id,item_id,user_id,rating,min_rating,max_rating\nbig,i26,u30,1.7e308,-1.7e308,1.7e308\n", 1,
                 "max_rating", "rating scale", id="5-huge-scale"),
    pytest.param("id,item_id,user_id,rating,created_at\nold,i26,u30,4,-100000000000\n", 1, "created_at",
                 "timestamp range", id="5-before-year-1"),
    pytest.param("id,item_id,user_id,rating,created_at\nfar,i26,u30,4,9999-12-31\n", 1, "created_at",
                 "timestamp range", id="6-year-9999"),
    pytest.param("id,item_id,user_id,rating,created_at\nms,i26,u30,4,1700000000000\n", 1, "created_at",
                 "--epoch-unit ms", id="6-millis"),
    pytest.param("id,item_id,user_id,rating,created_at\nms2,i26,u30,4,100000000001\n", 1, "created_at",
                 "timestamp range", id="6-1e11"),
    pytest.param("id,item_id,user_id,rating\nzw,i26,u30\u200b,4\n", 1, "user_id", "zero-width", id="14-zero-width"),
    pytest.param("id,item_id,user_id,rating\nbidi,i26,u\u202e03,4\n", 1, "user_id", "bidi", id="14-bidi"),
    pytest.param("id,item_id,user_id,rating,topic\nt,i9,u30,4,Reviews.Public\n", 1, "topic", "dotted topic",
                 id="topic-rule"),
]


@pytest.mark.parametrize(("content", "row", "field", "reason"), IMPORT_BREAKS)
def test_importer_refuses_each_break_and_writes_nothing(world: str, tmp_path: Path, content: str, row: int,
                                                        field: str, reason: str) -> None:
    with Store.open(world) as store:
        counts = store.counts()
        with pytest.raises(ImportValidationError) as info:
            import_file(store, _csv(tmp_path, content), "reviews", settings=settings())
        assert any(e.row == row and e.field == field and reason in e.reason for e in info.value.errors), \
            info.value.errors
        assert f"row {row}" in str(info.value)
    assert_store_sound(world, counts)


def test_importer_reads_milliseconds_only_when_told(world: str, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    path = _csv(tmp_path, "id,item_id,user_id,rating,created_at\nms,i26,u30,4,1700000000000\n")
    code, _, err = run_cli(["import", str(path), "--db", world], capsys)
    assert code == 1 and "--epoch-unit ms" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli(["import", str(path), "--epoch-unit", "ms", "--db", world], capsys)
    assert code == 0, err
    with Store.open(world) as store:
        stored = store.get_review("ms")
        assert stored is not None and stored.created_at.timestamp() == pytest.approx(1_700_000_000.0)
    code, _, err = run_cli(["import", str(path), "--epoch-unit", "us", "--db", world], capsys)
    assert code == 1 and "--epoch-unit" in err


def test_importer_limits_come_from_the_callers_settings(world: str) -> None:
    frame = pd.DataFrame([{**REVIEW, "text": "x" * 5000}])
    with Store.open(world) as store:
        with pytest.raises(ImportValidationError, match="max_text_bytes"):
            import_frame(store, frame, "reviews", settings=settings(max_text_bytes=100))
        assert store.get_review("r-new") is None
        assert import_frame(store, frame, "reviews", settings=settings()).rows_inserted == 1


def test_importer_json_lines_types_are_strict(world: str, tmp_path: Path) -> None:
    """JSON booleans are not numbers nor timestamps (``rating: true`` was stored as 1, ``created_at: true`` as 1970)."""
    path = tmp_path / "in.jsonl"
    rows = [{**REVIEW, "id": "b1", "rating": True}, {**REVIEW, "id": "b2", "created_at": True},
            {**REVIEW, "id": "b3", "min_rating": False}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    with Store.open(world) as store:
        counts = store.counts()
        with pytest.raises(ImportValidationError) as info:
            import_file(store, path, "reviews", settings=settings())
        got = {(e.row, e.field) for e in info.value.errors}
        assert got == {(1, "rating"), (2, "created_at"), (3, "min_rating")}
        assert all("boolean" in e.reason for e in info.value.errors)
        assert store.counts() == counts


def test_csv_rows_of_the_right_width_still_import(world: str, tmp_path: Path) -> None:
    """Quoted commas, quoted newlines, blank lines and a UTF-8 BOM are fine; empty fields are missing."""
    text = ("\ufeffid,item_id,user_id,rating,title,created_at\n"
            'q1,i5,u1,4,"a, b",2024-02-03T04:05:06Z\n\n'
            'q2,i5,u2,5,"two\nlines",\n')
    with Store.open(world) as store:
        report = import_file(store, _csv(tmp_path, text), "reviews", settings=settings())
        assert report.rows_inserted == 2
        q1, q2 = store.get_review("q1"), store.get_review("q2")
        assert q1 is not None and q1.title == "a, b"
        assert q1.created_at.timestamp() == pytest.approx(1706933106.0)
        assert q2 is not None and q2.title == "two\nlines"


def test_importer_reads_datetime_columns(store: Store, tmp_path: Path) -> None:
    """Parquet (and database tables) carry real datetimes: naive is UTC, aware is converted, NaT is missing."""
    frame = pd.DataFrame({"id": ["d1", "d2", "d3"], "item_id": "i1", "user_id": ["u1", "u2", "u3"], "rating": 4.0,
                          "created_at": pd.to_datetime(["2024-01-01T00:00:00", "2024-06-01T12:00:00", None])})
    path = tmp_path / "r.parquet"
    frame.to_parquet(path)
    before = pd.Timestamp.now(tz="UTC").timestamp()
    assert import_file(store, path, "reviews", settings=settings()).rows_inserted == 3
    got = {r.id: r.created_at.timestamp() for r in store.reviews_of_item("i1")}
    assert got["d1"] == 1704067200.0 and got["d2"] == 1717243200.0 and got["d3"] >= before - 1
    aware = frame.assign(id=["e1", "e2", "e3"], created_at=frame["created_at"].dt.tz_localize("Europe/Berlin"))
    import_frame(store, aware, "reviews", settings=settings())
    assert store.get_review("e1").created_at.timestamp() == 1704067200.0 - 3600  # type: ignore[union-attr]
    old = frame.assign(id=["o1", "o2", "o3"], created_at=pd.to_datetime(["1960-01-01", "2024-01-01", "2024-01-01"]))
    with pytest.raises(ImportValidationError, match="timestamp range"):
        import_frame(store, old, "reviews", settings=settings())


# ------------------------------------------------------------------------------------------ one rule everywhere
TOPICS = ["reviews.public", "reviews.public.home.lamps", "reviews", "a-b_c.d9", "Reviews.Public", "reviews..x",
          ".reviews", "reviews.", "reviews public", "reviews/public", "r" * 513, "rêviews.public", ""]


def _accepts(fn: Any) -> set[str]:
    ok = set()
    for t in TOPICS:
        try:
            fn(t)
        except ValueError:
            continue
        ok.add(t)
    return ok


def test_the_topic_rule_is_one_rule(store: Store) -> None:
    """The trust engine, the importer and the API schemas accept exactly the same topics."""
    domain = _accepts(clean_topic)
    assert domain == {"reviews.public", "reviews.public.home.lamps", "reviews", "a-b_c.d9"}
    assert _accepts(validate_topic) == domain
    assert _accepts(topic_chain) == domain
    assert _accepts(lambda t: TrustCreate(truster_id="a", trustee_id="b", domain=t, level=1.0)) == domain
    assert _accepts(lambda t: ReviewCreate(id="x", item_id="i", user_id="u", rating=3, topic=t)) == domain

    def imported(t: str) -> None:
        frame = pd.DataFrame([{"id": "i-" + str(abs(hash(t))), "topic": t}])
        try:
            import_frame(store, frame, "items", settings=settings())
        except ImportValidationError as exc:
            raise ValueError(str(exc)) from None

    assert _accepts(imported) == domain - {""}  # an empty topic cell is a missing one: the default applies
    store.add_items([Item("lamp", "reviews.public.home.lamps")])
    store.add_reviews([Review("r1", "lamp", "ann", 4.0)])
    rater = rater_from_store(store)
    with pytest.raises(ValueError, match="dotted topic"):
        rater.effective_rating("lamp", "ann", topic="Reviews.Public")


def test_timestamp_rule_is_one_rule() -> None:
    """The scalar rule (API) and the column rule (importer) agree on every value."""
    values: list[Any] = [0, 1.7e9, MAX_EPOCH, MAX_EPOCH + 1, -1, -1e11, 1e11, 1.7e12, "2024-01-01",
                         "2024-01-01T10:00:00+02:00", "9999-12-31", "0001-01-01", "yesterday", True, float("inf")]
    column, reasons = epoch_seconds(values)
    for value, seconds, reason in zip(values, column, reasons, strict=True):
        try:
            scalar: float | None = clean_timestamp(value)
        except RuleError:
            scalar = None
        assert (scalar is None) == (reason is not None), value
        if scalar is not None:
            assert scalar == seconds
    assert clean_timestamp(1.7e12, unit="ms") == 1.7e9


def test_id_rule() -> None:
    assert clean_id("  u30 ", max_length=10) == "u30"
    assert clean_id("Ame\u0301lie", max_length=10) == "Am\u00e9lie"
    for bad in ["u30\u200b", "u\u200d30", "\u2066u30", "u30\ufeff", "u\x0030", "u\n30", ""]:
        with pytest.raises(RuleError):
            clean_id(bad, max_length=10)
    with pytest.raises(RuleError, match="max_id_length"):
        clean_id("abcdefghijk", max_length=10)


def test_cli_topic_options_follow_the_topic_rule(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 'c.db'}"
    Store.open(db).close()
    for cmd in (["rank", "--no-write"], ["fit"], ["score"], ["rate", "i26", "--observer", "u1"]):
        code, _, err = run_cli([*cmd, "--topic", "Reviews.Public", "--db", db], capsys)
        assert code == 1 and "--topic: 'Reviews.Public' is not a dotted topic" in err, (cmd, err)
        assert len(err.strip().splitlines()) == 1
