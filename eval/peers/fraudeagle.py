"""FraudEagle (Akoglu, Chandy, Faloutsos, ICWSM 2013), written from the paper.

The data is a signed bipartite graph: users ``u``, products ``p``, an edge per review with sign
``s = +`` (a rating above the scale's middle) or ``s = -`` (below it; ratings exactly at the middle carry no
sign and are left out of the graph). Each user has a label ``y_u in {honest, fraud}``, each product
``y_p in {good, bad}``; the pairwise Markov random field has node potentials ``phi`` (uniform, 1/2 each:
the paper uses no side information) and, per edge, the paper's propagation matrix ``psi^s(y_u, y_p)``
with a small ``epsilon``:

====================  ==============  ==============
``s = +``              good            bad
honest                 1 - eps         eps
fraud                  2 eps           1 - 2 eps
``s = -``              good            bad
honest                 eps             1 - eps
fraud                  1 - 2 eps       2 eps
====================  ==============  ==============

Loopy belief propagation, in log space, all messages updated at once (with damping ``damping``):
``m_{u->p}(y_p) ∝ sum_{y_u} phi_u(y_u) psi^s(y_u, y_p) prod_{p' in N(u) \\ p} m_{p'->u}(y_u)`` and the
same from products to users; each message is normalised to sum 1. Beliefs
``b_u(y_u) ∝ phi_u(y_u) prod_{p in N(u)} m_{p->u}(y_u)``. A review's belief comes from the edge belief
``b_{up}(y_u, y_p) ∝ psi^s(y_u, y_p) phi_u phi_p prod_{others} m``: the paper's step 3 calls a review fake
when its author is a fraud and it goes against the product (``+`` on a bad product, ``-`` on a good one);
the review score is that probability, ``b_{up}(fraud, bad)`` for ``+`` and ``b_{up}(fraud, good)`` for ``-``.
The account score is ``b_u(fraud)``. Loopy BP need not converge; ``max_iter`` bounds it.

References
----------
L. Akoglu, R. Chandy, C. Faloutsos. Opinion Fraud Detection in Online Reviews by Network Effects.
ICWSM 2013. https://ojs.aaai.org/index.php/ICWSM/article/view/14380
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from eval.peers.common import Encoded, PeerScores, both_levels

__all__ = ["fraudeagle", "fraudeagle_scores"]


def _psi(eps: float) -> np.ndarray:
    """``psi[s, y_u, y_p]``, ``s = 0`` for ``+`` and ``1`` for ``-``."""
    plus = [[1 - eps, eps], [2 * eps, 1 - 2 * eps]]
    minus = [[eps, 1 - eps], [1 - 2 * eps, 2 * eps]]
    return np.array([plus, minus])


def fraudeagle(user: np.ndarray, item: np.ndarray, positive: np.ndarray, n_users: int, n_items: int, *,
               eps: float = 0.1, max_iter: int = 50, tol: float = 1e-5, damping: float = 0.5
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``P(fraud)`` per user, ``P(bad)`` per product, ``P(fake)`` per edge (see the module docstring)."""
    log_psi = np.log(_psi(eps))[np.where(positive, 0, 1)]          # (E, y_u, y_p)
    n_e = user.size
    m_up = np.full((n_e, 2), np.log(0.5))                           # user -> product, over y_p
    m_pu = np.full((n_e, 2), np.log(0.5))                           # product -> user, over y_u
    log_phi = np.log(0.5)

    def totals() -> tuple[np.ndarray, np.ndarray]:
        tu = np.full((n_users, 2), log_phi)
        tp = np.full((n_items, 2), log_phi)
        np.add.at(tu, user, m_pu)
        np.add.at(tp, item, m_up)
        return tu, tp

    for _ in range(max_iter):
        tu, tp = totals()
        cav_u = tu[user] - m_pu                                     # (E, y_u)
        cav_p = tp[item] - m_up                                     # (E, y_p)
        new_up = logsumexp(cav_u[:, :, None] + log_psi, axis=1)
        new_pu = logsumexp(cav_p[:, None, :] + log_psi, axis=2)
        new_up -= logsumexp(new_up, axis=1, keepdims=True)
        new_pu -= logsumexp(new_pu, axis=1, keepdims=True)
        # damping in the probability domain keeps the synchronous schedule from oscillating
        new_up = np.log(damping * np.exp(m_up) + (1 - damping) * np.exp(new_up))
        new_pu = np.log(damping * np.exp(m_pu) + (1 - damping) * np.exp(new_pu))
        change = max(np.abs(np.exp(new_up) - np.exp(m_up)).max(initial=0),
                     np.abs(np.exp(new_pu) - np.exp(m_pu)).max(initial=0))
        m_up, m_pu = new_up, new_pu
        if change < tol:
            break
    tu, tp = totals()
    b_u = np.exp(tu - logsumexp(tu, axis=1, keepdims=True))[:, 1]
    b_p = np.exp(tp - logsumexp(tp, axis=1, keepdims=True))[:, 1]
    edge = (tu[user] - m_pu)[:, :, None] + (tp[item] - m_up)[:, None, :] + log_psi
    edge = np.exp(edge - logsumexp(edge, axis=(1, 2), keepdims=True))
    fake = np.where(positive, edge[:, 1, 1], edge[:, 1, 0])
    return b_u, b_p, fake


def fraudeagle_scores(enc: Encoded, eps: float = 0.1) -> PeerScores:
    signed = enc.z != 0.5
    fraud_u = np.full(enc.n_users, 0.5)
    fake = np.zeros(enc.n_reviews)
    if signed.any():
        b_u, _, f = fraudeagle(enc.user[signed], enc.item[signed], enc.z[signed] > 0.5, enc.n_users, enc.n_items,
                               eps=eps)
        fraud_u = b_u
        fake[signed] = f
    # unsigned (middle) reviews: no edge; they get their author's belief
    fake[~signed] = fraud_u[enc.user[~signed]]
    return both_levels(enc, fake, fraud_u)
