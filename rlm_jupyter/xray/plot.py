"""`xr.plot()`: context tokens per turn, the model's window limit, every compaction / prune / rewind marked.

Built on Vega-Altair (imported here, on first plot): a declarative Vega-Lite chart whose `JupyterChart` is an
anywidget, so a click selection is readable from Python. Interactive in a kernel: hover a turn for its window
(size, messages, events, flags), click an event rule to show its losses below the chart, drag to zoom.
Without a kernel (a saved notebook, nbconvert, GitHub) the same chart renders statically: the display bundle
carries the Vega-Lite spec and, when `vl-convert-python` is installed, an SVG rendered without a browser.
What a format does not record is said on the chart (subtitle) and per turn (flags), not drawn as if known.
"""

from __future__ import annotations

from html import escape

KIND_COLORS = {"compaction": "#d62728", "prune": "#ff7f0e", "rewind": "#9467bd"}


def _altair():
    try:
        import altair as alt
    except ImportError as e:
        raise ImportError("xr.plot() needs altair: pip install 'altair>=6,<7' (or the lab extra); the other X-ray "
                          "views (turns, window, losses, ask) work without it") from e
    return alt


def chart(xr, *, width: int = 720, height: int = 280):
    """The Altair chart (a layer chart) of one X-ray."""
    import polars as pl

    alt = _altair()
    t = xr.turns
    turns = t.with_columns(
        pl.col("events").list.join(", ").alias("events"),
        pl.col("flags").list.join(", ").alias("flags"),
        pl.col("ts").cast(pl.String).alias("ts"),
    ).select("turn", "id", "ts", "context_tokens", "window_tokens", "window_messages", "events", "flags")
    long = turns.unpivot(index=["turn", "id", "ts", "window_messages", "events", "flags"],
                         on=["context_tokens", "window_tokens"], variable_name="measure", value_name="tokens")
    long = long.with_columns(pl.col("measure").replace_strict(
        {"context_tokens": "recorded by the agent", "window_tokens": "rebuilt window (estimated)"}))
    data = alt.Data(values=long.filter(pl.col("tokens").is_not_null()).to_dicts())
    x = alt.X("turn:Q", title="turn (model step)", scale=alt.Scale(domainMin=0))
    measures = alt.Scale(domain=["recorded by the agent", "rebuilt window (estimated)"], range=["#1f77b4", "#7f7f7f"])
    color = alt.Color("measure:N", title=None, scale=measures, legend=alt.Legend(orient="top"))
    hover = alt.selection_point(name="turn_hover", fields=["turn"], on="pointerover", nearest=True, empty=False)
    tooltip = [alt.Tooltip("turn:Q"), alt.Tooltip("measure:N"), alt.Tooltip("tokens:Q", format=","),
               alt.Tooltip("window_messages:Q", title="messages in window"), alt.Tooltip("events:N"),
               alt.Tooltip("flags:N"), alt.Tooltip("id:N", title="step id"), alt.Tooltip("ts:N")]
    base = alt.Chart(data).encode(x=x, y=alt.Y("tokens:Q", title="context tokens"), color=color)
    lines = base.mark_line(interpolate="step-after", strokeWidth=1.5).encode(
        strokeDash=alt.condition("datum.measure == 'rebuilt window (estimated)'", alt.value([4, 3]), alt.value([1, 0])))
    points = base.mark_point(filled=True).encode(
        color=alt.Color("measure:N", scale=measures, legend=None),  # one legend, drawn by the lines
        size=alt.condition(hover, alt.value(90), alt.value(18)), tooltip=tooltip).add_params(hover).properties(
        name="xray_turns")
    layers = [lines, points]
    if xr.limit:
        limit = alt.Chart(alt.Data(values=[{"limit": xr.limit, "label": f"window limit {xr.limit:,}"}]))
        layers += [limit.mark_rule(color="black", strokeDash=[6, 4]).encode(y="limit:Q", tooltip=["label:N"]),
                   limit.mark_text(align="left", dx=4, dy=-6, fontSize=10).encode(y="limit:Q", text="label:N",
                                                                                   x=alt.value(0))]
    ev = xr.events
    if ev.height:
        last_turn = t["turn"].max() or 0
        evd = ev.with_columns(
            (pl.col("turn").fill_null(last_turn + 1) - 0.5).alias("x"),
            pl.concat_str([pl.lit("#"), pl.col("event").cast(pl.String), pl.lit(" "), pl.col("kind")]).alias("label"),
        ).select("event", "kind", "x", "label", "removed_messages", "removed_tool_outputs", "removed_tokens",
                 "pre_tokens", "post_tokens", "how", "note")
        pick = alt.selection_point(name="event_pick", fields=["event"], on="click", empty=False)
        rules = alt.Chart(alt.Data(values=evd.to_dicts())).mark_rule(strokeWidth=3).encode(
            x=alt.X("x:Q"),
            color=alt.Color("kind:N", title="event", scale=alt.Scale(domain=list(KIND_COLORS),
                                                                      range=list(KIND_COLORS.values()))),
            strokeDash=alt.condition("datum.how == 'inferred'", alt.value([3, 3]), alt.value([1, 0])),
            opacity=alt.condition(pick, alt.value(1.0), alt.value(0.55)),
            tooltip=[alt.Tooltip("label:N", title="event"), alt.Tooltip("removed_messages:Q"),
                     alt.Tooltip("removed_tool_outputs:Q"), alt.Tooltip("removed_tokens:Q", format=","),
                     alt.Tooltip("pre_tokens:Q", title="context before", format=","),
                     alt.Tooltip("post_tokens:Q", title="context after", format=","), alt.Tooltip("how:N"),
                     alt.Tooltip("note:N")],
        ).add_params(pick).properties(name="xray_events")  # Vega class "xray_events_marks"
        layers.append(rules)
    subtitle = [f"{xr.format} {xr.producer}".strip(), *xr.notes]
    if t.height and t["context_tokens"].null_count() == t.height:
        subtitle.append("this format records no token usage: only the estimated window is drawn")
    title = alt.TitleParams(f"Context X-ray of {xr.session_id}", subtitle=subtitle, anchor="start", fontSize=13,
                            subtitleFontSize=10)
    return (alt.layer(*layers).resolve_scale(color="independent")
            .properties(width=width, height=height, title=title).interactive(bind_y=False))


