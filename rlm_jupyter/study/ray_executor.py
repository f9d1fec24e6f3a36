"""The Ray executor: a few long-lived Ray actors (one per CPU of the cluster by default, never more than the
concurrency), each running its share of the runs on threads, one actor call per run; results stream back run by
run as they finish.

- Why actors, not a task per run or per group: Ray kills idle workers above its CPU count and starts new ones (each
  importing polars and litellm again), so a task per run at a concurrency far above the CPUs spent its time
  starting workers (5.8x the threads executor), and a task per group of runs waited for the group's slowest run
  before the next group started, and returned its rows only then (benchmarks/batch.py, docs/batch.md).
- The context is shipped once: `ray.put` of its Arrow IPC bytes; each actor unpacks it once when it starts and
  builds the per-session contexts from it.
- Traces are written by the actors straight into `out/traces` (on a cluster `out` must be storage every node sees);
  rows come back to the driver, which appends them to `out/rows.jsonl` as with threads.
- Model keys and endpoints travel in the actors' runtime environment (`env_vars`), never in a call's arguments, a
  row or a trace. Ray keeps a runtime environment in its cluster metadata: use a cluster you trust. Nothing is sent
  when the actors' own environment already holds the same values (the local runtime `ray.init()` starts from this
  driver inherits its environment): the actors are first made without one, each compares salted digests of the
  values with its own environment, and only if one differs are they made again with the runtime environment. A
  runtime environment of its own costs each actor a fresh Ray worker process (~2 s here) instead of one of the
  idle workers Ray keeps ready.
- An actor whose process dies (killed, out of memory, node lost) is restarted by Ray and its unfinished runs are
  sent again (`max_restarts`, `max_task_retries`); a run that fails is a row, not a failed call, so it is never
  run again.
- Ctrl-C: the driver writes `out/STOP`; every running run sees it at its next step and ends "interrupted".
Imported only when executor="ray": `ray` is an optional extra.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import tempfile
import threading
import time
from pathlib import Path

from ..context.errors import ArgumentError
from ..engine.context_files import ContextFiles
from .closer import WorkerCloser
from .runner import Job, blank_row, run_one

MAX_RETRIES = 3
# Forwarded to the actors by default: provider keys and endpoints, and our own settings.
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


def _digests(env_vars: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    """Salted digests of the values: what an actor compares its own environment against (they never leave here)."""
    salt = secrets.token_bytes(16)
    return salt, {k: hashlib.sha256(salt + v.encode()).hexdigest() for k, v in env_vars.items()}


def _holds(salt: bytes, digests: dict[str, str]) -> bool:
    return all(
        k in os.environ and hashlib.sha256(salt + os.environ[k].encode()).hexdigest() == d for k, d in digests.items()
    )


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
        # removed once read: the frame stays memory-mapped (the file lives while mapped); named like the engine's
        # context folders so a process killed in between has it swept (engine/worker.py sweep_stale)
        with tempfile.TemporaryDirectory(prefix=f"rlm-ctx-{os.getpid()}-") as d:
            (Path(d) / "context.arrow").write_bytes(arrow)
            (Path(d) / "context.arrow.json").write_bytes(side)
            ctx = Context.from_ipc(Path(d) / "context.arrow")
        _contexts[digest] = ctx
        return ctx


class _FileStop:
    """`threading.Event`-like: set when the driver wrote out/STOP (checked at each step of a run)."""

    def __init__(self, path: Path):
        self.path = path

    def is_set(self) -> bool:
        return self.path.exists()


class RlmjBatchRunner:
    """A Ray actor (its process shows as `ray::RlmjBatchRunner`): runs of one batch, on the threads Ray gives a
    threaded actor (`max_concurrency`), against the context it unpacked once.

    The constructor returns at once, so the driver can ask `has_env` while the actor gets ready on a thread of its
    own: the REPL workers' template starts while litellm is imported (~3 s in a new process here) and the context
    is unpacked; runs wait for that."""

    def __init__(self, ref_box, out: str, run_kw: dict, env_check: tuple[bytes, dict[str, str]] | None = None):
        self.env_ok = env_check is None or _holds(*env_check)
        self.run_kw = run_kw
        self._ready = threading.Event()
        self._error: BaseException | None = None
        if self.env_ok:
            threading.Thread(target=self._get_ready, args=(ref_box, out), name="rlmj-actor-ready", daemon=True).start()

    def _get_ready(self, ref_box, out: str) -> None:
        try:
            from ..engine import forkserver
            from ..engine.models import load_litellm, warm_litellm
            from .store import Store

            forkserver.prestart_in_background()
            warm_litellm(load_litellm())
            self.ctx = _unpack(ref_box)
            self.store = Store(out)
            self.stop = _FileStop(self.store.out / "STOP")
            self.closer = WorkerCloser()
            self.files = ContextFiles()
        except BaseException as e:  # raised by every run on this actor
            self._error = e
        finally:
            self._ready.set()

    def has_env(self) -> bool:
        return self.env_ok

    def run(self, spec) -> dict:
        if not self.env_ok:  # restarted on a node without the driver's keys (made without a runtime environment)
            raise RuntimeError("this Ray node's environment lacks the model keys and endpoints the driver has")
        self._ready.wait()
        if self._error is not None:
            raise self._error
        return run_one(
            spec,
            self.ctx,
            self.store.trace_path(spec.key),
            self.run_kw,
            stop=self.stop,
            executor="ray",
            closer=self.closer,
            context_files=self.files,
        )

    def drain(self) -> None:
        """Every REPL worker closed (asked before the actor is killed)."""
        if self._ready.is_set() and self._error is None:
            self.closer.drain()
            self.files.close()


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
    """`group_size`: runs in flight on one actor (its threads); default concurrency / the cluster's CPUs, so there
    are as many actors as CPUs (never more than the concurrency)."""
    ray = _ray()
    if group_size is not None and (not isinstance(group_size, int) or group_size < 1):
        raise ArgumentError(f"batch: group_size must be a positive int, got {group_size!r}")
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    if group_size is None:
        cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        group_size = max(1, -(-concurrency // cpus))
    n_actors = max(1, min(-(-concurrency // group_size), len(job.todo)))
    stop_file = job.store.out / "STOP"
    stop_file.unlink(missing_ok=True)
    ctx_box = [ctx.content_hash, ray.put(pack_context(ctx))]  # in a list: actors fetch it themselves, once
    env_vars = forwarded_env(env)
    out = str(job.store.out.resolve())

    def make(runtime_env: dict | None, env_check) -> list:
        # A run mostly waits on the model: a small CPU share per actor lets them share a few cores.
        cls = ray.remote(RlmjBatchRunner).options(
            max_concurrency=group_size,
            max_restarts=MAX_RETRIES,
            max_task_retries=MAX_RETRIES,
            num_cpus=num_cpus,
            **({"runtime_env": runtime_env} if runtime_env else {}),
        )
        return [cls.remote(ctx_box, out, job.run_kw, env_check) for _ in range(n_actors)]

    actors: list = []
    load = [0] * n_actors  # runs in flight on each actor
    todo = list(reversed(job.todo))
    running: dict = {}  # ref -> (spec, actor index)

    def drain(timeout: float) -> None:
        ready, rest = ray.wait(list(running), num_returns=1, timeout=timeout)  # as soon as one run ends
        if ready and rest:
            ready += ray.wait(rest, num_returns=len(rest), timeout=0)[0]  # and every other that has
        for ref in ready:
            spec, a = running.pop(ref)
            load[a] -= 1
            _collect(ray, job, ref, spec)

    try:
        actors[:] = make(None, _digests(env_vars) if env_vars else None)
        if env_vars and not all(ray.get([a.has_env.remote() for a in actors])):
            for actor in actors:
                ray.kill(actor, no_restart=True)
            actors[:] = make({"env_vars": env_vars}, None)
        while todo or running:
            while todo and len(running) < concurrency and job.may_start():
                a = load.index(min(load))
                spec = todo.pop()
                running[actors[a].run.remote(spec)] = (spec, a)
                load[a] += 1
            job.progress["running"] = len(running)
            if not running:
                break
            drain(0.5)
    except KeyboardInterrupt:
        job.interrupt()
        stop_file.touch()
        try:
            deadline = time.monotonic() + 120
            while running and time.monotonic() < deadline:
                drain(1)
        except KeyboardInterrupt:
            pass  # a second Ctrl-C: leave now; the actors (and the runs on them) are killed below
    finally:
        job.progress["running"] = 0
        stop_file.unlink(missing_ok=True)
        try:
            if not running:  # every run ended: their workers' closes are done before the actors go
                with contextlib.suppress(Exception):  # (a dead actor's workers died with it)
                    ray.get([a.drain.remote() for a in actors], timeout=10)
        finally:
            for actor in actors:  # they hold the context: not kept past the batch
                ray.kill(actor, no_restart=True)


def _collect(ray, job: Job, ref, spec) -> None:
    try:
        row = ray.get(ref)
    except Exception as e:  # the actor could not run it (its setup failed) or died MAX_RETRIES + 1 times: a row
        first = str(e).splitlines()[0][:300] if str(e) else ""
        cause = getattr(e, "cause", None)
        if isinstance(e, ray.exceptions.RayTaskError) and cause is not None:
            msg = f"ray actor could not run it: {type(cause).__name__}: {str(cause)[:300]}"
        else:
            msg = f"ray worker failed after {MAX_RETRIES} retries: {type(e).__name__}: {first}"
        row = blank_row(spec, job.store.trace_path(spec.key), "ray", error=msg)
    job.charge(row)
    job.record(row)
