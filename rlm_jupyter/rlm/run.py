"""`Run`: what `rlm(...)` returns."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..trace import Trace

STATUSES = ("done", "budget", "interrupted", "error", "max_iterations")


@dataclass
class Run:
    """The outcome of one `rlm(...)` call.

    answer: the final answer, or the best partial answer when a budget, the iteration limit or an interrupt
    stopped the run (None when there was nothing to give). status: one of STATUSES; stopped_by names the budget
    when status == "budget". usage: `trace.usage()` (tokens, cost and calls per model over the whole call tree)
    plus `wall_s`. trace_path: the JSONL file the trace was written to while the run went, if any.
    """

    answer: str | None
    trace: Trace
    usage: dict
    status: str
    stopped_by: str | None = None
    trace_path: Path | None = None

    def __repr__(self) -> str:
        a = (self.answer or "").replace("\n", " ")
        a = a if len(a) <= 80 else a[:79] + "…"
        stop = f" ({self.stopped_by})" if self.stopped_by else ""
        tokens = self.usage.get("tokens_in", 0) + self.usage.get("tokens_out", 0)
        return (f"<Run {self.status}{stop}: {len(self.trace.of_type('step'))} steps, "
                f"{len(self.trace.of_type('sub_call'))} sub-calls, {tokens:,} tokens, "
                f"{self.usage.get('wall_s', 0):.1f} s; answer={a!r}>")
