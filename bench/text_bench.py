"""Throughput of the review-intelligence scorer: all three scores, end to end (issue 5, acceptance 5).

    python -m bench.text_bench [--quick] [--n 1024]

Reviews of about 150 words (120-180 words from amazon-musical-instruments, or generated sentences of that
length when the data folder is absent) go through ``ReviewScorer.score_frame`` in batches of
``settings.text.batch_size``: encoder (once per review), VADER, features, and the three heads. The table
gives reviews/s end to end and the time split by stage, measured side by side in one run, plus the
encoder alone in float32 against bfloat16. The first call includes the one-time model load, reported apart.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import pandas as pd

from bench.common import write_result


def _reviews(n: int) -> pd.DataFrame:
    from truescore.text.datasets import DataUnavailable, load_amazon_mi

    try:
        mi = load_amazon_mi()
        wc = mi["text"].str.split().str.len()
        sel = mi[(wc >= 120) & (wc <= 180)]
        reps = int(np.ceil(n / max(1, len(sel))))
        out = pd.concat([sel] * reps, ignore_index=True).iloc[:n].copy()
        out["id"] = [f"r{i}" for i in range(len(out))]
        return out.drop(columns=["helpful_yes", "helpful_total"])
    except DataUnavailable:
        rng = np.random.default_rng(0)
        words = ("the sound is warm and the neck feels great but the tuners slip after a week of "
                 "playing so I had to replace them with better ones which was easy").split()
        texts = [" ".join(rng.choice(words, size=150)) + "." for _ in range(n)]
        return pd.DataFrame({"id": [f"r{i}" for i in range(n)], "text": texts, "item_id": "i",
                             "user_id": [f"u{i % 50}" for i in range(n)], "rating": 4.0})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.text_bench")
    ap.add_argument("--quick", action="store_true", help="256 reviews")
    ap.add_argument("--n", type=int, default=1024, help="reviews to score")
    args = ap.parse_args(argv)
    n = 256 if args.quick else args.n

    from truescore.config import get_settings
    from truescore.text.embed import Encoder
    from truescore.text.features import compute_features, vader_scores
    from truescore.text.scorer import ReviewScorer

    df = _reviews(n)
    texts = df["text"].tolist()
    words = float(np.mean([len(t.split()) for t in texts]))
    batch = get_settings().text.batch_size

    scorer = ReviewScorer()
    t0 = time.perf_counter()
    scorer.score_frame(df.iloc[:8])
    first_call = time.perf_counter() - t0
    t0 = time.perf_counter()
    scorer.score_frame(df.iloc[:8])
    second_call = time.perf_counter() - t0

    t0 = time.perf_counter()
    for s in range(0, n, batch):
        out = scorer.score_frame(df.iloc[s : s + batch])
    end_to_end = time.perf_counter() - t0
    assert len(out) > 0

    m = scorer._load()
    stages: dict[str, float] = {}
    t0 = time.perf_counter()
    layers = m["encoder"].encode_layers(texts)
    stages["encoder (MiniLM, once per review)"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    vader = vader_scores(texts)
    stages["VADER"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    feats = compute_features(df, vader=vader, global_duplicates=False)
    stages["features (82)"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    m["sentiment"].predict(texts, layers=layers, vader=vader)
    stages["sentiment head"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    m["fake"].predict_proba(df, layers=layers, features=feats)
    stages["fake (3 n-gram models, GBM, encoder head, stack)"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    m["quality"].predict(feats, layers)
    stages["quality head"] = time.perf_counter() - t0

    enc_rows = []
    for dtype in ("float32", "bfloat16"):
        enc = Encoder(dtype=dtype)
        enc.encode(texts[:8])
        t0 = time.perf_counter()
        enc.encode_layers(texts[: min(n, 256)])
        dt = time.perf_counter() - t0
        enc_rows.append((dtype, min(n, 256) / dt))

    lines = [
        f"{n} reviews, mean {words:.0f} words; batch {batch}; encoder truncation "
        f"{get_settings().text.max_tokens} word pieces, dtype {m['encoder'].dtype_}; load once per process "
        f"(first call {first_call:.2f} s incl. load, second call {second_call:.3f} s).",
        "",
        "| measure | value |",
        "|---|---|",
        f"| **end to end, all three scores** | **{n / end_to_end:.0f} reviews/s** ({end_to_end:.1f} s) |",
        "| target | >= 100 reviews/s |",
        "",
        "Time by stage (same reviews, one pass each, run right after):",
        "",
        "| stage | seconds | share | reviews/s alone |",
        "|---|---|---|---|",
    ]
    total = sum(stages.values())
    for k, v in stages.items():
        lines.append(f"| {k} | {v:.2f} | {100 * v / total:.0f}% | {n / v:.0f} |")
    lines += ["", "Encoder alone, float32 against bfloat16 (same texts, side by side):", "",
              "| dtype | reviews/s | ratio |", "|---|---|---|"]
    base = enc_rows[0][1]
    for dtype, rate in enc_rows:
        lines.append(f"| {dtype} | {rate:.0f} | {rate / base:.2f}x |")
    lines += ["", "Timings on a shared 2-core machine are noisy; re-run `python -m bench.text_bench` on a quiet one."]
    cmd = "python -m bench.text_bench" + (" --quick" if args.quick else f" --n {n}")
    write_result("text_bench", "Review intelligence: scoring throughput", cmd, "\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
