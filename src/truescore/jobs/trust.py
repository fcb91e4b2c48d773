"""The trust engine over a store: a :class:`~truescore.trust.Rater` built from the store's current events."""

from __future__ import annotations

from truescore.config import PersonalSettings, Settings, TrustSettings
from truescore.jobs._config import job_settings
from truescore.store import Store
from truescore.trust import Rater

__all__ = ["rater_from_store"]


def rater_from_store(store: Store, settings: Settings | TrustSettings | None = None,
                     personal: PersonalSettings | None = None) -> Rater:
    """Load the current trust edges, reviews, votes, flags, items and user roles of ``store`` into a Rater.

    Uses ``store.trust_frame()`` (latest statement per edge, expired and withdrawn ones dropped),
    ``review_frame(with_text=False)``, ``vote_frame()``, ``flag_frame()``, ``item_frame()`` and
    ``user_frame()``.

    Parameters
    ----------
    settings : Settings or TrustSettings, optional
        The settings (their ``trust`` and ``personal`` sections) or the trust section alone; default the
        process-wide settings (:func:`~truescore.jobs._config.job_settings`).
    personal : PersonalSettings, optional
        The personal estimate's section; default that of the settings (of the process-wide settings when
        ``settings`` is a trust section).
    """
    if isinstance(settings, TrustSettings):
        trust = settings
        personal = personal if personal is not None else job_settings(None).personal
    else:
        cfg = job_settings(settings)
        trust, personal = cfg.trust, personal if personal is not None else cfg.personal
    return Rater.from_frames(store.trust_frame(), store.review_frame(with_text=False), store.vote_frame(),
                             store.flag_frame(), store.item_frame(), store.user_frame(), settings=trust,
                             personal=personal)
