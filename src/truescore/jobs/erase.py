"""The erase job: remove a user and everything they authored, then bring the stored results up to date."""

from __future__ import annotations

from dataclasses import dataclass

from truescore.config import Settings
from truescore.jobs._config import job_settings
from truescore.jobs.fit import run_fit
from truescore.jobs.rank import rank_store
from truescore.store import Store, service
from truescore.store.service import ErasureReport

__all__ = ["EraseReport", "erase_user", "store_has_results"]


@dataclass(frozen=True, slots=True)
class EraseReport:
    """What :func:`erase_user` did: the erasure's counts, and whether the engines were refitted."""

    erasure: ErasureReport
    refitted: bool


def store_has_results(store: Store) -> bool:
    """Whether the store holds fitted results that an erasure makes stale (a fit or a ranking)."""
    return store.last_run("fit") is not None or bool(store.read_derived("product_rankings"))


def erase_user(store: Store, user_id: str, *, key_id: str | None = None, refit: bool = True,
               settings: Settings | None = None) -> EraseReport:
    """Erase ``user_id`` (:func:`truescore.store.service.erase_user`: one transaction, audited with counts
    only) and, with ``refit`` and when the store holds fitted results, refit the reliability engine and
    the integrity evidence and store the public ranking again, so no stored estimate still counts the
    user's ratings."""
    cfg = job_settings(settings)
    report = service.erase_user(store, user_id, key_id=key_id)
    if not (refit and store_has_results(store) and store.snapshot().n_ratings):
        return EraseReport(report, refitted=False)
    fitted = run_fit(store, settings=cfg)
    rank_store(store, settings=cfg, reliability=fitted.result, refit=True, write=True)
    return EraseReport(report, refitted=True)
