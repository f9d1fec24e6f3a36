"""The `rlm-jupyter` command line."""

from __future__ import annotations

import argparse
import sys


def _inspect(args: argparse.Namespace) -> int:
    import orjson

    from . import load

    ctx = load(args.paths)
    summaries = ctx.summaries()
    if args.json:
        payload = {"sessions": summaries, "report": ctx.report.to_dict()}
        sys.stdout.buffer.write(orjson.dumps(payload, option=orjson.OPT_INDENT_2) + b"\n")
        return 0
    for s in summaries:
        roles = ", ".join(f"{n} {r}" for r, n in s["messages"].items())
        t = s["tokens"]
        print(f"{s['format']} {s['producer_version'] or ''}  {s['session_id']}")
        print(f"  title: {s['title'] or '-'}")
        print(f"  messages: {roles or 'none'}; prompts: {len(s['user_prompts'])}; tool calls: {len(s['tool_calls'])}"
              f" ({s['tool_errors']} failed); compactions: {s['compactions']}; sub-agents: {len(s['subagents'])}")
        print(f"  tokens: input {t['input']:,}, output {t['output']:,}, cache read {t['cache_read']:,},"
              f" cache write {t['cache_write']:,}, reasoning {t['reasoning']:,}")
    print(ctx.report.summary())
    for issue in ctx.report.issues[:50]:
        print(f"  {issue.kind}: {issue.where()}: {issue.reason}")
    for note in ctx.report.notes[:50]:
        print(f"  note: {note}")
    return 0


def _discover(args: argparse.Namespace) -> int:
    from . import discover

    df = discover(args.home)
    if args.json:
        import orjson

        sys.stdout.buffer.write(orjson.dumps(df.with_columns(df["modified"].dt.to_string()).to_dicts(),
                                             option=orjson.OPT_INDENT_2) + b"\n")
    else:
        for row in df.iter_rows(named=True):
            print(f"{row['modified']:%Y-%m-%d %H:%M}  {row['format']:<16} {row['size_bytes']:>12,}  {row['path']}")
        if df.height == 0:
            print("no sessions found (looked for Claude Code, Codex, OpenCode and Gemini CLI histories)")
    return 0


def _default_trace_path() -> str:
    import os
    import time
    from pathlib import Path

    base = Path(os.environ.get("RLM_JUPYTER_CACHE") or Path.home() / ".cache" / "rlm_jupyter") / "traces"
    return str(base / f"run-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.rlmtrace.jsonl")


def _ask(args: argparse.Namespace) -> int:
    import orjson

    from . import load
    from .rlm import Budget, ModelError, rlm
    from .rlm.worker import Limits

    ctx = load(args.context)
    budget = Budget(usd=args.budget_usd, tokens=args.budget_tokens, seconds=args.budget_seconds)
    limits = Limits(step_timeout_s=args.step_timeout, memory_mb=args.memory_mb)
    try:
        run = rlm(args.question, ctx, model=args.model, sub_model=args.sub_model, max_depth=args.max_depth,
                  max_iterations=args.max_iterations, budget=budget, mode=args.mode,
                  trace_path=args.trace or _default_trace_path(), limits=limits)
    except ModelError as exc:
        print(f"rlm-jupyter: {exc}", file=sys.stderr)
        return 2
    if args.json:
        payload = {"answer": run.answer, "status": run.status, "stopped_by": run.stopped_by, "usage": run.usage,
                   "trace": str(run.trace_path) if run.trace_path else None}
        sys.stdout.buffer.write(orjson.dumps(payload, option=orjson.OPT_INDENT_2) + b"\n")
    else:
        print(run.answer or "(no answer)")
        u = run.usage
        print(f"\n[{run.status}{' by ' + run.stopped_by if run.stopped_by else ''}; {u['calls']} model calls, "
              f"{u['tokens_in']:,} tokens in, {u['tokens_out']:,} out, ${u['cost_usd']:.4f}, {u['wall_s']:.1f} s; "
              f"trace: {run.trace_path}]", file=sys.stderr)
    return 0 if run.status in ("done", "max_iterations", "budget") else 1


def _export(args: argparse.Namespace) -> int:
    """`rlm-jupyter export TRACE --otlp URL | --atif FILE`: failures (bad file, collector down, extra missing) are
    one line on stderr and exit code 2."""
    from .export import export

    if not args.otlp and not args.atif:
        print("rlm-jupyter export: say where to: --otlp URL and/or --atif FILE", file=sys.stderr)
        return 2
    headers = {}
    for h in args.header or []:
        name, sep, value = h.partition(":")
        if not sep or not name.strip():
            # the value is not echoed: it may be a credential
            print("rlm-jupyter export: a --header is not NAME:VALUE (e.g. 'Authorization: Basic …')", file=sys.stderr)
            return 2
        headers[name.strip()] = value.strip()
    context = None
    if args.context:
        from . import load

        context = load(args.context)
    try:
        if args.otlp:
            r = export(args.trace, to="otlp", endpoint=args.otlp, headers=headers, context=context,
                       project=args.project)
            print(f"sent {r['spans']} spans ({r['traces']} trace(s)) to {r['endpoint']}")
        if args.atif:
            doc = export(args.trace, to="atif", path=args.atif)
            n = len(doc) if isinstance(doc, list) else 1
            print(f"wrote {n} ATIF trajectory(ies) to {args.atif}")
    except (ImportError, RuntimeError) as exc:
        print(f"rlm-jupyter: {exc}", file=sys.stderr)
        return 2
    return 0


