"""Issue 20's remaining write-path items, each replayed through the door a red team came in by (the library's
``Store.add_*``, ``truescore import``, the HTTP API), on SQLite and PostgreSQL.

1. a review on a private scale (999999..1000000) is refused: a scale is a property of the platform
   (setting ``allowed_scales``), not a free field of each review;
2. a CSV field over 128 KiB is judged by its rule, naming its row and field (no bare csv ``field limit``);
3. an id with ``/`` (or ``.`` / ``..``) is refused: the API could store it but never reach it; every id
   that is accepted is reachable at ``/items/{id}``, percent-encoded;
4. one id with two contents in one file is a conflict naming both rows, never "already stored";
5. a UTF-8 byte order mark at the start of a JSON Lines (or CSV) file is skipped;
6. trust in oneself is refused, with its row and field;
7. ``truescore import`` writes one audit row per import, in the import's transaction;
8. an import is one transaction: one that fails or is killed after its first batch leaves nothing;
9. ``Store.add_trust``, ``add_votes``, ``add_flags``, ``add_users``, ``add_items`` apply the importer's
   rules and messages (a trust level of 50 is refused); a store that holds such a row (written before)
   makes ``truescore serve`` say why it cannot start, not "address could not be bound".
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd
import pytest
from fastapi.testclient import TestClient

import truescore.config as config_module
from truescore.config import DEFAULT_ALLOWED_SCALES, ConfigError, Settings, load_settings
from truescore.domain import (
    ConflictError,
    Flag,
    FlagReason,
    Item,
    Review,
    RowsRefused,
    TrustEdge,
    User,
    Vote,
    clean_id,
)
from truescore.store import Store, service
from truescore.store.ingest import ImportValidationError, import_file, import_frame

from conftest import REPO, run_cli

T0 = 1_700_000_000.0


def settings(**top: Any) -> Settings:
    return load_settings(api={"refresh_seconds": 0, "summary_ttl_seconds": 0}, **top)


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def db_url(store: Store) -> str:
    return store.engine.url.render_as_string(hide_password=False)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def refused(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The one line a refused command prints (exit code 1)."""
    code, _, err = run_cli(args, capsys)
    assert code == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


# ------------------------------------------------------------------------------------------ 1. private scales
ODD = {"id": "odd", "item_id": "private", "user_id": "attacker", "rating": 1_000_000.0, "min_rating": 999_999.0,
       "max_rating": 1_000_000.0}


