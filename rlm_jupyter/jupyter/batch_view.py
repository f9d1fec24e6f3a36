"""`BatchView`: the live display of `rj.batch(...)` in Jupyter, and of a finished BatchResult.

A progress bar with the totals (runs done / failed, tokens, cost, elapsed) updated as each run finishes, and the
list of finished rows, newest first, each with its status, question, session and answer; picking a row opens that
run's trace view (TraceView, from its .rlmtrace.jsonl) below the list. Rows update while the cell runs; a pick is
handled once the kernel is free (after the batch, or between runs when the batch is run with jupyter-ui-poll).
ipywidgets (a dependency of anywidget, the `lab` extra) is imported here only.
"""

from __future__ import annotations

import html
from pathlib import Path

import ipywidgets as W

STATUS_MARK = {"done": "✓", "error": "✗", "budget": "$", "interrupted": "■", "max_iterations": "…"}
MAX_OPTIONS = 2_000  # rows listed (newest first); all of them are in res.df


def _label(row: dict) -> str:
    q = (row.get("question") or "").replace("\n", " ")
    a = (row.get("answer") or row.get("error") or "").replace("\n", " ")
    where = f" [{str(row['session_id'])[:8]}]" if row.get("session_id") else ""
    model = f" {row['model']}" if row.get("model") else ""
    return (
        f"{STATUS_MARK.get(row.get('status'), '?')} {q[:60]}{where}{model} → {a[:60]}  "
        f"({row.get('steps', 0)} steps, {row.get('wall_s', 0):.1f} s)"
    )


class BatchView:
    """`widget`: the ipywidgets box. `on_row(row, progress)`: add one finished row. `open(key)`: show that run's
    trace view (what picking a row does); `opened`: the TraceView shown last."""

    def __init__(self, out, *, total: int, skipped: int = 0):
        self.out = Path(out)
        self.total, self.skipped = total, skipped
        self.rows: dict[str, dict] = {}
        self.opened = None
        self.bar = W.IntProgress(
            value=0,
            min=0,
            max=max(1, total - skipped),
            description="runs",
            bar_style="info",
            layout=W.Layout(width="60%"),
        )
        self.status = W.HTML(
            self._status_html({"finished": 0, "done": 0, "failed": 0, "tokens": 0, "cost_usd": 0.0, "elapsed_s": 0.0})
        )
        self.list = W.Select(options=[], rows=10, layout=W.Layout(width="100%"))
        self.list.observe(self._on_pick, names="value")
        self.trace_out = W.Output()
        self.widget = W.VBox([W.HBox([self.bar, self.status]), self.list, self.trace_out])

    @classmethod
    def from_result(cls, res) -> BatchView:
        df = res.df
        view = cls(res.out, total=df.height)
        p = {
            "finished": 0,
            "done": 0,
            "failed": 0,
            "tokens": 0,
            "cost_usd": 0.0,
            "elapsed_s": float(df["wall_s"].sum()) if df.height else 0.0,
        }
        for row in df.iter_rows(named=True):
            p["finished"] += 1
            p["done" if row["status"] == "done" else "failed"] += 1
            p["tokens"] += row.get("tokens") or 0
            p["cost_usd"] += row.get("cost_usd") or 0.0
            view.on_row(row, dict(p, total=df.height, skipped=0))
        if res.stopped:
            view.status.value += f"<br><b>stopped:</b> {html.escape(res.stopped)}"
        return view

    def show(self) -> None:
        from IPython.display import display

        display(self.widget)

    def on_row(self, row: dict, progress: dict) -> None:
        self.rows[row["key"]] = row
        self.bar.value = min(self.bar.max, progress["finished"])
        if progress.get("failed"):
            self.bar.bar_style = "warning"
        self.status.value = self._status_html(progress)
        options = [(_label(r), k) for k, r in reversed(self.rows.items())][:MAX_OPTIONS]
        picked = self.list.value
        self.list.options = options
        if picked in self.rows:
            self.list.value = picked

    def finish(self, job) -> None:
        self.bar.bar_style = "danger" if job.stopped else ("warning" if job.progress.get("failed") else "success")
        text = self._status_html(job.progress)
        if job.stopped:
            text += f"<br><b>stopped:</b> {html.escape(job.stopped)}"
        self.status.value = text

    def open(self, key: str):
        from .widget import TraceView

        row = self.rows[key]
        path = Path(row["trace"])
        self.trace_out.clear_output()
        if not path.exists():
            with self.trace_out:
                print(f"no trace for this run ({path}): it did not start ({row.get('error') or row['status']})")
            return None
        self.opened = TraceView.from_run(path)
        self.opened.status = {"max_iterations": "done"}.get(row["status"], row["status"])
        with self.trace_out:
            from IPython.display import display

            display(self.opened)
        return self.opened

    def _on_pick(self, change) -> None:
        if change["new"]:
            self.open(change["new"])

    def _status_html(self, p: dict) -> str:
        return (
            f"<span>{p.get('finished', 0)}/{max(0, self.total - self.skipped)} runs "
            f"({p.get('done', 0)} done, {p.get('failed', 0)} not done), {p.get('tokens', 0):,} tokens, "
            f"${p.get('cost_usd', 0.0):.4f}, {p.get('elapsed_s', 0.0):.1f} s"
            + (f"; {self.skipped} already in {html.escape(str(self.out))}" if self.skipped else "")
            + "</span>"
        )
