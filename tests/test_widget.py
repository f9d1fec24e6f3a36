"""The TraceView and compare widgets on the Python side, without a browser: batching and thread-safety of push,
amended events, cutting long texts, the static MIME bundle and its escaped HTML fallback, the front-end's actions
(sync, message, buttons), and the %%rlm magic driving a real TraceView. Rendering is tested in tests/browser/."""

from __future__ import annotations

import html
import threading
import time

import pytest

import rlm_jupyter as rj
from rlm_jupyter.context.snippets import readable

widget = pytest.importorskip(
    "rlm_jupyter.jupyter.widget", reason="anywidget or the built front-end is missing", exc_type=ImportError
)
TraceView = widget.TraceView
CLAUDE = "claude-code/codemie-session-9eda1058.jsonl"


class Wire:
    """Records what a view sends to the front-end (no kernel here: the comm would drop it)."""

    def __init__(self, view):
        self.msgs: list[dict] = []
        self.lock = threading.Lock()
        view.send = self.send

    def send(self, content, buffers=None):
        with self.lock:
            self.msgs.append(content)

    def events(self) -> list[dict]:
        return [e for m in self.msgs if m.get("kind") == "events" for e in m["events"]]


def ev(i: int, **kw) -> dict:
    return {"id": f"e{i}", "parent": None, "type": "step", "t": 1000.0 + i, **kw}


@pytest.fixture(scope="module")
def run(ctx):
    r = rj.rlm("Which write was rejected?", ctx)
    r.context = ctx
    return r


