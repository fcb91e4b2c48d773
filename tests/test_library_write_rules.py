"""Issue 19 (acceptance 2) and issue 20 (item 5): the library, the importer and the API apply the same write
rules, on SQLite and PostgreSQL.

``Store.add_reviews``, ``import_file`` / ``import_frame`` and ``POST /reviews`` refuse a review that supersedes
another user's review (or a review of another item), a rating outside its scale or not finite, and an id
stored with other content, with the same messages; they set ``supersedes`` when a user's later review replaces
their current one and treat an identical re-post as a no-op; the same writes through each door leave the same
store. Ids read from JSON Lines and Parquet stay the text they were (``31``, never ``31.0``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from truescore.api import create_app
from truescore.config import Settings, load_settings
from truescore.domain import ConflictError, Item, Review, RowsRefused, RuleError, from_epoch
from truescore.store import Store, schema
from truescore.store.ingest import ImportValidationError, import_file, import_frame

T0 = 1_700_000_000.0  # 2023-11-14, epoch seconds
COLUMNS = ["id", "user_id", "item_id", "rating", "supersedes"]


def settings() -> Settings:
    return load_settings(api={"refresh_seconds": 0, "summary_ttl_seconds": 0})


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def review(rid: str, user: str, item: str, rating: float, t: float, **extra: Any) -> Review:
    return Review(rid, item, user, rating, created_at=from_epoch(T0 + t), **extra)


def body(r: Review) -> dict[str, Any]:
    """A review as the API takes it (epoch seconds)."""
    out: dict[str, Any] = {"id": r.id, "item_id": r.item_id, "user_id": r.user_id, "rating": r.rating,
                           "created_at": r.created_at.timestamp()}
    if r.supersedes is not None:
        out["supersedes"] = r.supersedes
    return out


def reviews_table(store: Store) -> list[tuple[Any, ...]]:
    """Every stored review (history included), as (id, user_id, item_id, rating, supersedes), by id."""
    df = store.read_table("reviews")
    rows = [tuple(None if pd.isna(v) else v for v in row) for row in df[COLUMNS].itertuples(index=False)]
    return sorted(rows)


def wipe(store: Store) -> None:
    """Empty the event tables, for the next door to write into a store as new as the first one's."""
    with store.engine.begin() as conn:
        for table in (schema.votes, schema.flags, schema.reviews, schema.trust, schema.users, schema.items):
            conn.execute(table.delete())


def api_detail(client: TestClient, key: str, rows: Sequence[dict[str, Any]], status: int) -> str:
    r = client.post("/reviews", json=list(rows), headers=auth(key))
    assert r.status_code == status, r.text
    return str(r.json()["detail"])


# ------------------------------------------------------------------------------------------ the same messages
def test_library_refuses_another_users_supersedes_with_the_apis_message(store: Store, client: TestClient,
                                                                         admin_key: str) -> None:
    store.add_reviews([review("r-ann", "ann", "lamp", 5.0, 0), review("r-ann-pan", "ann", "pan", 4.0, 1)])
    before = reviews_table(store)
    for target in ("r-ann", "r-ann-pan"):  # another user's review; a review of another item (by ann herself)
        user = "bob" if target == "r-ann" else "ann"
        hide = review("hide", user, "lamp", 1.0, 10, supersedes=target)
        with pytest.raises(RuleError) as refused:
            store.add_reviews([hide])
        assert refused.value.row == 1 and refused.value.field == "supersedes"
        assert "a review may supersede only its author's own review of the same item" in str(refused.value)
        assert str(refused.value) == api_detail(client, admin_key, [body(hide)], 422)
        with pytest.raises(RuleError) as as_row:
            store.add_review_rows([{**body(hide), "rating": 1.0}])
        assert str(as_row.value) == str(refused.value)
    assert reviews_table(store) == before  # nothing was written, by either door


