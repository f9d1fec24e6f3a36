"""The REPL worker, parent side: code written by a model runs in a separate, sandboxed process, never in the kernel.

One persistent worker per run holds the context (read-only) and the variables across steps. `execute` sends code,
services the worker's sub_llm / sub_llm_batch / rlm calls through `on_call` while it waits, and returns an
ExecResult. Every frame from the worker is hostile input: it is checked (schema, size, the call ids in order, the
calls per step) before anything is done with it, and a frame that breaks the protocol kills the worker.
The step's wall-time limit covers the model calls the step makes (`step_deadline` tells `on_call` how long is left).
When the worker dies (wall-clock timeout, CPU limit, a crash, os._exit) the step is "killed" with the
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

from . import forkserver, sandbox
from ._worker_main import KEEP_CHARS, recv, send
from .budget import DEFAULT_MEMORY_MB, DEFAULT_STEP_TIMEOUT_S, DEFAULT_SUB_CALLS_PER_STEP

START_TIMEOUT_S = 120.0  # loading a large context into the worker can take a while
_PKG_ROOT = str(Path(__file__).resolve().parents[2])  # the folder holding rlm_jupyter/

# What the parent accepts from a worker (anything beyond is a protocol error: the worker is killed).
MAX_FRAME_FROM_WORKER = 40 * 1024 * 1024  # 2 x 2,000,000 kept characters, JSON-escaped, plus the rest
MAX_PROMPT_CHARS = 2_000_000  # one sub_llm prompt / rlm question
MAX_BATCH = 1_000  # prompts in one sub_llm_batch call
MAX_PROMPT_CHARS_PER_STEP = 20_000_000  # all the prompts of one step (each one is recorded in the trace)
MAX_QUERIES = 2_000  # query records per step (more are dropped and counted)
MAX_QUERY_BYTES = 200_000  # one query record, as JSON
MAX_VARIABLES = 2_000
MAX_MODEL_NAME = 300
CALLS = {"sub_llm", "sub_llm_batch", "rlm"}


@dataclass
class Limits:
    step_timeout_s: float = DEFAULT_STEP_TIMEOUT_S  # wall time of a step, the model calls it makes included
    memory_mb: int = DEFAULT_MEMORY_MB
    cpu_s: float | None = None  # per step CPU time, default = step_timeout_s
    output_chars: int = 20_000  # what the model is shown; the trace keeps the full size
    sub_calls_per_step: int = DEFAULT_SUB_CALLS_PER_STEP  # sub_llm prompts + rlm calls one step may make


class ProtocolError(ValueError):
    """A frame from the worker that the protocol does not allow."""


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

    def __init__(
        self,
        context_path=None,
        *,
        limits: Limits | None = None,
        on_call: Callable[[str, dict], Any] | None = None,
        isolation: str | None = None,
        allow_unsandboxed: bool = False,
    ):
        self.limits = limits or Limits()
        self.on_call = on_call
        self.sandbox: str = sandbox.choose(isolation)
        if self.sandbox == "rlimits" and not allow_unsandboxed:
            raise sandbox.UnsandboxedError(sandbox.UNSANDBOXED_MESSAGE)
        self.restarts = 0
        self.uid: int | None = None  # the worker's uid, as it reported it
        self.step_deadline: float | None = None  # time.monotonic() by which the running step must end
        self.prestarted = False  # the first start found the fork server's template ready (forkserver.py)
        self.start_wait_s: float | None = None  # seconds the first start took
        sweep_stale()
        self._fs = forkserver.get(self.sandbox) if _forkable(context_path) else None
        self._base = Path(
            tempfile.mkdtemp(prefix=f"rlm-worker-{os.getpid()}-", dir=self._fs.pool if self._fs is not None else None)
        )
        self.workdir = self._base / "work"
        self.workdir.mkdir(mode=0o700)
        self._drop = sandbox.drops_to_nobody()
        if self._drop:  # the worker runs as nobody: its folder is its own; the base only lets it pass (0711)
            os.chown(self.workdir, sandbox.NOBODY, sandbox.NOBODY)
            os.chmod(self._base, 0o711)
        self._context_path = self._place_context(context_path)
        self._cgroup = (
            sandbox.MemoryCgroup.create(self._base.name, _cgroup_mb(self.limits.memory_mb))
            if self.limits.memory_mb
            else None
        )
        self._proc: subprocess.Popen | None = None
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._seq = 0
        self._finalizer = weakref.finalize(self, _cleanup, [None], self._base, self._cgroup)

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

    @property
    def starts_off_thread(self) -> bool:
        """Whether `start(off_thread=True)` will start this worker: a fork of the fork server's template is not a
        child of the thread that asks for it, so any thread may ask. A worker started alone is: its death signal
        (PR_SET_PDEATHSIG, bwrap's --die-with-parent) fires when the thread that started it ends."""
        return self._fs is not None and not self._fs.dead

    def start(self, *, off_thread: bool = False) -> bool:
        """Start the worker (a no-op while it runs). `off_thread`: the caller is a thread that may end before the
        worker; then only a fork is made, and False returned when there is no template to fork (the caller then
        starts the worker on a thread that outlives it)."""
        if self._proc is not None and self._proc.poll() is None:
            return True
        t0 = time.monotonic()
        first = self.start_wait_s is None
        if self._fs is not None and not self._fs.dead:
            if first:
                self.prestarted = self._fs.ready
            try:
                self._start_forked()
            finally:
                if first:
                    self.start_wait_s = time.monotonic() - t0
            return True
        if off_thread:
            return False
        try:
            self._start_alone()
        finally:
            if first:
                self.start_wait_s = time.monotonic() - t0
        return True

    def _start_forked(self) -> None:
        """A fresh fork of the fork server's template (forkserver.py), with this run's folder, cgroup and context."""
        parent, child = socket.socketpair()
        parent.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)  # the "ready" frame says the worker's pid
        seccomp = self.sandbox != "rlimits" and sandbox.seccomp_available()
        config = {
            "memory_mb": self.limits.memory_mb,
            "seccomp": seccomp,
            "drop": self._drop,
            "cgroup": self._cgroup is not None,
            "workdir": str(self.workdir),
            "pool": str(self._fs.pool) if self.sandbox == "bwrap" else None,
            "hide": self._keep_paths() if self._drop and self.sandbox != "bwrap" else None,
        }
        fds: dict[str, int] = {"sock": child.fileno()}
        opened = []
        try:
            out = os.open(self._base / "out.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            err = os.open(self._base / "err.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            opened += [out, err]
            fds.update(out=out, err=err)
            if self._context_path:
                folder = os.open(os.path.dirname(self._context_path), os.O_RDONLY | os.O_DIRECTORY)
                opened.append(folder)
                fds["context"] = folder
                config["context_name"] = os.path.basename(self._context_path)
            if self._cgroup is not None:
                cg = os.open(self._cgroup.procs, os.O_WRONLY)
                opened.append(cg)
                fds["cgroup"] = cg
            try:
                proc = self._fs.spawn(config, fds)
            except RuntimeError as e:
                parent.close()
                raise WorkerError(f"the REPL worker did not start ({self.sandbox}, forked): {e}") from None
        finally:
            for f in opened:
                os.close(f)
            child.close()
        self._proc = proc
        self._sock = parent
        self._seq = 0
        self._next_call = 1
        self._finalizer.detach()
        self._finalizer = weakref.finalize(self, _cleanup, [self._proc], self._base, self._cgroup)
        self._await_ready()

    def _start_alone(self) -> None:
        parent, child = socket.socketpair()
        seccomp = self.sandbox != "rlimits" and sandbox.seccomp_available()  # bwrap too: AF_VSOCK, io_uring, …
        config = {
            "context": self._context_path,
            "memory_mb": self.limits.memory_mb,
            "seccomp": seccomp,
            "drop": self._drop,
            "cgroup": self._cgroup is not None,
            "hide": self._keep_paths() if self._drop and self.sandbox != "bwrap" else None,
            "ppid": None if self.sandbox == "bwrap" else os.getpid(),
            "libs": sandbox.library_names() if seccomp else {},
        }
        boot = (
            f"import sys; sys.path.insert(0, {_PKG_ROOT!r}); from rlm_jupyter.engine._worker_main import main; main()"
        )
        py = [sys.executable, "-I", "-c", boot, str(child.fileno()), _json(config)]
        env = sandbox.worker_env(self.workdir)
        argv = sandbox.worker_argv(
            self.sandbox,
            py,
            self.workdir,
            self._readonly_paths(),
            env,
            cgroup_procs=self._cgroup.procs if self._cgroup else None,
        )
        with _private(self._base / "out.log") as out, _private(self._base / "err.log") as err:
            self._proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                pass_fds=(child.fileno(),),
                cwd=self.workdir,
                env=env,
                start_new_session=True,
            )
        child.close()
        self._sock = parent
        self._seq = 0
        self._next_call = 1
        self._finalizer.detach()
        self._finalizer = weakref.finalize(self, _cleanup, [self._proc], self._base, self._cgroup)
        self._await_ready()

    def _await_ready(self) -> None:
        forked = getattr(self._proc, "forked", False)
        try:
            msg = self._recv(time.monotonic() + START_TIMEOUT_S, creds=forked)
        except ProtocolError as e:
            msg = {"op": "fatal", "error": str(e)}
        if forked:
            with contextlib.suppress(OSError):
                self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 0)
        if msg is None or msg.get("op") != "ready":
            why = msg.get("error") if msg else f"no answer within {START_TIMEOUT_S:g} s"
            tail = self._log_tail("err.log")
            self._kill()
            how = ", forked" if forked else ""
            raise WorkerError(
                f"the REPL worker did not start ({self.sandbox}{how}): {str(why)[:500]}" + (f"\n{tail}" if tail else "")
            )
        self.uid = msg.get("uid") if isinstance(msg.get("uid"), int) else None

    def _keep_paths(self) -> dict[str, list[str]]:
        """What the fallback's private mount namespace binds back over the hidden /root, /home and /tmp."""
        return {"ro": sorted({*sandbox.python_roots(), _PKG_ROOT}), "rw": [str(self.workdir)]}

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
        if self._cgroup is not None:  # what left the process group (setsid) is still in the cgroup
            self._cgroup.kill_all()
        if self._sock is not None:
            self._sock.close()
        self._proc = self._sock = None

    # ---- steps ---------------------------------------------------------------------------------------------------

    def execute(self, code: str, deadline: float | None = None) -> ExecResult:
        """Run one step. `deadline` (time.monotonic()) can cut the step shorter than the step timeout, e.g. to
        what is left of the run's seconds budget."""
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self.start()
            lim = self.limits
            cpu = lim.cpu_s if lim.cpu_s is not None else lim.step_timeout_s
            offsets = self._log_sizes()
            t0 = time.monotonic()
            self._seq += 1
            self.step_deadline = t0 + lim.step_timeout_s
            budget_cut = deadline is not None and deadline < self.step_deadline
            if budget_cut:
                self.step_deadline = deadline
            protocol = None
            try:
                self._drain()
                send(self._sock, {"op": "exec", "seq": self._seq, "code": code, "cpu_s": cpu})
                msg = self._wait_result(self.step_deadline)
            except KeyboardInterrupt:  # Ctrl-C in the kernel: stop the code; the next step gets a fresh worker
                self._kill()
                raise
            except ProtocolError as e:
                msg, protocol = None, str(e)
            except OSError:
                msg = None
            finally:
                self.step_deadline = None
            if msg is not None:
                return self._result(msg, offsets)
            return self._killed(protocol, offsets, time.monotonic() - t0, budget_cut)

    def _drain(self) -> None:
        """Frames nobody asked for (sent by model code behind the REPL's back after its step ended) are dropped."""
        while select.select([self._sock], [], [], 0)[0]:
            try:
                self._recv(time.monotonic() + 0.05)
            except ProtocolError:
                return
            if self._proc is None or self._proc.poll() is not None:
                return

    def _wait_result(self, deadline: float) -> dict | None:
        """Frames until this step's result; sub-model calls are serviced on the way, and their time counts towards
        the step's limit. None when the worker died or ran out of time; ProtocolError on a frame out of order."""
        calls = chars = 0
        while True:
            msg = self._recv(deadline)
            if msg is None:
                return None
            op = msg.get("op")
            if op == "result":
                return _check_result(msg, self._seq)
            if op != "call":
                raise ProtocolError(f"unexpected frame {str(op)[:40]!r} during a step")
            kind, payload = _check_call(msg, self._next_call)
            self._next_call += 1
            n = len(payload["prompts"]) if kind == "sub_llm_batch" else 1
            calls += n
            chars += sum(
                len(v) for v in (payload.get("prompts") or [payload.get("prompt") or payload.get("question") or ""])
            )
            if calls > self.limits.sub_calls_per_step or chars > MAX_PROMPT_CHARS_PER_STEP:
                err = (
                    f"Error: sub-call limit reached: at most {self.limits.sub_calls_per_step} sub-calls (a batch "
                    f"counts each prompt) and {MAX_PROMPT_CHARS_PER_STEP:,} prompt characters per step; not sent"
                )
                value = [err] * n if kind == "sub_llm_batch" else err
            elif time.monotonic() >= deadline:
                return None
            else:
                value = self._service(kind, payload)
            send(self._sock, {"op": "reply", "id": msg["id"], "value": value})

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

    def _recv(self, deadline: float, creds: bool = False) -> dict | None:
        """The next frame, or None when the deadline passes or the worker dies (polled every 0.2 s). A frame over
        MAX_FRAME_FROM_WORKER or not a JSON object raises ProtocolError. `creds`: a forked worker's "ready"
        frame, whose sender pid (SO_PASSCRED, translated by the kernel into this pid namespace) is the worker's."""
        sock = self._sock
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([sock], [], [], min(left, 0.2))
            if ready:
                sock.settimeout(max(left, 0.05))
                try:
                    if creds:
                        self._proc.pid = _sender_pid(sock) or self._proc.pid
                    return recv(sock, MAX_FRAME_FROM_WORKER)
                except TimeoutError:
                    return None
                except (EOFError, OSError):
                    return self._reap()
                except ValueError as e:  # too big, not JSON, not an object
                    raise ProtocolError(str(e)[:300]) from None
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
        return ExecResult(
            stdout=msg["stdout"] + out,
            stderr=msg["stderr"] + err,
            status=msg["status"],
            error=msg["error"],
            duration_s=msg["duration_s"],
            queries=msg["queries"],
            answer=msg["answer"],
            variables=msg["variables"],
        )

    def _killed(
        self, protocol: str | None, offsets: tuple[int, int], elapsed: float, budget_cut: bool = False
    ) -> ExecResult:
        proc = self._proc
        timed_out = proc is not None and proc.poll() is None  # still alive: it ran out of time
        oom = self._cgroup is not None and self._cgroup.oom_killed()
        self._kill()  # after this, returncode is known
        if protocol is not None:
            reason = f"protocol error: {protocol} (the worker was killed)"
        elif timed_out and budget_cut:
            reason = "TimeoutError: the run's seconds budget ran out during the step"
        elif timed_out:
            reason = f"TimeoutError: step exceeded {self.limits.step_timeout_s:g} s (model calls included)"
        else:
            reason = self._death_reason(proc.returncode if proc else None, getattr(proc, "forked", False))
            if oom:
                reason += f": memory limit of {_cgroup_mb(self.limits.memory_mb)} MB (cgroup) exceeded"
        out, err = self._log_since(offsets)
        try:
            self.restart()
            reason += "; a fresh worker was started: variables from earlier steps are lost"
        except WorkerError as e:
            reason += f"; restarting the worker failed: {e}"
        return ExecResult(stdout=out, stderr=err, status="killed", error=reason, duration_s=elapsed)

    def _death_reason(self, rc: int | None, forked: bool = False) -> str:
        if rc is None:
            return "worker died"
        bwrap = self.sandbox == "bwrap" and not forked  # bwrap reports a signal as 128+signal
        sig = -rc if rc < 0 else (rc - 128 if bwrap and rc > 128 else None)
        if sig is None:
            return f"worker died (exit status {rc}: os._exit or a fatal error)"
        name = _signal_name(sig)
        if sig == signal.SIGXCPU:
            cpu = self.limits.cpu_s if self.limits.cpu_s is not None else self.limits.step_timeout_s
            return f"worker died (signal {sig}: {name}): CPU time limit of {cpu:g} s exceeded"
        hint = {
            signal.SIGSEGV: "segmentation fault",
            signal.SIGBUS: "bus error",
            signal.SIGABRT: "aborted",
            signal.SIGKILL: "killed, possibly out of memory",
        }.get(sig)
        return f"worker died (signal {sig}: {name}" + (f", {hint})" if hint else ")")

    # ---- variables -----------------------------------------------------------------------------------------------

    def get_var(self, name: str) -> str:
        """str() of a REPL variable (for FINAL_VAR); KeyError if it is not defined."""
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                raise KeyError(f"{name!r}: the worker is not running (no variables)")
            try:
                self._drain()
                send(self._sock, {"op": "get_var", "name": name})
                msg = self._recv(time.monotonic() + max(self.limits.step_timeout_s, 5.0))
            except (ProtocolError, OSError):
                msg = None
        if msg is None or msg.get("op") != "var":
            raise KeyError(f"{name!r}: the worker did not answer")
        if "error" in msg:
            raise KeyError(_text(msg["error"], 500))
        if not isinstance(msg.get("value"), str):
            raise KeyError(f"{name!r}: the worker sent no text")
        return _text(msg["value"], KEEP_CHARS)

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


