"""Budgets for a run: tokens, dollars, wall time, iterations and recursion depth.

One `Meter` is shared by a run and every child run and sub-call below it, so a budget covers the whole call tree
(the reference `rlms` leaves child usage out of the root's totals; we do not). Checks happen before each model call
and after each step; a sub-call refused for budget returns an "Error: …" string to the code that made it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass

# Defaults, in one place: the CLI, the magics and `Limits` read them (and --help states them).
DEFAULT_SECONDS = 600.0  # wall time of a whole run tree, model calls included
DEFAULT_TOKENS = 2_000_000  # input + output tokens of every model call in the run tree
DEFAULT_USD = 1.00  # dollars (models with a known price)
DEFAULT_SUB_CALLS = 1_000  # sub_llm prompts + rlm() calls over the run tree
DEFAULT_SUB_CALLS_PER_STEP = 200  # the same, per REPL step (worker.Limits.sub_calls_per_step)
DEFAULT_STEP_TIMEOUT_S = 60.0  # wall time of one REPL step, its model calls included
DEFAULT_MEMORY_MB = 2048  # the worker's data limit (a memory cgroup adds room for libraries, see isolation.md)
DEFAULT_CALL_TIMEOUT_S = 60.0  # one attempt of one model call (Models.timeout_s)
DEFAULT_CALL_TOTAL_S = 180.0  # one model call with all its retries (Models.total_timeout_s)


def default_budget() -> Budget:
    """The budget `rlm-jupyter ask` and `%%rlm` use for what the user did not set."""
    return Budget(usd=DEFAULT_USD, tokens=DEFAULT_TOKENS, seconds=DEFAULT_SECONDS, sub_calls=DEFAULT_SUB_CALLS)


def defaults_help() -> str:
    return (
        f"default budgets: {DEFAULT_SECONDS:g} s, {DEFAULT_TOKENS:,} tokens, ${DEFAULT_USD:.2f}, "
        f"{DEFAULT_SUB_CALLS:,} sub-calls per run and {DEFAULT_SUB_CALLS_PER_STEP} per step; step timeout "
        f"{DEFAULT_STEP_TIMEOUT_S:g} s, worker memory {DEFAULT_MEMORY_MB} MB; each model call times out after "
        f"{DEFAULT_CALL_TIMEOUT_S:g} s per attempt and {DEFAULT_CALL_TOTAL_S:g} s with retries"
    )


@dataclass
class Budget:
    """Limits for one `rlm(...)` run, its sub-calls and its child runs. None = no limit.

    usd: cost in dollars (only counted for models whose price is known); tokens: input + output tokens of every
    model call; seconds: wall time since the run started; iterations: root steps that run code; depth: how many
    levels of child runs `rlm(...)` inside the REPL may open (0 = none; it then falls back to `sub_llm`);
    sub_calls: sub_llm prompts (each prompt of a batch) and rlm() calls over the whole tree. `seconds` bounds
    model calls too: each call's timeout is cut to the time left.
    """

    usd: float | None = None
    tokens: int | None = None
    seconds: float | None = None
    iterations: int | None = None
    depth: int | None = None
    sub_calls: int | None = None

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass
class Exhausted:
    budget: str  # "tokens" | "usd" | "seconds" | "iterations" | "depth" | "sub_calls"
    limit: float
    used: float

    def message(self) -> str:
        unit = {"usd": " USD", "seconds": " s", "tokens": " tokens", "sub_calls": " sub-calls"}.get(self.budget, "")
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
        self.sub_calls = 0
        self._lock = threading.Lock()

    def take_sub_calls(self, n: int) -> Exhausted | None:
        """Count `n` sub-calls about to be made; an Exhausted (and nothing counted) when they would pass the cap."""
        limit = self.budget.sub_calls
        with self._lock:
            if limit is not None and self.sub_calls + n > limit:
                return Exhausted("sub_calls", limit, self.sub_calls)
            self.sub_calls += n
        return None

    def deadline(self) -> float | None:
        """The clock value at which the seconds budget runs out (None: no such budget)."""
        return None if self.budget.seconds is None else self.start + self.budget.seconds

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
        checks = (
            ("tokens", b.tokens, self.tokens),
            ("usd", b.usd, self.usd),
            ("seconds", b.seconds, self.seconds),
            ("iterations", b.iterations, iterations),
        )
        for name, limit, used in checks:
            if limit is not None and used is not None and used >= limit:
                return Exhausted(name, limit, used)
        return None

    def depth_allowed(self, depth: int) -> bool:
        """May a child run at `depth` (1 = a child of the root) be opened under the depth budget?"""
        return self.budget.depth is None or depth <= self.budget.depth


def _num(x: float) -> str:
    return f"{x:,.4f}".rstrip("0").rstrip(".") if isinstance(x, float) and not x.is_integer() else f"{int(x):,}"
