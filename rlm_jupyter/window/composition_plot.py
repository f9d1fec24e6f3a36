"""`xr.composition_plot()`: a stacked chart of what filled the window at each turn (composition.py), one band
per kind of content. Hover a band: its tokens and the largest messages of that band in that turn's window.

The same Vega-Altair machinery and static fallback as `xr.plot()` (plot.py's `XRayPlot`: the widget in a kernel,
the Vega-Lite spec plus an SVG/PNG from vl-convert in a saved notebook). A long session is drawn on at most
`max_turns` evenly spaced turns (the frame keeps every turn); the subtitle says so.
"""

from __future__ import annotations

from .composition import BAND_TITLES, BANDS, _session_meta, _top, _window_pieces, composition, notes
from .plot import XRayPlot, _altair, _in_kernel

BAND_COLORS = {
    "system_prompt": "#8c564b",
    "tool_definitions": "#e377c2",
    "memory": "#bcbd22",
    "user": "#1f77b4",
    "assistant": "#2ca02c",
    "tool_results": "#ff7f0e",
    "summaries": "#d62728",
    "unattributed": "#c7c7c7",
}
LISTED = 5  # messages listed per band in a tooltip


def _sampled_turns(n: int, max_turns: int) -> list[int]:
    if n <= max_turns:
        return list(range(1, n + 1))
    step = n / max_turns
    picked = sorted({min(n, 1 + int(k * step)) for k in range(max_turns)} | {n})
    return picked


def chart_data(xr, *, max_turns: int = 400) -> list[dict]:
    """One record per (turn, band) with tokens > 0 and the band's largest messages as msg1..msg5 / more."""
    import polars as pl

    c = composition(xr)
    meta = _session_meta(xr)
    turns = _sampled_turns(c.height, max_turns)
    sub = c.filter(pl.col("turn").is_in(turns))
    long = sub.unpivot(
        index=["turn", "context_tokens"], on=list(BANDS), variable_name="band", value_name="tokens"
    ).filter(pl.col("tokens") > 0)
    records = []
    by_turn: dict[int, dict[str, list[str]]] = {}
    counts: dict[tuple[int, str], int] = {}
    locals_ = dict(zip(xr.turns["turn"].to_list(), xr.turns["local"].to_list(), strict=True))
    for t in turns:
        pieces = _window_pieces(xr, locals_[t])
        per: dict[str, list[str]] = {}
        for band, n in pieces.group_by("band").len().iter_rows():
            counts[(t, band)] = n
        top = pieces.sort("t", descending=True).group_by("band", maintain_order=True).head(LISTED)
        for row in _top(xr, top, top.height).iter_rows(named=True):
            per.setdefault(row["band"], []).append(
                f"{row['role']} {row['id']} ({row['tokens']:,} tok): {row['excerpt']}"
            )
        by_turn[t] = per
    for row in long.iter_rows(named=True):
        t, band = row["turn"], row["band"]
        rec = {
            "turn": t,
            "band": BAND_TITLES[band],
            "tokens": row["tokens"],
            "recorded": row["context_tokens"],
            "messages": counts.get((t, band), 0),
        }
        listed = by_turn.get(t, {}).get(band, [])
        if band == "unattributed":
            listed = ["recorded prompt size minus what the session file lets us attribute"]
        elif band in meta:
            listed = [f"{BAND_TITLES[band]} recorded in the session's metadata ({meta[band]:,} tok)", *listed]
        for k in range(LISTED):
            rec[f"msg{k + 1}"] = listed[k] if k < len(listed) else ""
        more = rec["messages"] - len(listed)
        rec["more"] = f"and {more} more" if more > 0 and band != "unattributed" else ""
        rec["order"] = BANDS.index(band)
        records.append(rec)
    return records


def chart(xr, *, width: int = 720, height: int = 280, max_turns: int = 400):
    alt = _altair()
    records = chart_data(xr, max_turns=max_turns)
    n = xr.turns.height
    domain = [BAND_TITLES[b] for b in BANDS]
    color = alt.Color(
        "band:N",
        title=None,
        scale=alt.Scale(domain=domain, range=[BAND_COLORS[b] for b in BANDS]),
        legend=alt.Legend(orient="top", columns=4),
        sort=domain,
    )
    hover = alt.selection_point(name="band_hover", fields=["turn", "band"], on="pointerover", empty=False)
    tooltip = [
        alt.Tooltip("turn:Q"),
        alt.Tooltip("band:N"),
        alt.Tooltip("tokens:Q", format=","),
        alt.Tooltip("messages:Q", title="messages in band"),
        alt.Tooltip("recorded:Q", title="recorded prompt size", format=","),
    ]
    tooltip += [alt.Tooltip(f"msg{k + 1}:N", title=f"message {k + 1}") for k in range(LISTED)]
    tooltip.append(alt.Tooltip("more:N", title="…"))
    bars = (
        alt.Chart(alt.Data(values=records))
        .mark_bar(width={"band": 1} if n <= max_turns else 2)
        .encode(
            x=alt.X("turn:Q", title="turn (model step)", scale=alt.Scale(domain=[0, n + 1], nice=False)),
            y=alt.Y("sum(tokens):Q", stack="zero", title="tokens in the window (estimated by band)"),
            color=color,
            order=alt.Order("order:Q"),
            opacity=alt.condition(hover, alt.value(1.0), alt.value(0.85)),
            stroke=alt.condition(hover, alt.value("black"), alt.value(None)),
            tooltip=tooltip,
            detail=["msg1:N", "msg2:N", "msg3:N", "msg4:N", "msg5:N", "more:N", "messages:Q", "recorded:Q"],
        )
        .add_params(hover)
        .properties(name="composition_bands")
    )  # Vega class "composition_bands_marks"
    subtitle = [f"{xr.format} {xr.producer}".strip(), *notes(xr)]
    if n > max_turns:
        subtitle.append(f"{n:,} turns drawn on {max_turns} evenly spaced turns (xr.composition() has all)")
    title = alt.TitleParams(
        f"What filled the window: {xr.session_id}", subtitle=subtitle, anchor="start", fontSize=13, subtitleFontSize=10
    )
    return alt.layer(bars).properties(width=width, height=height, title=title)


class CompositionPlot(XRayPlot):
    """What `xr.composition_plot()` returns (`chart`, `widget`, `to_dict()`, `save(path)`, `svg()`, as XRayPlot)."""

    def _static_bundle(self) -> tuple[dict, dict]:
        if self._bundle is not None:
            return self._bundle
        data, meta = super()._static_bundle()
        data = {**data, "text/plain": f"<CompositionPlot {self.xray.session_id}: {self.xray.turns.height} turns>"}
        self._bundle = (data, meta)
        return self._bundle

    def _ipython_display_(self) -> None:
        self._show()


def plot(
    xr, *, interactive: bool | None = None, width: int = 720, height: int = 280, max_turns: int = 400
) -> CompositionPlot:
    if interactive is None:
        try:
            import anywidget  # noqa: F401

            interactive = _in_kernel()
        except ImportError:
            interactive = False
    return CompositionPlot(xr, chart(xr, width=width, height=height, max_turns=max_turns), bool(interactive))
