"""`BatchResult`: what `rj.batch(...)` returns. The frame is read from `out/results.parquet` (the driver keeps no
run in memory), so `BatchResult.load(out)` in a later session gives the same thing."""

from __future__ import annotations

import html
from pathlib import Path

from ..context.errors import ArgumentError

# What `compare` and `summary` aggregate per group.
_SUMMARY_COLUMNS = ("status", "steps", "sub_calls", "tokens", "cost_usd", "wall_s")


class BatchResult:
    """`df`: one row per run (inputs, answer, status, stopped_by, steps, sub_calls, tokens, cost_usd, wall_s, error,
    trace). `stopped`: why the batch stopped before every row was run (None when it ran them all).
    `compare(by=...)`: the same questions side by side across the values of a column. `trace(i)` / `view(i)`: row
    i's trace, as a Trace or as the trace view widget."""

    def __init__(self, out, stopped: str | None = None, *, executor: str | None = None, progress: dict | None = None):
        self.out = Path(out)
        self.stopped = stopped
        self.executor = executor
        self.progress = progress or {}
        self._df = None

    @classmethod
    def load(cls, out) -> BatchResult:
        out = Path(out)
        if not (out / "results.parquet").exists() and not (out / "rows.jsonl").exists():
            raise ArgumentError(f"batch: {out} holds no batch (no results.parquet nor rows.jsonl)")
        return cls(out)

    @property
    def df(self):
        if self._df is None:
            import polars as pl

            path = self.out / "results.parquet"
            if path.exists():
                self._df = pl.read_parquet(path)
            else:  # written by a batch that was killed before it could build the parquet file
                from .store import Store

                self._df = Store(self.out).write_parquet()
        return self._df

    def __len__(self) -> int:
        return self.df.height

    def inputs(self) -> list[str]:
        """The input columns (question, session_id, model, sub_model and the questions frame's own)."""
        from .plan import OUTPUT_COLUMNS

        return [c for c in self.df.columns if c not in OUTPUT_COLUMNS and c != "error_detail"]

    def compare(self, by: str = "model", values: str = "answer"):
        """One row per run without `by` (question, session, ...), one column per value of `by` holding `values`
        (default the answer), then a `<value> status` column per value of `by`."""
        import polars as pl

        df = self.df
        if by not in df.columns:
            raise ArgumentError(f"compare: no column {by!r}; columns are {', '.join(df.columns)}")
        index = [c for c in self.inputs() if c != by and df[c].null_count() < df.height]
        if not index:
            raise ArgumentError(f"compare: nothing to line the runs up by besides {by!r}")
        wide = df.pivot(on=by, index=index, values=values, aggregate_function="first")
        status = df.with_columns(pl.col(by).cast(pl.String) + " status").pivot(
            on=by, index=index, values="status", aggregate_function="first"
        )
        return wide.join(status, on=index, how="left", nulls_equal=True)

    def summary(self, by: str = "model"):
        """Per value of `by`: runs, done, failed, mean steps / sub-calls / wall time, total tokens and cost."""
        import polars as pl

        if by not in self.df.columns:
            raise ArgumentError(f"summary: no column {by!r}; columns are {', '.join(self.df.columns)}")
        return self.df.group_by(by, maintain_order=True).agg(
            pl.len().alias("runs"),
            (pl.col("status") == "done").sum().alias("done"),
            (pl.col("status") != "done").sum().alias("failed"),
            pl.col("steps").mean().alias("mean_steps"),
            pl.col("sub_calls").mean().alias("mean_sub_calls"),
            pl.col("tokens").sum().alias("tokens"),
            pl.col("cost_usd").sum().alias("cost_usd"),
            pl.col("wall_s").mean().alias("mean_wall_s"),
        )

    def trace(self, i: int):
        from ..trace import Trace

        return Trace.load(self._trace_path(i))

    def view(self, i: int):
        """Row i's trace in the trace view (needs the `lab` extra)."""
        from ..jupyter.widget import TraceView

        return TraceView.from_run(self._trace_path(i))

    def _trace_path(self, i: int) -> Path:
        if not -self.df.height <= i < self.df.height:
            raise ArgumentError(f"batch: row {i} does not exist; rows are 0..{self.df.height - 1}")
        p = Path(self.df["trace"][i])
        if not p.exists():
            raise ArgumentError(f"batch: the trace of row {i} ({p}) is missing; its run may not have started")
        return p

    def __repr__(self) -> str:
        df = self.df
        counts = df["status"].value_counts(sort=True).iter_rows() if df.height else []
        status = ", ".join(f"{n} {s}" for s, n in counts) or "no runs"
        stop = f"\n  stopped: {self.stopped}" if self.stopped else ""
        cost = float(df["cost_usd"].sum()) if "cost_usd" in df.columns else 0.0
        return f"<BatchResult {df.height} runs ({status}), ${cost:.4f}, out={self.out}>{stop}"

    def _ipython_display_(self) -> None:
        """In a kernel: the batch view (progress, rows that open their trace view); else the static table."""
        from IPython.display import display

        try:
            from ..jupyter.batch_view import BatchView
        except ImportError:  # no ipywidgets (the `lab` extra): the static table
            display({"text/html": self._repr_html_(), "text/plain": repr(self)}, raw=True)
            return
        BatchView.from_result(self).show()

    def _repr_html_(self) -> str:
        """A static table (the live view, with rows that open their trace, is rlm_jupyter.jupyter.batch_view)."""
        df = self.df
        cols = [
            c
            for c in (
                "question",
                "session_id",
                "model",
                "status",
                "answer",
                "steps",
                "tokens",
                "cost_usd",
                "wall_s",
                "error",
            )
            if c in df.columns
        ]
        head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
        body = []
        for r in df.head(200).iter_rows(named=True):
            cells = "".join(f"<td>{html.escape(_cut(r[c]))}</td>" for c in cols)
            body.append(f"<tr>{cells}</tr>")
        more = f"<p>… {df.height - 200} more rows in .df</p>" if df.height > 200 else ""
        stop = f"<p><b>stopped:</b> {html.escape(self.stopped)}</p>" if self.stopped else ""
        return (
            f"<div><p>{html.escape(repr(self))}</p>{stop}<table><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>{more}</div>"
        )


def _cut(v, width: int = 120) -> str:
    s = "" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v))
    s = s.replace("\n", " ")
    return s if len(s) <= width else s[: width - 1] + "…"