@pytest.mark.parametrize("rating", [7.0, 0.0])
def test_library_refuses_a_rating_outside_its_scale_with_the_apis_message(store: Store, client: TestClient,
                                                                          admin_key: str, rating: float) -> None:
    bad = review("r-7", "ann", "lamp", rating, 0)
    with pytest.raises(RowsRefused) as refused:
        store.add_reviews([bad])
    assert (refused.value.row, refused.value.field) == (1, "rating")
    assert f"row 1, field rating: {rating:g} is outside the scale 1..5" in str(refused.value)
    assert str(refused.value) == api_detail(client, admin_key, [body(bad)], 422)
    assert store.counts()["reviews"] == 0


@pytest.mark.parametrize("rating", [float("nan"), float("inf"), float("-inf")])
def test_library_refuses_a_rating_that_is_not_finite(store: Store, rating: float) -> None:
    with pytest.raises(RowsRefused, match=r"row 2, field rating: (nan|inf|-inf) is not a finite number"):
        store.add_reviews([review("ok", "ann", "lamp", 4.0, 0), review("x", "bob", "lamp", rating, 1)])
    assert store.counts()["reviews"] == 0  # the good review of the same call is not written either


def test_library_reposts_identical_is_no_op_other_content_is_a_conflict(store: Store, client: TestClient,
                                                                        admin_key: str) -> None:
    first = review("c-1", "carol", "vase", 4.0, 0, text="Nice.")
    assert store.add_reviews([first]) == 1
    assert store.add_reviews([first]) == 0  # the same review again: nothing new
    changed = review("c-1", "carol", "vase", 1.0, 0, text="Nice.")
    with pytest.raises(ConflictError) as refused:
        store.add_reviews([changed])
    assert (refused.value.row, refused.value.field) == (1, "rating")
    detail = api_detail(client, admin_key, [body(changed) | {"text": "Nice."}], 409)
    assert detail == f"conflict: row 1: {refused.value.reason}"
    later = review("c-1", "carol", "vase", 4.0, 60, text="Nice.")  # another time is another event
    with pytest.raises(ConflictError, match="created_at"):
        store.add_reviews([later])
    assert reviews_table(store) == [("c-1", "carol", "vase", 4.0, None)]


def test_library_sets_supersedes_for_a_replacing_review(store: Store) -> None:
    store.add_reviews([review("a1", "ann", "lamp", 2.0, 0), review("b1", "bob", "lamp", 3.0, 5)])
    store.add_reviews([review("a2", "ann", "lamp", 5.0, 10), review("a0", "ann", "lamp", 1.0, -10)])
    assert reviews_table(store) == [("a0", "ann", "lamp", 1.0, None), ("a1", "ann", "lamp", 2.0, None),
                                    ("a2", "ann", "lamp", 5.0, "a1"), ("b1", "bob", "lamp", 3.0, None)]
    assert sorted(r.id for r in store.reviews_of_item("lamp")) == ["a2", "b1"]


# ------------------------------------------------------------------------------------------ the same store
#: writes in order: first reviews; a replacing and an older one; an identical re-post and a new user; an
#: explicit supersedes of the author's own review; two reviews of one pair in one batch
BATCHES = [
    [review("r1", "ann", "lamp", 4.0, 0), review("r2", "bob", "lamp", 2.0, 1)],
    [review("r3", "ann", "lamp", 5.0, 20), review("r0", "ann", "lamp", 1.0, -50)],
    [review("r2", "bob", "lamp", 2.0, 1), review("r5", "carol", "pan", 3.0, 30)],
    [review("r6", "carol", "pan", 4.0, 40, supersedes="r5")],
    [review("r7", "dave", "pan", 2.0, 50), review("r8", "dave", "pan", 3.5, 60), review("r9", "dave", "pan", 1.0, 55)],
]


