"""RLM engine benchmark, side by side in one run.

    .venv/bin/python benchmarks/engine.py [--steps 200] [--starts 5] [--json]

WORKER part: time to start the REPL worker (no context, and with the real Claude Code samples handed over) at every
isolation level that works here, and the per-step overhead of running code in the worker vs `exec` in this process
(same code, same context; in-process output captured the same way). Target from issue 4: <= 10 ms more per step.
LOOP part (sub_llm_batch wall time vs one call, time to first event, trace write throughput): see the marked
section below.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Representative step bodies: trivial, some Python work, printing, a context query (the model's usual step).
STEPS = {
    "assign": "x = 1",
    "python": "s = sum(i * i for i in range(10_000))",
    "print 2 KB": "print('y' * 2_000)",
    "regex_search": "r = context.regex_search(r'(?i)error', limit=20)\nlen(r)",
}
TARGET_MS = 10.0
MODEL = "openai/scripted-model"
MSGS = [{"role": "user", "content": "Summarize: the build failed."}]


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def in_process_step(ctx, code: str, n: int) -> float:
    """Median wall time of exec(code) here, with stdout captured and a bare last line printed like the worker."""
    import ast

    g = {"context": ctx}
    tree = ast.parse(code)
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    body = compile(tree, "<bench>", "exec")
    tail = compile(ast.Expression(last.value), "<bench>", "eval") if last else None
    times = []
    for _ in range(n):
        t = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            exec(body, g)
            if tail is not None:
                v = eval(tail, g)
                if v is not None:
                    print(repr(v))
        times.append(time.perf_counter() - t)
    return _median_ms(times)


def worker_step(worker, code: str, n: int) -> float:
    """Median wall time of Worker.execute(code), as the loop sees it (send, run, result back)."""
    times = []
    for _ in range(n):
        t = time.perf_counter()
        r = worker.execute(code)
        times.append(time.perf_counter() - t)
        if r.status != "ok":
            raise RuntimeError(f"benchmark step failed in the worker: {r.error}\n{r.stderr}")
    return _median_ms(times)


def start_times(level: str, ctx, n: int) -> dict:
    from rlm_jupyter.engine.worker import Worker

    out = {}
    for label, context in (("no context", None), ("claude samples", ctx)):
        times = []
        for _ in range(n):
            t = time.perf_counter()
            with Worker(context, isolation=level, allow_unsandboxed=True) as w:
                times.append(time.perf_counter() - t)  # constructor (writes the context) + start until "ready"
                w.execute("pass")
        out[label] = _median_ms(times)
    return out


def worker_part(args) -> list[dict]:
    import rlm_jupyter as rj
    from rlm_jupyter.engine import sandbox
    from rlm_jupyter.engine.worker import Worker

    ctx = rj.load(rj.samples() / "claude-code")
    ctx.regex_search("warm-up")  # build lazy tables once, for both sides
    levels = [lv for lv in sandbox.LEVELS if _level_works(lv)]
    rows = []
    import os

    from rlm_jupyter.engine import forkserver

    for level in levels:
        # forked from the fork server's template (the template itself started beforehand, as %load_ext does), and
        # started alone as before (RLM_JUPYTER_FORKSERVER=0)
        ways = [("forked", "1"), ("alone (before)", "0")] if forkserver.enabled(level) else [("alone", "0")]
        for how, flag in ways:
            os.environ[forkserver.ENV_VAR] = flag
            if flag == "1":
                forkserver.prestart(level).wait_ready()
            starts = start_times(level, ctx, args.starts)
            rows.append(
                {
                    "part": "worker",
                    "what": f"start, {how}",
                    "sandbox": level,
                    **{f"{k} ms": round(v, 1) for k, v in starts.items()},
                    "load (1 min)": round(os.getloadavg()[0], 1),
                }
            )
        os.environ.pop(forkserver.ENV_VAR, None)
        with Worker(ctx, isolation=level, allow_unsandboxed=True) as w:
            w.execute("context.regex_search('warm-up')")
            for name, code in STEPS.items():
                local = in_process_step(ctx, code, args.steps)
                remote = worker_step(w, code, args.steps)
                over = remote - local
                rows.append(
                    {
                        "part": "worker",
                        "what": f"step: {name}",
                        "sandbox": level,
                        "in-process ms": round(local, 3),
                        "worker ms": round(remote, 3),
                        "overhead ms": round(over, 3),
                        "target": f"<= {TARGET_MS:g} ms",
                        "ok": over <= TARGET_MS,
                    }
                )
    return rows


def _level_works(level: str) -> bool:
    from rlm_jupyter.engine import sandbox

    try:
        sandbox.choose(level)
    except (RuntimeError, ValueError):
        return False
    return True


# ==== LOOP part: added by the lead ==================================================================================
# sub_llm_batch of 32 calls against a scripted server answering in 200 ms: wall time vs one call (target <= 2x);
# time to first event; trace write throughput (events/s). Return rows shaped like worker_part's.
def loop_part(args) -> list[dict]:
    import rlm_jupyter as rj
    from rlm_jupyter.engine.models import Models
    from rlm_jupyter.trace import TraceWriter

    rows = []
    # 1. sub_llm_batch's fan-out: 32 calls to a server that takes 200 ms per answer, vs one call; 5 times, each with
    # a fresh server and client (as in a fresh kernel). The server in this process (before) shares the interpreter
    # lock with the 32 calls: ~6 ms of CPU per call (litellm ~5, the server ~1) on 2 shared cores; in a process of
    # its own (as a real model server is) only the client's share is left here.
    import os
    import resource

    def cpu() -> float:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    for label, separate in (("server in this process (before)", False), ("server in its own process", True)):
        ratios, cpus = [], []
        for _ in range(5):
            with _scripted(separate) as url:
                models = Models()
                kw = {"api_base": url}
                models.complete(MODEL, MSGS, **kw)  # warm up: litellm import, first connection
                one = statistics.median(_timed(lambda m=models, k=kw: m.complete(MODEL, MSGS, **k)) for _ in range(3))
                c0 = cpu()
                batch = _timed(lambda m=models, k=kw: m.batch(MODEL, [MSGS] * 32, **k))  # as sub_llm_batch
                cpus.append(cpu() - c0)
                ratios.append(round(batch / one, 2))
        held = sum(r <= 2 for r in ratios)
        rows.append(
            {
                "part": "loop",
                "what": f"sub_llm_batch 32 x 200 ms vs one call, {label}",
                "ratios (5 runs)": ratios,
                "held": f"{held}/5",
                "target": "<= 2x in 5 of 5",
                "cpu s per batch here": round(statistics.median(cpus), 3),
                "load (1 min)": round(os.getloadavg()[0], 1),
                **({"ok": held == 5} if separate else {}),
            }
        )

    # 2. Time to first event of a real run (offline model, the bundled Claude samples, a fresh worker).
    ctx = rj.load(rj.samples() / "claude-code")
    first: list[float] = []
    t = time.perf_counter()
    run = rj.rlm(
        "Which write was rejected?", ctx, on_event=lambda e: first.append(time.perf_counter()) if not first else None
    )
    total = time.perf_counter() - t
    rows.append(
        {
            "part": "loop",
            "what": "offline run",
            "first event ms": round((first[0] - t) * 1000, 1),
            "whole run s": round(total, 2),
            "events": len(run.trace),
            "status": run.status,
        }
    )

    # 3. Trace write throughput: events appended (and flushed) to a JSONL file per second.
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        n = 20_000
        with TraceWriter(Path(d) / "bench.rlmtrace.jsonl") as w:
            t = time.perf_counter()
            for i in range(n):
                w.emit(
                    "query",
                    "code-0",
                    op="search",
                    args={"query": "auth"},
                    result_ids=[f"m{i}", f"m{i + 1}"],
                    scores=[1.5, 0.5],
                    latency_ms=0.3,
                )
            dt = time.perf_counter() - t
    rows.append({"part": "loop", "what": "trace write", "events/s": round(n / dt), "events": n})
    return rows


@contextlib.contextmanager
def _scripted(separate: bool):
    """A scripted server answering "ok" after 0.2 s: in this process, or in its own (its command line)."""
    import subprocess
    import tempfile

    from rlm_jupyter.testing.scripted_server import ScriptedServer

    if not separate:
        with ScriptedServer(lambda request: {"text": "ok"}, latency_s=0.2) as srv:
            yield srv.base_url
        return
    with tempfile.TemporaryDirectory() as d:
        script = Path(d) / "s.json"
        script.write_text(json.dumps({"rules": [{"match": "", "text": "ok"}]}))
        proc = subprocess.Popen(
            [sys.executable, "-m", "rlm_jupyter.testing.scripted_server", "--script", str(script), "--latency", "0.2"],
            stdout=subprocess.PIPE,
            text=True,
            env={**__import__("os").environ, "PYTHONPATH": str(ROOT)},
        )
        try:
            port = int(proc.stdout.readline().split()[1])
            yield f"http://127.0.0.1:{port}/v1"
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


# ==== end of LOOP part ==============================================================================================


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=200, help="steps timed per step kind (median reported)")
    ap.add_argument("--starts", type=int, default=5, help="worker starts timed per sandbox level")
    ap.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = ap.parse_args(argv)
    rows = worker_part(args) + loop_part(args)
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        for r in rows:
            print("  ".join(f"{k}={v}" for k, v in r.items() if k != "part"))
    return 0 if all(r.get("ok", True) for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
