"""The `rlm-jupyter` command line.

Every failure is one line on stderr that says what happened and what to do, and a non-zero exit status: 2 for bad
input (a missing path, no sessions, a bad option, a trace path that cannot be written), 1 for a run that failed
(auth, server error, bad response: the reason is printed). RLM_JUPYTER_DEBUG=1 shows the traceback of an
unexpected error.
"""

from __future__ import annotations

import argparse
import os
import re
import sys


class CliError(Exception):
    """A failure the user can act on: printed as one line, exit status 2."""


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
        print(
            f"  messages: {roles or 'none'}; prompts: {len(s['user_prompts'])}; tool calls: {len(s['tool_calls'])}"
            f" ({s['tool_errors']} failed); compactions: {s['compactions']}; sub-agents: {len(s['subagents'])}"
        )
        print(
            f"  tokens: input {t['input']:,}, output {t['output']:,}, cache read {t['cache_read']:,},"
            f" cache write {t['cache_write']:,}, reasoning {t['reasoning']:,}"
        )
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

        sys.stdout.buffer.write(
            orjson.dumps(df.with_columns(df["modified"].dt.to_string()).to_dicts(), option=orjson.OPT_INDENT_2) + b"\n"
        )
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
    from .engine import Budget, ModelError, rlm
    from .engine.options import check_options
    from .engine.worker import Limits
    from .trace.writer import check_path

    # Everything the user gave is checked before the sessions load and before any model call.
    check_options(
        cli=True,
        max_depth=args.max_depth,
        max_iterations=args.max_iterations,
        step_timeout=args.step_timeout,
        memory_mb=args.memory_mb,
        budget_usd=args.budget_usd,
        budget_tokens=args.budget_tokens,
        budget_seconds=args.budget_seconds,
    )
    trace_path = check_path(args.trace or _default_trace_path())
    ctx = load(args.context)
    if len(ctx) == 0:
        raise CliError(_no_sessions(args.context, ctx.report))
    budget = Budget(
        usd=args.budget_usd, tokens=args.budget_tokens, seconds=args.budget_seconds, sub_calls=args.budget_sub_calls
    )
    limits = Limits(step_timeout_s=args.step_timeout, memory_mb=args.memory_mb)
    try:
        run = rlm(
            args.question,
            ctx,
            model=args.model,
            sub_model=args.sub_model,
            max_depth=args.max_depth,
            max_iterations=args.max_iterations,
            budget=budget,
            mode=args.mode,
            trace_path=trace_path,
            limits=limits,
            allowed_models=args.allow_model,
            allow_unsandboxed=args.allow_unsandboxed,
        )
    except ModelError as exc:
        raise CliError(str(exc)) from None
    failure = run_failure(run) if run.status == "error" else None
    if args.json:
        payload = {
            "answer": run.answer,
            "status": run.status,
            "stopped_by": run.stopped_by,
            "usage": run.usage,
            "trace": str(run.trace_path) if run.trace_path else None,
            "error": dict(zip(("kind", "reason", "message"), failure, strict=True)) if failure else None,
        }
        sys.stdout.buffer.write(orjson.dumps(payload, option=orjson.OPT_INDENT_2) + b"\n")
    elif failure is not None:
        if run.answer:
            print(run.answer)  # what the run had before it failed
        print(f"rlm-jupyter: the run failed: {failure[1]}: {failure[2]} (trace: {run.trace_path})", file=sys.stderr)
    else:
        print(run.answer or "(no answer)")
        u = run.usage
        print(
            f"\n[{run.status}{' by ' + run.stopped_by if run.stopped_by else ''}; {u['calls']} model calls, "
            f"{u['tokens_in']:,} tokens in, {u['tokens_out']:,} out, ${u['cost_usd']:.4f}, {u['wall_s']:.1f} s; "
            f"trace: {run.trace_path}]",
            file=sys.stderr,
        )
    from .trace.events import ANSWERED

    return 0 if run.status in ANSWERED else 1


def _export(args: argparse.Namespace) -> int:
    """`rlm-jupyter export TRACE --otlp URL | --atif FILE`: failures (bad file, collector down, extra missing) are
    one line on stderr and exit code 2."""
    from .interop import export

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
            r = export(
                args.trace, to="otlp", endpoint=args.otlp, headers=headers, context=context, project=args.project
            )
            print(f"sent {r['spans']} spans ({r['traces']} trace(s)) to {r['endpoint']}")
        if args.atif:
            doc = export(args.trace, to="atif", path=args.atif)
            n = len(doc) if isinstance(doc, list) else 1
            print(f"wrote {n} ATIF trajectory(ies) to {args.atif}")
    except (ImportError, RuntimeError) as exc:
        print(f"rlm-jupyter: {exc}", file=sys.stderr)
        return 2
    return 0


