"""`xr.plot()`: context tokens per turn, the model's window limit, every compaction / prune / rewind marked.

Built on Vega-Altair (imported here, on first plot): a declarative Vega-Lite chart whose `JupyterChart` is an
anywidget, so a click selection is readable from Python. Interactive in a kernel: hover a turn for its window
(size, messages, events, flags), click an event rule to show its losses below the chart, drag to zoom.
Without a kernel (a saved notebook, nbconvert, GitHub) the chart shows as a compact PNG rendered without a
browser by `vl-convert-python`, and the Vega-Lite spec when it is small (SPEC_CAP). A long session is drawn as at
most MAX_BUCKETS min-max bands with every event kept (docs/xray.md, "Big sessions").
What a format does not record is said on the chart (subtitle) and per turn (flags), not drawn as if known.
"""

from __future__ import annotations

import contextlib
import threading
from html import escape

# one colour per window-event kind (sessions/schema.py: REMOVING, CLEARING)
KIND_COLORS = {
    "compaction": "#d62728",
    "compression": "#e377c2",
    "prune": "#ff7f0e",
    "microcompact": "#bcbd22",
    "context_edit": "#17becf",
    "masking": "#8c564b",
    "rewind": "#9467bd",
}
MEASURES = {"rec": ("recorded by the agent", "#1f77b4"), "est": ("rebuilt window (estimated)", "#7f7f7f")}
# What a chart draws and what a notebook keeps. Turns beyond MAX_BUCKETS are drawn as that many buckets (about one
# per pixel at the default width), each its exact min-max; every event stays a rule of its own.
MAX_BUCKETS = 600
EVENT_NOTES_UPTO = 500  # more events than this: their tooltips leave out the note (xr.events has it)
SPEC_CAP = 400_000  # bytes of Vega-Lite spec kept in the saved output; a bigger one is left out (PNG stays)
RUG_OVER = 150  # more events than this: ticks along the top edge, so the curve stays readable
RUG_PX = 12
PNG_SCALE = 1.5  # the static copy: crisp enough on a HiDPI screen, ~30-90 kB


def _altair():
    try:
        import altair as alt
    except ImportError as e:
        raise ImportError(
            "xr.plot() needs altair: pip install 'altair>=6,<7' (or the lab extra); the other X-ray "
            "views (turns, window, losses, ask) work without it"
        ) from e
    return alt


def _num(v) -> str:
    return "—" if v is None else f"{v:,}"


def _span(lo, hi, peak_turn=None) -> str:
    if lo is None:
        return "not recorded"
    if lo == hi:
        return f"{lo:,}"
    return f"{lo:,} – {hi:,}" + (f" (peak at turn {peak_turn:,})" if peak_turn is not None else "")


def _listed(items: list[str], cap: int = 6) -> str:
    if not items:
        return "none"
    more = f", … ({len(items):,} in all)" if len(items) > cap else ""
    return ", ".join(items[:cap]) + more


