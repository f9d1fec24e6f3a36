"""`batch(...)`: plan the runs, skip those `out` already holds, hand the rest to an executor, stream each finished
row to disk, and stop new runs when the overall budget is spent or on Ctrl-C (finished rows and traces stay)."""

from __future__ import annotations

import contextlib
import threading
import time
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path

from ..context.errors import ArgumentError
from .plan import Spec, plan
from .results import BatchResult
from .store import Store

EXECUTORS = ("threads", "ray")


def batch(
    questions,
    context=None,
    *,
    model="offline",
    sub_model: str | None = None,
    per: str | None = None,
    concurrency: int = 8,
    budget=None,
    run_budget=None,
    out=None,
    executor: str = "threads",
    max_iterations: int = 20,
    max_depth: int = 1,
    mode: str = "rlm",
    limits=None,
    models=None,
    rerun_errors: bool = False,
    group_size: int | None = None,
    ray_address: str | None = None,
    env: list[str] | None = None,
    on_row: Callable[[dict, dict], None] | None = None,
    display: bool | None = None,
) -> BatchResult:
    """Run every question (x every session with per="session", x every model when `model` is a list).

    questions: list[str], or a polars frame with a `question` column (+ any others; `session_id`, `model`,
    `sub_model` columns set those per row, e.g. the rows of `rj.xray_corpus(ctx)`). context: a Context or paths.
    budget: a `Budget` over the whole batch (usd, tokens, seconds): once spent no new run starts and the result
    says so. run_budget: a `Budget` for each run. out: the folder (resumable: rows it holds are skipped; default a
    new folder under the rlm_jupyter cache). executor: "threads" or "ray" (`pip install rlm-jupyter[ray]`; uses the
    running Ray, else `ray.init(address=ray_address)`). group_size (ray): runs in flight on one Ray actor, on its
    threads (default: concurrency / the cluster's CPUs: one actor per CPU). env (ray): names of
    environment variables the actors need (default: keys and endpoints, *_API_KEY / *_API_BASE / *_BASE_URL ...),
    sent in their runtime environment unless they already hold the same values (docs/batch.md).
    on_row: called in this thread with (row, progress) as each run finishes. display: a live progress view in
    Jupyter (default: on inside a kernel).
    """
    if executor not in EXECUTORS:
        raise ArgumentError(f"batch: executor must be 'threads' or 'ray', got {executor!r}")
    if executor == "ray" and models is not None:
        raise ArgumentError(
            "batch: models= works with executor='threads' only; Ray actors call models through "
            "litellm with the keys and endpoints of the environment (env=)"
        )
    if per not in (None, "session"):
        raise ArgumentError(f"batch: per must be None or 'session', got {per!r}")
    if not isinstance(concurrency, int) or concurrency < 1:
        raise ArgumentError(f"batch: concurrency must be a positive int, got {concurrency!r}")
    models_list = [model] if isinstance(model, str) else list(model)
    if not models_list:
        raise ArgumentError("batch: model is an empty list; give one model name or several")
    ctx = _as_context(context)
    sessions = ctx.sessions["session_id"].to_list() if per == "session" else None
    settings = {
        "mode": mode,
        "max_iterations": max_iterations,
        "max_depth": max_depth,
        "run_budget": run_budget.to_dict() if run_budget is not None else None,
    }
    specs = plan(questions, sessions=sessions, models=models_list, sub_model=sub_model, settings=settings)
    known = set(ctx.sessions["session_id"].to_list())
    bad = sorted({s.session_id for s in specs if s.session_id is not None and s.session_id not in known})
    if bad:
        raise ArgumentError(
            f"batch: session(s) {', '.join(bad[:3])} are not in the context; load them, or drop those rows"
        )
    if models is None:  # checked once here: an unknown model or a missing key fails before any run
        from ..engine.models import Models

        check = Models()
        for s in specs:
            check.check(s.model)
            if s.sub_model:
                check.check(s.sub_model, role="sub")
    store = Store(out if out is not None else _default_out())
    done = store.finished(rerun_errors=rerun_errors)
    todo = [s for s in specs if s.key not in done]
    job = Job(
        specs=specs,
        todo=todo,
        store=store,
        budget=budget,
        on_row=on_row,
        run_kw={
            "max_iterations": max_iterations,
            "max_depth": max_depth,
            "mode": mode,
            "limits": limits,
            "budget": run_budget,
        },
    )
    job.progress.update(total=len(specs), skipped=len(specs) - len(todo))
    view = _maybe_view(job, display)
    try:
        if executor == "threads":
            from .executors import run_threads

            run_threads(job, ctx, concurrency=concurrency, models=models)
        else:
            from .ray_executor import run_ray

            run_ray(job, ctx, concurrency=concurrency, group_size=group_size, address=ray_address, env=env)
    finally:
        job.finish()
        if view is not None:
            view.finish(job)
    return BatchResult(store.out, job.stopped, executor=executor, progress=dict(job.progress))