def _no_sessions(paths: list[str], report) -> str:
    """What `ask` says when the paths hold nothing loadable: before any model call, with what was skipped."""
    skipped = [*report.notes, *(f"{i.where()}: {i.reason}" for i in report.issues)]
    why = f"{len(skipped)} file(s) skipped, e.g. {_clip(skipped[0], 160)}" if skipped else "no session files in it"
    return (
        f"no sessions in {', '.join(paths)} ({why}): give session files or folders of a supported format "
        "(`rlm-jupyter inspect PATH` shows what was read)"
    )


# Why a run failed, in a few words, from the run's error_kind (docs/engine.md) or, failing that, the error text.
_REASONS = {
    "auth": "auth failed",
    "missing_key": "no API key",
    "server": "server error",
    "bad_response": "bad response",
    "timeout": "timed out",
    "unreachable": "could not reach the model server",
    "connection": "could not reach the model server",
    "rate_limit": "rate limited",
    "not_found": "model not found",
    "bad_request": "request refused",
    "unknown_model": "unknown model",
    "budget": "budget exhausted",
    "refused": "model not allowed",
    "sandbox": "the REPL worker could not start",
    "config": "configuration error",
    "model": "local model error",
}
_TEXT_REASONS = (  # checked in order: litellm reports an unreadable 200 answer as an InternalServerError
    (
        "bad_response",
        (
            "Expecting value",
            "JSONDecodeError",
            "list index out of range",
            "choices",
            "APIResponseValidationError",
            "Invalid response",
        ),
    ),
    ("auth", ("AuthenticationError", "PermissionDeniedError", " 401", "Incorrect API key")),
    ("timeout", ("Timeout", "timed out")),
    ("rate_limit", ("RateLimitError", " 429")),
    ("not_found", ("NotFoundError",)),
    ("connection", ("APIConnectionError", "Connection refused", "connection")),
    ("server", ("InternalServerError", "ServiceUnavailableError", "BadGatewayError", "HTTP 5", "server error")),
)


def run_failure(run) -> tuple[str, str, str]:
    """(kind, reason, message) of a failed run, e.g. ("auth", "auth failed", "gpt-4o-mini: Incorrect API key…"):
    the `error_kind` and `error` the engine recorded (on the Run, else on its run_end event) when there are, else
    a kind read from the last error event's text."""
    trace = run.trace
    root = trace.root or {}
    ends = trace.children(root.get("id"), "run_end") if root else []
    kind = message = None
    for source in (run, *(ends[-1:])):
        get = source.get if isinstance(source, dict) else lambda name, s=source: getattr(s, name, None)
        kind = kind or (get("error_kind") if isinstance(get("error_kind"), str) else None)
        message = message or (get("error") if isinstance(get("error"), str) else None)
    errors = [e for e in trace.of_type("error") if e.get("message") and e.get("kind") != "unsandboxed"]
    text = message or (errors[-1]["message"] if errors else "the run ended with an error (see the trace)")
    if not kind or kind == "error":
        kind = next((k for k, needles in _TEXT_REASONS if any(n in text for n in needles)), kind or "error")
    text = _LITELLM_NOISE.sub("", text.removeprefix("ModelError: "))
    return kind, _REASONS.get(kind, kind.replace("_", " ")), _clip(" ".join(text.split()), 400)


# litellm's wrapping of a provider error ("litellm.X: X: OpenAIException - ", ", Received response - <...>"): noise
_LITELLM_NOISE = re.compile(
    r"litellm\.\w+: (?:\w+: )?(?:\w+Exception - )?(?:error - )?"
    r"|, Received response - .*?Type of response - <class '[^']*'>"
)


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _cache_cmd(args) -> int:
    """`cache info` / `cache clear`: the load cache (the tables `rj.load` keeps per source file)."""
    import json

    from .sessions import cache

    info = cache.info()
    if args.action == "clear":
        freed = cache.clear()
        print(f"cleared {info['folder']}: {info['files']:,} file entries, {freed / 1e6:,.1f} MB freed")
    elif args.json:
        print(json.dumps(info, indent=2))
    else:
        print(
            f"{info['folder']}: {info['files']:,} source files, {info['rows']:,} rows in {info['packs']} pack(s), "
            f"{info['bytes'] / 1e6:,.1f} MB ({info['stale_packs']} stale, {info['invalid_packs']} invalid)"
        )
    return 0


