"""The exact sums behind the shared VB step kernels: order- and partition-independent, correctly rounded."""

from __future__ import annotations

import math

import numpy as np
import pytest

from truescore.reliability.kernels import ExactSum, exact_mean, exact_sum


def test_exact_sum_matches_fsum_on_wide_exponents() -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal(20_000) * np.exp(rng.uniform(-30, 30, 20_000))
    x = np.concatenate([x, [1e16, 1.0, -1e16, 5e-324, 0.0]])
    assert exact_sum(x) == math.fsum(x.tolist())
    assert exact_sum(x) != float(np.sum(x)) or math.fsum(x.tolist()) == float(np.sum(x))


def test_partials_merge_to_the_same_value_in_any_split() -> None:
    rng = np.random.default_rng(4)
    x = rng.random(10_001) * 1e3 - 1e-3
    whole = exact_sum(x)
    for parts in (2, 7, 64):
        acc = ExactSum()
        for chunk in np.array_split(rng.permutation(x), parts):
            acc.merge(ExactSum.from_state(ExactSum().add(chunk).to_state()))
        assert acc.value() == whole
        assert acc.count == x.size
    assert exact_mean(x) == whole / x.size


def test_exact_sum_cancellation_and_refusal() -> None:
    assert exact_sum([0.1] * 10) == 1.0
    assert exact_sum([1e100, 1.0, -1e100]) == 1.0
    assert exact_mean([]) == 0.0
    with pytest.raises(ValueError, match="finite"):
        exact_sum([1.0, float("nan")])
