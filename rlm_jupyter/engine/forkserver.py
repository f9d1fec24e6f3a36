"""The fork server: REPL workers forked from a clean, pre-initialised template instead of started from nothing.

A worker started on its own pays ~0.3 s of CPU before its first step (bubblewrap, a fresh interpreter, polars and
the context package imported, the seccomp filter built); a notebook's first `%%rlm` paid that while it waited,
and a batch of 200 runs paid it 200 times on two cores. The template is one process per isolation level, started
once (early, in the background: `prestart()`, called by `%load_ext rlm_jupyter` and `%rlm_load`) inside the same
sandbox a worker gets, with the worker's libraries imported and nothing else. It never loads a context, never
runs model code and is never handed a run's files except to pass them on: every worker is a fresh fork of it,
used by one run and thrown away, so nothing of one run (its context, its variables, its files) can reach another.

What the fork changes and what it does not (docs/isolation.md, "The fork server"): each forked worker gets its own
pid, mount and IPC namespaces, /proc of its own, only its own folder (the others are covered), its own memory
cgroup, its run's context (a folder descriptor, closed before the first step), then the same start-up as a worker
started alone: memory limit, uid 65534, death signal, seccomp filter, "ready".

Used only when the kernel runs as root (the template needs CAP_SYS_ADMIN to give each worker its namespaces) at
the `bwrap` and `rlimits+seccomp` levels, for contexts handed over as Arrow IPC files; elsewhere a worker starts on
its own, as before. `RLM_JUPYTER_FORKSERVER=0` turns it off.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from . import sandbox

ENV_VAR = "RLM_JUPYTER_FORKSERVER"  # "0": every worker starts on its own
START_TIMEOUT_S = 60.0
_PKG_ROOT = str(Path(__file__).resolve().parents[2])

_servers: dict[str, ForkServer] = {}
_lock = threading.Lock()


def enabled(level: str) -> bool:
    return (
        os.environ.get(ENV_VAR, "1") != "0"
        and level in ("bwrap", "rlimits+seccomp")
        and sandbox.drops_to_nobody()
        and hasattr(socket, "send_fds")
        and hasattr(os, "pidfd_open")
    )


def get(level: str) -> ForkServer | None:
    """The fork server of this level (started now if it was not), or None where it is not used."""
    if not enabled(level):
        return None
    with _lock:
        fs = _servers.get(level)
        if fs is None or fs.dead:
            fs = _servers[level] = ForkServer(level)
        return fs


def prestart(isolation: str | None = None) -> ForkServer | None:
    """Start the template of the level a run would use, in the background; returns at once. Never raises (a
    failure shows when a run starts its worker, which then starts on its own)."""
    try:
        return get(sandbox.choose(isolation))
    except Exception:
        return None


def prestart_in_background(isolation: str | None = None) -> threading.Thread:
    """prestart() in a thread, so the caller (e.g. `%load_ext`) does not wait for the bubblewrap probe."""
    t = threading.Thread(target=prestart, args=(isolation,), name="rlm-prestart", daemon=True)
    t.start()
    return t


class ForkedProcess:
    """A forked worker as the parent sees it: what `Worker` needs of a Popen (pid, poll, wait, returncode, kill).
    Its exit status comes from the template (the worker is not the kernel's child); `pid` (the worker's pid here,
    read from the credentials of its "ready" frame) is set once it is known."""

    forked = True

    def __init__(self, server: ForkServer, sid: int):
        self._server = server
        self.sid = sid
        self.pid: int | None = None
        self.returncode: int | None = None
        self._done = threading.Event()
        self._spawned = threading.Event()

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if not self._done.wait(timeout):
            raise subprocess.TimeoutExpired("rlm-worker (forked)", timeout)
        return self.returncode

    def kill(self) -> None:
        """SIGKILL the worker: it is pid 1 of its pid namespace, so everything it started dies with it. Its
        monitor is told too (the worker's pid is unknown before it said ready)."""
        if self.returncode is not None:
            return
        if self.pid is not None:
            with contextlib.suppress(OSError):
                os.kill(self.pid, 9)
        self._server._send({"op": "kill", "id": self.sid})

    def _exited(self, rc: int) -> None:
        self.returncode = rc
        self._spawned.set()
        self._done.set()


class ForkServer:
    """One template process of one isolation level, and the thread that started it and reads its reports (it must
    live as long as the template: the template's death signal fires when the thread that started it ends)."""

    def __init__(self, level: str):
        self.level = level
        self.dead = False
        self.error: str | None = None
        self.started_at = time.monotonic()
        self.ready_after: float | None = None  # seconds from start to ready
        self._ready = threading.Event()
        self._send_lock = threading.Lock()
        self._procs: dict[int, ForkedProcess] = {}
        self._next = 0
        self._ctrl: socket.socket | None = None
        self._proc: subprocess.Popen | None = None
        self.template_pid: int | None = None
        from .worker import sweep_stale

        sweep_stale()
        # the folder under which forked workers get theirs (bound into the template's sandbox); 0711: passable
        self.pool = Path(tempfile.mkdtemp(prefix=f"rlm-worker-{os.getpid()}-pool-"))
        os.chmod(self.pool, 0o711)
        self._thread = threading.Thread(target=self._main, name=f"rlm-forkserver-{level}", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    @property
    def ready(self) -> bool:
        return self._ready.is_set() and not self.dead

    def wait_ready(self, timeout: float = START_TIMEOUT_S) -> bool:
        self._ready.wait(timeout)
        return self.ready

    # -- the thread that owns the template ---------------------------------------------------------------------
    def _main(self) -> None:
        try:
            self._start()
        except Exception as e:
            self._fail(f"{type(e).__name__}: {e}")
            return
        self._read()

    def _start(self) -> None:
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        seccomp = sandbox.seccomp_available()
        config = {"seccomp": seccomp, "ppid": None if self.level == "bwrap" else os.getpid()}
        boot = (
            f"import sys; sys.path.insert(0, {_PKG_ROOT!r}); "
            "from rlm_jupyter.engine._worker_main import zygote_main; zygote_main()"
        )
        py = [sys.executable, "-I", "-c", boot, str(child.fileno()), json.dumps(config)]
        env = sandbox.worker_env(self.pool)
        env["_RJEM_MALLOC_CONF"] = "background_thread:false"  # no allocator threads in a process that forks
        argv = sandbox.worker_argv(self.level, py, self.pool, [_PKG_ROOT], env)
        log = os.open(self.pool / "template.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            self._proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                pass_fds=(child.fileno(),),
                cwd=self.pool,
                env=env,
                start_new_session=True,
            )
        finally:
            os.close(log)
            child.close()
        self._ctrl = parent
        parent.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)  # the template's pid here, from its "ready"
        parent.settimeout(START_TIMEOUT_S)
        try:
            data, anc, _, _ = parent.recvmsg(1 << 16, socket.CMSG_SPACE(12))
            msg = json.loads(data or b"{}")
            for level, kind, cred in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS and len(cred) >= 12:
                    self.template_pid = struct.unpack("iII", cred[:12])[0]
        except (OSError, ValueError) as e:
            msg = {"error": str(e)}
        parent.settimeout(None)
        parent.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 0)
        if msg.get("op") != "ready":
            tail = _tail(self.pool / "template.log")
            raise RuntimeError(
                f"the worker template did not start ({self.level}): {msg.get('error', 'no answer')}"
                + (f"\n{tail}" if tail else "")
            )
        self.ready_after = time.monotonic() - self.started_at
        self._ready.set()

    def _read(self) -> None:
        while True:
            try:
                data = self._ctrl.recv(1 << 16)
            except OSError:
                data = b""
            if not data:
                self._fail("the worker template exited")
                return
            msg = json.loads(data)
            proc = self._procs.get(msg.get("id"))
            if proc is None:
                continue
            if msg.get("op") == "spawned":
                proc._spawned.set()
            elif msg.get("op") == "exited":
                self._procs.pop(proc.sid, None)
                proc._exited(int(msg.get("rc", -9)))

    def _fail(self, why: str) -> None:
        self.error = self.error or why
        self.dead = True
        self._ready.set()
        for proc in list(self._procs.values()):
            proc._exited(-9)
        self._procs.clear()

    # -- used by Worker ------------------------------------------------------------------------------------------
    def spawn(self, config: dict, fds: dict[str, int], timeout: float = START_TIMEOUT_S) -> ForkedProcess:
        """Fork a worker with `config` (what `_worker_main._setup` reads) and `fds` (name -> descriptor; the caller
        keeps and closes its own copies). Waits for the template when it is still starting."""
        if not self.wait_ready(timeout):
            raise RuntimeError(self.error or "the worker template is not ready")
        with self._send_lock:
            self._next += 1
            proc = ForkedProcess(self, self._next)
            self._procs[proc.sid] = proc
            names = list(fds)
            msg = {"op": "spawn", "id": proc.sid, "config": config, "fds": names}
            try:
                socket.send_fds(self._ctrl, [json.dumps(msg).encode()], [fds[n] for n in names])
            except OSError as e:
                self._procs.pop(proc.sid, None)
                self._fail(f"the worker template is gone: {e}")
                raise RuntimeError(self.error) from None
        proc._spawned.wait(timeout)
        return proc

    def workers_cpu_s(self) -> float | None:
        """CPU seconds used by the workers forked so far that have ended (the template reaps them: its children's
        time in /proc), for benchmarks; None when unknown."""
        if self.template_pid is None:
            return None
        try:
            fields = Path(f"/proc/{self.template_pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None
        return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")  # cutime + cstime

    def _send(self, msg: dict) -> None:
        with self._send_lock, contextlib.suppress(OSError, AttributeError):
            self._ctrl.send(json.dumps(msg).encode())

    def close(self) -> None:
        self.dead = True
        if self._ctrl is not None:
            with contextlib.suppress(OSError):
                self._ctrl.close()
        if self._proc is not None:
            with contextlib.suppress(OSError):
                os.killpg(self._proc.pid, 9)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=5)
        shutil.rmtree(self.pool, ignore_errors=True)


def _tail(path: Path, n: int = 2000) -> str:
    try:
        return path.read_bytes()[-n:].decode("utf-8", "replace").strip()
    except OSError:
        return ""
