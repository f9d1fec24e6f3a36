"""The live trace widget (`TraceView`) and the compare widget (`compare_view`), both anywidgets.

The front-end is one bundle, rlm_jupyter/jupyter/static/trace-view.js, built from labextension/src by
`npm --prefix labextension run bundle` (the JupyterLab extension of issue 6 reuses the same sources).
anywidget is imported here only, so `%load_ext rlm_jupyter` stays light.

Events reach the browser as custom comm messages, batched: `push()` only appends under a lock; a flusher thread
sends what accumulated at most every `interval` seconds, so a run emitting thousands of events never blocks on the
front-end and the browser renders one batch at a time. The flusher also adds the snippets to query events (the
messages a query returned, looked up in the context, centred on a match), so the run's thread never waits for
that. A view that appears later (re-display, page reload) asks for everything with {"action": "sync"}. Long texts
are cut (`cut_event`) with their full size noted in `_cut`; the trace file and `run.trace` keep everything.
docs/widget.md has the whole picture.
"""

from __future__ import annotations

import contextlib
import html
import json
import re
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path

import anywidget
import traitlets

from ..trace.events import VIEW_STATUSES, view_status
from ..trace.model import Trace

BUNDLE = Path(__file__).parent / "static" / "trace-view.js"
MIME = "application/vnd.rlm-jupyter.trace+json"
LIVE_TEXT_LIMIT = 20_000     # chars per text field sent to a live view
BUNDLE_TEXT_LIMIT = 2_000    # chars per text field kept in the notebook's static MIME bundle
LIST_LIMIT = 500             # result ids per query event
SNIPPETS_PER_QUERY = 10      # snippets attached to a query event for the view (when the context is known)
SNIPPET_CHARS = 320
SNIPPET_SCAN = 50_000        # chars of a message searched for the match a snippet is centred on
STATUSES = VIEW_STATUSES   # the one list: trace/events.py
_STATUS_ALIASES = {"max_iterations": view_status("max_iterations"), "stopping": "running"}
_SPACE = re.compile(r"\s+")


if not BUNDLE.exists():
    # ImportError: magics.py reports it as "live view unavailable" and the run goes on without the view
    raise ImportError(f"the trace view's front-end is not built ({BUNDLE} is missing): run "
                      "`npm --prefix labextension ci && npm --prefix labextension run bundle` in the repository")
_ESM_SOURCE: str | None = None


def _esm() -> str:
    global _ESM_SOURCE
    if _ESM_SOURCE is None:
        _ESM_SOURCE = BUNDLE.read_text(encoding="utf-8")
    return _ESM_SOURCE


# ---- cutting long texts ---------------------------------------------------------------------------------------

def cut_event(event: dict, limit: int = LIVE_TEXT_LIMIT, list_limit: int = LIST_LIMIT) -> dict:
    """A copy of `event` whose top-level strings longer than `limit` are cut, and lists longer than `list_limit`
    shortened; `_cut` maps each cut field to its full size (characters, or list length)."""
    out = None
    cut: dict[str, int] = {}
    before = event.get("_cut") or {}   # cut again (bundle after live): keep the original full size
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


def _status(status: str | None) -> str:
    status = _STATUS_ALIASES.get(status or "", status or "")
    return status


def _events_of(trace) -> list[dict]:
    """Events from a Trace, a Run, a path to a .rlmtrace.jsonl file, or a list of event dicts."""
    if trace is None:
        return []
    if hasattr(trace, "trace") and hasattr(trace, "status"):
        trace = trace.trace
    if isinstance(trace, (str, Path)):
        from ..trace import Trace

        trace = Trace.load(trace)
    events = getattr(trace, "events", trace)
    if not isinstance(events, Iterable):
        raise TypeError(f"TraceView: expected a Trace, a Run, a .rlmtrace.jsonl path or a list of events, "
                        f"not {type(trace).__name__}")
    return [e for e in events if isinstance(e, dict) and "id" in e]


# ---- snippets: the messages a query returned, looked up in the context -----------------------------------------

