"""Spark jobs (``truescore spark fit|score|rank``, ``import-results``) against the single-machine commands.

One local[2] SparkSession for the module; small synthetic stores exported to Parquet the way
``truescore export`` writes them. Without Java or pyspark the module skips and says why, unless
``TRUESCORE_REQUIRE_SPARK=1`` (set by .ci/run), where that is a failure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from truescore.config import load_settings
from truescore.domain import Review
from truescore.store import Store
from truescore.synth import SynthConfig, add_item, add_ring_campaign, generate

from conftest import run_cli, skip_without_spark

pytestmark = [pytest.mark.slow,
              pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas"),
              pytest.mark.filterwarnings("ignore:The copy keyword is deprecated")]

_TRUESCORE = str(Path(sys.executable).with_name("truescore"))
_NOW = 1.79e9


skip_without_spark()


def _export(store: Store, folder: Path, tables: tuple[str, ...] = ("reviews",)) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in tables:
        store.read_table(name).to_parquet(folder / f"{name}.parquet", index=False)
    return folder / "reviews.parquet"


@pytest.fixture(scope="module")
def world_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, Path]:
    """A synthetic marketplace with a few edits (superseded reviews) and reviews on a 1-10 scale."""
    folder = tmp_path_factory.mktemp("spark-world")
    store = Store.open(f"sqlite:///{folder / 's.db'}")
    generate(SynthConfig(n_users=500, n_items=60, n_ratings=4000, seed=5, with_text=False)).write(store)
    first = store.review_frame(with_text=False).head(6)
    t = datetime.fromtimestamp(_NOW - 86400, UTC)
    edits = [Review(id=f"edit{k}", item_id=row.item_id, user_id=row.user_id, rating=1.0, created_at=t,
                    supersedes=row.id) for k, row in enumerate(first.itertuples())]
    tenths = [Review(id=f"ten{k}", item_id=f"i{k % 3}", user_id=f"u{k + 7}", rating=float(1 + k % 10),
                     min_rating=1.0, max_rating=10.0, created_at=t) for k in range(25)]
    store.add_reviews(edits + tenths)
    return store, _export(store, folder / "export", ("reviews", "items", "votes", "flags", "trust", "users"))


def _max_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(a, float) - np.asarray(b, float))))


@pytest.mark.parametrize("parts", [1, 4])
def test_spark_fit_equals_the_single_machine_fit(spark: Any, world_store: tuple[Store, Path], parts: int) -> None:
    from truescore.reliability import fit
    from truescore.spark.fit import spark_fit

    store, reviews = world_store
    expected = fit(store.snapshot())
    spark.conf.set("spark.sql.shuffle.partitions", str(parts))
    got, report = spark_fit(spark, reviews)
    assert report.partitions == parts
    assert list(got.item_ids) == list(expected.item_ids)
    assert list(got.user_ids) == list(expected.user_ids)
    assert got.n_iter == expected.n_iter and got.converged == expected.converged
    assert _max_diff(got.item_quality, expected.item_quality) <= 1e-9
    assert _max_diff(got.item_quality_sd, expected.item_quality_sd) <= 1e-9
    assert _max_diff(got.reliability, expected.reliability) <= 1e-9
    assert _max_diff(got.reliability_lo, expected.reliability_lo) <= 1e-9
    assert _max_diff(got.item_effective_weight, expected.item_effective_weight) <= 1e-9
    assert np.array_equal(got.item_n_ratings, expected.item_n_ratings)
    assert got.hyper.mu0 == pytest.approx(expected.hyper.mu0, abs=1e-12)
    # the 1-10 items are shown on their own scale, the superseded reviews are gone, and a user's later
    # review of an item replaces the earlier one (some 1-10 raters had rated that item in the world)
    frame = store.review_frame(with_text=False)
    live = frame[~frame["id"].isin(frame["supersedes"].dropna())]
    pairs = len(live.drop_duplicates(["user_id", "item_id"]))
    assert pairs < 4000 + 25
    assert got.item_n_ratings.sum() == expected.item_n_ratings.sum() == pairs


def test_spark_fit_with_bias_and_free_priors_equals_single_machine(spark: Any,
                                                                   world_store: tuple[Store, Path]) -> None:
    from truescore.reliability import fit
    from truescore.reliability.vb import VBOptions
    from truescore.spark.fit import spark_fit

    store, reviews = world_store
    overrides = {"use_bias": True, "tau0": None, "a0": None, "b0": None}
    expected = fit(store.snapshot(), **overrides)
    spark.conf.set("spark.sql.shuffle.partitions", "3")
    got, _ = spark_fit(spark, reviews, VBOptions(**overrides))
    assert got.n_iter == expected.n_iter
    assert _max_diff(got.item_quality, expected.item_quality) <= 1e-9
    assert _max_diff(got.bias, expected.bias) <= 1e-9
    assert _max_diff(got.reliability, expected.reliability) <= 1e-6 * float(np.max(expected.reliability))


def test_cli_spark_fit_and_import_results_round_trip(spark: Any, world_store: tuple[Store, Path], tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    _, reviews = world_store
    out = tmp_path / "run"
    code, stdout, stderr = run_cli(["spark", "fit", "--reviews", str(reviews), "--out", str(out)], capsys)
    assert code == 0, stderr
    assert "converged=True" in stdout
    items = pd.read_parquet(out / "item_quality.parquet")
    assert set(items.columns) == {"item_id", "quality", "quality_sd", "n_ratings", "effective_weight",
                                  "model_version", "fitted_at"}
    target = Store.open(f"sqlite:///{tmp_path / 'serve.db'}")
    code, stdout, stderr = run_cli(["import-results", str(out), "--db", f"sqlite:///{tmp_path / 'serve.db'}"],
                                   capsys)
    assert code == 0, stderr
    assert f"{len(items):,} rows of item_quality" in stdout
    back = pd.DataFrame(target.read_derived("item_quality")).set_index("item_id").loc[items["item_id"]]
    assert np.array_equal(back["quality"].to_numpy(), items["quality"].to_numpy())
    assert (back["model_version"] == items["model_version"].iloc[0]).all()
    assert np.array_equal(back["fitted_at"].to_numpy(), items["fitted_at"].to_numpy())
    users = pd.DataFrame(target.read_derived("user_reliability"))
    assert len(users) == len(pd.read_parquet(out / "user_reliability.parquet"))


def test_import_results_refuses_a_folder_without_results(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, stderr = run_cli(["import-results", str(tmp_path), "--db", f"sqlite:///{tmp_path / 'x.db'}"], capsys)
    assert code == 1
    assert "item_quality.parquet" in stderr


def test_spark_fit_names_a_missing_column(spark: Any, tmp_path: Path) -> None:
    from truescore.spark.fit import spark_fit

    path = tmp_path / "bad.parquet"
    pd.DataFrame({"id": ["r1"], "item_id": ["i1"], "user_id": ["u1"], "rating": [4.0]}).to_parquet(path)
    with pytest.raises(ValueError, match="min_rating, max_rating, created_at missing"):
        spark_fit(spark, path)


def _reviews_file(path: Path, **columns: Any) -> Path:
    base = {"id": ["r1", "r2", "r3"], "item_id": ["i1", "i1", "i2"], "user_id": ["u1", "u2", "u1"],
            "rating": [4.0, 5.0, 3.0], "min_rating": [1.0, 1.0, 1.0], "max_rating": [5.0, 5.0, 5.0],
            "created_at": [_NOW, _NOW + 1, _NOW + 2]}
    pd.DataFrame({**base, **columns}).to_parquet(path)
    return path


@pytest.mark.parametrize(("make", "message"), [
    (lambda p: p.write_text("id,item_id\nr1,i1\n") and p, "not a readable Parquet file or folder"),
    (lambda p: _reviews_file(p, rating=["4", "five", "3"]), "column rating has type large_string; expected a number"),
    (lambda p: _reviews_file(p, user_id=[1.5, 2.5, 1.5]), "column user_id has type double; expected text"),
    (lambda p: pd.DataFrame({c: pd.Series([], dtype=float) for c in ("id", "item_id", "user_id", "rating",
                                                                      "min_rating", "max_rating", "created_at")}
                            ).to_parquet(p) or p, "no reviews (0 rows)"),
])
def test_spark_commands_refuse_a_bad_reviews_file_in_one_line(spark: Any, tmp_path: Path, make: Any, message: str,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """A file that is not Parquet, a column of the wrong type or an empty file: one line naming the file and
    the column, before any Spark job runs (the footer is read with pyarrow)."""
    path = make(tmp_path / "reviews.parquet")
    code, _, err = run_cli(["spark", "fit", "--reviews", str(path), "--out", str(tmp_path / "out")], capsys)
    assert code == 1
    lines = [line for line in err.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and message in lines[0] and str(path) in lines[0]


def test_spark_fit_takes_integer_ids_as_the_store_keeps_them(spark: Any, tmp_path: Path) -> None:
    from truescore.spark.fit import spark_fit

    path = _reviews_file(tmp_path / "ints.parquet", id=[1, 2, 3], item_id=[10, 10, 11], user_id=[5, 6, 5],
                         rating=[4, 5, 3])
    result, report = spark_fit(spark, path)
    assert sorted(result.item_ids.tolist()) == ["10", "11"] and report.n_ratings == 3


@pytest.mark.parametrize(("field", "value"), [("max_rating", 1.0), ("rating", None), ("user_id", None)])
def test_spark_fit_names_the_first_bad_review(spark: Any, tmp_path: Path, field: str, value: Any) -> None:
    from truescore.spark.fit import spark_fit

    n = 50
    frame = pd.DataFrame({"id": [f"r{k:02d}" for k in range(n)], "item_id": [f"i{k % 5}" for k in range(n)],
                          "user_id": [f"u{k % 7}" for k in range(n)], "rating": 3.0, "min_rating": 1.0,
                          "max_rating": 5.0, "created_at": _NOW + np.arange(n, dtype=float)})
    frame[field] = frame[field].astype(object)
    frame.loc[37, field] = value
    path = tmp_path / "bad.parquet"
    frame.to_parquet(path)
    with pytest.raises(ValueError, match=r"review 'r37' has a missing field or max_rating <= min_rating"):
        spark_fit(spark, path)


@pytest.mark.parametrize("parts", [1, 4])
def test_spark_rank_equals_the_single_machine_ranking(spark: Any, world_store: tuple[Store, Path],
                                                      tmp_path: Path, parts: int) -> None:
    from truescore.jobs import rank_store
    from truescore.spark.rank import spark_rank

    store, reviews = world_store
    expected = pd.DataFrame(rank_store(store, at=_NOW, refit=True).records()).set_index("item_id")
    spark.conf.set("spark.sql.shuffle.partitions", str(parts))
    n = spark_rank(spark, reviews, tmp_path, at=_NOW)
    got = pd.read_parquet(tmp_path / "product_rankings.parquet").set_index("item_id").loc[expected.index]
    assert n == len(expected)
    for col in ("fused_mean", "fused_sd", "lower_bound", "n_eff", "plain_mean", "love_score"):
        a, b = got[col].to_numpy(float), expected[col].to_numpy(float)
        assert np.array_equal(np.isnan(a), np.isnan(b))
        assert _max_diff(a[~np.isnan(a)], b[~np.isnan(b)]) <= 1e-9, col
    assert (got["tier"].fillna("") == expected["tier"].fillna("")).all()
    assert (got["topic"] == expected["topic"]).all()


def test_spark_score_equals_the_single_machine_scores(spark: Any, tmp_path: Path) -> None:
    from truescore.jobs import score_text
    from truescore.spark.score import spark_score

    store = Store.open(f"sqlite:///{tmp_path / 'text.db'}")
    generate(SynthConfig(n_users=40, n_items=6, n_ratings=60, seed=2, n_rings=1, ring_size=5)).write(store)
    reviews = _export(store, tmp_path / "export", ("reviews", "votes", "items", "users"))
    # the sentiment's calibration from the stars is fitted by both (a low label minimum: 60 reviews here)
    settings = load_settings(text={"calibration_min_labels": 10})
    assert score_text(store, batch_size=16, settings=settings) == 60
    expected = pd.DataFrame(store.read_derived("review_scores")).set_index("review_id")
    spark.conf.set("spark.sql.shuffle.partitions", "2")
    words = {"n_words": lambda frame: frame["text"].str.split().str.len()}
    assert spark_score(spark, reviews, tmp_path / "out", batch_size=16, review_functions=words,
                       settings=settings) == 60
    got = pd.read_parquet(tmp_path / "out" / "review_scores.parquet").set_index("review_id").loc[expected.index]
    for col in ("quality", "fake_probability", "sentiment"):
        assert _max_diff(got[col], expected[col]) <= 1e-6, col
    assert (got["model_version"] == expected["model_version"]).all()
    assert "+cal-" in str(expected["model_version"].iloc[0])
    fitted = json.loads((tmp_path / "out" / "sentiment_calibration.json").read_text())
    assert fitted == store.last_run("text")["details"]["sentiment_calibration"]
    assert (got["n_words"] > 0).all()
    assert got["suspicion"].between(0, 1).all()  # the integrity engine ran too (compared in detail below)


@pytest.fixture(scope="module")
def integrity_world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame, pd.DataFrame, list[Any]]:
    """A store with texts (near duplicates), rings, edits and account ages, exported; and what
    ``truescore score``'s integrity step (run_integrity, fitting first) writes for it."""
    from truescore.jobs import run_integrity
    from truescore.store.integrity_io import read_rings, suspicion_frame

    folder = tmp_path_factory.mktemp("spark-integrity")
    store = Store.open(f"sqlite:///{folder / 's.db'}")
    world = generate(SynthConfig(n_users=400, n_items=50, n_ratings=3000, seed=11, n_rings=0))
    targets = []
    for k in range(3):
        world, target = add_item(world, 3.0, 15, seed=k)
        targets.append(target)
    add_ring_campaign(world, targets, 25, rating=1.0, camouflage_ratings=5, text="templated", seed=5).write(store)
    first = store.review_frame(with_text=False).head(5)
    t = datetime.fromtimestamp(_NOW - 86400, UTC)
    store.add_reviews([Review(id=f"edit{k}", item_id=row.item_id, user_id=row.user_id, rating=1.0, created_at=t,
                              supersedes=row.id) for k, row in enumerate(first.itertuples())])
    reviews = _export(store, folder / "export", ("reviews", "items", "users"))
    report = run_integrity(store)
    assert report.rings_written > 0 and report.result.flagged_reviews.any()
    assert any("near-duplicate text" in r for r in report.result.review_reasons())
    reviews_expected = suspicion_frame(store).set_index("review_id")
    accounts = pd.DataFrame(store.read_derived("user_reliability")).set_index("user_id")
    return reviews, reviews_expected, accounts, read_rings(store)


