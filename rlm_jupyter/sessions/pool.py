"""Run one function over chunks of work in worker processes, results handed back in input order.

Workers come from a `forkserver` (a clean process forked on demand): forking a Jupyter kernel directly would copy
its threads' locks (polars' thread pool, the kernel's own) into children that can then deadlock."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any


def default_workers() -> int:
    """RLM_JUPYTER_WORKERS, else the cores this process may use."""
    env = os.environ.get("RLM_JUPYTER_WORKERS")
    if env and env.isdigit() and int(env) > 0:
        return int(env)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _context():
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    if ctx.get_start_method() == "forkserver":
        # imported once in the server, shared by every worker it forks
        ctx.set_forkserver_preload(["rlm_jupyter.sessions.corpus", "rlm_jupyter.sessions.tables", "polars"])
    return ctx


def run(fn: Callable[..., Any], chunks: Sequence[tuple], workers: int, on_done: Callable[[int, Any], None]) -> list:
    """`[fn(*c) for c in chunks]`, computed by `workers` processes; `on_done(i, result)` runs in this process as
    each chunk finishes (any order). The first exception from a worker is raised after the others are cancelled."""
    results: list[Any] = [None] * len(chunks)
    with ProcessPoolExecutor(max_workers=min(workers, len(chunks)), mp_context=_context()) as ex:
        pending = {ex.submit(fn, *c): i for i, c in enumerate(chunks)}
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    i = pending.pop(fut)
                    results[i] = fut.result()
                    on_done(i, results[i])
        except BaseException:
            for fut in pending:
                fut.cancel()
            raise
    return results
