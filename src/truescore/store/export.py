"""Export a table of the store to CSV, JSON Lines or Parquet.

CSV files are opened by spreadsheets, which run a cell that starts with ``=``, ``+``, ``-``, ``@``, a
tab or a carriage return as a formula (``=HYPERLINK(...)`` in a review title becomes a link, or worse).
:func:`neutralise_formulas` prefixes such text cells with ``'`` so that they show as text (OWASP's advice
for CSV injection); numbers are not touched. JSON Lines and Parquet keep every value exactly, so use
them for round trips.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from truescore.store.store import Store

__all__ = ["EXPORT_FORMATS", "FORMULA_PREFIXES", "export_table", "neutralise_formulas"]

#: cell starts that spreadsheets read as a formula
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
EXPORT_FORMATS = (".csv", ".jsonl", ".parquet")


def neutralise_formulas(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``df`` whose text cells that start like a formula begin with ``'`` instead."""
    out = df.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col].dtype):
            out[col] = out[col].map(lambda v: "'" + v if isinstance(v, str) and v.startswith(FORMULA_PREFIXES)
                                    else v)
    return out


def export_table(store: Store, table: str, out: str | Path) -> int:
    """Write ``table`` to ``out`` (format from the extension: .csv, .jsonl or .parquet); returns the rows.

    Raises
    ------
    ValueError
        For another extension.
    """
    path = Path(out)
    suffix = path.suffix.lower()
    if suffix not in EXPORT_FORMATS:
        raise ValueError(f"{path}: use a .csv, .jsonl or .parquet file name")
    df = store.read_table(table)
    if suffix == ".csv":
        # CRLF rows (RFC 4180): a cell holding a CR or LF is then quoted, not split across rows
        neutralise_formulas(df).to_csv(path, index=False, lineterminator="\r\n")
    elif suffix == ".jsonl":
        df.to_json(path, orient="records", lines=True)
    else:
        df.to_parquet(path, index=False)
    return len(df)
