"""Online update latency of the reliability engine: stream the last 10% of the ratings.

Run from the repository root::

    python -m bench.reliability_online            # synthetic marketplace (40 k) and 1 M ratings
    python -m bench.reliability_online --quick    # synthetic marketplace only

Each data set is fitted on its first 90% (by time for the synthetic marketplace, in generation order for
the array marketplace), the last 10% is streamed through :class:`OnlineReliability` one rating at a
time with the default settings, and the final state is compared with a full batch refit on all
ratings. Latency is reported as wall time and as the thread's CPU time (on a busy shared machine the
wall time includes time slices given to other processes; on a quiet machine the two agree). The
periodic full sweep (every ``online_full_sweep_every`` = 100,000 ratings) is not reached.
Also called by :mod:`bench.reliability_bench`, which puts the table into
``docs/results/reliability_bench.md``; run alone it prints the table.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from bench.reliability_data import marketplace
from truescore.config import ReliabilitySettings
from truescore.domain import RatingSnapshot
from truescore.reliability import fit
from truescore.reliability.online import OnlineReliability

__all__ = ["run_online_bench", "stream"]


def stream(u: np.ndarray, i: np.ndarray, r: np.ndarray, n_users: int, n_items: int, name: str,
           settings: ReliabilitySettings | None = None) -> dict[str, Any]:
    """Fit on the first 90%, stream the rest, compare with a full refit."""
    settings = settings or ReliabilitySettings()
    cut = int(0.9 * u.shape[0])
    online = OnlineReliability(settings).fit_arrays(u[:cut], i[:cut], r[:cut], n_users, n_items)
    wall = np.empty(u.shape[0] - cut)
    cpu = np.empty_like(wall)
    solved = np.empty(wall.shape[0], dtype=np.int64)
    for k, (a, b, c) in enumerate(zip(u[cut:].tolist(), i[cut:].tolist(), r[cut:].tolist(), strict=True)):
        t0, c0 = time.perf_counter(), time.thread_time()
        up = online.update(a, b, c)
        cpu[k], wall[k] = time.thread_time() - c0, time.perf_counter() - t0
        solved[k] = up.items_solved
    full = fit(RatingSnapshot.from_arrays(u, i, r, n_users=n_users, n_items=n_items), settings)
    err = np.abs(online.item_mean_ - full.item_mean)
    p = np.percentile
    return {
        "name": name, "n_base": cut, "n_stream": int(wall.shape[0]), "n_items": n_items,
        "wall_p50": p(wall, 50), "wall_p99": p(wall, 99), "wall_max": wall.max(),
        "cpu_p50": p(cpu, 50), "cpu_p99": p(cpu, 99), "per_second": wall.shape[0] / wall.sum(),
        "solved_mean": float(solved.mean()), "err_max": float(err.max()), "err_mean": float(err.mean()),
    }


def run_online_bench(quick: bool = False) -> str:
    """Run the streams and return the markdown section."""
    from truescore.synth import SynthConfig, generate

    rows = []
    world = generate(SynthConfig(seed=0, with_text=False))
    snap = world.snapshot()
    order = np.argsort(snap.created_at, kind="stable")
    rows.append(stream(snap.user_idx[order], snap.item_idx[order], snap.rating[order], snap.n_users, snap.n_items,
                       "synthetic marketplace (synth seed 0, by time)"))
    if not quick:
        mk = marketplace(1_000_000, 100_000, 10_000, seed=2)
        rows.append(stream(mk.user, mk.item, mk.rating, mk.n_users, mk.n_items, "array marketplace, 1 M ratings"))
    s = ReliabilitySettings()
    lines = [
        "## Online updates",
        "",
        f"Default settings: `online_budget={s.online_budget}` (rater's other items re-solved at most), "
        f"`online_refresh={s.online_refresh}` (round-robin items per update), `online_tol={s.online_tol}`. "
        "Fit on the first 90%, stream the last 10% one rating at a time, compare every item with a full "
        "batch refit (normalised scale). CPU = the thread's CPU time per update.",
        "",
        "| data | base ratings | streamed | wall p50 | wall p99 | wall max | CPU p50 | CPU p99 | updates/s "
        "| items re-solved / update | max item error | mean item error |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['name']} | {r['n_base']:,} | {r['n_stream']:,} | {r['wall_p50'] * 1e3:.3f} ms "
            f"| {r['wall_p99'] * 1e3:.3f} ms | {r['wall_max'] * 1e3:.2f} ms | {r['cpu_p50'] * 1e3:.3f} ms "
            f"| {r['cpu_p99'] * 1e3:.3f} ms | {r['per_second']:,.0f} | {r['solved_mean']:.1f} "
            f"| {r['err_max']:.5f} | {r['err_mean']:.6f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.reliability_online", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    print(run_online_bench(quick=args.quick))


if __name__ == "__main__":
    main()
