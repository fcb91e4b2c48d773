"""Entry point for ``spark-submit``: ``spark-submit [spark options] .../truescore/spark/submit.py fit|score|rank ...``.

The arguments after the script are those of ``truescore spark``; the master, executors and memory come
from spark-submit (the job uses the session spark-submit started). Print this file's path with
``python -c "import truescore.spark.submit as s; print(s.__file__)"``.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    from truescore.cli import main as cli_main

    cli_main(["spark", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    main()
