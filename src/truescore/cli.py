"""The ``truescore`` command line (typer + rich).

Every command that touches a store takes ``--db URL``, defaulting to the configuration's
``TRUESCORE_DATABASE_URL``, then ``sqlite:///truescore.db``. Errors print one readable line and exit
non-zero. Command bodies stay thin: they parse arguments, call the library and print.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from truescore.console import CliError, console, open_store, progress_bar, require_existing_sqlite, run_app, table

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy import Connection

    from truescore.config import Settings
    from truescore.store.ingest import ImportReport

app = typer.Typer(
    name="truescore",
    help="Honest product ratings: rater reliability, per-observer trust and review intelligence.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

DbOption = Annotated[
    str | None,
    typer.Option("--db", help="Store URL (default: $TRUESCORE_DATABASE_URL, then sqlite:///truescore.db)."),
]


@app.callback()
def _load_configuration() -> None:
    """Validate the configuration before any command runs (a bad value is refused with its range)."""
    _settings()


def _settings() -> Settings:
    """The process's settings (``truescore.toml``, ``TRUESCORE_*``), loaded once: the CLI is a door, so it
    reads them and passes them to the jobs and engines, which never read them themselves."""
    from truescore.config import get_settings

    return get_settings()


def _topic_option(value: str | None) -> str | None:
    """A --topic option checked by the one topic rule (truescore.domain.clean_topic)."""
    from truescore.domain import RuleError, clean_topic

    if value is None:
        return None
    try:
        return clean_topic(value, "--topic")
    except RuleError as exc:
        raise CliError(str(exc)) from None


# ---------------------------------------------------------------------------------------------- store commands
@app.command("import")
def import_cmd(
    file: Annotated[Path | None, typer.Argument(help="CSV, TSV, JSON Lines or Parquet file.")] = None,
    kind: Annotated[str, typer.Option(help="reviews | votes | trust | flags | users | items | verdicts")] = "reviews",
    mapping: Annotated[list[str] | None, typer.Option("--map", help="Rename a column: column=field.")] = None,
    skip_bad: Annotated[bool, typer.Option("--skip-bad", help="Import good rows; write bad ones to a file.")] = False,
    rejects: Annotated[Path | None, typer.Option(help="Rejects file (default FILE.rejects.csv).")] = None,
    from_db: Annotated[str | None, typer.Option("--from-db", help="Read from this database URL instead.")] = None,
    table: Annotated[str | None, typer.Option(help="Table to read with --from-db.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Rows per insert statement (default import_batch_size); "
                                                   "the whole import is one transaction.")] = None,
    epoch_unit: Annotated[str, typer.Option("--epoch-unit", help="Unit of numeric timestamps: s (default) or "
                                            "ms; never guessed.")] = "s",
    db: DbOption = None,
) -> None:
    """Import events, validating every row (all-or-nothing unless --skip-bad), in one transaction with its
    audit row: an import that fails or is interrupted leaves nothing."""
    from truescore.store.ingest import (
        default_rejects_path,
        import_file,
        import_table,
        parse_mapping,
    )

    if (file is None) == (from_db is None):
        raise CliError("give either FILE or --from-db URL --table NAME")
    if from_db is not None and not table:
        raise CliError("--from-db needs --table NAME")
    store = open_store(db, create=True)
    if skip_bad and rejects is None:
        rejects = default_rejects_path(str(file) if file is not None else str(table))
    if epoch_unit not in ("s", "ms"):
        raise CliError(f"--epoch-unit {epoch_unit!r}: use s (epoch seconds) or ms (epoch milliseconds)")

    source = None
    if from_db is not None:  # never a database password in the audit
        from sqlalchemy.engine import make_url

        source = f"{make_url(from_db).render_as_string(hide_password=True)}::{table}"
    kwargs: dict[str, Any] = {"mapping": parse_mapping(mapping), "skip_bad": skip_bad,
                              "rejects_path": rejects, "batch_size": batch_size, "epoch_unit": epoch_unit,
                              "before_commit": _import_audit("import", source)}
    with progress_bar(f"importing {kind}") as progress:
        if file is not None:
            report = import_file(store, file, kind, progress=progress, **kwargs)
        else:
            report = import_table(store, str(from_db), str(table), kind, progress=progress, **kwargs)
    console.print(
        f"{report.source}: read {report.rows_read:,} {kind}, imported {report.rows_inserted:,} new "
        f"({report.rows_valid - report.rows_inserted:,} already stored or repeated), rejected {report.rows_rejected:,} "
        f"in {report.seconds:.1f} s ({report.rows_per_second:,.0f} rows/s)", soft_wrap=True
    )
    if report.rejects_path:
        console.print(f"rejected rows and their reasons: {report.rejects_path}")


def _import_audit(action: str, source: str | None = None) -> Callable[[Connection, ImportReport], None]:
    """The hook that writes one audit row per import, in the import's transaction: the source (``source``
    instead of the report's, e.g. a database URL without its password) and the counts, not every event key.
    An import that fails or is interrupted leaves no row."""
    from truescore.store import service

    def audit(conn: Connection, report: ImportReport) -> None:
        service.record_audit(conn, key_id=None, user_id=None, action=action, kind=report.kind,
                             n=report.rows_inserted,
                             refs=[f"source={source or report.source}", f"read={report.rows_read}",
                                   f"inserted={report.rows_inserted}", f"rejected={report.rows_rejected}"])

    return audit


@app.command("load")
def load_cmd(
    name: Annotated[str, typer.Argument(help="bitcoin-otc | crowd-emotion | filmtrust | "
                                             "amazon-musical-instruments | amazon-fashion | all")],
    data_dir: Annotated[Path | None, typer.Option(help="Reference data folder (default ../shared/data).")] = None,
    db: DbOption = None,
) -> None:
    """Load a reference data set from ../shared/data through its preset."""
    from truescore.store.datasets import PRESETS, load_preset

    names = list(PRESETS) if name == "all" else [name]
    store = open_store(db, create=True)
    rows = []
    for n in names:
        report = load_preset(store, n, data_dir, before_commit=_import_audit("load"))
        for kind, read in report.rows_read.items():
            rows.append([n, kind, read, report.inserted.get(kind, 0), report.rejected.get(kind, 0)])
    console.print(table("loaded", ["data set", "events", "read", "new", "rejected"], rows))


@app.command("export")
def export_cmd(
    table: Annotated[str, typer.Argument(help="Any event or derived table, e.g. reviews, item_quality.")],
    out: Annotated[Path, typer.Option("--out", help="Output file: .csv, .jsonl or .parquet.")],
    db: DbOption = None,
) -> None:
    """Write a table to CSV, JSON Lines or Parquet (chosen by the file extension).

    CSV cells that a spreadsheet would run as a formula (starting with = + - @ tab CR) get a leading '.
    """
    from truescore.store import schema
    from truescore.store.export import EXPORT_FORMATS, export_table

    if out.suffix.lower() not in EXPORT_FORMATS:
        raise CliError(f"{out}: use a .csv, .jsonl or .parquet file name")
    if table not in schema.metadata.tables:
        raise CliError(f"unknown table {table!r}; tables: {', '.join(sorted(schema.metadata.tables))}")
    n = export_table(open_store(db), table, out)
    console.print(f"wrote {n:,} rows of {table} to {out}")


@app.command("info")
def info_cmd(db: DbOption = None) -> None:
    """Row counts of every table and the topics of the store."""
    store = open_store(db)
    console.print(table(f"store {store.engine.url.render_as_string(hide_password=True)}", ["table", "rows"],
                         [[k, v] for k, v in store.counts().items()]))
    topics = store.topics()
    if topics:
        console.print(table("topics", ["topic", "items"], [[t, n] for t, n in topics]))


@app.command("check")
def check_cmd(
    kind: Annotated[list[str] | None, typer.Option("--kind", help="Table(s) to check (default: users, items, "
                                                   "reviews, votes, trust, flags).")] = None,
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many problems.")] = 50,
    db: DbOption = None,
) -> None:
    """Find stored events that today's write rules refuse (rows stored before a rule, or by a path that skipped it):
    each named by its table, key and field. Read-only; exits 1 when it finds any."""
    from truescore.store.ingest import CHECKED_KINDS, check_stored

    kinds = kind or list(CHECKED_KINDS)
    bad = [k for k in kinds if k not in CHECKED_KINDS]
    if bad:
        raise CliError(f"--kind {bad[0]!r}: choose among {', '.join(CHECKED_KINDS)}")
    store = open_store(db)
    problems = check_stored(store, kinds, settings=_settings(), limit=limit + 1)
    if not problems:
        console.print(f"check: every stored row of {', '.join(kinds)} passes today's write rules", highlight=False)
        return
    for p in problems[:limit]:
        console.print(str(p), highlight=False, soft_wrap=True)
    more = " (more not shown: raise --limit)" if len(problems) > limit else ""
    raise CliError(f"check: {min(len(problems), limit)} stored row problem(s){more}. Delete such a review with "
                   "DELETE /reviews/{id} or erase its user (truescore erase), or export, fix and re-import it")


@app.command("config")
def config_cmd(db: DbOption = None) -> None:
    """Show every parameter with its value, allowed range and meaning, then what the store's last text run
    fitted from its data (the sentiment calibration), when there is a store."""
    from truescore.config import describe_settings

    for name, value, rng, doc in describe_settings(_settings()):
        console.print(f"[bold]{name}[/bold] = {value!r}  [dim]range {rng or 'any'}[/dim]  {doc}", soft_wrap=True)
    line = _fitted_from_store(db)
    if line:
        console.print(f"fitted from the store: {line}", highlight=False, soft_wrap=True)


def _fitted_from_store(db: str | None) -> str | None:
    """What the store's last text run fitted (:func:`truescore.jobs.score.calibration_summary`); None when there
    is no store there (a SQLite file is never created by asking), it cannot be read, or it has no text run."""
    from sqlalchemy.engine import make_url

    from truescore.jobs.score import calibration_summary
    from truescore.store import Store

    url = db or _settings().database_url
    try:
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite" and not Path(parsed.database or "").is_file():
            return None
        store = Store.open(url, create=False)
        try:
            return calibration_summary(store)
        finally:
            store.close()
    except Exception:  # unreachable, not a store, a store of an older release: the settings are all there is
        return None


@app.command("synth")
def synth_cmd(
    out: Annotated[Path | None, typer.Option("--out", help="SQLite file to write (default: --db).")] = None,
    users: Annotated[int, typer.Option(min=10, help="Number of users.")] = 3000,
    items: Annotated[int, typer.Option(min=5, help="Number of items.")] = 400,
    ratings: Annotated[int, typer.Option(min=5, help="Number of ratings.")] = 40_000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    no_text: Annotated[bool, typer.Option("--no-text", help="Leave review texts out.")] = False,
    db: DbOption = None,
) -> None:
    """Generate the synthetic marketplace (planted ground truth) and write it to a store."""
    from truescore.synth import SynthConfig, generate

    started = time.perf_counter()
    world = generate(SynthConfig(n_users=users, n_items=items, n_ratings=ratings, seed=seed, with_text=not no_text))
    generated = time.perf_counter() - started
    store = open_store(f"sqlite:///{out}" if out is not None else db, create=True)
    with progress_bar("writing") as progress:
        world.write(store, progress=lambda table, done, total: progress(done, total))
    from truescore.store import service

    with store.engine.begin() as conn:  # after the world's own transactions: a failed write leaves no row
        service.record_audit(conn, key_id=None, user_id=None, action="synth", kind="reviews", n=world.n_ratings,
                             refs=[f"seed={seed}", f"users={users}", f"items={items}", f"ratings={world.n_ratings}",
                                   f"text={not no_text}"])
    total = time.perf_counter() - started
    console.print(f"generated {world.n_ratings:,} ratings in {generated:.1f} s; wrote the store in "
                  f"{total - generated:.1f} s ({store.engine.url.render_as_string(hide_password=True)})")
    _print_world(world)


def _print_world(world: Any) -> None:
    s = world.summary()
    console.print(table("planted world", ["what", "count"],
                         [[k, s[k]] for k in ("users", "items", "ratings", "votes", "trust_edges", "flags",
                                               "fake_ratings", "bot_rings")]))
    console.print(table("rater kinds (truth)", ["kind", "users"], [[k, v] for k, v in s["user_kinds"].items()]))


@app.command("demo")
def demo_cmd(
    out: Annotated[Path, typer.Option("--out", help="Demo store file.")] = Path("truescore-demo.db"),
    serve: Annotated[bool, typer.Option("--serve/--no-serve", help="Serve the web page at the end.")] = True,
    users: Annotated[int, typer.Option(min=10)] = 3000,
    items: Annotated[int, typer.Option(min=5)] = 400,
    ratings: Annotated[int, typer.Option(min=5)] = 16_000,
    text: Annotated[bool, typer.Option("--text/--no-text", help="Score review texts (the slow engine).")] = True,
) -> None:
    """The main job: build the synthetic marketplace, run every engine, show what they found."""
    from truescore.demo import run_demo
    from truescore.synth import SynthConfig

    started = time.perf_counter()
    with progress_bar("building the demo store") as progress:
        report = run_demo(out, SynthConfig(n_users=users, n_items=items, n_ratings=ratings), score_text=text,
                          progress=lambda table, done, total: progress(done, total), settings=_settings())
    _print_demo(report, out)
    console.print(f"done in {time.perf_counter() - started:.1f} s")
    if serve:
        _serve_store(f"sqlite:///{out}", None, None, create=True)


def _print_demo(report: Any, out: Path) -> None:
    world, ranking = report.world, report.ranking
    s = world.summary()
    console.print(f"[bold]truescore demo[/bold]: a synthetic marketplace of {s['users']:,} users, {s['items']:,} "
                  f"items and {s['ratings']:,} ratings ({s['fake_ratings']} from {s['bot_rings']} planted bot rings), "
                  f"{s['votes']:,} helpful votes and {s['trust_edges']:,} trust edges, written to {out}")
    console.print("engines: " + ", ".join(f"{k} {v:.1f} s" for k, v in report.timings.items())
                  + (f"; {report.text_scored:,} reviews scored" if report.text_scored else f"; {report.text_note}"))
    truth = world.truth.item_quality
    rows = [[p.item_id, p.topic.removeprefix("reviews.public."), f"{p.fused_mean:.2f}", f"{p.fused_sd:.2f}",
             f"{p.plain_mean:.2f}", f"{truth[int(p.item_id[1:])]:.2f}", p.n_reviews,
             "" if p.love is None else f"{p.love.score:.0f}", p.love.tier if p.love else ""]
            for p in ranking.top(limit=10)]
    console.print(table("top 10 items by fused score (ranked by its 90% lower bound)",
                         ["item", "topic", "fused", "+/-", "plain avg", "true", "reviews", "love", "tier"], rows))
    ring_rows = [[r.target, f"{r.members} {r.kind.removeprefix('bot_')}", f"{r.true_quality:.2f}",
                  f"{r.plain_without:.2f}", f"{r.plain_with:.2f}", f"{r.plain_shift:+.2f}", f"{r.fused_without:.2f}",
                  f"{r.fused_with:.2f}", f"{r.fused_shift:+.2f}", f"{r.weight_share:.1%}"] for r in report.rings]
    console.print(table("bot rings caught: each ring's target with and without the ring",
                         ["target", "ring", "true", "plain w/o", "plain with", "plain shift", "fused w/o",
                          "fused with", "fused shift", "ring's weight"], ring_rows))
    best = ranking.top(limit=1)[0]
    if best.love is not None:
        console.print(f"[bold]{best.item_id}[/bold]: {best.love.explanation}")


@app.command("rank")
def rank_cmd(
    topic: Annotated[str | None, typer.Option("--topic", callback=_topic_option,
                                                 help="Topic (and its subtopics); default all.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Rows to show.")] = 20,
    observer: Annotated[str | None, typer.Option("--observer", help="Rank as this user sees it.")] = None,
    explain: Annotated[str | None, typer.Option("--explain", help="Show how each review of ITEM counted.")] = None,
    write: Annotated[bool, typer.Option("--write/--no-write", help="Store the public ranking.")] = True,
    refit: Annotated[bool, typer.Option("--refit", help="Run the fit and the integrity engine first when their "
                                        "stored results are missing or stale (otherwise that is an error).")] = False,
    db: DbOption = None,
) -> None:
    """Rank products by fused score (lower credible bound) with love score and plain average side by side,
    from the stored fit (`truescore fit`, any backend), integrity evidence and text scores (`truescore score`)."""
    from truescore.jobs import rank_store

    store = open_store(db)
    result = rank_store(store, observer=observer, write=write and observer is None, refit=refit,
                        settings=_settings())
    console.print("inputs: " + "; ".join(f"{k} {v}" for k, v in result.sources.items()), highlight=False)
    rows = [[p.item_id, p.topic, f"{p.fused_mean:.2f}", f"{p.fused_sd:.2f}", f"{p.lower_bound:.2f}",
             f"{p.plain_mean:.2f}", p.n_reviews, "" if p.love is None else f"{p.love.score:.0f}",
             p.love.tier if p.love else ""] for p in result.top(topic, limit)]
    title = f"ranking{' for ' + observer if observer else ' (public view)'}{' in ' + topic if topic else ''}"
    console.print(table(title, ["item", "topic", "fused", "+/-", "lower bound", "plain avg", "reviews", "love",
                                 "tier"], rows))
    if explain:
        weights = result.explain(explain)
        console.print(table(f"how each review of {explain} counted", ["review", "reviewer", "rating", "share",
                                                                        "reliability", "track record", "authenticity",
                                                                        "trust", "burst", "integrity", "robust", "why"],
                             [[w.review_id, w.user_id, f"{w.rating:g}", f"{w.share:.1%}",
                               *(f"{v:.2f}" for v in w.factors.values()), w.reason] for w in weights[:limit]]))


# --- trust commands ---
@app.command("rate")
def rate_cmd(
    item: Annotated[str, typer.Argument(help="Item id.")],
    observer: Annotated[str, typer.Option("--observer", help="User whose trust graph weighs the reviews.")],
    topic: Annotated[str | None, typer.Option("--topic", callback=_topic_option,
                                                 help="Topic (default: the item's own).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the whole result as JSON (seed 003 names).")] = False,
    at: Annotated[str | None, typer.Option("--at", help="As of this time: epoch seconds or ISO 8601 (default now); "
                                           "recency is measured from it, later events are ignored.")] = None,
    db: DbOption = None,
) -> None:
    """OBSERVER's personal estimate of ITEM (for_you, issue 13) and the trust-weighted rating (seed 003),
    with the trust path of each review."""
    from truescore.jobs import rater_from_store
    from truescore.trust.clock import parse_at
    from truescore.trust.report import RATING_COLUMNS, rating_rows, rating_summary

    try:
        clock = None if at is None else parse_at(at)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--at") from None
    result = rater_from_store(open_store(db), _settings()).effective_rating(item, observer, topic=topic, at=clock)
    if json_out:
        typer.echo(_json(result.to_dict()))
        return
    for line in rating_summary(result):
        console.print(line, markup=False, highlight=False)
    if result.contributions:
        console.print(table("contributions (weight = T x H x A x R x F)", RATING_COLUMNS, rating_rows(result)))


# --- reliability commands ---
@app.command("fit")
def fit_cmd(
    backend: Annotated[str | None, typer.Option("--backend", help="vb (closed form, default) or torch (seed).")] = None,
    topic: Annotated[str | None, typer.Option("--topic", callback=_topic_option,
                                                 help="Only items of this topic and its subtopics.")] = None,
    top: Annotated[int, typer.Option("--top", min=0, help="Rows in each table.")] = 10,
    db: DbOption = None,
) -> None:
    """Fit item quality and rater reliability (seed 000) and write item_quality / user_reliability."""
    from truescore.jobs import fit_summary, run_fit
    from truescore.reliability.report import ITEM_COLUMNS, RATER_COLUMNS, item_rows, rater_rows

    with progress_bar("seed model epochs") as progress:
        report = run_fit(open_store(db), backend=backend, topic=topic, progress=progress, settings=_settings())
    res = report.result
    console.print(fit_summary(report), markup=False, highlight=False)
    if top and res.item_n_ratings.sum():
        console.print(table("top items (by the 90% lower bound)", ITEM_COLUMNS, item_rows(res, top)))
        console.print(table("least reliable raters", RATER_COLUMNS, rater_rows(res, top)))


# --- api commands ---
def _serve_store(db: str | None, host: str | None, port: int | None, workers: int | None = None,
                 create: bool = False) -> None:
    from truescore.api import serve
    from truescore.api.app import ServeError

    if not create:
        require_existing_sqlite(db)

    def serving(address: str) -> None:
        console.print(f"serving the TrueScore API and web page at {address} (API docs at /docs; Ctrl-C stops)")

    try:
        serve(db, host, port, settings=_settings(), workers=workers, on_serving=serving)
    except ServeError as exc:
        raise CliError(str(exc)) from None


@app.command("serve")
def serve_cmd(
    host: Annotated[str | None, typer.Option("--host", help="Bind address (default api.host, 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option("--port", min=1, max=65535, help="Port (default api.port, 8000).")] = None,
    workers: Annotated[int | None, typer.Option("--workers", min=1, help="Server processes (default 1).")] = None,
    create: Annotated[bool, typer.Option("--create", help="Create the SQLite store if the file does not exist "
                                         "(otherwise a missing file is an error).")] = False,
    db: DbOption = None,
) -> None:
    """Serve the HTTP API (OpenAPI docs at /docs) and the web page at / over a store."""
    _serve_store(db, host, port, workers, create=create)


keys_app = typer.Typer(help="API keys for writes (stored hashed; a secret is shown once).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("create")
def keys_create_cmd(
    name: Annotated[str, typer.Option("--name", help="What the key is for.")] = "default",
    user: Annotated[str | None, typer.Option("--user", help="The user the key acts as (omit for a platform admin "
                                             "key).")] = None,
    scope: Annotated[list[str] | None, typer.Option("--scope", help="write | moderate | admin (repeatable; default "
                                                    "write with --user, admin without).")] = None,
    rate: Annotated[int | None, typer.Option("--rate", min=0, help="Requests per rate window for this key "
                                             "(default api.rate_limit_requests; 0 = unlimited).")] = None,
    quota: Annotated[int | None, typer.Option("--quota", min=0, help="Events per UTC day for this key (default "
                                              "api.daily_event_quota; 0 = unlimited).")] = None,
    db: DbOption = None,
) -> None:
    """Create a key for a user with scopes and print its secret on the last line (only once: only its
    SHA-256 is stored)."""
    from truescore.store import service

    key_id, secret = service.create_key(open_store(db), name, user_id=user, scopes=scope, rate_limit=rate,
                                        daily_quota=quota)
    scopes = ",".join(scope) if scope else ("write" if user else "admin")
    who = f"user {user}" if user else "the platform"
    console.print(f"key {key_id} ({name}) created for {who} with scope {scopes}; send it as "
                  "'Authorization: Bearer <secret>'. Secret:", highlight=False)
    typer.echo(secret)


@keys_app.command("list")
def keys_list_cmd(db: DbOption = None) -> None:
    """Every key's id, name, user, scopes, limits, creation time and state (never the secret)."""
    from truescore.store import service

    def limit(value: int | None) -> str:
        return "default" if value is None else ("unlimited" if value == 0 else str(value))

    rows = [[k["id"], k["name"], k["user_id"] or "(platform)", ",".join(k["scopes"]), limit(k["rate_limit"]),
             limit(k["daily_quota"]), time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(k["created_at"])),
             "revoked" if k["revoked"] else "live"] for k in service.list_keys(open_store(db))]
    console.print(table("API keys", ["id", "name", "user", "scopes", "rate", "quota", "created (UTC)", "state"],
                         rows))