def test_1_a_review_on_a_private_scale_is_refused_at_every_door(store: Store, client: TestClient, admin_key: str,
                                                                tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    r = client.post("/reviews", json=ODD, headers=auth(admin_key))
    assert r.status_code == 422, r.text
    (error,) = r.json()["errors"]
    assert (error["row"], error["field"]) == (1, "min_rating")
    assert error["reason"].startswith("scale 999999..1000000 is not a rating scale of this platform; allowed "
                                      "scales: 1..5, 1..10, 0..10")
    assert "(setting allowed_scales)" in error["reason"]

    with pytest.raises(RowsRefused) as library:
        store.add_reviews([Review(ODD["id"], ODD["item_id"], ODD["user_id"], ODD["rating"],
                                  min_rating=ODD["min_rating"], max_rating=ODD["max_rating"])])
    assert (library.value.row, library.value.field, library.value.reason) == (1, "min_rating", error["reason"])
    assert str(library.value) == r.json()["detail"]

    path = write(tmp_path / "odd.csv", "id,item_id,user_id,rating,min_rating,max_rating\n"
                                       "ok,lamp,ann,4,1,5\nodd,private,attacker,1000000,999999,1000000\n")
    line = refused(["import", str(path), "--db", db_url(store)], capsys)
    assert f"row 2, field min_rating: {error['reason']}" in line
    assert store.get_review("odd") is None and store.get_review("ok") is None
    assert store.get_item("private") is None


def test_1_the_field_named_is_the_bound_that_leaves_the_platforms_scales(store: Store) -> None:
    with pytest.raises(RowsRefused) as refused:  # 1 starts allowed scales, but none ends at 100
        store.add_reviews([Review("pct", "lamp", "ann", 80.0, min_rating=1.0, max_rating=100.0)])
    assert (refused.value.row, refused.value.field) == (1, "max_rating")
    assert "scale 1..100 is not a rating scale of this platform" in refused.value.reason
    # every allowed scale is accepted, the bounds and the middle of it
    rows = [Review(f"r{k}-{j}", f"i{k}", f"u{j}", value, created_at=T0, min_rating=lo, max_rating=hi)
            for k, (lo, hi) in enumerate(DEFAULT_ALLOWED_SCALES) for j, value in enumerate((lo, (lo + hi) / 2, hi))]
    assert store.add_reviews(rows) == len(rows)


def test_1_the_platforms_scales_are_one_setting(store: Store) -> None:
    odd = pd.DataFrame([ODD])
    with pytest.raises(ImportValidationError, match="allowed_scales"):
        import_frame(store, odd, "reviews", settings=settings())
    own = settings(allowed_scales=[(1, 5), (999_999, 1_000_000)])  # a platform that uses that scale
    assert own.allowed_scales == [(1.0, 5.0), (999_999.0, 1_000_000.0)]
    assert import_frame(store, odd, "reviews", settings=own).rows_inserted == 1
    for bad, why in (([], "1..100 scales"), ([(5, 1)], "min_rating < max_rating"),
                     ([(0, 2e6)], "1e+06"), ([(0, float("nan"))], "min_rating < max_rating")):
        with pytest.raises(ConfigError, match="allowed_scales") as refused:
            settings(allowed_scales=bad)
        assert why in str(refused.value)


def test_1_the_default_scales_cover_every_reference_preset_and_the_common_ones() -> None:
    # store/datasets.py: bitcoin-otc -10..10, crowd-emotion -100..100, filmtrust 0.5..4, Amazon 1..5 (the
    # default scale); tests/test_datasets.py loads the real files with these defaults and expects no rejection
    presets = {(-10.0, 10.0), (-100.0, 100.0), (0.5, 4.0), (1.0, 5.0)}
    common = {(1.0, 5.0), (1.0, 10.0), (0.0, 10.0), (0.0, 5.0), (1.0, 7.0), (0.0, 100.0), (0.5, 5.0)}
    assert presets | common <= set(DEFAULT_ALLOWED_SCALES)
    assert settings().allowed_scales == list(DEFAULT_ALLOWED_SCALES)


# ------------------------------------------------------------------------------------------ 2. a long CSV field
def test_2_a_csv_field_over_128_kib_is_refused_naming_its_row_and_field(store: Store, tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str],
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    essay = ("A pasted essay, with commas, and\nnew lines. " * 4000)[:140_000]
    frame = pd.DataFrame([{"id": "short", "item_id": "lamp", "user_id": "ann", "rating": 4, "text": "Fine."},
                          {"id": "essay", "item_id": "lamp", "user_id": "bob", "rating": 5, "text": essay}])
    path = tmp_path / "essay.csv"
    frame.to_csv(path, index=False)
    assert path.stat().st_size > 131_072
    line = refused(["import", str(path), "--db", db_url(store)], capsys)
    assert "row 2, field text: is larger than 100000 bytes (setting max_text_bytes)" in line
    assert "field limit" not in line
    assert store.counts()["reviews"] == 0
    # a platform that accepts long texts imports it whole
    monkeypatch.setenv("TRUESCORE_MAX_TEXT_BYTES", "200000")
    monkeypatch.setattr(config_module, "_cached", None)
    code, _, err = run_cli(["import", str(path), "--db", db_url(store)], capsys)
    assert code == 0, err
    stored = store.get_review("essay")
    assert stored is not None and stored.text == essay


# ------------------------------------------------------------------------------------------ 3. ids in URL paths
@pytest.mark.parametrize(("field", "value"), [("item_id", "shelf/lamp"), ("item_id", ".."), ("user_id", "."),
                                              ("id", "r/1")])
def test_3_an_id_a_url_path_cannot_carry_is_refused_at_every_door(store: Store, client: TestClient, admin_key: str,
                                                                 tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                                 field: str, value: str) -> None:
    row = {"id": "r1", "item_id": "lamp", "user_id": "ann", "rating": 4.0, field: value}
    r = client.post("/reviews", json=row, headers=auth(admin_key))
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == field
    reason = r.json()["errors"][0]["reason"]
    assert ("'/'" in reason) if "/" in value else ("dot segment" in reason)
    with pytest.raises(RowsRefused) as library:
        store.add_reviews([Review(row["id"], row["item_id"], row["user_id"], row["rating"])])
    assert (library.value.field, library.value.reason) == (field, reason)
    if field == "item_id":
        with pytest.raises(RowsRefused):
            store.add_items([Item(value, "reviews.public")])
    path = tmp_path / "ids.csv"
    pd.DataFrame([row]).to_csv(path, index=False)
    line = refused(["import", str(path), "--db", db_url(store)], capsys)
    assert f"row 1, field {field}: {reason}" in line
    assert store.counts()["reviews"] == 0 and store.counts()["items"] == 0


ODD_IDS = ["a?b", "a#b", "50%off", "a\\b", "two words", "otc:1>2", "Am\u00e9lie", "a+b&c=d;e@f~g", "...", ".x"]


def test_3_every_id_that_is_accepted_is_reachable_percent_encoded(store: Store, client: TestClient,
                                                                  admin_key: str) -> None:
    """The other half: ids with '?', '#', '%', a backslash, spaces... are stored (201) and reached (200)."""
    rows = [{"id": f"r-{k}", "item_id": item, "user_id": f"u{k}", "rating": 4.0} for k, item in enumerate(ODD_IDS)]
    r = client.post("/reviews", json=rows, headers=auth(admin_key))
    assert r.status_code == 201, r.text
    for item in ODD_IDS:
        path = f"/items/{quote(item, safe='')}"
        got = client.get(path)
        assert got.status_code == 200, (item, got.text)
        assert got.json()["id"] == item
        reviews = client.get(f"{path}/reviews").json()["data"]
        assert [x["item_id"] for x in reviews] == [item]
    assert clean_id("a?b", max_length=10) == "a?b"


# ------------------------------------------------------------------------------------------ 4. duplicates in a file
def test_4_one_id_with_two_contents_in_one_file_is_a_conflict_naming_both_rows(store: Store, client: TestClient,
                                                                              admin_key: str, tmp_path: Path,
                                                                              capsys: pytest.CaptureFixture[str]
                                                                              ) -> None:
    path = write(tmp_path / "dup.csv", "id,item_id,user_id,rating\nr0,pan,cy,3\nr1,lamp,ann,4\nr1,lamp,ann,2\n")
    line = refused(["import", str(path), "--db", db_url(store)], capsys)
    assert "row 3, field rating: review 'r1' conflicts with row 2 of the same write" in line
    assert "(4.0 in row 2, 2.0 here)" in line and "already stored" not in line
    assert store.counts()["reviews"] == 0
    # the library and the API say the same
    with pytest.raises(ConflictError) as library:
        store.add_reviews([Review("r1", "lamp", "ann", 4.0, T0), Review("r1", "lamp", "ann", 2.0, T0)])
    assert str(library.value) == ("row 2, field rating: review 'r1' conflicts with row 1 of the same write: the same "
                                  "key with another rating (4.0 in row 1, 2.0 here); an event is immutable: give "
                                  "each event its own id (a later review of the same item replaces the earlier one)")
    both = [{"id": "r1", "item_id": "lamp", "user_id": "ann", "rating": v, "created_at": T0} for v in (4.0, 2.0)]
    r = client.post("/reviews", json=both, headers=auth(admin_key))
    assert r.status_code == 409 and r.json()["detail"] == f"conflict: row 2: {library.value.reason}"
    # the same row twice is one event; stored, it is "already stored"
    same = write(tmp_path / "same.csv", "id,item_id,user_id,rating,created_at\n" + "r1,lamp,ann,4,1700000000\n" * 2)
    code, out, err = run_cli(["import", str(same), "--db", db_url(store)], capsys)
    assert code == 0 and "imported 1 new (1 already stored or repeated)" in out, err
    with pytest.raises(ImportValidationError, match="review 'r1' is already stored with another rating"):
        import_frame(store, pd.DataFrame([{"id": "r1", "item_id": "lamp", "user_id": "ann", "rating": 2}]),
                     "reviews")


# ------------------------------------------------------------------------------------------ 5. byte order marks
@pytest.mark.parametrize("name", ["bom.jsonl", "bom.jsonl.gz", "bom.csv", "bom.tsv"])
def test_5_a_file_that_starts_with_a_utf8_bom_is_read(store: Store, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str], name: str) -> None:
    rows = [{"id": "r1", "item_id": "lamp", "user_id": "ann", "rating": 4}, {"id": "r2", "item_id": "lamp",
                                                                            "user_id": "bob", "rating": 5}]
    if ".jsonl" in name:
        text = "".join(json.dumps(r) + "\n" for r in rows)
    else:
        sep = "\t" if name.endswith(".tsv") else ","
        text = pd.DataFrame(rows).to_csv(index=False, sep=sep)
    data = b"\xef\xbb\xbf" + text.encode("utf-8")
    path = tmp_path / name
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    code, out, err = run_cli(["import", str(path), "--db", db_url(store)], capsys)
    assert code == 0, err
    assert "imported 2 new" in out
    assert sorted(r.id for r in store.reviews_of_item("lamp")) == ["r1", "r2"]
    assert store.get_user("ann") is not None  # no '\ufeff' glued to the first key or value


