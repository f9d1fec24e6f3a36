"""The X-ray's views: the three-way ask (real offline runs through the engine), the Altair chart (spec, static
SVG, the JupyterChart widget and its click selection), and the %rlm_xray magic on a real IPython shell."""

from __future__ import annotations

import base64
from pathlib import Path

import polars as pl
import pytest

import rlm_jupyter as rj
from rlm_jupyter.testing.samples import sample_tree
from rlm_jupyter.window import xray

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
        from rlm_jupyter.window.ask import _sliding

        rows = _sliding(xr2, 120)
        ids = rows["id"].to_list()
        assert ids[0] == first  # the inception message, however old
        assert rows["tokens"].sum() <= 120 + xr2.rows.filter(pl.col("id") == first)["tokens"][0]
        assert ids[-1] == xr2.rows.filter(~pl.col("marker"))["id"][-1]  # and the most recent ones
    finally:
        xr.ctx.metadata.reset()


def _layers(spec: dict) -> dict:
    """name -> layer of a (nested) layer spec; unnamed layers under their mark type."""
    out: dict = {}
    for layer in spec.get("layer", []):
        if "layer" in layer:
            out.update(_layers(layer))
        mark = layer.get("mark")
        out.setdefault(layer.get("name") or (mark.get("type") if isinstance(mark, dict) else mark), layer)
    return out


def _rows(layer: dict, spec: dict) -> pl.DataFrame:
    """The data a layer draws, as the chart parses it (inline CSV: only `parse` columns are numbers)."""
    import io

    data = layer.get("data") or spec["layer"][0]["data"]
    fmt = data.get("format", {})
    if fmt.get("type") == "csv":
        return pl.read_csv(io.StringIO(data["values"]), infer_schema=False).with_columns(
            [pl.col(c).cast(pl.Float64) for c in fmt.get("parse", {})]
        )
    return pl.DataFrame(data["values"])


def _tooltip_fields(layer: dict) -> list[str]:
    return [t["field"] for t in layer["encoding"]["tooltip"]]


def test_plot_spec_marks_every_event_with_its_losses_and_the_limit(xr):
    p = xr.plot(interactive=False)
    spec = p.to_dict()
    text = str(spec)
    assert "event_pick" in text and "turn_hover" in text  # click on events, hover on turns
    assert "window limit 32,000" in text
    layers = _layers(spec)
    events = _rows(layers["xray_events"], spec)
    assert events["event"].cast(pl.Int64).to_list() == xr.events["event"].to_list()
    assert events["t_removed"][0].startswith(f"{xr.events['removed_messages'][0]} messages")
    # one hover target per turn, with the X-ray's own numbers: every turn drawn exactly in a short session
    turns = _rows(layers["xray_turns"], spec)
    assert turns["turn"].cast(pl.Int64).to_list() == xr.turns["turn"].to_list()
    assert turns["rec_max"].cast(pl.Int64).to_list() == xr.turns["context_tokens"].to_list()
    assert turns["est_max"].cast(pl.Int64).to_list() == xr.turns["window_tokens"].to_list()


def test_plot_tooltips_are_text_for_every_field_legend_lists_what_happened_ticks_are_whole_turns(xr):
    """The tooltip said "undefined" for measure, events, flags, step id and ts; the legend listed prune and rewind
    in a session with one compaction; 17 turns got ticks at 2.5, 7.5, ..."""
    spec = xr.plot(interactive=False).to_dict()
    layers = _layers(spec)
    for name in ("xray_turns", "xray_events"):
        rows = _rows(layers[name], spec)
        fields = _tooltip_fields(layers[name])
        assert len(fields) >= 3
        for f in fields:  # every field of every tooltip is a filled string, never missing
            assert rows[f].null_count() == 0 and (rows[f].str.len_chars() > 0).all(), (name, f)
    tip = _rows(layers["xray_turns"], spec).row(13, named=True)  # turn 14
    assert tip["t_turn"] == "14" and tip["t_id"] == xr.turns["id"][13] and tip["t_events"] == "none"
    assert tip["t_rec"] == f"{xr.turns['context_tokens'][13]:,}" and tip["t_ts"].startswith("2026-")
    after = _rows(layers["xray_turns"], spec).row(15, named=True)  # turn 16: the first after the compaction
    assert after["t_events"] == "compaction #1"
    assert layers["xray_events"]["encoding"]["color"]["scale"]["domain"] == ["compaction"]
    pytest.importorskip("vl_convert", reason="vl-convert-python renders the chart without a browser (lab extra)")
    import xml.etree.ElementTree as ET

    svg = ET.fromstring(xr.plot(interactive=False, turns=(14, 16)).svg())  # 3 turns: no tick at 14.5
    g = next(e for e in svg.iter() if (e.get("aria-label") or "").startswith("X-axis titled 'turn"))
    labels = [t.text for t in g.iter("{http://www.w3.org/2000/svg}text") if t.text and t.text != "turn (model step)"]
    assert labels and all(lab.isdigit() for lab in labels), labels
    legend = [
        t.text
        for e in svg.iter()
        if "role-legend" in (e.get("class") or "")
        for t in e.iter("{http://www.w3.org/2000/svg}text")
    ]
    assert "compaction" in legend and "prune" not in legend and "rewind" not in legend