@keys_app.command("revoke")
def keys_revoke_cmd(
    key_id: Annotated[str, typer.Argument(help="Key id (from keys list).")],
    db: DbOption = None,
) -> None:
    """Revoke a key: requests with it are refused with 403 from then on."""
    from truescore.store import service

    if not service.revoke_key(open_store(db), key_id):
        raise CliError(f"no API key with id {key_id!r}")
    console.print(f"key {key_id} revoked")


# --- audit, erasure and jobs (issue 10; docs/security.md) ---
@app.command("audit")
def audit_cmd(
    key: Annotated[str | None, typer.Option("--key", help="Only this key id.")] = None,
    user: Annotated[str | None, typer.Option("--user", help="Only this user.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many rows (newest first).")] = 50,
    db: DbOption = None,
) -> None:
    """Who wrote what and when: one row per accepted write, deletion, erasure or key change."""
    from truescore.store import service

    rows = []
    for a in service.list_audit(open_store(db), key_id=key, user_id=user, limit=limit):
        refs = ", ".join(str(r) for r in a["refs"][:3]) + (" ..." if len(a["refs"]) > 3 else "")
        rows.append([str(a["id"]), time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(a["at"])), a["key_id"] or "(cli)",
                     a["user_id"] or "", a["action"], a["kind"], str(a["n"]), refs])
    console.print(table("audit", ["#", "at (UTC)", "key", "user", "action", "kind", "n", "events"], rows))


