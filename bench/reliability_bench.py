"""Reliability engine benchmark: fit time, peak memory and accuracy, VB side by side with the seed's recipe.

Run from the repository root::

    python -m bench.reliability_bench            # 100 k, 1 M, 10 M ratings; the seed's recipe once at 100 k
    python -m bench.reliability_bench --quick    # 20 k and 100 k ratings, the seed's recipe for 5 epochs
    python -m bench.reliability_bench --skip-torch

Every (size, engine) runs in a fresh child process (``--child``) so that its peak resident memory is its
own; the parent generates the arrays once per size (:mod:`bench.reliability_data`) and hands them over
as ``.npy`` files. Reported per run: wall time of ``fit`` from the arrays in memory (building the
item-major layout included), sweeps, peak RSS of the child (input arrays included) and the peak RSS
after loading the inputs, item RMSE against the planted quality (normalised scale), and the distance of
the result from a tightly converged fit (``tol = 1e-10``). Peak memory is the kernel's high-water mark
(``VmHWM``) reset after loading the inputs (``/proc/self/clear_refs``), so it is the peak while fitting,
inputs included. The seed's recipe (500 epochs, batch 16,
Adam 1e-2, ``torch.set_num_threads(1)``) runs in full at 100 k ratings; at larger sizes its time is
projected from a timed partial epoch. The online latency table comes from
:mod:`bench.reliability_online`. Results go to ``docs/results/reliability_bench.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import REPO, machine_header, peak_rss_mb, reset_peak_rss, rss_mb
from bench.reliability_data import marketplace

__all__ = ["main"]

OUT = REPO / "docs" / "results" / "reliability_bench.md"
#: (ratings, users, items): users and items grow with the ratings, 10 ratings per user, 100 per item
SIZES = {100_000: (10_000, 1_000), 1_000_000: (100_000, 10_000), 10_000_000: (1_000_000, 100_000)}
QUICK_SIZES = {20_000: (2_000, 200), 100_000: (10_000, 1_000)}
VB_ENGINES = {
    "vb": {},
    "vb-meanfield": {"weighting": "meanfield"},
    "vb-bias": {"use_bias": True},
}


# ---------------------------------------------------------------------------------------------- child
def _snapshot(user: np.ndarray, item: np.ndarray, stars: np.ndarray, n_users: int, n_items: int) -> Any:
    from truescore.domain import RatingSnapshot

    # Ids are plain indices; review ids are not needed by the engines (10 M Python strings would be
    # 0.7 GB of input that no engine reads).
    return RatingSnapshot(
        user_ids=np.arange(n_users).astype(str).astype(object),
        item_ids=np.arange(n_items).astype(str).astype(object),
        review_ids=np.empty(0, dtype=object),
        user_idx=user, item_idx=item, rating=(stars - 1.0) / 4.0, created_at=np.empty(0),
        item_min=np.ones(n_items), item_max=np.full(n_items, 5.0), item_topic=np.empty(0, dtype=object),
    )


def _child(args: argparse.Namespace) -> None:
    data = np.load(args.data)
    user, item, stars, quality = data["user"], data["item"], data["stars"], data["quality"]
    n_users, n_items = int(data["n_users"]), int(data["n_items"])
    snap = _snapshot(user, item, stars, n_users, n_items)
    truth = (quality - 1.0) / 4.0
    del data
    rss_inputs = rss_mb()
    reset_peak_rss()
    out: dict[str, Any] = {"engine": args.engine, "n_ratings": int(user.shape[0])}
    if args.engine.startswith("vb"):
        from truescore.reliability.vb import VBOptions, fit_vb

        opts = VBOptions.from_settings(None, **VB_ENGINES[args.engine])
        times = []
        res = None
        for _ in range(args.repeat):
            start = time.perf_counter()
            res = fit_vb(snap, opts)
            times.append(time.perf_counter() - start)
        assert res is not None
        out.update(seconds=float(np.median(times)), seconds_all=times, sweeps=res.n_iter,
                   converged=res.converged, final_delta=float(res.delta_history[-1]))
        out["rss_peak_mb"] = peak_rss_mb()
        tight = fit_vb(snap, VBOptions.from_settings(None, **VB_ENGINES[args.engine], tol=1e-10, max_iter=2000))
        out["dist_to_fixed_point"] = float(np.max(np.abs(res.item_mean - tight.item_mean)))
        out["tight_sweeps"] = tight.n_iter
    else:
        from truescore.reliability.torch_nll import TorchOptions, fit_torch, torch_fit_arrays

        if args.epochs_fraction < 1.0:
            # project: time a partial epoch of the recipe (batches of 16) and scale to 500 epochs
            n = user.shape[0]
            k = max(int(n * args.epochs_fraction), 16 * 200)
            sel = np.random.default_rng(0).choice(n, k, replace=False)
            start = time.perf_counter()
            torch_fit_arrays(user[sel], item[sel], snap.rating[sel], n_users, n_items, TorchOptions(torch_epochs=1))
            per_rating = (time.perf_counter() - start) / k
            out.update(projected_seconds=per_rating * n * 500, timed_ratings=k)
            out["rss_peak_mb"] = peak_rss_mb()
        else:
            epochs = args.epochs
            last = [time.perf_counter()]

            def progress(epoch: int, total: int) -> None:
                if epoch % 25 == 0 or epoch == total:
                    now = time.perf_counter()
                    print(f"  torch epoch {epoch}/{total} ({now - last[0]:.0f} s since last report)",
                          file=sys.stderr, flush=True)
                    last[0] = now

            start = time.perf_counter()
            res = fit_torch(snap, TorchOptions(torch_epochs=epochs), progress=progress)
            out.update(seconds=time.perf_counter() - start, epochs=epochs)
            out["rss_peak_mb"] = peak_rss_mb()
    if "seconds" in out:
        out["rmse"] = float(np.sqrt(np.mean((res.item_mean - truth) ** 2)))
    out["rss_inputs_mb"] = rss_inputs
    print(json.dumps(out))


def _run_child(data: Path, engine: str, repeat: int = 1, epochs: int = 500, fraction: float = 1.0) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.reliability_bench", "--child", "--data", str(data), "--engine", engine,
           "--repeat", str(repeat), "--epochs", str(epochs), "--epochs-fraction", str(fraction)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=env, check=False)
    sys.stderr.write(proc.stderr)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark child {engine} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------- parent
def _fmt_s(x: float) -> str:
    if x >= 3600:
        return f"{x / 3600:.1f} h"
    if x >= 60:
        return f"{x / 60:.1f} min"
    if x >= 1:
        return f"{x:.2f} s"
    return f"{x * 1000:.0f} ms"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.reliability_bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, seed recipe for 5 epochs")
    parser.add_argument("--skip-torch", action="store_true", help="do not run the seed's recipe")
    parser.add_argument("--skip-online", action="store_true", help="do not run the online latency benchmark")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--engine", default="vb", help=argparse.SUPPRESS)
    parser.add_argument("--repeat", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--epochs", type=int, default=500, help=argparse.SUPPRESS)
    parser.add_argument("--epochs-fraction", type=float, default=1.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args)
        return

    sizes = QUICK_SIZES if args.quick else SIZES
    torch_epochs = 5 if args.quick else 500
    rows: list[dict[str, Any]] = []
    plain: dict[int, float] = {}
    with tempfile.TemporaryDirectory(prefix="truescore-bench-") as tmp:
        for n, (n_users, n_items) in sizes.items():
            print(f"generating {n:,} ratings ({n_users:,} users, {n_items:,} items)", file=sys.stderr, flush=True)
            mk = marketplace(n, n_users, n_items, seed=1)
            path = Path(tmp) / f"data_{n}.npz"
            np.savez(path, user=mk.user, item=mk.item, stars=mk.stars, quality=mk.quality,
                     n_users=mk.n_users, n_items=mk.n_items)
            counts = np.bincount(mk.item, minlength=n_items)
            mean = np.bincount(mk.item, mk.rating, n_items) / np.maximum(counts, 1)
            mean[counts == 0] = mk.rating.mean()
            plain[n] = float(np.sqrt(np.mean((mean - mk.quality_norm) ** 2)))
            del mk
            repeat = 3 if n <= 1_000_000 else 1
            for engine in VB_ENGINES:
                print(f"  {engine} at {n:,}", file=sys.stderr, flush=True)
                rows.append({"n": n, **_run_child(path, engine, repeat=repeat)})
            if not args.skip_torch:
                full = n == 100_000 or args.quick
                print(f"  seed recipe at {n:,} ({'full' if full else 'projected'})", file=sys.stderr, flush=True)
                rows.append({"n": n, **_run_child(path, "torch", epochs=torch_epochs,
                                                    fraction=1.0 if full else 0.02)})
    online_md = ""
    if not args.skip_online:
        from bench.reliability_online import run_online_bench

        online_md = run_online_bench(quick=args.quick)
    command = "python -m bench.reliability_bench" + (" --quick" if args.quick else "") + (
        " --skip-torch" if args.skip_torch else "")
    md = _markdown(rows, plain, torch_epochs, command, online_md)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(md)
    print(md)


def _markdown(rows: list[dict[str, Any]], plain: dict[int, float], torch_epochs: int, command: str,
              online_md: str) -> str:
    lines = [
        "# Reliability engine: benchmark",
        "",
        machine_header(command),
        "- numpy single-threaded (OMP/OPENBLAS/MKL_NUM_THREADS=1); the seed's recipe with "
        "`torch.set_num_threads(1)`; each run in its own child process",
        "- data: synth-like arrays (bench/reliability_data.py): 10 ratings per user, 100 per item, integer stars",
        "",
        "## Fit time, memory and accuracy",
        "",
        "`vb` is the default configuration (cavity weighting, no bias, tol 1e-5). Time = wall time of "
        "`fit` from the arrays in memory (median of 3 runs below 10 M ratings, one run at 10 M). Peak RSS = "
        "the child's peak resident memory while fitting (kernel high-water mark reset after loading the "
        "inputs), input arrays included; 'inputs' = resident memory before the fit. "
        "RMSE = item quality vs the planted truth (normalised scale). 'Off the fixed point' = largest "
        "|m_i - m_i*| against a fit run to tol 1e-10.",
        "",
        "| ratings | engine | time | ratings/s | sweeps / epochs | peak RSS | inputs | item RMSE | plain-mean RMSE "
        "| off the fixed point |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        n = row["n"]
        if "seconds" in row:
            t = row["seconds"]
            iters = row.get("sweeps", row.get("epochs"))
            off = f"{row['dist_to_fixed_point']:.1e}" if "dist_to_fixed_point" in row else "-"
            lines.append(
                f"| {n:,} | {row['engine']} | {_fmt_s(t)} | {n / t:,.0f} | {iters} | {row['rss_peak_mb']:,.0f} MB "
                f"| {row['rss_inputs_mb']:,.0f} MB | {row['rmse']:.4f} | {plain[n]:.4f} | {off} |"
            )
        else:
            lines.append(
                f"| {n:,} | torch (seed recipe) | not run: projected {_fmt_s(row['projected_seconds'])} "
                f"(timed {row['timed_ratings']:,} ratings) | - | - | - | - | - | {plain[n]:.4f} | - |"
            )
    lines += ["", "## VB against the seed's recipe, side by side", ""]
    lines += ["| ratings | VB time | seed recipe time | speed-up | VB item RMSE | seed item RMSE |",
              "|---:|---:|---:|---:|---:|---:|"]
    by = {(r["n"], r["engine"]): r for r in rows}
    for n in sorted({r["n"] for r in rows}):
        vb, tr = by.get((n, "vb")), by.get((n, "torch"))
        if vb is None or tr is None:
            continue
        if "seconds" in tr:
            lines.append(f"| {n:,} | {_fmt_s(vb['seconds'])} | {_fmt_s(tr['seconds'])} ({tr['epochs']} epochs) "
                         f"| {tr['seconds'] / vb['seconds']:,.0f}x | {vb['rmse']:.4f} | {tr['rmse']:.4f} |")
        else:
            lines.append(f"| {n:,} | {_fmt_s(vb['seconds'])} | projected {_fmt_s(tr['projected_seconds'])} "
                         f"| {tr['projected_seconds'] / vb['seconds']:,.0f}x (projected) | {vb['rmse']:.4f} | - |")
    if torch_epochs != 500:
        lines += ["", f"(quick run: the seed's recipe ran {torch_epochs} epochs instead of 500)"]
    if online_md:
        lines += ["", online_md]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