def test_plot_buckets_keep_each_range_exact_and_every_event(xr):
    """More turns than max_buckets: each band is the exact min-max of its turns, the peak is exact, no event is
    merged away."""
    from rlm_jupyter.window.plot import buckets

    spec = xr.plot(interactive=False, max_buckets=5).to_dict()
    layers = _layers(spec)
    bands = _rows(layers["xray_turns"], spec)
    assert bands.height == 5 and "bands" in str(spec["title"])
    t = xr.turns
    for b in bands.iter_rows(named=True):
        part = t.filter(pl.col("turn").is_between(b["x0"] + 0.5, b["x1"] - 0.5))
        assert b["rec_min"] == part["context_tokens"].min() and b["rec_max"] == part["context_tokens"].max()
        assert b["est_min"] == part["window_tokens"].min() and b["est_max"] == part["window_tokens"].max()
    assert bands["x0"].min() == 0.5 and bands["x1"].max() == t.height + 0.5  # every turn is in one band
    assert bands["rec_max"].max() == t["context_tokens"].max()
    peak_turn = t.sort("context_tokens", descending=True)["turn"][0]
    assert f"peak at turn {peak_turn}" in " ".join(bands["t_rec"].to_list())
    assert _rows(layers["xray_events"], spec)["event"].cast(pl.Int64).to_list() == xr.events["event"].to_list()
    g = buckets(t, 5)
    assert g["n"].sum() == t.height and g.height == 5
    exact = xr.plot(interactive=False, turns=(10, 17)).to_dict()  # a range, turn by turn
    assert _rows(_layers(exact)["xray_turns"], exact)["turn"].cast(pl.Int64).to_list() == list(range(10, 18))


def _replayed(copies: int):
    """One Claude Code session of `copies` replays of the recorded one (real compactions), ids made unique."""
    ctx = rj.load(Path(__file__).parent / "data" / "recorded" / "claude-code" / "current" / "projects")
    sid = ctx.sessions.sort("compactions", descending=True)["session_id"][0]
    base = ctx.table.filter(pl.col("session_id") == sid).select(ctx.df.columns)
    df = pl.concat(
        [
            base.with_columns((pl.col("id") + f"~{k}").alias("id"), (pl.col("parent_id") + f"~{k}").alias("parent_id"))
            for k in range(copies)
        ]
    ).with_columns(pl.int_range(pl.len(), dtype=pl.Int64).alias("seq"))
    return rj.Context.from_frame(df, sessions=ctx.sessions.filter(pl.col("session_id") == sid))


def test_a_long_session_draws_bounded_data_and_keeps_a_small_static_copy(tmp_path):
    """A session of thousands of turns: the chart draws at most MAX_BUCKETS bands, keeps every compaction, and
    what a notebook keeps (PNG + the spec when small enough) stays far below 1 MB."""
    import json

    from rlm_jupyter.window import plot as xplot

    ctx = _replayed(200)
    ctx._cache = tmp_path
    x = xray(ctx)
    assert x.turns.height > 3 * xplot.MAX_BUCKETS and x.events.height > xplot.RUG_OVER
    p = x.plot(interactive=False)
    spec = p.to_dict()
    layers = _layers(spec)
    assert _rows(layers["xray_turns"], spec).height <= xplot.MAX_BUCKETS
    assert _rows(layers["xray_events"], spec)["event"].cast(pl.Int64).to_list() == x.events["event"].to_list()
    assert _rows(layers["xray_turns"], spec)["rec_max"].max() == x.turns["context_tokens"].max()
    pytest.importorskip("vl_convert", reason="vl-convert-python renders the PNG (lab extra)")
    data, meta = p._repr_mimebundle_()
    size = len(json.dumps(data)) + len(json.dumps(meta))
    assert size < 400_000, size
    png = base64.b64decode(data["image/png"])
    assert png.startswith(b"\x89PNG") and meta["image/png"]["width"] == round(
        int.from_bytes(png[16:20], "big") / xplot.PNG_SCALE
    )
    assert "image/svg+xml" not in data


