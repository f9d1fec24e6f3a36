"""Trace events and the `Trace` object built from them.

Every event is a JSON object with `id`, `parent` (null for a root run), `type` and `t` (epoch seconds when it
started); `dur` (seconds) when it has a duration. The payload fields per type are in schema.json. A child run (a
recursive `rlm(...)` call) is a `run` event whose parent is the `sub_call` that opened it, so the whole call tree
is one parent chain.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FORMAT = "rlm-jupyter-trace"
VERSION = 1

EVENT_TYPES = (
    "run",          # a (sub-)run starts: question, models, limits, context shape
    "worker_start", # the run waited for (or took over) its REPL worker: wait_s, prestarted, isolation
    "step",         # one root-model call: prompt size, response, tokens, cost, latency
    "code",         # a code block of a step, as run in the worker
    "output",       # what a code block printed, its status (ok | error | killed) and error
    "query",        # a context query made by the code: op, args, result ids, scores, latency
    "sub_call",     # a sub-model call made by the code: model, prompt, response, tokens, cost, latency, status
    "error",        # something failed outside a code block (model call, worker start)
    "budget_stop",  # a budget ended the run: which, limit, used
    "final",        # the answer and how it was given (FINAL, FINAL_VAR, answer dict, no-code, partial)
    "run_end",      # a (sub-)run ends: status and usage
)


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

    def usage(self, run_id: str | None = None) -> dict[str, Any]:
        """Tokens, cost and calls per model, summed over the run and every sub-call and child run below it."""
        run_id = run_id or (self.root or {}).get("id")
        per_model: dict[str, dict[str, float]] = {}
        ids = [e for _, e in self.walk(run_id)] if run_id else self.events
        for e in ids:
            # A sub-call that opened a child run is counted through the child's own steps, not twice.
            if e["type"] not in ("step", "sub_call") or (e["type"] == "sub_call" and e.get("child_run")):
                continue
            m = per_model.setdefault(e.get("model") or "?",
                                     {"calls": 0, "tokens_in": 0, "tokens_out": 0, "cost_usd": 0.0})
            m["calls"] += 1
            m["tokens_in"] += e.get("tokens_in") or 0
            m["tokens_out"] += e.get("tokens_out") or 0
            m["cost_usd"] += e.get("cost_usd") or 0.0
        total = {k: sum(m[k] for m in per_model.values()) for k in ("calls", "tokens_in", "tokens_out", "cost_usd")}
        return {"per_model": per_model, **total}

    def __len__(self) -> int:
        return len(self.events)

    def __repr__(self) -> str:
        root = self.root
        q = (root or {}).get("question", "")
        q = q if len(q) <= 60 else q[:59] + "…"
        u = self.usage()
        return (f"<Trace: {len(self.runs)} run(s), {len(self.of_type('step'))} steps, "
                f"{len(self.of_type('sub_call'))} sub-calls, {u['tokens_in'] + u['tokens_out']:,} tokens; {q!r}>")


def iter_dicts(events: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for e in events:
        if not isinstance(e, dict) or "id" not in e or e.get("type") not in EVENT_TYPES:
            raise ValueError(f"not a trace event: {str(e)[:120]}")
        yield e