@app.command("erase")
def erase_cmd(
    user: Annotated[str, typer.Option("--user", help="The user to erase.")],
    refit: Annotated[bool, typer.Option("--refit/--no-refit", help="Refit the engines afterwards when the store "
                                        "holds fitted results (default yes).")] = True,
    db: DbOption = None,
) -> None:
    """Erase a user: their reviews, votes, trust statements and flags, with the rows derived from them;
    the audit keeps counts only. Running servers pick it up within api.refresh_seconds."""
    from truescore.jobs import erase_user

    store = open_store(db)
    if store.get_user(user) is None:
        raise CliError(f"no user {user!r} in the store")
    report = erase_user(store, user, refit=refit, settings=_settings())
    d = report.erasure.as_dict()
    console.print(f"erased user {user}: {d['reviews']} reviews, {d['votes']} votes, {d['trust']} trust statements, "
                  f"{d['flags']} flags, {d['verdicts']} verdicts, {d['derived']} derived rows; "
                  f"{d['items_touched']} items touched",
                  highlight=False)
    if report.refitted:
        console.print("refitted the reliability engine, the integrity evidence and the ranking")


jobs_app = typer.Typer(help="Background jobs of the API (fit, score).", no_args_is_help=True)
app.add_typer(jobs_app, name="jobs")