def _write_file(tmp_path: Path, n: int, batch: list[Review]) -> Path:
    rows = [{"id": r.id, "user_id": r.user_id, "item_id": r.item_id, "rating": r.rating,
             "created_at": r.created_at.timestamp(), "supersedes": r.supersedes} for r in batch]
    if n % 2:  # JSON Lines
        path = tmp_path / f"batch{n}.jsonl"
        path.write_text("".join(json.dumps({k: v for k, v in row.items() if v is not None}) + "\n" for row in rows))
    else:
        path = tmp_path / f"batch{n}.csv"
        pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_the_same_writes_through_library_importer_and_api_give_the_same_store(store: Store, tmp_path: Path,
                                                                              admin_key: str) -> None:
    for batch in BATCHES:
        store.add_reviews(batch)
    library = reviews_table(store)
    assert ("r3", "ann", "lamp", 5.0, "r1") in library and ("r0", "ann", "lamp", 1.0, None) in library
    assert ("r8", "dave", "pan", 3.5, "r7") in library and ("r9", "dave", "pan", 1.0, None) in library
    live = sorted(r.id for item in ("lamp", "pan") for r in store.reviews_of_item(item))

    wipe(store)
    for n, batch in enumerate(BATCHES):
        import_file(store, _write_file(tmp_path, n, batch), "reviews")
    assert reviews_table(store) == library

    wipe(store)
    with TestClient(create_app(store, settings())) as client:
        for batch in BATCHES:
            r = client.post("/reviews", json=[body(x) for x in batch], headers=auth(admin_key))
            assert r.status_code == 201, r.text
    assert reviews_table(store) == library
    assert sorted(r.id for item in ("lamp", "pan") for r in store.reviews_of_item(item)) == live

    wipe(store)
    for batch in BATCHES:  # an in-memory frame through the importer, and the library's row dicts
        frame = pd.DataFrame([body(x) for x in batch])
        import_frame(store, frame, "reviews")
    assert reviews_table(store) == library
    wipe(store)
    for batch in BATCHES:
        store.add_review_rows([body(x) for x in batch])
    assert reviews_table(store) == library


def test_a_large_import_replaces_each_authors_current_review(store: Store) -> None:
    """More (user, item) pairs than the store matches with one query per 300 (it joins a temporary table)."""
    n = 1_500
    store.add_reviews([review(f"old-{k}", f"u{k}", f"i{k % 7}", 3.0, k) for k in range(n)])
    later = {k for k in range(n) if k % 10}  # replaces the stored review; the others are older: history
    frame = pd.DataFrame({"id": [f"new-{k}" for k in range(n)], "user_id": [f"u{k}" for k in range(n)],
                          "item_id": [f"i{k % 7}" for k in range(n)], "rating": 4.0,
                          "created_at": [T0 + (10_000 + k if k in later else -10_000) for k in range(n)]})
    assert import_frame(store, frame, "reviews").rows_inserted == n
    stored = {row[0]: row[4] for row in reviews_table(store)}
    assert all(stored[f"new-{k}"] == (f"old-{k}" if k % 10 else None) for k in range(n))
    assert store.snapshot().n_ratings == n  # one current review per author and item


# ------------------------------------------------------------------------------------------ hostile imports
def test_a_file_superseding_24_other_users_reviews_is_refused_and_writes_nothing(store: Store, tmp_path: Path,
                                                                                 admin_key: str) -> None:
    store.add_items([Item("top", "reviews.public.home", "Top lamp")])
    store.add_reviews([review(f"honest-{k}", f"user-{k}", "top", 5.0, k) for k in range(24)])
    before, counts = reviews_table(store), store.counts()
    rows = [{"id": f"hide-{k}", "item_id": "top", "user_id": "shill", "rating": 1, "created_at": T0 + 100 + k,
             "supersedes": f"honest-{k}"} for k in range(24)]
    path = tmp_path / "hostile.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    with pytest.raises(ImportValidationError) as refused:
        import_file(store, path, "reviews")
    assert len({e.row for e in refused.value.errors}) == 24
    assert {e.field for e in refused.value.errors} == {"supersedes"}
    assert "row 1, field supersedes: review 'honest-0' is not by 'shill' on item 'top'" in str(refused.value)
    assert "24 of 24 rows are invalid, nothing was imported" in str(refused.value)
    report = import_file(store, path, "reviews", skip_bad=True)  # --skip-bad: every row is a bad one
    assert report.rows_rejected == 24 and report.rows_inserted == 0
    assert reviews_table(store) == before and store.counts() == counts
    assert len(store.reviews_of_item("top")) == 24
    with TestClient(create_app(store, settings())) as client:  # the API refuses the same rows
        detail = api_detail(client, admin_key, rows, 422)
    assert detail == str(RuleError("supersedes", refused.value.errors[0].reason, 1))
    assert store.counts() == counts


