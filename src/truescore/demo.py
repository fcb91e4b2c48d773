"""The main job: build the synthetic marketplace into a store and run every engine over it.

:func:`run_demo` is what ``truescore demo`` (and ``make demo``) runs: it writes the world to a fresh
SQLite store, fits the reliability engine, scores the review texts (when the text engine is
installed), fuses everything into the public ranking, and measures what each planted bot ring did to
its target: the target's plain mean and fused score with and without the ring's ratings.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from truescore.config import Settings, get_settings
from truescore.jobs import rank_store, run_fit, run_integrity, score_text
from truescore.ranking import RankingResult, rank_frames
from truescore.reliability import ReliabilityResult
from truescore.store import Store
from truescore.synth import SYNTH_NOW, SynthConfig, SynthWorld, generate

__all__ = ["DEMO_DB", "DemoReport", "RingReport", "build_demo_store", "run_demo"]

DEMO_DB = "truescore-demo.db"

Progress = Callable[[str, int, int], None]


def build_demo_store(path: str | Path = DEMO_DB, config: SynthConfig | None = None,
                     progress: Progress | None = None) -> tuple[Store, SynthWorld]:
    """Generate the synthetic marketplace and write it into a fresh SQLite store at ``path``.

    An existing file at ``path`` (and its WAL side files) is replaced, so the demo always starts from
    the same world.
    """
    p = Path(path)
    for suffix in ("", "-wal", "-shm"):
        Path(str(p) + suffix).unlink(missing_ok=True)
    world = generate(config or SynthConfig())
    store = Store.open(f"sqlite:///{p}")
    world.write(store, progress=progress)
    return store, world


@dataclass(slots=True)
class RingReport:
    """What one planted bot ring did to its target, in stars."""

    ring: int
    kind: str
    members: int
    target: str
    true_quality: float
    plain_without: float
    plain_with: float
    fused_without: float
    fused_with: float
    weight_share: float

    @property
    def plain_shift(self) -> float:
        return self.plain_with - self.plain_without

    @property
    def fused_shift(self) -> float:
        return self.fused_with - self.fused_without


@dataclass(slots=True)
class DemoReport:
    """Everything the demo computed."""

    store: Store
    world: SynthWorld
    ranking: RankingResult
    reliability: ReliabilityResult
    rings: list[RingReport]
    timings: dict[str, float] = field(default_factory=dict)
    text_scored: int = 0
    text_note: str = ""


def _score_texts(store: Store, settings: Settings) -> tuple[int, str]:
    try:
        return int(score_text(store, settings=settings)), ""
    except (ImportError, OSError) as exc:
        return 0, f"text engine unavailable ({exc}): reviews count as genuine"


def run_demo(path: str | Path = DEMO_DB, config: SynthConfig | None = None, *, score_text: bool = True,
             progress: Progress | None = None, settings: Settings | None = None) -> DemoReport:
    """Build the demo store and run the whole pipeline over it (see the module docstring)."""
    cfg = settings or get_settings()
    timings: dict[str, float] = {}
    t = time.perf_counter()
    store, world = build_demo_store(path, config, progress)
    timings["build store"] = time.perf_counter() - t
    t = time.perf_counter()
    reliability = run_fit(store, settings=cfg).result
    timings["reliability fit"] = time.perf_counter() - t
    t = time.perf_counter()
    scored, note = _score_texts(store, cfg) if score_text else (0, "text scoring skipped")
    timings["text scores"] = time.perf_counter() - t
    t = time.perf_counter()
    run_integrity(store, settings=cfg)  # suspicion of every review and account, rings (issue 11)
    timings["integrity"] = time.perf_counter() - t
    t = time.perf_counter()
    ranking = rank_store(store, at=SYNTH_NOW, settings=cfg, reliability=reliability, write=True)
    timings["fusion and ranking"] = time.perf_counter() - t
    t = time.perf_counter()
    rings = _ring_reports(store, world, ranking, cfg)
    timings["ring what-ifs"] = time.perf_counter() - t
    return DemoReport(store, world, ranking, reliability, rings, timings, scored, note)


def _ring_reports(store: Store, world: SynthWorld, ranking: RankingResult, cfg: Settings) -> list[RingReport]:
    """Each ring's effect: the public ranking with all rings' ratings against one without them."""
    fake_ids = {f"r{k}" for k in np.flatnonzero(world.truth.review_is_fake)}
    scores = store.read_derived("review_scores")
    frames = {"reviews": store.review_frame(with_text=False), "votes": store.vote_frame(),
              "flags": store.flag_frame(), "trust": store.trust_frame(at=SYNTH_NOW), "items": store.item_frame(),
              "users": store.user_frame()}
    clean_frames = {**frames, "reviews": frames["reviews"][~frames["reviews"]["id"].isin(fake_ids)]}
    clean = rank_frames(clean_frames, at=SYNTH_NOW, settings=cfg, scores=pd.DataFrame(scores) if scores else None)
    out = []
    for ring, target in enumerate(world.truth.target_items):
        members = np.flatnonzero(world.truth.user_ring == ring)
        target_id = f"i{target}"
        with_ring = ranking.product(target_id)
        without = clean.product(target_id)
        explained = ranking.explain(target_id)
        member_ids = {f"u{m}" for m in members}
        share = sum(w.share for w in explained if w.user_id in member_ids)
        out.append(RingReport(
            ring=ring, kind=str(world.truth.user_kind[members[0]]), members=int(members.size), target=target_id,
            true_quality=float(world.truth.item_quality[target]), plain_without=without.plain_mean,
            plain_with=with_ring.plain_mean, fused_without=without.fused_mean, fused_with=with_ring.fused_mean,
            weight_share=share,
        ))
    return out