class _Messages:
    """Looks messages up by id in a Context's table (not through Context.get_by_id: that is traced, and the
    widget's look-ups must not show up in the run's trace as queries of the model)."""

    def __init__(self, context):
        self.context = context
        self._index: dict[str, int] | None = None
        self._lock = threading.Lock()

    def _rows(self) -> dict[str, int]:
        with self._lock:
            if self._index is None:
                ids = self.context.df["id"].to_list()
                self._index = {i: n for n, i in enumerate(ids) if i is not None}
            return self._index

    def get(self, msg_id: str) -> dict | None:
        n = self._rows().get(msg_id)
        if n is None:
            return None
        row = self.context.df.row(n, named=True)
        parts = [row.get("text") or ""]
        for extra in ("tool_input", "tool_output"):
            if row.get(extra) and row.get(extra) not in parts[0]:
                parts.append(_readable(row[extra]))
        return {"id": msg_id, "position": n, "role": row.get("role"), "tool_name": row.get("tool_name"),
                "session_id": row.get("session_id"), "format": row.get("source"),
                "text": "\n\n".join(p for p in parts if p)}

    def snippets(self, query: dict) -> list[dict]:
        patterns = _query_patterns(query)
        out = []
        for msg_id in (query.get("result_ids") or [])[:SNIPPETS_PER_QUERY]:
            m = self.get(msg_id) if isinstance(msg_id, str) else None
            if m is None:
                continue
            text = m["text"]
            start = 0
            for p in patterns:
                hit = p.search(text, 0, SNIPPET_SCAN)
                if hit:
                    start = max(0, hit.start() - SNIPPET_CHARS // 3)
                    break
            piece = text[start:start + SNIPPET_CHARS]
            piece = ("…" if start else "") + piece + ("…" if start + SNIPPET_CHARS < len(text) else "")
            piece = _SPACE.sub(" ", piece).strip()   # a preview: line breaks would make every snippet tall
            out.append({"id": msg_id, "position": m["position"], "role": m["role"], "tool_name": m["tool_name"],
                        "text": piece})
        return out


def _readable(text: str) -> str:
    """A tool's JSON input as `key: value` lines, string values as they are (not as escaped JSON strings: a file's
    content then reads as the file); anything else unchanged."""
    if not text.lstrip().startswith("{"):
        return text
    try:
        obj = json.loads(text)
    except ValueError:
        return text
    if not isinstance(obj, dict):
        return text
    lines = []
    for k, v in obj.items():
        v = v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)
        lines.append(f"{k}:\n{v}" if "\n" in v else f"{k}: {v}")
    return "\n".join(lines)


def _query_patterns(q: dict) -> list[re.Pattern]:
    args = q.get("args") or {}
    raw: list[tuple[str, int]] = []
    if q.get("op") == "regex_search" and isinstance(args.get("pattern"), str):
        raw.append((args["pattern"], 0 if args.get("case", True) else re.I))
    elif isinstance(args.get("query"), str):
        raw += [(r"\b" + re.escape(w), re.I) for w in re.split(r"\W+", args["query"]) if len(w) > 2]
    out = []
    for p, flags in raw:
        with contextlib.suppress(re.error):
            out.append(re.compile(p, flags))
    return out


def _follow_frontend_subshell(widget) -> None:
    """Let the view's buttons work while a cell runs. JupyterLab >= 4.4 sends widget messages on a kernel subshell
    (a thread of its own), but ipykernel 7 routes a comm's incoming messages to the shell it last *sent* from: for
    a view created inside the running %%rlm cell that is the busy main shell, so a click would wait for the cell to
    end. Routing by the front-end's own choice fixes that; with older kernels (no subshells) this does nothing and
    jupyter-ui-poll pumps the messages instead."""
    comm = getattr(widget, "comm", None)
    if comm is not None and hasattr(comm, "_reply_subshell_for"):
        comm._reply_subshell_for = lambda data, default: default


# ---- the trace view ---------------------------------------------------------------------------------------------

