"""Starting a SparkSession for truescore's jobs, with a clear error when Java or pyspark is missing."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import warnings
from typing import Any

from truescore.errors import TruescoreError

__all__ = ["SparkUnavailableError", "get_session", "java_problem"]

#: Spark 4 runs on Java 17 or 21.
MIN_JAVA = 17


class SparkUnavailableError(TruescoreError, RuntimeError):
    """Spark cannot start here (no pyspark, no Java, or a Java that is too old)."""


def _java_binary() -> str | None:
    home = os.environ.get("JAVA_HOME")
    if home:
        path = os.path.join(home, "bin", "java")
        return path if os.access(path, os.X_OK) else None
    return shutil.which("java")


def java_problem() -> str | None:
    """None if a usable Java (>= 17) is found the way Spark looks for it, else what is wrong, in one line."""
    home = os.environ.get("JAVA_HOME")
    java = _java_binary()
    if java is None:
        where = f"JAVA_HOME={home} has no bin/java" if home else "no `java` on the PATH and JAVA_HOME is not set"
        return (f"Spark needs Java {MIN_JAVA}: {where}. Install it (Debian: apt-get install openjdk-17-jre-headless) "
                "or point JAVA_HOME at a Java 17 installation.")
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"Spark needs Java {MIN_JAVA}: `{java} -version` failed ({exc})."
    m = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not m:
        return f"Spark needs Java {MIN_JAVA}: could not read the version of {java}."
    major = int(m.group(1))
    if major == 1 and m.group(2):  # "1.8" style
        major = int(m.group(2))
    if major < MIN_JAVA:
        return f"Spark needs Java {MIN_JAVA} or newer; {java} is Java {major}."
    return None


def get_session(master: str | None = None, *, shuffle_partitions: int | None = None, driver_memory: str | None = None,
                app_name: str = "truescore", conf: dict[str, str] | None = None) -> Any:
    """The active SparkSession, or a new one on ``master`` (default ``local[2]``, or what spark-submit set).

    Raises
    ------
    SparkUnavailableError
        If pyspark is not installed (``pip install 'truescore[spark]'``) or Java 17 is missing.
    """
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas")
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise SparkUnavailableError("pyspark is not installed: pip install 'truescore[spark]'") from None
    active = SparkSession.getActiveSession()
    if active is None:
        problem = java_problem()
        if problem:
            raise SparkUnavailableError(problem)
        # local workers run this interpreter (its packages); on a cluster spark-submit's settings win
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app_name)
    submitted = "PYSPARK_GATEWAY_PORT" in os.environ  # under spark-submit: its --master and --conf hold
    if master or (active is None and not submitted):
        builder = builder.master(master or os.environ.get("TRUESCORE_SPARK_MASTER", "local[2]"))
    settings = {
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.showConsoleProgress": "false",
        **({"spark.driver.memory": driver_memory} if driver_memory else {}),
        **({"spark.sql.shuffle.partitions": str(shuffle_partitions)} if shuffle_partitions else {}),
        **(conf or {}),
    }
    for key, value in settings.items():
        builder = builder.config(key, value)
    try:
        spark = builder.getOrCreate()
    except Exception as exc:  # the JVM did not start
        raise SparkUnavailableError(f"Spark did not start: {str(exc).splitlines()[0]}") from exc
    if shuffle_partitions:
        spark.conf.set("spark.sql.shuffle.partitions", str(shuffle_partitions))
    elif active is None and not submitted and (spark.sparkContext.master or "").startswith("local"):
        # Spark's default of 200 shuffle partitions costs a Python task each per job on a laptop
        spark.conf.set("spark.sql.shuffle.partitions", str(spark.sparkContext.defaultParallelism))
    spark.sparkContext.setLogLevel("ERROR")
    if not spark.sparkContext.getCheckpointDir():
        spark.sparkContext.setCheckpointDir(tempfile.mkdtemp(prefix="truescore-spark-ckpt-"))
    return spark


def partitions(spark: Any) -> int:
    """The shuffle partition count of the session (the partitioning of every per-item / per-user job)."""
    return int(spark.conf.get("spark.sql.shuffle.partitions"))
