"""The command line: the demo runs end to end, exports round-trip, errors are one readable line."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from truescore.store import Store

from conftest import run_cli


def test_demo_runs_to_the_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "demo.db"
    code, out, err = run_cli(["demo", "--no-serve", "--no-text", "--out", str(db), "--users", "400", "--items", "60",
                          "--ratings", "4000"], capsys)
    assert code == 0, err
    assert "top 10 items by fused score" in out and "bot rings caught" in out and "done in" in out
    counts = Store.open(f"sqlite:///{db}").counts()
    assert counts["reviews"] == 4000
    assert counts["item_quality"] == counts["product_rankings"] == 60 and counts["user_reliability"] > 0


def test_synth_then_export_every_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "s.db"
    code, out, err = run_cli(["synth", "--out", str(db), "--users", "300", "--items", "40", "--ratings", "2000",
                          "--seed", "7"], capsys)
    assert code == 0, err and "generated 2,000 ratings" in out
    url = f"sqlite:///{db}"
    for ext in ("csv", "jsonl", "parquet"):
        target = tmp_path / f"reviews.{ext}"
        code, out, err = run_cli(["export", "reviews", "--out", str(target), "--db", url], capsys)
        assert code == 0, err
        frame = {"csv": pd.read_csv, "jsonl": lambda p: pd.read_json(p, lines=True),
                 "parquet": pd.read_parquet}[ext](target)
        assert len(frame) == 2000 and {"id", "rating", "text"} <= set(frame.columns)
    # an export re-imports into a fresh store unchanged
    fresh = f"sqlite:///{tmp_path / 'again.db'}"
    code, out, err = run_cli(["import", str(tmp_path / "reviews.parquet"), "--kind", "reviews", "--db", fresh], capsys)
    assert code == 0, err
    a = Store.open(url).review_frame().set_index("id")[["rating", "user_id", "text"]].sort_index()
    b = Store.open(fresh).review_frame().set_index("id")[["rating", "user_id", "text"]].sort_index()
    pd.testing.assert_frame_equal(a, b)


def test_info_and_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    Store.open(f"sqlite:///{tmp_path / 'i.db'}")  # an empty store
    code, out, _ = run_cli(["info", "--db", f"sqlite:///{tmp_path / 'i.db'}"], capsys)
    assert code == 0 and "reviews" in out
    code, out, _ = run_cli(["config"], capsys)
    assert code == 0 and "recency_half_life" in out


@pytest.mark.parametrize(("args", "message"), [
    (["export", "reviews", "--out", "x.xlsx"], "use a .csv, .jsonl or .parquet"),
    (["export", "nonsense", "--out", "x.csv"], "unknown table 'nonsense'"),
    (["import", "missing.csv"], "missing.csv: no such file"),
    (["import"], "give either FILE or --from-db"),
    (["load", "imdb"], "unknown data set 'imdb'"),
    (["info", "--db", "oracle://x"], "unsupported database"),
])
def test_errors_are_one_line_and_nonzero(args: list[str], message: str, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(args, capsys)
    assert code != 0
    assert message in err and len(err.strip().splitlines()) == 1


def test_bad_configuration_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUESCORE_TRUST__ACTIVITY_SATURATION", "5")
    code, _, err = run_cli(["info", "--db", f"sqlite:///{tmp_path / 'c.db'}"], capsys)
    assert code == 1 and "trust.activity_saturation" in err and "allowed range 10..1000" in err


def test_json_helper_is_plain_json() -> None:
    from truescore.cli import _json

    assert json.loads(_json({"a": 1})) == {"a": 1}


@pytest.mark.parametrize("command", [["info"], ["rank"], ["fit"], ["score"], ["export", "reviews", "--out", "x.csv"],
                                     ["rate", "i1", "--observer", "u1"], ["keys", "list"], ["audit"], ["jobs", "list"]])
def test_read_commands_refuse_a_missing_sqlite_store_without_creating_it(
        command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A mistyped --db is named in one line, exit 1, and leaves no new empty store behind."""
    monkeypatch.chdir(tmp_path)
    missing = tmp_path / "typo.db"
    code, _, err = run_cli([*command, "--db", f"sqlite:///{missing}"], capsys)
    assert code == 1
    assert f"no store at {missing}" in err
    assert len(err.strip().splitlines()) == 1
    assert not missing.exists()


def test_import_still_creates_a_new_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "reviews.csv"
    path.write_text("id,item_id,user_id,rating,created_at\nr1,i1,u1,4,2024-01-01T00:00:00Z\n")
    db = tmp_path / "new.db"
    code, _, err = run_cli(["import", str(path), "--db", f"sqlite:///{db}"], capsys)
    assert code == 0, err
    code, out, _ = run_cli(["info", "--db", f"sqlite:///{db}"], capsys)
    assert code == 0 and "1" in out
