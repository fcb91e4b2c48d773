"""Accuracy of the review-intelligence models on the real reference data (issue 5).

    python -m eval.text_eval [--quick] [--only sentiment,fake,quality] [--cache DIR]

Protocols (exactly as the issue states; nothing is tuned on a test fold: every hyper-parameter is a fixed
default of the model class):

- uci-sentiment, Amazon and Yelp: stratified 10-fold CV (seed 0) on each part. The model of a fold is trained
  on that part's 9 training folds plus the other permissive sentiment data (the other UCI part and all VADER
  snippets), which is how the shipped model is trained; the in-domain-only variant is reported beside it.
- vader-snippets: 10-fold CV (seed 0); Pearson r of the 0-1 score with the human means on the held-out folds
  (training folds plus both UCI parts).
- salminen-fake-reviews: stratified 5-fold CV (seed 0), accuracy and AUC.
- deceptive-opinion-spam: leave-one-fold-out over its ``fold`` column (hotel-grouped), accuracy for positive,
  negative and both polarities, the model trained on both polarities of the 3 other folds.
- quality: AUC of the helpfulness label on a held-out 30% (by item) of amazon-musical-instruments, against a
  length-only baseline.

Each section stores its figures in ``docs/results/text_eval_<section>.json``; the markdown table
``docs/results/text_eval.md`` is assembled from every section present, beside the published and reference
figures. Reliability-diagram data (out-of-fold predicted probability bins against observed frequency) go to
``docs/results/text_calibration.csv``. ``--quick`` writes ``*_quick`` files instead, leaving these alone.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.common import RESULTS, machine_line, write_result

CACHE = Path(os.environ.get("TRUESCORE_TEXT_CACHE", "/tmp/truescore-text-cache"))
#: "" for the full run; "_quick" keeps a --quick smoke run from overwriting the real results
_SUFFIX = {"value": ""}


def _layers(texts: list[str], cache: Path) -> np.ndarray:
    from truescore.text.embed import cached_encode

    return cached_encode(texts, cache)


def _save(section: str, payload: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload["machine"] = machine_line()
    (RESULTS / f"text_eval_{section}{_SUFFIX['value']}.json").write_text(json.dumps(payload, indent=2) + "\n")


def _ece(p: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    from truescore.text.calibration import expected_calibration_error

    return expected_calibration_error(p, y, bins)


def _write_calibration(task: str, p: np.ndarray, y: np.ndarray) -> None:
    """Append (replace) the reliability-diagram rows of ``task`` in docs/results/text_calibration.csv."""
    from truescore.text.calibration import reliability_table

    path = RESULTS / f"text_calibration{_SUFFIX['value']}.csv"
    new = reliability_table(p, y).round(4)
    new.insert(0, "task", task)
    if path.is_file():
        old = pd.read_csv(path)
        new = pd.concat([old[old["task"] != task], new], ignore_index=True)
    new.to_csv(path, index=False)


# -- sentiment ----------------------------------------------------------------------------------------------
def eval_sentiment(cache: Path, quick: bool) -> dict[str, Any]:
    from sklearn.model_selection import KFold, StratifiedKFold

    from truescore.text import datasets as D
    from truescore.text.features import vader_scores
    from truescore.text.sentiment import SentimentModel, intensity_targets

    sets: dict[str, dict[str, Any]] = {}
    frames = (("amazon", D.load_uci("amazon")), ("yelp", D.load_uci("yelp")), ("vader", D.load_vader_snippets()))
    for name, df in frames:
        texts = df["text"].tolist()
        lab = df["label"].to_numpy() if "label" in df else df["mean"].to_numpy()
        sets[name] = {
            "texts": texts, "raw": lab, "y": intensity_targets(lab), "layers": _layers(texts, cache),
            "vader": vader_scores(texts),
        }
    n_folds = 3 if quick else 10
    out: dict[str, Any] = {"protocol": f"{n_folds}-fold CV, seed 0"}
    for target in ("amazon", "yelp", "vader"):
        s = sets[target]
        n = len(s["texts"])
        others = [k for k in sets if k != target]
        pred_all = np.zeros(n)
        pred_in = np.zeros(n)
        pred_fixed = np.zeros(n)
        splitter = (
            KFold(n_folds, shuffle=True, random_state=0).split(np.zeros(n))
            if target == "vader"
            else StratifiedKFold(n_folds, shuffle=True, random_state=0).split(np.zeros(n), s["raw"])
        )
        for tr, te in splitter:
            def cat(key: str, tr: np.ndarray = tr, s: dict[str, Any] = s, others: list[str] = others) -> Any:
                parts = [np.asarray(s[key], dtype=object if key == "texts" else None)[tr]]
                parts += [np.asarray(sets[k][key], dtype=object if key == "texts" else None) for k in others]
                return np.concatenate(parts)

            m = SentimentModel().fit(list(cat("texts")), cat("y"), layers=cat("layers"), vader=cat("vader"))
            te_t = [s["texts"][i] for i in te]
            pred_all[te] = m.predict(te_t, layers=s["layers"][te], vader=s["vader"][te])
            mf = SentimentModel(blend="fixed").fit(list(cat("texts")), cat("y"), layers=cat("layers"),
                                                   vader=cat("vader"))
            pred_fixed[te] = mf.predict(te_t, layers=s["layers"][te], vader=s["vader"][te])
            if target != "vader":
                mi = SentimentModel().fit([s["texts"][i] for i in tr], s["y"][tr], layers=s["layers"][tr],
                                          vader=s["vader"][tr])
                pred_in[te] = mi.predict(te_t, layers=s["layers"][te], vader=s["vader"][te])
        vader01 = (s["vader"][:, 0] + 1) / 2
        if target == "vader":
            out["vader"] = {
                "pearson_r": float(np.corrcoef(pred_all, s["raw"])[0, 1]),
                "pearson_r_fixed_blend": float(np.corrcoef(pred_fixed, s["raw"])[0, 1]),
                "vader_compound_r": float(np.corrcoef(vader01, s["raw"])[0, 1]),
                "n": n,
            }
        else:
            y = s["raw"].astype(int)
            out[target] = {
                "accuracy": float(((pred_all >= 0.5) == y).mean()),
                "accuracy_in_domain_only": float(((pred_in >= 0.5) == y).mean()),
                "accuracy_fixed_blend": float(((pred_fixed >= 0.5) == y).mean()),
                "vader_accuracy": float(((s["vader"][:, 0] >= 0) == y).mean()),
                "n": n,
            }
            _write_calibration(f"sentiment_uci_{target}", pred_all, y)
        print(target, out[target], flush=True)
    return out


# -- fake ---------------------------------------------------------------------------------------------------
def _fake_cv(df: pd.DataFrame, splits: list[tuple[np.ndarray, np.ndarray]], cache: Path) -> pd.DataFrame:
    from truescore.text.fake import FakeDetector
    from truescore.text.features import compute_features

    texts = df["text"].tolist()
    layers = _layers(texts, cache)
    feats = compute_features(pd.DataFrame({"text": texts}), global_duplicates=False)
    from truescore.text.fake import BASES

    parts = pd.DataFrame(index=range(len(df)), columns=[*BASES, "mean", "fake_probability"], dtype=float)
    for k, (tr, te) in enumerate(splits):
        t0 = time.perf_counter()
        m = FakeDetector().fit(df.iloc[tr], df["label"].to_numpy()[tr], layers=layers[tr], features=feats.iloc[tr])
        pp = m.predict_parts(df.iloc[te], layers=layers[te], features=feats.iloc[te])
        parts.iloc[te] = pp[parts.columns].to_numpy()
        print(f"  fold {k + 1}/{len(splits)}: {time.perf_counter() - t0:.0f} s", flush=True)
    return parts


def _fake_metrics(parts: pd.DataFrame, y: np.ndarray) -> dict[str, Any]:
    from sklearn.metrics import brier_score_loss, roc_auc_score

    out: dict[str, Any] = {}
    for col, name in (("fake_probability", "stacked"), ("mean", "mean_50_50"), ("ngram", "ngram"), ("gbm", "gbm"),
                      ("transformer", "transformer"), ("char_svm", "char_svm"), ("word_svm", "word_svm")):
        p = parts[col].to_numpy(dtype=float)
        cut = 0.0 if col.endswith("_svm") else 0.5  # SVM margins: decision threshold 0
        out[name] = {"accuracy": float(((p >= cut) == y).mean()), "auc": float(roc_auc_score(y, p))}
    p = parts["fake_probability"].to_numpy(dtype=float)
    out["stacked"]["brier"] = float(brier_score_loss(y, p))
    out["stacked"]["ece"] = _ece(p, y)
    return out


def eval_fake(cache: Path, quick: bool) -> dict[str, Any]:
    from sklearn.model_selection import StratifiedKFold

    from truescore.text import datasets as D

    out: dict[str, Any] = {}
    sal = D.load_salminen()
    if quick:
        sal = sal.sample(800, random_state=0).reset_index(drop=True)
    y = sal["label"].to_numpy()
    splits = list(StratifiedKFold(5, shuffle=True, random_state=0).split(np.zeros(len(y)), y))
    print("salminen", flush=True)
    parts = _fake_cv(sal, splits, cache)
    out["salminen"] = {"protocol": "stratified 5-fold CV, seed 0", "n": len(y), **_fake_metrics(parts, y)}
    _write_calibration("fake_salminen", parts["fake_probability"].to_numpy(dtype=float), y)
    print(out["salminen"]["stacked"], flush=True)

    dec = D.load_deceptive()
    if quick:
        dec = dec.groupby(["fold", "polarity", "label"]).head(20).reset_index(drop=True)
    y = dec["label"].to_numpy()
    folds = dec["fold"].to_numpy()
    splits = [(np.flatnonzero(folds != f), np.flatnonzero(folds == f)) for f in sorted(set(folds.tolist()))]
    print("deceptive", flush=True)
    parts = _fake_cv(dec, splits, cache)
    res: dict[str, Any] = {"protocol": "leave-one-fold-out over the fold column (hotel-grouped)", "n": len(y)}
    pol = dec["polarity"].to_numpy()
    for name, m in (("both", np.ones(len(y), bool)), ("positive", pol == "positive"), ("negative", pol == "negative")):
        res[name] = _fake_metrics(parts[m], y[m])
    out["deceptive"] = res
    _write_calibration("fake_deceptive", parts["fake_probability"].to_numpy(dtype=float), y)
    print(res["both"]["stacked"], flush=True)
    return out


# -- quality ------------------------------------------------------------------------------------------------
def eval_quality(cache: Path, quick: bool) -> dict[str, Any]:
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import GroupShuffleSplit

    from truescore.text import datasets as D
    from truescore.text.features import compute_features
    from truescore.text.quality import QualityModel, helpfulness_label

    mi = D.load_amazon_mi()
    feats = compute_features(mi, global_duplicates=False)
    labelled, y = helpfulness_label(mi)
    idx = np.flatnonzero(labelled)
    if quick:
        idx = idx[:400]
    groups = mi["item_id"].to_numpy()[idx]
    tr_i, te_i = next(GroupShuffleSplit(1, test_size=0.3, random_state=0).split(idx, groups=groups))
    tr, te = idx[tr_i], idx[te_i]
    layers = _layers([mi["text"].iloc[i] for i in idx], cache)
    pos = {r: k for k, r in enumerate(idx)}
    lay_tr = layers[[pos[i] for i in tr]]
    lay_te = layers[[pos[i] for i in te]]
    m = QualityModel().fit(feats.iloc[tr], lay_tr, y[tr], label_kind="helpfulness")
    q = m.predict(feats.iloc[te], lay_te)
    gbm_only = QualityModel(embed_C=1e-6).fit(feats.iloc[tr], lay_tr, y[tr], label_kind="helpfulness")
    length = feats["word_count"].to_numpy()[te]
    yt = y[te]
    out = {
        "protocol": "30% of items held out (GroupShuffleSplit by item, seed 0); "
                    "label: >= 3 votes, helpful share >= 75%",
        "n_train": len(tr), "n_test": len(te), "positive_share": float(y[idx].mean()),
        "auc": float(roc_auc_score(yt, q)),
        "auc_length_only": float(roc_auc_score(yt, length)),
        "auc_features_only": float(roc_auc_score(yt, gbm_only.predict(feats.iloc[te], lay_te))),
        "accuracy": float(((q >= 0.5) == yt).mean()),
        "majority_accuracy": float(max(yt.mean(), 1 - yt.mean())),
        "features": m.feature_names_,
    }
    _write_calibration("quality_amazon_mi", q, yt)
    print(out, flush=True)
    return out


SECTIONS = {"sentiment": eval_sentiment, "fake": eval_fake, "quality": eval_quality}


# -- report -------------------------------------------------------------------------------------------------
def _load(section: str) -> dict[str, Any] | None:
    path = RESULTS / f"text_eval_{section}{_SUFFIX['value']}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def render() -> str:
    lines: list[str] = []
    s = _load("sentiment")
    if s:
        lines += [
            "## Sentiment", "",
            f"Protocol: {s['protocol']}; trained per fold on the training folds plus the other permissive "
            "sentiment data (as shipped); the in-domain column trains on the training folds only; the fixed-blend "
            "column averages the two heads 50/50 instead of the stacked (out-of-fold least-squares) blend.", "",
            "| data set | metric | truescore | in-domain only | fixed 50/50 blend | VADER (here) | reference "
            "| target |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for part, ref, vad in (("amazon", "0.834", "0.77"), ("yelp", "0.815", "0.73")):
            r = s[part]
            lines.append(
                f"| uci-sentiment {part} | accuracy | **{r['accuracy']:.3f}** | {r['accuracy_in_domain_only']:.3f} "
                f"| {r.get('accuracy_fixed_blend', float('nan')):.3f} "
                f"| {r['vader_accuracy']:.3f} (published {vad}) | {ref} (TF-IDF + LR) | >= 0.90 |"
            )
        v = s["vader"]
        lines += [
            f"| vader-snippets | Pearson r | **{v['pearson_r']:.4f}** | - | "
            f"{v.get('pearson_r_fixed_blend', float('nan')):.4f} | {v['vader_compound_r']:.3f} "
            "(published 0.59) | - | >= 0.80 |", "",
        ]
    f = _load("fake")
    if f:
        sal, dec = f["salminen"], f["deceptive"]
        lines += [
            "## Fake detection", "",
            "Stacked = the shipped combiner (logistic regression on out-of-fold base logits and SVM margins); "
            "50/50 = the seed's mean of traditional (n-gram LR, feature GBM) and transformer (encoder head), "
            "threshold 0.5. The base columns are each base model alone.", "",
            "| data set | protocol | metric | stacked | 50/50 | n-gram LR | char 3-6 SVM | word 1-3 SVM | feature GBM "
            "| encoder head | published | reference | target |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
            f"| salminen-fake-reviews | {sal['protocol']} | accuracy | **{_pct(sal['stacked']['accuracy'])}** | "
            f"{_pct(sal['mean_50_50']['accuracy'])} | {_pct(sal['ngram']['accuracy'])} | "
            f"{_pct(sal['char_svm']['accuracy'])} | {_pct(sal['word_svm']['accuracy'])} | "
            f"{_pct(sal['gbm']['accuracy'])} "
            f"| {_pct(sal['transformer']['accuracy'])} | 94.5% (baseline), 96-97% (RoBERTa) | 90.7% | >= 95% |",
            f"| salminen-fake-reviews | same | AUC | **{sal['stacked']['auc']:.3f}** | "
            f"{sal['mean_50_50']['auc']:.3f} | {sal['ngram']['auc']:.3f} | {sal['char_svm']['auc']:.3f} | "
            f"{sal['word_svm']['auc']:.3f} | {sal['gbm']['auc']:.3f} | {sal['transformer']['auc']:.3f} | - | - | - |",
        ]
        for part, pub in (("both", "-"), ("positive", "89.8% (Ott 2011)"), ("negative", "~86% (Ott 2013)")):
            r = dec[part]
            lines.append(
                f"| deceptive-opinion-spam {part} | {dec['protocol']} | accuracy | "
                f"**{_pct(r['stacked']['accuracy'])}** "
                f"| {_pct(r['mean_50_50']['accuracy'])} | {_pct(r['ngram']['accuracy'])} | "
                f"{_pct(r['char_svm']['accuracy'])} | {_pct(r['word_svm']['accuracy'])} | "
                f"{_pct(r['gbm']['accuracy'])} "
                f"| {_pct(r['transformer']['accuracy'])} | {pub} | {'86.4%' if part == 'both' else '-'} | "
                f"{'>= 90%' if part == 'both' else '-'} |"
            )
        lines += [
            "", f"Calibration of the stacked probability (10 bins): salminen Brier {sal['stacked']['brier']:.3f}, "
            f"ECE {sal['stacked']['ece']:.3f}; deceptive Brier {dec['both']['stacked']['brier']:.3f}, "
            f"ECE {dec['both']['stacked']['ece']:.3f}. Reliability-diagram data: `text_calibration.csv`.", "",
        ]
    q = _load("quality")
    if q:
        lines += [
            "## Quality (amazon-musical-instruments, helpfulness label)", "",
            f"Protocol: {q['protocol']}. Train {q['n_train']}, test {q['n_test']} labelled reviews "
            f"({_pct(q['positive_share'])} helpful). Vote counts are not inputs (they define the label).", "",
            "| model | AUC |", "|---|---|",
            f"| length only (word count) | {q['auc_length_only']:.3f} |",
            f"| GBM on the seed's features (no encoder head) | {q['auc_features_only']:.3f} |",
            f"| **shipped: GBM + encoder head, calibrated** | **{q['auc']:.3f}** |", "",
            f"Accuracy at 0.5: {_pct(q['accuracy'])} (majority class {_pct(q['majority_accuracy'])}).", "",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m eval.text_eval", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer folds / smaller data (smoke run)")
    ap.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections to (re)compute")
    ap.add_argument("--cache", type=Path, default=CACHE, help="embedding cache folder")
    args = ap.parse_args(argv)
    _SUFFIX["value"] = "_quick" if args.quick else ""
    from truescore.text.datasets import DataUnavailable

    for section in [x.strip() for x in args.only.split(",") if x.strip()]:
        if section not in SECTIONS:
            ap.error(f"unknown section {section!r}; choose from {', '.join(SECTIONS)}")
        started = time.perf_counter()
        try:
            payload = SECTIONS[section](args.cache, args.quick)
        except DataUnavailable as exc:
            print(f"skipped {section}: {exc}", file=sys.stderr)
            continue
        payload["seconds"] = round(time.perf_counter() - started, 1)
        payload["quick"] = args.quick
        _save(section, payload)
    cmd = "python -m eval.text_eval" + (" --quick" if args.quick else "")
    write_result(f"text_eval{_SUFFIX['value']}", "Review intelligence: accuracy on the reference data", cmd, render())
    return 0


if __name__ == "__main__":
    sys.exit(main())
