"""Append-only JSONL trace writing: each event is one line, flushed as soon as it is written, so a crash or an
interrupt keeps everything up to the last event."""

from __future__ import annotations

import itertools
import os
import time
import uuid
from pathlib import Path
from typing import IO, Any

import orjson

from .model import FORMAT, VERSION, Trace

# Secrets (API keys in the environment) are redacted from every event, in their common encodings: redact.py.
from .redact import Redactor, secret_values  # noqa: E402,F401 - re-exported: callers import them from here


class TraceInUseError(ValueError):
    """Another live run is writing the trace file this run was given."""


def check_path(path: str | Path) -> Path:
    """The trace file a run may write, or ValueError with what to do (a folder, a file that is not a regular one)."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise ValueError(f"trace path {path} is a folder: give a file name, e.g. {path / 'run.rlmtrace.jsonl'}")
    if path.exists() and not path.is_file():
        raise ValueError(f"trace path {path} is not a regular file: give a .rlmtrace.jsonl file name")
    return path


def open_for_run(path: Path) -> IO[bytes]:
    """Open a trace file for appending, held for this run alone: two runs appending to one file would interleave
    their events and readers would show only one run's answer. An advisory lock (flock) held while the file is
    open says so; it goes when the writer closes or its process dies. Appending after a finished run is fine."""
    path = check_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fh = open(path, "ab")  # noqa: SIM115 - held open (and locked) for the whole run, closed by TraceWriter.close
    try:
        import fcntl
    except ImportError:  # Windows: no flock, no check
        return fh
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        raise TraceInUseError(
            f"trace path {path} is being written by another run that is still going: give "
            "this run its own trace file (--trace FILE / trace_path=...)"
        ) from None
    except OSError:  # a file system without locks (some network mounts): write unchecked
        pass
    return fh


class TraceWriter:
    """Builds a `Trace` in memory and, when `path` is given, appends every event to a JSONL file as it happens."""

    def __init__(self, path: str | Path | None = None, *, redactor: Redactor | None = None, **header: Any):
        self.trace = Trace(header={"type": "header", "format": FORMAT, "version": VERSION, **header})
        self.redact = redactor or Redactor()
        self.path = Path(path) if path is not None else None
        self._fh: IO[bytes] | None = None
        self._seq = itertools.count()
        self._prefix = uuid.uuid4().hex[:8]
        if self.path is not None:
            self._fh = open_for_run(self.path)
            if os.fstat(self._fh.fileno()).st_size == 0:
                self._write(self.trace.header)

    def new_id(self, kind: str) -> str:
        return f"{kind}-{self._prefix}-{next(self._seq)}"

    def emit(
        self, type: str, parent: str | None, *, id: str | None = None, t: float | None = None, **fields: Any
    ) -> dict:
        """Record one event and return it (its `id` is what children name as `parent`)."""
        event = {"id": id or self.new_id(type), "parent": parent, "type": type, "t": time.time() if t is None else t}
        event.update(self.redact(fields))
        self.trace.append(event)
        self._write(event)
        return event

    def update(self, event: dict, **fields: Any) -> None:
        """Amend an event already emitted (e.g. a step's response once it arrives): re-written as a new line
        with the same id; readers keep the last version."""
        event.update(self.redact(fields))
        self._write(event)

    def _write(self, obj: dict) -> None:
        if self._fh is not None:
            self._fh.write(orjson.dumps(obj, default=str) + b"\n")
            self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __enter__(self) -> TraceWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
