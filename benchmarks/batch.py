"""Batch benchmark (issue 12), side by side in one run.

    .venv/bin/python benchmarks/batch.py [--runs 200] [--concurrency 16] [--sessions 3000] [--no-ray]
                                         [--no-baseline] [--json]

1. `rj.batch` of RUNS runs against the scripted model server answering every call in 200 ms, 3 calls per run
   (root writes code calling sub_llm, the sub-model answers, root answers FINAL): the threads executor at
   CONCURRENCY vs the ideal (runs x 3 x 0.2 s / concurrency; target <= 1.3x), and the Ray executor on the local
   runtime vs threads (target <= 1.5x), under a model name litellm prices (gpt-4o-mini, as a user's rows have a
   cost) and, beside it, one it has no price for (a local model's). Each run gets its own REPL worker, forked from
   the fork server's template (engine/forkserver.py); the same batch with workers started alone
   (RLM_JUPYTER_FORKSERVER=0) is the baseline (--no-baseline skips it). The server runs in a process of its own,
   as a real one does. The machine is shared: each row says the load and the CPU seconds per run of the driver, the
   workers and the server, and the floor those CPU seconds set on 2 idle cores.
2. The driver's memory (RSS) when 25 / 50 / 75 / 100 % of the threads batch had finished (flat: rows stream to
   disk, the frame is read back from it).
3. `rj.xray_corpus` over SESSIONS sessions (copies of the recorded compactions and the bundled samples, each its
   own session id) (target <= 10 s).
4. `sub_llm_batch`'s fan-out: 32 calls x 200 ms vs one call, 5 runs (target <= 2x in 5 of 5), against the scripted
   server as it is and, as the baseline, with socketserver's listen backlog of 5 it had before (issue 12).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LATENCY = 0.2
MODEL = "openai/scripted-model"
# The batch rows: a model name in litellm's price map, as in issue 12's example (model="gpt-4o-mini"), so rows carry
# a cost as a user's do; the same batch under a name litellm has no price for (a local model) is shown beside it:
# litellm then searches its fallback rules on every call (~1 ms of CPU, profiled), in the driver's lock.
PRICED = "openai/gpt-4o-mini"


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


@contextlib.contextmanager
def _server_process(latency: float):
    """The scripted model server in a process of its own, as a real model server is: in the driver's process its
    16 handler threads would compete with the runs for the driver's interpreter lock (issue 12: part of the time
    that went missing). Yields (base_url, cpu_s) where cpu_s() is the server's CPU time so far."""
    import subprocess

    code = (
        "import sys\nfrom rlm_jupyter.testing import ScriptedServer\n"
        "from rlm_jupyter.testing.batch_model import answerer\n"
        f"srv = ScriptedServer(answerer, latency_s={latency!r}).start()\n"
        "print(srv.base_url, flush=True)\nsys.stdin.read()\nsrv.stop()\n"
    )
    env = {**__import__("os").environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        url = proc.stdout.readline().strip()
        yield url, lambda: _proc_cpu(proc.pid)
    finally:
        proc.stdin.close()
        proc.wait(timeout=10)


def _proc_cpu(pid: int, children: bool = False) -> float:
    import os

    try:
        f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(f[13 if children else 11]) + int(f[14 if children else 12])) / os.sysconf("SC_CLK_TCK")


def _tree_cpu(pid: int) -> float:
    """CPU seconds of a process and everything under it (bwrap -> its init -> the worker)."""
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        total += _proc_cpu(p)
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
    return total


def _cpu_self() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _workers_cpu() -> float:
    from rlm_jupyter.engine import forkserver

    return sum(fs.workers_cpu_s() or 0.0 for fs in forkserver._servers.values())


