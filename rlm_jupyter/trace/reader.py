"""Read traces back: our `.rlmtrace.jsonl` files and the official `rlms` logger's JSONL / completion JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from .model import FORMAT, Trace


def read_trace(path: str | Path) -> Trace:
    path = Path(path)
    raw = path.read_bytes()
    try:
        whole = orjson.loads(raw)  # a single (pretty-printed) JSON document: an rlms RLMChatCompletion dump
    except orjson.JSONDecodeError:
        whole = None
    if isinstance(whole, dict) and "root_model" in whole and "metadata" in whole:
        from .rlms import from_completion

        return from_completion(whole, source=str(path))
    lines, issues = [], []
    for n, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        try:
            lines.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            issues.append(f"{path}:{n}: not valid JSON; skipped" if n < raw.count(b"\n") + 1
                          else f"{path}:{n}: cut-off last line (run interrupted?); ignored")
    if not lines:
        raise ValueError(f"{path}: empty trace file")
    first = lines[0]
    if isinstance(first, dict) and first.get("format") == FORMAT:
        trace = _from_events(first, lines[1:])
    elif isinstance(first, dict) and first.get("type") == "metadata" and "root_model" in first:
        from .rlms import from_log

        trace = from_log(lines, source=str(path))
    else:
        raise ValueError(
            f"{path}: not a trace: expected an rlm-jupyter trace (first line a header with format "
            f"'{FORMAT}') or an rlms log (first line type 'metadata')"
        )
    if issues:
        trace.header.setdefault("issues", []).extend(issues)
    return trace


def _from_events(header: dict[str, Any], events: list[Any]) -> Trace:
    # An event re-written later (TraceWriter.update) replaces the earlier line but keeps its position.
    by_id: dict[str, dict] = {}
    order: list[str] = []
    for e in events:
        if not isinstance(e, dict) or "id" not in e:
            continue
        if e["id"] not in by_id:
            order.append(e["id"])
        by_id[e["id"]] = e
    return Trace(events=[by_id[i] for i in order], header=header)