class Job:
    """What the executors share: the runs to make, the store, the overall budget and the stop flag."""

    def __init__(self, *, specs: list[Spec], todo: list[Spec], store: Store, budget, on_row, run_kw: dict):
        self.specs, self.todo, self.store, self.budget, self.on_row, self.run_kw = (
            specs,
            todo,
            store,
            budget,
            on_row,
            run_kw,
        )
        self.stop = threading.Event()  # set on Ctrl-C or a spent budget: running runs end at their next step
        self.stopped: str | None = None  # why the batch stopped early, said in the result
        self.t0 = time.monotonic()
        self.progress = {
            "total": 0,
            "skipped": 0,
            "finished": 0,
            "done": 0,
            "failed": 0,
            "running": 0,
            "tokens": 0,
            "cost_usd": 0.0,
            "elapsed_s": 0.0,
        }
        self.listeners: list[Callable[[dict, dict], None]] = []
        self.spent = {"tokens": 0, "cost_usd": 0.0}  # what finished runs used: charged before the next run starts

    def may_start(self) -> bool:
        """False once stopped or the overall budget is spent (and says so once)."""
        if self.stop.is_set():
            return False
        msg = self._spent()
        if msg:
            self.stopped = msg
            return False
        return True

    def _spent(self) -> str | None:
        b = self.budget
        if b is None:
            return None
        spent = self.spent
        for name, limit, used in (
            ("usd", b.usd, spent["cost_usd"]),
            ("tokens", b.tokens, spent["tokens"]),
            ("seconds", b.seconds, time.monotonic() - self.t0),
        ):
            if limit is not None and used >= limit:
                return (
                    f"batch budget exhausted: {name} (used {used:,.4g} of {limit:,.4g}); no new runs were "
                    "started. Re-run with a larger budget and the same out folder to go on"
                )
        return None

    def charge(self, row: dict) -> None:
        """A finished run's usage, counted against the overall budget (by the executor, before it starts another
        run; the row is recorded after, maybe on another thread)."""
        self.spent["tokens"] += row.get("tokens") or 0
        self.spent["cost_usd"] += row.get("cost_usd") or 0.0

    def record(self, row: dict) -> None:
        """A finished run: on disk first, then counted, then shown."""
        self.store.append(row)
        p = self.progress
        p["finished"] += 1
        p["done" if row["status"] == "done" else "failed"] += 1
        p["tokens"] += row.get("tokens") or 0
        p["cost_usd"] += row.get("cost_usd") or 0.0
        p["elapsed_s"] = round(time.monotonic() - self.t0, 2)
        for fn in self.listeners:
            try:
                fn(row, dict(p))
            except Exception as e:  # a broken display must not stop the batch (the row is on disk already)
                warnings.warn(
                    f"batch: the display failed on a row: {type(e).__name__}: {e}", RuntimeWarning, stacklevel=2
                )
        if self.on_row is not None:
            self.on_row(row, dict(p))

    def interrupt(self) -> None:
        self.stop.set()
        self.stopped = "interrupted: finished rows and their traces are on disk; run again with the same out to go on"

    def finish(self) -> None:
        self.progress["elapsed_s"] = round(time.monotonic() - self.t0, 2)
        self.store.write_parquet()


class StopController:
    """The `pause=` controller of each run: a batch stop ends the run at its next step, as Ctrl-C does."""

    def __init__(self, stop: threading.Event):
        self._stop = stop

    def before_step(self, run_id, index) -> str | None:
        return "stop" if self._stop.is_set() else None


def blank_row(spec: Spec, trace_path: Path, executor: str, error: str | None = None) -> dict:
    """A run's results row before (or without) the run: status "error" until the run says otherwise."""
    return {
        **spec.inputs,
        "key": spec.key,
        "index": spec.index,
        "answer": None,
        "status": "error",
        "stopped_by": None,
        "steps": 0,
        "sub_calls": 0,
        "tokens_in": 0,
        "tokens_out": 0,
        "tokens": 0,
        "cost_usd": 0.0,
        "wall_s": 0.0,
        "error": error,
        "trace": str(trace_path),
        "executor": executor,
    }


