"""The `out` folder of a batch: `rows.jsonl` (one line per finished run, appended and flushed as it finishes, so
an interrupted batch keeps every finished row), `traces/KEY.rlmtrace.jsonl`, and `results.parquet`, built from
rows.jsonl (the last line of each key wins) whenever the batch stops."""

from __future__ import annotations

import json
import threading
from pathlib import Path

# A row with one of these statuses is run again by the next batch over the same folder.
RERUN_STATUSES = ("interrupted",)


class Store:
    def __init__(self, out):
        self.out = Path(out).expanduser()
        self.traces = self.out / "traces"
        self.traces.mkdir(parents=True, exist_ok=True)
        self.rows_path = self.out / "rows.jsonl"
        self.parquet_path = self.out / "results.parquet"
        self._lock = threading.Lock()

    def trace_path(self, key: str) -> Path:
        return self.traces / f"{key}.rlmtrace.jsonl"

    def finished(self, *, rerun_errors: bool = False) -> dict[str, dict]:
        """Rows already on disk that a re-run skips: key -> row. A torn last line (the process died while writing
        it) is ignored: that run is made again."""
        done: dict[str, dict] = {}
        for row in self.read_rows():
            if row["status"] in RERUN_STATUSES or (rerun_errors and row["status"] == "error"):
                done.pop(row["key"], None)
            else:
                done[row["key"]] = row
        return done

    def read_rows(self) -> list[dict]:
        if not self.rows_path.exists():
            return []
        rows = []
        with self.rows_path.open("rb") as f:
            for line in f:
                try:
                    row = json.loads(line)
                except ValueError:
                    continue
                if isinstance(row, dict) and "key" in row and "status" in row:
                    rows.append(row)
        return rows

    def append(self, row: dict) -> None:
        line = json.dumps(row, ensure_ascii=False, default=str) + "\n"
        with self._lock, self.rows_path.open("a", encoding="utf-8") as f:
            f.write(line)
            f.flush()

    def write_parquet(self):
        """results.parquet from rows.jsonl: one row per key (its latest line), in plan order. Returns the frame."""
        import polars as pl

        latest: dict[str, dict] = {}
        for row in self.read_rows():
            latest[row["key"]] = row
        rows = sorted(latest.values(), key=lambda r: r.get("index", 0))
        df = pl.DataFrame(rows, infer_schema_length=None) if rows else pl.DataFrame(schema={"key": pl.String})
        tmp = self.parquet_path.with_suffix(".parquet.tmp")
        df.write_parquet(tmp)
        tmp.replace(self.parquet_path)
        return df
