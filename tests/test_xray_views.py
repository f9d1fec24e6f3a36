"""The X-ray's views: the three-way ask (real offline runs through the engine), the Altair chart (spec, static
SVG, the JupyterChart widget and its click selection), and the %rlm_xray magic on a real IPython shell."""

from __future__ import annotations

import base64
from pathlib import Path

import polars as pl
import pytest

import rlm_jupyter as rj
from rlm_jupyter.xray import xray

OC_CURRENT = Path(__file__).parent / "data" / "recorded" / "opencode" / "current"


@pytest.fixture(scope="module")
def xr(tmp_path_factory):
    ctx = rj.Context.load(OC_CURRENT / "opencode.db")
    ctx._cache = tmp_path_factory.mktemp("xray-cache")  # nothing written to the user's cache
    return xray(ctx, limit=32000)


def test_ask_three_ways_the_full_history_reaches_what_compaction_dropped(xr):
    ans = xr.ask("Which command failed with an AssertionError?")
    a, b, c = ans.window, ans.sliding, ans.rlm
    window_ids = set(xr.window(None).messages["id"].to_list())
    removed = set(xr.losses(sub_model=None).removed["id"].to_list())
    assert a.context_messages == len(window_ids) and a.status == "done"
    assert a.evidence and set(a.evidence) <= window_ids and all(a.in_window)  # (a) can only cite its window
    # (b) gets the limit as budget: this short session fits whole, compacted messages included
    assert b.context_tokens <= 32000 and b.context_messages == xr.rows.filter(~pl.col("marker")).height
    # (c) RLM over the full history cites the failed test run itself, which the compaction took out of the window
    failed_run = xr.rows.filter((pl.col("tool_status") == "error") & (pl.col("tool_name") == "bash"))["id"][0]
    assert failed_run in c.evidence and failed_run in removed and failed_run not in window_ids
    assert not c.in_window[c.evidence.index(failed_run)]
    assert c.tokens_in > a.tokens_in > 0 and c.run.trace.of_type("sub_call")  # a real run: sub-calls in its trace
    for x in ans:
        assert x.cost_usd == 0.0 and x.seconds >= 0 and x.tokens_in >= 0
    frame = ans.frame
    assert frame["name"].to_list() == ["window", "sliding", "rlm"]
    html = ans._repr_html_()
    assert html.count("<td style") == 3 and "not in the window" in html
    assert "(c) RLM over the full history" in repr(ans)


def test_sliding_window_keeps_preserved_messages_and_the_most_recent(xr):
    first = xr.rows["id"][0]
    xr.ctx.preserve(first)
    try:
        xr2 = xray(xr.ctx, xr.session_id, limit=32000)
        from rlm_jupyter.xray.ask import _sliding

        rows = _sliding(xr2, 120)
        ids = rows["id"].to_list()
        assert ids[0] == first  # the inception message, however old
        assert rows["tokens"].sum() <= 120 + xr2.rows.filter(pl.col("id") == first)["tokens"][0]
        assert ids[-1] == xr2.rows.filter(~pl.col("marker"))["id"][-1]  # and the most recent ones
    finally:
        xr.ctx.metadata.reset()


def test_plot_spec_marks_every_event_with_its_losses_and_the_limit(xr):
    p = xr.plot(interactive=False)
    spec = p.to_dict()
    text = str(spec)
    assert "event_pick" in text and "turn_hover" in text  # click on events, hover on turns
    assert "window limit 32,000" in text and "removed_tokens" in text and "window_messages" in text
    # the data the chart draws is the X-ray's own numbers
    values = [d for ds in spec.get("datasets", {}).values() for d in ds] or [
        v for layer in spec["layer"] for v in (layer.get("data", {}).get("values") or [])]
    events = [v for v in values if "removed_messages" in v]
    assert [e["event"] for e in events] == xr.events["event"].to_list()
    assert events[0]["removed_messages"] == xr.events["removed_messages"][0]
    assert {v["turn"] for v in values if v.get("measure") == "recorded by the agent"} == set(
        xr.turns.filter(pl.col("context_tokens").is_not_null())["turn"].to_list())


def test_plot_renders_statically_without_a_kernel(xr):
    p = xr.plot()  # no kernel here: static
    assert p.widget is None
    bundle = p._repr_mimebundle_()
    assert "application/vnd.vegalite.v6+json" in bundle
    pytest.importorskip("vl_convert", reason="vl-convert-python renders the SVG without a browser (lab extra)")
    svg = bundle["image/svg+xml"]
    assert svg.startswith("<svg") and "Context X-ray" in svg and "compaction" in svg
    assert base64.b64decode(bundle["image/png"]).startswith(b"\x89PNG")   # shown even in an untrusted notebook


def test_plot_notes_what_the_format_does_not_record(samples):
    x = xray(rj.load(samples / "claude-code" / "SYNTHETIC-agent-sessions-record-catalog.jsonl"))
    spec = str(x.plot(interactive=False).to_dict())
    assert "limit is not recorded by claude" in spec


