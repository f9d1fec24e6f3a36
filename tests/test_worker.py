"""The REPL worker, each test against a real worker process, at every isolation level that works here.

"bwrap" is the default where bubblewrap runs; "rlimits+seccomp" and "rlimits" are the fallbacks, forced with the
`isolation` argument (or $RLM_JUPYTER_SANDBOX) so they are tested on this machine too.
"""

from __future__ import annotations

import ast
import json
import socket
from pathlib import Path

import pytest

import rlm_jupyter as rj
from rlm_jupyter.engine import sandbox
from rlm_jupyter.engine.worker import Limits, Worker

NO_BWRAP = sandbox.bwrap_works()
LEVELS = [
    pytest.param("bwrap", marks=pytest.mark.skipif(NO_BWRAP is not None, reason=f"bubblewrap unavailable: {NO_BWRAP}")),
    pytest.param(
        "rlimits+seccomp", marks=pytest.mark.skipif(not sandbox.seccomp_available(), reason="pyseccomp not installed")
    ),
    "rlimits",
]
SECRET = "sk-test-planted-secret-4242"
FAST = Limits(step_timeout_s=1.5, memory_mb=512)


@pytest.fixture(scope="module")
def ctx():
    return rj.load(rj.samples() / "claude-code")  # a main session and its sub-agent sessions


class Calls:
    """An on_call that records what the worker asked and answers like the loop would."""

    def __init__(self):
        self.seen = []

    def __call__(self, kind, payload):
        self.seen.append((kind, payload))
        if kind == "sub_llm_batch":
            return [f"reply to {p}" for p in payload["prompts"]]
        if kind == "rlm" and payload["question"] == "fail":
            raise RuntimeError("child run crashed")
        if kind == "sub_llm" and payload["prompt"] == "rate":
            return "Error: RateLimitError: 429 after 3 retries"
        return f"reply to {payload.get('prompt') or payload.get('question')}"


@pytest.fixture(scope="module", params=LEVELS)
def level(request):
    return request.param


UNSANDBOXED_OK = {"allow_unsandboxed": True}


@pytest.fixture(scope="module")
def shared(level, ctx):
    """One worker per level for the tests that do not kill it (as in a run: one worker, many steps)."""
    calls = Calls()
    with Worker(
        ctx, limits=Limits(step_timeout_s=10, memory_mb=768), on_call=calls, isolation=level, **UNSANDBOXED_OK
    ) as w:
        w.calls = calls
        yield w


# ---- the REPL ------------------------------------------------------------------------------------------------


def test_variables_persist_and_output_comes_back(shared, level):
    assert shared.sandbox == level
    r = shared.execute("total = 40\nprint('first step')")
    assert (r.status, r.stdout, r.error) == ("ok", "first step\n", None)
    r = shared.execute("total += 2\nprint('adding')\ntotal")  # bare last line shown, like a notebook
    assert r.stdout == "adding\n42\n"
    assert "total" in r.variables and "context" not in r.variables
    assert shared.get_var("total") == "42"
    with pytest.raises(KeyError):
        shared.get_var("never_defined")


def test_exception_comes_back_as_traceback_and_next_step_runs(shared):
    r = shared.execute("def f(x):\n    return 1 / x\nval = 7\nf(0)")
    assert r.status == "error"
    assert r.error == "ZeroDivisionError: division by zero"
    assert "<repl step" in r.stderr and "return 1 / x" in r.stderr  # the model sees its own code
    assert "_worker_main" not in r.stderr  # and not the worker's frames
    r = shared.execute("print(val * 6)")
    assert (r.status, r.stdout) == ("ok", "42\n")
    r = shared.execute("print('unclosed'")
    assert r.status == "error" and r.error.startswith("SyntaxError") and "(line 1)" in r.error


def test_output_of_child_processes_comes_back(shared):
    r = shared.execute("import subprocess\nprint('python first')\nsubprocess.run(['echo', 'from a child process'])")
    assert r.status == "ok"
    assert "python first\n" in r.stdout and "from a child process\n" in r.stdout  # fd 1 is captured too


def test_answer_ready_is_reported(shared):
    assert shared.execute("x_ans = 1").answer is None
    r = shared.execute("answer['content'] = 'JWT was chosen'\nanswer['ready'] = True")
    assert r.answer == {"content": "JWT was chosen", "ready": True}
    shared.execute("answer['ready'] = False")


