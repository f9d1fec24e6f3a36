"""The threads executor: runs in this process, `concurrency` at a time. A run is mostly waiting (on the model and
on its REPL worker, a separate process), so threads suffice; each run has its own worker process.

Each of the `concurrency` slots is a thread that charges its finished run to the overall budget and takes its next
run at once (through the batch's thread, the refill took ~10 ms a run more); the batch's thread records the rows
(disk, counters, display) as they arrive through a queue."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections import deque

from ..engine.context_files import ContextFiles
from .closer import WorkerCloser
from .runner import Job, run_one

_SLOT_ENDED = object()


def run_threads(job: Job, ctx, *, concurrency: int, models=None) -> None:
    pending = deque(job.todo)
    lock = threading.Lock()
    rows: queue.Queue = queue.Queue()
    closer = WorkerCloser()
    files = ContextFiles()

    def next_spec(finished: dict | None = None):
        with lock:
            if finished is not None:
                job.charge(finished)
            if pending and job.may_start():
                job.progress["running"] += 1
                return pending.popleft()
        return None

    def slot() -> None:
        try:
            row = None
            while (spec := next_spec(row)) is not None:
                row = run_one(
                    spec,
                    ctx,
                    job.store.trace_path(spec.key),
                    job.run_kw,
                    models=models,
                    stop=job.stop,
                    executor="threads",
                    closer=closer,
                    context_files=files,
                )
                rows.put(row)
        except BaseException as e:  # not a failed run (that is a row): a defect, raised on the batch's thread
            rows.put(e)
        finally:
            rows.put(_SLOT_ENDED)

    def record_until_done() -> None:
        while live[0]:
            try:
                item = rows.get(timeout=0.5)
            except queue.Empty:
                continue
            if item is _SLOT_ENDED:
                live[0] -= 1
            elif isinstance(item, BaseException):
                job.interrupt()
                raise item
            else:
                with lock:
                    job.progress["running"] -= 1
                job.record(item)

    slots = [
        threading.Thread(target=slot, name=f"rlmj-batch-{i}", daemon=True)
        for i in range(max(1, min(concurrency, len(pending))))
    ]
    live = [len(slots)]
    try:
        for t in slots:
            t.start()
        record_until_done()
    except KeyboardInterrupt:
        # Ctrl-C: no new runs; the running ones stop at their next step (status "interrupted", re-run next time)
        # and are recorded with their traces. A second Ctrl-C leaves without waiting.
        job.interrupt()
        with contextlib.suppress(KeyboardInterrupt):
            record_until_done()
    finally:
        job.progress["running"] = 0
        closer.drain()  # no worker outlives the batch (a second Ctrl-C leaves running runs to close their own)
        if not any(t.is_alive() for t in slots):  # else the runs a second Ctrl-C left remove it when they end
            files.close()
