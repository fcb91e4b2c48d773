"""Peer detectors, run beside ours in ``eval.integrity_eval`` on the same data (evaluation only, never shipped).

Each peer gets what our engine gets (metadata: review id, item, author, rating, date) and returns
:class:`PeerScores` (higher = more suspicious) per review and per account; where a peer scores one level
only, the other is made as :mod:`eval.peers.common` says (account: mean of its reviews; review: the
author's). UGFraud's detectors need the optional extra ``peers`` (``pip install -e .[peers]``); FraudEagle,
REV2 and the baselines are ours. The ``rgmining-*`` packages are GPL and are never imported.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pandas as pd

from eval.peers.baselines import BASELINES
from eval.peers.common import Encoded, PeerScores, encode
from eval.peers.fraudeagle import fraudeagle_scores
from eval.peers.rev2 import rev2_scores
from eval.peers.ugfraud_compat import (
    fbox_scores,
    fraudar_scores,
    gang_scores,
    speagle_scores,
    ugfraud_available,
)

__all__ = ["BASELINES", "PEERS", "Encoded", "PeerScores", "encode", "run_peers", "ugfraud_available"]

#: name -> (runner, needs the ``peers`` extra)
PEERS: dict[str, tuple[Callable[[Encoded], PeerScores], bool]] = {
    "FraudEagle (ICWSM 2013; ours, from the paper)": (fraudeagle_scores, False),
    "REV2, paper goodness denominator (beta1 + beta2 + in-degree)": (lambda e: rev2_scores(e, "paper"), False),
    "REV2, released-code goodness denominator (beta1 + beta2 + 1)": (lambda e: rev2_scores(e, "code"), False),
    "SpEagle (UGFraud; metadata priors, unsupervised)": (speagle_scores, True),
    "GANG (UGFraud; metadata priors, no seeds)": (gang_scores, True),
    "fBox (UGFraud)": (fbox_scores, True),
    "Fraudar (UGFraud)": (fraudar_scores, True),
}


def run_peers(reviews: pd.DataFrame, *, include: set[str] | None = None
              ) -> tuple[dict[str, PeerScores], dict[str, float], dict[str, str]]:
    """Every peer and baseline on one review frame: (scores, seconds, skipped-with-reason)."""
    enc = encode(reviews)
    out: dict[str, PeerScores] = {}
    sec: dict[str, float] = {}
    skipped: dict[str, str] = {}
    have_ugfraud = ugfraud_available()
    for name, (fn, needs_extra) in PEERS.items():
        if include is not None and name not in include:
            continue
        if needs_extra and not have_ugfraud:
            skipped[name] = "the optional extra `peers` (ugfraud) is not installed"
            continue
        t = time.perf_counter()
        out[name] = fn(enc)
        sec[name] = time.perf_counter() - t
    for name, bfn in BASELINES.items():
        out[name] = bfn(enc)
    return out, sec, skipped
