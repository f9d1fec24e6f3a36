"""Walking a trace's call tree, shared by the OTLP and ATIF exports."""

from __future__ import annotations

from ..trace import Trace


def child_run(trace: Trace, call: dict) -> dict | None:
    """The run a recursive `rlm(...)` sub-call opened: named by `child_run`, or (an interrupted run whose call was
    never amended) the run event whose parent is the call."""
    if call.get("child_run"):
        try:
            return trace.get(call["child_run"])
        except KeyError:
            pass
    runs = trace.children(call["id"], "run")
    return runs[0] if runs else None
