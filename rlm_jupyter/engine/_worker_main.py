"""The REPL worker process: holds the context and the run's variables, runs model-written code step by step.

Started by `worker.Worker` as `python -I -c "...main()" FD CONFIG_JSON`. It talks to the parent over the inherited
Unix socket FD with length-prefixed JSON frames (JSON, never pickle: the parent must not unpickle what code it does
not trust produced). Model code runs in this process and can reach the socket (Python hides nothing from code in
the same interpreter), so the parent treats every frame as hostile: it checks each against the schema below and
its caps (worker.py `_check_*`), and kills the worker on the first frame that breaks them. Frames:
  parent -> worker  {"op": "exec", "seq", "code", "cpu_s"} | {"op": "get_var", "name"}
                    | {"op": "reply", "id", "value"} | {"op": "exit"}
  worker -> parent  {"op": "ready", "pid", "uid"} | {"op": "fatal", "error"} | {"op": "call", "id" (1, 2, 3, …
                    per worker), "kind", "payload"} | {"op": "result", "seq", ...ExecResult fields}
                    | {"op": "var", "value" | "error"}
The framing helpers here are also used by the parent side.
"""

from __future__ import annotations

import ast
import contextlib
import io
import linecache
import socket
import struct
import sys
import threading
import time
import traceback
import types

_HEADER = struct.Struct(">I")
MAX_FRAME = 256 * 1024 * 1024
KEEP_CHARS = 2_000_000  # stdout/stderr kept per step; the rest is counted, not kept (an output bomb stays small)
INJECTED = (
    "context",
    "sub_llm",
    "sub_llm_batch",
    "rlm",
    "llm_query",
    "llm_query_batched",
    "rlm_query",
    "answer",
    "SHOW_VARS",
)


# ---- framing (both sides) ------------------------------------------------------------------------------------


def dumps(msg: dict) -> bytes:
    import orjson

    return orjson.dumps(msg, default=str, option=orjson.OPT_NON_STR_KEYS)


def send(sock: socket.socket, msg: dict) -> None:
    body = dumps(msg)
    sock.sendall(_HEADER.pack(len(body)) + body)


def _read_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(min(n - len(buf), 1 << 20))
        if not chunk:
            raise EOFError("the other end closed the connection")
        buf += chunk
    return bytes(buf)


def recv(sock: socket.socket, max_bytes: int = MAX_FRAME) -> dict:
    import orjson

    (n,) = _HEADER.unpack(_read_exact(sock, _HEADER.size))
    if n > max_bytes:
        raise ValueError(f"frame of {n} bytes is over the {max_bytes} limit")
    msg = orjson.loads(_read_exact(sock, n))
    if not isinstance(msg, dict):
        raise ValueError(f"frame is a JSON {type(msg).__name__}, not an object")
    return msg


# ---- output capture ------------------------------------------------------------------------------------------


class _Capture(io.TextIOBase):
    """sys.stdout / sys.stderr during a step: keeps the first KEEP_CHARS characters, counts the rest."""

    def __init__(self):
        self.parts: list[str] = []
        self.kept = 0
        self.dropped = 0

    def write(self, s) -> int:
        if not isinstance(s, str):
            raise TypeError(f"write() argument must be str, not {type(s).__name__}")
        room = KEEP_CHARS - self.kept
        if room > 0:
            self.parts.append(s[:room])
            self.kept += min(len(s), room)
        self.dropped += max(0, len(s) - max(room, 0))
        return len(s)

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:
        return "utf-8"

    def text(self) -> str:
        text = "".join(self.parts)
        if self.dropped:
            text += f"\n[worker: {self.dropped:,} more characters of output were not kept]\n"
        return text


# ---- the REPL --------------------------------------------------------------------------------------------------


