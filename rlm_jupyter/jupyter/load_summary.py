"""What %rlm_load shows: the summary of a loaded context (one row per session: id, format, model, start, end,
messages, compactions; capped for big corpora), the files it skipped, and why nothing loaded when nothing did."""

from __future__ import annotations

import html
import os

# Rows of the per-session table a notebook keeps: a corpus of thousands would bloat the saved notebook;
# `ctx.sessions` has them all.
TEXT_ROWS = 20
HTML_ROWS = 200
SKIPPED_SHOWN = 10
WALK_CAP = 10_000  # files counted when saying why nothing loaded


def _when(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value is not None else "-"


def _skipped(report) -> list[str]:
    """Files the load looked at and did not use: "path: why" (not a known session format, unreadable)."""
    out = [n.replace(": skipped, ", ": ", 1) for n in report.notes]
    out += [f"{i.where()}: unreadable ({i.reason})" for i in report.unreadable]
    return out


class LoadSummary:
    """Sessions, formats, messages by role, tool calls, compactions, malformed lines, skipped files, and a table
    of the sessions (id, format, model, started, ended, messages, compactions)."""

    def __init__(self, ctx, name: str):
        self.name = name
        self.summaries = ctx.summaries()
        s = self.summaries
        self.formats: dict[str, int] = {}
        self.roles: dict[str, int] = {}
        for x in s:
            self.formats[x["format"]] = self.formats.get(x["format"], 0) + 1
            for role, n in (x.get("messages") or {}).items():
                self.roles[role] = self.roles.get(role, 0) + n
        self.messages = len(ctx)
        self.tool_calls = sum(len(x.get("tool_calls") or []) for x in s)
        self.tool_errors = sum(x.get("tool_errors") or 0 for x in s)
        self.compactions = sum(x.get("compactions") or 0 for x in s)
        self.malformed = sum(x.get("malformed_lines") or 0 for x in s)
        self.report = ctx.report.summary()
        self.skipped = _skipped(ctx.report)
        self.sessions = ctx.sessions.select(
            "session_id", "format", "model", "started", "updated", "title", "messages", "compactions"
        ).to_dicts()

    def lines(self) -> list[str]:
        fmts = ", ".join(f"{k} {v}" for k, v in sorted(self.formats.items()))
        roles = ", ".join(f"{k} {v:,}" for k, v in sorted(self.roles.items(), key=lambda kv: -kv[1]))
        out = [
            f"{self.name}: {len(self.summaries)} session(s), {self.messages:,} messages",
            f"formats: {fmts or '-'}",
            f"messages by role: {roles or '-'}",
            f"tool calls: {self.tool_calls:,} ({self.tool_errors:,} failed); compactions: {self.compactions:,}; "
            f"malformed lines skipped: {self.malformed:,}",
            f"load report: {self.report}",
        ]
        if self.skipped:
            out.append(f"skipped {len(self.skipped)} file(s):")
            out += [f"  {x}" for x in self.skipped[:SKIPPED_SHOWN]]
            if len(self.skipped) > SKIPPED_SHOWN:
                out.append(f"  … and {len(self.skipped) - SKIPPED_SHOWN} more ({self.name}.report lists them all)")
        return out

    def table_lines(self) -> list[str]:
        """The sessions as a fixed-width table, at most TEXT_ROWS rows."""
        head = ("session", "format", "model", "started", "ended", "messages", "compactions")
        rows = [
            (
                x["session_id"],
                x["format"] or "-",
                x["model"] or "-",
                _when(x["started"]),
                _when(x["updated"]),
                f"{x['messages'] or 0:,}",
                f"{x['compactions'] or 0:,}",
            )
            for x in self.sessions[:TEXT_ROWS]
        ]
        widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
        right = {5, 6}

        def fmt(r: list[str]) -> str:
            cells = enumerate(zip(r, widths, strict=True))
            return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in cells).rstrip()

        out = [fmt(head), *(fmt(r) for r in rows)]
        if len(self.sessions) > TEXT_ROWS:
            out.append(f"… and {len(self.sessions) - TEXT_ROWS:,} more sessions ({self.name}.sessions has them all)")
        return out

    def __repr__(self) -> str:
        return "\n".join(self.lines() + [""] + self.table_lines())

    def _repr_pretty_(self, p, cycle) -> None:
        p.text(repr(self))

    def _repr_html_(self) -> str:
        e = html.escape
        rows = "".join(
            f"<tr><td><code>{e(x['session_id'])}</code></td><td>{e(x['format'] or '')}</td>"
            f"<td>{e(x['model'] or '-')}</td><td>{_when(x['started'])}</td><td>{_when(x['updated'])}</td>"
            f"<td>{e(str(x.get('title') or ''))[:80]}</td><td>{x['messages'] or 0:,}</td>"
            f"<td>{x['compactions'] or 0}</td></tr>"
            for x in self.sessions[:HTML_ROWS]
        )
        more = (
            f"<p>… and {len(self.sessions) - HTML_ROWS:,} more sessions ({e(self.name)}.sessions has them all)</p>"
            if len(self.sessions) > HTML_ROWS
            else ""
        )
        head = "<br>".join(e(t) for t in self.lines())
        return (
            f"<div>{head}<table><tr><th>session</th><th>format</th><th>model</th><th>started</th><th>ended</th>"
            f"<th>title</th><th>messages</th><th>compactions</th></tr>{rows}</table>{more}</div>"
        )


def nothing_loaded(paths: list[str], report, name: str, previous) -> str:
    """Why a load found no session, and what to do: the files it skipped (not a known session format), the files
    a folder holds that are no session file type at all, or an empty folder; and what `name` still holds."""
    from ..sessions.load import _CANDIDATE_SUFFIXES

    where = ", ".join(paths[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")
    why: list[str] = []
    skipped = _skipped(report)
    if skipped:
        shown = "; ".join(skipped[:3]) + (f"; … {len(skipped) - 3} more" if len(skipped) > 3 else "")
        why.append(f"{len(skipped)} file(s) skipped: {shown}")
    ignored: list[str] = []
    n_ignored = 0
    for p in paths:
        if not os.path.isdir(p):
            continue
        for root, dirs, files in os.walk(p):
            if n_ignored >= WALK_CAP:  # a home folder holds millions: the first ones say enough
                break
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            for f in files:
                if not f.endswith(_CANDIDATE_SUFFIXES) or f.startswith("."):
                    n_ignored += 1
                    if len(ignored) < 3:
                        ignored.append(os.path.relpath(os.path.join(root, f), p))
    if n_ignored:
        plus = "+" if n_ignored >= WALK_CAP else ""
        more = f", … {n_ignored - 3:,}{plus} more" if n_ignored > 3 else ""
        why.append(
            f"{n_ignored:,}{plus} other file(s) are no session file type ({', '.join(ignored)}{more}; "
            f"session files end in {', '.join(_CANDIDATE_SUFFIXES)})"
        )
    if not why:
        why.append("no files in it" if all(os.path.isdir(p) for p in paths) else "no session in the file(s)")
    kept = (
        f"`{name}` still holds the {len(previous.sessions)} session(s) loaded before"
        if previous is not None and hasattr(previous, "sessions")
        else f"`{name}` was not set"
    )
    return (
        f"%rlm_load: nothing loaded from {where}: {'; '.join(why)}. {kept}. Pass a session file or a folder "
        f"of them (Claude Code, Codex, OpenCode, Gemini CLI, ATIF, …: docs/sessions.md), or run "
        f"%rlm_sessions to list the ones on this machine."
    )
