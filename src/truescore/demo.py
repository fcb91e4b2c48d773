"""The main job: build the synthetic marketplace into a store and run every engine over it.

:func:`build_demo_store` is what ``truescore demo`` (and ``make demo``) runs first; the engines then
read the store like any other.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from truescore.store import Store
from truescore.synth import SynthConfig, SynthWorld, generate

__all__ = ["DEMO_DB", "build_demo_store"]

DEMO_DB = "truescore-demo.db"


def build_demo_store(
    path: str | Path = DEMO_DB,
    config: SynthConfig | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> tuple[Store, SynthWorld]:
    """Generate the synthetic marketplace and write it into a fresh SQLite store at ``path``.

    An existing file at ``path`` (and its WAL side files) is replaced, so the demo always starts from
    the same world.
    """
    p = Path(path)
    for suffix in ("", "-wal", "-shm"):
        Path(str(p) + suffix).unlink(missing_ok=True)
    world = generate(config or SynthConfig())
    store = Store.open(f"sqlite:///{p}")
    world.write(store, progress=progress)
    return store, world