def _check_suspicion(folder: Path, reviews_expected: pd.DataFrame, accounts: pd.DataFrame, rings: list[Any]) -> None:
    got = pd.read_parquet(folder / "review_scores.parquet").set_index("review_id")
    assert sorted(got.index) == sorted(reviews_expected.index)
    got = got.loc[reviews_expected.index]
    assert _max_diff(got["suspicion"], reviews_expected["suspicion"]) <= 1e-6
    assert (got["suspicion_reasons"].fillna("") == reviews_expected["suspicion_reasons"].fillna("")).all()
    users = pd.read_parquet(folder / "user_reliability.parquet").set_index("user_id")
    assert sorted(users.index) == sorted(accounts.index)
    users = users.loc[accounts.index]
    assert _max_diff(users["suspicion"], accounts["suspicion"]) <= 1e-6
    assert (users["suspicion_reasons"].fillna("") == accounts["suspicion_reasons"].fillna("")).all()
    got_rings = pd.read_parquet(folder / "rings.parquet")
    assert sorted(got_rings["ring_id"]) == sorted(r["ring_id"] for r in rings)
    for ring in rings:
        row = got_rings.set_index("ring_id").loc[ring["ring_id"]]
        assert json.loads(row["members"]) == ring["members"] and json.loads(row["targets"]) == ring["targets"]