# ------------------------------------------------------------------------------------------ 6. self-trust
def test_6_trust_in_oneself_is_refused_at_every_door(store: Store, client: TestClient, admin_key: str,
                                                     tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reason = "is the truster ('ann'): a user cannot state trust in themselves (rule: no self-trust)"
    r = client.post("/trust", json=[{"truster_id": "ann", "trustee_id": "bob", "level": 0.8},
                                    {"truster_id": "ann", "trustee_id": "ann", "level": 1.0}], headers=auth(admin_key))
    assert r.status_code == 422, r.text
    assert r.json()["errors"] == [{"row": 2, "field": "trustee_id", "reason": reason}]
    with pytest.raises(RowsRefused) as library:  # the same user in another spelling (NFC, spaces) too
        store.add_trust([TrustEdge("bob", "ann", "reviews.public", 0.5),
                         TrustEdge("Ame\u0301lie", " Am\u00e9lie ", "reviews.public", 1.0)])
    assert (library.value.row, library.value.field) == (2, "trustee_id")
    assert "a user cannot state trust in themselves" in library.value.reason
    path = write(tmp_path / "trust.csv", "truster_id,trustee_id,level\nann,bob,0.8\nann,ann,1\n")
    line = refused(["import", str(path), "--kind", "trust", "--db", db_url(store)], capsys)
    assert f"row 2, field trustee_id: {reason}" in line
    assert store.counts()["trust"] == 0


# ------------------------------------------------------------------------------------------ 7. the import's audit
def test_7_an_import_writes_one_audit_row_in_its_transaction(store: Store, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "r.csv", "id,item_id,user_id,rating\nr1,lamp,ann,4\nr2,lamp,bob,5\n")
    code, _, err = run_cli(["import", str(path), "--db", db_url(store)], capsys)
    assert code == 0, err
    (row,) = service.list_audit(store)
    assert (row["action"], row["kind"], row["n"], row["key_id"], row["user_id"]) == ("import", "reviews", 2, None, None)
    assert row["refs"] == [f"source={path}", "read=2", "inserted=2", "rejected=0"]
    code, _, err = run_cli(["import", str(path), "--db", db_url(store)], capsys)  # again: nothing new, audited
    assert code == 0, err
    assert [(a["n"], a["refs"][2]) for a in service.list_audit(store)] == [(0, "inserted=0"), (2, "inserted=2")]
    bad = write(tmp_path / "bad.csv", "id,item_id,user_id,rating\nr3,lamp,cy,9\n")
    assert run_cli(["import", str(bad), "--db", db_url(store)], capsys)[0] == 1  # refused: nothing, no audit
    assert len(service.list_audit(store)) == 2
    code, out, err = run_cli(["audit", "--db", db_url(store)], capsys)
    assert code == 0 and "import" in out and "(cli)" in out


# ------------------------------------------------------------------------------------------ 8. one transaction
def _fail_after_first_batch(monkeypatch: pytest.MonkeyPatch, exc: BaseException) -> list[int]:
    calls: list[int] = []
    original = Store.insert_columns

    def insert_columns(self: Store, table: str, columns: dict[str, list[Any]], conn: Any = None) -> int:
        calls.append(len(next(iter(columns.values()))))
        if len(calls) > 1:
            raise exc
        return original(self, table, columns, conn=conn)

    monkeypatch.setattr(Store, "insert_columns", insert_columns)
    return calls


def test_8_an_import_that_fails_after_its_first_batch_leaves_nothing(store: Store, tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str],
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "r.csv", "id,item_id,user_id,rating\n" + "".join(
        f"r{k},lamp,u{k},4\n" for k in range(5)))
    calls = _fail_after_first_batch(monkeypatch, RuntimeError("disk full"))
    line = refused(["import", str(path), "--batch-size", "2", "--db", db_url(store)], capsys)
    assert line == "error: RuntimeError: disk full" and calls == [2, 2]  # the first batch was written, then it failed
    assert store.counts()["reviews"] == 0 and store.counts()["users"] == 0  # ... and rolled back with the rest
    assert service.list_audit(store) == []
    monkeypatch.undo()
    with pytest.raises(ImportValidationError):  # a bad row at the end: nothing either (validated first)
        import_file(store, write(tmp_path / "late.csv", path.read_text() + "r9,lamp,u9,6\n"), "reviews",
                    batch_size=1)
    assert store.counts()["reviews"] == 0
    report = import_file(store, path, "reviews", batch_size=2)  # run again: all of it, in three statements
    assert (report.rows_inserted, report.batches) == (5, 3) and store.counts()["reviews"] == 5


