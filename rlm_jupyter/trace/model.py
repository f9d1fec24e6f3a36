"""Trace events and the `Trace` object built from them.

Every event is a JSON object with `id`, `parent` (null for a root run), `type` and `t` (epoch seconds when it
started); `dur` (seconds) when it has a duration. The event types and their payload fields: events.py
(schema.json and the front-end's trace-events.ts are generated from it). A child run (a
recursive `rlm(...)` call) is a `run` event whose parent is the `sub_call` that opened it, so the whole call tree
is one parent chain.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .events import EVENT_TYPES, FORMAT, VERSION, ModelUsage, TraceEvent, Usage

__all__ = ["EVENT_TYPES", "FORMAT", "VERSION", "Trace", "TraceEvent", "roll_up"]


@dataclass
class Trace:
    """The events of one or more runs, with the tree of calls."""

    events: list[dict[str, Any]] = field(default_factory=list)
    header: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._index()

    def _index(self) -> None:
        self._by_id = {e["id"]: e for e in self.events}
        self._children: dict[str | None, list[dict]] = {}
        for e in self.events:
            self._children.setdefault(e.get("parent"), []).append(e)

    def append(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        self._by_id[event["id"]] = event
        self._children.setdefault(event.get("parent"), []).append(event)

    @classmethod
    def load(cls, path: str | Path) -> Trace:
        from .reader import read_trace

        return read_trace(path)

    def save(self, path: str | Path) -> Path:
        """Write the trace as a `.rlmtrace.jsonl` file (a folder: a file named after the run inside it); returns
        the path. Written whole to a temporary file first, then renamed: a reader never sees half a file."""
        import orjson

        path = Path(path).expanduser()
        if path.is_dir():
            path = path / f"{(self.root or {}).get('id') or 'trace'}.rlmtrace.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        header = {k: v for k, v in self.header.items() if k not in ("type", "format", "version", "issues")}
        lines = [orjson.dumps({"type": "header", "format": FORMAT, "version": VERSION, **header}, default=str)]
        lines += [orjson.dumps(e, default=str) for e in self.events]
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            tmp.write_bytes(b"\n".join(lines) + b"\n")
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        return path

    # -- navigation ---------------------------------------------------------------------------------------
    def get(self, event_id: str) -> dict[str, Any]:
        return self._by_id[event_id]

    def children(self, event_id: str | None, type: str | None = None) -> list[dict[str, Any]]:
        kids = self._children.get(event_id, [])
        return [e for e in kids if type is None or e["type"] == type]

    def of_type(self, type: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == type]

    @property
    def runs(self) -> list[dict[str, Any]]:
        """Top-level runs (not child runs), in order."""
        return [e for e in self.events if e["type"] == "run" and e.get("parent") is None]

    @property
    def root(self) -> dict[str, Any] | None:
        runs = self.runs
        return runs[-1] if runs else None

    def steps(self, run_id: str | None = None) -> list[dict[str, Any]]:
        run_id = run_id or (self.root or {}).get("id")
        return self.children(run_id, "step")

    def walk(self, event_id: str | None = None, depth: int = 0) -> Iterator[tuple[int, dict[str, Any]]]:
        """Depth-first (depth, event) pairs below `event_id` (all roots when None). Iterative, and each event
        once: a parent chain thousands deep or a loop of parents in a damaged file cannot blow the stack."""
        seen: set[int] = set()
        stack = [(depth, e) for e in reversed(self._children.get(event_id, []))]
        while stack:
            d, e = stack.pop()
            if id(e) in seen:
                continue
            seen.add(id(e))
            yield d, e
            stack.extend((d + 1, k) for k in reversed(self._children.get(e["id"], [])))

    @property
    def answer(self) -> str | None:
        root = self.root
        if root is None:
            return None
        finals = self.children(root["id"], "final")
        return finals[-1].get("answer") if finals else None

    def wall_s(self, run_id: str | None = None) -> float | None:
        """A run's wall time, the one definition every reader shows (view header, compare, `run.usage`, CLI):
        its `run_end` event's `t` minus its `run` event's `t`, both epoch seconds on the writer's clock. It
        covers everything between them, a worker start included; None while the run has not ended."""
        run_id = run_id or (self.root or {}).get("id")
        if run_id is None or run_id not in self._by_id:
            return None
        ends = self.children(run_id, "run_end")
        start = self._by_id[run_id].get("t")
        if not ends or start is None or ends[-1].get("t") is None:
            return None
        return round(max(0.0, ends[-1]["t"] - start), 3)

    def usage(self, run_id: str | None = None) -> Usage:
        """Tokens, cost and calls per model, summed over the run and every sub-call and child run below it."""
        run_id = run_id or (self.root or {}).get("id")
        return roll_up([e for _, e in self.walk(run_id)] if run_id else self.events)

    def __len__(self) -> int:
        return len(self.events)

    def __repr__(self) -> str:
        root = self.root
        q = (root or {}).get("question", "")
        q = q if len(q) <= 60 else q[:59] + "…"
        u = self.usage()
        return (
            f"<Trace: {len(self.runs)} run(s), {len(self.of_type('step'))} steps, "
            f"{len(self.of_type('sub_call'))} sub-calls, {u['tokens_in'] + u['tokens_out']:,} tokens; {q!r}>"
        )


def iter_dicts(events: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for e in events:
        if not isinstance(e, dict) or "id" not in e or e.get("type") not in EVENT_TYPES:
            raise ValueError(f"not a trace event: {str(e)[:120]}")
        yield e


def roll_up(events: Iterable[dict[str, Any]]) -> Usage:
    """The one usage roll-up (Trace.usage, the notebook's static summary, the run_end event): tokens, cost and
    calls per model over the given events, which are a run and everything below it. A sub-call that opened a child
    run is counted through the child's own steps, not twice."""
    per_model: dict[str, ModelUsage] = {}
    for e in events:
        if e.get("type") not in ("step", "sub_call") or (e.get("type") == "sub_call" and e.get("child_run")):
            continue
        m = per_model.setdefault(
            str(e.get("model") or "?"), {"calls": 0, "tokens_in": 0, "tokens_out": 0, "cost_usd": 0.0}
        )
        m["calls"] += 1
        m["tokens_in"] += _number(e.get("tokens_in"))
        m["tokens_out"] += _number(e.get("tokens_out"))
        m["cost_usd"] += _number(e.get("cost_usd"))
    return {
        "per_model": per_model,
        "calls": sum(m["calls"] for m in per_model.values()),
        "tokens_in": sum(m["tokens_in"] for m in per_model.values()),
        "tokens_out": sum(m["tokens_out"] for m in per_model.values()),
        "cost_usd": sum(m["cost_usd"] for m in per_model.values()),
    }


def _number(v: Any) -> Any:
    """A count from an event (None and non-numbers, e.g. in a damaged saved notebook, count as 0)."""
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else 0