@jobs_app.command("list")
def jobs_list_cmd(db: DbOption = None) -> None:
    """The latest jobs, newest first."""
    from truescore.store import service

    rows = [[j["id"], j["kind"], j["status"], time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(j["created_at"])),
             j["owner"] or "", (j["message"] or "")[:60]] for j in service.list_jobs(open_store(db))]
    console.print(table("jobs", ["id", "kind", "status", "created (UTC)", "server", "message"], rows))


@jobs_app.command("cancel")
def jobs_cancel_cmd(
    job_id: Annotated[str, typer.Argument(help="Job id (from jobs list).")],
    db: DbOption = None,
) -> None:
    """Cancel a queued or running job."""
    from truescore.store import service

    job = service.cancel_job(open_store(db), job_id)
    if job is None:
        raise CliError(f"no job with id {job_id!r}")
    console.print(f"job {job_id} is {job['status']}")


# --- text commands ---
TextTask = Annotated[str, typer.Option("--task", help="quality | fake | sentiment.")]
TextCol = Annotated[str, typer.Option("--text-col", help="Column holding the review text.")]
LabelCol = Annotated[str, typer.Option("--label-col", help="Column holding the label.")]
PositiveLabel = Annotated[str | None, typer.Option("--positive", help="For string labels: the one meaning 1 "
                                                   "(fake), e.g. deceptive or CG; the other label is 0.")]


