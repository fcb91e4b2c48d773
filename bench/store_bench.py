"""Store benchmarks: import throughput (SQLite and PostgreSQL) and synthetic-marketplace generation.

Run ``python -m bench.store_bench`` (1 million reviews, 10 million synthetic ratings) or with
``--quick`` (100 thousand / 1 million). Writes ``docs/results/store_bench.md``.

- Import: a CSV of N reviews (ids, item, user, stars, ISO timestamps, a short text) goes through
  ``truescore import`` into a fresh SQLite file and a fresh PostgreSQL schema (``--pg URL``, default
  ``$TRUESCORE_TEST_DATABASE_URL``), in separate processes; rows/s counts validation and writing.
- Synth: ``truescore synth`` for 10 M ratings (1 M users, 100 k items), in memory only and written to
  SQLite, each in its own process so that peak memory is that command's own.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

from bench.common import write_result

PY = sys.executable


def _child_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0


def _run(cmd: list[str]) -> tuple[float, float]:
    """Run ``cmd`` in a fresh process; return (seconds, that process's peak RSS in MB)."""
    wrapper = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
               "r = subprocess.run(sys.argv[1:]); dt = time.perf_counter() - t; "
               "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0; "
               "print(f'{dt} {peak}'); sys.exit(r.returncode)")
    out = subprocess.run([PY, "-c", wrapper, *cmd], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {out.stderr[-2000:]}")
    seconds, peak = out.stdout.strip().splitlines()[-1].split()
    return float(seconds), float(peak)


def make_csv(path: Path, n: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    words = np.array("good bad sturdy cheap bright dim loud quiet fast slow fine great poor solid".split())
    texts = [" ".join(words[rng.integers(0, len(words), 12)]) for _ in range(1000)]
    start = pd.Timestamp("2022-01-01", tz="UTC")
    pd.DataFrame({
        "id": [f"r{k}" for k in range(n)],
        "item_id": [f"i{k}" for k in rng.integers(0, max(n // 100, 1), n)],
        "user_id": [f"u{k}" for k in rng.integers(0, max(n // 10, 1), n)],
        "rating": rng.integers(1, 6, n),
        "created_at": (start + pd.to_timedelta(rng.integers(0, 4 * 365 * 86400, n), unit="s")).strftime(
            "%Y-%m-%dT%H:%M:%SZ"),
        "text": np.array(texts, dtype=object)[rng.integers(0, 1000, n)],
    }).to_csv(path, index=False)


def _pg_schema_url(url: str) -> tuple[str, str]:
    from sqlalchemy import create_engine, text

    schema = f"ts_bench_{uuid.uuid4().hex[:8]}"
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    engine.dispose()
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}", schema


def _drop_schema(url: str, schema: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 k reviews to import, 1 M synthetic ratings")
    parser.add_argument("--pg", default=os.environ.get("TRUESCORE_TEST_DATABASE_URL",
                                                       "postgresql+psycopg://postgres@127.0.0.1:5432/test"))
    args = parser.parse_args()
    n_import = 100_000 if args.quick else 1_000_000
    n_synth = 1_000_000 if args.quick else 10_000_000
    cli = [PY, "-m", "truescore.cli"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "reviews.csv"
        make_csv(csv, n_import)
        db = Path(tmp) / "import.db"
        secs, peak = _run([*cli, "import", str(csv), "--kind", "reviews", "--db", f"sqlite:///{db}"])
        rows.append(("import", "SQLite (file, WAL)", f"{n_import:,} reviews", secs, n_import / secs, peak))
        try:
            url, schema = _pg_schema_url(args.pg)
        except Exception as exc:  # no server: say so in the table
            rows.append(("import", f"PostgreSQL: not measured ({exc.__class__.__name__})", "", float("nan"),
                         float("nan"), float("nan")))
        else:
            try:
                secs, peak = _run([*cli, "import", str(csv), "--kind", "reviews", "--db", url])
                rows.append(("import", "PostgreSQL 15 (loopback)", f"{n_import:,} reviews", secs, n_import / secs,
                             peak))
            finally:
                _drop_schema(args.pg, schema)
        users, items = n_synth // 10, n_synth // 100
        gen = ("import sys; from truescore.synth import SynthConfig, generate; "
               f"generate(SynthConfig(n_users={users}, n_items={items}, n_ratings={n_synth}))")
        secs, peak = _run([PY, "-c", gen])
        rows.append(("synth", "generate in memory", f"{n_synth:,} ratings", secs, n_synth / secs, peak))
        out = Path(tmp) / "synth.db"
        secs, peak = _run([*cli, "synth", "--out", str(out), "--users", str(users), "--items", str(items),
                           "--ratings", str(n_synth)])
        rows.append(("synth", "generate + write SQLite (with texts)", f"{n_synth:,} ratings", secs, n_synth / secs,
                     peak))
    table = ["| step | backend | size | seconds | rows/s | peak RSS (MB) |", "|---|---|---|---:|---:|---:|"]
    table += [f"| {a} | {b} | {c} | {d:,.1f} | {e:,.0f} | {f:,.0f} |" for a, b, c, d, e, f in rows]
    cmd = "python -m bench.store_bench" + (" --quick" if args.quick else "")
    body = "\n".join(table) + (
        "\n\nImport rows/s include reading, validating every row and writing in 5,000-row transactions; "
        "each measurement runs in a fresh process (peak RSS is that process's own)."
    )
    path = write_result("store_bench", "Store: import throughput and synthetic marketplace", cmd, body)
    print(path.read_text())


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"total {time.perf_counter() - started:.0f} s")
