"""The seed's PyTorch model as a backend: same result type, agrees with VB in ranking on easy data."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from truescore.domain import RatingSnapshot
from truescore.reliability import ReliabilityResult, fit
from truescore.reliability.torch_nll import TorchOptions, TorchReliability, torch_fit_arrays

pytest.importorskip("torch")


def easy(seed: int = 0):
    """30 raters rate all 20 items; half the raters are careful (sd 0.05), half sloppy (sd 0.25)."""
    rng = np.random.default_rng(seed)
    n_users, n_items = 30, 20
    q = np.linspace(0.1, 0.9, n_items)[rng.permutation(n_items)]
    sd = np.where(np.arange(n_users) < 15, 0.05, 0.25)
    u = np.repeat(np.arange(n_users), n_items)
    i = np.tile(np.arange(n_items), n_users)
    r = q[i] + sd[u] * rng.standard_normal(u.shape[0])
    return RatingSnapshot.from_arrays(u, i, r, n_users=n_users, n_items=n_items), q, sd


def test_torch_and_vb_agree_in_ranking_on_easy_data() -> None:
    snap, q, sd = easy()
    vb = fit(snap)
    # the seed's recipe with fewer epochs (the data are small and easy); batch 16, Adam 1e-2 as printed
    torch_res = fit(snap, backend="torch", torch_epochs=40)
    assert isinstance(torch_res, ReliabilityResult) and torch_res.backend == "torch"
    assert stats.spearmanr(torch_res.item_mean, vb.item_mean)[0] > 0.97
    assert stats.spearmanr(torch_res.item_mean, q)[0] > 0.95
    # both separate the careful raters from the sloppy ones
    careful = sd < 0.1
    for res in (vb, torch_res):
        assert res.reliability[careful].min() > res.reliability[~careful].max()
    assert stats.spearmanr(torch_res.reliability, vb.reliability)[0] > 0.8


def test_torch_result_has_every_output_and_plugin_uncertainty() -> None:
    snap, _, _ = easy(1)
    res = fit(snap, backend="torch", torch_epochs=3, torch_batch_size=64)
    assert res.n_iter == 3 and res.elbo_history.shape == (3,) and res.delta_history.shape == (3,)
    assert np.all(res.item_sd > 0) and np.all(res.reliability_lo < res.reliability)
    assert np.all(res.reliability < res.reliability_hi)
    np.testing.assert_allclose(res.item_sd, 1 / np.sqrt(np.bincount(snap.item_idx, res.reliability[snap.user_idx])))
    np.testing.assert_array_equal(res.bias, 0.0)
    assert res.extras["threads"] == 1


def test_recipe_is_the_seed_loss_and_is_deterministic() -> None:
    """One full-batch Adam step from the initial point equals the hand-computed seed loss gradient step."""
    import torch

    u = np.array([0, 1, 1])
    i = np.array([0, 0, 1])
    r = np.array([0.2, 0.6, 0.9])
    out = torch_fit_arrays(u, i, r, 2, 2, None)
    again = torch_fit_arrays(u, i, r, 2, 2, None)
    np.testing.assert_array_equal(out.x, again.x)
    # loss at the seed's initial point: log_alpha = 0, x = randn(N) from the seeded generator
    x0 = torch.randn(2, generator=torch.Generator().manual_seed(0)).numpy().astype(np.float64)
    one = torch_fit_arrays(u, i, r, 2, 2, TorchOptions(torch_epochs=1, torch_batch_size=3))
    # with a single batch of all ratings, Adam's first step moves every parameter by lr * sign(grad)
    grad_x = np.zeros(2)
    for ii, rr in zip(i, r, strict=True):
        grad_x[ii] += -(rr - x0[ii]) / 3.0
    grad_x += 2e-3 * x0 / 2.0
    np.testing.assert_allclose(one.x, x0 - 1e-2 * np.sign(grad_x), atol=1e-6)
    grad_la = np.zeros(2)
    for uu, ii, rr in zip(u, i, r, strict=True):
        grad_la[uu] += (0.5 * (rr - x0[ii]) ** 2 - 0.5) / 3.0
    np.testing.assert_allclose(one.log_alpha, -1e-2 * np.sign(grad_la), atol=1e-6)


def test_estimator_interface() -> None:
    snap, _, _ = easy(2)
    est = TorchReliability(torch_epochs=2, torch_batch_size=128)
    assert est.fit(snap) is est
    assert est.n_iter_ == 2 and est.item_mean_.shape == (20,) and est.loss_history_.shape == (2,)
    with pytest.raises(ValueError, match="torch_epochs"):
        fit(snap, backend="torch", torch_epochs=0)
