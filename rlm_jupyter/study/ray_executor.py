"""The Ray executor: one Ray task per run, or per group of runs run on threads inside the task (default
`group_size`: concurrency / the cluster's CPUs, so a 2-CPU machine at concurrency 16 has 2 tasks of 8 runs in flight,
a 64-CPU cluster at concurrency 64 one task per run); results streamed back as tasks finish.

- The context is shipped once: `ray.put` of its Arrow IPC bytes; each Ray worker process unpacks it once (cached by
  content hash) and builds the per-session contexts from it.
- Traces are written by the tasks straight into `out/traces` (on a cluster `out` must be storage every node sees);
  rows come back to the driver, which appends them to `out/rows.jsonl` as with threads.
- Model keys and endpoints travel in the tasks' runtime environment (`env_vars`), never in a task's arguments, a
  row or a trace. Ray keeps a runtime environment in its cluster metadata: use a cluster you trust.
- A task whose worker process dies (killed, out of memory, node lost) is retried by Ray (`max_retries`); a run that
  fails is a row, not a task failure, so it is never retried.
- Ctrl-C: the driver writes `out/STOP`; every running run sees it at its next step and ends "interrupted".
Imported only when executor="ray": `ray` is an optional extra.
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
import time
from pathlib import Path

from ..context.errors import ArgumentError
from .runner import Job, run_one

MAX_RETRIES = 3
# Forwarded to the tasks by default: provider keys and endpoints, and our own settings.
ENV_FORWARD = re.compile(r"(_API_KEY|_KEY|_TOKEN|_API_BASE|_BASE_URL|_API_VERSION|_REGION_NAME)$|^RLM_JUPYTER_")


def _ray():
    try:
        import ray
    except ImportError:
        raise ArgumentError(
            "batch: executor='ray' needs Ray; install it with pip install 'rlm-jupyter[ray]' (or "
            "pip install ray), or use executor='threads'"
        ) from None
    return ray


def forwarded_env(names: list[str] | None) -> dict[str, str]:
    if names is not None:
        return {n: os.environ[n] for n in names if n in os.environ}
    return {k: v for k, v in os.environ.items() if ENV_FORWARD.search(k)}


def pack_context(ctx) -> tuple[str, bytes, bytes]:
    """(content hash, Arrow IPC bytes, sidecar JSON bytes): what `ctx.to_ipc` writes, as one object."""
    with tempfile.TemporaryDirectory(prefix="rlmj-ship-") as d:
        path = ctx.to_ipc(Path(d) / "context.arrow")
        return ctx.content_hash, path.read_bytes(), Path(str(path) + ".json").read_bytes()


_contexts: dict[str, object] = {}
_contexts_lock = threading.Lock()


def _unpack(ref_box: list):
    """The shipped context in this worker process, unpacked once per content hash."""
    import ray

    digest, ref = ref_box
    with _contexts_lock:
        if digest in _contexts:
            return _contexts[digest]
        from ..context import Context

        _, arrow, side = ray.get(ref)
        d = Path(tempfile.mkdtemp(prefix="rlmj-ctx-"))
        (d / "context.arrow").write_bytes(arrow)
        (d / "context.arrow.json").write_bytes(side)
        ctx = Context.from_ipc(d / "context.arrow")
        _contexts[digest] = ctx
        return ctx


class _FileStop:
    """`threading.Event`-like: set when the driver wrote out/STOP (checked at each step of a run)."""

    def __init__(self, path: Path):
        self.path = path

    def is_set(self) -> bool:
        return self.path.exists()


def _run_group(specs, ref_box, out: str, run_kw: dict) -> list[dict]:
    """A Ray task: the runs of one group, all at once on threads (they wait on models), each with its trace in
    out/traces. Groups keep the number of Ray worker processes small: Ray kills idle workers above its CPU count
    and starts new ones (each importing polars and litellm again), so one task per run at a concurrency far above
    the CPU count spends its time starting workers (benchmarks/batch.py)."""
    from concurrent.futures import ThreadPoolExecutor

    from .store import Store

    ctx = _unpack(ref_box)
    store = Store(out)
    stop = _FileStop(store.out / "STOP")
    with ThreadPoolExecutor(max_workers=len(specs), thread_name_prefix="rlmj-ray") as pool:
        return list(
            pool.map(lambda s: run_one(s, ctx, store.trace_path(s.key), run_kw, stop=stop, executor="ray"), specs)
        )


def run_ray(
    job: Job,
    ctx,
    *,
    concurrency: int,
    group_size: int | None = None,
    address: str | None = None,
    env: list[str] | None = None,
    num_cpus: float = 0.1,
) -> None:
    ray = _ray()
    if group_size is not None and (not isinstance(group_size, int) or group_size < 1):
        raise ArgumentError(f"batch: group_size must be a positive int, got {group_size!r}")
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    if group_size is None:  # as many tasks in flight as the cluster has CPUs, the runs of each on threads
        cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        group_size = max(1, -(-concurrency // cpus))
    stop_file = job.store.out / "STOP"
    stop_file.unlink(missing_ok=True)
    ctx_box = [ctx.content_hash, ray.put(pack_context(ctx))]  # in a list: tasks fetch it themselves, once
    # A run mostly waits on the model: a small CPU share per task lets `concurrency` tasks run on a few cores.
    task = ray.remote(_run_group).options(
        max_retries=MAX_RETRIES,
        retry_exceptions=False,
        num_cpus=num_cpus,
        runtime_env={"env_vars": forwarded_env(env)},
        name="rlmj_batch_run",
    )
    groups = [job.todo[i : i + group_size] for i in range(0, len(job.todo), group_size)]
    groups.reverse()
    running: dict = {}
    out = str(job.store.out.resolve())
    try:
        while groups or running:
            while groups and len(running) * group_size < concurrency and job.may_start():
                g = groups.pop()
                running[task.remote(g, ctx_box, out, job.run_kw)] = g
            job.progress["running"] = len(running) * group_size
            if not running:
                break
            ready, _ = ray.wait(list(running), num_returns=1, timeout=0.5)
            for ref in ready:
                _collect(ray, job, ref, running.pop(ref))
    except KeyboardInterrupt:
        job.interrupt()
        stop_file.touch()
        try:
            deadline = time.monotonic() + 120
            while running and time.monotonic() < deadline:
                ready, _ = ray.wait(list(running), num_returns=1, timeout=1)
                for ref in ready:
                    _collect(ray, job, ref, running.pop(ref))
        except KeyboardInterrupt:
            for ref in running:
                ray.cancel(ref, force=True)
    finally:
        job.progress["running"] = 0
        stop_file.unlink(missing_ok=True)


def _collect(ray, job: Job, ref, group) -> None:
    try:
        rows = ray.get(ref)
    except Exception as e:  # the task failed for good (its worker died MAX_RETRIES + 1 times): its runs are rows
        msg = f"ray task failed after {MAX_RETRIES} retries: {type(e).__name__}: {str(e).splitlines()[0][:300]}"
        rows = [
            {
                **s.inputs,
                "key": s.key,
                "index": s.index,
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
                "error": msg,
                "trace": str(job.store.trace_path(s.key)),
                "executor": "ray",
            }
            for s in group
        ]
    for row in rows:
        job.record(row)
