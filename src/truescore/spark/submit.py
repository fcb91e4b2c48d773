"""Entry point for ``spark-submit``: ``spark-submit [spark options] .../truescore/spark/submit.py fit|score|rank ...``.

The arguments after the script are those of ``truescore spark``; the master, executors and memory come
from spark-submit (the job uses the session spark-submit started). Print this file's path with
``python -c "import truescore.spark.submit as s; print(s.__file__)"``.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    """Run ``truescore spark ARGS`` with the command line's error handling (one line, exit code 1)."""
    from truescore.console import run_app
    from truescore.spark.cli import spark_app

    run_app(spark_app, sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    main()
