"""`Run`: what `rlm(...)` returns."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..trace import Trace
from ..trace.events import RUN_STATUSES, RunStatus

STATUSES = RUN_STATUSES  # the one list: trace/events.py
ERROR_KINDS = (
    "auth",
    "server",
    "bad_response",
    "unreachable",
    "timeout",
    "rate_limit",
    "not_found",
    "bad_request",
    "config",
    "model",
    "sandbox",
    "error",
)


@dataclass
class Run:
    """The outcome of one `rlm(...)` call.

    answer: the final answer, or the best partial answer when a budget, the iteration limit or an interrupt
    stopped the run (None when there was nothing to give). status: one of STATUSES; stopped_by names the budget
    when status == "budget". usage: `trace.usage()` (tokens, cost and calls per model over the whole call tree)
    plus `wall_s`. trace_path: the JSONL file the trace was written to while the run went (every run writes one by
    default, rlm_jupyter/trace/runs.py), None with trace=False.
    error_kind: when status == "error", what failed, one of ERROR_KINDS: "auth" (401/403, or no key), "server"
    (5xx), "bad_response" (not a chat completion), "unreachable" (connection failed), "timeout", "rate_limit",
    "not_found", "bad_request", "config", "model" (a local model), "sandbox" (the worker could not start or the
    only sandbox available was refused), "error" (anything else); error: that failure's message (redacted).
    """

    answer: str | None
    trace: Trace
    usage: dict
    status: RunStatus
    stopped_by: str | None = None
    trace_path: Path | None = None
    error_kind: str | None = None
    error: str | None = None

    def save(self, path: str | Path) -> Path:
        """Write this run's trace to `path` (a `.rlmtrace.jsonl` file, or a folder to put one in); returns the
        file, which becomes `trace_path` when the run had none (a run made with trace=False, saved afterwards)."""
        saved = self.trace.save(path)
        if self.trace_path is None:
            self.trace_path = saved
        return saved

    def __repr__(self) -> str:
        a = (self.answer or "").replace("\n", " ")
        a = a if len(a) <= 80 else a[:79] + "…"
        stop = f" ({self.stopped_by or self.error_kind})" if self.stopped_by or self.error_kind else ""
        tokens = self.usage.get("tokens_in", 0) + self.usage.get("tokens_out", 0)
        return (
            f"<Run {self.status}{stop}: {len(self.trace.of_type('step'))} steps, "
            f"{len(self.trace.of_type('sub_call'))} sub-calls, {tokens:,} tokens, "
            f"{self.usage.get('wall_s', 0):.1f} s; answer={a!r}>"
        )
