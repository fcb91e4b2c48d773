"""The fit job: the reliability engine over a store's current ratings, written to the derived tables.

:func:`run_fit` reads ``store.snapshot(topic)``, fits item quality and rater reliability (closed-form
VB by default, the seed's torch model with ``backend="torch"``), writes ``item_quality`` and
``user_reliability`` stamped with the model version, and records the run (model version, the store's
change sequence when it read the ratings, the fitted hyperparameters) so that the ranking can read the
fit back instead of refitting (:func:`stored_fit`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from truescore.config import ReliabilitySettings, Settings
from truescore.domain import RatingSnapshot
from truescore.jobs._config import job_settings
from truescore.reliability import Hyperparameters, ReliabilityResult, derived_records, fit
from truescore.reliability.report import ENGINE_VERSION
from truescore.reliability.torch_nll import TorchOptions, fit_torch
from truescore.store import Store

__all__ = ["FitReport", "fit_summary", "run_fit", "stored_fit", "write_result"]

#: the job's name in the store's ``model_runs`` table
JOB = "fit"


@dataclass(frozen=True, slots=True)
class FitReport:
    """What :func:`run_fit` did."""

    result: ReliabilityResult
    model_version: str
    items_written: int
    users_written: int


def _section(settings: ReliabilitySettings | Settings | None) -> ReliabilitySettings:
    if isinstance(settings, ReliabilitySettings):
        return settings
    return job_settings(settings).reliability


def write_result(store: Store, result: ReliabilityResult, model_version: str, *, seq: int | None = None,
                 topic: str | None = None) -> tuple[int, int]:
    """Write ``result`` to the ``item_quality`` and ``user_reliability`` tables and record the run.

    ``seq`` is the store's change sequence when the ratings were read (default: now). A fit of one topic
    is written but not recorded as the store's fit (it does not cover every rating). Returns the numbers
    of item and user rows written.
    """
    if not model_version:
        raise ValueError("model_version must be a non-empty string, e.g. 'vb-1'")
    items, users = derived_records(result)
    n_items = store.write_derived("item_quality", items, model_version)
    n_users = store.write_derived("user_reliability", users, model_version)
    if topic is None:
        h = result.hyper
        store.record_run(JOB, model_version, seq=store.change_seq() if seq is None else seq,
                         details={"backend": result.backend, "mu0": h.mu0, "tau0": h.tau0, "a0": h.a0, "b0": h.b0,
                                  "tau_b": h.tau_b, "n_items": result.n_items, "n_users": result.n_users,
                                  "credible_level": result.credible_level})
    return int(n_items), int(n_users)


def run_fit(store: Store, *, backend: str | None = None, topic: str | None = None,
            settings: ReliabilitySettings | Settings | None = None, model_version: str | None = None,
            progress: Callable[[int, int], None] | None = None) -> FitReport:
    """Fit ``store.snapshot(topic)`` and write ``item_quality`` / ``user_reliability``.

    The model version is ``"<backend>-<ENGINE_VERSION>"`` (e.g. ``"vb-1"``) unless given.
    ``progress(done, total)`` receives epochs of the torch backend.
    """
    section = _section(settings)
    chosen = backend or section.backend
    seq = store.change_seq()
    snapshot = store.snapshot(topic)
    if chosen == "torch" and progress is not None:
        result = fit_torch(snapshot, TorchOptions.from_settings(section), progress=progress)
    else:
        result = fit(snapshot, section, backend=chosen)
    version = model_version or f"{chosen}-{ENGINE_VERSION}"
    n_items, n_users = write_result(store, result, version, seq=seq, topic=topic) if snapshot.n_ratings else (0, 0)
    return FitReport(result=result, model_version=version, items_written=n_items, users_written=n_users)


def fit_summary(report: FitReport) -> str:
    """One line: model version, sizes, iterations, time, rows written."""
    res = report.result
    unit = "epochs" if res.backend == "torch" else "sweeps"
    return (f"{report.model_version}: {res.n_items:,} items, {res.n_users:,} raters, "
            f"{int(res.item_n_ratings.sum()):,} ratings; {res.n_iter} {unit}, converged={res.converged}, "
            f"{res.fit_seconds:.2f} s; wrote {report.items_written:,} item and {report.users_written:,} rater rows")


def stored_fit(store: Store, snapshot: RatingSnapshot) -> ReliabilityResult:
    """The fit stored by the last :func:`run_fit`, as a :class:`ReliabilityResult` over ``snapshot``'s
    items and raters (the fields the ranking and the integrity engine read: reliability with its interval,
    bias, item quality; the Gamma posterior and the histories are not stored and are NaN / empty).

    Raises
    ------
    MissingResultError
        No fit is stored, or a rater or item of ``snapshot`` has no stored row.
    StaleResultError
        Events were written after the fit read its ratings.
    """
    from truescore.errors import MissingResultError
    from truescore.jobs.results import require_fresh

    run = require_fresh(store, JOB, "reliability fit", "truescore fit")
    d = run.details
    users = {r["user_id"]: r for r in store.read_derived("user_reliability")}
    items = {r["item_id"]: r for r in store.read_derived("item_quality")}
    missing_users = [u for u in snapshot.user_ids if u not in users]
    missing_items = [i for i in snapshot.item_ids if i not in items]
    if missing_users or missing_items:
        what = (f"rater {missing_users[0]!r}" if missing_users else f"item {missing_items[0]!r}")
        raise MissingResultError(f"the stored reliability fit ({run.model_version}) has no row for {what}: "
                                 "run `truescore fit`, or rank with --refit")
    u_rows = [users[u] for u in snapshot.user_ids]
    i_rows = [items[i] for i in snapshot.item_ids]

    def col(rows: list[dict[str, object]], name: str, dtype: type = float) -> np.ndarray:
        return np.array([r[name] for r in rows], dtype=dtype)

    span = snapshot.item_max - snapshot.item_min
    quality, quality_sd = col(i_rows, "quality"), col(i_rows, "quality_sd")
    nan_u = np.full(snapshot.n_users, np.nan)
    return ReliabilityResult(
        backend=str(d.get("backend", run.model_version.split("-")[0])), item_ids=snapshot.item_ids,
        item_mean=(quality - snapshot.item_min) / span, item_sd=quality_sd / span, item_quality=quality,
        item_quality_sd=quality_sd, item_n_ratings=col(i_rows, "n_ratings", np.int64),
        item_effective_weight=col(i_rows, "effective_weight"), user_ids=snapshot.user_ids,
        reliability=col(u_rows, "reliability"), reliability_lo=col(u_rows, "reliability_lo"),
        reliability_hi=col(u_rows, "reliability_hi"), rater_shape=nan_u, rater_rate=nan_u.copy(),
        bias=col(u_rows, "bias"), bias_sd=nan_u.copy(), user_n_ratings=col(u_rows, "n_ratings", np.int64),
        hyper=Hyperparameters(mu0=float(d["mu0"]), tau0=float(d["tau0"]), a0=float(d["a0"]), b0=float(d["b0"]),
                              tau_b=float(d["tau_b"])),
        elbo_history=np.empty(0), delta_history=np.empty(0), n_iter=0, converged=True, fit_seconds=0.0,
        credible_level=float(d.get("credible_level", ReliabilitySettings().credible_level)),
        item_min=snapshot.item_min, item_max=snapshot.item_max,
        extras={"model_version": run.model_version, "stored": True},
    )
