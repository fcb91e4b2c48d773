"""The importer: validation naming row, field and reason; all-or-nothing; --skip-bad; crash safety."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from truescore.cli import main
from truescore.domain import Review
from truescore.store import Store
from truescore.store.ingest import ImportValidationError, import_file, import_frame, import_table, parse_mapping

GOOD = "id,item_id,user_id,rating,created_at,max_rating,verified_purchase,photo_count,topic,text\n"
GOOD_ROWS = [
    "g1,lamp,ann,4,2025-01-01T10:00:00Z,5,true,0,reviews.public.home.lamps,Bright and sturdy.",
    "g2,lamp,bob,2,1735725600,5,no,1,,Flickers.",
    "g3,pan,cy,9,2025-02-01,10,,,reviews.public.home.kitchen,",
]
# each bad row breaks exactly one rule; (row number in the file, field named in the error)
BAD_ROWS = [
    (",lamp,dee,3,2025-01-01,5,,,,", "id"),                              # 1 missing id
    ("b2,lamp,,3,2025-01-01,5,,,,", "user_id"),                          # 2 missing user
    ("b3,lamp,eve,6,2025-01-01,5,,,,", "rating"),                        # 3 above the scale
    ("b4,lamp,fay,0,2025-01-01,5,,,,", "rating"),                        # 4 below the scale
    ("b5,lamp,gus,four,2025-01-01,5,,,,", "rating"),                     # 5 not a number
    ("b6,lamp,hal,3,2025-01-01,1,,,,", "max_rating"),                    # 6 empty scale
    ("b7,lamp,ian,3,last tuesday,5,,,,", "created_at"),                  # 7 unparseable time
    ("b8,lamp,jo,3,2025-01-01,5,maybe,,,", "verified_purchase"),         # 8 not a boolean
    ("b9,lamp,kim,3,2025-01-01,5,,-2,,", "photo_count"),                 # 9 negative count
    ("b10,lamp,lu,3,2025-01-01,5,,1.5,,", "photo_count"),                # 10 fractional count
    ("b11," + "x" * 300 + ",mo,3,2025-01-01,5,,,,", "item_id"),          # 11 id too long
    ("b12,lamp,ned,3,2025-01-01,5,,,Not A Topic!,", "topic"),            # 12 malformed topic
    ("b13,lamp,ola,,2025-01-01,5,,,,", "rating"),                        # 13 missing rating
    ("b14,lamp,pat,3,2025-01-01,5,,,," + "y" * 2000, "text"),            # 14 text too large
]


@pytest.fixture
def mixed_csv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TRUESCORE_MAX_TEXT_BYTES", "1000")
    lines = [GOOD_ROWS[0], *[b for b, _ in BAD_ROWS[:7]], GOOD_ROWS[1], *[b for b, _ in BAD_ROWS[7:]], GOOD_ROWS[2]]
    path = tmp_path / "mixed.csv"
    path.write_text(GOOD + "\n".join(lines) + "\n")
    return path


def _expected_bad() -> dict[int, str]:
    # record numbers: good row 1, bad rows 2..8, good row 9, bad rows 10..16, good row 17
    rows = list(range(2, 9)) + list(range(10, 17))
    return {row: field for row, (_, field) in zip(rows, BAD_ROWS, strict=True)}


def test_default_mode_writes_nothing_and_names_row_field_reason(store: Store, mixed_csv: Path) -> None:
    with pytest.raises(ImportValidationError) as info:
        import_file(store, mixed_csv, "reviews")
    err = info.value
    assert {(e.row, e.field) for e in err.errors} == set(_expected_bad().items())
    assert all(e.reason for e in err.errors)
    assert "row 2, field id: missing" in str(err)
    assert "14 of 17 rows are invalid" in str(err)
    assert store.counts()["reviews"] == 0 and store.counts()["items"] == 0


def test_skip_bad_writes_exactly_the_good_rows_and_a_rejects_file(store: Store, mixed_csv: Path,
                                                                  tmp_path: Path) -> None:
    rejects = tmp_path / "rejects.csv"
    report = import_file(store, mixed_csv, "reviews", skip_bad=True, rejects_path=rejects)
    assert report.rows_read == 17 and report.rows_inserted == 3 and report.rows_rejected == 14
    assert sorted(r for r in store.review_frame()["id"]) == ["g1", "g2", "g3"]
    rej = pd.read_csv(rejects, dtype=str, keep_default_na=False)
    assert dict(zip(rej["_row"].astype(int), rej["_field"], strict=True)) == _expected_bad()
    assert (rej["_reason"] != "").all()
    assert rej.loc[rej["_row"] == "4", "_reason"].item() == "6 is outside the scale 1..5"
    # the topic column created the item with its topic; g3 kept its own scale
    assert store.get_item("pan").topic == "reviews.public.home.kitchen"
    assert store.get_review("g3").max_rating == 10
    assert store.get_review("g2").verified_purchase is False


def test_cli_default_mode_exits_nonzero_with_one_line(store_url: str, mixed_csv: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["import", str(mixed_csv), "--kind", "reviews", "--db", store_url])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "row 2, field id" in err and len(err.splitlines()) == 1
    assert Store.open(store_url).counts()["reviews"] == 0


def test_cli_skip_bad(store_url: str, mixed_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rejects = tmp_path / "r.csv"
    main(["import", str(mixed_csv), "--kind", "reviews", "--skip-bad", "--rejects", str(rejects), "--db", store_url])
    out = " ".join(capsys.readouterr().out.split())  # the console wraps long (PostgreSQL) paths
    assert "imported 3 new" in out and "rejected 14" in out
    assert len(pd.read_csv(rejects)) == 14
    assert Store.open(store_url).counts()["reviews"] == 3


def test_other_kinds_are_validated(store: Store) -> None:
    store.add_reviews([Review("r1", "a", "ann", 4.0)])
    trust = pd.DataFrame({"truster_id": ["a", "a", "b"], "trustee_id": ["b", "c", "c"], "level": [0.5, 1.5, 0.2],
                          "domain": ["reviews.public", "reviews.public", "Bad Domain"]})
    with pytest.raises(ImportValidationError) as info:
        import_frame(store, trust, "trust")
    assert [(e.row, e.field) for e in info.value.errors] == [(2, "level"), (3, "domain")]
    flags = pd.DataFrame({"review_id": ["r1", "r1", "zz"], "flagger_id": ["m1", "m2", "m3"],
                          "reason": ["spam", "RUDE", "FAKE"], "severity": [1, 1, 1]})
    with pytest.raises(ImportValidationError) as info:
        import_frame(store, flags, "flags")
    assert [(e.row, e.field) for e in info.value.errors] == [(2, "reason"), (3, "review_id")]
    votes = pd.DataFrame({"review_id": ["r1", "r1"], "voter_id": ["v1", "v2"], "helpful": ["HELPFUL", "sure"]})
    with pytest.raises(ImportValidationError, match="row 2, field helpful"):
        import_frame(store, votes, "votes")
    report = import_frame(store, votes.iloc[:1], "votes")
    assert report.rows_inserted == 1 and store.vote_frame()["helpful"].tolist() == [True]


def test_nul_characters_and_lone_surrogates_are_refused(store: Store) -> None:
    frame = pd.DataFrame({"id": ["a", "b\x00", "c"], "item_id": ["x", "x", "x"], "user_id": ["u1", "u2", "u3"],
                          "rating": [3, 3, 3],
                          "text": pd.Series(["fine", "ok", "bad \ud800 text"], dtype=object)})
    with pytest.raises(ImportValidationError) as info:
        import_frame(store, frame, "reviews")
    assert [(e.row, e.field) for e in info.value.errors] == [(2, "id"), (3, "text")]
    assert store.counts()["reviews"] == 0


def test_json_lines_parquet_and_column_mapping(store: Store, tmp_path: Path) -> None:
    jl = tmp_path / "r.jsonl"
    jl.write_text("\n".join(json.dumps({"rid": f"j{k}", "asin": "a", "who": f"u{k}", "stars": 1 + k % 5,
                                        "ts": 1.7e9 + k}) for k in range(10)) + "\n{not json\n")
    mapping = parse_mapping(["rid=id", "asin=item_id", "who=user_id", "stars=rating", "ts=created_at"])
    with pytest.raises(ImportValidationError, match="row 11, field record: line 11 is not valid JSON"):
        import_file(store, jl, "reviews", mapping=mapping)
    assert import_file(store, jl, "reviews", mapping=mapping, skip_bad=True,
                       rejects_path=tmp_path / "x.csv").rows_inserted == 10
    pq = tmp_path / "r.parquet"
    pd.DataFrame({"id": ["p1", "p2"], "item_id": ["a", "b"], "user_id": ["u1", "u2"], "rating": [5.0, 1.0]}
                 ).to_parquet(pq)
    assert import_file(store, pq, "reviews").rows_inserted == 2
    assert store.counts()["reviews"] == 12
    with pytest.raises(ValueError, match="--map names column"):
        import_file(store, pq, "reviews", mapping={"nope": "id"})


def test_import_from_another_database_table(store: Store, tmp_path: Path) -> None:
    src = tmp_path / "legacy.db"
    with sqlite3.connect(src) as conn:
        conn.execute("CREATE TABLE ratings (rid TEXT, item TEXT, usr TEXT, score REAL)")
        conn.executemany("INSERT INTO ratings VALUES (?,?,?,?)", [(f"x{k}", "lamp", f"u{k}", 3.0) for k in range(7)])
    report = import_table(store, f"sqlite:///{src}", "ratings", "reviews",
                          mapping={"rid": "id", "item": "item_id", "usr": "user_id", "score": "rating"})
    assert report.rows_inserted == 7 and store.counts()["reviews"] == 7
    with pytest.raises(ValueError, match="no table named"):
        import_table(store, f"sqlite:///{src}", "missing", "reviews")


def test_reimport_is_idempotent(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "ok.csv"
    path.write_text(GOOD + "\n".join(GOOD_ROWS) + "\n")
    assert import_file(store, path, "reviews").rows_inserted == 3
    again = import_file(store, path, "reviews")
    assert again.rows_inserted == 0 and again.rows_valid == 3
    assert store.counts()["reviews"] == 3


def test_unknown_file_type_and_kind(store: Store, tmp_path: Path) -> None:
    odd = tmp_path / "r.xlsx"
    odd.write_text("x")
    with pytest.raises(ValueError, match="unknown file type"):
        import_file(store, odd, "reviews")
    with pytest.raises(ValueError, match="unknown kind"):
        import_frame(store, pd.DataFrame({"id": ["a"]}), "ratings")


#: ``truescore import`` with a SIGKILL after its 100th insert statement (50,000 rows into its transaction)
_KILLED_IMPORT = """
import os, signal, sys
from truescore.store import Store
from truescore.cli import main