def _batch(args: argparse.Namespace) -> int:
    """`rlm-jupyter batch`: the same as rj.batch, with a progress bar on stderr (rlm_jupyter/study/cli.py)."""
    from .study.cli import run_cli

    return run_cli(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rlm-jupyter", description="Explore how coding agents use their context.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("inspect", help="summarise session files or folders (format sniffed)")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--json", action="store_true", help="print one JSON object with a key 'sessions'")
    p.set_defaults(func=_inspect)
    from .engine import budget as B

    a = sub.add_parser(
        "ask",
        help="answer a question about session histories with a Recursive Language Model",
        epilog=B.defaults_help() + ".",
    )
    a.add_argument("question")
    a.add_argument("--context", nargs="+", required=True, metavar="PATH", help="session files or folders")
    a.add_argument(
        "--model",
        default="offline",
        help="root model: any litellm name, offline, script:FILE, "
        "replay:TRACE (default: offline, a rule-based demo model)",
    )
    a.add_argument("--sub-model", default=None, help="model for sub_llm calls (default: follows --model)")
    a.add_argument("--mode", choices=("rlm", "hybrid"), default="rlm")
    a.add_argument("--max-depth", type=int, default=1)
    a.add_argument("--max-iterations", type=int, default=20)
    a.add_argument("--budget-usd", type=float, default=B.DEFAULT_USD, help="default: %(default)s")
    a.add_argument("--budget-tokens", type=int, default=B.DEFAULT_TOKENS, help="default: %(default)s")
    a.add_argument(
        "--budget-seconds",
        type=float,
        default=B.DEFAULT_SECONDS,
        help="wall time of the whole run, model calls included (default: %(default)s)",
    )
    a.add_argument(
        "--budget-sub-calls",
        type=int,
        default=B.DEFAULT_SUB_CALLS,
        help="sub_llm prompts + rlm() calls per run (default: %(default)s)",
    )
    a.add_argument(
        "--step-timeout",
        type=float,
        default=B.DEFAULT_STEP_TIMEOUT_S,
        metavar="SECONDS",
        help="wall time per REPL step, its model calls included (default: %(default)s)",
    )
    a.add_argument(
        "--memory-mb",
        type=int,
        default=B.DEFAULT_MEMORY_MB,
        help="memory limit of the REPL worker (default: %(default)s)",
    )
    a.add_argument(
        "--allow-model",
        action="append",
        default=[],
        metavar="MODEL",
        help="a model sub_llm(..., model=MODEL) may use besides --model/--sub-model (repeatable)",
    )
    a.add_argument(
        "--allow-unsandboxed",
        action="store_true",
        help="run even if the only isolation here is plain rlimits (model code then has the network)",
    )
    a.add_argument("--trace", default=None, metavar="FILE", help="trace file (default: under ~/.cache/rlm_jupyter)")
    a.add_argument("--json", action="store_true", help="print {answer, status, usage, trace}")
    a.set_defaults(func=_ask)
    e = sub.add_parser("export", help="send a run's trace to Phoenix / Langfuse (OTLP) or write it as ATIF")
    e.add_argument("trace", metavar="TRACE", help="a .rlmtrace.jsonl file (or an rlms log)")
    e.add_argument("--otlp", metavar="URL", help="OTLP/HTTP traces endpoint, e.g. http://127.0.0.1:6006/v1/traces")
    e.add_argument("--header", action="append", metavar="NAME:VALUE", help="a header for --otlp (repeatable)")
    e.add_argument("--project", default=None, help="Phoenix project name for --otlp")
    e.add_argument(
        "--context",
        nargs="+",
        metavar="PATH",
        help="the sessions the run queried: retrieved documents then carry their text",
    )
    e.add_argument("--atif", metavar="FILE", help="write the run as an ATIF v1.7 trajectory")
    e.set_defaults(func=_export)
    b = sub.add_parser(
        "batch",
        help="ask many questions (x sessions, x models); writes DIR/results.parquet and a trace per run; resumable",
    )
    b.add_argument(
        "questions",
        metavar="QUESTIONS",
        help=".txt (one per line), .jsonl ({question, ...} per line) or .csv (a question column)",
    )
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
    c = sub.add_parser("cache", help="the load cache: what it holds (info) or empty it (clear)")
    c.add_argument("action", choices=("info", "clear"))
    c.add_argument("--json", action="store_true", help="info as one JSON object")
    c.set_defaults(func=_cache_cmd)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except BrokenPipeError:  # `| head` closed the pipe: not an error
        return 0
    except (CliError, OSError, ValueError) as exc:  # UnknownFormatError, OptionError, TraceInUseError: ValueError
        print(f"rlm-jupyter: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rlm-jupyter: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if os.environ.get("RLM_JUPYTER_DEBUG"):
            raise
        print(
            f"rlm-jupyter: unexpected error: {type(exc).__name__}: {_one_line(exc)} (this is a bug: please "
            "report it; RLM_JUPYTER_DEBUG=1 shows the traceback)",
            file=sys.stderr,
        )
        return 1


def _one_line(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, OSError) and exc.filename and exc.strerror:  # "[Errno 21] Is a directory: 'x'" -> plain
        text = f"{exc.filename}: {exc.strerror}"
    return _clip(" ".join(text.split()), 500)


if __name__ == "__main__":
    sys.exit(main())