# ---- checks on what the worker sends (it runs code nobody vetted) ------------------------------------------------


def _text(value, cap: int) -> str:
    s = value if isinstance(value, str) else ""
    return s if len(s) <= cap else s[:cap] + f"\n[parent: {len(s) - cap:,} more characters dropped]\n"


def _check_call(msg: dict, expected_id: int) -> tuple[str, dict]:
    """A call frame: the next id in order, a known kind, a payload of the right shape and size."""
    if msg.get("id") != expected_id:
        raise ProtocolError(f"call id {str(msg.get('id'))[:30]} out of order (expected {expected_id})")
    kind, payload = msg.get("kind"), msg.get("payload")
    if kind not in CALLS or not isinstance(payload, dict):
        raise ProtocolError(f"unknown call {str(kind)[:40]!r}")
    model = payload.get("model")
    if model is not None and (not isinstance(model, str) or len(model) > MAX_MODEL_NAME):
        raise ProtocolError("call: model must be a short string or null")
    if kind == "sub_llm":
        prompt = payload.get("prompt")
        if not isinstance(prompt, str) or len(prompt) > MAX_PROMPT_CHARS:
            raise ProtocolError(f"sub_llm: prompt must be a string of at most {MAX_PROMPT_CHARS:,} characters")
        return kind, {"prompt": prompt, "model": model}
    if kind == "sub_llm_batch":
        prompts = payload.get("prompts")
        if (
            not isinstance(prompts, list)
            or len(prompts) > MAX_BATCH
            or not all(isinstance(p, str) and len(p) <= MAX_PROMPT_CHARS for p in prompts)
        ):
            raise ProtocolError(f"sub_llm_batch: prompts must be a list of at most {MAX_BATCH} strings")
        return kind, {"prompts": prompts, "model": model}
    question, context = payload.get("question"), payload.get("context")
    if (
        not isinstance(question, str)
        or len(question) > MAX_PROMPT_CHARS
        or not (context is None or isinstance(context, str) and len(context) <= MAX_PROMPT_CHARS)
    ):
        raise ProtocolError("rlm: question (and context) must be strings")
    return kind, {"question": question, **({"context": context} if context is not None else {})}