class Repl:
    def __init__(self, sock: socket.socket, context, memory_mb: int | None):
        self.sock = sock
        self.memory_mb = memory_mb
        self.steps = 0
        self.call_ids = 0
        self.lock = threading.Lock()  # code that calls sub_llm from threads gets its replies one at a time
        self.queries: list[dict] = []
        self.context = context
        if context is not None:
            context.attach_tracer(self.queries.append)
        self.g: dict = {"__name__": "__repl__", "__builtins__": __builtins__}
        self.g.update(self._helpers())

    # -- names the model's code sees --

    def _helpers(self) -> dict:
        call = self.call

        def sub_llm(prompt, model=None) -> str:
            """Ask a sub-model one prompt; returns its text (an error comes back as a string starting 'Error:')."""
            return _as_text(call("sub_llm", {"prompt": _as_text(prompt), "model": model}))

        def sub_llm_batch(prompts, model=None) -> list[str]:
            """Ask a sub-model several prompts concurrently; replies in the same order."""
            prompts = [_as_text(p) for p in prompts]
            value = call("sub_llm_batch", {"prompts": prompts, "model": model})
            if not isinstance(value, list) or len(value) != len(prompts):
                return [f"Error: the parent returned {type(value).__name__} for a batch of {len(prompts)}"] * len(
                    prompts
                )
            return [_as_text(v) for v in value]

        def rlm(question, context=None) -> str:
            """A recursive RLM run on `question` (over this context, or over `context` given as text)."""
            payload = {"question": _as_text(question)}
            if context is not None:
                payload["context"] = context if isinstance(context, str) else _as_text(context)
            return _as_text(call("rlm", payload))

        def SHOW_VARS():  # noqa: N802 - the name the rlms prompts use
            """The variables defined so far, with their types."""
            names = self.variables()
            return {n: type(self.g[n]).__name__ for n in names}

        return {
            "context": self.context,
            "sub_llm": sub_llm,
            "sub_llm_batch": sub_llm_batch,
            "rlm": rlm,
            "llm_query": sub_llm,
            "llm_query_batched": sub_llm_batch,
            "rlm_query": rlm,
            "answer": {"content": "", "ready": False},
            "SHOW_VARS": SHOW_VARS,
        }

    def call(self, kind: str, payload: dict):
        with self.lock:
            self.call_ids += 1
            send(self.sock, {"op": "call", "id": self.call_ids, "kind": kind, "payload": payload})
            msg = recv(self.sock)
        if msg.get("op") != "reply" or msg.get("id") != self.call_ids:
            return f"Error: unexpected message from the parent: {str(msg)[:200]}"
        return msg.get("value")

    def variables(self) -> list[str]:
        return [
            n
            for n, v in self.g.items()
            if not n.startswith("_") and n not in INJECTED and not isinstance(v, types.ModuleType)
        ]

    # -- one step --

    def execute(self, code: str, cpu_s: float | None, seq=None) -> dict:
        from .sandbox import set_cpu_limit

        self.steps += 1
        filename = f"<repl step {self.steps}>"
        linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)  # source in tracebacks
        out, err = _Capture(), _Capture()
        self.queries.clear()
        status, error = "ok", None
        set_cpu_limit(cpu_s)
        t0 = time.perf_counter()
        sys.stdout, sys.stderr = out, err
        try:
            self._run(code, filename)
        except BaseException as e:  # SystemExit and KeyboardInterrupt too: the REPL outlives the code
            status, error = "error", self._describe(e)
            err.write("".join(traceback.TracebackException(type(e), e, _user_frames(e.__traceback__)).format()))
        finally:
            sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
        duration = time.perf_counter() - t0
        ans = self.g.get("answer")
        ready = isinstance(ans, dict) and bool(ans.get("ready"))
        return {
            "op": "result",
            "seq": seq,
            "stdout": out.text(),
            "stderr": err.text(),
            "status": status,
            "error": error,
            "duration_s": duration,
            "queries": list(self.queries),
            "answer": {"content": _as_text(ans.get("content", "")), "ready": True} if ready else None,
            "variables": self.variables(),
        }

    def _run(self, code: str, filename: str) -> None:
        """exec the code; a bare expression on the last line is evaluated and its repr printed, like a notebook."""
        tree = ast.parse(code, filename, "exec")
        last = tree.body[-1] if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        if last is not None:
            tree.body.pop()
        exec(compile(tree, filename, "exec"), self.g)
        if last is not None:
            value = eval(compile(ast.Expression(last.value), filename, "eval"), self.g)
            if value is not None:
                print(repr(value))

    def _describe(self, e: BaseException) -> str:
        text = str(e).strip().splitlines()
        line = f"{type(e).__name__}: {text[0]}" if text else type(e).__name__
        if isinstance(e, SyntaxError) and e.lineno:
            line += f" (line {e.lineno})"
        if isinstance(e, MemoryError) and self.memory_mb:
            line += f" (the worker's memory limit is {self.memory_mb} MB)"
        return line[:500]

    def get_var(self, name: str) -> dict:
        if name not in self.g or name in INJECTED and name != "answer":
            return {"op": "var", "error": f"KeyError: {name!r} is not defined in the REPL"}
        try:
            return {"op": "var", "value": str(self.g[name])}
        except Exception as e:
            return {"op": "var", "error": f"{type(e).__name__}: str() of {name!r} failed: {e}"}


