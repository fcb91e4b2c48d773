"""Dotted trust domains and the topic-inheritance chain of seed 003 (QRP-0001, factor T).

A topic such as ``reviews.public.technology.laptops`` is a path in a tree of domains. Trust stated in a
parent domain carries into its children with a decay per step up: for the topic above the chain is

====================================  =====  ============
domain                                steps  multiplier
====================================  =====  ============
reviews.public.technology.laptops     0      1
reviews.public.technology             1      decay
reviews.public                        2      decay ** 2
====================================  =====  ============

and stops at the two-segment root (``reviews.public``); trust stated in a sibling domain (for example
``reviews.public.food``) never enters the chain.
"""

from __future__ import annotations

from truescore.domain import clean_topic, topic_within

__all__ = ["MIN_CHAIN_SEGMENTS", "is_within", "topic_chain", "validate_topic"]

#: The chain stops at a domain of this many segments (``reviews.public``).
MIN_CHAIN_SEGMENTS = 2


def validate_topic(topic: str, field: str = "topic") -> str:
    """Return ``topic`` stripped, or raise ``ValueError`` naming ``field`` if it breaks the topic rule.

    The rule is the one every entry point uses (:func:`truescore.domain.clean_topic`): dotted, lower-case
    letters, digits, ``_`` and ``-`` in non-empty segments, at most 512 characters. The engine accepts
    exactly what the importer and the API accept.

    Raises
    ------
    ValueError
        (:class:`truescore.domain.RuleError`) if ``topic`` is not a string or not such a name.
    """
    return clean_topic(topic, field)


def topic_chain(topic: str) -> list[tuple[str, int]]:
    """Domains whose trust applies to ``topic``, most specific first, with their step count.

    Parameters
    ----------
    topic : str
        Dotted domain of the item (``reviews.public.technology.laptops``).

    Returns
    -------
    list of (domain, steps)
        ``topic`` itself with 0 steps, then each parent with 1, 2, ... steps, down to the domain with
        :data:`MIN_CHAIN_SEGMENTS` segments. A topic that has that many segments or fewer is its own
        whole chain.

    Examples
    --------
    >>> topic_chain("reviews.public.technology.laptops")
    [('reviews.public.technology.laptops', 0), ('reviews.public.technology', 1), ('reviews.public', 2)]
    >>> topic_chain("reviews")
    [('reviews', 0)]
    """
    parts = validate_topic(topic).split(".")
    stop = min(len(parts), MIN_CHAIN_SEGMENTS)
    return [(".".join(parts[:n]), len(parts) - n) for n in range(len(parts), stop - 1, -1)]


def is_within(topic: str, root: str) -> bool:
    """Whether ``topic`` is ``root`` or one of its subtopics (:func:`truescore.domain.topic_within`)."""
    return topic_within(topic, root)
