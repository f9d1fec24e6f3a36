"""The live trace widget (`TraceView`), an anywidget. Its static copy for saved notebooks is static_bundle.py;
the compare widget is compare_view.py (same front-end bundle).

The front-end is one bundle, rlm_jupyter/jupyter/static/trace-view.js, built from labextension/src by
`npm --prefix labextension run bundle` (the JupyterLab extension of issue 6 reuses the same sources).
anywidget is imported here only, so `%load_ext rlm_jupyter` stays light.

Events reach the browser as custom comm messages, batched: `push()` only appends under a lock; a flusher thread
sends what accumulated at most every `interval` seconds, so a run emitting thousands of events never blocks on the
front-end and the browser renders one batch at a time. The flusher also adds the snippets to query events (the
messages a query returned, looked up in the context, centred on a match: rlm_jupyter/context/snippets.py), so
the run's thread never waits for that. A view that appears later (re-display, page reload) asks for everything
with {"action": "sync"}. Long texts are cut (`cut_event`) with their full size noted in `_cut`; the trace file
and `run.trace` keep everything. docs/widget.md has the whole picture.
"""

from __future__ import annotations

import contextlib
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path

import anywidget
import traitlets

from ..context.snippets import Messages as _Messages
from ..trace.events import VIEW_STATUSES, view_status
from .static_bundle import (  # noqa: F401 - re-exported: callers import them from here
    BUNDLE_TEXT_LIMIT,
    LIST_LIMIT,
    LIVE_TEXT_LIMIT,
    MIME,
    cut_event,
    plain_text,
    split_bundle,
    static_html,
)

BUNDLE = Path(__file__).parent / "static" / "trace-view.js"
STATUSES = VIEW_STATUSES  # the one list: trace/events.py
_STATUS_ALIASES = {"max_iterations": view_status("max_iterations"), "stopping": "running"}


if not BUNDLE.exists():
    # ImportError: magics.py reports it as "live view unavailable" and the run goes on without the view
    raise ImportError(
        f"the trace view's front-end is not built ({BUNDLE} is missing): run "
        "`npm --prefix labextension ci && npm --prefix labextension run bundle` in the repository"
    )
_ESM_SOURCE: str | None = None


def _esm() -> str:
    global _ESM_SOURCE
    if _ESM_SOURCE is None:
        _ESM_SOURCE = BUNDLE.read_text(encoding="utf-8")
    return _ESM_SOURCE


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
        raise TypeError(
            f"TraceView: expected a Trace, a Run, a .rlmtrace.jsonl path or a list of events, "
            f"not {type(trace).__name__}"
        )
    return [e for e in events if isinstance(e, dict) and "id" in e]


def _rich(snippets) -> bool:
    return bool(snippets) and isinstance(snippets, list) and isinstance(snippets[0], dict) and "position" in snippets[0]


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
    trace_path = traitlets.Unicode("").tag(sync=True)  # the run's .rlmtrace.jsonl, said in the header
    note = traitlets.Unicode("").tag(sync=True)  # e.g. where a re-run's Run went (`p1_rerun`)

    interval = 0.05  # seconds between batches sent to the front-end (at most 20 messages a second)

    def __init__(self, trace=None, *, title: str = "", budget=None, context=None, **kw):
        if budget is not None and hasattr(budget, "to_dict"):
            budget = budget.to_dict()
        for k in ("trace_path", "note"):
            if k in kw:
                kw[k] = str(kw[k] or "")
        super().__init__(_esm=_esm(), title=title or "", budget=budget or None, **kw)
        self._lock = threading.Lock()  # guards _events / _pending
        # One comm message at a time, in order: taking a batch and sending it happen under this lock, so a batch
        # taken earlier never arrives after one taken later (an amended event would go back to its old version).
        self._send_lock = threading.RLock()
        self._wake = threading.Condition(self._lock)
        self._events: dict[str, dict] = {}  # id -> latest (cut) version, in first-seen order
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
        from ..trace.runs import shown

        if "trace_path" not in kw and getattr(run, "trace_path", None):
            kw["trace_path"] = shown(run.trace_path)
        elif "trace_path" not in kw and isinstance(run, (str, Path)):
            kw["trace_path"] = shown(run)
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
        """ "running" | "paused" | "done" | "interrupted" | "error" | "budget" (engine statuses are mapped)."""
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
                        self._flusher = None  # idle: the next push starts a new flusher
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
            except Exception:  # a closed comm / gone front-end must not break the run
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
            # a query carries the trace's snippets (id, text); the view's add position, role and tool
            if (
                e.get("type") != "query"
                or not e.get("result_ids")
                or _rich(e.get("snippets"))
                or e.get("snippets") == []
            ):
                continue
            try:
                found = messages.snippets(e)
            except Exception:  # a context without a table: the view shows ids only (or the trace's snippets)
                continue
            if not found and e.get("snippets"):
                continue  # not in this context: the trace's own snippets stay
            done = {**e, "snippets": found}
            if out is batch:
                out = list(batch)
            out[n] = done
            with self._lock:
                if self._events.get(e["id"]) is e:  # not amended meanwhile
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
            reply = {
                "id": msg_id,
                "found": False,
                "error": "the context this run used is not known to this view (re-open it with "
                "TraceView.from_run(run) after %rlm_load, or view.set_context(context))",
            }
        else:
            m = self._messages.get(msg_id)
            reply = (
                {"id": msg_id, "found": False, "error": f"message {msg_id} is not in the loaded context"}
                if m is None
                else {**m, "found": True}
            )
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
        header = {
            "type": "header",
            "format": "rlm-jupyter-trace",
            "version": 1,
            "title": self.title,
            "status": self.status,
            "budget": self.budget,
            "trace_path": self.trace_path or None,
            "note": self.note or None,
            "text_limit": limit,
            "cut_events": sum(1 for e in events if e.get("_cut")),
        }
        return {"header": header, "events": events}

    def _repr_mimebundle_(self, **kwargs):
        data, meta = split_bundle(super()._repr_mimebundle_(**kwargs))
        payload = self.bundle()
        data[MIME] = payload
        data["text/html"] = static_html(payload)
        data["text/plain"] = plain_text(payload)
        return data, meta


def __getattr__(name: str):
    # the compare widget lives in compare_view.py; `from rlm_jupyter.jupyter.widget import compare_view` still works
    if name in ("CompareView", "compare_view"):
        from . import compare_view as module

        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
