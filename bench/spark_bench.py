"""Spark against one machine: the reliability fit at 10 M / 100 M ratings and text scoring per core.

    python -m bench.spark_bench --ratings 10000000 --texts 600     # fit: one machine and Spark local[2]; texts
    python -m bench.spark_bench --ratings 100000000 --driver-memory 12g   # both at 100 M (~1 h here)
    python -m bench.spark_bench --ratings 100000000 --no-spark     # one machine only
    python -m bench.spark_bench --texts 600 --ratings 0            # text scoring throughput only

The ratings are streamed to Parquet by :func:`truescore.synth.write_ratings_parquet` (the export
layout). Each engine runs in a child process of its own:

* **one machine**: the Parquet read with pyarrow, ids dictionary-encoded across row groups, one current
  rating per (user, item) kept (:func:`current_ratings`, the store's rule), ids renumbered in first
  appearance order (as the store's snapshot), int32 indices, the item-major layout built and the inputs
  freed, then the default VB sweeps (:func:`truescore.reliability.vb.vb_sweeps`);
* **Spark**: ``truescore spark fit`` (:func:`truescore.spark.fit.spark_fit`) on ``local[2]``; memory is
  the peak of the summed resident memory of the whole process tree (driver, JVM, Python workers),
  sampled every 0.2 s; per-stage shuffle and input bytes come from Spark's status REST API; the fit's
  progress (set-up stages, each sweep) is logged to ``spark-N.progress.log`` beside the output.

Results are appended to docs/results/spark_bench.md (one section per run, machine and date).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bench.common import RESULTS, machine_header

OUT = RESULTS / "spark_bench.md"
_LOAD = os.getloadavg()


# ------------------------------------------------------------------------------------- process memory
def _tree_rss_mb(root: int) -> float:
    """Summed VmRSS of ``root`` and all its descendants (Linux /proc)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            for line in Path(f"/proc/{entry}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss[int(entry)] = int(line.split()[1]) / 1024.0
                    break
            children.setdefault(ppid, []).append(int(entry))
        except (OSError, IndexError, ValueError):
            continue
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0.0)
        todo.extend(children.get(pid, []))
    return total


def _run_child(args: list[str], env: dict[str, str] | None = None) -> tuple[dict[str, Any], float]:
    """Run ``python -m bench.spark_bench <args>`` and return its JSON result and the tree's peak RSS (MB)."""
    proc = subprocess.Popen([sys.executable, "-m", "bench.spark_bench", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})
    peak = [0.0]
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _tree_rss_mb(proc.pid))
            stop.wait(0.2)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    out, err = proc.communicate()
    stop.set()
    thread.join()
    if proc.returncode != 0:
        raise RuntimeError(f"child {args} failed:\n{err[-3000:]}")
    return json.loads(out.strip().splitlines()[-1]), peak[0]


# ------------------------------------------------------------------------------------------ children
def current_ratings(u: Any, i: Any, r: Any, n_users: int, n_items: int) -> tuple[Any, Any, Any, Any]:
    """One current rating per (user, item), the latest, and dense ids renumbered in first appearance.

    The rows must be in ``(created_at, id)`` order (as :func:`truescore.synth.write_ratings_parquet`
    writes them), so "latest" is the last row of a pair; this is the rule of :meth:`Store.snapshot`
    and :func:`truescore.spark.fit.live_reviews`. Returns ``u, i, r`` of the kept rows (int32, int32,
    float64, in file order) and, for each new item index, the item's old code (to reorder the ids).

    >>> import numpy as np
    >>> u, i, r, order = current_ratings(np.array([0, 1, 0]), np.array([0, 1, 0]), np.array([.1, .2, .3]), 2, 2)
    >>> u.tolist(), i.tolist(), r.tolist(), order.tolist()
    ([0, 1], [0, 1], [0.2, 0.3], [1, 0])
    """
    import numpy as np

    pair = u.astype(np.int64) * np.int64(max(n_items, 1)) + i
    _, last_in_reversed = np.unique(pair[::-1], return_index=True)
    del pair
    keep = np.zeros(u.size, dtype=bool)
    keep[u.size - 1 - last_in_reversed] = True
    del last_in_reversed
    u, i, r = u[keep], i[keep], r[keep]
    del keep

    def renumber(codes: Any) -> tuple[Any, Any]:
        present, first = np.unique(codes, return_index=True)
        old_by_new = present[np.argsort(first, kind="stable")]
        new_of_old = np.full(int(codes.max()) + 1 if codes.size else 0, -1, dtype=np.int32)
        new_of_old[old_by_new] = np.arange(old_by_new.size, dtype=np.int32)
        return new_of_old[codes], old_by_new

    u, _ = renumber(u)
    i, item_order = renumber(i)
    return u.astype(np.int32, copy=False), i.astype(np.int32, copy=False), r, item_order


