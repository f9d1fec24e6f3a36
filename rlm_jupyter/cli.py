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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rlm-jupyter", description="Explore how coding agents use their context.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("inspect", help="summarise session files or folders (format sniffed)")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--json", action="store_true", help="print one JSON object with a key 'sessions'")
    p.set_defaults(func=_inspect)
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
