"""Run every benchmark in turn (``make bench``); each writes its table to docs/results/."""

import sys

from bench.common import run_all

if __name__ == "__main__":
    sys.exit(run_all("bench", "_bench", sys.argv[1:]))
