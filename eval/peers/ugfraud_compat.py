"""UGFraud (safe-graph/UGFraud, ``ugfraud==0.1.1.3``, Apache-2.0) under NumPy 2, and runners that give its
detectors exactly what our engine gets (metadata: review id, item, author, rating, date).

Importing this module patches UGFraud in memory (monkeypatch; nothing on disk changes):

- ``UGFraud.Utils.helper.scale_value``: its ``for`` loop has an ``else:`` at loop level (a for/else), so
  only the values equal to the minimum or maximum are written and every other node is left out of the
  result (the dict then holds only the extremes and the last key). Replaced by the intended min-max
  scaling to (0, 1), with 1e-7 kept off either end. It is re-bound in every UGFraud module that star-imported
  it (``GANG``, ``SpEagle``).
- ``UGFraud.Detector.GANG.GANG.classify``: ``float(r)`` of a one-element array row, a TypeError under
  NumPy 2 ("only 0-dimensional arrays can be converted"). Replaced by the same computation with
  ``.item()``, and with the patched ``scale_value``.

The prior computation UGFraud's detectors need is not in its wheel; :mod:`eval.peers.priors` adapts it from
its repository.

Graph layout UGFraud needs (GANG indexes nodes by ``int(id)``): product nodes ``"0" .. "P-1"``, user nodes
``"P" .. "P+U-1"``, users added first so that ``graph.edges()`` yields ``(user, product)`` pairs (fBox reads
the first element of each edge as the user).
"""

from __future__ import annotations

import numpy as np

from eval.peers.common import Encoded, PeerScores, both_levels
from eval.peers.priors import speagle_priors

__all__ = ["fbox_scores", "fraudar_scores", "gang_scores", "speagle_scores", "ugfraud_available"]


def ugfraud_available() -> bool:
    try:
        import UGFraud  # noqa: F401
    except ImportError:
        return False
    return True


def _scale_value(value_dict: dict) -> dict:  # type: ignore[type-arg]
    """Min-max scaling of the dict's values to (0, 1), as UGFraud's ``scale_value`` intends."""
    if not value_dict:
        return {}
    vals = np.fromiter(value_dict.values(), float, len(value_dict))
    lo, hi = float(vals.min()), float(vals.max())
    span = hi - lo if hi > lo else 1.0
    return {k: min(max((float(v) - lo) / span, 1e-7), 1 - 1e-7) for k, v in value_dict.items()}


def _gang_classify(self):  # type: ignore[no-untyped-def]
    u_post, p_post, r_post = {}, {}, {}
    pu_post = self.res_pu_spam_post_vector
    no_prod = len(self.p_priors)
    for i, r in enumerate(pu_post[no_prod:]):
        u_post[str(i + no_prod)] = float(np.asarray(r).item())
    for i, r in enumerate(pu_post[:no_prod]):
        p_post[str(i)] = float(np.asarray(r).item())
    for i, r in self.r_priors.items():
        r_post[i] = (u_post[i[0]] + float(r)) / 2
    return _scale_value(u_post), _scale_value(p_post), _scale_value(r_post)


def _patch() -> None:
    import UGFraud.Detector.GANG as gang
    import UGFraud.Detector.SpEagle as speagle
    import UGFraud.Utils.helper as helper

    for mod in (helper, gang, speagle):
        mod.scale_value = _scale_value
    gang.GANG.classify = _gang_classify


if ugfraud_available():
    _patch()


def _graph(enc: Encoded, priors: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None):  # type: ignore[no-untyped-def]
    import networkx as nx

    up, pp, rp = priors if priors is not None else speagle_priors(enc)
    n_p = enc.n_items
    g = nx.Graph()
    g.add_nodes_from((str(n_p + k), {"types": "user", "prior": float(up[k])}) for k in range(enc.n_users))
    g.add_nodes_from((str(k), {"types": "prod", "prior": float(pp[k])}) for k in range(n_p))
    g.add_edges_from((str(n_p + u), str(i), {"types": "review", "prior": float(p), "rating": float(z)})
                     for u, i, p, z in zip(enc.user.tolist(), enc.item.tolist(), rp.tolist(), enc.z.tolist(),
                                           strict=True))
    return g


def _edge_keys(enc: Encoded) -> list[tuple[str, str]]:
    n_p = enc.n_items
    return [(str(n_p + u), str(i)) for u, i in zip(enc.user.tolist(), enc.item.tolist(), strict=True)]