def test_model_calls_reach_the_parent_and_replies_come_back(shared):
    calls = shared.calls
    calls.seen.clear()
    code = (
        "a = sub_llm('summarize chunk 1', model='gpt-4o-mini')\n"
        "b = llm_query_batched(['p1', 'p2', 'p3'])\n"
        "c = rlm('who decided?')\n"
        "d = rlm_query('fail')\n"
        "e = sub_llm('rate')\n"
        "print(json.dumps([a, b, c, d, e]))"
    )
    r = shared.execute("import json\n" + code)
    assert r.status == "ok", r.stderr
    assert calls.seen == [
        ("sub_llm", {"prompt": "summarize chunk 1", "model": "gpt-4o-mini"}),
        ("sub_llm_batch", {"prompts": ["p1", "p2", "p3"], "model": None}),
        ("rlm", {"question": "who decided?"}),
        ("rlm", {"question": "fail"}),
        ("sub_llm", {"prompt": "rate", "model": None}),
    ]
    a, b, c, d, e = json.loads(r.stdout)
    assert a == "reply to summarize chunk 1"
    assert b == ["reply to p1", "reply to p2", "reply to p3"]
    assert c == "reply to who decided?"
    assert d == "Error: RuntimeError: child run crashed"  # a parent failure arrives as text, never raised
    assert e == "Error: RateLimitError: 429 after 3 retries"


def test_context_answers_like_the_parent_and_queries_are_recorded(shared, ctx):
    parent = ctx.regex_search(r"(?i)error", limit=20)
    assert len(parent.ids) > 3  # the sample has tool errors: a real comparison
    code = (
        "r = context.regex_search(r'(?i)error', limit=20)\n"
        "sessions = context.sessions['session_id'].to_list()\n"
        "print(json.dumps({'n': len(context), 'ids': r.ids, 'sessions': sessions}))"
    )
    r = shared.execute("import json\n" + code)
    assert r.status == "ok", r.stderr
    got = json.loads(r.stdout)
    assert got == {"n": len(ctx), "ids": parent.ids, "sessions": ctx.sessions["session_id"].to_list()}
    assert len(r.queries) == 1
    q = r.queries[0]
    assert q["op"] == "regex_search" and q["args"] == {"pattern": "(?i)error", "limit": 20}
    assert q["result_ids"] == parent.ids
    r = shared.execute("hits = context.search('subagent', limit=5, mode='bm25')\nlen(hits)")
    assert [q["op"] for q in r.queries] == ["search"]
    assert r.queries[0]["result_ids"] == ctx.search("subagent", limit=5, mode="bm25").ids


# ---- isolation -----------------------------------------------------------------------------------------------


def test_parent_secrets_are_not_in_the_environment(level, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    with Worker(None, limits=FAST, isolation=level, **UNSANDBOXED_OK) as w:
        # /proc/self/environ is closed to a worker that dropped root (non-dumpable after the uid change)
        r = w.execute(
            "import os\nprint(dict(os.environ))\ntry:\n    print(open('/proc/self/environ', 'rb').read())\n"
            "except PermissionError as e:\n    print(e)"
        )
    assert r.status == "ok", r.stderr
    assert SECRET not in r.stdout and "OPENAI_API_KEY" not in r.stdout


def test_network_to_a_parent_port_is_cut(level):
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    port = listener.getsockname()[1]
    code = (
        "import socket\n"
        "try:\n"
        f"    socket.create_connection(('127.0.0.1', {port}), timeout=1)\n"
        "    print('CONNECTED')\n"
        "except OSError as e:\n"
        "    print('blocked:', type(e).__name__, e)"
    )
    with Worker(None, limits=FAST, isolation=level, **UNSANDBOXED_OK) as w, listener:
        r = w.execute(code)
        if level == "rlimits":  # documented: this level does not cut the network (docs/isolation.md)
            assert "CONNECTED" in r.stdout
            return
        assert r.status == "ok" and r.stdout.startswith("blocked:"), r.stdout
        with pytest.raises(BlockingIOError):
            listener.accept()  # nothing ever reached the parent's port


def test_filesystem_outside_the_worker_folder(level, tmp_path):
    if level != "bwrap":
        pytest.skip(
            f"{level}: without bubblewrap the worker has the same filesystem view and user as the kernel; "
            "it can read and write anywhere the kernel's user can (only cwd/HOME/TMPDIR point to its folder)"
        )
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET)
    outside = [tmp_path / "written.txt", Path(rj.__file__).parent / "_written_by_worker.txt"]
    code = (
        "import json\nres = {}\n"
        f"for p in {[str(p) for p in outside]!r} + ['/etc/rlm_probe']:\n"
        "    try:\n        open(p, 'w').write('x'); res[p] = 'written'\n"
        "    except OSError as e:\n        res[p] = type(e).__name__\n"
        f"try:\n    res['read'] = open({str(secret)!r}).read()\n"
        "except OSError as e:\n    res['read'] = type(e).__name__\n"
        "open('inside.txt', 'w').write('ok')\nprint(json.dumps(res))"
    )
    with Worker(None, limits=FAST, isolation=level, **UNSANDBOXED_OK) as w:
        r = w.execute(code)
        assert r.status == "ok", r.stderr
        assert (w.workdir / "inside.txt").read_text() == "ok"  # its own folder is writable
    res = json.loads(r.stdout)
    assert res["read"] != SECRET
    assert res["/etc/rlm_probe"] != "written" and not Path("/etc/rlm_probe").exists()
    for p in outside:
        assert not p.exists(), f"the worker wrote {p} ({res[str(p)]})"