def test_compact_png_keeps_the_pixels():
    import struct
    import zlib

    from rlm_jupyter.window.plot import compact_png

    def raw(png):
        pos, idat = 8, b""
        while pos < len(png):
            (n,) = struct.unpack(">I", png[pos : pos + 4])
            if png[pos + 4 : pos + 8] == b"IDAT":
                idat += png[pos + 8 : pos + 8 + n]
            pos += 12 + n
        return zlib.decompress(idat)

    width, height = 64, 32
    rows = b"".join(b"\x00" + bytes((x * 4 + y) % 256 for x in range(width * 3)) for y in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows, 0)) + chunk(b"IEND", b"")
    small = compact_png(png)
    assert len(small) < len(png) // 3 and raw(small) == rows and small.endswith(chunk(b"IEND", b""))
    assert compact_png(b"not a png") == b"not a png"


def test_plot_renders_statically_without_a_kernel(xr):
    p = xr.plot()  # no kernel here: static
    assert p.widget is None
    bundle = p._repr_mimebundle_()
    assert "application/vnd.vegalite.v6+json" in bundle[0]
    pytest.importorskip("vl_convert", reason="vl-convert-python renders the PNG without a browser (lab extra)")
    data, meta = bundle
    assert base64.b64decode(data["image/png"]).startswith(b"\x89PNG")  # shown even in an untrusted notebook
    assert meta["image/png"]["width"] > 700 and "image/svg+xml" not in data  # drawn at its size; no SVG kept
    assert p.svg().startswith("<svg") and "Context X-ray" in p.svg()


def test_plot_notes_what_the_format_does_not_record(samples):
    x = xray(rj.load(samples / "claude-code" / "SYNTHETIC-agent-sessions-record-catalog.jsonl"))
    spec = str(x.plot(interactive=False).to_dict())
    assert "limit is not recorded by claude" in spec


def test_interactive_plot_click_on_an_event_shows_its_losses(xr):
    p = xr.plot(interactive=True)
    import altair as alt

    assert isinstance(p.widget, alt.JupyterChart)
    assert "application/vnd.jupyter.widget-view+json" in p._repr_mimebundle_()[0]
    shown = []

    class Handle:  # stands in for IPython's DisplayHandle: records what the click would show
        def update(self, obj):
            shown.append(obj)

    p._handle = Handle()
    # what the JupyterChart front-end sends on a click on event #1 (Vega signal + store)
    p.widget._vl_selections = {
        **p.widget._vl_selections,
        "event_pick": {"value": {"vlPoint": {"or": [{"event": 1}]}}, "store": []},
    }
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


def test_rlm_xray_magic_shows_progress_past_its_delay_and_then_the_chart(xr, capsys, monkeypatch):
    """A big session takes seconds: %rlm_xray says what it is doing once it has taken PROGRESS_DELAY_S (here 0 s),
    then puts the chart in place of that line (no kernel here: its static copy)."""
    from IPython.core.interactiveshell import InteractiveShell

    from rlm_jupyter.window import magic

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "rlm_jupyter.jupyter")
    shell.user_ns["hist"] = xr.ctx
    updates = []
    monkeypatch.setattr(magic, "PROGRESS_DELAY_S", 0.0)
    import IPython.core.display_functions as df

    real = df.update_display  # what DisplayHandle.update calls
    monkeypatch.setattr(df, "update_display", lambda obj, **kw: (updates.append((obj, kw)), real(obj, **kw))[1])
    capsys.readouterr()
    got = shell.run_line_magic("rlm_xray", "--context hist --limit 32000")
    out = capsys.readouterr().out
    assert f"drawing 17 turns and 1 events of {xr.session_id}" in out and "static copy (PNG)" in out
    assert got.turns.height == 17
    # the same output, updated in place: the progress line, then the chart's bundle
    assert [isinstance(o, dict) and "image/png" in o for o, _ in updates][-1] and "<XRayPlot" in out
    assert len({kw["display_id"] for _, kw in updates}) == 1
    monkeypatch.setattr(magic, "PROGRESS_DELAY_S", 60.0)  # a fast X-ray shows no progress at all
    shell.run_line_magic("rlm_xray", "--context hist --limit 32000")
    assert "%rlm_xray:" not in capsys.readouterr().out