def _check_result(msg: dict, seq: int) -> dict:
    """A result frame for step `seq`, cut to the caps (outputs to KEEP_CHARS, at most MAX_QUERIES queries)."""
    import orjson

    if msg.get("seq") != seq:
        raise ProtocolError(f"result for step {str(msg.get('seq'))[:30]}, expected {seq}")
    status = msg.get("status")
    if status not in ("ok", "error"):
        raise ProtocolError(f"result status {str(status)[:30]!r}")
    for key in ("stdout", "stderr"):
        if not isinstance(msg.get(key), str):
            raise ProtocolError(f"result {key} is not a string")
    queries, dropped = [], 0
    raw = msg.get("queries") if isinstance(msg.get("queries"), list) else []
    for q in raw[:MAX_QUERIES]:
        if (
            isinstance(q, dict)
            and isinstance(q.get("op"), str)
            and len(orjson.dumps(q, default=str)) <= MAX_QUERY_BYTES
        ):
            queries.append(
                {
                    "op": q["op"][:100],
                    "args": q.get("args") if isinstance(q.get("args"), dict) else {},
                    "result_ids": q.get("result_ids") if isinstance(q.get("result_ids"), list) else [],
                    "scores": q.get("scores") if isinstance(q.get("scores"), list) else None,
                    "latency_ms": q.get("latency_ms") if isinstance(q.get("latency_ms"), (int, float)) else None,
                    "ts": q.get("ts") if isinstance(q.get("ts"), (int, float)) else None,
                    **({"error": str(q["error"])[:1000]} if q.get("error") else {}),
                }
            )
        else:
            dropped += 1
    dropped += max(0, len(raw) - MAX_QUERIES)
    stderr = _text(msg["stderr"], KEEP_CHARS + 200)
    if dropped:
        stderr += f"\n[parent: {dropped:,} query records dropped (at most {MAX_QUERIES:,} per step)]\n"
    answer = msg.get("answer")
    if answer is not None:
        if not isinstance(answer, dict):
            raise ProtocolError("result answer is not an object")
        answer = {"content": _text(answer.get("content"), KEEP_CHARS), "ready": bool(answer.get("ready"))}
    variables = msg.get("variables") if isinstance(msg.get("variables"), list) else []
    duration = msg.get("duration_s")
    return {
        "stdout": _text(msg["stdout"], KEEP_CHARS + 200),
        "stderr": stderr,
        "status": status,
        "error": _text(msg.get("error"), 500) or None,
        "queries": queries,
        "answer": answer,
        "duration_s": float(duration) if isinstance(duration, (int, float)) else 0.0,
        "variables": [v[:200] for v in variables[:MAX_VARIABLES] if isinstance(v, str)],
    }


