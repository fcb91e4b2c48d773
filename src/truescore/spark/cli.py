"""``truescore spark fit|score|rank`` and ``truescore import-results`` (registered by :mod:`truescore.cli`).

pyspark is imported only when a spark command runs, so the rest of the CLI works without the extra.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from truescore.console import CliError, console, open_store

if TYPE_CHECKING:
    from truescore.config import Settings

spark_app = typer.Typer(name="spark", help="Batch jobs on Apache Spark: Parquet in, Parquet out (extra `spark`).",
                        no_args_is_help=True)

ReviewsOption = Annotated[Path, typer.Option("--reviews", help="Reviews Parquet (`truescore export reviews`).")]
OutOption = Annotated[Path, typer.Option("--out", help="Output folder.")]
MasterOption = Annotated[str | None, typer.Option("--master", help="Spark master URL (default local[2]).")]
PartitionsOption = Annotated[int | None, typer.Option("--partitions", min=1,
                                                      help="Shuffle partitions (default: Spark's).")]


def _settings() -> Settings:
    """The process's settings, loaded once (by the CLI's callback): passed to the Spark jobs, a door's job."""
    from truescore.config import get_settings

    return get_settings()


def _session(master: str | None, partitions: int | None) -> Any:
    from truescore.spark.session import SparkUnavailableError, get_session

    try:
        return get_session(master, shuffle_partitions=partitions)
    except SparkUnavailableError as exc:
        raise CliError(str(exc)) from None


@spark_app.command("fit")
def spark_fit_cmd(reviews: ReviewsOption, out: OutOption, master: MasterOption = None,
                  partitions: PartitionsOption = None) -> None:
    """Reliability fit (VB, the configured reliability settings) of REVIEWS: DIR/item_quality.parquet,
    DIR/user_reliability.parquet."""
    from truescore.reliability.vb import VBOptions
    from truescore.spark.fit import fit_frames, spark_fit

    spark = _session(master, partitions)
    result, report = spark_fit(spark, reviews, VBOptions.from_settings(_settings().reliability))
    fit_frames(result, report, out)
    console.print(f"{report.model_version} on {report.master} ({report.partitions} partitions): "
                     f"{report.n_items:,} items, {report.n_users:,} raters, {report.n_ratings:,} ratings; "
                     f"{report.n_iter} sweeps, converged={report.converged}, {report.seconds:.1f} s; "
                     f"wrote {out}/item_quality.parquet and {out}/user_reliability.parquet")


@spark_app.command("score")
def spark_score_cmd(reviews: ReviewsOption, out: OutOption, master: MasterOption = None,
                    partitions: PartitionsOption = None,
                    batch_size: Annotated[int | None, typer.Option("--batch-size", min=1,
                                                                   help="Reviews per model batch.")] = None,
                    fit: Annotated[Path | None, typer.Option(
                        "--fit", help="Output folder of `spark fit` (reliability for the suspicion); default: "
                                      "fit in this job.")] = None,
                    text: Annotated[bool | None, typer.Option(
                        "--text/--no-text", help="Run the text models (default: when reviews have text).")] = None,
                    ) -> None:
    """Text scores (quality, fake probability, sentiment) and suspicion of every review, suspicion of every
    account, rings: DIR/review_scores.parquet, DIR/user_reliability.parquet, DIR/rings.parquet."""
    from truescore.spark.score import score_run

    spark = _session(master, partitions)
    started = time.perf_counter()
    try:
        report = score_run(spark, reviews, out, batch_size=batch_size, fit=fit, text=text, settings=_settings())
    except (FileNotFoundError, ValueError) as exc:
        raise CliError(str(exc)) from None
    seconds = time.perf_counter() - started
    n = report.n_reviews
    if report.n_text_scored:
        console.print(f"text engine: scored {report.n_text_scored:,} reviews")
    else:
        console.print("text engine: skipped (" + ("--no-text" if text is False else "no review has text") + ")")
    run = report.integrity
    if run is not None:
        console.print(f"integrity engine (driver, {run.seconds:.1f} s): {n:,} reviews, {run.flagged_reviews:,} "
                      f"flagged; {len(run.accounts):,} accounts, {run.flagged_accounts:,} flagged; "
                      f"{len(run.rings):,} rings")
    console.print(f"scored {n:,} reviews in {seconds:.1f} s ({n / max(seconds, 1e-9):.0f} reviews/s); "
                  f"wrote {out}/review_scores.parquet" + (", user_reliability.parquet, rings.parquet"
                                                           if run is not None else ""))


@spark_app.command("rank")
def spark_rank_cmd(reviews: ReviewsOption, out: OutOption, master: MasterOption = None,
                   partitions: PartitionsOption = None,
                   store_dir: Annotated[Path | None, typer.Option(
                       "--tables", help="Folder with the other event tables (items, votes, flags, trust, users) "
                                        "as <table>.parquet; default: the folder of --reviews.")] = None,
                   scores: Annotated[Path | None, typer.Option(
                       "--scores", help="Output folder of `spark score` (text scores to rank with).")] = None) -> None:
    """Public ranking (fused score and love score) of every item: DIR/product_rankings.parquet."""
    from truescore.spark.rank import spark_rank

    spark = _session(master, partitions)
    started = time.perf_counter()
    n = spark_rank(spark, reviews, out, tables=store_dir, scores=scores, settings=_settings())
    console.print(f"ranked {n:,} items in {time.perf_counter() - started:.1f} s; "
                     f"wrote {out}/product_rankings.parquet")


def import_results_cmd(
    folder: Annotated[Path, typer.Argument(help="Output folder of a Spark run.")],
    db: Annotated[str | None, typer.Option("--db", help="Store URL (default: $TRUESCORE_DATABASE_URL, then "
                                                        "sqlite:///truescore.db).")] = None,
) -> None:
    """Load a Spark run's Parquet results into the store's derived tables (one transaction)."""
    from truescore.spark.results import read_results, record_runs

    frames = read_results(folder)  # the folder is checked before the store is opened
    store = open_store(db)
    counts = store.import_derived(frames)
    record_runs(store, folder, frames)
    console.print("imported " + ", ".join(f"{n:,} rows of {t}" for t, n in counts.items()) + f" from {folder}")
