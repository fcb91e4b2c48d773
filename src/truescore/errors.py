"""The one base of truescore's own errors, and the errors of results that jobs read from the store.

Every error truescore raises on purpose derives from :class:`TruescoreError`, besides the built-in class
that says what kind of failure it is (``ValueError`` for a refused value, ``RuntimeError`` for a state
that does not allow the call), so ``except TruescoreError`` catches ours and nothing else, and code that
already catches ``ValueError`` keeps working. The HTTP API maps them to 4xx / 503 answers, the CLI to one
line and exit code 1.

=============================  ==================================================================
class                          raised when
=============================  ==================================================================
``ConfigError``                a setting is out of its range (config.py)
``RuleError``                  an event breaks a write rule (domain.py)
``ImportValidationError``      rows of an import are invalid (store/ingest.py)
``StoreError``                 the store cannot be opened or used (store/errors.py)
``MissingResultError``         a job needs another job's stored results and there are none
``StaleResultError``           those results were computed before later events
``DataUnavailable``            a reference data set is not on this machine (text/datasets.py)
``SparkUnavailableError``      Spark (or Java) is not installed (spark/session.py)
=============================  ==================================================================
"""

from __future__ import annotations

__all__ = ["MissingResultError", "StaleResultError", "TruescoreError"]


class TruescoreError(Exception):
    """Base of every error truescore raises on purpose."""


class MissingResultError(TruescoreError, LookupError):
    """A job needs results that another job stores (a fit, suspicion, text scores) and they are missing."""


class StaleResultError(TruescoreError, RuntimeError):
    """Stored results were computed from the events as they were before later writes."""