def test_push_from_many_threads_is_batched_and_loses_nothing():
    view = TraceView(title="q")
    wire = Wire(view)
    view.interval = 0.05

    def producer(k: int):
        for i in range(500):
            view.push(ev(k * 1000 + i, index=i))

    threads = [threading.Thread(target=producer, args=(k,)) for k in range(4)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    pushed = time.perf_counter() - t0
    view.flush()
    got = wire.events()
    assert sorted(e["id"] for e in got) == sorted(f"e{k * 1000 + i}" for k in range(4) for i in range(500))
    # each thread's events arrive in the order pushed
    for k in range(4):
        mine = [e["index"] for e in got if int(e["id"][1:]) // 1000 == k]
        assert mine == list(range(500))
    # push never waits for the front-end: 2,000 events in well under a second, sent as a handful of batches
    assert pushed < 1.0
    assert len([m for m in wire.msgs if m["kind"] == "events"]) <= 2 + pushed / view.interval
    view.close()


def test_an_amended_event_replaces_the_earlier_version_in_place():
    view = TraceView()
    wire = Wire(view)
    view.push(ev(1, status="pending"))
    view.push(ev(2))
    view.push(ev(1, status="ok", response="done"))
    view.flush()
    assert [e["id"] for e in view.events()] == ["e1", "e2"]
    assert view.events()[0]["status"] == "ok"
    # within one batch the front-end gets the last version only
    assert sum(e["id"] == "e1" for e in wire.events()) == 1
    view.close()


def test_long_texts_are_cut_with_their_full_size_noted():
    e = {
        "id": "o",
        "parent": "c",
        "type": "output",
        "t": 1.0,
        "stdout": "x" * 50_000,
        "stderr": "short",
        "result_ids": [f"m{i}" for i in range(2000)],
    }
    cut = widget.cut_event(e, limit=1000, list_limit=100)
    assert len(cut["stdout"]) == 1001 and cut["_cut"] == {"stdout": 50_000, "result_ids": 2000}
    assert cut["stderr"] == "short" and len(cut["result_ids"]) == 100
    assert e["stdout"] == "x" * 50_000  # the original is untouched
    assert widget.cut_event({"id": "a", "text": "short"}) == {"id": "a", "text": "short"}


def test_the_mime_bundle_keeps_the_trace_small_and_the_html_fallback_escaped(run):
    evil = "<script>alert(1)</script><img src=x onerror=alert(2)>"
    events = [dict(e) for e in run.trace.events]
    events[0]["question"] = evil
    code = next(e for e in events if e["type"] == "code")
    code["code"] = evil + "\n" + "y = 1\n" * 5000
    view = TraceView(events, title=evil)
    data, meta = view._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in data
    payload = data[widget.MIME]
    assert payload["header"]["format"] == "rlm-jupyter-trace" and payload["header"]["version"] == 1
    assert [e["id"] for e in payload["events"]] == [e["id"] for e in run.trace.events]
    big = next(e for e in payload["events"] if e["id"] == code["id"])
    assert big["_cut"]["code"] == len(code["code"]) and len(big["code"]) <= widget.BUNDLE_TEXT_LIMIT + 1
    page = data["text/html"]
    assert "<script" not in page and "<img" not in page and html.escape(evil) in page
    steps = len(run.trace.steps())
    assert f"{steps} steps" in data["text/plain"] and "done" in data["text/plain"]
    view.close()


def test_sync_sends_everything_and_actions_reach_the_handlers(run):
    view = TraceView.from_run(run)
    wire = Wire(view)
    assert view.status == "done" and view.title == "Which write was rejected?" and not view.controls
    view._on_msg(view, {"action": "sync"}, [])
    reset = wire.msgs[-1]
    assert reset["kind"] == "events" and reset["reset"] is True
    assert [e["id"] for e in reset["events"]] == [e["id"] for e in run.trace.events]

    got, boom = [], []
    view.on_action(got.append)
    view.on_action(lambda a: boom.append(1 / 0))  # a failing handler must not stop the others or raise
    assert view.controls
    view._on_msg(view, {"action": "pause"}, [])
    view._on_msg(view, {"action": "rerun", "step": 1, "code": "print(1)"}, [])
    assert got == [{"action": "pause"}, {"action": "rerun", "step": 1, "code": "print(1)"}]
    view.close()


def test_query_events_carry_snippets_and_a_snippet_opens_its_full_message(run, ctx):
    view = TraceView.from_run(run)
    wire = Wire(view)
    regex = next(e for e in view.events() if e["type"] == "query" and e["op"] == "regex_search")
    assert regex["snippets"] and regex["snippets"][0]["id"] == regex["result_ids"][0]
    first = regex["snippets"][0]
    assert first["text"] and first["role"]
    # the snippet window is placed on a match of the query's pattern
    assert any(w in first["text"].lower() for w in ("writ", "reject"))
    # the query events of the run itself keep the trace's snippets (id, text, session_id: the file's contract), not
    # the view's richer ones, and the widget's look-ups added no query events
    stored = [s for e in run.trace.of_type("query") for s in e.get("snippets", [])]
    assert stored and all(set(s) == {"id", "text", "session_id"} for s in stored)
    n_queries = len(run.trace.of_type("query"))

    view._on_msg(view, {"action": "message", "id": first["id"]}, [])
    reply = wire.msgs[-1]
    full = ctx.get_by_id(first["id"])
    assert reply["kind"] == "message" and reply["found"] and reply["id"] == first["id"]
    assert (full.text or "")[:200] in reply["text"]
    view._on_msg(view, {"action": "message", "id": "no-such-id"}, [])
    assert wire.msgs[-1]["found"] is False and "not in the loaded context" in wire.msgs[-1]["error"]
    assert len(run.trace.of_type("query")) == n_queries
    view.close()


def test_snippets_are_looked_up_by_the_flusher_not_on_the_pushing_thread(run, ctx):
    view = TraceView(title="q", context=ctx)
    wire = Wire(view)
    view.interval = 0.01
    looked_up_on: list[str] = []
    real = view._messages.snippets

    def spy(query):
        looked_up_on.append(threading.current_thread().name)
        return real(query)

    view._messages.snippets = spy
    query = next(e for e in run.trace.events if e["type"] == "query" and e.get("result_ids"))
    view.push(query)
    assert looked_up_on == []  # push() returned without looking anything up
    deadline = time.monotonic() + 10
    while not wire.events() and time.monotonic() < deadline:
        time.sleep(0.01)
    sent = wire.events()
    assert [e["id"] for e in sent] == [query["id"]] and sent[0]["snippets"]
    assert looked_up_on == ["rlm-trace-view"]
    # the view keeps the version with snippets: a later sync or the MIME bundle do not look them up again
    assert view.events()[0]["snippets"] == sent[0]["snippets"] and len(looked_up_on) == 1
    assert "position" not in query["snippets"][0]  # the run's own event keeps the trace's snippets, untouched
    view.close()


def test_a_tools_json_input_reads_as_key_value_lines(ctx):
    assert (
        readable(r'{"file_path": "/a.md", "content": "# T\n\nbody", "n": 3}')
        == "file_path: /a.md\ncontent:\n# T\n\nbody\nn: 3"
    )
    assert readable("not json {") == "not json {"
    assert readable("[1, 2]") == "[1, 2]"
    # a real Write tool message: the file's content shows as the file, not as an escaped JSON string
    msg = next(
        m
        for m in (widget._Messages(ctx).get(i) for i in ctx.df["id"].to_list() if i)
        if m and m["tool_name"] == "Write"
    )
    assert "\ncontent:\n" in msg["text"] and "\\n" not in msg["text"].split("content:", 1)[1][:200]


def test_status_is_checked_and_engine_statuses_are_mapped():
    view = TraceView()
    view.set_status("max_iterations")
    assert view.status == "done"
    with pytest.raises(ValueError, match="not one of"):
        view.set_status("sleeping")
    view.close()


def test_compare_view_carries_the_comparison(run):
    code = next(e for e in run.trace.events if e["type"] == "code")["code"]
    from rlm_jupyter.engine.rerun import rerun

    other = rerun(run, step=1, code=code + "\nprint('edited')")
    cv = widget.compare_view(run, other, labels=("original", "edited"))
    c = cv.comparison
    assert c["labels"] == ["original", "edited"]
    assert c["diverged_at"] == {"step": 1, "reason": "code"}
    assert c["a"]["steps"] == len(run.trace.steps()) and c["b"]["run_id"] == other.trace.root["id"]
    data, _ = cv._repr_mimebundle_()
    assert "diverge at step 1" in data["text/plain"]
    cv.close()


def test_rlm_magic_drives_a_real_trace_view_and_its_rerun_button(samples, monkeypatch):
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    from rlm_jupyter.jupyter.magics import RlmMagics

    views = []

    def factory(*, question, budget, controller):
        v = TraceView(title=question, budget=budget)
        v.wire = Wire(v)
        views.append(v)
        return v

    monkeypatch.setattr(RlmMagics, "view_factory", staticmethod(factory))
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "rlm_jupyter")
    with capture_output():
        ip.run_line_magic("rlm_load", str(samples / CLAUDE))
        res = ip.run_cell("%%rlm --budget-usd 1 --out first\nWhich write was rejected?")
    assert res.success
    view = views[-1]
    run = ip.user_ns["first"]
    view.flush()
    assert view.status == "done" and view.controls and view.budget == {"usd": 1.0}
    assert [e["id"] for e in view.events()] == [e["id"] for e in run.trace.events]
    assert any(e.get("snippets") for e in view.events() if e["type"] == "query")  # the magic set the context

    # the view's "edit & re-run" button: a new run pushed to the same view, stored in first_rerun
    code = run.trace.children(run.trace.steps()[0]["id"], "code")[0]["code"]
    view._on_msg(view, {"action": "rerun", "step": 0, "code": code + "\nprint('EDITED')"}, [])
    deadline = time.monotonic() + 60
    while "first_rerun" not in ip.user_ns and time.monotonic() < deadline:
        time.sleep(0.1)
    new = ip.user_ns["first_rerun"]
    view.flush()
    roots = [e for e in view.events() if e["type"] == "run" and e["parent"] is None]
    assert [r["id"] for r in roots] == [run.trace.root["id"], new.trace.root["id"]]
    assert roots[-1]["rerun_of"]["step"] == 0 and view.status == "done"
    outputs = [e for e in view.events() if e["type"] == "output" and "EDITED" in (e.get("stdout") or "")]
    assert outputs
    view.close()


class Handle:
    """A display handle as a kernel gives it: records what each update would send to the notebook."""

    def __init__(self, obj=None):
        self.shown = [obj] if obj is not None else []

    def update(self, obj):
        self.shown.append(obj)

    def bundle(self) -> dict:
        obj = self.shown[-1]
        if hasattr(obj, "_repr_mimebundle_"):
            return widget.split_bundle(obj._repr_mimebundle_())[0]
        return {"text/plain": str(obj)}


def _kernel_like_magic(monkeypatch, views, displayed):
    """%%rlm as in a kernel: the view has a display handle (its saved output), the answer is displayed too."""
    from IPython.core.interactiveshell import InteractiveShell

    from rlm_jupyter.jupyter import magics as magics_module
    from rlm_jupyter.jupyter.magics import RlmMagics

    def factory(*, question, budget, controller):
        v = TraceView(title=question, budget=budget)
        v.wire = Wire(v)
        v._rlm_display = Handle(v)
        views.append(v)
        return v

    def display(obj, display_id=None):
        h = Handle(obj)
        displayed.append(h)
        return h

    monkeypatch.setattr(RlmMagics, "view_factory", staticmethod(factory))
    monkeypatch.setattr(magics_module, "display", display)
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "rlm_jupyter")
    return ip


