"""A batch's REPL workers are closed on threads of their own, so a finished run hands back its row (and its slot to
the next run) without waiting for its worker to exit.

Closing a worker waits for its exit to be reported (the fork server's template reaps it) and removes its folder:
~20 ms a run with 16 runs in flight, ~3% of a 0.7 s run (benchmarks/batch.py). `drain()` waits for every close, so
no worker outlives the batch; a close asked for after `drain()`, or beyond the bounded queue, is made on the asking
thread, as a plain run's is.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from ..engine.worker import Worker


class WorkerCloser:
    def __init__(self, threads: int = 2, backlog: int = 4):
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="rlmj-close")
        self._open = True
        self._lock = threading.Lock()
        # At most this many workers wait for their close: beyond it the run closes its own, as before. Workers
        # started alone (no fork server) take ~0.1-0.2 s to exit; unbounded, the finished ones piled up and their
        # processes counted against uid nobody's RLIMIT_NPROC, which the new ones then hit (forks refused inside
        # the sandbox: "Unable to find libseccomp", 31-42 of 200 runs).
        self._backlog = threads + backlog
        self._pending = 0
        self.most_pending = 0  # the deepest the queue got (benchmarks, tests)

    def factory(self, context_file, *, limits=None, on_call=None) -> Worker:
        """A `worker_factory` for `rlm` (engine/protocols.py): the default worker, closed here."""
        return _ClosedLater(self, context_file, limits=limits, on_call=on_call)

    def close(self, worker: Worker) -> None:
        with self._lock:
            if self._open and self._pending < self._backlog:
                self._pending += 1
                self.most_pending = max(self.most_pending, self._pending)
                self._pool.submit(self._close, worker)
                return
        Worker.close(worker)

    def _close(self, worker: Worker) -> None:
        try:
            Worker.close(worker)
        finally:
            with self._lock:
                self._pending -= 1

    def drain(self) -> None:
        with self._lock:
            self._open = False
        self._pool.shutdown(wait=True)


class _ClosedLater(Worker):
    def __init__(self, closer: WorkerCloser, context_file, **kw):
        super().__init__(context_file, **kw)
        self._closer = closer

    def close(self) -> None:
        self._closer.close(self)
