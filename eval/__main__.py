"""Run every evaluation in turn (``make eval``); each writes its table to docs/results/."""

import sys

from bench.common import run_all

if __name__ == "__main__":
    sys.exit(run_all("eval", "_eval", sys.argv[1:]))