class TraceView(anywidget.AnyWidget):
    """A run's trace, live or finished: header and totals, steps (code, output, queries and snippets), the
    sub-call tree and a timeline. `push(event)` appends (or amends: same id) one event, from any thread."""

    _esm = traitlets.Unicode().tag(sync=True)
    _kind = traitlets.Unicode("trace").tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)
    status = traitlets.Unicode("").tag(sync=True)
    budget = traitlets.Dict(allow_none=True, default_value=None).tag(sync=True)
    controls = traitlets.Bool(False).tag(sync=True)

    interval = 0.05   # seconds between batches sent to the front-end (at most 20 messages a second)

    def __init__(self, trace=None, *, title: str = "", budget=None, context=None, **kw):
        if budget is not None and hasattr(budget, "to_dict"):
            budget = budget.to_dict()
        super().__init__(_esm=_esm(), title=title or "", budget=budget or None, **kw)
        self._lock = threading.Lock()          # guards _events / _pending
        # One comm message at a time, in order: taking a batch and sending it happen under this lock, so a batch
        # taken earlier never arrives after one taken later (an amended event would go back to its old version).
        self._send_lock = threading.RLock()
        self._wake = threading.Condition(self._lock)
        self._events: dict[str, dict] = {}     # id -> latest (cut) version, in first-seen order
        self._pending: dict[str, dict] = {}
        self._flusher: threading.Thread | None = None
        self._closed = False
        self._actions: list[Callable[[dict], None]] = []
        self._messages = _Messages(context) if context is not None else None
        self.sent_batches = 0
        self.sent_events = 0
        self.on_msg(self._on_msg)
        _follow_frontend_subshell(self)
        events = _events_of(trace)
        for e in events:
            self._events[e["id"]] = self._prepare(e)
        if events and not self.status:
            ends = [e for e in events if e.get("type") == "run_end" and e.get("parent") is None]
            self.status = _status(ends[-1].get("status")) if ends else ""
        if not self.title:
            runs = [e for e in events if e.get("type") == "run" and e.get("parent") is None]
            self.title = str(runs[-1].get("question") or "") if runs else ""

    @classmethod
    def from_run(cls, run, **kw) -> TraceView:
        """A finished Run (or a Trace, or a .rlmtrace.jsonl path) as it looked live."""
        if "context" not in kw and getattr(run, "context", None) is not None:
            kw["context"] = run.context
        view = cls(run, **kw)
        if getattr(run, "status", None):
            view.status = _status(run.status)
        return view

    # -- live ---------------------------------------------------------------------------------------------------
    def push(self, event: dict) -> None:
        """Append one trace event (an event with a known id replaces the earlier version). Thread-safe; returns
        at once: the front-end gets the events in batches."""
        if not isinstance(event, dict) or "id" not in event:
            return
        with self._lock:
            prepared = self._prepare(event)
            self._events[event["id"]] = prepared
            self._pending[event["id"]] = prepared
            if self._flusher is None or not self._flusher.is_alive():
                self._flusher = threading.Thread(target=self._flush_loop, name="rlm-trace-view", daemon=True)
                self._flusher.start()
            self._wake.notify()

    def set_status(self, status: str) -> None:
        """"running" | "paused" | "done" | "interrupted" | "error" | "budget" (engine statuses are mapped)."""
        status = _status(status)
        if status not in STATUSES:
            raise ValueError(f"TraceView.set_status: {status!r} is not one of {', '.join(STATUSES)}")
        self.flush()  # the events before a status change arrive before it
        self.status = status

    def set_context(self, context) -> None:
        """The Context the run queries: query events then carry snippets, and a snippet opens its message."""
        self._messages = _Messages(context) if context is not None else None

    def on_action(self, fn: Callable[[dict], None]) -> None:
        """Call `fn(action)` for the view's buttons: {"action": "pause" | "step" | "continue" | "stop"} and
        {"action": "rerun", "step": k, "code": "..."}. Shows the pause/step/stop controls."""
        self._actions.append(fn)
        self.controls = True

    def flush(self) -> None:
        """Send the pending events now (from any thread)."""
        with self._send_lock:
            with self._lock:
                batch = list(self._pending.values())
                self._pending.clear()
            self._send_events(self._with_snippets(batch))

    def close(self) -> None:
        self._closed = True
        with self._lock:
            self._wake.notify_all()
        super().close()

    def _flush_loop(self) -> None:
        idle_since = time.monotonic()
        while not self._closed:
            with self._lock:
                if not self._pending:
                    self._wake.wait(timeout=1.0)
                if not self._pending:
                    if time.monotonic() - idle_since > 5:
                        self._flusher = None   # idle: the next push starts a new flusher
                        return
                    continue
            # Let the burst that woke us accumulate first (a step and its amendment, a batch of sub-calls): one
            # message per interval at most, and an event amended within it is sent once, as its last version.
            time.sleep(self.interval)
            with self._send_lock:
                with self._lock:
                    batch = list(self._pending.values())
                    self._pending.clear()
                self._send_events(self._with_snippets(batch))
            idle_since = time.monotonic()

    def _send_events(self, batch: list[dict], reset: bool = False) -> None:
        if not batch and not reset:
            return
        with self._send_lock:
            if self._closed or self.comm is None:
                return
            try:
                self.send({"kind": "events", "events": batch, "reset": reset})
            except Exception:   # a closed comm / gone front-end must not break the run
                return
            self.sent_batches += 1
            self.sent_events += len(batch)

    def _prepare(self, event: dict) -> dict:
        return cut_event(event)

    def _with_snippets(self, batch: list[dict]) -> list[dict]:
        """The batch with snippets added to its query events. Done here, on the flusher's thread and outside the
        lock, not in push(): looking messages up and placing the snippet on a match costs milliseconds a query,
        and push() runs on the run's thread."""
        messages = self._messages
        if messages is None:
            return batch
        out = batch
        for n, e in enumerate(batch):
            if e.get("type") != "query" or not e.get("result_ids") or "snippets" in e:
                continue
            try:
                done = {**e, "snippets": messages.snippets(e)}
            except Exception:   # a context without a table: the view shows ids only
                continue
            if out is batch:
                out = list(batch)
            out[n] = done
            with self._lock:
                if self._events.get(e["id"]) is e:   # not amended meanwhile
                    self._events[e["id"]] = done
        return out

    # -- the front-end's messages ----------------------------------------------------------------------------------
    def _on_msg(self, _widget, content, _buffers) -> None:
        if not isinstance(content, dict):
            return
        action = content.get("action")
        if action == "sync":
            with self._send_lock:
                self._send_events(self.events(), reset=True)
            return
        if action == "message":
            self._send_message(str(content.get("id", "")))
            return
        for fn in list(self._actions):
            try:
                fn(dict(content))
            except Exception:
                traceback.print_exc()  # shows under the cell; the view stays usable

    def _send_message(self, msg_id: str) -> None:
        if self._messages is None:
            reply = {"id": msg_id, "found": False,
                     "error": "the context this run used is not known to this view (re-open it with "
                              "TraceView.from_run(run) after %rlm_load, or view.set_context(context))"}
        else:
            m = self._messages.get(msg_id)
            reply = {"id": msg_id, "found": False, "error": f"message {msg_id} is not in the loaded context"} \
                if m is None else {**m, "found": True}
            if m is not None and len(m["text"]) > 200_000:
                reply["text"] = m["text"][:200_000] + f"\n… (cut: {len(m['text']):,} characters in all)"
        with self._send_lock, contextlib.suppress(Exception):
            self.send({"kind": "message", **reply})

    # -- persistence ------------------------------------------------------------------------------------------------
    def events(self) -> list[dict]:
        """The events as the view holds them (long texts cut for the live view, query events with snippets)."""
        with self._lock:
            events = list(self._events.values())
        return self._with_snippets(events)

    def bundle(self, limit: int = BUNDLE_TEXT_LIMIT) -> dict:
        """The static `application/vnd.rlm-jupyter.trace+json` payload: a header (format, version, title, status,
        budget, the text limit) and the events, long texts cut to `limit` with `_cut` sizes."""
        events = [cut_event(e, limit) for e in self.events()]
        header = {"type": "header", "format": "rlm-jupyter-trace", "version": 1, "title": self.title,
                  "status": self.status, "budget": self.budget, "text_limit": limit,
                  "cut_events": sum(1 for e in events if e.get("_cut"))}
        return {"header": header, "events": events}

    def _repr_mimebundle_(self, **kwargs):
        data, meta = _split(super()._repr_mimebundle_(**kwargs))
        payload = self.bundle()
        data[MIME] = payload
        data["text/html"] = static_html(payload)
        data["text/plain"] = plain_text(payload)
        return data, meta