def _user_frames(tb):
    """The traceback without the worker's own frames on top (the model should see its code, not ours)."""
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    return tb


def _as_text(value) -> str:
    return value if isinstance(value, str) else str(value)


# ---- the context -----------------------------------------------------------------------------------------------


def load_context(path: str):
    """The Context the parent handed over: an Arrow IPC file (worker.save_context / Context.to_ipc), or session
    files / folders (loaded here with Context.load)."""
    from pathlib import Path

    from ..context import Context

    p = Path(path)
    if _is_ipc(p):
        sidecar = p.with_name(p.name + ".sessions.json")
        if sidecar.exists() or not hasattr(Context, "from_ipc"):
            return _context_from_ipc(p, sidecar)
        return Context.from_ipc(p)  # its cache ("auto") lands in the worker's HOME, i.e. its own folder
    return Context.load(p)


def _is_ipc(p) -> bool:
    try:
        with open(p, "rb") as f:
            return f.read(6) == b"ARROW1"
    except OSError:
        return False


def _context_from_ipc(path, sidecar):
    """Rebuild a Context from its message frame and per-session metadata (stand-in until Context.from_ipc)."""
    import orjson
    import polars as pl

    from ..context import Context
    from ..sessions import Session

    meta = orjson.loads(sidecar.read_bytes())
    sessions = []
    for m in meta["sessions"]:
        n = m.pop("n")
        s = Session(**m)
        s.columns, s._released = {}, n  # rows live in the frame, as after Session.release()
        sessions.append(s)
    ctx = Context(sessions)
    ctx.__dict__["df"] = pl.read_ipc(path)  # fills the cached_property
    return ctx


# ---- entry point ---------------------------------------------------------------------------------------------


def main() -> None:
    """A worker started on its own (python -I -c ... FD CONFIG_JSON)."""
    import faulthandler
    import json

    fd, config = int(sys.argv[1]), json.loads(sys.argv[2])
    sock = socket.socket(fileno=fd)
    faulthandler.enable(sys.__stderr__)  # a segfault's Python stack lands in the worker's stderr log
    repl = _setup(sock, config)
    serve(sock, repl)


