"""The write path of two revisions side by side: the same loads against two servers, in alternation.

``bench/api_bench.py`` measures one revision; its absolute figures move with the load of a shared machine
(the same code measured 1.5x apart on two days). This benchmark answers "is the write path of this working
tree slower than revision REV's?" from one run: it checks REV out into a temporary git worktree, starts
``truescore serve`` twice on two copies of the same demo store (one with REV's code, one with the working
tree's), and runs each load against both in alternation, ``--rounds`` times, the order swapped every round,
so that both see the same machine. It reports, per load, each side's mean over the rounds and the ratio.

Loads (8 keep-alive connections unless said, ``--seconds`` each, generators of ``bench/api_bench.py``):

- ``GET /items/{id}/rating`` (anonymous baseline), the read path for reference;
- ``POST /reviews``, one review per request;
- ``POST /reviews``, batches of 50;
- post + delete: 4 connections of one user's key posting a review of its own and deleting it, 4 of an admin
  key posting ordinary reviews beside it (the cost of a pair, and the other key's writes);
- one 10,000-review ``POST /reviews`` (each side once per round, no other load).

    python -m bench.api_write_ab --against d4187a3     # writes docs/results/api_write_ab.md
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from bench import common
from bench.api_bench import _free_port, _get_factory, _post_delete_factory, _post_factory, run_load
from bench.common import write_result

__all__ = ["main"]

LOADS = ["GET rating", "POST 1", "POST 50", "post+delete pair", "other key beside post+delete", "POST 10,000"]


def _worktree(rev: str, root: Path) -> Path:
    path = root / f"rev-{rev}"
    subprocess.run(["git", "worktree", "add", "--detach", "-f", str(path), rev], check=True,
                   capture_output=True)
    return path


class Side:
    """One server: a revision's source tree over its own copy of the demo store."""

    def __init__(self, name: str, src: Path, store_file: Path, workdir: Path) -> None:
        from truescore.store import Store, service

        self.name = name
        db = workdir / f"{name}.db"
        shutil.copy(store_file, db)
        store = Store.open(f"sqlite:///{db}")
        big = 10**9
        self.secret = service.create_key(store, "ab writer", scopes=["admin"], rate_limit=big, daily_quota=big)[1]
        self.author = service.create_key(store, "ab author", user_id="ab-author", scopes=["write"], rate_limit=big,
                                         daily_quota=big)[1]
        self.users = [u.id for u in store.users()]
        self.items = [i.id for i in store.items(limit=10_000)]
        store.close()
        self.port = _free_port()
        env = {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{Path.cwd()}", "TRUESCORE_API__ACCESS_LOG": "false",
               "TRUESCORE_API__HTTP": "h11"}
        self.proc = common.start_server(f"sqlite:///{db}", self.port, workdir / f"{name}.log", env)
        self.results: dict[str, list[float]] = {k: [] for k in LOADS}
        for item in self.items:  # warm: the engine state and every item's first read
            httpx.get(f"http://127.0.0.1:{self.port}/items/{item}/rating", timeout=120)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def round(self, k: int, seconds: float) -> None:
        port, items, users = self.port, self.items, self.users
        paths = [f"/items/{i}/rating" for i in items]
        self.results["GET rating"].append(run_load("get", "127.0.0.1", port, seconds, 8, _get_factory(paths)).p50)
        self.results["POST 1"].append(run_load("post", "127.0.0.1", port, seconds, 8,
                                               _post_factory(self.secret, items, users, 1, f"ab1-{k}")).p50)
        self.results["POST 50"].append(run_load("batch", "127.0.0.1", port, seconds, 8,
                                                _post_factory(self.secret, items, users, 50, f"ab50-{k}")).p50)
        box: dict[str, float] = {}

        def loop() -> None:
            posted: list[str] = []
            box["pd"] = run_load("pd", "127.0.0.1", port, seconds, 4,
                                 _post_delete_factory(self.author, "ab-author", items, posted)).p50

        thread = threading.Thread(target=loop)
        thread.start()
        other = run_load("other", "127.0.0.1", port, seconds, 4,
                         _post_factory(self.secret, items, users, 1, f"abo-{k}"))
        thread.join()
        self.results["post+delete pair"].append(2 * box["pd"])
        self.results["other key beside post+delete"].append(other.p50)
        body = [{"id": f"ablong-{k}-{j}", "item_id": items[(7 * j + k) % len(items)],
                 "user_id": users[(13 * j + 3 * k) % len(users)], "rating": 1 + j % 5, "text": "Long write."}
                for j in range(10_000)]
        started = time.perf_counter()
        r = httpx.post(f"http://127.0.0.1:{port}/reviews", json=body, timeout=600,
                       headers={"Authorization": f"Bearer {self.secret}"})
        if r.status_code >= 300:
            raise RuntimeError(f"{self.name}: the long write answered {r.status_code}: {r.text[:200]}")
        self.results["POST 10,000"].append(1000 * (time.perf_counter() - started))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--against", default="d4187a3", help="the revision to compare with (default d4187a3: "
                        "the API benchmark's table before issue 20)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, the order swapped each (default 3)")
    parser.add_argument("--seconds", type=float, default=8.0, help="seconds per load and side (default 8)")
    args = parser.parse_args(argv)
    from truescore.demo import run_demo
    from truescore.synth import SynthConfig

    workdir = Path(tempfile.mkdtemp(prefix="truescore-ab-"))
    demo = workdir / "demo.db"
    run_demo(demo, SynthConfig(), score_text=False)
    from truescore.store import Store

    Store.open(f"sqlite:///{demo}").close()  # checkpointed: the copies carry every row
    old_src = _worktree(args.against, workdir) / "src"
    here = Path(__file__).resolve().parents[1] / "src"
    sides = [Side("before", old_src, demo, workdir), Side("now", here, demo, workdir)]
    try:
        for k in range(args.rounds):
            for side in (sides if k % 2 == 0 else sides[::-1]):
                side.round(k, args.seconds)
                print(f"round {k} {side.name}: " + ", ".join(f"{n} {v[-1]:.0f}" for n, v in side.results.items()),
                      flush=True)
    finally:
        for side in sides:
            side.stop()
        subprocess.run(["git", "worktree", "remove", "--force", str(workdir / f"rev-{args.against}")],
                       capture_output=True)
    before, now = sides
    lines = [f"Two servers on copies of the demo store (3,000 users, 400 items, 40,000 ratings): revision "
             f"`{args.against}` (before) and this commit (now), each load run against both in alternation, "
             f"{args.rounds} rounds of {args.seconds:g} s, the order swapped each round. Latency p50 in ms (mean over "
             "the rounds; the post+delete pair is twice the loop's p50; the 10,000-review POST is its wall time); "
             "ratio = now / before (below 1: faster now).", "",
             "| load | before p50 ms | now p50 ms | now / before |", "|---|---|---|---|"]
    for name in LOADS:
        b = sum(before.results[name]) / args.rounds
        n = sum(now.results[name]) / args.rounds
        lines.append(f"| {name} | {b:,.1f} | {n:,.1f} | {n / b:.2f} |")
    pair_b = sum(before.results["post+delete pair"]) / sum(before.results["POST 1"])
    pair_n = sum(now.results["post+delete pair"]) / sum(now.results["POST 1"])
    lines += ["", "| check | before | now |", "|---|---|---|",
              f"| a post+delete pair, in lone `POST /reviews` p50s (at most a few) | {pair_b:.2f} | {pair_n:.2f} |"]
    body = "\n".join(lines) + "\n"
    print(body)
    write_result("api_write_ab", "The write path before and now, side by side", " ".join(
        ["python -m bench.api_write_ab", *(argv if argv is not None else sys.argv[1:])]), body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