@pytest.mark.parametrize("parts", [1, 4])
def test_spark_score_suspicion_equals_truescore_score(spark: Any, integrity_world: tuple[Any, ...], tmp_path: Path,
                                                      parts: int) -> None:
    from truescore.spark.score import score_run

    reviews, reviews_expected, accounts, rings = integrity_world
    spark.conf.set("spark.sql.shuffle.partitions", str(parts))
    report = score_run(spark, reviews, tmp_path, text=False)  # texts still feed the near-duplicate detector
    assert report.n_reviews == len(reviews_expected) and report.n_text_scored == 0
    _check_suspicion(tmp_path, reviews_expected, accounts, rings)
    scores = pd.read_parquet(tmp_path / "review_scores.parquet")
    assert "quality" not in scores.columns and (scores["model_version"] == "integrity-1").all()
    assert (tmp_path / "item_quality.parquet").exists()  # the fit ran in the job


def test_cli_spark_score_with_a_fit_and_import_results_round_trip(spark: Any, integrity_world: tuple[Any, ...],
                                                                  tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from truescore.store.integrity_io import read_rings, suspicion_frame

    reviews, reviews_expected, accounts, rings = integrity_world
    fit_dir, out = tmp_path / "fit", tmp_path / "out"
    code, _, stderr = run_cli(["spark", "fit", "--reviews", str(reviews), "--out", str(fit_dir)], capsys)
    assert code == 0, stderr
    code, stdout, stderr = run_cli(["spark", "score", "--reviews", str(reviews), "--out", str(out), "--fit",
                                    str(fit_dir), "--no-text"], capsys)
    assert code == 0, stderr
    assert "integrity engine" in stdout and f"{len(rings):,} rings" in stdout
    _check_suspicion(out, reviews_expected, accounts, rings)
    assert not (out / "item_quality.parquet").exists()  # the fit was given
    url = f"sqlite:///{tmp_path / 'serve.db'}"
    target = Store.open(url)
    target.import_derived({"rings": pd.DataFrame([{**rings[0], "ring_id": "stale", "members": "[]",
                                                   "targets": "[]", "evidence": "{}"}])})
    code, stdout, stderr = run_cli(["import-results", str(fit_dir), "--db", url], capsys)
    assert code == 0, stderr
    code, stdout, stderr = run_cli(["import-results", str(out), "--db", url], capsys)
    assert code == 0, stderr
    assert f"{len(rings):,} rows of rings" in stdout
    back = suspicion_frame(target).set_index("review_id").loc[reviews_expected.index]
    assert _max_diff(back["suspicion"], reviews_expected["suspicion"]) <= 1e-6
    assert (back["suspicion_reasons"].fillna("") == reviews_expected["suspicion_reasons"].fillna("")).all()
    users = pd.DataFrame(target.read_derived("user_reliability")).set_index("user_id").loc[accounts.index]
    assert _max_diff(users["suspicion"], accounts["suspicion"]) <= 1e-6
    assert _max_diff(users["reliability"], accounts["reliability"]) <= 1e-9
    assert [(r["ring_id"], r["members"], r["targets"]) for r in read_rings(target)] == \
        [(r["ring_id"], r["members"], r["targets"]) for r in rings]  # the stale ring is gone


def test_clear_error_without_java(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("JAVA_HOME", "TRUESCORE_SPARK_MASTER")}
    env["JAVA_HOME"] = str(tmp_path / "no-java-here")
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    path = tmp_path / "r.parquet"
    pd.DataFrame({"id": ["r1"]}).to_parquet(path)
    proc = subprocess.run([_TRUESCORE, "spark", "fit", "--reviews", str(path), "--out",
                           str(tmp_path / "o")], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Spark needs Java 17" in lines[0] and "no-java-here" in lines[0]
    env.pop("JAVA_HOME")
    env["PATH"] = str(tmp_path)  # no java on it
    proc = subprocess.run([_TRUESCORE, "spark", "fit", "--reviews", str(path), "--out",
                           str(tmp_path / "o")], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 1
    assert "no `java` on the PATH" in proc.stderr


def test_cli_spark_score_names_a_missing_items_file(spark: Any, integrity_world: tuple[Any, ...], tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    reviews = tmp_path / "reviews.parquet"
    reviews.write_bytes(Path(integrity_world[0]).read_bytes())
    code, _, stderr = run_cli(["spark", "score", "--reviews", str(reviews), "--out", str(tmp_path / "o"),
                               "--no-text"], capsys)
    assert code == 1
    assert "items.parquet: missing" in stderr and "truescore export items" in stderr