def _batch(args: argparse.Namespace) -> int:
    """`rlm-jupyter batch`: the same as rj.batch, with a progress bar on stderr (rlm_jupyter/batch/cli.py)."""
    from .batch.cli import run_cli

    return run_cli(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rlm-jupyter", description="Explore how coding agents use their context.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("inspect", help="summarise session files or folders (format sniffed)")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--json", action="store_true", help="print one JSON object with a key 'sessions'")
    p.set_defaults(func=_inspect)
    a = sub.add_parser("ask", help="answer a question about session histories with a Recursive Language Model")
    a.add_argument("question")
    a.add_argument("--context", nargs="+", required=True, metavar="PATH", help="session files or folders")
    a.add_argument("--model", default="offline", help="root model: any litellm name, offline, script:FILE, "
                   "replay:TRACE (default: offline, a rule-based demo model)")
    a.add_argument("--sub-model", default=None, help="model for sub_llm calls (default: follows --model)")
    a.add_argument("--mode", choices=("rlm", "hybrid"), default="rlm")
    a.add_argument("--max-depth", type=int, default=1)
    a.add_argument("--max-iterations", type=int, default=20)
    a.add_argument("--budget-usd", type=float, default=None)
    a.add_argument("--budget-tokens", type=int, default=None)
    a.add_argument("--budget-seconds", type=float, default=None)
    a.add_argument("--step-timeout", type=float, default=60.0, metavar="SECONDS", help="wall time per REPL step")
    a.add_argument("--memory-mb", type=int, default=2048, help="memory limit of the REPL worker")
    a.add_argument("--trace", default=None, metavar="FILE", help="trace file (default: under ~/.cache/rlm_jupyter)")
    a.add_argument("--json", action="store_true", help="print {answer, status, usage, trace}")
    a.set_defaults(func=_ask)
    e = sub.add_parser("export", help="send a run's trace to Phoenix / Langfuse (OTLP) or write it as ATIF")
    e.add_argument("trace", metavar="TRACE", help="a .rlmtrace.jsonl file (or an rlms log)")
    e.add_argument("--otlp", metavar="URL", help="OTLP/HTTP traces endpoint, e.g. http://127.0.0.1:6006/v1/traces")
    e.add_argument("--header", action="append", metavar="NAME:VALUE", help="a header for --otlp (repeatable)")
    e.add_argument("--project", default=None, help="Phoenix project name for --otlp")
    e.add_argument("--context", nargs="+", metavar="PATH", help="the sessions the run queried: retrieved "
                   "documents then carry their text")
    e.add_argument("--atif", metavar="FILE", help="write the run as an ATIF v1.7 trajectory")
    e.set_defaults(func=_export)
    b = sub.add_parser("batch", help="ask many questions (x sessions, x models); writes DIR/results.parquet and a "
                       "trace per run; resumable")
    b.add_argument("questions", metavar="QUESTIONS", help=".txt (one per line), .jsonl ({question, ...} per line) "
                   "or .csv (a question column)")
    b.add_argument("--context", nargs="+", required=True, metavar="PATH", help="session files or folders")
    b.add_argument("--per", choices=("session",), default=None, help="ask every question of every session alone")
    b.add_argument("--out", required=True, metavar="DIR", help="results folder (re-running skips finished rows)")
    b.add_argument("--model", action="append", default=None, help="root model (repeat to compare models)")
    b.add_argument("--sub-model", default=None)
    b.add_argument("--executor", choices=("threads", "ray"), default="threads")
    b.add_argument("--ray-address", default=None, help="a Ray cluster (default: the local runtime)")
    b.add_argument("--concurrency", type=int, default=8)
    b.add_argument("--max-iterations", type=int, default=20)
    b.add_argument("--budget-usd", type=float, default=None, help="for the whole batch")
    b.add_argument("--budget-tokens", type=int, default=None, help="for the whole batch")
    b.add_argument("--run-budget-usd", type=float, default=None, help="for each run")
    b.set_defaults(func=_batch)
    d = sub.add_parser("discover", help="list the sessions agents keep on this machine, newest first")
    d.add_argument("--home", default=None, help="look under this home folder instead of yours")
    d.add_argument("--json", action="store_true")
    d.set_defaults(func=_discover)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (FileNotFoundError, ValueError) as exc:  # UnknownFormatError is a ValueError
        print(f"rlm-jupyter: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `| head` closed the pipe: not an error
        return 0


if __name__ == "__main__":
    sys.exit(main())