@app.command("train-text")
def train_text_cmd(
    task: TextTask,
    data: Annotated[list[str], typer.Option("--data", help="Training file or ref:NAME (repeatable).")],
    text_col: TextCol = "text",
    label_col: Annotated[str | None, typer.Option("--label-col", help="Label column (quality: optional; "
                                                  "default is_incentivized, then helpfulness).")] = "label",
    out: Annotated[Path | None, typer.Option("--out", help="Artifact folder (default: the shipped models).")] = None,
    positive: PositiveLabel = None,
) -> None:
    """Train a text model (seed 004) and write its artifact and manifest entry."""
    from truescore.text.training import train_from_files

    record = train_from_files(task, data, text_col=text_col, label_col=label_col, out_dir=out,
                              command="truescore train-text " + " ".join(sys.argv[2:]), positive=positive,
                              settings=_settings())
    console.print(table(f"trained {task}", ["field", "value"], [[k, str(v)] for k, v in record.items()]))


@app.command("text-eval")
def text_eval_cmd(
    task: TextTask,
    train: Annotated[list[str], typer.Option("--train", help="Training file or ref:NAME (repeatable).")],
    test: Annotated[list[str], typer.Option("--test", help="Test file or ref:NAME (repeatable).")],
    text_col: TextCol = "text",
    label_col: LabelCol = "label",
    positive: PositiveLabel = None,
) -> None:
    """Train a text model on --train and print its metrics on --test as JSON."""
    from truescore.text.training import evaluate_files

    typer.echo(_json(evaluate_files(task, train, test, text_col=text_col, label_col=label_col, positive=positive,
                                    settings=_settings())))


