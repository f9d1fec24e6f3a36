"""Budgets for a run: tokens, dollars, wall time, iterations and recursion depth.

One `Meter` is shared by a run and every child run and sub-call below it, so a budget covers the whole call tree
(the reference `rlms` leaves child usage out of the root's totals; we do not). Checks happen before each model call
and after each step; a sub-call refused for budget returns an "Error: …" string to the code that made it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass


@dataclass
class Budget:
    """Limits for one `rlm(...)` run, its sub-calls and its child runs. None = no limit.

    usd: cost in dollars (only counted for models whose price is known); tokens: input + output tokens of every
    model call; seconds: wall time since the run started; iterations: root steps that run code; depth: how many
    levels of child runs `rlm(...)` inside the REPL may open (0 = none; it then falls back to `sub_llm`).
    """

    usd: float | None = None
    tokens: int | None = None
    seconds: float | None = None
    iterations: int | None = None
    depth: int | None = None

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass
class Exhausted:
    budget: str      # "tokens" | "usd" | "seconds" | "iterations" | "depth"
    limit: float
    used: float

    def message(self) -> str:
        unit = {"usd": " USD", "seconds": " s", "tokens": " tokens"}.get(self.budget, "")
        return f"budget exhausted: {self.budget} (used {_num(self.used)} of {_num(self.limit)}{unit})"


class Meter:
    """Usage of a run tree so far, checked against a `Budget`. Thread-safe: batch sub-calls report concurrently."""

    def __init__(self, budget: Budget | None = None, *, clock=time.monotonic):
        self.budget = budget or Budget()
        self._clock = clock
        self.start = clock()
        self.tokens = 0
        self.usd = 0.0
        self.calls = 0
        self._lock = threading.Lock()

    def add(self, tokens_in: int | None, tokens_out: int | None, cost_usd: float | None) -> None:
        with self._lock:
            self.tokens += (tokens_in or 0) + (tokens_out or 0)
            self.usd += cost_usd or 0.0
            self.calls += 1

    @property
    def seconds(self) -> float:
        return self._clock() - self.start

    def exhausted(self, iterations: int | None = None) -> Exhausted | None:
        """The first budget used up (tokens, usd, seconds; iterations when given), or None."""
        b = self.budget
        checks = (("tokens", b.tokens, self.tokens), ("usd", b.usd, self.usd), ("seconds", b.seconds, self.seconds),
                  ("iterations", b.iterations, iterations))
        for name, limit, used in checks:
            if limit is not None and used is not None and used >= limit:
                return Exhausted(name, limit, used)
        return None

    def depth_allowed(self, depth: int) -> bool:
        """May a child run at `depth` (1 = a child of the root) be opened under the depth budget?"""
        return self.budget.depth is None or depth <= self.budget.depth


def _num(x: float) -> str:
    return f"{x:,.4f}".rstrip("0").rstrip(".") if isinstance(x, float) and not x.is_integer() else f"{int(x):,}"