original, calls = Store.insert_columns, []

def insert_columns(self, table, columns, conn=None):
    calls.append(1)
    if len(calls) > 100:
        os.kill(os.getpid(), signal.SIGKILL)
    return original(self, table, columns, conn=conn)

Store.insert_columns = insert_columns
main(sys.argv[1:])
"""


@pytest.mark.slow
def test_sigkill_during_import_leaves_nothing_and_rerun_completes(tmp_path: Path) -> None:
    """An import is one transaction (issue 20: a kill during a 200k-row import left 110,000 rows visible)."""
    n, batch = 150_000, 500
    csv = tmp_path / "big.csv"
    pd.DataFrame({
        "id": [f"r{k}" for k in range(n)], "item_id": [f"i{k % 997}" for k in range(n)],
        "user_id": [f"u{k % 7919}" for k in range(n)], "rating": [1 + k % 5 for k in range(n)],
        "created_at": [1.6e9 + k for k in range(n)],
    }).to_csv(csv, index=False)
    db = tmp_path / "crash.db"
    args = ["import", str(csv), "--kind", "reviews", "--batch-size", str(batch), "--db", f"sqlite:///{db}"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    killed = subprocess.run([sys.executable, "-c", _KILLED_IMPORT, *args], env=env, capture_output=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT count(*) FROM reviews").fetchone()[0] == 0  # 50,000 were written, uncommitted
        assert conn.execute("SELECT count(*) FROM users").fetchone()[0] == 0
    assert subprocess.run([sys.executable, "-m", "truescore.cli", *args], env=env, capture_output=True).returncode == 0
    with sqlite3.connect(db) as conn:
        total, distinct = conn.execute("SELECT count(*), count(DISTINCT id) FROM reviews").fetchone()
    assert total == distinct == n