# ---- limits and crashes ----------------------------------------------------------------------------------------


def test_infinite_loop_is_killed_and_next_step_runs_in_a_fresh_worker(level):
    with Worker(None, limits=FAST, isolation=level, **UNSANDBOXED_OK) as w:
        w.execute("kept = 1")
        r = w.execute("while True:\n    pass")
        assert r.status == "killed"
        assert r.error.startswith("TimeoutError: step exceeded 1.5 s") and "variables" in r.error
        assert 1.4 < r.duration_s < 5
        r = w.execute("print('alive')\nkept")
        assert r.stdout == "alive\n" and r.status == "error" and "NameError" in r.error
        assert w.restarts == 1


def test_cpu_limit_kills_a_busy_step(level):
    # a wall limit far above the CPU limit: on a loaded machine 2 CPU seconds can take many wall seconds
    with Worker(None, limits=Limits(step_timeout_s=40, cpu_s=1, memory_mb=512), isolation=level, **UNSANDBOXED_OK) as w:
        r = w.execute("while True:\n    pass")
        assert r.status == "killed" and "SIGXCPU" in r.error and "CPU time limit of 1 s" in r.error
        assert w.execute("1 + 1").stdout == "2\n"


def test_memory_bomb_is_contained(level):
    with Worker(None, limits=Limits(step_timeout_s=10, memory_mb=256), isolation=level, **UNSANDBOXED_OK) as w:
        r = w.execute("big = bytearray(4 * 1024 ** 3)")
        assert r.status == "error" and r.error.startswith("MemoryError") and "256 MB" in r.error
        r = w.execute("chunks = []\nwhile True:\n    chunks.append(bytearray(16 * 1024 ** 2))")
        assert r.status == "error" and r.error.startswith("MemoryError"), r.error
        r = w.execute("n = len(chunks)\ndel chunks\nprint(n * 16 < 256)")
        assert (r.status, r.stdout) == ("ok", "True\n")


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("import os\nos._exit(3)", "worker died (exit status 3"),
        ("import ctypes\nctypes.string_at(0)", "worker died (signal 11: SIGSEGV"),
    ],
)
def test_crash_is_recorded_as_killed_with_the_reason(level, code, reason):
    with Worker(None, limits=FAST, isolation=level, **UNSANDBOXED_OK) as w:
        r = w.execute(code)
        assert r.status == "killed" and r.error.startswith(reason), r.error
        if "ctypes" in code:
            assert "Segmentation fault" in r.stderr and "<repl step 1>" in r.stderr  # faulthandler's stack
        assert w.execute("print('next')").stdout == "next\n"


def test_fallback_can_be_forced_by_environment(monkeypatch):
    monkeypatch.setenv(sandbox.ENV_VAR, "rlimits")
    with pytest.raises(sandbox.UnsandboxedError, match="allow_unsandboxed"):
        Worker(None, limits=FAST)  # the network would be open: refused unless allowed explicitly
    with Worker(None, limits=FAST, allow_unsandboxed=True) as w:
        assert w.sandbox == "rlimits"
        assert w.execute("6 * 7").stdout == "42\n"
    monkeypatch.setenv(sandbox.ENV_VAR, "nonsense")
    with pytest.raises(ValueError, match="sandbox level"):
        Worker(None)


# ---- the parent's side of the socket: time, caps, order -------------------------------------------------------