def _split(bundle) -> tuple[dict, dict]:
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
    usage = Trace(events=[e for e in events if isinstance(e, dict) and isinstance(e.get("id"), str)]).usage(rid) \
        if isinstance(rid, str) else {"tokens_in": 0, "tokens_out": 0, "cost_usd": 0.0}
    tokens_in, tokens_out, cost = usage["tokens_in"], usage["tokens_out"], usage["cost_usd"]
    wall = (end["t"] - root["t"]) if end and root.get("t") else None   # as Trace.wall_s (trace/model.py)
    return {"root": root, "steps": steps, "subs": subs, "final": final, "tokens_in": tokens_in,
            "tokens_out": tokens_out, "cost": cost, "wall": wall,
            "status": (payload.get("header") or {}).get("status") or (end or {}).get("status") or ""}


def plain_text(payload: dict) -> str:
    s = _summary(payload)
    title = (payload.get("header") or {}).get("title") or s["root"].get("question") or ""
    wall = f", {s['wall']:.1f} s" if s["wall"] is not None else ""
    line = (f"<TraceView {s['status'] or '-'}: {len(s['steps'])} steps, {len(s['subs'])} sub-calls, "
            f"{s['tokens_in'] + s['tokens_out']:,} tokens, ${s['cost']:.4f}{wall}>")
    answer = (s["final"] or {}).get("answer")
    return "\n".join(x for x in (line, f"question: {title}" if title else "",
                                 f"answer: {answer}" if answer else "") if x)


