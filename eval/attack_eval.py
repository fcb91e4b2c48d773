"""Bot-ring attacks on the synthetic marketplace: how far each estimator moves, and ranking quality.

A target item of true quality 2.5/5, rated by 20 honest raters, is attacked by ``k`` bot accounts
(k = 10, 100, 1000) giving it 5 stars, in five variants: fresh accounts; camouflaged accounts that
also rate 20 other items honestly; fresh accounts with generated-looking (hype) text; fresh and
camouflaged accounts arriving in a 48-hour burst. For each we report the target's shift in stars
(attacked minus clean estimate) for: the plain mean, the Bayesian average, each engine alone
(reliability: the VB item quality; trust: the operator's baseline trust-weighted rating; text: the
mean weighted by authenticity ``1 - p_fake``) and the fused score. Then ranking quality over all
items of the clean marketplace against the planted true quality: NDCG@10 and Kendall tau for the plain
mean, the Bayesian average and the fused score (its mean and its 90% lower bound).

Run ``python -m eval.attack_eval`` (``--quick``: k = 10 and 100 only, no text model). Writes
``docs/results/attack_eval.md``.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import kendalltau

from bench.common import write_result
from truescore.config import get_settings
from truescore.ranking import rank_frames
from truescore.reliability import fit as fit_reliability
from truescore.store.store import snapshot_from_frame
from truescore.synth import SYNTH_NOW, SynthConfig, SynthWorld, add_bot_attack, add_item, generate
from truescore.trust import Rater

VARIANTS = {
    "fresh": {"variant": "fresh"},
    "camouflaged": {"variant": "camouflaged"},
    "fresh + generated text": {"variant": "fresh", "generated_text": True},
    "fresh + 48 h burst": {"variant": "fresh", "burst_hours": 48.0},
    "camouflaged + 48 h burst": {"variant": "camouflaged", "burst_hours": 48.0},
}
ESTIMATORS = ("plain mean", "Bayesian average", "reliability (VB)", "trust (baseline)", "text (authenticity)",
              "fused")


@dataclass
class TextScorer:
    """Fake probabilities from the text engine, or None when it is not available."""

    scorer: object | None

    @classmethod
    def load(cls, enabled: bool) -> TextScorer:
        if not enabled:
            return cls(None)
        try:
            from truescore.text import ReviewScorer  # type: ignore[attr-defined]
        except ImportError:
            return cls(None)
        return cls(ReviewScorer())

    def fake_probability(self, reviews: pd.DataFrame) -> pd.DataFrame | None:
        if self.scorer is None:
            return None
        scored = self.scorer.score_frame(reviews)  # type: ignore[attr-defined]
        return scored[["review_id", "quality", "fake_probability", "sentiment"]]


def estimates(world: SynthWorld, target: int, text: TextScorer) -> dict[str, float]:
    """Every estimator's value (stars) for the target item."""
    frames = world.frames(with_text=True)
    reviews = frames["reviews"]
    target_id = f"i{target}"
    on_target = reviews["item_id"] == target_id
    stars = reviews.loc[on_target, "rating"].to_numpy(float)
    cfg = get_settings()
    m = cfg.ranking.bayes_average_m
    out = {"plain mean": float(stars.mean()),
           "Bayesian average": float((m * reviews["rating"].mean() + stars.sum()) / (m + stars.size))}
    snapshot = snapshot_from_frame(reviews)
    reliability = fit_reliability(snapshot, cfg)
    k = int(np.flatnonzero(snapshot.item_ids == target_id)[0])
    out["reliability (VB)"] = float(reliability.item_quality[k])
    rater = Rater.from_frames(frames["trust"], reviews, frames["votes"], frames["flags"], frames["items"],
                              frames["users"], settings=cfg.trust)
    base = rater.anonymous_baseline_rating(target_id, at=SYNTH_NOW)
    out["trust (baseline)"] = float("nan") if base.rating is None else float(base.rating)
    scores = text.fake_probability(reviews[on_target])
    if scores is not None:
        p = scores.set_index("review_id").loc[reviews.loc[on_target, "id"], "fake_probability"].to_numpy(float)
        out["text (authenticity)"] = float(np.sum((1 - p) * stars) / max(np.sum(1 - p), 1e-12))
    else:
        out["text (authenticity)"] = float("nan")
    ranking = rank_frames({**frames, "reviews": reviews.drop(columns=["text", "title"])}, at=SYNTH_NOW,
                          reliability=reliability, scores=scores, rater=rater)
    out["fused"] = ranking.product(target_id).fused_mean
    return out