def batch_part(args, tmp: Path) -> list[dict]:
    import os

    import rlm_jupyter as rj
    from rlm_jupyter.engine.worker import Worker

    ctx = rj.load(rj.samples() / "claude-code")
    qs = [f"q-{i}: what happened?" for i in range(args.runs)]
    ideal = args.runs * 3 * LATENCY / args.concurrency
    rows = []
    with _server_process(LATENCY) as (url, server_cpu):
        os.environ["OPENAI_BASE_URL"] = url
        os.environ.setdefault("OPENAI_API_KEY", "sk-bench-not-a-key")
        from rlm_jupyter.engine.models import load_litellm, warm_litellm

        # imported once, and what its first call imports too (~0.3 s, once per process), before anything is timed:
        # else the first batch timed pays it and the next does not
        warm_litellm(load_litellm())
        # The first batch of a process also opens its first connections to the server and forks its first workers
        # (~0.4 s more, measured by swapping the order): that one is the unpriced name, shown, not judged.
        modes = [
            ("forked (fork server), a model name without a price, the process's first batch", "1", MODEL, False),
            ("forked (fork server)", "1", PRICED, True),
        ] + ([] if args.no_baseline else [("started alone (before)", "0", PRICED, False)])
        for label, flag, model, main in modes:
            os.environ["RLM_JUPYTER_FORKSERVER"] = flag
            starts, start_cpu = [], []
            for _ in range(3):
                t = time.perf_counter()
                with Worker(ctx) as w:
                    w.execute("pass")
                    start_cpu.append(_tree_cpu(w._proc.pid))  # the worker's own CPU to its first step
                starts.append(time.perf_counter() - t)
            start_s = statistics.median(starts)
            marks: list[tuple[int, float]] = []
            quarter = max(1, args.runs // 4)

            def on_row(row, p, marks=marks, quarter=quarter):
                if p["finished"] % quarter == 0 or p["finished"] == args.runs:
                    marks.append((p["finished"], _rss_mb()))

            rss0 = _rss_mb()
            load0 = os.getloadavg()[0]
            c_self, c_work, c_srv = _cpu_self(), _workers_cpu(), server_cpu()
            t = time.perf_counter()
            res = rj.batch(
                qs,
                context=ctx,
                model=model,
                concurrency=args.concurrency,
                out=tmp / f"threads-{len(rows)}",
                display=False,
                on_row=on_row,
            )
            threads_s = time.perf_counter() - t
            time.sleep(0.3)  # the last workers are reaped
            cpu = {"driver": _cpu_self() - c_self, "workers": _workers_cpu() - c_work, "server": server_cpu() - c_srv}
            ok = res.df.filter(res.df["status"] == "done").height
            if main:
                res_threads, threads_main = res, threads_s
            rows.append(
                {
                    "part": "batch",
                    "what": f"threads, {args.runs} runs x 3 calls x {LATENCY:g} s, "
                    f"concurrency {args.concurrency}, workers {label}, model {model}",
                    "wall s": round(threads_s, 2),
                    "ideal s": round(ideal, 2),
                    "ratio": round(threads_s / ideal, 2),
                    "target": "<= 1.3x ideal",
                    **({"ok": threads_s <= 1.3 * ideal} if main else {}),
                    "done": ok,
                    "cost $ (priced: not 0)": round(res.df["cost_usd"].sum(), 4),
                    "cpu s per run: driver / workers / server": f"{cpu['driver'] / args.runs:.3f} / "
                    + (f"{cpu['workers'] / args.runs:.3f}" if flag == "1" else "n/a (bwrap's, not reaped here)")
                    + f" / {cpu['server'] / args.runs:.3f}",
                    **({"cpu-bound floor s on 2 idle cores": round(sum(cpu.values()) / 2, 2)} if flag == "1" else {}),
                    "load (1 min) before/after": f"{load0:.1f}/{os.getloadavg()[0]:.1f}",
                    "run wall s (mean)": round(res.df["wall_s"].mean(), 3),
                    "worker start s": round(start_s, 3),
                    "worker start cpu s": round(statistics.median(start_cpu), 3),
                }
            )
            if main:
                rows.append(
                    {
                        "part": "batch",
                        "what": "driver RSS as runs finish",
                        "MB at start": round(rss0, 1),
                        **{f"MB at {n}": round(mb, 1) for n, mb in marks},
                        "growth first->last quarter MB": round(marks[-1][1] - marks[0][1], 1) if marks else None,
                    }
                )
        os.environ.pop("RLM_JUPYTER_FORKSERVER", None)
        res, threads_s = res_threads, threads_main
        if not args.no_ray:
            try:
                import ray
            except ImportError:
                rows.append({"part": "batch", "what": "ray", "skipped": "ray is not installed (the `ray` extra)"})
            else:
                t = time.perf_counter()
                ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
                init_s = time.perf_counter() - t
                first: list[float] = []
                t = time.perf_counter()
                res_r = rj.batch(
                    qs,
                    context=ctx,
                    model=PRICED,
                    concurrency=args.concurrency,
                    out=tmp / "ray",
                    executor="ray",
                    group_size=args.group_size,
                    display=False,
                    on_row=lambda row, p: first.append(time.perf_counter()) if not first else None,
                )
                ray_s = time.perf_counter() - t
                ray.shutdown()
                same = res_r.df.select("question", "answer", "status").equals(
                    res.df.select("question", "answer", "status")
                )
                rows.append(
                    {
                        "part": "batch",
                        "what": f"ray (local, num_cpus=2), same {args.runs} runs, group_size {args.group_size}",
                        "wall s": round(ray_s, 2),
                        "threads s": round(threads_s, 2),
                        "ratio": round(ray_s / threads_s, 2),
                        "target": "<= 1.5x threads",
                        "ok": ray_s <= 1.5 * threads_s,
                        "run wall s (mean)": round(res_r.df["wall_s"].mean(), 3),
                        # Ray's start per batch: its worker processes (runtime env), litellm imported in each
                        "first row after s": round(first[0] - t, 2) if first else None,
                        "ray.init s (not counted)": round(init_s, 2),
                        "same rows as threads": same,
                    }
                )
    return rows


def corpus_part(args) -> list[dict]:
    import polars as pl

    import rlm_jupyter as rj
    from rlm_jupyter.context import Context

    rec = ROOT / "tests" / "data" / "recorded"
    base = rj.load(
        rec / "claude-code", rec / "codex" / "sessions", rec / "opencode" / "current" / "opencode.db", rj.samples()
    )
    per = base.sessions.height
    copies = -(-args.sessions // per)
    frames, metas = [], []
    for k in range(copies):
        sfx = f"~{k}"
        frames.append(base.df.with_columns(pl.col("session_id") + sfx, pl.col("id") + sfx, pl.col("parent_id") + sfx))
        metas.append(base.sessions.with_columns(pl.col("session_id") + sfx))
    df, sessions = pl.concat(frames), pl.concat(metas)
    keep = sessions["session_id"].head(args.sessions).implode()
    ctx = Context.from_frame(
        df.filter(pl.col("session_id").is_in(keep)), sessions.filter(pl.col("session_id").is_in(keep))
    )
    ctx.table  # noqa: B018  (the lazy table is the load's, not the X-ray's)
    t = time.perf_counter()
    c = rj.xray_corpus(ctx)
    dt = time.perf_counter() - t
    eventful = c.df.filter(pl.col("tokens_removed") > 0).height
    return [
        {
            "part": "corpus",
            "what": f"xray_corpus over {c.df.height} sessions ({len(ctx):,} messages, {eventful} with events)",
            "s": round(dt, 2),
            "target": "<= 10 s",
            "ok": dt <= 10,
        }
    ]


def sub_batch_part(args) -> list[dict]:
    from rlm_jupyter.engine.models import Models
    from rlm_jupyter.testing import scripted_server
    from rlm_jupyter.testing.scripted_server import ScriptedServer

    rows = []
    for label, backlog in (("backlog 5 (before)", 5), ("backlog 128 (now)", None)):
        saved = scripted_server._Server.request_queue_size
        if backlog is not None:
            scripted_server._Server.request_queue_size = backlog
        try:
            ratios = []
            drops0 = _listen_overflows()
            for _ in range(5):
                with ScriptedServer(lambda request: {"text": "ok"}, latency_s=LATENCY) as srv:
                    models = Models()  # a fresh client and connection pool, as in a fresh process
                    kw = {"api_base": srv.base_url}
                    msgs = [{"role": "user", "content": "Summarize: the build failed."}]
                    models.complete(MODEL, msgs, **kw)
                    one = statistics.median(
                        _timed(lambda m=models, x=msgs, k=kw: m.complete(MODEL, x, **k)) for _ in range(3)
                    )
                    # one batch, timed alone: its 31 new connections arrive at once, as in a run's first fan-out
                    # (a median over several batches would hide a 1 s retry of a dropped SYN)
                    batch = _timed(lambda m=models, x=msgs, k=kw: m.batch(MODEL, [x] * 32, **k))
                    ratios.append(round(batch / one, 2))
        finally:
            scripted_server._Server.request_queue_size = saved
        drops = _listen_overflows() - drops0 if drops0 is not None else None
        held = sum(r <= 2 for r in ratios)
        rows.append(
            {
                "part": "sub_llm_batch",
                "what": f"32 x {LATENCY:g} s vs one call, server {label}",
                "ratios (5 runs)": ratios,
                "held": f"{held}/5",
                "target": "<= 2x in 5 of 5",
                "listen overflows (machine-wide)": drops,
                **({"ok": held == 5} if backlog is None else {}),
            }
        )
    return rows


def _listen_overflows() -> int | None:
    """TcpExt ListenOverflows: connections the kernel dropped because an accept queue was full (all sockets)."""
    try:
        lines = Path("/proc/net/netstat").read_text().splitlines()
    except OSError:
        return None
    for head, values in zip(lines[::2], lines[1::2], strict=False):
        if head.startswith("TcpExt:"):
            return int(dict(zip(head.split()[1:], values.split()[1:], strict=False)).get("ListenOverflows", 0))
    return None


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--sessions", type=int, default=3000)
    ap.add_argument("--no-ray", action="store_true")
    ap.add_argument("--no-baseline", action="store_true", help="skip the same batch with workers started alone")
    ap.add_argument(
        "--group-size", type=int, default=None, help="runs in flight on one Ray actor (default: concurrency / CPUs)"
    )
    ap.add_argument("--only", choices=("batch", "corpus", "sub_llm_batch"), default=None)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="rlmj-bench-batch-") as d:
        # the batch first: the most sensitive to the machine's load, which the other parts raise (and the corpus
        # part leaves a 3,000-session context in this process)
        if args.only in (None, "batch"):
            rows += batch_part(args, Path(d))
        if args.only in (None, "sub_llm_batch"):
            rows += sub_batch_part(args)
        if args.only in (None, "corpus"):
            rows += corpus_part(args)
    if args.json:
        print(json.dumps(rows, indent=1, default=str))
    else:
        for r in rows:
            print("  ".join(f"{k}={v}" for k, v in r.items() if k != "part"))
    return 0 if all(r.get("ok", True) for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