def static_html(payload: dict, max_steps: int = 200) -> str:
    """Escaped HTML: header, answer and one line per step. Nothing from the trace is emitted unescaped."""
    s = _summary(payload)
    esc = html.escape
    title = (payload.get("header") or {}).get("title") or s["root"].get("question") or ""
    out = ['<div class="rj-static" style="font-family:sans-serif;font-size:13px">',
           f"<div><b>{esc(str(title))}</b> <code>{esc(str(s['status']))}</code></div>",
           f"<div>model {esc(str(s['root'].get('model') or '?'))} · {len(s['steps'])} steps · "
           f"{len(s['subs'])} sub-calls · {s['tokens_in'] + s['tokens_out']:,} tokens · ${s['cost']:.4f}</div>"]
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


# ---- compare ------------------------------------------------------------------------------------------------------

class CompareView(anywidget.AnyWidget):
    """Two runs side by side (data: `rlm_jupyter.compare.compare(a, b).to_dict()`)."""

    _esm = traitlets.Unicode().tag(sync=True)
    _kind = traitlets.Unicode("compare").tag(sync=True)
    comparison = traitlets.Dict().tag(sync=True)

    def __init__(self, comparison: dict, **kw):
        super().__init__(_esm=_esm(), comparison=comparison, **kw)

    def _repr_mimebundle_(self, **kwargs):
        data, meta = _split(super()._repr_mimebundle_(**kwargs))
        c = self.comparison
        d = c.get("diverged_at")
        data["text/plain"] = (f"<CompareView: {'diverge at step ' + str(d['step']) if d else 'same steps'}; "
                              f"answers {'equal' if c.get('same_answer') else 'differ'}>")
        return data, meta


def _cut_comparison(d: dict, limit: int = LIVE_TEXT_LIMIT) -> dict:
    """Cut long code/output/response/answer texts so a compare widget stays small in the notebook."""
    def cut(v):
        if isinstance(v, str) and len(v) > limit:
            return v[:limit] + f"… (cut: {len(v):,} characters)"
        if isinstance(v, list):
            return [cut(x) for x in v]
        if isinstance(v, dict):
            return {k: cut(x) for k, x in v.items()}
        return v

    return cut(d)


def compare_view(run_a, run_b, labels: tuple[str, str] = ("A", "B")) -> CompareView:
    """A side-by-side compare widget: answers, steps (the first divergent step marked), tokens, cost, time and
    which snippets each run retrieved."""
    from ..compare import compare

    data = _cut_comparison(compare(run_a, run_b).to_dict())
    data["labels"] = list(labels)
    return CompareView(json.loads(json.dumps(data, default=str)))
