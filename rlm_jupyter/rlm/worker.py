"""The REPL worker, parent side: code written by a model runs in a separate, sandboxed process, never in the kernel.

One persistent worker per run holds the context (read-only) and the variables across steps. `execute` sends code,
services the worker's sub_llm / sub_llm_batch / rlm calls through `on_call` while it waits, and returns an
ExecResult. When the worker dies (wall-clock timeout, CPU limit, a crash, os._exit) the step is "killed" with the
reason, a fresh worker is started with the context reloaded, and the variables are lost (the error says so).
Isolation levels and what they guarantee: sandbox.py and docs/isolation.md.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import sandbox
from ._worker_main import recv, send

START_TIMEOUT_S = 120.0  # loading a large context into the worker can take a while
_PKG_ROOT = str(Path(__file__).resolve().parents[2])  # the folder holding rlm_jupyter/


@dataclass
class Limits:
    step_timeout_s: float = 60.0
    memory_mb: int = 2048
    cpu_s: float | None = None  # per step CPU time, default = step_timeout_s
    output_chars: int = 20_000  # what the model is shown; the trace keeps the full size


@dataclass
class ExecResult:
    stdout: str
    stderr: str
    status: str  # "ok" | "error" (code raised) | "killed" (timeout, memory, crash: worker restarted)
    error: str | None
    duration_s: float
    queries: list[dict] = field(default_factory=list)
    answer: dict | None = None
    variables: list[str] = field(default_factory=list)


class WorkerError(RuntimeError):
    """The worker could not be started (the message says why)."""


def save_context(ctx, path: Path) -> Path:
    """Write a Context where a worker can load it: `ctx.to_ipc(path)` (Arrow IPC + `<name>.json`), or, for a
    Context without it, the frame plus `<name>.sessions.json` with the per-session metadata (the worker reads both)."""
    path = Path(path)
    if hasattr(ctx, "to_ipc"):
        return Path(ctx.to_ipc(path))
    import orjson

    ctx.df.write_ipc(path)
    skip = {"columns", "_released"}
    sessions = []
    for s in ctx._sessions:
        meta = {f.name: getattr(s, f.name) for f in dataclasses.fields(s) if f.name not in skip}
        meta["n"] = len(s)
        sessions.append(meta)
    path.with_name(path.name + ".sessions.json").write_bytes(orjson.dumps({"sessions": sessions}, default=str))
    return path


class Worker:
    """A sandboxed Python REPL in its own process. `isolation` (or $RLM_JUPYTER_SANDBOX) forces a level:
    "bwrap", "rlimits+seccomp" or "rlimits"; default "auto" takes the best that works here."""

    def __init__(self, context_path=None, *, limits: Limits | None = None,
                 on_call: Callable[[str, dict], Any] | None = None, isolation: str | None = None):
        self.limits = limits or Limits()
        self.on_call = on_call
        self.sandbox: str = sandbox.choose(isolation)
        self.restarts = 0
        self._base = Path(tempfile.mkdtemp(prefix="rlm-worker-"))
        self.workdir = self._base / "work"
        self.workdir.mkdir()
        self._context_path = self._place_context(context_path)
        self._proc: subprocess.Popen | None = None
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._finalizer = weakref.finalize(self, _cleanup, [None], self._base)

    def _place_context(self, context) -> str | None:
        if context is None:
            return None
        if not isinstance(context, (str, os.PathLike)):  # a Context object: write it next to (not in) the workdir
            return str(save_context(context, self._base / "context.arrow"))
        p = Path(context).resolve()
        if not p.exists():
            raise FileNotFoundError(f"Worker: context file {p} does not exist")
        return str(p)

    # ---- lifecycle ---------------------------------------------------------------------------------------------

    def start(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            return
        parent, child = socket.socketpair()
        config = {"context": self._context_path, "memory_mb": self.limits.memory_mb,
                  "seccomp": self.sandbox == "rlimits+seccomp"}
        boot = (f"import sys; sys.path.insert(0, {_PKG_ROOT!r}); "
                "from rlm_jupyter.rlm._worker_main import main; main()")
        py = [sys.executable, "-I", "-c", boot, str(child.fileno()), _json(config)]
        env = sandbox.worker_env(self.workdir)
        argv = sandbox.worker_argv(self.sandbox, py, self.workdir, self._readonly_paths(), env)
        with open(self._base / "out.log", "ab") as out, open(self._base / "err.log", "ab") as err:
            self._proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                          pass_fds=(child.fileno(),), cwd=self.workdir, env=env,
                                          start_new_session=True)
        child.close()
        self._sock = parent
        self._finalizer.detach()
        self._finalizer = weakref.finalize(self, _cleanup, [self._proc], self._base)
        msg = self._recv(time.monotonic() + START_TIMEOUT_S)
        if msg is None or msg.get("op") != "ready":
            why = msg.get("error") if msg else f"no answer within {START_TIMEOUT_S:g} s"
            tail = self._log_tail("err.log")
            self._kill()
            raise WorkerError(f"the REPL worker did not start ({self.sandbox}): {why}" + (f"\n{tail}" if tail else ""))

    def _readonly_paths(self) -> list[str]:
        paths = [_PKG_ROOT]
        if self._context_path:
            paths.append(self._context_path)
            for suffix in (".json", ".sessions.json"):  # the sidecars of to_ipc / save_context
                if os.path.exists(self._context_path + suffix):
                    paths.append(self._context_path + suffix)
        return paths

    def restart(self) -> None:
        self._kill()
        self.restarts += 1
        self.start()

    def close(self) -> None:
        if self._sock is not None and self._proc is not None and self._proc.poll() is None:
            try:
                send(self._sock, {"op": "exit"})
                self._proc.wait(timeout=1)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self._kill()
        self._finalizer()

    def __enter__(self) -> Worker:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _kill(self) -> None:
        if self._proc is not None:
            _kill_proc(self._proc)
        if self._sock is not None:
            self._sock.close()
        self._proc = self._sock = None

    # ---- steps ---------------------------------------------------------------------------------------------------

    def execute(self, code: str) -> ExecResult:
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self.start()
            lim = self.limits
            cpu = lim.cpu_s if lim.cpu_s is not None else lim.step_timeout_s
            offsets = self._log_sizes()
            t0 = time.monotonic()
            try:
                send(self._sock, {"op": "exec", "code": code, "cpu_s": cpu})
                msg = self._wait_result(t0 + lim.step_timeout_s)
            except KeyboardInterrupt:  # Ctrl-C in the kernel: stop the code; the next step gets a fresh worker
                self._kill()
                raise
            except OSError:
                msg = None
            if msg is not None and msg.get("op") == "result":
                return self._result(msg, offsets)
            return self._killed(msg, offsets, time.monotonic() - t0)

    def _wait_result(self, deadline: float) -> dict | None:
        """Frames until the result; sub-model calls are serviced on the way (their time does not count towards
        the step timeout). None when the worker died or ran out of time."""
        while True:
            msg = self._recv(deadline)
            if msg is None or msg.get("op") != "call":
                return msg
            t = time.monotonic()
            value = self._service(msg.get("kind"), msg.get("payload") or {})
            deadline += time.monotonic() - t
            send(self._sock, {"op": "reply", "id": msg.get("id"), "value": value})

    def _service(self, kind: str, payload: dict):
        batch = kind == "sub_llm_batch"
        if self.on_call is None:
            err = f"Error: {kind} is not available (no model is connected to this worker)"
            return [err] * len(payload.get("prompts") or []) if batch else err
        try:
            value = self.on_call(kind, payload)
        except Exception as e:  # the model's code gets the error as text, never an exception from the parent
            err = f"Error: {type(e).__name__}: {e}"
            return [err] * len(payload.get("prompts") or []) if batch else err
        if batch:
            items = value if isinstance(value, (list, tuple)) else [value]
            return [_reply_text(v) for v in items]
        return _reply_text(value)

    def _recv(self, deadline: float) -> dict | None:
        """The next frame, or None when the deadline passes or the worker dies (polled every 0.2 s)."""
        sock = self._sock
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([sock], [], [], min(left, 0.2))
            if ready:
                sock.settimeout(max(left, 0.05))
                try:
                    return recv(sock)
                except TimeoutError:
                    return None
                except (EOFError, OSError, ValueError):
                    return self._reap()
                finally:
                    sock.settimeout(None)
            if self._proc.poll() is not None:
                return None

    def _reap(self) -> None:
        """The connection broke: the worker is dying; give it a moment so its exit status can be read."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._proc.wait(timeout=2)

    def _result(self, msg: dict, offsets: tuple[int, int]) -> ExecResult:
        out, err = self._log_since(offsets)
        return ExecResult(stdout=msg.get("stdout", "") + out, stderr=msg.get("stderr", "") + err,
                          status=msg.get("status", "error"), error=msg.get("error"),
                          duration_s=float(msg.get("duration_s", 0.0)), queries=msg.get("queries") or [],
                          answer=msg.get("answer"), variables=msg.get("variables") or [])

    def _killed(self, msg: dict | None, offsets: tuple[int, int], elapsed: float) -> ExecResult:
        proc = self._proc
        timed_out = proc is not None and proc.poll() is None  # still alive: it ran out of time
        self._kill()  # after this, returncode is known
        if msg is not None:
            reason = f"protocol error: unexpected frame {str(msg)[:100]}"
        elif timed_out:
            reason = f"TimeoutError: step exceeded {self.limits.step_timeout_s:g} s"
        else:
            reason = self._death_reason(proc.returncode if proc else None)
        out, err = self._log_since(offsets)
        try:
            self.restart()
            reason += "; a fresh worker was started: variables from earlier steps are lost"
        except WorkerError as e:
            reason += f"; restarting the worker failed: {e}"
        return ExecResult(stdout=out, stderr=err, status="killed", error=reason, duration_s=elapsed)

    def _death_reason(self, rc: int | None) -> str:
        if rc is None:
            return "worker died"
        sig = -rc if rc < 0 else (rc - 128 if self.sandbox == "bwrap" and rc > 128 else None)  # bwrap: 128+signal
        if sig is None:
            return f"worker died (exit status {rc}: os._exit or a fatal error)"
        name = _signal_name(sig)
        if sig == signal.SIGXCPU:
            cpu = self.limits.cpu_s if self.limits.cpu_s is not None else self.limits.step_timeout_s
            return f"worker died (signal {sig}: {name}): CPU time limit of {cpu:g} s exceeded"
        hint = {signal.SIGSEGV: "segmentation fault", signal.SIGBUS: "bus error", signal.SIGABRT: "aborted",
                signal.SIGKILL: "killed, possibly out of memory"}.get(sig)
        return f"worker died (signal {sig}: {name}" + (f", {hint})" if hint else ")")

    # ---- variables -----------------------------------------------------------------------------------------------

    def get_var(self, name: str) -> str:
        """str() of a REPL variable (for FINAL_VAR); KeyError if it is not defined."""
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                raise KeyError(f"{name!r}: the worker is not running (no variables)")
            send(self._sock, {"op": "get_var", "name": name})
            msg = self._recv(time.monotonic() + max(self.limits.step_timeout_s, 5.0))
        if msg is None or msg.get("op") != "var":
            raise KeyError(f"{name!r}: the worker did not answer")
        if "error" in msg:
            raise KeyError(msg["error"])
        return msg["value"]

    # ---- worker logs (fd 1 and 2: output of C code and subprocesses, faulthandler stacks) ------------------------

    def _log_sizes(self) -> tuple[int, int]:
        return tuple(_size(self._base / n) for n in ("out.log", "err.log"))

    def _log_since(self, offsets: tuple[int, int], cap: int = 200_000) -> tuple[str, str]:
        texts = []
        for name, off in zip(("out.log", "err.log"), offsets, strict=True):
            try:
                with open(self._base / name, "rb") as f:
                    f.seek(off)
                    texts.append(f.read(cap).decode("utf-8", "replace"))
            except OSError:
                texts.append("")
        return texts[0], texts[1]

    def _log_tail(self, name: str, n: int = 2000) -> str:
        try:
            return (self._base / name).read_bytes()[-n:].decode("utf-8", "replace").strip()
        except OSError:
            return ""

    def __repr__(self) -> str:
        state = "running" if self._proc is not None and self._proc.poll() is None else "stopped"
        return f"<Worker {state}, sandbox={self.sandbox}, restarts={self.restarts}, workdir={self.workdir}>"


def _reply_text(value) -> str:
    if isinstance(value, BaseException):
        return f"Error: {type(value).__name__}: {value}"
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return str(getattr(value, "text", value))  # a models.Completion carries its text


def _signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


def _size(p: Path) -> int:
    try:
        return p.stat().st_size
    except OSError:
        return 0


def _json(obj) -> str:
    import json

    return json.dumps(obj)


def _kill_proc(proc: subprocess.Popen) -> None:
    """SIGKILL the worker's process group (the worker and anything it started outside bwrap; under bwrap the pid
    namespace and --die-with-parent take the rest down with it)."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            proc.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


def _cleanup(procs: list, base: Path) -> None:
    for p in procs:
        if p is not None:
            _kill_proc(p)
    shutil.rmtree(base, ignore_errors=True)