@app.command("score")
def score_cmd(
    batch_size: Annotated[int | None, typer.Option("--batch-size", min=1, help="Reviews per batch.")] = None,
    topic: Annotated[str | None, typer.Option("--topic", callback=_topic_option,
                                                 help="Text engine: only reviews of this topic.")] = None,
    text: Annotated[bool | None, typer.Option("--text/--no-text", help="Run the text engine (default: when "
                                              "reviews have text).")] = None,
    db: DbOption = None,
) -> None:
    """Score every review: suspicion for every review and account (integrity engine, metadata only; also
    fits reliability if needed) and, for reviews with text, quality / fake probability / sentiment."""
    from truescore.integrity.runner import summary_rows
    from truescore.jobs import run_integrity, score_text

    store = open_store(db)
    settings = _settings()
    started = time.perf_counter()
    has_text = store.has_text()
    if text or (text is None and has_text):
        try:
            with progress_bar("scoring review texts") as progress:
                n = score_text(store, batch_size=batch_size, topic=topic, progress=progress, settings=settings)
        except (ImportError, OSError) as exc:
            if text:  # asked for explicitly: a missing model is an error
                raise CliError(f"the text engine cannot run: {exc}") from None
            console.print(f"text engine: skipped, its models cannot be loaded ({exc}); suspicion is computed "
                          "from metadata", highlight=False)
        else:
            seconds = time.perf_counter() - started
            console.print(f"text engine: scored {n:,} reviews in {seconds:.1f} s "
                          f"({n / max(seconds, 1e-9):.0f} reviews/s)")
            if topic is None:
                from truescore.jobs.score import calibration_summary

                console.print(calibration_summary(store) or "", highlight=False, soft_wrap=True)
    elif not has_text:
        console.print("text engine: skipped (no review has text)")
    t = time.perf_counter()
    report = run_integrity(store, settings=settings)
    console.print(table(f"integrity engine ({time.perf_counter() - t:.1f} s)", ["what", "count"],
                         summary_rows(report.result, reviews_written=report.reviews_written,
                                      accounts_written=report.accounts_written, rings_written=report.rings_written)))
    console.print("integrity steps: " + ", ".join(f"{k} {v:.1f} s" for k, v in report.seconds.items()), highlight=False)
    for ring in report.result.rings.rings[:5]:
        console.print(f"ring-{ring.ring_id + 1}: {ring.describe()}", highlight=False)
    if report.moderation is not None:
        from truescore.integrity.report import moderation_lines

        for line in moderation_lines(report.moderation.details()):
            console.print(f"learning from moderation: {line}", highlight=False, soft_wrap=True)
    console.print(f"scored in {time.perf_counter() - started:.1f} s")


@app.command("report")
def report_cmd(
    out: Annotated[Path, typer.Option("--out", help="HTML file to write.")] = Path("report.html"),
    title: Annotated[str, typer.Option("--title", help="Title of the report.")] = "Transparency report",
    db: DbOption = None,
) -> None:
    """Write the transparency report (self-contained HTML): what was caught and discounted, by topic and
    month, with charts, the rings and the most affected items. Run `truescore score` first."""
    from truescore.jobs import build_report

    page = build_report(open_store(db), _settings(), title=title)
    out.write_text(page, encoding="utf-8")
    console.print(f"wrote the transparency report to {out} ({len(page) / 1024:.0f} KiB)")


# --- spark commands (optional extra `spark`; pyspark is imported only when one runs) ---
from truescore.spark.cli import import_results_cmd, spark_app  # noqa: E402

app.add_typer(spark_app, name="spark")
app.command("import-results")(import_results_cmd)


# ---------------------------------------------------------------------------------------------- entry point
def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the app, turning expected errors into one readable line and exit code 1."""
    run_app(app, argv)


def _json(obj: Any) -> str:
    return json.dumps(obj, indent=2, default=str)


if __name__ == "__main__":
    main()