def run_one(
    spec: Spec,
    ctx,
    trace_path: Path,
    run_kw: dict,
    *,
    models=None,
    stop: threading.Event | None = None,
    executor: str = "threads",
    closer=None,
    context_files=None,
) -> dict:
    """One run -> its results row. Never raises for a failed run: the error is the row's. `closer`: a
    `closer.WorkerCloser` that closes the run's worker after the row is back; `context_files`: the batch's
    `engine.context_files.ContextFiles` (each context written once for every run's worker)."""
    from ..engine.loop import rlm

    with contextlib.suppress(FileNotFoundError):
        trace_path.unlink()  # a run made again (after an interrupt) starts a fresh trace
    t0 = time.monotonic()
    row = blank_row(spec, trace_path, executor)
    try:
        run_ctx = session_context(ctx, spec.session_id)
        run = rlm(
            spec.question,
            run_ctx,
            model=spec.model,
            sub_model=spec.sub_model,
            trace_path=trace_path,
            models=models,
            pause=StopController(stop) if stop is not None else None,
            worker_factory=closer.factory if closer is not None else None,
            context_files=context_files,
            **run_kw,
        )
    except Exception as e:  # a run that could not start (bad model, worker failure): recorded, the batch goes on
        row.update(error=f"{type(e).__name__}: {e}", wall_s=round(time.monotonic() - t0, 3))
        row["error_detail"] = traceback.format_exc(limit=3)[-2000:]
        return row
    u = run.usage
    errors = [e.get("message") for e in run.trace.of_type("error")]
    row.update(
        answer=run.answer,
        status=run.status,
        stopped_by=run.stopped_by,
        steps=len(run.trace.of_type("step")),
        sub_calls=len(run.trace.of_type("sub_call")),
        tokens_in=int(u.get("tokens_in", 0)),
        tokens_out=int(u.get("tokens_out", 0)),
        tokens=int(u.get("tokens_in", 0) + u.get("tokens_out", 0)),
        cost_usd=float(u.get("cost_usd", 0.0)),
        wall_s=float(u.get("wall_s", 0.0)),
        error=errors[-1] if errors else None,
    )
    return row


_session_cache: dict = {}
_session_lock = threading.Lock()


def session_context(ctx, session_id: str | None):
    """The context of one session (built once per session and context, shared by the runs that ask it)."""
    if session_id is None:
        return ctx
    key = (id(ctx), session_id)
    with _session_lock:
        hit = _session_cache.get(key)
        if hit is not None and hit[0] is ctx:
            return hit[1]
    import polars as pl

    from ..context import Context

    sub = Context.from_frame(
        ctx.df.filter(pl.col("session_id") == session_id),
        sessions=ctx.sessions.filter(pl.col("session_id") == session_id),
    )
    with _session_lock:
        if len(_session_cache) > 256:
            _session_cache.clear()
        _session_cache[key] = (ctx, sub)
    return sub


def _as_context(context):
    if context is None:
        raise ArgumentError("batch: no context given; pass context=rj.load(paths) or the paths")
    if hasattr(context, "df") and hasattr(context, "sessions"):
        return context
    if isinstance(context, (str, Path, list, tuple)):
        from ..context import Context

        return Context.load(*(context if isinstance(context, (list, tuple)) else [context]))
    raise ArgumentError(f"batch: context must be a Context (rj.load(paths)) or paths, got {type(context).__name__}")


def _default_out() -> Path:
    import os

    base = Path(os.environ.get("RLM_JUPYTER_CACHE") or Path.home() / ".cache" / "rlm_jupyter") / "batches"
    return base / time.strftime("batch-%Y%m%d-%H%M%S")


def _maybe_view(job: Job, display: bool | None):
    if display is False:
        return None
    if display is None:
        try:
            from IPython import get_ipython
        except ImportError:
            return None
        ip = get_ipython()
        if ip is None or getattr(ip, "kernel", None) is None:
            return None
    try:
        from ..jupyter.batch_view import BatchView
    except ImportError:  # the `lab` extra is missing: no live view, the batch still runs
        return None
    view = BatchView(job.store.out, total=job.progress["total"], skipped=job.progress["skipped"])
    job.listeners.append(view.on_row)
    view.show()
    return view
