"""REV2 (Kumar, Hooi, Makhija, Kumar, Faloutsos, Subrahmanian, WSDM 2018), written from the paper.

Let ``u`` be a user, ``p`` a product, ``(u, p)`` a rating with score ``s(u, p) in [-1, 1]`` (here
``2 z - 1`` of the normalised rating ``z``). REV2 iterates three quantities from ``F = G = R = 1``:

- fairness of a user, ``F(u) in [0, 1]``:
  ``F(u) = (alpha1 mu_F + alpha2 I_F(u) + sum_{p in Out(u)} R(u, p)) / (alpha1 + alpha2 + |Out(u)|)``;
- goodness of a product, ``G(p) in [-1, 1]``:
  ``G(p) = (beta1 mu_G + beta2 I_G(p) + sum_{u in In(p)} R(u, p) s(u, p)) / (beta1 + beta2 + D(p))``;
- reliability of a rating, ``R(u, p) in [0, 1]``:
  ``R(u, p) = (gamma1 F(u) + gamma2 (1 - |s(u, p) - G(p)| / 2)) / (gamma1 + gamma2)``.

``mu_F``, ``mu_G`` are the current medians of F and G (the released code's choice; the paper says "prior
mean"), each update is clipped to its range, and the order is G, then R, then F (as the released code).
``I_F``, ``I_G`` are BIRDNEST behaviour priors; we have none of the same kind here, so the default
``alpha2 = beta2 = 0`` leaves them out.

**The goodness denominator** ``D(p)``: the paper divides by ``beta1 + beta2 + |In(p)|`` (a smoothed mean,
``denominator="paper"``); the released code (``rev2run.py``, ``ftotal += 1.0`` outside the loop over the
in-edges) divides by ``beta1 + beta2 + 1`` (a clipped smoothed *sum*, which saturates at +/-1 for any
product with a few agreeing ratings, ``denominator="code"``). Both are offered; the results report both.

Scores: per account ``1 - F(u)``, per review ``1 - R(u, p)`` (higher = more suspicious).

References
----------
S. Kumar, B. Hooi, D. Makhija, M. Kumar, C. Faloutsos, V. S. Subrahmanian. REV2: Fraudulent User
Prediction in Rating Platforms. WSDM 2018. https://doi.org/10.1145/3159652.3159729
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from eval.peers.common import Encoded, PeerScores, both_levels

__all__ = ["rev2", "rev2_scores"]


def rev2(user: np.ndarray, item: np.ndarray, score: np.ndarray, n_users: int, n_items: int, *,
         denominator: Literal["paper", "code"] = "paper", alpha1: float = 1.0, beta1: float = 1.0,
         gamma1: float = 1.0, gamma2: float = 1.0, max_iter: int = 100, tol: float = 1e-6
         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fairness ``F`` (per user), goodness ``G`` (per item), reliability ``R`` (per rating).

    ``score`` in [-1, 1]. See the module docstring for the updates.
    """
    if denominator not in ("paper", "code"):
        raise ValueError(f"denominator must be 'paper' or 'code', got {denominator!r}")
    f = np.ones(n_users)
    g = np.ones(n_items)
    r = np.ones(user.size)
    n_out = np.bincount(user, minlength=n_users).astype(float)
    n_in = np.bincount(item, minlength=n_items).astype(float)
    d = n_in if denominator == "paper" else np.ones(n_items)
    for _ in range(max_iter):
        g_new = np.clip((beta1 * np.median(g) + np.bincount(item, r * score, n_items)) / (beta1 + d), -1.0, 1.0)
        r_new = (gamma1 * f[user] + gamma2 * (1.0 - np.abs(score - g_new[item]) / 2.0)) / (gamma1 + gamma2)
        f_new = np.clip((alpha1 * np.median(f) + np.bincount(user, r_new, n_users)) / (alpha1 + n_out), 0.0, 1.0)
        change = max(np.abs(g_new - g).max(initial=0), np.abs(r_new - r).max(initial=0),
                     np.abs(f_new - f).max(initial=0))
        f, g, r = f_new, g_new, r_new
        if change < tol:
            break
    return f, g, r


def rev2_scores(enc: Encoded, denominator: Literal["paper", "code"] = "paper") -> PeerScores:
    f, _, r = rev2(enc.user, enc.item, 2.0 * enc.z - 1.0, enc.n_users, enc.n_items, denominator=denominator)
    return both_levels(enc, 1.0 - r, 1.0 - f)
