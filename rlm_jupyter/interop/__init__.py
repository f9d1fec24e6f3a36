"""Runs and sessions out to other tools: OTLP spans with OpenInference attributes (Phoenix, Langfuse, any
collector) and ATIF trajectories. Imports only `trace` and `sessions`; OpenTelemetry loads on the first OTLP export.

    rj.export(run_or_trace_path, to="otlp", endpoint="http://127.0.0.1:6006/v1/traces", headers={...})
    rj.export(run_or_trace_path, to="atif", path="run.trajectory.json")     # -> the ATIF document
    rj.export(context, to="atif", path="out/")                              # loaded sessions -> ATIF, one per session
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["export"]

TARGETS = ("otlp", "atif")


def export(
    obj: Any,
    to: str,
    *,
    path: str | Path | None = None,
    endpoint: str | None = None,
    headers: dict[str, str] | None = None,
    context: Any = None,
    project: str | None = None,
    timeout_s: float = 10,
) -> Any:
    """Export a run (a `Run`, a `Trace`, or a trace file) or loaded sessions (a Context, session files).

    to="otlp": sends the run's spans to `endpoint` (an OTLP/HTTP traces URL) with `headers` (e.g. Langfuse's
    Authorization); `context` (the Context the run queried; default: the Run's own `.context` when it has one)
    fills the retrieved documents' content; `project` names the Phoenix project. Returns {"spans", "traces",
    "trace_ids", "endpoint"}.
    to="atif": returns the ATIF document of the run (a list when the trace holds several top-level runs; always a
    list for sessions) and writes it to `path` when given (a name ending in .json: that file; else a folder with
    one file per document)."""
    target = (to or "").lower()
    if target not in TARGETS:
        raise ValueError(f"export: unknown target {to!r}; use one of {', '.join(TARGETS)}")
    if target == "otlp":
        if not endpoint:
            raise ValueError("export to otlp needs endpoint=, e.g. 'http://127.0.0.1:6006/v1/traces' (Phoenix)")
        from .otlp import export_otlp

        trace = _as_trace(obj)
        if trace is None:
            raise ValueError("export to otlp takes a run, a Trace or a trace file (.rlmtrace.jsonl / rlms log)")
        if context is None:  # a Run from %%rlm knows the Context it queried
            context = getattr(obj, "context", None)
        return export_otlp(trace, endpoint, headers=headers, context=context, project=project, timeout_s=timeout_s)
    from . import atif

    trace = _as_trace(obj)
    if trace is not None:
        docs = atif.run_trajectories(trace)
        if not docs:
            raise ValueError("export to atif: the trace holds no run")
        result: Any = docs[0] if len(docs) == 1 else docs
    else:
        docs = atif.session_trajectories(_as_sessions(obj))
        if not docs:
            raise ValueError("export to atif: no sessions to export (the paths held none, or the Context is empty)")
        result = docs
    if path is not None:
        atif.write(docs, path)
    return result


def _as_trace(obj: Any):
    """A Trace from a Run, a Trace or a trace file; None when `obj` is something else (sessions)."""
    from ..trace import Trace

    if isinstance(obj, Trace):
        return obj
    if isinstance(getattr(obj, "trace", None), Trace):  # a Run
        return obj.trace
    if isinstance(obj, (str, Path)):
        p = Path(obj).expanduser()
        if not p.exists():
            raise FileNotFoundError(f"export: {p} does not exist")
        if p.is_file():
            try:
                return Trace.load(p)
            except ValueError as e:
                if "not a trace" not in str(e):
                    raise
    return None


def _as_sessions(obj: Any):
    if hasattr(obj, "df") and hasattr(obj, "sessions"):  # a Context
        return obj
    from ..sessions.load import read_sessions

    sessions, _report = read_sessions(obj)
    return sessions