_KILL_AFTER_FIRST_BATCH = textwrap.dedent("""
    import os, signal, sys
    from truescore.store import Store
    from truescore.cli import main

    original, calls = Store.insert_columns, []

    def insert_columns(self, table, columns, conn=None):
        calls.append(1)
        if len(calls) > 1:
            os.kill(os.getpid(), signal.SIGKILL)  # as the red team's kill -9 during a long import
        return original(self, table, columns, conn=conn)

    Store.insert_columns = insert_columns
    main(sys.argv[1:])
""")


def test_8_an_import_killed_after_its_first_batch_leaves_nothing(store: Store, tmp_path: Path) -> None:
    path = write(tmp_path / "r.csv", "id,item_id,user_id,rating\n" + "".join(
        f"r{k},lamp,u{k},4\n" for k in range(50)))
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    done = subprocess.run([sys.executable, "-c", _KILL_AFTER_FIRST_BATCH, "import", str(path), "--batch-size", "10",
                           "--db", db_url(store)], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert store.counts()["reviews"] == 0 and service.list_audit(store) == []
    report = import_file(store, path, "reviews", batch_size=10)  # the same import again completes it
    assert report.rows_inserted == 50


# ------------------------------------------------------------------------------------------ 9. the library's add_*
LIBRARY_BREAKS = [
    pytest.param("trust", lambda: [TrustEdge("ann", "bob", "reviews.public", 50.0)],
                 {"truster_id": "ann", "trustee_id": "bob", "level": 50.0}, "level", id="trust-level-50"),
    pytest.param("trust", lambda: [TrustEdge("ann", "bob", "reviews.public", float("inf"))],
                 {"truster_id": "ann", "trustee_id": "bob", "level": float("inf")}, "level", id="trust-level-inf"),
    pytest.param("trust", lambda: [TrustEdge("ann", "bob", "Reviews.Public", 0.5)],
                 {"truster_id": "ann", "trustee_id": "bob", "domain": "Reviews.Public", "level": 0.5}, "domain",
                 id="trust-domain"),
    pytest.param("flags", lambda: [Flag("r1", "mod", FlagReason.SPAM, severity=float("inf"))],
                 {"review_id": "r1", "flagger_id": "mod", "reason": "SPAM", "severity": float("inf")}, "severity",
                 id="flag-severity-inf"),
    pytest.param("flags", lambda: [Flag("r1", "mod", FlagReason.FAKE, severity=11.0)],
                 {"review_id": "r1", "flagger_id": "mod", "reason": "FAKE", "severity": 11.0}, "severity",
                 id="flag-severity-11"),
    pytest.param("votes", lambda: [Vote("nope", "bob", True)],
                 {"review_id": "nope", "voter_id": "bob", "helpful": True}, "review_id", id="vote-unknown-review"),
    pytest.param("votes", lambda: [Vote("r1", "bob\u200b", True)],
                 {"review_id": "r1", "voter_id": "bob\u200b", "helpful": True}, "voter_id", id="vote-zero-width"),
    pytest.param("users", lambda: [User("cy", display_name="x" * 300)],
                 {"id": "cy", "display_name": "x" * 300}, "display_name", id="user-long-name"),
    pytest.param("users", lambda: [User("a/b")], {"id": "a/b"}, "id", id="user-slash"),
    pytest.param("items", lambda: [Item("vase", "Home Decor")], {"id": "vase", "topic": "Home Decor"}, "topic",
                 id="item-topic"),
    pytest.param("items", lambda: [Item("vase", "reviews.public", title="t" * 2000)],
                 {"id": "vase", "topic": "reviews.public", "title": "t" * 2000}, "title", id="item-long-title"),
]


@pytest.mark.parametrize(("kind", "objects", "row", "field"), LIBRARY_BREAKS)
def test_9_store_add_applies_the_importers_rules_and_messages(store: Store, kind: str, objects: Any,
                                                              row: dict[str, Any], field: str) -> None:
    store.add_reviews([Review("r1", "lamp", "ann", 4.0, T0)])
    counts = store.counts()
    add = {"trust": store.add_trust, "flags": store.add_flags, "votes": store.add_votes, "users": store.add_users,
           "items": store.add_items}[kind]
    with pytest.raises(RowsRefused) as library:
        add([*objects()])
    with pytest.raises(ImportValidationError) as importer:
        import_frame(store, pd.DataFrame([row]), kind)
    assert (library.value.row, library.value.field) == (1, field)
    assert [(e.row, e.field, e.reason) for e in library.value.errors] == \
        [(e.row, e.field, e.reason) for e in importer.value.errors]
    assert store.counts() == counts


def test_9_a_trust_level_of_50_is_refused_with_the_importers_message(store: Store) -> None:
    with pytest.raises(RowsRefused) as refused:
        store.add_trust([TrustEdge("operator", "bob", "reviews.public", 0.9),
                         TrustEdge("operator", "shill", "reviews.public", 50.0)])
    assert str(refused.value) == ("1 of 2 trust statements are invalid, nothing was written: row 2, field level: "
                                  "50 is above the maximum 1")
    assert store.counts()["trust"] == 0
    # the good ones still go through, with their semantics: append (trust), upsert (users, items), first wins
    assert store.add_trust([TrustEdge("operator", "bob", "reviews.public", 0.9)]) == 1
    assert store.add_users([User("bob", display_name="Bob")]) == 1 and store.get_user("bob").display_name == "Bob"
    assert store.add_items([Item("lamp", "reviews.public.home", "Lamp")]) == 1
    assert store.add_items([Item("lamp", "reviews.public.home", "Desk lamp")]) == 1
    assert store.get_item("lamp").title == "Desk lamp"  # type: ignore[union-attr]
    store.add_reviews([Review("r1", "lamp", "ann", 4.0, T0)])
    assert store.add_votes([Vote("r1", "bob", True)]) == 1 and store.add_votes([Vote("r1", "bob", False)]) == 0
    assert store.add_flags([Flag("r1", "bob", FlagReason.SPAM, 2.0)]) == 1


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_9_serve_names_the_stored_row_the_engines_refuse_not_the_address(store: Store,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    store.add_reviews([Review("r1", "lamp", "bob", 4.0, T0)])
    # a row no door accepts any more, as a store written before the rules holds it (the raw write path)
    store.insert_rows("trust", [{"truster_id": "operator", "trustee_id": "bob", "domain": "reviews.public",
                                 "level": 50.0, "created_at": T0, "valid_until": None}])
    port = _free_port()
    code, _, err = run_cli(["serve", "--db", db_url(store), "--port", str(port)], capsys)
    assert code == 1, err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"error: the server at http://127.0.0.1:{port} did not start: building the engine state "
                           "from the store failed: ValueError: trust level must lie in [0, 1], got 50.0")
    assert "could not be bound" not in err


def test_7_load_and_synth_write_their_audit_rows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from conftest import require_data

    root = require_data("crowd-emotion").parent
    url = f"sqlite:///{tmp_path / 'l.db'}"
    code, _, err = run_cli(["load", "crowd-emotion", "--data-dir", str(root), "--db", url], capsys)
    assert code == 0, err
    store = Store.open(url)
    (row,) = service.list_audit(store)
    assert (row["action"], row["kind"], row["key_id"]) == ("load", "reviews", None)
    assert row["n"] == store.counts()["reviews"] > 0 and row["refs"][0] == "source=crowd-emotion"
    synth = tmp_path / "s.db"
    code, _, err = run_cli(["synth", "--out", str(synth), "--users", "300", "--items", "40", "--ratings", "2000",
                            "--no-text", "--seed", "3"], capsys)
    assert code == 0, err
    (row,) = service.list_audit(Store.open(f"sqlite:///{synth}"))
    assert (row["action"], row["kind"], row["n"]) == ("synth", "reviews", 2000)
    assert "seed=3" in row["refs"]