def _cgroup_mb(memory_mb: int) -> int:
    """The cgroup's limit: the data limit plus room for the interpreter, libraries and page cache, so an ordinary
    allocation bomb still meets RLIMIT_DATA first (a MemoryError, the worker lives) and the cgroup catches what that
    limit does not count (shared memory, tmpfs files)."""
    return int(memory_mb) + max(256, int(memory_mb) // 4)


def _private(path: Path):
    """Open a log for appending, readable by the kernel's user only."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    return os.fdopen(fd, "ab")


STALE_PREFIXES = ("rlm-worker-", "rlm-ctx-")


def sweep_stale() -> None:
    """Remove temp folders (worker folders, context copies) whose kernel died without cleaning up: the owner's pid is
    in the name. Once per process; only folders of this user, whose owner process is gone."""
    global _swept
    if _swept:
        return
    _swept = True
    base = Path(tempfile.gettempdir())
    me = os.geteuid()
    with contextlib.suppress(OSError):
        for d in base.iterdir():
            name = d.name
            if not name.startswith(STALE_PREFIXES):
                continue
            parts = name.split("-")
            pid = parts[2] if len(parts) >= 4 else ""  # rlm-worker-<pid>-<random>: older names carry no pid
            with contextlib.suppress(OSError):
                if (
                    pid.isdigit()
                    and int(pid) != os.getpid()
                    and d.lstat().st_uid == me
                    and d.is_dir()
                    and not d.is_symlink()
                    and not sandbox._alive(int(pid))
                ):
                    shutil.rmtree(d, ignore_errors=True)
    sandbox.sweep_cgroups()


_swept = False


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


def _forkable(context) -> bool:
    """A forked worker takes its context as an Arrow IPC file (or none): a folder of session files is loaded by a
    worker started on its own."""
    if context is None or not isinstance(context, (str, os.PathLike)):
        return True
    try:
        with open(context, "rb") as f:
            return f.read(6) == b"ARROW1"
    except OSError:
        return False


def _sender_pid(sock: socket.socket) -> int | None:
    """Peek at the next frame's header with its SCM_CREDENTIALS: the pid of the process that sent it."""
    import struct

    with contextlib.suppress(OSError):
        _, anc, _, _ = sock.recvmsg(1, socket.CMSG_SPACE(12), socket.MSG_PEEK)
        for level, kind, data in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS and len(data) >= 12:
                return struct.unpack("iII", data[:12])[0]
    return None


def _kill_proc(proc) -> None:
    """SIGKILL the worker's process group (the worker and anything it started outside bwrap; under bwrap the pid
    namespace and --die-with-parent take the rest down with it). A forked worker is pid 1 of its own pid
    namespace: killing it kills what it started."""
    if getattr(proc, "forked", False):
        proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
        return
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            proc.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


def _cleanup(procs: list, base: Path, cgroup=None) -> None:
    for p in procs:
        if p is not None:
            _kill_proc(p)
    shutil.rmtree(base, ignore_errors=True)
    if cgroup is not None:
        cgroup.remove()
