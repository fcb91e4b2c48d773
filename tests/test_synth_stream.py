"""The streamed synthetic reviews Parquet (benchmarks' 10 M / 100 M ratings)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from truescore.synth import STREAM_COLUMNS, write_ratings_parquet


def test_streamed_file_is_written_in_row_groups_with_the_export_layout(tmp_path: Path) -> None:
    path = tmp_path / "r.parquet"
    seen: list[int] = []
    info = write_ratings_parquet(path, 20_000, chunk=7_000, seed=3, progress=lambda done, total: seen.append(done))
    meta = pq.ParquetFile(path)
    assert meta.metadata.num_rows == 20_000 and meta.metadata.num_row_groups == 3
    assert seen == [7_000, 14_000, 20_000]
    df = meta.read().to_pandas()
    assert tuple(df.columns) == STREAM_COLUMNS
    assert df["id"].is_unique and df["supersedes"].isna().all()
    assert set(np.unique(df["rating"])) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    assert np.all(np.diff(df["created_at"].to_numpy()) > 0)
    assert df["user_id"].nunique() <= info["n_users"] == 1_000 and df["item_id"].nunique() <= info["n_items"] == 100
    # the planted quality shows through: better items get better stars on average
    q = info["item_quality"][df["item_id"].str[1:].astype(int).to_numpy()]
    assert np.corrcoef(q, df["rating"].to_numpy())[0, 1] > 0.3
    again = tmp_path / "again.parquet"
    write_ratings_parquet(again, 20_000, chunk=7_000, seed=3)
    assert pq.read_table(again).equals(pq.read_table(path))


def test_streamed_writer_refuses_nonsense(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="n_ratings and chunk"):
        write_ratings_parquet(tmp_path / "x.parquet", 0)
