"""Learning from moderation (issue 21 item 3): what 10% of the labels, given as moderators' verdicts, add.

Through the CLI in fresh processes, as an outside evaluator would (see eval/integrity_eval.py). For each
data set the store is built and scored once without verdicts (the unsupervised run); then, for each of 5
random draws, a copy of that store gets 10% of the labelled accounts as account verdicts
(``truescore import verdicts.csv --kind verdicts``, drawn per class so both classes are there), is scored
again (``truescore score``) and exported. AUC and average precision are computed on the OTHER 90% of the
labelled accounts (and on their reviews), for the unsupervised and the learned suspicion on the same rows;
the table gives the mean and the minimum over the 5 draws.

- **synthetic marketplace** (``truescore synth --no-text``, 3,000 users, 400 items, 40,000 ratings, seed 0):
  labels = bot accounts (fresh and camouflaged) and every review they wrote;
- **bitcoin-otc** (REV2 labels, ``/work/shared/data/bitcoin-otc/otc_gt.csv``), rater-side as
  ``eval/integrity_eval.py`` ``bitcoin_otc`` does: the labelled users that gave a rating, and the ratings
  they gave.

Run ``python -m eval.verdicts_eval``; writes ``docs/results/verdicts_eval.md``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

from bench.common import write_result
from eval.integrity_eval import _cli, otc_frames

SHARE = 0.10
DRAWS = 5
SYNTH = {"users": 3000, "items": 400, "ratings": 40_000, "seed": 0}


def _export(db: str, tmp: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    _cli("export", "review_scores", "--out", str(tmp / "rs.csv"), "--db", db)
    _cli("export", "user_reliability", "--out", str(tmp / "ur.csv"), "--db", db)
    rs = pd.read_csv(tmp / "rs.csv", dtype={"review_id": str})
    ur = pd.read_csv(tmp / "ur.csv", dtype={"user_id": str})
    return rs, ur


def _metrics(y: np.ndarray, score: np.ndarray) -> tuple[float, float]:
    return float(roc_auc_score(y, score)), float(average_precision_score(y, score))


def _draw(labels: pd.Series, rng: np.random.Generator) -> set[str]:
    """10% of each class of ``labels`` (user id -> 1 fake / 0 genuine)."""
    chosen: list[str] = []
    for cls in (1, 0):
        ids = labels.index[labels == cls].to_numpy()
        chosen.extend(rng.choice(ids, max(1, round(SHARE * ids.size)), replace=False).tolist())
    return set(chosen)


def evaluate(name: str, base_db: Path, labels: pd.Series, review_author: pd.Series, tmp: Path,
             log: Callable[[str], None]) -> dict[str, object]:
    """Score ``base_db`` without and with verdicts over the draws; ``labels``: user id -> 1/0 (labelled users
    with a rating), ``review_author``: review id -> author id."""
    rs0, ur0 = _export(f"sqlite:///{base_db}", tmp)
    unsup_acc = ur0.set_index("user_id")["suspicion"]
    unsup_rev = rs0.set_index("review_id")["suspicion"]
    rows: dict[str, list[tuple[float, float, float, float]]] = {"accounts": [], "reviews": []}
    learned_oof: list[float] = []
    applied = {"accounts": 0, "reviews": 0}
    seconds: list[float] = []
    for d in range(DRAWS):
        rng = np.random.default_rng(1000 + d)
        drawn = _draw(labels, rng)
        db_file = tmp / f"draw{d}.db"
        shutil.copyfile(base_db, db_file)
        db = f"sqlite:///{db_file}"
        v = pd.DataFrame({"user_id": sorted(drawn)})
        v["verdict"] = ["fake" if labels[u] == 1 else "genuine" for u in v["user_id"]]
        v["moderator_id"] = "eval-moderator"
        v.to_csv(tmp / "verdicts.csv", index=False)
        _cli("import", str(tmp / "verdicts.csv"), "--kind", "verdicts", "--db", db)
        seconds.append(_cli("score", "--no-text", "--db", db))
        rs, ur = _export(db, tmp)
        held = labels[~labels.index.isin(drawn)]
        acc = ur.set_index("user_id")["suspicion"]
        y = held.to_numpy(int)
        rows["accounts"].append((*_metrics(y, unsup_acc.reindex(held.index).to_numpy(float)),
                                 *_metrics(y, acc.reindex(held.index).to_numpy(float))))
        rev_ids = review_author.index[review_author.isin(held.index)]
        y_r = labels.reindex(review_author[rev_ids].to_numpy()).to_numpy(int)
        rev = rs.set_index("review_id")["suspicion"]
        rows["reviews"].append((*_metrics(y_r, unsup_rev.reindex(rev_ids).to_numpy(float)),
                                *_metrics(y_r, rev.reindex(rev_ids).to_numpy(float))))
        with sqlite3.connect(db_file) as conn:
            (details,) = conn.execute("SELECT details FROM model_runs WHERE job = 'integrity'").fetchone()
        mod = json.loads(details).get("moderation", {})
        learned_oof.append(float(mod.get("accounts", {}).get("auc_learned_oof") or float("nan")))
        for level in applied:
            applied[level] += int(bool(mod.get(level, {}).get("applied")))
        log(f"{name} draw {d}: {len(drawn)} verdicts; accounts AUC {rows['accounts'][-1][0]:.3f} -> "
            f"{rows['accounts'][-1][2]:.3f}; reviews AUC {rows['reviews'][-1][0]:.3f} -> {rows['reviews'][-1][2]:.3f}")
    return {"rows": rows, "applied": applied, "n_labels": len(labels), "n_fake": int(labels.sum()),
            "n_verdicts": len(_draw(labels, np.random.default_rng(1000))), "learned_oof": learned_oof,
            "score_seconds": float(np.mean(seconds))}


def synth_case(tmp: Path, log: Callable[[str], None]) -> dict[str, object]:
    from truescore.synth import SynthConfig, generate

    base = tmp / "synth.db"
    _cli("synth", "--out", str(base), "--no-text", "--users", str(SYNTH["users"]), "--items", str(SYNTH["items"]),
         "--ratings", str(SYNTH["ratings"]), "--seed", str(SYNTH["seed"]))
    db = f"sqlite:///{base}"
    _cli("fit", "--db", db, "--top", "0")
    _cli("score", "--no-text", "--db", db)
    world = generate(SynthConfig(n_users=SYNTH["users"], n_items=SYNTH["items"], n_ratings=SYNTH["ratings"],
                                 seed=SYNTH["seed"], with_text=False))
    bots = np.char.startswith(world.truth.user_kind.astype(str), "bot")
    reviews = pd.read_csv(_export_reviews(db, tmp), dtype={"id": str, "user_id": str})
    authors = pd.Series(reviews["user_id"].to_numpy(), index=reviews["id"].to_numpy())
    raters = sorted(set(authors))
    labels = pd.Series([int(bots[int(u[1:])]) for u in raters], index=raters)
    return evaluate("synthetic", base, labels, authors, tmp, log)


def _export_reviews(db: str, tmp: Path) -> Path:
    out = tmp / "reviews_export.csv"
    _cli("export", "reviews", "--out", str(out), "--db", db)
    return out


def bitcoin_case(tmp: Path, log: Callable[[str], None]) -> dict[str, object]:
    reviews, gt, _net = otc_frames()
    csv = tmp / "otc.csv"
    reviews.to_csv(csv, index=False)
    base = tmp / "otc.db"
    db = f"sqlite:///{base}"
    _cli("import", str(csv), "--kind", "reviews", "--db", db)
    _cli("fit", "--db", db, "--top", "0")
    _cli("score", "--no-text", "--db", db)
    authors = pd.Series(reviews["user_id"].to_numpy(), index=reviews["id"].to_numpy())
    raters = set(authors)
    gt = gt.assign(user=gt["user"].astype(str))
    gt = gt[gt["user"].isin(raters)]
    labels = pd.Series((gt["label"] == -1).astype(int).to_numpy(), index=gt["user"].to_numpy())
    return evaluate("bitcoin-otc", base, labels, authors, tmp, log)


def _table(results: dict[str, dict[str, object]]) -> list[str]:
    lines = ["| data set | level | rows (held 90%) | learned in | AUC unsupervised mean / min | "
             "AUC with verdicts mean / min | AP unsupervised mean / min | AP with verdicts mean / min |",
             "|---|---|---|---|---|---|---|---|"]
    for name, res in results.items():
        rows: dict[str, list[tuple[float, float, float, float]]] = res["rows"]  # type: ignore[assignment]
        for level in ("accounts", "reviews"):
            a = np.array(rows[level])
            held = "~90% of " + (f"{res['n_labels']} accounts" if level == "accounts" else "their reviews")
            n_applied = res["applied"][level]  # type: ignore[index]
            lines.append(f"| {name} | {level} | {held} | {n_applied} of {DRAWS} draws | "
                         f"{a[:, 0].mean():.3f} / {a[:, 0].min():.3f} | {a[:, 2].mean():.3f} / {a[:, 2].min():.3f} | "
                         f"{a[:, 1].mean():.3f} / {a[:, 1].min():.3f} | {a[:, 3].mean():.3f} / {a[:, 3].min():.3f} |")
    return lines


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(description=__doc__).parse_args(argv)
    started = time.perf_counter()
    results: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory() as t:
        results["synthetic marketplace"] = synth_case(Path(t), print)
    with tempfile.TemporaryDirectory() as t:
        results["bitcoin-otc (rater-side)"] = bitcoin_case(Path(t), print)
    body = [
        f"{DRAWS} random draws of {SHARE:.0%} of the labelled accounts (per class) imported as account verdicts "
        "(`truescore import verdicts.csv --kind verdicts`), then `truescore score`; AUC and average precision (AP) on "
        "the other 90% of the labelled accounts and on their reviews, for the unsupervised suspicion (the store "
        "scored without verdicts) and the suspicion learned with the verdicts, on the same rows. Mean and minimum "
        "over the draws. Settings at their defaults (`moderation.*`: 5 folds, 200 rounds, learning rate 0.05, "
        "8 leaves, at least 10 labels per class, boosting from the unsupervised suspicion, applied only when it beats "
        "the unsupervised suspicion out of fold on the drawn rows). 'learned in': the draws in which the level's "
        "learned probability was applied (in the others the level kept the unsupervised suspicion, as the run's "
        "details say, so both columns are the same there).", "",
        *_table(results), "",
        "Labels and draws:", "",
    ]
    for name, res in results.items():
        oof = np.array(res["learned_oof"], dtype=float)  # type: ignore[arg-type]
        body.append(f"- {name}: {res['n_labels']} labelled accounts with a rating ({res['n_fake']} fake); "
                    f"{res['n_verdicts']} verdicts per draw; the learned model's out-of-fold AUC on the drawn "
                    f"accounts (model_runs) {np.nanmean(oof):.3f} mean; `truescore score` with verdicts "
                    f"{res['score_seconds']:.1f} s per run (process start included).")
    body += ["", "Synthetic labels: bot accounts (fresh and camouflaged) and all their reviews. bitcoin-otc: REV2's "
             "labels, rater-side (the users who gave a rating, and the ratings they gave; the labels leak through "
             "ratings received, which no feature here reads), as eval/integrity_eval.py. A review inherits its "
             "author's account verdict for training (docs/integrity.md, Learning from moderation).",
             "", f"Total time {time.perf_counter() - started:.0f} s."]
    path = write_result("verdicts_eval", "Learning from moderation: 10% of the labels as verdicts",
                        "python -m eval.verdicts_eval", "\n".join(body))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