def test_interactive_plot_click_on_an_event_shows_its_losses(xr):
    p = xr.plot(interactive=True)
    import altair as alt

    assert isinstance(p.widget, alt.JupyterChart)
    assert "application/vnd.jupyter.widget-view+json" in p._repr_mimebundle_()
    shown = []

    class Handle:  # stands in for IPython's DisplayHandle: records what the click would show
        def update(self, obj):
            shown.append(obj)

    p._handle = Handle()
    # what the JupyterChart front-end sends on a click on event #1 (Vega signal + store)
    p.widget._vl_selections = {**p.widget._vl_selections,
                               "event_pick": {"value": {"vlPoint": {"or": [{"event": 1}]}}, "store": []}}
    assert p.selected_event == 1
    assert shown and shown[-1].summary["removed_messages"][0] == xr.events["removed_messages"][0]
    p.widget._vl_selections = {**p.widget._vl_selections, "event_pick": {"value": None, "store": []}}
    assert p.selected_event is None and "Click an event" in shown[-1]._repr_html_()


def test_rlm_xray_magic(xr):
    from IPython.core.error import UsageError
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "rlm_jupyter.jupyter")
    shell.user_ns["hist"] = xr.ctx
    got = shell.run_line_magic("rlm_xray", f"--context hist --session {xr.session_id[:12]} --limit 32000 --no-plot")
    assert got.session_id == xr.session_id and shell.user_ns["_rlm_xray"] is got and got.limit == 32000
    with pytest.raises(UsageError, match="%rlm_load"):
        shell.run_line_magic("rlm_xray", "--context nothing_here")
    with pytest.raises(UsageError, match="no session"):
        shell.run_line_magic("rlm_xray", "--context hist --session zzz")
    with pytest.raises(UsageError, match="usage"):
        shell.run_line_magic("rlm_xray", "--bogus")


def test_rlm_xray_in_a_real_kernel_shows_the_widget_with_a_static_fallback(tmp_path):
    """A real ipykernel (nbclient): %rlm_xray displays the JupyterChart widget, and the same output carries the
    Vega-Lite spec (and the SVG) that a frontend without the kernel renders."""
    nbformat = pytest.importorskip("nbformat")
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in (
        "%load_ext rlm_jupyter",
        f"import rlm_jupyter as rj\ncontext = rj.load({str(OC_CURRENT / 'opencode.db')!r})",
        "%rlm_xray --limit 32000",
        "print(_rlm_xray.events['removed_messages'].to_list())",
    )]
    env = {"metadata": {"path": str(tmp_path)}}
    NotebookClient(nb, timeout=300, kernel_name="python3", resources=env).execute()
    outs = nb.cells[2].outputs
    data = [o["data"] for o in outs if o.get("output_type") == "display_data"]
    chart = next(d for d in data if "application/vnd.vegalite.v6+json" in d)
    assert "application/vnd.jupyter.widget-view+json" in chart  # interactive in the kernel
    assert "image/svg+xml" in chart and "Context X-ray" in chart["image/svg+xml"]
    assert chart["text/plain"].startswith("<XRayPlot")   # the static text, not the widget's repr
    assert any("Click an event" in d.get("text/html", "") for d in data)  # where a click shows the losses
    assert nb.cells[3].outputs[0]["text"].strip() == "[29]"


def test_rlm_xray_without_session_says_which_it_picked_why_and_lists_the_others(tmp_path):
    """A real ipykernel: %rlm_xray with no --session used to pick the session with the most compactions silently."""
    nbformat = pytest.importorskip("nbformat")
    from nbclient import NotebookClient

    claude = Path(__file__).parent / "data" / "samples" / "claude-code" / "codemie-session-9eda1058.jsonl"
    paths = [str(OC_CURRENT / "opencode.db"), str(claude)]
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in (
        "%load_ext rlm_jupyter",
        f"import rlm_jupyter as rj\nhist = rj.load({paths!r}, cache=False)",
        "%rlm_xray --context hist --no-plot",
        "%rlm_xray --context hist --session 9eda --no-plot",
    )]
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    said = "".join(o.get("text", "") for o in nb.cells[2].outputs if o.get("output_type") == "stream")
    ctx = rj.load(paths, cache=False)
    ids = ctx.sessions.sort(["compactions", "messages"], descending=True)["session_id"].to_list()
    picked = xray(ctx)
    assert picked.session_id == ids[0] and picked.events.height == 1   # the OpenCode session and its compaction
    lines = said.strip().splitlines()
    assert lines[0] == (f"X-ray of session {ids[0]} (opencode, {picked.turns.height} turns, 1 compaction): picked "
                        f"because it has the most compactions (1) of the {len(ids)} sessions in `hist`. The others:")
    for sid, line in zip(ids[1:], lines[1:-1], strict=True):
        other = xray(ctx, sid)
        assert line == f"  {sid}  ({other.format}, {other.turns.height} turns, 0 compactions)"
    assert lines[-1] == "Pick one with %rlm_xray --session ID (a unique prefix of the id is enough)."
    # with --session there is nothing to explain
    assert not [o for o in nb.cells[3].outputs if o.get("output_type") == "stream"]


def test_losses_of_a_session_with_no_compaction_say_nothing_was_removed_and_why(xr):
    claude = Path(__file__).parent / "data" / "samples" / "claude-code" / "codemie-session-9eda1058.jsonl"
    plain = xray(rj.load(claude, cache=False))
    assert plain.events.height == 0
    lo = plain.losses(sub_model=None)
    said = ("Nothing was removed: no compaction, prune or rewind was found in this claude session, so every "
            f"message stayed in the model's window ({plain.turns.height} turns).")
    assert lo.nothing_removed == said and repr(lo).splitlines()[1] == "  " + said
    assert "Nothing was removed" in lo._repr_html_()
    # a session whose compaction took messages out says nothing of the kind
    assert xr.losses(sub_model=None).nothing_removed is None and "Nothing was removed" not in repr(xr.losses())