def test_a_rerun_from_the_view_is_saved_in_the_cell_linked_named_and_answered(samples, monkeypatch, tmp_path):
    from IPython.utils.capture import capture_output

    from rlm_jupyter.trace import Trace

    runs = tmp_path / "runs"
    monkeypatch.setenv("RLM_JUPYTER_RUNS", str(runs))
    views, displayed = [], []
    ip = _kernel_like_magic(monkeypatch, views, displayed)
    with capture_output():
        ip.run_line_magic("rlm_load", str(samples / CLAUDE))
        res = ip.run_cell("%%rlm --out p1\nWhich write was rejected?")
    assert res.success and res.result is None  # the answer is a display of its own, which a re-run can update
    view, first = views[-1], ip.user_ns["p1"]
    answer = next(h for h in displayed if isinstance(h.shown[0], str))
    assert answer.shown == [first.answer]
    # the run wrote its trace to the runs folder by default, and the view's header names it
    assert first.trace_path.parent == runs and first.trace_path.exists()
    assert view.trace_path == str(first.trace_path)
    assert view._rlm_display.bundle()[widget.MIME]["header"]["trace_path"] == str(first.trace_path)

    code = first.trace.children(first.trace.steps()[0]["id"], "code")[0]["code"]
    view._on_msg(view, {"action": "rerun", "step": 0, "code": code + "\nprint('EDITED')"}, [])
    deadline = time.monotonic() + 90
    while len(answer.shown) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    new = ip.user_ns["p1_rerun"]
    # the cell's answer now shows the re-run's, and says where its Run went
    assert answer.shown[-1].startswith(new.answer) and "p1_rerun" in answer.shown[-1]
    assert "re-run from step 1 of p1" in view.note and "p1_rerun" in view.note
    # the cell's saved output was re-sent: both runs, the new one linked to the first (run id, step, trace file)
    saved = view._rlm_display.bundle()
    events = saved[widget.MIME]["events"]
    roots = [e for e in events if e["type"] == "run" and e["parent"] is None]
    assert [r["id"] for r in roots] == [first.trace.root["id"], new.trace.root["id"]]
    link = roots[-1]["rerun_of"]
    assert link["run"] == first.trace.root["id"] and link["step"] == 0 and link["edited"] == "code"
    assert link["trace_path"] == str(first.trace_path)
    assert "p1_rerun" in saved["text/plain"] and "re-run from step 1" in saved["text/plain"]
    assert "p1_rerun" in saved["text/html"]
    # the re-run wrote its own trace file beside the first, which says the same
    assert new.trace_path.parent == runs and new.trace_path != first.trace_path
    assert Trace.load(new.trace_path).root["rerun_of"]["run"] == first.trace.root["id"]
    assert view.trace_path == str(new.trace_path)
    # a second re-run gets a name of its own
    view._on_msg(view, {"action": "rerun", "step": 1}, [])
    deadline = time.monotonic() + 90
    while len(answer.shown) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "p1_rerun2" in ip.user_ns and "p1_rerun2" in answer.shown[-1]
    view.close()


def test_rlm_magic_no_trace_and_runs_folder_options(samples, monkeypatch, tmp_path):
    from IPython.core.error import UsageError
    from IPython.utils.capture import capture_output

    monkeypatch.setenv("RLM_JUPYTER_RUNS", str(tmp_path / "default-runs"))
    views, displayed = [], []
    ip = _kernel_like_magic(monkeypatch, views, displayed)
    with capture_output():
        ip.run_line_magic("rlm_load", str(samples / CLAUDE))
        assert ip.run_cell("%%rlm --no-trace --out q1\nWhich write was rejected?").success
    assert ip.user_ns["q1"].trace_path is None and views[-1].trace_path == ""
    assert not (tmp_path / "default-runs").exists()
    with capture_output():
        assert ip.run_cell(f"%%rlm --runs {tmp_path / 'mine'} --out q2\nWhich write was rejected?").success
    q2 = ip.user_ns["q2"]
    assert q2.trace_path.parent == tmp_path / "mine" and q2.trace_path.name.endswith(".rlmtrace.jsonl")
    with pytest.raises(UsageError, match="--no-trace writes no file"):
        ip.run_cell_magic("rlm", f"--no-trace --runs {tmp_path}", "q")
