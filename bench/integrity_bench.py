"""Integrity benchmark: `truescore score` on a store of N reviews without text (default 1 million).

Builds the synthetic marketplace (``truescore synth --no-text``; 1 M ratings, 100 k users, 20 k items,
with its planted rings), runs ``truescore fit`` and then times ``truescore score`` in its own process
(the metadata path: every detector, the suspicion of every review and account, the writes). Beside it,
the trivial baseline of the same job: reading the reviews and writing one number per review back
(``review_scores``), which any scorer must do. Writes ``docs/results/integrity_bench.md``.

Run ``python -m bench.integrity_bench`` (``--ratings 100000`` for a quick run).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from bench.common import write_result
from bench.store_bench import _run

PY = sys.executable


def _baseline(db: str) -> float:
    """Read every review and write one value per review into review_scores (no detection at all)."""
    from truescore.store import Store
    from truescore.store.integrity_io import write_review_suspicion

    t = time.perf_counter()
    store = Store.open(db)
    frame = store.review_frame()
    write_review_suspicion(store, frame["id"].tolist(), frame["rating"].to_numpy(float) * 0.0,
                           [""] * len(frame), "baseline")
    return time.perf_counter() - t


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ratings", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    n = args.ratings
    users, items = max(100, n // 10), max(50, n // 50)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        db = f"sqlite:///{path}"
        t_synth, _ = _run([PY, "-m", "truescore.cli", "synth", "--no-text", "--users", str(users), "--items",
                           str(items), "--ratings", str(n), "--out", str(path)])
        t_fit, m_fit = _run([PY, "-m", "truescore.cli", "fit", "--db", db, "--top", "0"])
        t_score, m_score = _run([PY, "-m", "truescore.cli", "score", "--db", db])
        t_again, _ = _run([PY, "-m", "truescore.cli", "score", "--db", db])
        t_base = _baseline(db)
    rows = [
        "| step | seconds | peak memory (MB) |", "|---|---:|---:|",
        f"| build the store (`truescore synth --no-text`, {n:,} ratings, {users:,} users, {items:,} items) | "
        f"{t_synth:.1f} | |",
        f"| `truescore fit` | {t_fit:.1f} | {m_fit:,.0f} |",
        f"| **`truescore score`** (every detector, suspicion of every review and account, rings, writes) | "
        f"**{t_score:.1f}** | {m_score:,.0f} |",
        f"| `truescore score` again (rows exist: updates) | {t_again:.1f} | |",
        f"| baseline: read the reviews, write one number per review (no detection) | {t_base:.1f} | |",
    ]
    body = "\n".join([*rows, "", f"Goal (issue 11): `truescore score` on 1 M reviews without text within 120 s; "
                      f"measured {t_score:.1f} s at {n:,}."])
    path_out = write_result("integrity_bench", "Integrity engine: `truescore score` without text",
                            "python -m bench.integrity_bench" + ("" if n == 1_000_000 else f" --ratings {n}"), body)
    print(path_out.read_text())


if __name__ == "__main__":
    main()
