"""The one place the jobs read the process-wide settings.

The engines never read :func:`truescore.config.get_settings`: they take their section as an argument.
The doors (CLI, API, Spark, demo) load the settings once and pass them to the jobs; a job called from
the library without settings runs with the process-wide ones (``truescore.toml``, ``TRUESCORE_*``),
as the CLI would, because the jobs are the library's door onto a store.
"""

from __future__ import annotations

from truescore.config import Settings, get_settings

__all__ = ["job_settings"]


def job_settings(settings: Settings | None) -> Settings:
    """``settings`` if given, else the process-wide settings (:func:`~truescore.config.get_settings`)."""
    return settings if settings is not None else get_settings()
