"""Find the session histories that agents keep on this machine, without parsing them."""

from __future__ import annotations

import os
from pathlib import Path

from . import formats


def find(home: str | os.PathLike | None = None) -> list[tuple[str, Path]]:
    """(format, path) of every session store found under `home` (default: the user's home)."""
    base = Path(home).expanduser() if home is not None else Path.home()
    found: list[tuple[str, Path]] = []
    for mod in formats.modules():
        fn = mod.discover
        if fn is None:
            continue
        try:
            found.extend((mod.NAME, Path(p)) for p in fn(base))
        except OSError:
            continue  # an unreadable folder of one agent must not hide the others
    return found


def discover(home: str | os.PathLike | None = None):
    """A polars DataFrame of the sessions found, newest first: format, path, modified, size_bytes."""
    import polars as pl

    rows = []
    for fmt, path in find(home):
        try:
            st = path.stat()
        except OSError:
            continue
        size = st.st_size if path.is_file() else sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
        rows.append({"format": fmt, "path": str(path), "modified": int(st.st_mtime * 1_000_000), "size_bytes": size})
    df = pl.DataFrame(
        rows, schema={"format": pl.String, "path": pl.String, "modified": pl.Int64, "size_bytes": pl.Int64}
    )
    return df.with_columns(pl.col("modified").cast(pl.Datetime("us", "UTC"))).sort("modified", descending=True)