class XRayPlot:
    """What `xr.plot()` returns. `chart`: the Altair chart; `widget`: its `alt.JupyterChart` (interactive mode);
    `selected_event`: the event number clicked last (None when nothing is selected); `to_dict()`: the spec;
    `save(path)`: .html / .svg / .png / .json (svg and png need vl-convert-python)."""

    def __init__(self, xr, chart, interactive: bool):
        self.xray, self.chart, self.interactive = xr, chart, interactive
        self.widget = None
        self._handle = None
        if interactive:
            alt = _altair()
            if _has_vl_convert():
                alt.JupyterChart.enable_offline()  # the widget's JavaScript from vl-convert: no CDN needed
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
        return self.chart.to_dict()

    def save(self, path) -> None:
        self.chart.save(str(path))

    def svg(self) -> str | None:
        if not _has_vl_convert():
            return None
        import vl_convert as vlc
        from altair.utils._importers import vl_version_for_vl_convert

        return vlc.vegalite_to_svg(self.chart.to_dict(), vl_version=vl_version_for_vl_convert())

    def png(self, scale: float = 1.0) -> bytes | None:
        """The chart as PNG bytes (vl-convert), or None without it."""
        if not _has_vl_convert():
            return None
        import vl_convert as vlc
        from altair.utils._importers import vl_version_for_vl_convert

        return vlc.vegalite_to_png(self.chart.to_dict(), scale=scale, vl_version=vl_version_for_vl_convert())

    def _static_bundle(self) -> dict:
        import json

        alt = _altair()
        spec = self.chart.to_dict()
        major = alt.SCHEMA_VERSION.lstrip("v").split(".")[0]
        bundle = {f"application/vnd.vegalite.v{major}+json": spec,
                  "text/plain": f"<XRayPlot {self.xray.session_id}: {self.xray.turns.height} turns, "
                                f"{self.xray.events.height} events>"}
        svg = self.svg()
        if svg is not None:
            # PNG too: JupyterLab shows SVG only in trusted notebooks, PNG in any (a shared notebook is untrusted)
            import base64

            bundle["image/svg+xml"] = svg
            bundle["image/png"] = base64.b64encode(self.png() or b"").decode()
        else:
            bundle["text/html"] = (f"<pre>{escape(bundle['text/plain'])}</pre><details><summary>Vega-Lite spec"
                                   f"</summary><pre>{escape(json.dumps(spec)[:20000])}</pre></details>")
        return bundle

    def _repr_mimebundle_(self, include=None, exclude=None):
        if self.widget is None:
            return self._static_bundle()
        bundle = dict(self._static_bundle())
        widget = self.widget._repr_mimebundle_(include=include, exclude=exclude) or {}
        if isinstance(widget, tuple):  # (data, metadata)
            widget = widget[0]
        # the widget view first where a kernel is live; the static chart and its text stay as the fallback
        bundle.update({k: v for k, v in widget.items() if k != "text/plain"})
        return bundle

    def _ipython_display_(self) -> None:
        from IPython.display import display

        if self.widget is None:
            display(self._static_bundle(), raw=True)
            return
        display(self._repr_mimebundle_(), raw=True)
        self._handle = display(_Html("<small>Click an event rule to see what it removed.</small>"), display_id=True)

    def __repr__(self) -> str:
        return self._static_bundle()["text/plain"]


class _Html:
    def __init__(self, html: str):
        self.html = html

    def _repr_html_(self) -> str:
        return self.html


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


def plot(xr, *, interactive: bool | None = None, width: int = 720, height: int = 280) -> XRayPlot:
    """interactive: None = when running in a Jupyter kernel with anywidget installed."""
    if interactive is None:
        try:
            import anywidget  # noqa: F401

            interactive = _in_kernel()
        except ImportError:
            interactive = False
    return XRayPlot(xr, chart(xr, width=width, height=height), bool(interactive))