def _setup(sock: socket.socket, config: dict, alive_fd: int | None = None) -> Repl:
    """Start-up, in this order: memory limit, load the context (still as the kernel's user, so the worker can read
    the parent's private copy), hide /root and /home (fallback levels, as root), drop to uid 65534 (as root), die
    with the parent, the seccomp filter; only then "ready" is sent and the first frame read, so no model code runs
    before all of it."""
    import os

    from . import sandbox

    try:
        if config.get("memory_mb"):
            sandbox.set_memory_limit(config["memory_mb"])
        context = load_context(config["context"]) if config.get("context") else None
        if config.get("context_fd") is not None:  # a forked worker: the run's context folder, handed over as an fd
            os.close(config["context_fd"])
        if config.get("hide"):
            sandbox.hide_home(config["hide"]["ro"], config["hide"]["rw"])
        if config.get("drop"):
            sandbox.drop_privileges()
        sandbox.die_with_parent(config.get("ppid"), alive_fd)
        if config.get("seccomp"):
            sandbox.use_library_names(config.get("libs") or {})
            sandbox.install_seccomp(shared_memory=bool(config.get("cgroup")))
        repl = Repl(sock, context, config.get("memory_mb"))
    except BaseException as e:
        send(sock, {"op": "fatal", "error": f"{type(e).__name__}: {e}"})
        raise
    send(sock, {"op": "ready", "pid": os.getpid(), "uid": os.getuid()})
    return repl


def serve(sock: socket.socket, repl: Repl) -> None:
    while True:
        try:
            msg = recv(sock)
        except EOFError:
            return
        op = msg.get("op")
        if op == "exec":
            send(sock, repl.execute(msg["code"], msg.get("cpu_s"), msg.get("seq")))
        elif op == "get_var":
            send(sock, repl.get_var(msg["name"]))
        elif op == "exit":
            return


# ---- the template of the fork server (forkserver.py) -----------------------------------------------------------
#
# One clean process per isolation level, started once inside the same sandbox a worker gets (bwrap, or none at the
# fallback level), with the worker's libraries imported and nothing else: no context, no variables, no model code
# ever ran in it. For each worker the parent sends one "spawn" packet (JSON + the worker's file descriptors: its
# socket, its logs, the run's context folder, its memory cgroup). The template forks a small monitor; the monitor
# joins the cgroup, makes new pid, mount and IPC namespaces and forks the worker (pid 1 there), which then starts up
# exactly as a worker started on its own (`_setup`), and the monitor reports its exit status through the template.
#   parent -> template  {"op": "spawn", "id", "config", "fds": [names in the order of the fds]} | {"op": "kill", "id"}
#   template -> parent  {"op": "ready"} | {"op": "spawned", "id"} | {"op": "exited", "id", "rc"}


def zygote_main() -> None:
    import json
    import os
    import select

    fd, config = int(sys.argv[1]), json.loads(sys.argv[2])
    ctrl = socket.socket(fileno=fd)
    _preload(config)
    if config.get("ppid"):  # the fallback level: no bwrap to take the template down with the kernel
        from . import sandbox

        sandbox.die_with_parent(config["ppid"])
    _send_packet(ctrl, {"op": "ready", "pid": os.getpid()})
    children: dict[int, tuple[int, int]] = {}  # pidfd -> (spawn id, pid of the monitor)
    while True:
        ready, _, _ = select.select([ctrl, *children], [], [])
        for pidfd in [r for r in ready if r in children]:
            sid, pid = children.pop(pidfd)
            os.close(pidfd)
            _, status = os.waitpid(pid, 0)
            _send_packet(ctrl, {"op": "exited", "id": sid, "rc": os.waitstatus_to_exitcode(status)})
        if ctrl not in ready:
            continue
        try:
            data, fds, _, _ = socket.recv_fds(ctrl, 1 << 20, 16)
        except OSError:
            data, fds = b"", []
        if not data:  # the kernel went away: so do the workers (their monitors die with this process)
            os._exit(0)
        msg = json.loads(data)
        if msg.get("op") == "kill":
            for sid, pid in children.values():
                if sid == msg.get("id"):
                    with contextlib.suppress(OSError):
                        os.kill(pid, 9)
            continue
        pid = os.fork()
        if pid == 0:
            _monitor(msg, fds, ctrl, children)  # never returns
        for f in fds:
            os.close(f)
        children[os.pidfd_open(pid)] = (msg["id"], pid)
        _send_packet(ctrl, {"op": "spawned", "id": msg["id"]})


