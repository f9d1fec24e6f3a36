"""One check of a run's options for every way in: `rj.rlm(...)`, `rlm-jupyter ask` and `%%rlm`.

A bad value is refused before anything runs, with a message that names the option the way the caller wrote it and
says what to use instead (a zero step timeout would kill every step; a zero memory limit would silently mean none).
"""

from __future__ import annotations

import math
from typing import Any

# The worker needs about 150 MB of private memory for Python, polars and the context before any model code runs
# (docs/isolation.md); below this the first step already dies with no useful message.
MIN_MEMORY_MB = 256

# option -> (how rj.rlm(...) names it, how `rlm-jupyter ask` and %%rlm name it)
_NAMES = {
    "max_depth": ("max_depth", "--max-depth"),
    "max_iterations": ("max_iterations", "--max-iterations"),
    "step_timeout": ("limits.step_timeout_s", "--step-timeout"),
    "memory_mb": ("limits.memory_mb", "--memory-mb"),
    "budget_usd": ("budget.usd", "--budget-usd"),
    "budget_tokens": ("budget.tokens", "--budget-tokens"),
    "budget_seconds": ("budget.seconds", "--budget-seconds"),
    "budget_iterations": ("budget.iterations", "--budget-iterations"),
    "budget_depth": ("budget.depth", "--budget-depth"),
}


class OptionError(ValueError):
    """A run option with a value that cannot work; the message says which and what to use."""


def check_options(*, cli: bool = False, **options: Any) -> None:
    """Raise OptionError for the first bad option. Options left out or None are not checked (None = the default
    or no limit). Names: max_depth, max_iterations, step_timeout, memory_mb, budget_usd, budget_tokens,
    budget_seconds, budget_iterations, budget_depth. `cli`: name them as options (--max-depth) in messages."""
    for key, value in options.items():
        if key not in _NAMES:
            raise TypeError(f"check_options: unknown option {key!r}")
        if value is None:
            continue
        name = _NAMES[key][1 if cli else 0]
        if key in ("max_depth", "max_iterations", "budget_tokens", "budget_iterations", "budget_depth", "memory_mb"):
            _integer(name, value)
        else:
            _number(name, value)
        if key in ("max_depth", "max_iterations") and value < 1:
            raise OptionError(f"{name} must be at least 1, got {value}")
        if key == "step_timeout" and value <= 0:
            raise OptionError(
                f"{name} must be more than 0 seconds (it is the wall time each REPL step may take; "
                f"60 is the default), got {value}"
            )
        if key == "memory_mb" and value < MIN_MEMORY_MB:
            raise OptionError(
                f"{name} must be at least {MIN_MEMORY_MB} (MB: the REPL worker needs about 150 MB "
                f"before any code runs; 2048 is the default), got {value}"
            )
        if key in ("budget_usd", "budget_seconds", "budget_tokens", "budget_iterations") and value <= 0:
            raise OptionError(f"{name} must be more than 0 (leave it out for no limit), got {value}")
        if key == "budget_depth" and value < 0:
            raise OptionError(f"{name} must be 0 or more, got {value}")


def check_run(*, max_depth=None, max_iterations=None, budget=None, limits=None, cli: bool = False) -> None:
    """check_options for what `rlm(...)` takes: its ints, a Budget and worker Limits (duck-typed)."""
    extra: dict[str, Any] = {}
    if budget is not None:
        extra.update(
            {f"budget_{k}": getattr(budget, k, None) for k in ("usd", "tokens", "seconds", "iterations", "depth")}
        )
    if limits is not None:
        extra.update(step_timeout=getattr(limits, "step_timeout_s", None), memory_mb=getattr(limits, "memory_mb", None))
    try:
        check_options(max_depth=max_depth, max_iterations=max_iterations, cli=cli, **extra)
    except OptionError as e:
        raise OptionError(f"rlm: {e}") from None


def _integer(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise OptionError(f"{name} must be a whole number, got {value!r}")


def _number(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise OptionError(f"{name} must be a finite number, got {value!r}")