def test_an_import_failing_a_rule_names_the_row_and_field_and_writes_nothing(store: Store, tmp_path: Path) -> None:
    store.add_reviews([review("r-bob", "bob", "lamp", 4.0, 0)])
    counts = store.counts()
    path = tmp_path / "mixed.csv"
    path.write_text("id,item_id,user_id,rating,created_at,supersedes\n"
                    f"ok-1,lamp,ann,4,{T0 + 1},\n"
                    f"bad-2,lamp,carol,2,{T0 + 2},r-bob\n"
                    f"r-bob,lamp,bob,1,{T0},\n", encoding="utf-8")
    with pytest.raises(ImportValidationError) as refused:
        import_file(store, path, "reviews", batch_size=1)
    found = {(e.row, e.field) for e in refused.value.errors}
    assert found == {(2, "supersedes"), (3, "rating")}  # another user's review; an id stored with another rating
    assert "already stored with another rating" in str(refused.value)
    assert store.counts() == counts


# ------------------------------------------------------------------------------------------ ids stay text
def _jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_integer_ids_with_a_null_stay_text_in_jsonl(store: Store, tmp_path: Path) -> None:
    rows = [{"id": 1, "item_id": 7, "user_id": 31, "rating": 2, "created_at": T0},
            {"id": 2, "item_id": 7, "user_id": None, "rating": 3, "created_at": T0 + 1},
            {"id": 3, "item_id": 7, "user_id": 31, "rating": 4, "created_at": T0 + 2, "supersedes": 1}]
    report = import_file(store, _jsonl(tmp_path / "a.jsonl", rows), "reviews", skip_bad=True)
    assert report.rows_rejected == 1 and report.rows_inserted == 2
    assert reviews_table(store) == [("1", "31", "7", 2.0, None), ("3", "31", "7", 4.0, "1")]
    # 31 in another file (a CSV, where every value is text) is the same user
    (tmp_path / "b.csv").write_text(f"id,item_id,user_id,rating,created_at\n4,8,31,5,{T0 + 3}\n", encoding="utf-8")
    import_file(store, tmp_path / "b.csv", "reviews")
    assert sorted(r.id for r in store.reviews_by_user("31")) == ["3", "4"]
    assert store.get_user("31.0") is None and store.get_item("7.0") is None


@pytest.mark.parametrize("id_type", ["int64", "float64"])
def test_integer_ids_with_a_null_stay_text_in_parquet(store: Store, tmp_path: Path, id_type: str) -> None:
    kind = pa.int64() if id_type == "int64" else pa.float64()  # a float column: what pandas writes after upcast
    table = pa.table({
        "id": pa.array([1, 2, 3], kind),
        "item_id": pa.array([7, 7, 7], kind),
        "user_id": pa.array([31, None, 31], kind),
        "rating": pa.array([2.0, 3.0, 4.0]),
        "created_at": pa.array([T0, T0 + 1, T0 + 2]),
        "supersedes": pa.array([None, None, 1], kind),
    })
    pq.write_table(table, tmp_path / "a.parquet")
    report = import_file(store, tmp_path / "a.parquet", "reviews", skip_bad=True)
    assert report.rows_rejected == 1 and [e.field for e in report.errors] == ["user_id"]
    assert reviews_table(store) == [("1", "31", "7", 2.0, None), ("3", "31", "7", 4.0, "1")]
    assert store.get_user("31.0") is None