def speagle_scores(enc: Encoded, bp_iters: int = 2) -> PeerScores:
    """SpEagle (Rayana & Akoglu, KDD 2015), unsupervised: loopy BP over users, reviews and products from the
    metadata priors, with UGFraud's demo potentials (numerical eps 1e-5, eps 0.1), BFS schedule,
    ``bp_iters`` BP iterations (the demo's 2)."""
    from UGFraud.Detector.SpEagle import SpEagle

    numerical_eps, eps = 1e-5, 0.1
    ur = np.log(np.array([[1 - numerical_eps, numerical_eps], [numerical_eps, 1 - numerical_eps]]))
    rp = np.log(np.array([[1 - eps, eps], [eps, 1 - eps]]))
    model = SpEagle(_graph(enc), {"u_r": ur, "r_u": ur, "r_p": rp, "p_r": rp}, message=None, max_iters=bp_iters)
    model.schedule(schedule_type="bfs")
    model.run_bp(start_iter=0, max_iters=bp_iters, tol=1e-3)
    user_b, review_b, _ = model.classify()
    n_p = enc.n_items
    acc = np.array([user_b[str(n_p + k)] for k in range(enc.n_users)], float)
    rev = np.array([review_b[key] for key in _edge_keys(enc)], float)
    return both_levels(enc, rev, acc)


def gang_scores(enc: Encoded, iters: int = 1000) -> PeerScores:
    """GANG (Wang et al., ICDM 2017) as UGFraud runs it unsupervised: linearised BP on the user-product
    graph from the metadata priors (no labelled seeds), UGFraud's demo settings (``nor_flg=True``)."""
    from UGFraud.Detector.GANG import GANG

    model = GANG(_graph(enc), {}, 0.0, nor_flg=True, sup_flg=False)
    model.pu_lbp(iters)
    user_b, _, review_b = model.classify()
    n_p = enc.n_items
    acc = np.array([user_b[str(n_p + k)] for k in range(enc.n_users)], float)
    rev = np.array([review_b[key] for key in _edge_keys(enc)], float)
    return both_levels(enc, rev, acc)


def fbox_scores(enc: Encoded, k: int = 50) -> PeerScores:
    """fBox (Shah et al., ICDM 2014): a rank-``k`` SVD of the binary user-product matrix; a user whose
    reconstructed out-degree is low for its degree is suspicious. Score: one minus the percentile of the
    user's reconstructed degree among users of the same degree (fBox flags those under ``tau``; the
    percentile is the statistic it thresholds). Per review: the author's."""
    from UGFraud.Detector.fBox import fBox

    model = fBox(_graph(enc, priors=_flat(enc)))
    model.run(tau=20, k=max(1, min(k, min(model.num_users, model.num_products) - 1)))
    rec = model.recOutDeg
    deg = model.out_deg
    pct = np.zeros(rec.size)
    for d in np.unique(deg):
        sel = np.flatnonzero(deg == d)
        ranks = rec[sel].argsort().argsort()
        pct[sel] = (ranks + 0.5) / sel.size
    n_p = enc.n_items
    by_id = {model.idx2u_id[i]: 1.0 - pct[i] for i in range(rec.size)}
    acc = np.array([by_id.get(str(n_p + u), 0.0) for u in range(enc.n_users)], float)
    return both_levels(enc, None, acc)


def fraudar_scores(enc: Encoded, blocks: int = 5) -> PeerScores:
    """FRAUDAR (Hooi et al., KDD 2016), UGFraud's greedy peeling with log-weighted column (product) degrees
    (``logWeightedAveDegree``), the ``blocks`` densest blocks found one after another, each block's edges
    removed before the next. Account score: the density of the first (densest) block it falls in, 0
    outside every block. Per review: the author's."""
    from scipy import sparse
    from UGFraud.Detector.Fraudar import detectMultiple, logWeightedAveDegree

    m = sparse.coo_matrix((np.ones(enc.n_reviews), (enc.user, enc.item)), shape=(enc.n_users, enc.n_items))
    m = (m > 0).astype(int)
    res = detectMultiple(m, logWeightedAveDegree, blocks)
    acc = np.zeros(enc.n_users)
    for (rows, _cols), density in reversed(res):       # densest last, so it wins
        acc[list(rows)] = density
    return both_levels(enc, None, acc)


def _flat(enc: Encoded) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return np.full(enc.n_users, 0.5), np.full(enc.n_items, 0.5), np.full(enc.n_reviews, 0.5)
