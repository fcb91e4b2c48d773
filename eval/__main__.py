"""Run every evaluation in turn (``make eval``); each writes its table to docs/results/."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
import time
from pathlib import Path


def main() -> int:
    here = Path(__file__).parent
    names = sorted(m.name for m in pkgutil.iter_modules([str(here)]) if m.name.endswith("_eval"))
    failed = []
    for name in names:
        started = time.perf_counter()
        print(f"== eval.{name}", flush=True)
        if subprocess.run([sys.executable, "-m", f"eval.{name}", *sys.argv[1:]]).returncode != 0:
            failed.append(name)
        print(f"== eval.{name}: {time.perf_counter() - started:.0f} s", flush=True)
    if failed:
        print("failed: " + ", ".join(failed), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    importlib.invalidate_caches()
    sys.exit(main())
