"""truescore's batch work as Apache Spark jobs, Parquet in and Parquet out (optional extra ``spark``).

* :func:`truescore.spark.fit.spark_fit` -- the reliability fit (VB, default configuration and empirical
  Bayes) with the step kernels of :mod:`truescore.reliability.kernels`: the same numbers as ``truescore fit``;
* :func:`truescore.spark.score.spark_score` -- text scores of every review, models loaded once per worker,
  and the integrity engine's suspicion of every review and account (:mod:`truescore.spark.integrity`, on
  the driver: it needs all reviews at once);
* :func:`truescore.spark.rank.spark_rank` -- the public ranking (fused score, love score) per item;
* :func:`truescore.spark.results.import_results` -- a run's output folder into the store's derived tables.

Spark 4 needs Java 17 (``java`` on the PATH or ``JAVA_HOME``); :func:`truescore.spark.session.get_session`
says so in one line when it is missing. Nothing here is imported by the rest of the package.
"""

from __future__ import annotations

__all__: list[str] = []
