"""Bursts: an item's ratings crowded into a short window, and the damping factor they get.

The rule is written once here and used twice: the fusion damps the weight of a rating in a burst
(:func:`burst_damping`, ``beta``) and the integrity engine reports ``1 - beta`` as the burst evidence of
the review. For rating ``j`` of item ``i`` at time ``t_j``, with window ``W = burst_window_hours``:

- ``c_j`` counts item ``i``'s ratings with time in ``[t_j - W/2, t_j + W/2]`` (bounds included);
- ``e_j = max(n_i W / max(span_i, W), 1)`` is the count expected if the item's ``n_i`` ratings were spread
  evenly over its active span ``span_i = max_t - min_t``;
- the rating is in a burst when ``c_j >= burst_min_ratings`` and ``c_j > e_j + burst_z sqrt(e_j)``; then
  ``beta_j = min(1, e_j / c_j)``, else ``beta_j = 1``: the burst as a whole counts as an ordinary window.

The parameters are the ranking settings' ``burst_window_hours``, ``burst_min_ratings`` and ``burst_z``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from truescore.config import RankingSettings

__all__ = ["burst_damping", "window_counts"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def window_counts(item_idx: IntArray, created_at: FloatArray, half: float) -> FloatArray:
    """Per rating, the ratings of the same item with ``created_at`` in ``[t - half, t + half]``.

    The times and both bounds are replaced by their dense ranks among all three (order and ties kept
    exactly), so ``item * 3n + rank`` is an exact integer key ordered by (item, time): the count is the
    difference of two ``searchsorted`` over the ratings' sorted keys, with no clock offset shared by the
    items (the bounds are looked up in key order, which keeps the searches cache-friendly).
    """
    n = item_idx.shape[0]
    values = np.concatenate([created_at - half, created_at, created_at + half])
    order = np.argsort(values)
    ranked = values[order]
    rank = np.empty(3 * n, dtype=np.int64)
    rank[order] = np.concatenate([[0], np.cumsum(ranked[1:] != ranked[:-1])])
    key = np.tile(item_idx.astype(np.int64), 3) * np.int64(3 * n) + rank
    by_key = np.argsort(key[n:2 * n])
    data = key[n:2 * n][by_key]
    count = np.empty(n, dtype=np.float64)
    count[by_key] = (np.searchsorted(data, key[2 * n:][by_key], side="right")
                     - np.searchsorted(data, key[:n][by_key], side="left"))
    return count


def burst_damping(item_idx: IntArray, created_at: FloatArray, n_items: int, settings: RankingSettings
                  ) -> FloatArray:
    """Per-rating burst factor ``beta`` (see the module docstring); 1 outside bursts; everything is per item."""
    n = item_idx.shape[0]
    if n == 0:
        return np.ones(n)
    window = settings.burst_window_hours * 3600.0
    count = window_counts(item_idx, created_at, window / 2)
    n_i = np.bincount(item_idx, minlength=n_items).astype(np.float64)
    t_min = np.full(n_items, np.inf)
    t_max = np.full(n_items, -np.inf)
    np.minimum.at(t_min, item_idx, created_at)
    np.maximum.at(t_max, item_idx, created_at)
    span = np.maximum(t_max - t_min, window)
    expected = np.maximum(n_i[item_idx] * window / span[item_idx], 1.0)
    is_burst = (count >= settings.burst_min_ratings) & (count > expected + settings.burst_z * np.sqrt(expected))
    return np.where(is_burst, np.minimum(1.0, expected / count), 1.0)