def test_time_spent_in_model_calls_counts_towards_the_step(level):
    """A model call that takes longer than the step has left ends the step (it used to be added to the limit)."""
    import time as _time

    def slow(kind, payload):
        _time.sleep(0.6)
        return "late"

    with Worker(
        None, limits=Limits(step_timeout_s=1.5, memory_mb=512), on_call=slow, isolation=level, **UNSANDBOXED_OK
    ) as w:
        t0 = _time.monotonic()
        r = w.execute("n = 0\nwhile True:\n    sub_llm('x'); n += 1")
        assert r.status == "killed" and "model calls included" in r.error
        assert _time.monotonic() - t0 < 3.5


def test_sub_calls_per_step_are_capped_without_calling_the_model(level):
    calls = Calls()
    with Worker(
        None,
        limits=Limits(step_timeout_s=20, memory_mb=512, sub_calls_per_step=5),
        on_call=calls,
        isolation=level,
        **UNSANDBOXED_OK,
    ) as w:
        r = w.execute("out = [sub_llm(f'p{i}') for i in range(4)] + sub_llm_batch(['a', 'b', 'c'])\nprint(out[-3:])")
        assert r.status == "ok", r.stderr
        assert len(calls.seen) == 4  # the 4 single calls; the batch of 3 would pass 5: refused whole
        assert "sub-call limit reached" in r.stdout
        r = w.execute("print(sub_llm('next step'))")  # a new step, a new allowance
        assert r.stdout == "reply to next step\n"


def test_a_result_for_another_step_is_a_protocol_error(level):
    code = (
        "import sys\nfrom rlm_jupyter.engine._worker_main import send\n"
        "sock = sub_llm.__closure__[0].cell_contents.__self__.sock\n"
        "send(sock, {'op': 'result', 'seq': 99, 'stdout': 'forged', 'stderr': '', 'status': 'ok'})\n"
        "import time\ntime.sleep(5)"
    )
    with Worker(None, limits=FAST, isolation=level, **UNSANDBOXED_OK) as w:
        r = w.execute(code)
        assert r.status == "killed" and "protocol error: result for step 99, expected 1" in r.error
        assert "forged" not in r.stdout
        assert w.execute("print('fresh')").stdout == "fresh\n"


# ---- the fork server: workers forked from a clean template (engine/forkserver.py) ----------------------------------

FORKED = [p for p in LEVELS if getattr(p, "values", (p,))[0] != "rlimits"]


@pytest.fixture(params=FORKED)
def forked_level(request):
    from rlm_jupyter.engine import forkserver

    if not forkserver.enabled(request.param):
        pytest.skip("workers are forked only when the kernel runs as root (the template gives each its namespaces)")
    return request.param


def _two_contexts(ctx, tmp_path):
    """Two runs' contexts as the loop hands them over (Arrow IPC files in folders of their own)."""
    import polars as pl

    from rlm_jupyter.context import Context

    one_id = ctx.sessions["session_id"][0]
    small = Context.from_frame(
        ctx.df.filter(pl.col("session_id") == one_id), sessions=ctx.sessions.filter(pl.col("session_id") == one_id)
    )
    paths = []
    for name, c in (("a", ctx), ("b", small)):
        (tmp_path / name).mkdir(mode=0o700)
        paths.append((c.to_ipc(tmp_path / name / "context.arrow"), len(c)))
    return paths


