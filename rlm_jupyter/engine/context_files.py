"""Context files shared by many runs: each context is written once (Arrow IPC, what a REPL worker loads), not once
per run. A batch of 200 runs over one context wrote it 200 times (~2 ms of the driver's CPU a run for the bundled
samples, and the whole context's size in disk writes for a large one); `rj.batch` now hands its runs one
`ContextFiles`, removed when the batch ends.

A context's file is keyed by the object: its marks (preserve / prune / symbols, in the file's sidecar) must not change
while the runs that share it go, which holds inside a batch (no user code runs there). A plain `rlm(...)` call writes
its own file, as before."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import weakref
from pathlib import Path


class ContextFiles:
    def __init__(self):
        # 0700, named after this process: a kernel killed mid-batch leaves it, and the next start removes it
        # (worker.sweep_stale) once this pid is gone
        self.folder = Path(tempfile.mkdtemp(prefix=f"rlm-ctx-{os.getpid()}-"))
        self._files: dict[int, tuple[object, Path]] = {}  # id(ctx) -> (ctx, its file): the ctx kept, so no id reuse
        self._lock = threading.Lock()
        # also removed when the last run holding this object lets it go (runs a second Ctrl-C left behind)
        self._remove = weakref.finalize(self, shutil.rmtree, self.folder, True)

    def path(self, ctx, write) -> Path:
        """The file of `ctx`, written by `write(ctx, path)` the first time it is asked for."""
        with self._lock:
            known = self._files.get(id(ctx))
            if known is not None:
                return known[1]
            path = self.folder / f"context-{len(self._files)}.arrow"
            write(ctx, path)
            self._files[id(ctx)] = (ctx, path)
            return path

    def close(self) -> None:
        with self._lock:
            self._files.clear()
            self._remove()