def _preload(config: dict) -> None:
    """What every worker imports, imported once here (the ~0.3 s a worker started on its own pays)."""
    import orjson  # noqa: F401
    import polars  # noqa: F401

    from ..context import Context  # noqa: F401
    from ..sessions import Session  # noqa: F401
    from . import sandbox

    if config.get("seccomp"):
        sandbox.known_syscalls()


def _monitor(msg: dict, fds: list[int], ctrl: socket.socket, children: dict) -> None:
    """The forked monitor of one worker: joins its cgroup, makes the new namespaces, forks their init (pid 1),
    which forks the worker (pid 2: the kernel would not deliver SIGXCPU, the CPU limit, to a namespace's pid 1)."""
    import os
    import resource

    from . import sandbox

    try:
        ctrl.close()
        for pidfd in children:
            os.close(pidfd)
        os.setsid()
        sandbox.set_death_signal()  # dies with the template
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        named = dict(zip(msg["fds"], fds, strict=True))
        if "cgroup" in named:  # "0": the writer itself; everything forked from here on is in the cgroup
            cg = named.pop("cgroup")
            os.write(cg, b"0")
            os.close(cg)
        sandbox.own_namespaces()
        status_r, status_w = os.pipe()  # the init writes the worker's wait status here (its own exit cannot say it)
        pid = os.fork()
        if pid == 0:
            os.close(status_r)
            _namespace_init(msg["config"], named, status_w)  # never returns
        for f in [status_w, *named.values()]:
            os.close(f)
        status = os.waitpid(pid, 0)[1]
        reported = os.read(status_r, 64).decode().strip()
        _mirror(int(reported) if reported.lstrip("-").isdigit() else status)
    except BaseException:
        os._exit(71)


def _namespace_init(config: dict, fds: dict[str, int], status_w: int) -> None:
    """pid 1 of the worker's pid namespace: forks the worker, waits for it, exits as it did (and the namespace, with
    anything the worker left running, goes with it)."""
    import os

    from . import sandbox

    try:
        sandbox.set_death_signal()  # dies with the monitor
        alive_r, alive_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(alive_w)
            os.close(status_w)
            _forked_worker(config, fds, alive_r)  # never returns
        for f in [alive_r, *fds.values()]:
            os.close(f)
        status = os.waitpid(pid, 0)[1]
        os.write(status_w, str(status).encode())
        os._exit(0)
    except BaseException:
        os._exit(71)


def _mirror(status: int) -> None:
    """Exit as the child whose wait status this is did: the same exit code, or killed by the same signal."""
    import os
    import signal

    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig not in (signal.SIGKILL, signal.SIGSTOP):  # those two cannot be caught (nor their handler set)
            signal.signal(sig, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, [sig])
        os.kill(os.getpid(), sig)
    os._exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 71)


def _forked_worker(config: dict, fds: dict[str, int], alive_fd: int) -> None:
    import faulthandler
    import os
    import tempfile

    from . import sandbox

    code = 0
    try:
        sandbox.set_death_signal()  # dies with its namespace's init (and so with the template and the kernel)
        for name, target in (("out", 1), ("err", 2)):
            f = fds.pop(name)
            os.dup2(f, target)
            os.close(f)
        faulthandler.enable(sys.__stderr__)
        sock = socket.socket(fileno=fds.pop("sock"))
    except BaseException:
        os._exit(72)
    try:
        workdir = config["workdir"]
        sandbox.own_proc_and_folder(config.get("pool"), workdir)
        os.chdir(workdir)
        os.environ.update(HOME=workdir, TMPDIR=workdir)
        tempfile.tempdir = None
        if "context" in fds:
            config["context_fd"] = fds["context"]
            config["context"] = f"/proc/self/fd/{fds['context']}/{config['context_name']}"
        repl = _setup(sock, config, alive_fd)
        serve(sock, repl)
    except BaseException as e:
        code = 1
        if not isinstance(e, (SystemExit, KeyboardInterrupt)):
            traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _send_packet(ctrl: socket.socket, msg: dict) -> None:
    import json

    ctrl.send(json.dumps(msg).encode())
