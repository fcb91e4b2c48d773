"""Sentiment at the 0.5 threshold in domains the shipped head never saw, before and after the per-store
calibration from stars (issue 22, item 1; `truescore.text.star_calibration`).

For each data set with stars the shipped head scores every review (the encoder, VADER and the sentiment head,
as ``truescore score`` does); the weak labels are the stars (top quarter of the scale positive, bottom quarter
negative, the middle left out: 4-5 / 1-2 of 1-5, 8-10 / 1-3 of Booking's 1-10). Two figures of the calibration:

- **held out** (the honest one): the reviews are split in two halves at random; the calibration is fitted on
  one half's stars and the accuracy measured on the other half, and the other way round (mean of the two);
- **in store**: fitted on every review's stars and measured on the same reviews, which is what
  ``truescore score`` does for a store (its own stars calibrate its own reviews).

Beside them: the head at 0.5 without calibration, always saying the majority class, and the AUC (which a
monotone calibration per data set does not change).

    python -m eval.sentiment_calibration_eval            # writes docs/results/sentiment_calibration.md
    python -m eval.sentiment_calibration_eval --sample 600
"""

from __future__ import annotations

import argparse
import gzip
import json
import time

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from bench.common import write_result
from truescore.config import TextSettings
from truescore.text.datasets import data_dir
from truescore.text.star_calibration import fit_star_calibration, star_labels

DATA = data_dir()


def _musical(sample: int) -> pd.DataFrame:
    path = DATA / "amazon-musical-instruments" / "reviews_Musical_Instruments_5.json.gz"
    with gzip.open(path, "rt") as fh:
        df = pd.DataFrame([json.loads(line) for line in fh])
    df = df[df["reviewText"].str.len() > 0]
    df = df.sample(min(sample, len(df)), random_state=0)
    return pd.DataFrame({"text": df["reviewText"], "rating": df["overall"].astype(float), "lo": 1.0, "hi": 5.0})


def _fashion(sample: int) -> pd.DataFrame:
    with (DATA / "amazon-fashion" / "AMAZON_FASHION_5.json").open() as fh:
        df = pd.DataFrame([json.loads(line) for line in fh])
    df = df[df["reviewText"].fillna("").str.len() > 0].drop_duplicates("reviewText")  # repeated per variant
    df = df.sample(min(sample, len(df)), random_state=0)
    return pd.DataFrame({"text": df["reviewText"], "rating": df["overall"].astype(float), "lo": 1.0, "hi": 5.0})


def _hotels(sample: int) -> pd.DataFrame:
    df = pd.read_csv(DATA / "maide-up-hotels" / "real_english.csv")
    text = (df["Upside_Review"].fillna("") + " " + df["Downside_Review"].fillna("")).str.strip()
    out = pd.DataFrame({"text": text, "rating": df["Review_Score"].astype(float), "lo": 1.0, "hi": 10.0})
    out = out[out["text"].str.len() > 0]
    return out.sample(min(sample, len(out)), random_state=0)


SETS = {"amazon-musical-instruments": _musical, "amazon-fashion": _fashion, "maide-up-hotels (real)": _hotels}


def _head_scores(texts: list[str]) -> np.ndarray:
    from truescore.text.features import vader_scores
    from truescore.text.scorer import get_scorer

    scorer = get_scorer(TextSettings())
    models = scorer._load()
    texts = [t[: scorer.max_text_chars] for t in texts]
    layers = models["encoder"].encode_layers(texts)
    return np.clip(models["sentiment"].predict(texts, layers=layers, vader=vader_scores(texts)), 0, 1)


def _accuracy(p: np.ndarray, y: np.ndarray) -> float:
    return float(((p >= 0.5) == (y == 1)).mean())


def evaluate(name: str, frame: pd.DataFrame) -> dict[str, object]:
    started = time.perf_counter()
    s = _head_scores(frame["text"].tolist())
    y = star_labels(frame["rating"], frame["lo"], frame["hi"])
    has = np.isfinite(y)
    s, y = s[has], y[has]
    topics = ["t"] * len(s)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(s))
    halves = (order[: len(s) // 2], order[len(s) // 2 :])
    held = []
    for fit_on, test_on in (halves, halves[::-1]):
        cal = fit_star_calibration(s[fit_on], y[fit_on], [topics[k] for k in fit_on])
        held.append(_accuracy(cal.apply(s[test_on], ["t"] * len(test_on)), y[test_on]))
    cal_all = fit_star_calibration(s, y, topics)
    fit = cal_all.store_fit
    return {"set": name, "labelled": len(s), "positive share": float(y.mean()),
            "majority": float(max(y.mean(), 1 - y.mean())), "head at 0.5": _accuracy(s, y),
            "calibrated, held out": float(np.mean(held)),
            "calibrated, in store": _accuracy(cal_all.apply(s, topics), y),
            "AUC": float(roc_auc_score(y, s)), "a, b (in store)": f"{fit.a:.2f}, {fit.b:.2f}",
            "seconds": time.perf_counter() - started}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sample", type=int, default=3000, help="reviews per data set at most (default 3000)")
    args = parser.parse_args(argv)
    rows = []
    for name, load in SETS.items():
        row = evaluate(name, load(args.sample))
        print(row, flush=True)
        rows.append(row)
    cols = ["set", "labelled", "positive share", "majority", "head at 0.5", "calibrated, held out",
            "calibrated, in store", "AUC", "a, b (in store)"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        cells = [f"{r[c]:.3f}" if isinstance(r[c], float) else f"{r[c]:,}" if isinstance(r[c], int) else str(r[c])
                 for c in cols]
        lines.append("| " + " | ".join(cells) + " |")
    worst = min(float(r["calibrated, held out"]) for r in rows)  # type: ignore[arg-type]
    body = (__doc__.split("\n\n    python")[0].strip() + "\n\n" + "\n".join(lines) + "\n\n"
            f"Worst held-out accuracy at 0.5 over the sets: {worst:.3f} (issue 22's goal: >= 0.92 on a domain we do "
            "not have). Reviews per set: at most " + f"{args.sample:,}" + " (random, seed 0); fashion's texts "
            "deduplicated (the file repeats them across product variants). No data set here was used to train the "
            "head or to choose the calibration's settings (`text.calibration_min_labels` 50, "
            "`text.calibration_prior_strength` 10, their defaults).\n")
    write_result("sentiment_calibration", "Sentiment calibrated from the store's stars",
                 "python -m eval.sentiment_calibration_eval" + (f" --sample {args.sample}" if args.sample != 3000
                                                                 else ""), body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
