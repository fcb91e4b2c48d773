"""Synthetic rating arrays at benchmark scale (10 M ratings in a few seconds, no events or text).

The distributions are those of :mod:`truescore.synth` (item quality ``1 + 4 Beta(4, 2)`` stars,
log-normal user and item popularity, honest star noise ``LogNormal(log 0.55, 0.35)``, 8% harsh and
8% lenient raters with a 0.5-1.2 star bias, 10% careless raters with sd 1.5-2.5 stars, integer stars
clipped to 1..5), generated directly as arrays: ``truescore.synth.generate`` also builds votes, a
trust graph and texts, which at 10 M ratings would take far longer than the fit being measured.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["Marketplace", "marketplace"]


@dataclass(slots=True)
class Marketplace:
    user: npt.NDArray[np.int64]
    item: npt.NDArray[np.int64]
    stars: npt.NDArray[np.float64]
    n_users: int
    n_items: int
    quality: npt.NDArray[np.float64]      # stars
    precision: npt.NDArray[np.float64]    # planted alpha_u on the normalised scale

    @property
    def rating(self) -> npt.NDArray[np.float64]:
        """Normalised ratings (stars - 1) / 4."""
        return (self.stars - 1.0) / 4.0

    @property
    def quality_norm(self) -> npt.NDArray[np.float64]:
        return (self.quality - 1.0) / 4.0


def marketplace(n_ratings: int, n_users: int, n_items: int, seed: int = 0) -> Marketplace:
    """Distinct (user, item) pairs with synth-like raters; see the module docstring."""
    rng = np.random.default_rng(seed)
    quality = 1.0 + 4.0 * rng.beta(4.0, 2.0, n_items)
    roll = rng.random(n_users)
    sd = rng.lognormal(np.log(0.55), 0.35, n_users)
    careless = roll >= 0.16
    careless &= roll < 0.26
    sd[careless] = rng.uniform(1.5, 2.5, int(careless.sum()))
    bias = np.zeros(n_users)
    harsh = roll < 0.08
    lenient = (roll >= 0.08) & (roll < 0.16)
    bias[harsh] = -rng.uniform(0.5, 1.2, int(harsh.sum()))
    bias[lenient] = rng.uniform(0.5, 1.2, int(lenient.sum()))
    cu = np.cumsum(rng.lognormal(0.0, 1.1, n_users))
    ci = np.cumsum(rng.lognormal(0.0, 1.0, n_items))
    users = np.empty(0, dtype=np.int64)
    items = np.empty(0, dtype=np.int64)
    need = n_ratings
    while need > 0:
        m = int(need * 1.3) + 16
        u = np.minimum(np.searchsorted(cu, rng.random(m) * cu[-1]), n_users - 1)
        i = np.minimum(np.searchsorted(ci, rng.random(m) * ci[-1]), n_items - 1)
        key = np.unique(np.concatenate([users * n_items + items, u * n_items + i]))
        users, items = key // n_items, key % n_items
        need = n_ratings - users.shape[0]
    keep = rng.permutation(users.shape[0])[:n_ratings]   # a random subset, in random order
    users, items = users[keep], items[keep]
    stars = np.clip(np.rint(quality[items] + bias[users] + sd[users] * rng.standard_normal(n_ratings)), 1, 5)
    return Marketplace(user=users, item=items, stars=stars, n_users=n_users, n_items=n_items, quality=quality,
                       precision=1.0 / (sd / 4.0) ** 2)