def test_forked_workers_get_their_run_only_and_cannot_reach_each_other(forked_level, ctx, tmp_path):
    (path_a, n_a), (path_b, n_b) = _two_contexts(ctx, tmp_path)
    assert n_a != n_b
    with (
        Worker(path_a, limits=FAST, isolation=forked_level) as a,
        Worker(path_b, limits=FAST, isolation=forked_level) as b,
    ):
        assert a._proc.forked and b._proc.forked and a._proc.pid != b._proc.pid
        # each has the context its run handed over, and nothing else
        assert a.execute("print(len(context))").stdout == f"{n_a}\n"
        assert b.execute("print(len(context))").stdout == f"{n_b}\n"
        assert a.execute("x = 41\nopen('private.txt', 'w').write('run a')").status == "ok"
        assert (a.workdir / "private.txt").read_text() == "run a"
        # b cannot see a's folder, nor the folder holding every forked worker's folder
        r = b.execute(
            f"import os\nfor p in ({str(a.workdir / 'private.txt')!r}, {str(a.workdir)!r}):\n"
            "    try:\n        print(open(p).read() if p.endswith('.txt') else os.listdir(p))\n"
            "    except OSError as e:\n        print(type(e).__name__)\n"
            f"print(os.listdir({str(a._base.parent)!r}) if os.path.isdir({str(a._base.parent)!r}) "
            "else 'no pool')"
        )
        assert r.status == "ok" and "run a" not in r.stdout and "private" not in r.stdout, r.stdout
        assert a._base.name not in r.stdout, r.stdout
        # own pid namespace: it sees its init and itself (pid 2), not the other worker; a signal cannot reach it
        r = b.execute(
            "import os\nprint(os.getpid(), sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))\n"
            f"try:\n    os.kill({a._proc.pid}, 9)\n    print('sent')\nexcept OSError as e:\n"
            "    print(type(e).__name__)"
        )
        pid, pids = r.stdout.splitlines()[0].split(" ", 1)
        assert pid == "2" and json.loads(pids) == [1, 2], r.stdout
        assert "sent" not in r.stdout
        assert a.execute("print(x)").stdout == "41\n"  # a lives on
        # nothing of the hand-over is left open: its socket, two log files (fd 1, 2), the pipe to its init
        r = b.execute(
            "import os\nfds = {}\nfor f in os.listdir('/proc/self/fd'):\n    try:\n"
            "        fds[int(f)] = os.readlink(f'/proc/self/fd/{f}')\n    except OSError:\n        pass\n"
            "print(fds)"
        )
        opened = ast.literal_eval(r.stdout)
        files = sorted(Path(t).name for t in opened.values() if t.startswith("/"))
        assert files == ["err.log", "null", "out.log"], opened  # no context folder, cgroup or second log copy
        assert sum(t.startswith("socket:") for t in opened.values()) == 1, opened
    # a new run's worker is a fresh fork: nothing of the last one
    with Worker(path_b, limits=FAST, isolation=forked_level) as c:
        r = c.execute("print(x)")
        assert r.status == "error" and "NameError" in r.error
        assert not any(c.workdir.iterdir())


def test_a_prestarted_template_is_taken_over_and_its_death_falls_back(forked_level):
    import os
    import signal as sig

    from rlm_jupyter.engine import forkserver

    fs = forkserver.prestart(forked_level)
    assert fs is not None and fs.wait_ready(60)
    with Worker(None, limits=FAST, isolation=forked_level) as w:
        assert w.prestarted and w._proc.forked and w.start_wait_s < 30
        assert w.execute("print('hi')").stdout == "hi\n"
    os.killpg(fs._proc.pid, sig.SIGKILL)  # the template dies (say, the OOM killer)
    fs._proc.wait(10)
    fs._thread.join(10)
    assert fs.dead
    with Worker(None, limits=FAST, isolation=forked_level) as w:  # a new template, or a worker on its own
        assert w.execute("print('still')").stdout == "still\n"


def test_a_killed_forked_worker_is_reported_as_killed_by_its_signal(forked_level):
    """The exit status passes up unchanged through the worker's init and monitor (SIGKILL cannot be re-raised
    the way other signals are: it is sent, not handled)."""
    with Worker(None, limits=FAST, isolation=forked_level) as w:
        r = w.execute("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)")
        assert r.status == "killed" and r.error.startswith("worker died (signal 9: SIGKILL"), r.error
        assert w.execute("print('next')").stdout == "next\n"


def test_seccomp_loads_in_a_worker_that_may_not_fork_when_the_parent_named_its_libraries():
    # A worker started alone imports pyseccomp, which looks libc and libseccomp up with ctypes.util.find_library:
    # that forks ldconfig, and as uid nobody at its process cap the fork is refused (runs failed with "Unable to
    # find libseccomp"). The parent now names both; a process whose every fork is refused still imports it.
    import subprocess
    import sys

    names = sandbox.library_names()
    if "seccomp" not in names or not sandbox.seccomp_available():
        pytest.skip("libseccomp / pyseccomp not available here")
    root = str(Path(rj.__file__).resolve().parents[1])

    def run(named: bool) -> subprocess.CompletedProcess:
        code = (
            f"import os, subprocess, sys; sys.path.insert(0, {root!r})\n"
            "from rlm_jupyter.engine import sandbox\n"
            + (f"sandbox.use_library_names({names!r})\n" if named else "")
            + "def refused(*a, **k): raise BlockingIOError(11, 'fork refused: RLIMIT_NPROC')\n"
            "subprocess.Popen = os.fork = os.posix_spawn = refused\n"
            "import pyseccomp\nprint('loaded')\n"
        )
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)

    without = run(named=False)
    assert without.returncode != 0 and "Unable to find libseccomp" in without.stderr  # the failure, reproduced
    named = run(named=True)
    assert named.returncode == 0 and named.stdout.strip() == "loaded", named.stderr
