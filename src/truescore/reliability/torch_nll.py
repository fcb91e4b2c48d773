r"""Seed 000's PyTorch model, kept as the parity backend the closed-form VB is compared against.

The model, exactly as printed in seed 000: item quality ``x = Parameter(randn(N))`` and rater
log-reliability ``log_alpha = Parameter(zeros(M))``; for a batch of ratings :math:`(u, i, r)`

.. math::

    L = \operatorname{mean}_{\text{batch}}\Big[\tfrac12 e^{\log\alpha_u}(r - x_i)^2 - \tfrac12\log\alpha_u\Big]
        + \lambda\,\operatorname{mean}(x^2) + \lambda\,\operatorname{mean}(\log\alpha^2),

the Gaussian negative log-likelihood of :math:`r \sim N(x_i, 1/\alpha_u)` up to a constant, with a small
L2 penalty :math:`\lambda = 10^{-3}`. It is minimised by Adam (learning rate 1e-2) on shuffled
mini-batches of 16 ratings for 500 epochs; every number is configurable
(:class:`~truescore.config.ReliabilitySettings` ``torch_*``). Ratings are the normalised [0, 1] values,
like the VB engine's. The recipe has no convergence test: it runs its epochs.

The seed gives point estimates only. To fill the same :class:`ReliabilityResult` this module adds
plug-in uncertainties, documented as such:

- item sd :math:`1/\sqrt{\sum_u \alpha_u}` (the inverse Fisher information of :math:`x_i`); 1.0 (the
  whole scale) for an item without ratings;
- rater interval: :math:`\alpha_u` is treated as :math:`\mathrm{Gamma}(n_u/2, (n_u/2)/\alpha_u)`, whose
  log-sd :math:`\approx\sqrt{2/n_u}` matches the curvature of the NLL in :math:`\log\alpha_u` at its
  optimum (shape 1/2 for a rater without ratings);
- no bias (the seed's model has none): zeros.

CPU use is kept polite: ``torch.set_num_threads(torch_threads)`` (default 1) for the duration of the fit.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.base import BaseEstimator

from truescore.config import ReliabilitySettings
from truescore.domain import RatingSnapshot
from truescore.reliability._layout import snapshot_arrays
from truescore.reliability._stats import gamma_interval
from truescore.reliability._types import Hyperparameters, ReliabilityResult

__all__ = ["TorchOptions", "TorchReliability", "fit_torch", "torch_fit_arrays"]

FloatArray = npt.NDArray[np.float64]


#: The defaults of the recipe: those of :class:`~truescore.config.ReliabilitySettings` (their one source).
_DEFAULTS = ReliabilitySettings()


@dataclass(frozen=True, slots=True)
class TorchOptions:
    """The seed recipe's settings (``torch_*`` fields of :class:`~truescore.config.ReliabilitySettings`,
    whose defaults are read here, not written again)."""

    torch_epochs: int = _DEFAULTS.torch_epochs
    torch_batch_size: int = _DEFAULTS.torch_batch_size
    torch_lr: float = _DEFAULTS.torch_lr
    torch_reg: float = _DEFAULTS.torch_reg
    torch_threads: int = _DEFAULTS.torch_threads
    random_state: int = _DEFAULTS.random_state
    credible_level: float = _DEFAULTS.credible_level

    @classmethod
    def from_settings(cls, settings: ReliabilitySettings | None = None, **overrides: Any) -> TorchOptions:
        """Options from the configuration section (None: its pure defaults), with validated overrides."""
        checked = (settings if settings is not None else ReliabilitySettings()).with_overrides(**overrides)
        return cls(**{name: getattr(checked, name) for name in cls.__dataclass_fields__})


@dataclass(slots=True)
class TorchFit:
    """Raw output of the recipe: point estimates and the per-epoch history."""

    x: FloatArray
    log_alpha: FloatArray
    loss_history: list[float]
    delta_history: list[float]
    epochs: int


def torch_fit_arrays(user_idx: npt.ArrayLike, item_idx: npt.ArrayLike, rating: npt.ArrayLike, n_users: int,
                     n_items: int, opts: TorchOptions | None = None,
                     progress: Any = None) -> TorchFit:
    """Run the seed's recipe on normalised rating arrays.

    ``progress``, if given, is called as ``progress(epoch, epochs)`` after every epoch.
    """
    import torch

    opts = opts or TorchOptions()
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(opts.torch_threads)
    try:
        gen = torch.Generator().manual_seed(opts.random_state)
        u = torch.as_tensor(np.asarray(user_idx, dtype=np.int64))
        i = torch.as_tensor(np.asarray(item_idx, dtype=np.int64))
        r = torch.as_tensor(np.asarray(rating, dtype=np.float32))
        x = torch.nn.Parameter(torch.randn(n_items, generator=gen))
        log_alpha = torch.nn.Parameter(torch.zeros(n_users))
        # The fused CPU kernel is the same Adam update, with less per-step overhead (about 1.5x faster
        # on a batch of 16): the baseline is not handicapped by the framework.
        optimiser = torch.optim.Adam([x, log_alpha], lr=opts.torch_lr, fused=True)
        reg = opts.torch_reg
        n = int(r.shape[0])
        bs = opts.torch_batch_size
        losses: list[float] = []
        deltas: list[float] = []
        for epoch in range(opts.torch_epochs if n else 0):
            before = x.detach().clone()
            perm = torch.randperm(n, generator=gen)
            total = torch.zeros(())
            for start in range(0, n, bs):
                idx = perm[start : start + bs]
                xi = x[i[idx]]
                la = log_alpha[u[idx]]
                nll = 0.5 * torch.exp(la) * (r[idx] - xi) ** 2 - 0.5 * la
                loss = nll.mean() + reg * (x**2).mean() + reg * (log_alpha**2).mean()
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                total += loss.detach() * idx.shape[0]
            losses.append(float(total) / n)
            deltas.append(float((x.detach() - before).abs().max()) if n_items else 0.0)
            if progress is not None:
                progress(epoch + 1, opts.torch_epochs)
        return TorchFit(
            x=x.detach().numpy().astype(np.float64),
            log_alpha=log_alpha.detach().numpy().astype(np.float64),
            loss_history=losses,
            delta_history=deltas,
            epochs=len(losses),
        )
    finally:
        torch.set_num_threads(previous_threads)


def fit_torch(snapshot: RatingSnapshot, opts: TorchOptions | None = None, progress: Any = None
              ) -> ReliabilityResult:
    """Fit the seed's model to a snapshot and package it as a :class:`ReliabilityResult`.

    ``opts=None`` uses the documented defaults (``TorchOptions()``), like :func:`truescore.reliability.fit`
    without settings.
    """
    if opts is None:
        opts = TorchOptions()
    start = time.perf_counter()
    u, i, r, n_users, n_items = snapshot_arrays(snapshot)
    raw = torch_fit_arrays(u, i, r, n_users, n_items, opts, progress)
    elapsed = time.perf_counter() - start
    n_u = np.bincount(u, minlength=n_users).astype(np.int64)
    n_i = np.bincount(i, minlength=n_items).astype(np.int64)
    alpha = np.exp(raw.log_alpha)
    weight: FloatArray = np.bincount(i, alpha[u], n_items) if n_items else np.zeros(0)  # type: ignore[assignment]
    sd = np.where(n_i > 0, 1.0 / np.sqrt(np.maximum(weight, 1e-300)), 1.0)
    shape = np.maximum(0.5 * n_u, 0.5).astype(np.float64)
    rate = shape / alpha
    lo, hi = gamma_interval(shape, rate, opts.credible_level)
    span = snapshot.item_max - snapshot.item_min
    nan = float("nan")
    return ReliabilityResult(
        backend="torch",
        item_ids=snapshot.item_ids,
        item_mean=raw.x,
        item_sd=sd,
        item_quality=snapshot.item_min + raw.x * span,
        item_quality_sd=sd * span,
        item_n_ratings=n_i,
        item_effective_weight=weight,
        user_ids=snapshot.user_ids,
        reliability=alpha,
        reliability_lo=lo,
        reliability_hi=hi,
        rater_shape=shape,
        rater_rate=rate,
        bias=np.zeros(n_users),
        bias_sd=np.zeros(n_users),
        user_n_ratings=n_u,
        hyper=Hyperparameters(mu0=0.0, tau0=nan, a0=nan, b0=nan, tau_b=nan),
        elbo_history=np.asarray(raw.loss_history, dtype=np.float64),
        delta_history=np.asarray(raw.delta_history, dtype=np.float64),
        n_iter=raw.epochs,
        converged=True,
        fit_seconds=elapsed,
        credible_level=opts.credible_level,
        item_min=snapshot.item_min,
        item_max=snapshot.item_max,
        extras={"threads": opts.torch_threads, "epochs": opts.torch_epochs, "batch_size": opts.torch_batch_size,
                "lr": opts.torch_lr, "reg": opts.torch_reg},
    )


class TorchReliability(BaseEstimator):
    """The seed's model as a scikit-learn estimator; see the module docstring.

    ``__init__`` only stores; :meth:`fit` validates the parameters against the ranges declared in
    :class:`~truescore.config.ReliabilitySettings`, whose defaults are this class's defaults.

    The seed's recipe has no stopping rule: it always runs ``torch_epochs`` epochs of Adam on shuffled
    mini-batches (whose noise keeps the parameters moving by about the learning rate), so there is no
    "stopped at the limit before converging" event and this estimator never raises a
    :class:`~sklearn.exceptions.ConvergenceWarning`; ``delta_history_`` shows how much the item
    qualities still moved in each epoch.

    Parameters
    ----------
    torch_epochs : int, default=500
    torch_batch_size : int, default=16
    torch_lr : float, default=1e-2
    torch_reg : float, default=1e-3
    torch_threads : int, default=1
    random_state : int, default=0
    credible_level : float, default=0.9

    Attributes
    ----------
    item_mean_ : ndarray of shape (n_items,)
        ``x`` (normalised scale).
    rater_precision_ : ndarray of shape (n_users,)
        ``exp(log_alpha)``.
    loss_history_ : ndarray
        Mean training loss per epoch.
    delta_history_ : ndarray
        Largest change of an item quality per epoch.
    n_iter_ : int
        Epochs run.
    result_ : ReliabilityResult
    """

    def __init__(self, *, torch_epochs: int = _DEFAULTS.torch_epochs,
                 torch_batch_size: int = _DEFAULTS.torch_batch_size, torch_lr: float = _DEFAULTS.torch_lr,
                 torch_reg: float = _DEFAULTS.torch_reg, torch_threads: int = _DEFAULTS.torch_threads,
                 random_state: int = _DEFAULTS.random_state,
                 credible_level: float = _DEFAULTS.credible_level) -> None:
        self.torch_epochs = torch_epochs
        self.torch_batch_size = torch_batch_size
        self.torch_lr = torch_lr
        self.torch_reg = torch_reg
        self.torch_threads = torch_threads
        self.random_state = random_state
        self.credible_level = credible_level

    @classmethod
    def from_settings(cls, settings: ReliabilitySettings | None = None) -> TorchReliability:
        """The estimator configured by ``settings`` (default: the documented defaults)."""
        s = settings if settings is not None else _DEFAULTS
        return cls(**{name: getattr(s, name) for name in TorchOptions.__dataclass_fields__})

    def fit(self, snapshot: RatingSnapshot, y: None = None) -> TorchReliability:
        """Fit to ``snapshot`` (``y`` is ignored); returns ``self``.

        Raises
        ------
        ValueError
            An out-of-range parameter (named), or a snapshot with inconsistent arrays.
        TypeError
            If ``snapshot`` is not a :class:`~truescore.domain.RatingSnapshot`.
        """
        if not isinstance(snapshot, RatingSnapshot):
            raise TypeError(f"TorchReliability.fit takes a RatingSnapshot, not {type(snapshot).__name__}")
        params = self.get_params()  # type: ignore[no-untyped-call]  # scikit-learn ships no annotations
        result = fit_torch(snapshot, TorchOptions.from_settings(None, **params))
        self.result_ = result
        self.item_mean_ = result.item_mean
        self.rater_precision_ = result.reliability
        self.loss_history_ = result.elbo_history
        self.delta_history_ = result.delta_history
        self.n_iter_ = result.n_iter
        return self