def child_single(path: str, out: str) -> dict[str, Any]:
    """Single-machine fit from the Parquet file, compact dtypes; prints timings as JSON."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from bench.common import peak_rss_mb, reset_peak_rss
    from truescore.reliability._layout import RatingLayout
    from truescore.reliability.vb import VBOptions, vb_sweeps

    t0 = time.perf_counter()

    def codes(column: str) -> tuple[Any, Any]:
        # Parquet keeps the ids dictionary-encoded per row group: read them so (no strings per row), unify
        # the dictionaries (first-appearance order kept), keep int32 codes only.
        chunked = pq.read_table(path, columns=[column], read_dictionary=[column]).column(column).unify_dictionaries()
        dictionary = chunked.chunk(0).dictionary if chunked.num_chunks else pa.array([], pa.string())
        idx = np.concatenate([c.indices.to_numpy(zero_copy_only=False).astype(np.int32, copy=False)
                              for c in chunked.chunks]) if chunked.num_chunks else np.zeros(0, np.int32)
        return idx, dictionary

    u, user_ids = codes("user_id")
    i, item_ids = codes("item_id")
    n_users, n_items = len(user_ids), len(item_ids)
    del user_ids
    cols = pq.read_table(path, columns=["rating", "min_rating", "max_rating", "created_at"])
    created = cols.column("created_at").to_numpy()
    if created.size > 1 and not bool(np.all(created[1:] > created[:-1])):
        raise ValueError(f"{path}: rows are not in strictly increasing created_at order; this loader relies "
                         "on it (write_ratings_parquet writes them so)")
    del created
    lo = cols.column("min_rating").to_numpy()
    r = (cols.column("rating").to_numpy() - lo) / (cols.column("max_rating").to_numpy() - lo)
    del lo, cols
    import gc

    gc.collect()
    pa.default_memory_pool().release_unused()  # Arrow's allocator keeps freed pages otherwise
    n_rows = int(r.size)
    u, i, r, item_order = current_ratings(u, i, r, n_users, n_items)
    item_ids = item_ids.take(pa.array(item_order))
    n_users, n_items = int(u.max()) + 1 if u.size else 0, len(item_ids)
    load = time.perf_counter() - t0
    peak_load = peak_rss_mb()
    reset_peak_rss()  # from here on: the fit's own peak (inputs included)
    t1 = time.perf_counter()
    layout = RatingLayout.build(u, i, r, n_users, n_items)
    del u, i, r
    state = vb_sweeps(layout, VBOptions())
    fit = time.perf_counter() - t1
    quality = 1.0 + 4.0 * state.item_mean  # every item on the 1-5 scale
    pq.write_table(pa.table({"item_id": item_ids, "quality": quality, "quality_sd": 4.0 * np.sqrt(state.item_var)}),
                   out)
    return {"load_s": load, "fit_s": fit, "sweeps": state.n_iter, "converged": state.converged, "rows": n_rows,
            "n_items": n_items, "n_users": n_users, "n_ratings": int(layout.n_ratings), "peak_load_mb": peak_load,
            "peak_fit_mb": peak_rss_mb()}


def _stage_metrics(ui: str, app_id: str) -> list[dict[str, Any]]:
    import urllib.request

    with urllib.request.urlopen(f"{ui}/api/v1/applications/{app_id}/stages?status=complete", timeout=30) as resp:
        stages = json.loads(resp.read())
    return [{"name": s.get("name", "")[:60], "tasks": s.get("numTasks", 0), "input": s.get("inputBytes", 0),
             "shuffle_read": s.get("shuffleReadBytes", 0), "shuffle_write": s.get("shuffleWriteBytes", 0),
             "run_ms": s.get("executorRunTime", 0)} for s in stages]


def child_spark(path: str, out: str, master: str, partitions: int | None, driver_memory: str) -> dict[str, Any]:
    """Spark fit from the Parquet file; prints timings and per-stage metrics as JSON."""
    import logging

    import pandas as pd

    from truescore.spark.fit import spark_fit
    from truescore.spark.session import get_session

    # progress of a long run, readable while it runs (and kept if it is stopped)
    logging.basicConfig(filename=str(Path(out).with_suffix(".progress.log")), level=logging.INFO,
                        format="%(asctime)s %(name)s %(message)s")
    t0 = time.perf_counter()
    spark = get_session(master, shuffle_partitions=partitions, driver_memory=driver_memory,
                        conf={"spark.ui.enabled": "true", "spark.ui.port": "0"})
    start_s = time.perf_counter() - t0
    result, report = spark_fit(spark, path)
    wall = time.perf_counter() - t0
    pd.DataFrame({"item_id": result.item_ids.astype(str), "quality": result.item_quality,
                  "quality_sd": result.item_quality_sd}).to_parquet(out, index=False)
    stages: list[dict[str, Any]] = []
    ui = spark.sparkContext.uiWebUrl
    if ui:
        try:
            stages = _stage_metrics(ui, spark.sparkContext.applicationId)
        except OSError as exc:
            stages = [{"name": f"metrics unavailable: {exc}"}]
    spark.stop()
    return {"start_s": start_s, "fit_s": report.seconds, "wall_s": wall, "sweeps": report.n_iter,
            "converged": report.converged, "partitions": report.partitions,
            "broadcast_bytes_per_sweep": report.broadcast_bytes_per_sweep, "stages": stages}


def child_text(n: int, mode: str, workdir: str) -> dict[str, Any]:
    """Text scoring throughput: in-process (``score_frame`` in batches) or Spark ``local[2]``."""
    from truescore.store import Store
    from truescore.synth import SynthConfig, generate

    db = Path(workdir) / f"text-{n}.db"
    store = Store.open(f"sqlite:///{db}")
    if not store.counts().get("reviews"):
        generate(SynthConfig(n_users=max(50, n // 3), n_items=max(10, n // 20), n_ratings=n, seed=9, n_rings=1,
                             ring_size=5)).write(store)
    if mode == "inprocess":
        from truescore.jobs import score_text
        from truescore.text import get_scorer

        get_scorer()._load()
        t0 = time.perf_counter()
        done = score_text(store)
        return {"reviews": done, "seconds": time.perf_counter() - t0, "cores": os.cpu_count()}
    from truescore.spark.score import spark_score
    from truescore.spark.session import get_session

    folder = Path(workdir) / f"text-{n}"
    folder.mkdir(exist_ok=True)
    for name in ("reviews", "votes"):
        store.read_table(name).to_parquet(folder / f"{name}.parquet", index=False)
    spark = get_session("local[2]", shuffle_partitions=2)
    t0 = time.perf_counter()
    done = spark_score(spark, folder / "reviews.parquet", folder / "out", integrity=False)  # text throughput only
    seconds = time.perf_counter() - t0
    spark.stop()
    return {"reviews": done, "seconds": seconds, "cores": 2}


# ------------------------------------------------------------------------------------------- tables
def _mb(b: float) -> str:
    return f"{b / 1e6:,.1f} MB"


def _fit_section(n: int, gen_s: float, single: dict[str, Any] | None, single_peak: float,
                 spark: dict[str, Any] | None, spark_peak: float, diff: dict[str, float] | None, cmd: str) -> str:
    lines = [f"## Reliability fit, {n:,} ratings", "", machine_header(cmd),
             f"- data: `write_ratings_parquet({n:,})` streamed to Parquet in {gen_s:.0f} s "
             f"(generated once, reused); default VB (cavity, no bias, tol 1e-5)",
             *([f"- current ratings: {single['n_ratings']:,} of {single['rows']:,} rows (one per (user, item), the "
                "latest, as the store and the Spark loader keep; both engines fit the same set)"]
               if single and "rows" in single else []),
             f"- load average (1 min) at start / end of the run: {_LOAD[0]:.1f} / {os.getloadavg()[0]:.1f} "
             f"on {os.cpu_count()} cores (other jobs share this machine)", "",
             "| engine | wall time | of which fit | sweeps | peak memory | ratings/s |",
             "|---|---:|---:|---:|---:|---:|"]
    fit_peak = ""
    if single and "peak_fit_mb" in single:
        fit_peak = (f" (loading the Parquet: {single['peak_load_mb']:,.0f} MB; the fit from the int32 codes: "
                    f"{single['peak_fit_mb']:,.0f} MB)")
    if single:
        total = single["load_s"] + single["fit_s"]
        lines.append(f"| one machine (numpy, compact dtypes) | {total:.1f} s | {single['fit_s']:.1f} s | "
                     f"{single['sweeps']} | {single_peak:,.0f} MB{fit_peak} | {n / total:,.0f} |")
    if spark:
        lines.append(f"| Spark local[2], {spark['partitions']} partitions | {spark['wall_s']:.1f} s | "
                     f"{spark['fit_s']:.1f} s | {spark['sweeps']} | {spark_peak:,.0f} MB (driver+JVM+workers) | "
                     f"{n / spark['wall_s']:,.0f} |")
    else:
        lines.append("| Spark local[2] | not run (--no-spark) | | | | |")
    if diff:
        lines += ["", f"Spark vs one machine: max |quality difference| = {diff['quality']:.2e}, "
                      f"max |quality_sd difference| = {diff['quality_sd']:.2e} over {diff['items']:,} items "
                      "(one-machine ids are dictionary-encoded in first-appearance order, as the store does)."]
    if spark and spark.get("stages"):
        lines += ["", "Per-stage metrics (Spark status API; bytes summed over tasks):", "",
                  "| stage | count | tasks | input | shuffle read | shuffle write | executor time |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        groups: dict[str, dict[str, float]] = {}
        for s in spark["stages"]:
            g = groups.setdefault(s["name"], {"count": 0, "tasks": 0, "input": 0, "shuffle_read": 0,
                                              "shuffle_write": 0, "run_ms": 0})
            g["count"] += 1
            for k in ("tasks", "input", "shuffle_read", "shuffle_write", "run_ms"):
                g[k] += s.get(k, 0)
        for name, g in sorted(groups.items(), key=lambda kv: -kv[1]["run_ms"]):
            lines.append(f"| `{name}` | {g['count']:.0f} | {g['tasks']:.0f} | {_mb(g['input'])} | "
                         f"{_mb(g['shuffle_read'])} | {_mb(g['shuffle_write'])} | {g['run_ms'] / 1000:.1f} s |")
        lines += ["", f"Broadcast per sweep (item and rater vectors): {_mb(spark['broadcast_bytes_per_sweep'])}."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.spark_bench")
    ap.add_argument("--ratings", type=int, nargs="*", default=[10_000_000])
    ap.add_argument("--no-spark", action="store_true", help="one machine only")
    ap.add_argument("--partitions", type=int, default=None)
    ap.add_argument("--driver-memory", default="6g")
    ap.add_argument("--texts", type=int, default=0, help="also time text scoring on this many reviews")
    ap.add_argument("--workdir", default=os.environ.get("TRUESCORE_BENCH_DIR", "/tmp/truescore-spark-bench"))
    ap.add_argument("--child", nargs="*", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        kind, *rest = a.child
        if kind == "single":
            res = child_single(*rest)
        elif kind == "spark":
            res = child_spark(rest[0], rest[1], rest[2], int(rest[3]) if rest[3] != "-" else None, rest[4])
        else:
            res = child_text(int(rest[0]), rest[1], rest[2])
        print(json.dumps(res))
        return 0

    from truescore.synth import write_ratings_parquet

    work = Path(a.workdir)
    work.mkdir(parents=True, exist_ok=True)
    cmd = "python -m bench.spark_bench " + " ".join(argv if argv is not None else sys.argv[1:])
    sections = []
    for n in [x for x in a.ratings if x > 0]:
        path = work / f"ratings-{n}.parquet"
        gen_s = 0.0
        if not path.exists():
            t0 = time.perf_counter()
            write_ratings_parquet(path.with_suffix(".tmp"), n, seed=1)
            path.with_suffix(".tmp").rename(path)
            gen_s = time.perf_counter() - t0
        print(f"{n:,} ratings at {path} (generated in {gen_s:.0f} s)", flush=True)
        single, single_peak = _run_child(["--child", "single", str(path), str(work / f"single-{n}.parquet")])
        print(f"one machine: {single}, peak {single_peak:.0f} MB", flush=True)
        spark = None
        spark_peak = 0.0
        diff = None
        if not a.no_spark:
            spark, spark_peak = _run_child(["--child", "spark", str(path), str(work / f"spark-{n}.parquet"),
                                            "local[2]", str(a.partitions or "-"), a.driver_memory])
            print(f"spark: wall {spark['wall_s']:.1f} s, peak {spark_peak:.0f} MB", flush=True)
            import numpy as np
            import pandas as pd

            one = pd.read_parquet(work / f"single-{n}.parquet").set_index("item_id")
            two = pd.read_parquet(work / f"spark-{n}.parquet").set_index("item_id").loc[one.index]
            diff = {"items": len(one),
                    "quality": float(np.max(np.abs(one["quality"].to_numpy() - two["quality"].to_numpy()))),
                    "quality_sd": float(np.max(np.abs(one["quality_sd"].to_numpy() - two["quality_sd"].to_numpy())))}
        sections.append(_fit_section(n, gen_s, single, single_peak, spark, spark_peak, diff, cmd))
    if a.texts:
        inproc, _ = _run_child(["--child", "text", str(a.texts), "inprocess", str(work)])
        spk, _ = _run_child(["--child", "text", str(a.texts), "spark", str(work)])
        rows = []
        for label, res in (("in-process `truescore score` (torch on all cores)", inproc),
                           ("Spark local[2] `truescore spark score`", spk)):
            rate = res["reviews"] / res["seconds"]
            rows.append(f"| {label} | {res['reviews']:,} | {res['seconds']:.1f} s | {rate:.1f} | {res['cores']} | "
                        f"{rate / res['cores']:.1f} |")
        sections.append("\n".join([f"## Text scoring throughput, {a.texts:,} synthetic reviews", "",
                                   machine_header(cmd), "",
                                   "| engine | reviews | wall time | reviews/s | cores | reviews/s per core |",
                                   "|---|---:|---:|---:|---:|---:|", *rows]) + "\n")
    if sections:
        header = "" if OUT.exists() else ("# Spark against one machine: benchmark\n\n"
                                          "Sections are appended by `python -m bench.spark_bench` (newest last).\n\n")
        with OUT.open("a") as fh:
            fh.write(header + "\n".join(sections) + "\n")
        print("\n".join(sections))
    return 0


if __name__ == "__main__":
    sys.exit(main())