def test_rlm_xray_in_a_real_kernel_shows_the_widget_with_a_static_fallback(tmp_path):
    """A real ipykernel (nbclient): %rlm_xray displays the JupyterChart widget, and the same output carries the
    Vega-Lite spec (and the SVG) that a frontend without the kernel renders."""
    nbformat = pytest.importorskip("nbformat")
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(c)
        for c in (
            "%load_ext rlm_jupyter",
            f"import rlm_jupyter as rj\ncontext = rj.load({str(OC_CURRENT / 'opencode.db')!r})",
            "%rlm_xray --limit 32000",
            "print(_rlm_xray.events['removed_messages'].to_list())",
        )
    ]
    env = {"metadata": {"path": str(tmp_path)}}
    NotebookClient(nb, timeout=300, kernel_name="python3", resources=env).execute()
    outs = nb.cells[2].outputs
    data = [o["data"] for o in outs if o.get("output_type") == "display_data"]
    chart = next(d for d in data if "application/vnd.vegalite.v6+json" in d)
    assert "application/vnd.jupyter.widget-view+json" in chart  # interactive in the kernel
    assert "image/png" in chart and "image/svg+xml" not in chart  # the compact static copy
    assert "Context X-ray" in str(chart["application/vnd.vegalite.v6+json"])
    assert chart["text/plain"].startswith("<XRayPlot")  # the static text, not the widget's repr
    assert any("Click an event" in d.get("text/html", "") for d in data)  # where a click shows the losses
    assert nb.cells[3].outputs[0]["text"].strip() == "[29]"


def test_rlm_xray_without_session_says_which_it_picked_why_and_lists_the_others(tmp_path):
    """A real ipykernel: %rlm_xray with no --session used to pick the session with the most compactions silently."""
    nbformat = pytest.importorskip("nbformat")
    from nbclient import NotebookClient

    claude = sample_tree() / "claude-code" / "codemie-session-9eda1058.jsonl"
    paths = [str(OC_CURRENT / "opencode.db"), str(claude)]
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(c)
        for c in (
            "%load_ext rlm_jupyter",
            f"import rlm_jupyter as rj\nhist = rj.load({paths!r}, cache=False)",
            "%rlm_xray --context hist --no-plot",
            "%rlm_xray --context hist --session 9eda --no-plot",
        )
    ]
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    said = "".join(o.get("text", "") for o in nb.cells[2].outputs if o.get("output_type") == "stream")
    ctx = rj.load(paths, cache=False)
    ids = ctx.sessions.sort(["compactions", "messages"], descending=True)["session_id"].to_list()
    picked = xray(ctx)
    assert picked.session_id == ids[0] and picked.events.height == 1  # the OpenCode session and its compaction
    lines = said.strip().splitlines()
    assert lines[0] == (
        f"X-ray of session {ids[0]} (opencode, {picked.turns.height} turns, 1 compaction): picked "
        f"because it has the most compactions (1) of the {len(ids)} sessions in `hist`. The others:"
    )
    for sid, line in zip(ids[1:], lines[1:-1], strict=True):
        other = xray(ctx, sid)
        assert line == f"  {sid}  ({other.format}, {other.turns.height} turns, 0 compactions)"
    assert lines[-1] == "Pick one with %rlm_xray --session ID (a unique prefix of the id is enough)."
    # with --session there is nothing to explain
    assert not [o for o in nb.cells[3].outputs if o.get("output_type") == "stream"]


def test_losses_of_a_session_with_no_compaction_say_nothing_was_removed_and_why(xr):
    claude = sample_tree() / "claude-code" / "codemie-session-9eda1058.jsonl"
    plain = xray(rj.load(claude, cache=False))
    assert plain.events.height == 0
    lo = plain.losses(sub_model=None)
    said = (
        "Nothing was removed: no compaction, prune or rewind was found in this claude session, so every "
        f"message stayed in the model's window ({plain.turns.height} turns)."
    )
    assert lo.nothing_removed == said and repr(lo).splitlines()[1] == "  " + said
    assert "Nothing was removed" in lo._repr_html_()
    # a session whose compaction took messages out says nothing of the kind
    assert xr.losses(sub_model=None).nothing_removed is None and "Nothing was removed" not in repr(xr.losses())


def test_the_widgets_offline_javascript_is_bundled_once_then_read_from_the_cache(tmp_path, monkeypatch):
    """vl-convert bundles JupyterChart's JavaScript in seconds per new kernel; the bundle is kept in the cache."""
    alt = pytest.importorskip("altair")
    vlc = pytest.importorskip("vl_convert", reason="the offline bundle comes from vl-convert-python (lab extra)")
    from rlm_jupyter.window.plot import enable_offline

    monkeypatch.setenv("RLM_JUPYTER_CACHE", str(tmp_path))
    cls = alt.JupyterChart
    monkeypatch.setattr(cls, "_is_offline", False)
    monkeypatch.setattr(cls, "_esm", cls._esm)
    enable_offline(alt)
    (kept,) = (tmp_path / "xray").glob("jupyterchart-*.js")
    assert cls._is_offline and kept.read_text() == cls._esm and "vega" in cls._esm.lower()
    monkeypatch.setattr(cls, "_is_offline", False)
    monkeypatch.setattr(cls, "_esm", "not yet")

    def no_bundling(*a, **k):
        raise AssertionError("bundled again instead of read from the cache")

    monkeypatch.setattr(vlc, "javascript_bundle", no_bundling)
    enable_offline(alt)
    assert cls._is_offline and cls._esm == kept.read_text()
