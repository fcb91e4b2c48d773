"""Integrity engine on real data, through exactly the path of an independent held-out check.

Each data set is reduced to metadata (review id, item, author, rating, scale, date: no text, no votes,
no trust), written to a CSV and run through the CLI in fresh processes, as an outside evaluator would:
``truescore import FILE --kind reviews``, ``truescore fit``, ``truescore score``,
``truescore export review_scores`` and ``truescore export user_reliability``. The exported
``suspicion`` columns are then scored against the labels, beside trivial baselines on the same data.

- **bitcoin-otc** (REV2 fraud labels, 316 users). Rater-side, as data/README.md asks (the labels leak
  through the ratings the labelled users *receive*): each labelled user that gave at least one rating is
  scored by its account ``suspicion``; per review, each rating given by a labelled user by the review's
  ``suspicion``. Baselines: number of ratings given, mean absolute deviation of its ratings from the
  rated users' mean, the reliability engine's ``reliability_lo`` and fairness (Kumar et al. 2016).
  Diagnostics: the same with the ring detector off, and without the independent-consensus test.
- **planted campaigns in amazon-musical-instruments** (a second labelled check we can run):
  :func:`plant_attacks` adds aged rings reused up and down, a single-target ring, sock puppets and
  singleton bombers / boosters to the real store; per-review and per-account AUC, overall and per
  campaign, beside the author's review count, the rating deviation and ``reliability_lo``.
- **amazon-musical-instruments** and **amazon-fashion**: no manipulation labels; clean references.
  Share of reviews and accounts flagged at the default threshold and rings found, beside the share of
  one-review accounts (what a count rule would flag).
- **Peers side by side** (:func:`compare`): every labelled set (bitcoin-otc rater-side, amazon-musical-instruments
  accounts by their helpful-vote share, the planted campaigns, the synthetic marketplace) scored by our
  ``suspicion`` and ``reliability_lo``, the peers of :mod:`eval.peers` (FraudEagle, REV2 both ways, UGFraud's
  SpEagle, GANG, fBox, Fraudar) and the trivial baselines, on the same data in the same run.
- **Leave one data set out** (``--lodo``, :func:`lodo_select`): the integrity settings of
  :data:`LODO_CANDIDATES` chosen on the other data sets by their worst case, scored on the held-out one.

Run ``python -m eval.integrity_eval [--lodo]``; writes ``docs/results/integrity_eval.md``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

from bench.common import write_result

PY = sys.executable
DAY = 86400.0


def data_dir() -> Path:
    from truescore.config import get_settings

    return Path(get_settings().data_dir)


def _cli(*args: str, env: dict[str, str] | None = None) -> float:
    import os

    t = time.perf_counter()
    out = subprocess.run([PY, "-m", "truescore.cli", *args], capture_output=True, text=True,
                         env={**os.environ, **(env or {})})
    if out.returncode != 0:
        raise RuntimeError(f"truescore {' '.join(args)} failed: {out.stderr[-1500:]}")
    return time.perf_counter() - t


def prepare(reviews: pd.DataFrame, tmp: Path) -> tuple[str, dict[str, float]]:
    """``truescore import`` and ``truescore fit`` into a fresh SQLite store; returns (database URL, seconds)."""
    csv = tmp / "reviews.csv"
    reviews.to_csv(csv, index=False)
    db = f"sqlite:///{tmp / 'eval.db'}"
    sec = {"import": _cli("import", str(csv), "--kind", "reviews", "--db", db),
           "fit": _cli("fit", "--db", db, "--top", "0")}
    return db, sec


def score_export(db: str, tmp: Path, env: dict[str, str] | None = None
                 ) -> tuple[pd.DataFrame, pd.DataFrame, float]:
    """``truescore score`` (with ``env``'s settings) and the two exports; returns (review_scores,
    user_reliability, score seconds). Only this is re-run per candidate setting (:func:`lodo_table`)."""
    sec = _cli("score", "--db", db, env=env)
    _cli("export", "review_scores", "--out", str(tmp / "rs.csv"), "--db", db)
    _cli("export", "user_reliability", "--out", str(tmp / "ur.csv"), "--db", db)
    rs, ur = pd.read_csv(tmp / "rs.csv"), pd.read_csv(tmp / "ur.csv")
    rs["review_id"] = rs["review_id"].astype(str)
    ur["user_id"] = ur["user_id"].astype(str)
    return rs, ur, sec


def run_cli(reviews: pd.DataFrame, tmp: Path, env: dict[str, str] | None = None
            ) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, float]]:
    """import -> fit -> score -> export through the CLI; returns (review_scores, user_reliability, seconds).
    ``env`` adds configuration variables (``TRUESCORE_INTEGRITY__...``) for a diagnostic run."""
    db, sec = prepare(reviews, tmp)
    rs, ur, sec["score"] = score_export(db, tmp, env)
    return rs, ur, sec


def _metrics(y: np.ndarray, score: np.ndarray) -> tuple[float, float]:
    return float(roc_auc_score(y, score)), float(average_precision_score(y, score))


def otc_frames() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """bitcoin-otc as a review frame (rater -> ratee, -10..10), its ground truth (``user``, ``label``) and the
    raw network (``src, dst, rating, time``)."""
    folder = data_dir() / "bitcoin-otc"
    net = pd.read_csv(folder / "otc_network.csv", header=None, names=["src", "dst", "rating", "time"])
    gt = pd.read_csv(folder / "otc_gt.csv", header=None, names=["user", "label"])
    reviews = pd.DataFrame({"id": [f"e{k}" for k in range(len(net))], "item_id": net["dst"].astype(str),
                            "user_id": net["src"].astype(str), "rating": net["rating"], "min_rating": -10,
                            "max_rating": 10,
                            "created_at": pd.to_datetime(net["time"], unit="s", utc=True).dt.strftime(
                                "%Y-%m-%dT%H:%M:%SZ")})
    return reviews, gt, net


def bitcoin_otc(tmp: Path) -> dict[str, object]:
    reviews, gt, net = otc_frames()
    rs, ur, sec = run_cli(reviews, tmp)
    label = dict(zip(gt["user"].astype(str), gt["label"], strict=True))
    ur["user_id"] = ur["user_id"].astype(str)
    acc = ur[ur["user_id"].isin(label.keys())].copy()
    y = np.array([label[u] == -1 for u in acc["user_id"]], dtype=int)
    # baselines from the same metadata
    r = net.assign(src=net["src"].astype(str), dst=net["dst"].astype(str), z=(net["rating"] + 10) / 20)
    cnt = r.groupby("dst")["z"].transform("count")
    tot = r.groupby("dst")["z"].transform("sum")
    loo = np.where(cnt > 1, (tot - r["z"]) / (cnt - 1).clip(lower=1), np.nan)
    r["dev"] = np.abs(r["z"] - loo)
    dev = r.groupby("src")["dev"].mean()
    from eval.reliability_eval import fairness_goodness

    ids, inv = np.unique(np.r_[r["src"].to_numpy(), r["dst"].to_numpy()], return_inverse=True)
    fair = fairness_goodness(inv[: len(r)], inv[len(r):], net["rating"].to_numpy(float) / 10.0, ids.size)
    fair_s = pd.Series(fair, index=ids)
    users = acc["user_id"].to_numpy()
    with tempfile.TemporaryDirectory() as t2:
        _, ur_nr, _ = run_cli(reviews, Path(t2), env={"TRUESCORE_INTEGRITY__RING_MIN_MEMBERS": "100000"})
    ur_nr["user_id"] = ur_nr["user_id"].astype(str)
    no_ring = ur_nr.set_index("user_id")["suspicion"].reindex(users).to_numpy(float)
    with tempfile.TemporaryDirectory() as t2:
        rs_nc, ur_nc, _ = run_cli(reviews, Path(t2), env={"TRUESCORE_INTEGRITY__CONSENSUS_Z": "0"})
    ur_nc["user_id"] = ur_nc["user_id"].astype(str)
    no_cons = ur_nc.set_index("user_id")["suspicion"].reindex(users).to_numpy(float)
    rows = [("suspicion (truescore score)", *_metrics(y, acc["suspicion"].to_numpy(float))),
            ("diagnostic: suspicion with the ring detector off", *_metrics(y, no_ring)),
            ("diagnostic: suspicion without the independent-consensus test (consensus_z = 0)",
             *_metrics(y, no_cons)),
            ("baseline: number of ratings given (fewer = worse)", *_metrics(y, -acc["n_ratings"].to_numpy(float))),
            ("baseline: mean rating deviation", *_metrics(y, dev.reindex(users).fillna(0).to_numpy())),
            ("reliability_lo (truescore fit; before issue 11)", *_metrics(y, -acc["reliability_lo"].to_numpy(float))),
            ("reference: fairness (Kumar et al. 2016)", *_metrics(y, -fair_s.reindex(users).to_numpy()))]
    # per review: ratings given by labelled users
    rs = rs.merge(reviews[["id", "user_id"]], left_on="review_id", right_on="id")
    lab_r = rs[rs["user_id"].isin(label.keys())]
    y_r = np.array([label[u] == -1 for u in lab_r["user_id"]], dtype=int)
    n_by_user = reviews.groupby("user_id").size()
    rev_nc = rs_nc.set_index("review_id")["suspicion"].reindex(lab_r["review_id"]).to_numpy(float)
    rev_rows = [("suspicion (truescore score)", *_metrics(y_r, lab_r["suspicion"].to_numpy(float))),
                ("diagnostic: without the independent-consensus test", *_metrics(y_r, rev_nc)),
                ("baseline: author's number of ratings",
                 *_metrics(y_r, -lab_r["user_id"].map(n_by_user).to_numpy(float))),
                ("baseline: rating deviation", *_metrics(
                    y_r, r.set_index(pd.Index([f"e{k}" for k in range(len(r))]))["dev"].reindex(
                        lab_r["review_id"]).fillna(0).to_numpy()))]
    return {"accounts": rows, "reviews": rev_rows, "n_accounts": len(acc), "n_fraud": int(y.sum()),
            "n_reviews": len(lab_r), "seconds": sec}


def _amazon_frame(name: str) -> pd.DataFrame:
    root = data_dir()
    if name == "amazon-musical-instruments":
        with gzip.open(root / name / "reviews_Musical_Instruments_5.json.gz", "rt") as fh:
            rows = [json.loads(line) for line in fh]
    else:
        with open(root / name / "AMAZON_FASHION_5.json") as fh:
            rows = [json.loads(line) for line in fh]
    df = pd.DataFrame(rows)
    df = df[df["overall"].notna()]
    df = df.drop_duplicates(["reviewerID", "asin"])
    return pd.DataFrame({"id": [f"a{k}" for k in range(len(df))], "item_id": df["asin"].astype(str),
                         "user_id": df["reviewerID"].astype(str), "rating": df["overall"].astype(float),
                         "min_rating": 1, "max_rating": 5,
                         "created_at": pd.to_datetime(df["unixReviewTime"], unit="s", utc=True).dt.strftime(
                             "%Y-%m-%dT%H:%M:%SZ")})




def plant_attacks(reviews: pd.DataFrame, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, set[str]]:
    """Plant the campaigns review farms run into a real review frame (1..5 stars).

    Returns the frame with the planted reviews appended, a per-review fake label and the planted
    account ids. Campaigns (each on its own targets, all within the data's time span):

    - an aged ring of 40 accounts reused on 3 targets, up (5 stars on items whose mean is at most 4),
      each account with 8 organic-looking ratings (the item's mean rounded, +/- 1 star noise) spread over
      the year before; each target's campaign spread over 180 days, 45 days apart;
    - the same ring shape bombing (1 star) 3 well-rated items (mean >= 4.5);
    - a single-target aged ring of 30 accounts (5 organic ratings each), 5 stars over 180 days;
    - sock puppets: 10 people x 4 accounts, each account 2 organic ratings, all 5 stars on 3 items;
    - singleton bombers: 60 one-review accounts, 1 star on 3 well-rated items, within 60 days;
    - singleton boosters: 60 one-review accounts, 5 stars on 3 weak items, within 60 days.

    The organic ratings of planted accounts are labelled honest (per review) but their accounts are
    planted (per account). Targets need at least 10 real ratings.
    """
    rng = np.random.default_rng(seed)
    t = (pd.to_datetime(reviews["created_at"], utc=True) - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy()
    stats = reviews.assign(t=t).groupby("item_id").agg(n=("rating", "size"), m=("rating", "mean"))
    stats = stats[stats["n"] >= 10]
    weak = list(rng.permutation(stats.index[stats["m"] <= 4.0].to_numpy()))
    good = list(rng.permutation(stats.index[stats["m"] >= 4.5].to_numpy()))
    all_items = reviews["item_id"].to_numpy()
    item_mean = reviews.groupby("item_id")["rating"].mean()
    t_end = float(np.quantile(t, 0.98))
    rows: list[tuple[str, str, float, float, bool]] = []
    planted: set[str] = set()
    counter = iter(range(10**9))

    def account(prefix: str) -> str:
        name = f"planted-{prefix}-{next(counter)}"
        planted.add(name)
        return name

    def organic(user: str, n: int, before: float) -> None:
        for item in rng.choice(all_items, size=n, replace=False):
            r = float(np.clip(np.rint(item_mean[item] + rng.normal(0, 0.7)), 1, 5))
            rows.append((user, str(item), r, before - rng.random() * 365 * DAY, False))

    def ring(name: str, targets: list[str], k: int, rating: float, camo: int, spread: float = 180.0) -> None:
        users = [account(name) for _ in range(k)]
        starts = t_end - spread * DAY - (len(targets) - 1 - np.arange(len(targets))) * 45 * DAY
        for u in users:
            organic(u, camo, float(starts[0]))
        for s, target in zip(starts, targets, strict=True):
            for u in users:
                rows.append((u, target, rating, float(s + rng.random() * spread * DAY), True))

    ring("ring-up", [weak.pop() for _ in range(3)], 40, 5.0, 8)
    ring("ring-down", [good.pop() for _ in range(3)], 40, 1.0, 8)
    ring("ring-single", [weak.pop()], 30, 5.0, 5)
    puppet_targets = [weak.pop() for _ in range(3)]
    for _ in range(10):
        for _ in range(4):
            u = account("puppet")
            organic(u, 2, t_end - 90 * DAY)
            for target in puppet_targets:
                rows.append((u, target, 5.0, t_end - rng.random() * 60 * DAY, True))
    for name, targets, rating in (("bomber", [good.pop() for _ in range(3)], 1.0),
                                  ("booster", [weak.pop() for _ in range(3)], 5.0)):
        for k in range(60):
            rows.append((account(name), targets[k % 3], rating, t_end - rng.random() * 60 * DAY, True))
    add = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "t", "fake"])
    add = add.drop_duplicates(["user_id", "item_id"])
    start = len(reviews)
    extra = pd.DataFrame({"id": [f"p{start + k}" for k in range(len(add))], "item_id": add["item_id"],
                          "user_id": add["user_id"], "rating": add["rating"], "min_rating": 1, "max_rating": 5,
                          "created_at": pd.to_datetime(add["t"], unit="s", utc=True).dt.strftime(
                              "%Y-%m-%dT%H:%M:%SZ")})
    out = pd.concat([reviews, extra], ignore_index=True)
    fake = np.r_[np.zeros(len(reviews), dtype=bool), add["fake"].to_numpy(bool)]
    return out, fake, planted


def _loo_deviation(reviews: pd.DataFrame) -> np.ndarray:
    """``|r - mean of the item's other ratings|`` per review, normalised scale (0 when alone)."""
    z = (reviews["rating"] - reviews["min_rating"]) / (reviews["max_rating"] - reviews["min_rating"])
    cnt = z.groupby(reviews["item_id"]).transform("count")
    tot = z.groupby(reviews["item_id"]).transform("sum")
    loo = np.where(cnt > 1, (tot - z) / (cnt - 1).clip(lower=1), np.nan)
    return np.nan_to_num(np.abs(z.to_numpy() - loo))


def planted_check(tmp: Path, name: str = "amazon-musical-instruments", seed: int = 0) -> dict[str, object]:
    """Second labelled real-data check: campaigns planted into a real store (:func:`plant_attacks`),
    run through the CLI like the others; per-review and per-account AUC beside the trivial baselines,
    overall and per campaign (its planted reviews / accounts against every real one)."""
    reviews, fake, planted = plant_attacks(_amazon_frame(name), seed=seed)
    rs, ur, sec = run_cli(reviews, tmp)
    rs = rs.set_index("review_id").reindex(reviews["id"])
    susp_r = rs["suspicion"].to_numpy(float)
    n_by_user = reviews.groupby("user_id")["id"].transform("size").to_numpy(float)
    dev = _loo_deviation(reviews)
    ur["user_id"] = ur["user_id"].astype(str)
    ur = ur.set_index("user_id")
    users = ur.index.to_numpy()
    y_u = np.array([u in planted for u in users], dtype=int)
    dev_u = pd.Series(dev).groupby(reviews["user_id"].to_numpy()).mean().reindex(users).to_numpy()
    n_u = reviews.groupby("user_id").size().reindex(users).to_numpy(float)
    y_r = fake.astype(int)
    rows = [("per review: suspicion (truescore score)", *_metrics(y_r, susp_r)),
            ("per review: baseline author's review count (fewer = worse)", *_metrics(y_r, -n_by_user)),
            ("per review: baseline rating deviation", *_metrics(y_r, dev)),
            ("per account: suspicion (truescore score)", *_metrics(y_u, ur["suspicion"].to_numpy(float))),
            ("per account: baseline review count (fewer = worse)", *_metrics(y_u, -n_u)),
            ("per account: baseline mean rating deviation", *_metrics(y_u, dev_u)),
            ("per account: reliability_lo (truescore fit; before issue 11)",
             *_metrics(y_u, -ur["reliability_lo"].to_numpy(float)))]
    camp = []
    author = reviews["user_id"].to_numpy().astype(str)
    real_r = ~np.char.startswith(author, "planted-")
    real_u = ~np.char.startswith(users.astype(str), "planted-")
    for c in ("ring-up", "ring-down", "ring-single", "puppet", "bomber", "booster"):
        sel_r = np.char.startswith(author, f"planted-{c}-") & fake
        sel_u = np.char.startswith(users.astype(str), f"planted-{c}-")
        mr, mu = sel_r | real_r, sel_u | real_u
        camp.append((c, int(sel_u.sum()), int(sel_r.sum()), _metrics(sel_r[mr].astype(int), susp_r[mr])[0],
                     _metrics(sel_r[mr].astype(int), -n_by_user[mr])[0],
                     _metrics(sel_u[mu].astype(int), ur["suspicion"].to_numpy(float)[mu])[0],
                     _metrics(sel_u[mu].astype(int), -n_u[mu])[0]))
    from truescore.config import get_settings

    thr = get_settings().integrity.flag_threshold
    flagged = ur["suspicion"].to_numpy(float) >= thr
    return {"rows": rows, "campaigns": camp, "n_reviews": len(reviews), "n_fake": int(fake.sum()),
            "n_accounts": len(users), "n_planted": int(y_u.sum()), "honest_flagged": float(flagged[y_u == 0].mean()),
            "planted_flagged": float(flagged[y_u == 1].mean()), "seconds": sec}


def clean_reference(name: str, tmp: Path) -> dict[str, object]:
    reviews = _amazon_frame(name)
    rs, ur, sec = run_cli(reviews, tmp)
    n_u = reviews.groupby("user_id").size()
    from truescore.config import get_settings

    thr = get_settings().integrity.flag_threshold
    return {"data set": name, "reviews": len(reviews), "accounts": int(n_u.size),
            "reviews flagged": float((rs["suspicion"] >= thr).mean()),
            "accounts flagged": float((ur["suspicion"] >= thr).mean()),
            "baseline: one-review accounts": float((n_u == 1).mean()),
            "score seconds": sec["score"]}


# ------------------------------------------------------------------------------------------ peers side by side
#: Minimum total helpfulness votes (summed over the user's reviews) for an amazon-musical-instruments user to
#: be labelled by its helpful share (share < 0.2 fraud, > 0.8 benign). 5 keeps 598 users (14 fraud, 344
#: benign); 20, CARE-GNN's kind of cut, keeps 207 (4 fraud): too few positives for an AUC. See HELPFUL_COUNTS.
HELPFUL_MIN_VOTES = 5
HELPFUL_FRAUD_BELOW = 0.2
HELPFUL_BENIGN_ABOVE = 0.8


@dataclass
class LabelledSet:
    """A data set with labels: ``review_label`` / ``account_label`` are 0/1 Series indexed by review id /
    user id, over the labelled reviews / accounts only (either may be empty)."""

    name: str
    reviews: pd.DataFrame
    review_label: pd.Series
    account_label: pd.Series
    note: str


def helpful_labels(votes: pd.DataFrame, min_votes: int = HELPFUL_MIN_VOTES, fraud_below: float = HELPFUL_FRAUD_BELOW,
                   benign_above: float = HELPFUL_BENIGN_ABOVE) -> pd.Series:
    """CARE-GNN's weak account labels (Dou et al., CIKM 2020, after Zhang et al., SIGIR 2020): a user's
    helpful share ``sum helpful_yes / sum total_votes`` over its reviews; share < ``fraud_below`` -> 1
    (fraud), share > ``benign_above`` -> 0 (benign), others and users with fewer than ``min_votes`` total
    votes unlabelled (left out). ``votes`` has columns ``user_id, yes, total`` (one row per review)."""
    g = votes.groupby("user_id")[["yes", "total"]].sum()
    g = g[(g["total"] >= min_votes) & (g["total"] > 0)]
    share = g["yes"] / g["total"]
    lab = pd.Series(np.nan, index=share.index)
    lab[share < fraud_below] = 1
    lab[share > benign_above] = 0
    return lab.dropna().astype(int)


def _helpful_votes() -> pd.DataFrame:
    with gzip.open(data_dir() / "amazon-musical-instruments" / "reviews_Musical_Instruments_5.json.gz", "rt") as fh:
        rows = [json.loads(line) for line in fh]
    return pd.DataFrame({"user_id": [r["reviewerID"] for r in rows], "yes": [r["helpful"][0] for r in rows],
                         "total": [r["helpful"][1] for r in rows]})


def helpful_counts(thresholds: tuple[int, ...] = (1, 5, 10, 20, 50)) -> list[tuple[int, int, int]]:
    """(min total votes, fraud users, benign users) for each threshold."""
    votes = _helpful_votes()
    return [(t, int((lab := helpful_labels(votes, t)).sum()), int((lab == 0).sum())) for t in thresholds]


def _by_author(reviews: pd.DataFrame, account_label: pd.Series) -> pd.Series:
    authored = reviews[reviews["user_id"].astype(str).isin(account_label.index)]
    return pd.Series(account_label.reindex(authored["user_id"].astype(str)).to_numpy(),
                     index=authored["id"].astype(str).to_numpy())


def otc_set() -> LabelledSet:
    reviews, gt, _net = otc_frames()
    lab = pd.Series((gt["label"] == -1).astype(int).to_numpy(), index=gt["user"].astype(str).to_numpy())
    lab = lab[lab.index.isin(reviews["user_id"].unique())]          # rater-side: gave at least one rating
    return LabelledSet("bitcoin-otc (rater-side)", reviews, _by_author(reviews, lab), lab,
                       "REV2 labels; accounts: labelled users that gave a rating; reviews: their ratings, by author")


def helpful_set(min_votes: int = HELPFUL_MIN_VOTES) -> LabelledSet:
    reviews = _amazon_frame("amazon-musical-instruments")
    lab = helpful_labels(_helpful_votes(), min_votes)
    return LabelledSet("amazon-mi helpful-share", reviews, _by_author(reviews, lab), lab,
                       f"CARE-GNN weak labels, users with >= {min_votes} total votes: share < {HELPFUL_FRAUD_BELOW} "
                       f"fraud, > {HELPFUL_BENIGN_ABOVE} benign; reviews by author")


def planted_set(seed: int = 0) -> LabelledSet:
    reviews, fake, planted = plant_attacks(_amazon_frame("amazon-musical-instruments"), seed=seed)
    users = reviews["user_id"].astype(str).unique()
    return LabelledSet("planted campaigns (amazon-mi)", reviews,
                       pd.Series(fake.astype(int), index=reviews["id"].astype(str).to_numpy()),
                       pd.Series(np.isin(users, list(planted)).astype(int), index=users),
                       "plant_attacks seed 0; reviews: the campaign ratings (camouflage ratings honest); "
                       "accounts: planted vs real")


def synth_set(seed: int = 0) -> LabelledSet:
    from truescore.synth import SynthConfig, generate

    w = generate(SynthConfig(seed=seed))
    r = w.ratings
    reviews = pd.DataFrame({"id": [f"r{k}" for k in range(w.n_ratings)],
                            "item_id": np.char.add("i", r["item"].astype(str)),
                            "user_id": np.char.add("u", r["user"].astype(str)), "rating": r["stars"],
                            "min_rating": 1, "max_rating": 5,
                            "created_at": pd.Series(pd.to_datetime(r["created_at"], unit="s", utc=True)).dt.strftime(
                                "%Y-%m-%dT%H:%M:%SZ")})
    users = np.unique(r["user"])
    bot = np.char.startswith(w.truth.user_kind[users].astype(str), "bot")
    return LabelledSet("synthetic marketplace", reviews,
                       pd.Series(w.truth.review_is_fake.astype(int), index=reviews["id"].to_numpy()),
                       pd.Series(bot.astype(int), index=np.char.add("u", users.astype(str))),
                       f"truescore.synth.generate(SynthConfig(seed={seed})); reviews: the bots' campaign ratings "
                       "(camouflage ratings honest); accounts: bot accounts vs the rest")


def labelled_sets() -> list[LabelledSet]:
    return [otc_set(), helpful_set(), planted_set(), synth_set()]


def _ours(rs: pd.DataFrame, ur: pd.DataFrame, reviews: pd.DataFrame) -> dict[str, tuple[pd.Series, pd.Series]]:
    """Our detectors as (per review, per account) score Series (higher = more suspicious)."""
    susp_r = rs.set_index("review_id")["suspicion"]
    susp_u = ur.set_index("user_id")["suspicion"]
    rel_u = -ur.set_index("user_id")["reliability_lo"]
    author = reviews.set_index(reviews["id"].astype(str))["user_id"].astype(str)
    rel_r = pd.Series(rel_u.reindex(author.to_numpy()).to_numpy(), index=author.index)
    return {"suspicion (truescore score)": (susp_r, susp_u),
            "reliability_lo (truescore fit; per review: the author's)": (rel_r, rel_u)}


def _auc_ap(label: pd.Series, score: pd.Series) -> tuple[float, float] | None:
    if label.empty or label.nunique() < 2:
        return None
    s = score.reindex(label.index).astype(float)
    s = s.fillna(s.min() if s.notna().any() else 0.0)   # an unscored id ranks as the least suspicious
    return _metrics(label.to_numpy(int), s.to_numpy())


def _objective(label_r: pd.Series, label_u: pd.Series, susp_r: pd.Series, susp_u: pd.Series) -> float:
    """The LODO objective on one data set: the mean of the per-review and per-account AUC of ``suspicion``
    (of the levels that have labels)."""
    aucs = [m[0] for m in (_auc_ap(label_r, susp_r), _auc_ap(label_u, susp_u)) if m is not None]
    return float(np.mean(aucs))


def compare(sets: list[LabelledSet], keep: dict[str, tuple[str, Path]] | None = None) -> dict[str, object]:
    """Every detector on every data set: {data set: {detector: (review (AUC, AP) | None, account ... | None)}}.
    With ``keep``, each data set's store and scratch folder are recorded there (for :func:`lodo_table`)."""
    from eval.peers import run_peers

    table: dict[str, dict[str, tuple[object, object]]] = {}
    levels: dict[str, dict[str, tuple[str, str]]] = {}
    seconds: dict[str, dict[str, float]] = {}
    skipped: dict[str, str] = {}
    default_obj: dict[str, float] = {}
    lifts: dict[str, dict[str, dict[str, tuple[float, float]]]] = {}
    for ds in sets:
        tmp = Path(tempfile.mkdtemp(prefix="integrity-eval-"))
        db, sec = prepare(ds.reviews, tmp)
        rs, ur, sec["score"] = score_export(db, tmp)
        if keep is not None:
            keep[ds.name] = (db, tmp)
        rows: dict[str, tuple[object, object]] = {}
        lv: dict[str, tuple[str, str]] = {}
        for name, (sr, su) in _ours(rs, ur, ds.reviews).items():
            rows[name] = (_auc_ap(ds.review_label, sr), _auc_ap(ds.account_label, su))
        default_obj[ds.name] = _objective(ds.review_label, ds.account_label,
                                          *_ours(rs, ur, ds.reviews)["suspicion (truescore score)"])
        lifts[ds.name] = reason_lifts(rs, ur, ds)
        peers, psec, skip = run_peers(ds.reviews)
        skipped.update(skip)
        for name, ps in peers.items():
            rows[name] = (_auc_ap(ds.review_label, ps.review), _auc_ap(ds.account_label, ps.account))
            lv[name] = (ps.review_from, ps.account_from)
        table[ds.name] = rows
        levels[ds.name] = lv
        seconds[ds.name] = {**{f"CLI {k}": v for k, v in sec.items()}, **psec}
    return {"table": table, "levels": levels, "seconds": seconds, "skipped": skipped, "default_obj": default_obj,
            "lifts": lifts}


def _reason_kind(reason: str) -> str:
    """A reason with its numbers taken out: a ring's description names its size and window."""
    if reason.startswith("part of a ring"):
        return "part of a ring"
    if reason.startswith("member of a ring"):
        return "member of a ring"
    return reason


def _lift_table(label: pd.Series, reasons: pd.Series) -> dict[str, tuple[float, float]]:
    """{reason: (share of the labelled rows that carry it, lift)}, lift = P(positive | reason) / P(positive)."""
    have = reasons.reindex(label.index).fillna("")
    base = float(label.mean())
    rows: dict[str, list[int]] = {}
    for k, line in enumerate(have.astype(str).tolist()):
        for part in {_reason_kind(p.strip()) for p in line.split(";") if p.strip()}:
            rows.setdefault(part, []).append(k)
    y = label.to_numpy(int)
    return {r: (len(ix) / len(y), float(y[ix].mean()) / base if base > 0 else float("nan"))
            for r, ix in sorted(rows.items())}


def reason_lifts(rs: pd.DataFrame, ur: pd.DataFrame, ds: LabelledSet) -> dict[str, dict[str, tuple[float, float]]]:
    """Each reason's share and lift on one data set, per level: {"review" | "account": {reason: ...}}."""
    out: dict[str, dict[str, tuple[float, float]]] = {}
    if len(ds.review_label) and ds.review_label.nunique() == 2:
        out["review"] = _lift_table(ds.review_label, rs.set_index("review_id")["suspicion_reasons"])
    if len(ds.account_label) and ds.account_label.nunique() == 2:
        out["account"] = _lift_table(ds.account_label, ur.set_index("user_id")["suspicion_reasons"])
    return out


def lifts_markdown(sets: list[LabelledSet], lifts: dict[str, dict[str, dict[str, tuple[float, float]]]]
                   ) -> list[str]:
    """Per level, one row per reason: in each data set the share of labelled rows that carry it and its lift."""
    lines = ["## Every reason with its lift", "",
             "Each cell: **share of the labelled rows that carry the reason / lift** (the positive rate among "
             "them over the data set's positive rate; 1 = no information, blank = never said there). A "
             "reason is said when its detector fires, or for a behaviour feature when the row is among the "
             "most extreme tenth on it (its top two).", ""]
    for level in ("review", "account"):
        names = sorted({r for ds in sets for r in lifts.get(ds.name, {}).get(level, {})})
        if not names:
            continue
        cols = [ds.name for ds in sets if level in lifts.get(ds.name, {})]
        lines += [f"Per {level}:", "", "| reason | " + " | ".join(cols) + " |",
                  "|---|" + "---:|" * len(cols)]
        for r in names:
            cells = []
            for c in cols:
                v = lifts[c][level].get(r)
                cells.append("" if v is None else f"{v[0]:.1%} / {v[1]:.2f}")
            lines.append(f"| {r} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def _cell(m: object, bold: bool = False) -> str:
    if m is None:
        return "—"
    auc, ap = m  # type: ignore[misc]
    text = f"{auc:.3f} / {ap:.3f}"
    return f"**{text}**" if bold else text


def comparison_markdown(sets: list[LabelledSet], res: dict[str, object]) -> list[str]:
    table: dict[str, dict[str, tuple[object, object]]] = res["table"]  # type: ignore[assignment]
    names = list(next(iter(table.values())).keys())
    best: dict[tuple[str, int], str] = {}
    for ds, rows in table.items():
        for lvl in (0, 1):
            cands = [(rows[n][lvl][0], n) for n in names if n.startswith("baseline") and rows[n][lvl] is not None]  # type: ignore[index]
            if cands:
                best[(ds, lvl)] = max(cands)[1]
    header = "| detector | " + " | ".join(f"{ds.name}: review | {ds.name}: account" for ds in sets) + \
             " | worst review AUC | worst account AUC |"
    lines = [header, "|---|" + "---:|" * (2 * len(sets) + 2)]
    for n in names:
        cells = []
        worst = [1.0, 1.0]
        seen = [False, False]
        for ds in sets:
            for lvl in (0, 1):
                m = table[ds.name][n][lvl]
                cells.append(_cell(m, best.get((ds.name, lvl)) == n))
                if m is not None:
                    worst[lvl] = min(worst[lvl], m[0])  # type: ignore[index]
                    seen[lvl] = True
        w = [f"{worst[k]:.3f}" if seen[k] else "—" for k in (0, 1)]
        lines.append(f"| {n} | " + " | ".join(cells) + f" | {w[0]} | {w[1]} |")
    return lines


# ------------------------------------------------------------------------------------- leave one data set out
#: The candidate integrity settings of the leave-one-data-set-out check, as data: each a dict of
#: IntegritySettings fields (src/truescore/config.py) -> value, read by `truescore score` from
#: TRUESCORE_INTEGRITY__<FIELD>. The empty dict is the shipped default. Edit here when the engine changes.
LODO_CANDIDATES: list[dict[str, float]] = [
    {},
    {"behaviour_weight": 0.0},
    {"behaviour_weight": 0.2},
    {"behaviour_weight": 0.7},
    {"behaviour_weight": 1.0},
    {"consensus_z": 0.0},
    {"consensus_z": 4.0},
    {"ring_min_members": 100000},
    {"disagreement_weight": 1.0},
    {"disagreement_weight": 2.0},
    {"disagreement_weight": 4.0},
    {"extremity_weight": 1.0},
]


def candidate_name(c: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:g}" for k, v in c.items()) or "shipped default"


def candidate_env(c: dict[str, float]) -> dict[str, str]:
    return {f"TRUESCORE_INTEGRITY__{k.upper()}": str(v) for k, v in c.items()}


def lodo_select(table: dict[str, dict[str, float]], default: str = "shipped default") -> list[dict[str, object]]:
    """Leave one data set out: ``table[candidate][data set]`` is a score (higher is better). For each held-out
    data set, the candidate with the best WORST score over the other data sets (ties: the default, then the
    first listed); its score on the held-out set beside the default's."""
    cands = list(table)
    sets = list(next(iter(table.values())))
    out = []
    for held in sets:
        others = [d for d in sets if d != held]

        def worst(c: str, others: list[str] = others) -> float:
            return min(table[c][d] for d in others)

        chosen = max(cands, key=lambda c: (worst(c), c == default, -cands.index(c)))
        out.append({"held out": held, "chosen": chosen, "chosen worst over others": worst(chosen),
                    "default worst over others": worst(default), "chosen on held out": table[chosen][held],
                    "default on held out": table[default][held]})
    return out


def lodo_table(sets: list[LabelledSet], keep: dict[str, tuple[str, Path]], default_obj: dict[str, float],
               candidates: list[dict[str, float]] = LODO_CANDIDATES) -> dict[str, dict[str, float]]:
    """Re-run only ``truescore score`` (and the exports) on each prepared store under each candidate;
    ``table[candidate][data set]`` = :func:`_objective`. The default's entries come from the main run."""
    table: dict[str, dict[str, float]] = {}
    for c in candidates:
        name = candidate_name(c)
        if not c:
            table[name] = dict(default_obj)
            continue
        table[name] = {}
        for ds in sets:
            db, tmp = keep[ds.name]
            rs, ur, _ = score_export(db, tmp, env=candidate_env(c))
            sr, su = _ours(rs, ur, ds.reviews)["suspicion (truescore score)"]
            table[name][ds.name] = _objective(ds.review_label, ds.account_label, sr, su)
    return table


def lodo_markdown(table: dict[str, dict[str, float]]) -> list[str]:
    sets = list(next(iter(table.values())))
    lines = ["| candidate | " + " | ".join(sets) + " | worst |", "|---|" + "---:|" * (len(sets) + 1)]
    lines += [f"| {c} | " + " | ".join(f"{v[d]:.3f}" for d in sets) + f" | {min(v.values()):.3f} |"
              for c, v in table.items()]
    lines += ["", "| held out | chosen on the others (best worst case) | its worst on the others | default's "
              "worst on the others | chosen on the held-out set | shipped default on the held-out set |",
              "|---|---|---:|---:|---:|---:|"]
    lines += [f"| {r['held out']} | {r['chosen']} | {r['chosen worst over others']:.3f} | "
              f"{r['default worst over others']:.3f} | {r['chosen on held out']:.3f} | {r['default on held out']:.3f} |"
              for r in lodo_select(table)]
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lodo", action="store_true",
                        help="also the leave-one-data-set-out check over LODO_CANDIDATES (re-runs `truescore score`)")
    parser.add_argument("--only-peers", action="store_true",
                        help="only the side-by-side table (and --lodo): skip the older sections")
    args = parser.parse_args(argv)
    t_start = time.perf_counter()
    lines: list[str] = []
    sets = labelled_sets()
    keep: dict[str, tuple[str, Path]] = {}
    try:
        res = compare(sets, keep)
        lines += peers_section(sets, res)
        if args.lodo:
            t_lodo = time.perf_counter()
            lodo = lodo_table(sets, keep, res["default_obj"])  # type: ignore[arg-type]
            lines += lodo_section(lodo, time.perf_counter() - t_lodo)
    finally:
        for _, tmp in keep.values():
            shutil.rmtree(tmp, ignore_errors=True)
    if args.only_peers:
        _write(lines, t_start, args)
        return
    with tempfile.TemporaryDirectory() as t:
        otc = bitcoin_otc(Path(t))
    lines += ["## bitcoin-otc, rater-side (metadata only, through the CLI)", "",
              f"{otc['n_accounts']} labelled users that gave ratings ({otc['n_fraud']} fraudulent).", "",
              "| per account | AUC | average precision |", "|---|---:|---:|"]
    lines += [f"| {name} | {auc:.3f} | {ap:.3f} |" for name, auc, ap in otc["accounts"]]  # type: ignore[attr-defined]
    lines += ["", f"Per review: the {otc['n_reviews']:,} ratings given by labelled users, labelled by their author.",
              "",
              "| per review | AUC | average precision |", "|---|---:|---:|"]
    lines += [f"| {name} | {auc:.3f} | {ap:.3f} |" for name, auc, ap in otc["reviews"]]  # type: ignore[attr-defined]
    lines += ["", "CLI seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in otc["seconds"].items()),  # type: ignore[attr-defined]
              ""]
    with tempfile.TemporaryDirectory() as t:
        pc = planted_check(Path(t))
    lines += ["## Planted campaigns in real data (amazon-musical-instruments; labelled check 2)", "",
              f"The real store ({pc['n_reviews'] - pc['n_fake']:,} reviews) with campaigns planted by "
              "`eval.integrity_eval.plant_attacks` (seed 0): an aged ring of 40 reused on 3 weak items (5 stars) "
              "and one bombing 3 good items (1 star), each account with 8 organic ratings; a single-target aged "
              "ring of 30; 10 people x 4 sock puppets on 3 items; 60 singleton bombers and 60 singleton boosters. "
              f"{pc['n_fake']:,} planted reviews, {pc['n_planted']} planted accounts of {pc['n_accounts']:,}; "
              "the planted accounts' organic ratings count as honest reviews. Through the CLI, metadata only.", "",
              "| | AUC | average precision |", "|---|---:|---:|"]
    lines += [f"| {name} | {auc:.3f} | {ap:.3f} |" for name, auc, ap in pc["rows"]]  # type: ignore[attr-defined]
    lines += ["", f"At the default threshold: {pc['planted_flagged']:.1%} of planted accounts flagged, "
              f"{pc['honest_flagged']:.2%} of real ones.", "",
              "| campaign | accounts | planted reviews | review AUC | baseline: author's review count | "
              "account AUC | baseline: review count |", "|---|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {c} | {na} | {nr} | {a:.3f} | {b:.3f} | {au:.3f} | {bu:.3f} |"
              for c, na, nr, a, b, au, bu in pc["campaigns"]]  # type: ignore[attr-defined]
    lines += [""]
    refs = []
    for name in ("amazon-musical-instruments", "amazon-fashion"):
        with tempfile.TemporaryDirectory() as t:
            refs.append(clean_reference(name, Path(t)))
    lines += ["## Clean references (no manipulation labels)", "",
              "| data set | reviews | accounts | reviews flagged | accounts flagged | one-review accounts "
              "(what a count rule flags) | `truescore score` s |", "|---|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['data set']} | {r['reviews']:,} | {r['accounts']:,} | {r['reviews flagged']:.2%} | "
              f"{r['accounts flagged']:.2%} | {r['baseline: one-review accounts']:.2%} | {r['score seconds']:.1f} |"
              for r in refs]
    _write(lines, t_start, args)


def _write(lines: list[str], t_start: float, args: argparse.Namespace) -> None:
    cmd = "python -m eval.integrity_eval" + (" --lodo" if args.lodo else "") + (" --only-peers" if args.only_peers
                                                                                 else "")
    lines += ["", f"Whole run: {time.perf_counter() - t_start:.0f} s."]
    path = write_result("integrity_eval", "Integrity engine on real data (metadata only, through the CLI)",
                        cmd, "\n".join(lines))
    print(path.read_text())


def peers_section(sets: list[LabelledSet], res: dict[str, object]) -> list[str]:
    counts = helpful_counts()
    n = {ds.name: (len(ds.review_label), int(ds.review_label.sum()), len(ds.account_label),
                   int(ds.account_label.sum())) for ds in sets}
    lines = ["## Our detectors beside the peers, every labelled data set (metadata only, same data, same run)", "",
             "Each cell is **AUC / average precision**; the best trivial baseline of each data set and level is in "
             "bold; the last two columns are the worst AUC over the data sets. Labelled rows per data set "
             "(reviews, of which positive; accounts, of which positive):", ""]
    lines += [f"- **{ds.name}**: {n[ds.name][0]:,} reviews ({n[ds.name][1]:,} positive), {n[ds.name][2]:,} accounts "
              f"({n[ds.name][3]:,} positive). {ds.note}." for ds in sets]
    lines += ["", "amazon-mi helpful-share labels, users kept per minimum of total votes (fraud / benign): "
              + "; ".join(f">= {t}: {f} / {b}" for t, f, b in counts)
              + f". The table uses >= {HELPFUL_MIN_VOTES} (at >= 20 only 4 users are fraud).", ""]
    lines += comparison_markdown(sets, res)
    lines += ["", *lifts_markdown(sets, res["lifts"])]  # type: ignore[arg-type]
    levels: dict[str, dict[str, tuple[str, str]]] = res["levels"]  # type: ignore[assignment]
    any_levels = next(iter(levels.values()))
    made = [f"{name}: per review {rf}, per account {af}" for name, (rf, af) in any_levels.items()
            if (rf, af) != ("native", "native")]
    lines += ["", "How a level is made where a detector scores the other one only: " + "; ".join(made)
              + ". `reliability_lo`: per review the author's. Our `suspicion` is native at both levels.", ""]
    skipped: dict[str, str] = res["skipped"]  # type: ignore[assignment]
    if skipped:
        lines += ["Not run: " + "; ".join(f"{k} ({v})" for k, v in skipped.items()) + ".", ""]
    lines += ["Peer settings: FraudEagle eps 0.1, uniform priors, damped synchronous loopy BP (at most 50 "
              "iterations); REV2 alpha1 = beta1 = gamma1 = gamma2 = 1, no BIRDNEST priors (alpha2 = beta2 = 0); "
              "SpEagle with the priors of eval/peers/priors.py (adapted from UGFraud's repository) and UGFraud's demo "
              "potentials, 2 BP iterations as its demo; GANG unsupervised (no seeds), UGFraud's own stop rule (the "
              "change of the belief vector's sum under 0.1) ends it after a few iterations; fBox k = 50, its "
              "percentile statistic as the score; Fraudar the 5 densest blocks. UGFraud 0.1.1.3 declares no "
              "dependencies, so `pip install ugfraud==0.1.1.3` changed no pin (no --no-deps needed); its "
              "scale_value and GANG.classify are patched at import (eval/peers/ugfraud_compat.py).", ""]
    seconds: dict[str, dict[str, float]] = res["seconds"]  # type: ignore[assignment]
    lines += ["Seconds per data set (no peer was subsampled):", ""]
    lines += [f"- {ds}: " + ", ".join(f"{k} {v:.1f}" for k, v in sec.items()) for ds, sec in seconds.items()]
    return [*lines, ""]


def lodo_section(table: dict[str, dict[str, float]], seconds: float) -> list[str]:
    intro = ("Objective per data set: the mean of the per-review and per-account AUC of `suspicion`. Each candidate "
             "(`LODO_CANDIDATES` in eval/integrity_eval.py; settings read by `truescore score` from "
             "`TRUESCORE_INTEGRITY__<FIELD>`) re-runs only `truescore score` on the stores of the table above "
             "(import and fit reused). For each held-out data set the candidate with the best worst-case objective "
             "over the other data sets is chosen (ties go to the default) and scored on the held-out one.")
    return ["## Leave one data set out (the integrity settings, chosen on the other data sets)", "", intro, "",
            *lodo_markdown(table), "", f"LODO seconds: {seconds:.0f}.", ""]


if __name__ == "__main__":
    main()
