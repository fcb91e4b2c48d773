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

Issue 11 adds the campaigns review farms run (:func:`truescore.synth.add_ring_campaign` and friends):
a ring of aged, camouflaged accounts reused on 1, 3 or 10 targets over months (slow: each target's
ratings spread over 180 days), up (5 stars) and down (review bombing, 1 star), k = 10 / 100 / 1000
accounts, each target of true quality 3.0 with 20 honest raters, so up and down are symmetric; a
cohort of accounts created together; sock puppets; incentivised reviewers; templated and paraphrased
texts; and a genuine change (an item really gets worse) to measure how much the defence delays it.
For each: the targets' mean shift for the plain mean, the fused score without the integrity engine
(as before issue 11) and with it, and the suspicion's per-review and per-account AUC beside the
trivial baselines (author's review count, rating deviation). Then the clean marketplace: ranking
quality and the share of honest accounts flagged at the default threshold.

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
from truescore.synth import (
    SYNTH_NOW,
    SynthConfig,
    SynthWorld,
    account_labels,
    add_bot_attack,
    add_genuine_change,
    add_incentivised,
    add_item,
    add_ring_campaign,
    add_sock_puppets,
    generate,
)
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


# ---------------------------------------------------------------------------------------------- issue 11
def _fused(world: SynthWorld, items: list[int], *, use_integrity: bool, at: float = SYNTH_NOW) -> np.ndarray:
    frames = world.frames(with_text=False)
    frames["reviews"] = frames["reviews"][frames["reviews"]["created_at"] <= at]
    res = rank_frames(frames, at=at, use_integrity=use_integrity)
    return np.array([res.product(f"i{t}").fused_mean for t in items])


def _plain(world: SynthWorld, items: list[int], at: float = SYNTH_NOW) -> np.ndarray:
    r = world.ratings
    ok = r["created_at"] <= at
    return np.array([r["stars"][ok & (r["item"] == t)].mean() for t in items])


def _aucs(world: SynthWorld) -> dict[str, float]:
    """Suspicion AUC per review and per account against the planted labels, with the baselines."""
    from sklearn.metrics import roc_auc_score

    from truescore.integrity import IntegrityInputs, integrity_scores

    snap = world.snapshot()
    rel = fit_reliability(snap, get_settings())
    with_text = world.config.with_text
    inp = IntegrityInputs.from_snapshot(snap, reliability_lo=rel.reliability_lo,
                                        user_created_at=world.users["created_at"],
                                        texts=world.review_texts() if with_text else None)
    res = integrity_scores(inp)
    y_r = world.truth.review_is_fake
    y_a = account_labels(world)
    has = np.bincount(snap.user_idx, minlength=snap.n_users) > 0
    n_u = np.bincount(snap.user_idx, minlength=snap.n_users).astype(float)
    dev = res.behaviour.review_features["rating_deviation"]
    honest = has & ~y_a
    return {
        "review AUC": float(roc_auc_score(y_r, res.review_suspicion)),
        "review AUC, baseline: author's review count": float(roc_auc_score(y_r, -n_u[snap.user_idx])),
        "review AUC, baseline: rating deviation": float(roc_auc_score(y_r, np.nan_to_num(dev, nan=0.0))),
        "account AUC": float(roc_auc_score(y_a[has], res.account_suspicion[has])),
        "account AUC, baseline: review count": float(roc_auc_score(y_a[has], -n_u[has])),
        "manipulators flagged": float(res.flagged_accounts[y_a].mean()) if y_a.any() else float("nan"),
        "honest flagged": float(res.flagged_accounts[honest].mean()),
        "rings found": float(len(res.rings.rings)),
    }


def reused_rings(base: SynthWorld, ks: tuple[int, ...], n_targets: tuple[int, ...] = (1, 3, 10)
                 ) -> list[dict[str, object]]:
    """Aged camouflaged slow rings reused on T targets, up and down."""
    rows: list[dict[str, object]] = []
    for t_n in n_targets:
        world = base
        targets = []
        for k in range(t_n):
            world, t = add_item(world, 3.0, 20, seed=500 + k)
            targets.append(t)
        clean_plain = _plain(world, targets)
        clean_off = _fused(world, targets, use_integrity=False)
        clean_on = _fused(world, targets, use_integrity=True)
        for k in ks:
            for direction, rating in (("up", 5.0), ("down", 1.0)):
                attacked = add_ring_campaign(world, targets, k, rating=rating, accounts="aged", seed=7 * k + t_n)
                row = {"targets": t_n, "k": k, "direction": direction,
                       "plain mean": float(np.mean(_plain(attacked, targets) - clean_plain)),
                       "fused, no integrity": float(np.mean(_fused(attacked, targets, use_integrity=False)
                                                            - clean_off)),
                       "fused": float(np.mean(_fused(attacked, targets, use_integrity=True) - clean_on))}
                print(row, flush=True)
                rows.append(row)
    return rows


def campaigns(base: SynthWorld) -> list[dict[str, object]]:
    """Other campaign kinds: shift of their targets and the suspicion's AUCs."""
    rows: list[dict[str, object]] = []
    world = base
    targets = []
    for k in range(3):
        world, t = add_item(world, 3.0, 20, seed=900 + k)
        targets.append(t)
    scenarios = {
        "fresh ring, 3 targets, 48 h bursts": lambda w: add_ring_campaign(w, targets, 100, accounts="fresh",
                                                                        spread_days=2, seed=1),
        "aged cohort (created together), 1 target, slow": lambda w: add_ring_campaign(
            w, targets[:1], 100, accounts="aged", created_together=True, seed=2),
        "aged ring, 1 target, slow (the hard case)": lambda w: add_ring_campaign(w, targets[:1], 100,
                                                                               accounts="aged", seed=3),
        "sock puppets: 20 people x 4 accounts, 3 items": lambda w: add_sock_puppets(w, 20, 4, targets, seed=4),
        "incentivised: 30 real users per item, +1 star": lambda w: add_incentivised(w, targets, 30, seed=5),
        "fresh ring, 3 targets, templated text": lambda w: add_ring_campaign(w, targets, 100, accounts="fresh",
                                                                           text="templated", seed=6),
        "fresh ring, 3 targets, paraphrased text": lambda w: add_ring_campaign(w, targets, 100, accounts="fresh",
                                                                             text="paraphrased", seed=8),
    }
    clean_plain = _plain(world, targets)
    clean_on = _fused(world, targets, use_integrity=True)
    clean_off = _fused(world, targets, use_integrity=False)
    for name, make in scenarios.items():
        attacked = make(world)
        hit = [t for t in targets if attacked.truth.review_is_fake[attacked.ratings["item"] == t].any()]
        idx = [targets.index(t) for t in hit]
        row: dict[str, object] = {
            "scenario": name,
            "plain mean": float(np.mean(_plain(attacked, hit) - clean_plain[idx])),
            "fused, no integrity": float(np.mean(_fused(attacked, hit, use_integrity=False) - clean_off[idx])),
            "fused": float(np.mean(_fused(attacked, hit, use_integrity=True) - clean_on[idx])),
        }
        row.update(_aucs(attacked))
        print(row, flush=True)
        rows.append(row)
    return rows


def genuine_change(base: SynthWorld) -> list[dict[str, object]]:
    """An item of quality 4.0 (60 ratings over two years) really drops to 2.0: 60 ratings over the last
    180 days. Its estimate 30..180 days after the change, for each estimator."""
    world, item = add_item(base, 4.0, 60, seed=77)
    changed = add_genuine_change(world, item, 2.0, 60, change_days_ago=180, seed=78)
    rows: list[dict[str, object]] = []
    for days in (0, 30, 60, 90, 120, 150, 180):
        at = SYNTH_NOW - (180 - days) * 86400.0 + 1.0
        row = {"days after the change": days, "plain mean": float(_plain(changed, [item], at)[0]),
               "fused, no integrity": float(_fused(changed, [item], use_integrity=False, at=at)[0]),
               "fused": float(_fused(changed, [item], use_integrity=True, at=at)[0])}
        print(row, flush=True)
        rows.append(row)
    return rows


def clean_flags(world: SynthWorld) -> dict[str, float]:
    out = _aucs(world)
    return {"honest flagged": out["honest flagged"], "planted bots flagged": out["manipulators flagged"],
            "review AUC": out["review AUC"], "account AUC": out["account AUC"]}


def _md_table(rows: list[dict[str, object]], fmt: dict[str, str] | None = None) -> list[str]:
    if not rows:
        return []
    cols = list(rows[0])
    fmt = fmt or {}
    out = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" if isinstance(rows[0][c], str) else "---:"
                                                          for c in cols) + "|"]
    for r in rows:
        cells = []
        for c in cols:
            v = r[c]
            if isinstance(v, float):
                cells.append(format(v, fmt.get(c, "+.2f")))
            else:
                cells.append(f"{v:,}" if isinstance(v, int) else str(v))
        out.append("| " + " | ".join(cells) + " |")
    return out


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
    base = generate(SynthConfig(n_rings=0))
    reused = reused_rings(base, ks)
    other = campaigns(base)
    change = genuine_change(base)
    clean_world = generate(SynthConfig())
    flags = clean_flags(clean_world)
    lines = ["## Shift of the target's estimate (stars; clean values first)", "",
             "| variant | bots | " + " | ".join(ESTIMATORS) + " |", "|---|---:|" + "---:|" * len(ESTIMATORS),
             "| clean (no attack) | 0 | " + " | ".join(f"{clean[e]:.2f}" for e in ESTIMATORS) + " |"]
    for name, k, shift in rows:
        cells = " | ".join("n/a" if np.isnan(shift[e]) else f"{shift[e]:+.2f}" for e in ESTIMATORS)
        lines.append(f"| {name} | {k:,} | {cells} |")
    lines += ["", "## Ranking quality on the clean marketplace (all items, against the planted quality)", "",
              "| estimator | NDCG@10 | Kendall tau |", "|---|---:|---:|"]
    lines += [f"| {name} | {ndcg:.3f} | {tau:.3f} |" for name, ndcg, tau in quality]
    lines += ["", f"Flags on the marketplace of that ranking (4 planted single-target rings of 25 bots; default "
              f"threshold {get_settings().integrity.flag_threshold}): honest accounts flagged "
              f"{flags['honest flagged']:.2%}, planted bots flagged {flags['planted bots flagged']:.0%}; suspicion "
              f"AUC per review {flags['review AUC']:.3f}, per account {flags['account AUC']:.3f}."]
    lines += ["", "## Reused rings of aged, camouflaged accounts, slow (issue 11)", "",
              "Each ring's accounts were created 1-3 years before and rate 20 other items organically; each target "
              "(true quality 3.0, 20 honest raters) gets its ratings spread over 180 days, targets 45 days apart. "
              "Mean shift of the targets (stars) for the plain mean, the fused score without the integrity engine "
              "(as before issue 11) and with it.", ""]
    lines += _md_table(reused)
    lines += ["", "## Other campaigns (3 targets of quality 3.0 unless stated)", "",
              "Shifts in stars (mean over the attacked targets); AUCs of `suspicion` against the planted labels "
              "(per review: the campaign's ratings; per account: accounts with any campaign rating) beside the "
              "trivial baselines on the same data.", ""]
    lines += _md_table(other, {k: ".3f" for k in other[0] if "AUC" in k or "flagged" in k} | {"rings found": ".0f"})
    lines += ["", "## Genuine change: how long the defence delays a real drop", "",
              "An item of quality 4.0 (60 ratings over two years) really becomes a 2.0: 60 honest, established "
              "raters over the last 180 days. Its estimate (stars) as the new ratings arrive.", ""]
    lines += _md_table(change, {k: ".2f" for k in change[0]})
    lines += ["", "Target: true quality 2.5, 20 honest ratings (the clean row shows each estimator's value). "
              "Text column: n/a when the run skipped the text engine (`--quick` / `--no-text`). "
              f"Run time {time.perf_counter() - started:.0f} s."]
    cmd = "python -m eval.attack_eval" + (" --quick" if args.quick else "") + (" --no-text" if args.no_text else "")
    path = write_result("attack_eval", "Bot-ring attacks and ranking quality (synthetic marketplace)", cmd,
                        "\n".join(lines))
    print(path.read_text())


if __name__ == "__main__":
    main()
