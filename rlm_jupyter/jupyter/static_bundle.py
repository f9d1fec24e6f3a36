"""What a saved notebook keeps of a view, for readers without its kernel: the trace view's static
`application/vnd.rlm-jupyter.trace+json` bundle (rendered by the JupyterLab extension, labextension/src/labext.ts)
and its plain HTML / text fallbacks (GitHub, nbviewer, a Lab without the extension). No anywidget here: building
a bundle needs no front-end.
"""

from __future__ import annotations

import html

from ..trace.model import Trace

MIME = "application/vnd.rlm-jupyter.trace+json"
LIVE_TEXT_LIMIT = 20_000  # chars per text field sent to a live view
BUNDLE_TEXT_LIMIT = 2_000  # chars per text field kept in the notebook's static MIME bundle
LIST_LIMIT = 500  # result ids per query event


# ---- cutting long texts -------------------------------------------------------------------------------------


def cut_event(event: dict, limit: int = LIVE_TEXT_LIMIT, list_limit: int = LIST_LIMIT) -> dict:
    """A copy of `event` whose top-level strings longer than `limit` are cut, and lists longer than `list_limit`
    shortened; `_cut` maps each cut field to its full size (characters, or list length)."""
    out = None
    cut: dict[str, int] = {}
    before = event.get("_cut") or {}  # cut again (bundle after live): keep the original full size
    for k, v in event.items():
        if isinstance(v, str) and len(v) > limit:
            out = out or dict(event)
            out[k] = v[:limit] + "…"
            cut[k] = max(len(v), before.get(k, 0))
        elif isinstance(v, list) and len(v) > list_limit and k != "snippets":
            out = out or dict(event)
            out[k] = v[:list_limit]
            cut[k] = max(len(v), before.get(k, 0))
    if out is None:
        return event
    out["_cut"] = {**(event.get("_cut") or {}), **cut}
    return out


def split_bundle(bundle) -> tuple[dict, dict]:
    """(data, metadata) of a `_repr_mimebundle_` result, which may be either a dict or a pair."""
    if isinstance(bundle, tuple):
        return dict(bundle[0] or {}), dict(bundle[1] or {})
    return dict(bundle or {}), {}


# ---- static fallbacks (a notebook opened without the kernel or the extension) -------------------------------------


def _summary(payload: dict) -> dict:
    events = payload.get("events") or []
    runs = [e for e in events if e.get("type") == "run" and e.get("parent") is None]
    root = runs[-1] if runs else {}
    rid = root.get("id")
    steps = [e for e in events if e.get("type") == "step" and e.get("parent") == rid]
    subs = [e for e in events if e.get("type") == "sub_call"]
    end = next((e for e in events if e.get("type") == "run_end" and e.get("parent") == rid), None)
    final = next((e for e in events if e.get("type") == "final" and e.get("parent") == rid), None)
    # the one roll-up Trace.usage() uses: the root run and everything below it, child runs included
    usage = (
        Trace(events=[e for e in events if isinstance(e, dict) and isinstance(e.get("id"), str)]).usage(rid)
        if isinstance(rid, str)
        else {"tokens_in": 0, "tokens_out": 0, "cost_usd": 0.0}
    )
    tokens_in, tokens_out, cost = usage["tokens_in"], usage["tokens_out"], usage["cost_usd"]
    wall = (end["t"] - root["t"]) if end and root.get("t") else None  # as Trace.wall_s (trace/model.py)
    return {
        "root": root,
        "steps": steps,
        "subs": subs,
        "final": final,
        "tokens_in": tokens_in,
        "tokens_out": tokens_out,
        "cost": cost,
        "wall": wall,
        "status": (payload.get("header") or {}).get("status") or (end or {}).get("status") or "",
    }


def plain_text(payload: dict) -> str:
    s = _summary(payload)
    title = (payload.get("header") or {}).get("title") or s["root"].get("question") or ""
    wall = f", {s['wall']:.1f} s" if s["wall"] is not None else ""
    line = (
        f"<TraceView {s['status'] or '-'}: {len(s['steps'])} steps, {len(s['subs'])} sub-calls, "
        f"{s['tokens_in'] + s['tokens_out']:,} tokens, ${s['cost']:.4f}{wall}>"
    )
    answer = (s["final"] or {}).get("answer")
    return "\n".join(
        x
        for x in (
            line,
            f"question: {title}" if title else "",
            _origin(payload, s),
            f"answer: {answer}" if answer else "",
            _saved(payload),
        )
        if x
    )


def _origin(payload: dict, s: dict) -> str:
    """ "re-run from step 2 of run-… (in p1_rerun)" for a re-run, with the view's note; "" otherwise."""
    note = (payload.get("header") or {}).get("note") or ""
    r = s["root"].get("rerun_of")
    if not isinstance(r, dict):
        return note
    line = f"re-run from step {int(r.get('step') or 0) + 1} of {r.get('run') or 'an earlier run'}"
    if r.get("edited"):
        line += f" ({r['edited']} edited)"
    return f"{line}; {note}" if note else line


def _saved(payload: dict) -> str:
    path = (payload.get("header") or {}).get("trace_path")
    return f"trace: {path}" if path else ""


def static_html(payload: dict, max_steps: int = 200) -> str:
    """Escaped HTML: header, answer and one line per step. Nothing from the trace is emitted unescaped."""
    s = _summary(payload)
    esc = html.escape
    title = (payload.get("header") or {}).get("title") or s["root"].get("question") or ""
    out = [
        '<div class="rj-static" style="font-family:sans-serif;font-size:13px">',
        f"<div><b>{esc(str(title))}</b> <code>{esc(str(s['status']))}</code></div>",
        f"<div>model {esc(str(s['root'].get('model') or '?'))} · {len(s['steps'])} steps · "
        f"{len(s['subs'])} sub-calls · {s['tokens_in'] + s['tokens_out']:,} tokens · ${s['cost']:.4f}</div>",
    ]
    for line in (_origin(payload, s), _saved(payload)):
        if line:
            out.append(f"<div>{esc(line)}</div>")
    answer = (s["final"] or {}).get("answer")
    if answer:
        out.append(f"<pre style='white-space:pre-wrap'>{esc(str(answer))}</pre>")
    codes: dict[str, list[str]] = {}
    for e in payload.get("events") or []:
        if e.get("type") == "code":
            codes.setdefault(e.get("parent"), []).append(str(e.get("code") or ""))
    out.append("<ol>")
    for st in s["steps"][:max_steps]:
        first = next((ln for c in codes.get(st["id"], []) for ln in c.splitlines() if ln.strip()), "")
        out.append(f"<li><code>{esc(first[:160])}</code></li>")
    out.append("</ol>")
    if len(s["steps"]) > max_steps:
        out.append(f"<div>… {len(s['steps']) - max_steps} more steps</div>")
    out.append("</div>")
    return "".join(out)