def buckets(turns, max_buckets: int = MAX_BUCKETS):
    """The per-turn frame reduced to at most `max_buckets` runs of consecutive turns: per run its first and last
    turn, the exact min and max of both measures and of the window's messages, the turn of each peak, its events
    and flags. With `max_buckets` or fewer turns each run is one turn (nothing is aggregated)."""
    import polars as pl

    n = turns.height
    t0 = turns["turn"].min() if n else 1
    b = (pl.col("turn") - t0) if n <= max_buckets else ((pl.col("turn") - t0) * max_buckets // n)

    def peak(col):
        return pl.col("turn").sort_by(pl.col(col), descending=True, nulls_last=True).first().alias(f"{col}_peak")

    return (
        turns.with_columns(b.alias("bucket"))
        .group_by("bucket", maintain_order=True)
        .agg(
            pl.col("turn").first().alias("start"),
            pl.col("turn").last().alias("end"),
            pl.len().alias("n"),
            pl.col("context_tokens").min().alias("rec_min"),
            pl.col("context_tokens").max().alias("rec_max"),
            peak("context_tokens"),
            pl.col("window_tokens").min().alias("est_min"),
            pl.col("window_tokens").max().alias("est_max"),
            peak("window_tokens"),
            pl.col("window_messages").min().alias("msg_min"),
            pl.col("window_messages").max().alias("msg_max"),
            pl.col("events").list.explode(keep_nulls=False, empty_as_null=False).alias("events"),
            pl.col("flags")
            .list.explode(keep_nulls=False, empty_as_null=False)
            .unique(maintain_order=True)
            .alias("flags"),
            pl.col("id").sort_by(pl.col("context_tokens"), descending=True, nulls_last=True).first().alias("id"),
            pl.col("ts").first().alias("ts_first"),
            pl.col("ts").last().alias("ts_last"),
        )
        .sort("start")
    )


def _turn_values(g, tips: bool = True) -> list[dict]:
    """One row per bucket: the drawn numbers and the tooltip, every tooltip field a string (never undefined)."""
    if not tips:
        return (
            g.select(
                pl_turn=g["start"],
                x0=g["start"] - 0.5,
                x1=g["end"] + 0.5,
                rec_min=g["rec_min"],
                rec_max=g["rec_max"],
                est_min=g["est_min"],
                est_max=g["est_max"],
            )
            .rename({"pl_turn": "turn"})
            .to_dicts()
        )
    out = []
    for r in g.iter_rows(named=True):
        one = r["n"] == 1
        ts = (
            "—"
            if r["ts_first"] is None
            else (str(r["ts_first"]) if one or r["ts_first"] == r["ts_last"] else f"{r['ts_first']} – {r['ts_last']}")
        )
        out.append(
            {
                "turn": r["start"],
                "x0": r["start"] - 0.5,
                "x1": r["end"] + 0.5,
                "rec_min": r["rec_min"],
                "rec_max": r["rec_max"],
                "est_min": r["est_min"],
                "est_max": r["est_max"],
                "t_turn": f"{r['start']:,}" if one else f"{r['start']:,} – {r['end']:,} ({r['n']:,} turns)",
                "t_rec": _span(r["rec_min"], r["rec_max"], r["context_tokens_peak"]),
                "t_est": _span(r["est_min"], r["est_max"], r["window_tokens_peak"]),
                "t_msg": _span(r["msg_min"], r["msg_max"]),
                "t_events": _listed(r["events"]),
                "t_flags": _listed(r["flags"]),
                "t_id": r["id"] or "—",
                "t_ts": ts,
            }
        )
    return out


def _event_values(ev, last_turn: int) -> list[dict]:
    notes = ev.height <= EVENT_NOTES_UPTO
    out = []
    for r in ev.iter_rows(named=True):
        row = {
            "event": r["event"],
            "kind": r["kind"],
            "how": r["how"],
            "x": (r["turn"] if r["turn"] is not None else last_turn + 1) - 0.5,
            "t_event": f"#{r['event']} {r['kind']} ({r['how']})",
            "t_removed": f"{r['removed_messages']:,} messages, {r['removed_tool_outputs']:,} tool outputs, "
            f"~{r['removed_tokens']:,} tokens",
            "t_context": f"{_num(r['pre_tokens'])} → {_num(r['post_tokens'])}",
        }
        if notes:
            note = " ".join((r["note"] or "").split())
            row["t_note"] = (note[:157] + "…" if len(note) > 160 else note) or "—"
        out.append(row)
    return out


def _csv_data(alt, rows: list[dict], numbers: tuple[str, ...]):
    """Inline data as one CSV string: a third the size of a JSON array of objects, and Altair validates a string
    in O(1) where it walks every row of a list (seconds for thousands of rows). Only `numbers` are parsed as
    numbers (an empty cell is null); every other column stays a string."""
    import polars as pl

    text = pl.DataFrame(rows, infer_schema_length=None).write_csv() if rows else ""
    return alt.Data(values=text, format=alt.DataFormat(type="csv", parse={c: "number" for c in numbers}))


def _event_rug(alt, ev, last_turn: int, g, width: int):
    """The static picture of many events: one tick per pixel column holding any (the kind drawn is the first of
    compaction, prune, rewind found there), so no event is lost from the picture and it draws <= width marks."""
    import polars as pl

    lo = (g["start"].min() or 1) - 1 if g.height else 0
    hi = (g["end"].max() or 1) + 1 if g.height else 1
    rank = {k: i for i, k in enumerate(KIND_COLORS)}
    cols = (
        ev.select(
            ((pl.col("turn").fill_null(last_turn + 1) - 0.5 - lo) / max(hi - lo, 1) * width).floor().alias("px"),
            pl.col("kind").replace_strict(rank, default=len(rank)).alias("r"),
            "kind",
        )
        .sort("r")
        .group_by("px", maintain_order=True)
        .first()
    )
    rows = [{"x": lo + (px + 0.5) / width * (hi - lo), "kind": k} for px, k in cols.select("px", "kind").iter_rows()]
    kinds = [k for k in KIND_COLORS if k in set(cols["kind"].to_list())]
    return (
        alt.Chart(_csv_data(alt, rows, ("x",)))
        .mark_rule(strokeWidth=1, opacity=0.8)
        .encode(
            x=alt.X("x:Q"),
            y=alt.value(0),
            y2=alt.value(RUG_PX),
            color=alt.Color(
                "kind:N", title="event", scale=alt.Scale(domain=kinds, range=[KIND_COLORS[k] for k in kinds])
            ),
        )
    )


def chart(
    xr,
    *,
    width: int = 720,
    height: int = 280,
    max_buckets: int = MAX_BUCKETS,
    turns: tuple[int, int] | None = None,
    static: bool = False,
):
    """The Altair chart (a layer chart) of one X-ray. turns=(first, last) draws only that range (exactly, when it
    has `max_buckets` turns or fewer). static: the picture only, for the PNG (no hover targets; more than RUG_OVER
    events drawn as one tick per pixel column that has any, which looks the same and rasterizes in a fraction)."""
    import polars as pl

    alt = _altair()
    t = xr.turns
    ev = xr.events
    last_turn = t["turn"].max() or 0
    if turns is not None:
        lo, hi = turns
        t = t.filter(pl.col("turn").is_between(lo, hi))
        ev = ev.filter(pl.col("turn").fill_null(last_turn + 1).is_between(lo, hi + 1))
    g = buckets(t, max_buckets)
    exact = g.height == t.height
    data = _csv_data(
        alt, _turn_values(g, tips=not static), ("turn", "x0", "x1", "rec_min", "rec_max", "est_min", "est_max")
    )
    x = alt.X(
        "turn:Q",
        title="turn (model step)",
        scale=alt.Scale(domainMin=0 if turns is None else turns[0] - 1),
        axis=alt.Axis(tickMinStep=1, format=",d"),
    )  # whole turns only, however short the session
    names = [MEASURES[m][0] for m in MEASURES]
    measures = alt.Scale(domain=names, range=[MEASURES[m][1] for m in MEASURES])
    base = alt.Chart(data)
    drawn = []
    has_rec = g["rec_max"].null_count() < g.height
    for m, (name, _) in MEASURES.items():
        if m == "rec" and not has_rec:
            continue
        layer = base.transform_calculate(measure=f"'{name}'")  # a constant field: one shared colour legend
        color = alt.Color("measure:N", scale=measures, title=None, legend=alt.Legend(orient="top"))
        y = alt.Y(f"{m}_max:Q", title="context tokens")
        dash = [4, 3] if m == "est" else [1, 0]
        if exact:
            drawn.append(
                layer.mark_line(interpolate="step-after", strokeWidth=1.5, strokeDash=dash).encode(
                    x=x, y=y, color=color
                )
            )
            drawn.append(layer.mark_point(filled=True, size=18).encode(x=x, y=y, color=color))
        else:  # the envelope: each bucket from its lowest to its highest turn, exact values
            drawn.append(
                layer.mark_area(
                    interpolate="step-after",
                    opacity=0.35 if m == "rec" else 0.2,
                    line={"strokeWidth": 1, "strokeDash": dash},
                ).encode(x=x, y=y, y2=alt.Y2(f"{m}_min:Q"), color=color)
            )
    layers = [alt.layer(*drawn)]  # one colour scale (and legend) for the measures
    if xr.limit:
        limit = alt.Chart(alt.Data(values=[{"limit": xr.limit, "label": f"window limit {xr.limit:,}"}]))
        layers += [
            limit.mark_rule(color="black", strokeDash=[6, 4]).encode(y="limit:Q", tooltip=["label:N"]),
            limit.mark_text(align="left", dx=4, dy=-6, fontSize=10).encode(y="limit:Q", text="label:N", x=alt.value(0)),
        ]
    # hover targets: one transparent band per turn (or bucket), full height, so the pointer anywhere over a turn
    # shows its tooltip (Vega-Lite's `nearest` voronoi left the text fields of its tooltip undefined)
    hover = alt.selection_point(name="turn_hover", fields=["turn"], on="pointerover", clear="pointerout", empty=False)
    tooltip = [
        alt.Tooltip("t_turn:N", title="turn"),
        alt.Tooltip("t_rec:N", title=names[0]),
        alt.Tooltip("t_est:N", title=names[1]),
        alt.Tooltip("t_msg:N", title="messages in window"),
        alt.Tooltip("t_events:N", title="events"),
        alt.Tooltip("t_flags:N", title="flags"),
        alt.Tooltip("t_id:N", title="step id" if exact else "step id (peak turn)"),
        alt.Tooltip("t_ts:N", title="ts"),
    ]
    if not static:
        layers.append(
            base.mark_rect(color="#888")
            .encode(
                x=alt.X("x0:Q"),
                x2="x1:Q",
                y=alt.value(0),
                y2=alt.value(height),
                fillOpacity=alt.condition(hover, alt.value(0.15), alt.value(0.0)),
                tooltip=tooltip,
            )
            .add_params(hover)
            .properties(name="xray_turns")
        )  # Vega class "xray_turns_marks"
    many = ev.height > RUG_OVER
    if ev.height and static and many:
        layers.append(_event_rug(alt, ev, last_turn, g, width))
    elif ev.height:
        kinds = [k for k in KIND_COLORS if k in set(ev["kind"].to_list())]  # the legend lists what happened only
        pick = alt.selection_point(name="event_pick", fields=["event"], on="click", empty=False)
        ev_tip = [
            alt.Tooltip("t_event:N", title="event"),
            alt.Tooltip("t_removed:N", title="removed"),
            alt.Tooltip("t_context:N", title="context before → after"),
        ]
        if ev.height <= EVENT_NOTES_UPTO:
            ev_tip.append(alt.Tooltip("t_note:N", title="note"))
        enc = {"y": alt.value(0), "y2": alt.value(RUG_PX)} if many else {}  # many: a rug along the top edge
        rules = (
            alt.Chart(_csv_data(alt, _event_values(ev, last_turn), ("event", "x")))
            .mark_rule(strokeWidth=1 if many else 3)
            .encode(
                x=alt.X("x:Q"),
                color=alt.Color(
                    "kind:N", title="event", scale=alt.Scale(domain=kinds, range=[KIND_COLORS[k] for k in kinds])
                ),
                strokeDash=alt.condition("datum.how == 'inferred'", alt.value([3, 3]), alt.value([1, 0])),
                opacity=alt.condition(pick, alt.value(1.0), alt.value(0.55)),
                tooltip=ev_tip,
                **enc,
            )
            .add_params(pick)
            .properties(name="xray_events")
        )  # Vega class "xray_events_marks"
        layers.append(rules)
    subtitle = [f"{xr.format} {xr.producer}".strip(), *xr.notes]
    if not exact:
        per = -(-t.height // g.height)
        subtitle.append(
            f"{t.height:,} turns drawn as {g.height:,} bands of up to {per:,} turns, each from its lowest "
            "to its highest turn; xr.plot(turns=(a, b)) draws a range turn by turn"
        )
    if many:
        subtitle.append(f"{ev.height:,} events: ticks along the top edge")
    if has_rec:
        pk = t.sort("context_tokens", descending=True, nulls_last=True).row(0, named=True)
        subtitle.append(f"peak recorded context {pk['context_tokens']:,} tokens at turn {pk['turn']:,}")
    if t.height and not has_rec:
        subtitle.append("this format records no token usage: only the estimated window is drawn")
    title = alt.TitleParams(
        f"Context X-ray of {xr.session_id}", subtitle=subtitle, anchor="start", fontSize=13, subtitleFontSize=10
    )
    out = alt.layer(*layers).resolve_scale(color="independent").properties(width=width, height=height, title=title)
    return out if static else out.interactive(bind_y=False)


class XRayPlot:
    """What `xr.plot()` returns. `chart`: the Altair chart; `widget`: its `alt.JupyterChart` (interactive mode);
    `selected_event`: the event number clicked last (None when nothing is selected); `to_dict()`: the spec;
    `save(path)`: .html / .svg / .png / .json (svg and png need vl-convert-python)."""

    def __init__(self, xr, chart, interactive: bool, static_chart=None):
        self.xray, self.chart, self.interactive = xr, chart, interactive
        self._static_chart = static_chart  # the picture for the PNG (a callable making it; None: `chart`)
        self.widget = None
        self._handle = None
        self._spec: dict | None = None
        self._bundle: tuple[dict, dict] | None = None
        _wait_warm_up()
        if interactive:
            alt = _altair()
            if _has_vl_convert():
                enable_offline(alt)  # the widget's JavaScript from vl-convert: no CDN needed
            # SVG marks (not canvas): crisp when zoomed, and each event rule is an element one can click or test
            self.widget = alt.JupyterChart(chart, embed_options={"renderer": "svg", "actions": False})
            if "event_pick" in self.widget.selections.trait_names():
                self.widget.selections.observe(self._on_pick, ["event_pick"])

    @property
    def selected_event(self) -> int | None:
        if self.widget is None or "event_pick" not in self.widget.selections.trait_names():
            return None
        value = self.widget.selections.event_pick.value
        return int(value[0]["event"]) if value else None

    def _on_pick(self, change) -> None:
        if self._handle is None:
            return
        k = self.selected_event
        if k is None:
            self._handle.update(_Html("<small>Click an event rule to see what it removed.</small>"))
        else:
            self._handle.update(self.xray.losses(event=k, sub_model=None))

    def to_dict(self) -> dict:
        if self._spec is None:  # the widget's copy when there is one: Altair validates a chart once, not twice
            self._spec = dict(self.widget.spec) if self.widget is not None else self.chart.to_dict()
        return self._spec

    def save(self, path) -> None:
        self.chart.save(str(path))

    def svg(self) -> str | None:
        if not _has_vl_convert():
            return None
        import vl_convert as vlc
        from altair.utils._importers import vl_version_for_vl_convert

        return vlc.vegalite_to_svg(self.to_dict(), vl_version=vl_version_for_vl_convert())

    def png(self, scale: float = 1.0) -> bytes | None:
        """The chart as PNG bytes (vl-convert), or None without it."""
        if not _has_vl_convert():
            return None
        import vl_convert as vlc
        from altair.utils._importers import vl_version_for_vl_convert

        if callable(self._static_chart):
            self._static_chart = self._static_chart()
        # the static chart is the same code as `chart` minus interaction (tests validate it): not validated again
        spec = self._static_chart.to_dict(validate=False) if self._static_chart is not None else self.to_dict()
        # through SVG: the same picture, and here about twice as fast as vegalite_to_png
        svg = vlc.vegalite_to_svg(spec, vl_version=vl_version_for_vl_convert())
        return compact_png(vlc.svg_to_png(svg, scale=scale))

    def _text(self) -> str:
        return f"<XRayPlot {self.xray.session_id}: {self.xray.turns.height} turns, {self.xray.events.height} events>"

    def _static_bundle(self) -> tuple[dict, dict]:
        """(data, metadata) a notebook keeps: a PNG (shown by any frontend, trusted or not, ~10-100x smaller than
        the SVG of a long session), the Vega-Lite spec when it is at most SPEC_CAP bytes, and a line of text.
        Rendered once per plot."""
        if self._bundle is not None:
            return self._bundle
        import base64
        import json

        alt = _altair()
        spec = self.to_dict()
        major = alt.SCHEMA_VERSION.lstrip("v").split(".")[0]
        spec_bytes = len(json.dumps(spec, separators=(",", ":")))
        text = self._text()
        data: dict = {}
        meta: dict = {}
        if spec_bytes <= SPEC_CAP:
            data[f"application/vnd.vegalite.v{major}+json"] = spec
        else:
            text += (
                f" (its {spec_bytes / 1e3:,.0f} kB Vega-Lite spec is not kept in the notebook; "
                "xr.plot().save('xray.html') writes it)"
            )
        png = self.png(scale=PNG_SCALE)
        if png is not None:
            data["image/png"] = base64.b64encode(png).decode()
            w, h = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")  # the IHDR chunk
            meta["image/png"] = {"width": round(w / PNG_SCALE), "height": round(h / PNG_SCALE)}
        else:
            data["text/html"] = (
                f"<pre>{escape(text)}</pre><p>No static chart: pip install vl-convert-python "
                "(the lab extra) to keep a PNG of it in the notebook.</p>"
            )
        data["text/plain"] = text
        self._bundle = (data, meta)
        return self._bundle

    def _repr_mimebundle_(self, include=None, exclude=None):
        data, meta = self._static_bundle()
        if self.widget is None:
            return dict(data), dict(meta)
        data = dict(data)
        widget = self.widget._repr_mimebundle_(include=include, exclude=exclude) or {}
        if isinstance(widget, tuple):  # (data, metadata)
            widget = widget[0]
        # the widget view first where a kernel is live; the static chart and its text stay as the fallback
        data.update({k: v for k, v in widget.items() if k != "text/plain"})
        return data, dict(meta)

    def _ipython_display_(self) -> None:
        self._show()

    def _show(self, into=None) -> None:
        """Display the chart, or put it in place of the output of the display handle `into` (the progress line)."""
        from IPython.display import display

        data, meta = self._repr_mimebundle_()
        if into is None:
            display(data, raw=True, metadata=meta)
        else:
            into.update(data, raw=True, metadata=meta)
        if self.widget is not None:
            self._handle = display(_Html("<small>Click an event rule to see what it removed.</small>"), display_id=True)

    def __repr__(self) -> str:
        return self._text()


class _Html:
    def __init__(self, html: str):
        self.html = html

    def _repr_html_(self) -> str:
        return self.html


class _Line:
    """One line of plain text, shown small in HTML frontends."""

    def __init__(self, text: str):
        self.text = text

    def _repr_html_(self) -> str:
        return f"<small>{escape(self.text)}</small>"

    def __repr__(self) -> str:
        return self.text


def compact_png(png: bytes, level: int = 6) -> bytes:
    """The same image with its pixel data re-deflated at `level`: vl-convert writes PNGs almost uncompressed (a dense
    chart is ~10x smaller re-deflated, e.g. 866 kB -> 90 kB; level 9 saves 5% more in 3x the time). Other chunks
    are kept as they are."""
    import struct
    import zlib

    if png[:8] != b"\x89PNG\r\n\x1a\n":
        return png
    chunks, pos = [], 8
    while pos + 8 <= len(png):
        (n,) = struct.unpack(">I", png[pos : pos + 4])
        chunks.append((png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + n]))
        pos += 12 + n
    idat = b"".join(body for kind, body in chunks if kind == b"IDAT")
    packed = zlib.compress(zlib.decompress(idat), level)
    if len(packed) >= len(idat):
        return png

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    out, done = [png[:8]], False
    for kind, body in chunks:
        if kind != b"IDAT":
            out.append(chunk(kind, body))
        elif not done:
            out.append(chunk(b"IDAT", packed))
            done = True
    return b"".join(out)


def enable_offline(alt) -> None:
    """The JupyterChart widget's JavaScript without a CDN: vl-convert bundles it (~1 MB; seconds, as much as the
    rest of %rlm_xray) once per machine and version, kept in the cache folder (RLM_JUPYTER_CACHE, else
    ~/.cache/rlm_jupyter, in xray/), then read back in milliseconds by every new kernel."""
    cls = alt.JupyterChart
    if getattr(cls, "_is_offline", False):
        return
    import vl_convert as vlc
    from altair.utils._importers import vl_version_for_vl_convert

    from ..sessions.cache import atomic_write, root

    vlc_version = getattr(vlc, "__version__", "?")
    path = (
        root().parents[1]
        / "xray"
        / f"jupyterchart-altair{alt.__version__}-vlc{vlc_version}-vl{vl_version_for_vl_convert()}.js"
    )
    if path.is_file() and isinstance(getattr(cls, "_esm", None), str):  # Altair keeps the bundle in `_esm`
        with contextlib.suppress(OSError, UnicodeDecodeError):
            cls._esm, cls._is_offline = path.read_text(encoding="utf-8"), True
            return
    cls.enable_offline()
    if isinstance(getattr(cls, "_esm", None), str):
        with contextlib.suppress(OSError):
            atomic_write(path, cls._esm.encode("utf-8"))


_WARM: threading.Thread | None = None


def warm_up(interactive: bool = True) -> threading.Thread | None:
    """Load what drawing needs in a thread, while the X-ray is built: altair (and the jsonschema it validates
    with: seconds on a cold start), the widget's offline JavaScript (vl-convert bundles ~1 MB of Vega for
    JupyterChart: seconds, once per process) and vl-convert's JavaScript engine (~1 s on first use). vl-convert
    releases the GIL, so this overlaps the X-ray's own work. `XRayPlot` waits for it before using any of them."""
    global _WARM
    if _WARM is not None:
        return _WARM

    def run():
        with contextlib.suppress(Exception):  # only a warm-up: the real calls report their own errors
            alt = _altair()
            if _has_vl_convert():
                if interactive:
                    import anywidget  # noqa: F401

                    enable_offline(alt)
                import vl_convert as vlc

                vlc.vegalite_to_svg({"mark": "point", "data": {"values": [{"a": 1}]}})

    _WARM = threading.Thread(target=run, name="rlm-xray-warm-up", daemon=True)
    _WARM.start()
    return _WARM


def _wait_warm_up() -> None:
    if _WARM is not None and _WARM is not threading.current_thread():
        _WARM.join()


def _has_vl_convert() -> bool:
    try:
        import vl_convert  # noqa: F401
    except ImportError:
        return False
    return True


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    ip = get_ipython()
    return ip is not None and getattr(ip, "kernel", None) is not None


def plot(
    xr,
    *,
    interactive: bool | None = None,
    width: int = 720,
    height: int = 280,
    turns: tuple[int, int] | None = None,
    max_buckets: int = MAX_BUCKETS,
) -> XRayPlot:
    """interactive: None = when running in a Jupyter kernel with anywidget installed. turns=(first, last): only
    that range. max_buckets: sessions with more turns are drawn as that many min-max bands (events stay exact)."""
    if interactive is None:
        try:
            import anywidget  # noqa: F401

            interactive = _in_kernel()
        except ImportError:
            interactive = False

    def draw(static: bool = False):
        return chart(xr, width=width, height=height, turns=turns, max_buckets=max_buckets, static=static)

    return XRayPlot(xr, draw(), bool(interactive), static_chart=lambda: draw(static=True))
