"""Item quality and rater reliability from ratings (seed 000).

``fit(snapshot)`` runs the default closed-form variational Bayes engine (:mod:`.vb`);
``fit(snapshot, backend="torch")`` runs the seed's PyTorch model (:mod:`.torch_nll`); :mod:`.online`
updates a fit as ratings stream in. All return a :class:`ReliabilityResult`; :func:`derived_records`
gives its rows of the ``item_quality`` and ``user_reliability`` derived tables, which the fit job
(:func:`truescore.jobs.run_fit`) writes. The math is in
docs/reliability.md.
"""

from __future__ import annotations

from typing import Any

from truescore.config import ReliabilitySettings, Settings
from truescore.domain import RatingSnapshot
from truescore.reliability._types import (
    Hyperparameters,
    ItemQuality,
    RaterReliability,
    ReliabilityResult,
    derived_records,
)
from truescore.reliability.online import OnlineReliability, OnlineUpdate
from truescore.reliability.torch_nll import TorchOptions, TorchReliability, fit_torch
from truescore.reliability.vb import VBOptions, VBReliability, VBState, fit_vb

__all__ = [
    "Hyperparameters",
    "ItemQuality",
    "OnlineReliability",
    "OnlineUpdate",
    "RaterReliability",
    "ReliabilityResult",
    "TorchOptions",
    "TorchReliability",
    "VBOptions",
    "VBReliability",
    "VBState",
    "derived_records",
    "fit",
    "fit_torch",
    "fit_vb",
]


def _section(settings: ReliabilitySettings | Settings | None) -> ReliabilitySettings:
    if settings is None:
        return ReliabilitySettings()
    if isinstance(settings, Settings):
        return settings.reliability
    if isinstance(settings, ReliabilitySettings):
        return settings
    raise ValueError(f"settings must be Settings or ReliabilitySettings, not {type(settings).__name__}")


def fit(snapshot: RatingSnapshot, settings: ReliabilitySettings | Settings | None = None,
        backend: str | None = None, **overrides: Any) -> ReliabilityResult:
    """Fit item quality and rater reliability to ``snapshot``.

    Parameters
    ----------
    snapshot : RatingSnapshot
    settings : ReliabilitySettings or Settings, optional
        Default: the documented defaults (``ReliabilitySettings()``). The doors (CLI, API, jobs) pass the
        configured section (``truescore.toml``, ``TRUESCORE_RELIABILITY__*``).
    backend : {"vb", "torch"}, optional
        Default: ``settings.backend`` ("vb").
    **overrides
        Any :class:`~truescore.config.ReliabilitySettings` field, e.g. ``use_bias=True``.

    Returns
    -------
    ReliabilityResult

    Raises
    ------
    ValueError
        Unknown backend, out-of-range setting, or inconsistent snapshot arrays.
    """
    section = _section(settings)
    chosen = backend if backend is not None else section.backend
    if chosen == "vb":
        return fit_vb(snapshot, VBOptions.from_settings(section, **overrides))
    if chosen == "torch":
        return fit_torch(snapshot, TorchOptions.from_settings(section, **overrides))
    raise ValueError(f"backend must be 'vb' or 'torch', not {chosen!r}")
