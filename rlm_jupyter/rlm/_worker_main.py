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
INJECTED = ("context", "sub_llm", "sub_llm_batch", "rlm", "llm_query", "llm_query_batched", "rlm_query", "answer",
            "SHOW_VARS")


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
                    prompts)
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

        return {"context": self.context, "sub_llm": sub_llm, "sub_llm_batch": sub_llm_batch, "rlm": rlm,
                "llm_query": sub_llm, "llm_query_batched": sub_llm_batch, "rlm_query": rlm,
                "answer": {"content": "", "ready": False}, "SHOW_VARS": SHOW_VARS}

    def call(self, kind: str, payload: dict):
        with self.lock:
            self.call_ids += 1
            send(self.sock, {"op": "call", "id": self.call_ids, "kind": kind, "payload": payload})
            msg = recv(self.sock)
        if msg.get("op") != "reply" or msg.get("id") != self.call_ids:
            return f"Error: unexpected message from the parent: {str(msg)[:200]}"
        return msg.get("value")

    def variables(self) -> list[str]:
        return [n for n, v in self.g.items()
                if not n.startswith("_") and n not in INJECTED and not isinstance(v, types.ModuleType)]

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
        return {"op": "result", "seq": seq, "stdout": out.text(), "stderr": err.text(), "status": status,
                "error": error,
                "duration_s": duration, "queries": list(self.queries),
                "answer": {"content": _as_text(ans.get("content", "")), "ready": True} if ready else None,
                "variables": self.variables()}

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
    """Start-up, in this order: memory limit, load the context (still as the kernel's user, so the worker can read
    the parent's private copy), hide /root and /home (fallback levels, as root), drop to uid 65534 (as root), die
    with the parent, the seccomp filter; only then the first frame is read, so no model code runs before all of it."""
    import faulthandler
    import json
    import os

    from . import sandbox

    fd, config = int(sys.argv[1]), json.loads(sys.argv[2])
    sock = socket.socket(fileno=fd)
    faulthandler.enable(sys.__stderr__)  # a segfault's Python stack lands in the worker's stderr log
    try:
        if config.get("memory_mb"):
            sandbox.set_memory_limit(config["memory_mb"])
        context = load_context(config["context"]) if config.get("context") else None
        if config.get("hide"):
            sandbox.hide_home(config["hide"]["ro"], config["hide"]["rw"])
        if config.get("drop"):
            sandbox.drop_privileges()
        sandbox.die_with_parent(config.get("ppid"))
        if config.get("seccomp"):
            sandbox.install_seccomp(shared_memory=bool(config.get("cgroup")))
        repl = Repl(sock, context, config.get("memory_mb"))
    except BaseException as e:
        send(sock, {"op": "fatal", "error": f"{type(e).__name__}: {e}"})
        raise
    send(sock, {"op": "ready", "pid": os.getpid(), "uid": os.getuid()})
    serve(sock, repl)


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
