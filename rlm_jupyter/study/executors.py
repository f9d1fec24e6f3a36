"""The threads executor: runs in this process, `concurrency` at a time. A run is mostly waiting (on the model and
on its REPL worker, a separate process), so threads suffice; each run has its own worker process."""

from __future__ import annotations

from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

from .runner import Job, run_one


def run_threads(job: Job, ctx, *, concurrency: int, models=None) -> None:
    pending = list(reversed(job.todo))  # pop() takes them in plan order
    running = {}
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="rlmj-batch")
    try:
        while pending or running:
            while pending and len(running) < concurrency and job.may_start():
                spec = pending.pop()
                fut = pool.submit(
                    run_one,
                    spec,
                    ctx,
                    job.store.trace_path(spec.key),
                    job.run_kw,
                    models=models,
                    stop=job.stop,
                    executor="threads",
                )
                running[fut] = spec
            job.progress["running"] = len(running)
            if not running:
                break  # stopped (budget or interrupt) with runs left: they stay for the next batch
            finished, _ = wait(running, timeout=0.5, return_when=FIRST_COMPLETED)
            for fut in finished:
                running.pop(fut)
                job.record(fut.result())
    except KeyboardInterrupt:
        # Ctrl-C: no new runs; the running ones stop at their next step (status "interrupted", re-run next time)
        # and are recorded with their traces. A second Ctrl-C leaves without waiting.
        job.interrupt()
        try:
            for fut in list(running):
                job.record(fut.result())
                running.pop(fut)
        except KeyboardInterrupt:
            pass
    finally:
        job.progress["running"] = 0
        pool.shutdown(wait=False, cancel_futures=True)