def ndcg_at(scores: np.ndarray, truth: np.ndarray, k: int = 10) -> float:
    """NDCG@k with the true quality (stars - 1) as the gain."""
    gain = truth - 1.0
    order = np.argsort(-scores, kind="stable")[:k]
    ideal = np.argsort(-gain, kind="stable")[:k]
    disc = 1.0 / np.log2(np.arange(2, k + 2))
    return float(np.sum(gain[order] * disc) / np.sum(gain[ideal] * disc))


def ranking_quality(world: SynthWorld) -> list[tuple[str, float, float]]:
    frames = world.frames(with_text=False)
    result = rank_frames(frames, at=SYNTH_NOW)
    idx = np.array([int(p.item_id[1:]) for p in result.products])
    truth = world.truth.item_quality[idx]
    cols = {
        "plain mean": np.array([p.plain_mean for p in result.products]),
        "Bayesian average": np.array([p.bayes_average for p in result.products]),
        "fused (mean)": np.array([p.fused_mean for p in result.products]),
        "fused (90% lower bound, the ranking)": np.array([p.lower_bound for p in result.products]),
    }
    return [(name, ndcg_at(s, truth), float(kendalltau(s, truth)[0])) for name, s in cols.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-text", action="store_true", help="skip the text engine")
    args = parser.parse_args()
    started = time.perf_counter()
    ks = (10, 100) if args.quick else (10, 100, 1000)
    text = TextScorer.load(enabled=not (args.quick or args.no_text))
    world = generate(SynthConfig())
    world, target = add_item(world, 2.5, 20, seed=11)
    clean = estimates(world, target, text)
    rows = []
    for name, kwargs in VARIANTS.items():
        for k in ks:
            attacked = add_bot_attack(world, target, k, seed=100 + k, **kwargs)  # type: ignore[arg-type]
            est = estimates(attacked, target, text)
            rows.append((name, k, {e: est[e] - clean[e] for e in ESTIMATORS}))
            print(f"{name:28s} k={k:5d} " + " ".join(f"{e}={est[e] - clean[e]:+.2f}" for e in ESTIMATORS), flush=True)
    quality = ranking_quality(world)
    lines = ["## Shift of the target's estimate (stars; clean values first)", "",
             "| variant | bots | " + " | ".join(ESTIMATORS) + " |", "|---|---:|" + "---:|" * len(ESTIMATORS),
             "| clean (no attack) | 0 | " + " | ".join(f"{clean[e]:.2f}" for e in ESTIMATORS) + " |"]
    for name, k, shift in rows:
        cells = " | ".join("n/a" if np.isnan(shift[e]) else f"{shift[e]:+.2f}" for e in ESTIMATORS)
        lines.append(f"| {name} | {k:,} | {cells} |")
    lines += ["", "## Ranking quality on the clean marketplace (all items, against the planted quality)", "",
              "| estimator | NDCG@10 | Kendall tau |", "|---|---:|---:|"]
    lines += [f"| {name} | {ndcg:.3f} | {tau:.3f} |" for name, ndcg, tau in quality]
    lines += ["", "Target: true quality 2.5, 20 honest ratings (the clean row shows each estimator's value). "
              "Text column: n/a when the run skipped the text engine (`--quick` / `--no-text`). "
              f"Run time {time.perf_counter() - started:.0f} s."]
    cmd = "python -m eval.attack_eval" + (" --quick" if args.quick else "") + (" --no-text" if args.no_text else "")
    path = write_result("attack_eval", "Bot-ring attacks and ranking quality (synthetic marketplace)", cmd,
                        "\n".join(lines))
    print(path.read_text())


if __name__ == "__main__":
    main()
