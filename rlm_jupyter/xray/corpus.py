"""`rj.xray_corpus(ctx)`: the X-ray of every session at once, one row per session, ranked by what it lost.

Sessions with no event (no boundary row, every row still in the window: most sessions) are measured in one polars
pass over the whole table; only sessions with a compaction, prune or rewind get the full per-session X-ray
(core.XRay on that session's rows, found by one `partition_by`, not a filter per session) and its regex losses
(losses.py, no sub-model). A session whose X-ray fails is a row with its `error`, and the others go on.
"""

from __future__ import annotations

from html import escape

from ..context.errors import ArgumentError

CATEGORIES = ("decision", "rejected", "constraint", "failure")
# findings columns of a row: decisions, rejected approaches, constraints, errors (failed commands, tracebacks)
_FINDING_COLUMN = {"decision": "decisions", "rejected": "rejected", "constraint": "constraints", "failure": "errors"}
COLUMNS = {"session_id": "String", "format": "String", "title": "String", "path": "String", "messages": "Int64",
           "turns": "Int64", "peak_context": "Int64", "peak_source": "String", "compactions": "Int64",
           "prunes": "Int64", "rewinds": "Int64", "removed_messages": "Int64", "removed_tool_outputs": "Int64",
           "tokens_removed": "Int64", "decisions": "Int64", "rejected": "Int64", "constraints": "Int64",
           "errors": "Int64", "xray_error": "String"}


class _OneSession:
    """What XRay reads of a context (table, sessions, len), for one session's rows."""

    def __init__(self, table, sessions):
        self.table, self.sessions = table, sessions

    def __len__(self) -> int:
        return self.table.height


class CorpusXRay:
    """`df`: one row per session, ranked (most tokens removed first, then most decisions among them); `xray(i or
    session_id)`: that session's full X-ray; `plot()`: the ranking chart, a click opens the session's X-ray; the
    frame's rows feed `rj.batch` (add a `question` column)."""

    def __init__(self, ctx, df):
        self.ctx, self.df = ctx, df

    def xray(self, session):
        from . import xray

        sid = self.df["session_id"][session] if isinstance(session, int) else session
        return xray(self.ctx, sid)

    def plot(self, *, top: int = 40, interactive: bool | None = None, width: int = 720):
        from .plot import _in_kernel

        if interactive is None:
            try:
                import anywidget  # noqa: F401

                interactive = _in_kernel()
            except ImportError:
                interactive = False
        return CorpusPlot(self, ranking_chart(self.df, top=top, width=width), bool(interactive))

    def __len__(self) -> int:
        return self.df.height

    def __repr__(self) -> str:
        import polars as pl

        lost = self.df.filter(pl.col("tokens_removed") > 0)
        return (f"<CorpusXRay {self.df.height} sessions: {lost.height} lost messages to "
                f"{int(self.df['compactions'].sum())} compactions, {int(self.df['prunes'].sum())} prunes, "
                f"{int(self.df['rewinds'].sum())} rewinds; {int(lost['decisions'].sum())} decisions among the "
                f"removed>")

    def _repr_html_(self) -> str:
        head = self.df.head(50).drop("path")
        rows = "".join("<tr>" + "".join(f"<td>{escape('' if v is None else str(v))[:80]}</td>" for v in r) + "</tr>"
                       for r in head.iter_rows())
        cols = "".join(f"<th>{escape(c)}</th>" for c in head.columns)
        return (f"<div><p>{escape(repr(self))}</p><table><thead><tr>{cols}</tr></thead><tbody>{rows}</tbody>"
                "</table></div>")


def xray_corpus(ctx) -> CorpusXRay:
    """One row per session of `ctx` (a Context, or paths for `rj.load`): turns, peak context, compactions, prunes,
    rewinds, messages and tokens removed, and decisions / rejected approaches / constraints / errors found among
    the removed messages (regex, cited in `xray(session).losses()`)."""
    import polars as pl

    if not hasattr(ctx, "table"):
        from ..context import Context

        ctx = Context.load(*(ctx if isinstance(ctx, (list, tuple)) else [ctx]))
    if len(ctx) == 0:
        raise ArgumentError("xray_corpus: the context has no messages; load sessions first (rj.load(paths))")
    table = ctx.table
    sessions = ctx.sessions
    # which sessions had anything leave the window (a boundary row, or a row the loader marked out of context)
    eventful = set(table.group_by("session_id").agg(
        (pl.col("boundary").is_not_null() | ~pl.col("in_context").fill_null(True)).any().alias("e"))
        .filter(pl.col("e"))["session_id"].to_list())
    base = _quiet_rows(table, sessions)
    rows = []
    if eventful:
        parts = table.filter(pl.col("session_id").is_in(sorted(eventful))).partition_by("session_id", as_dict=True)
        for (sid,), part in parts.items():
            rows.append(_eventful_row(sid, part, sessions.filter(pl.col("session_id") == sid)))
    schema = {k: getattr(pl, v) for k, v in COLUMNS.items()}
    full = pl.DataFrame(rows, schema=schema) if rows else pl.DataFrame(schema=schema)
    quiet = base.filter(~pl.col("session_id").is_in(sorted(eventful))).select(list(COLUMNS)).cast(schema)
    meta = sessions.select("session_id", "format", "title", "path", "messages")
    full = full.drop("format", "title", "path", "messages").join(meta, on="session_id", how="left").select(
        list(COLUMNS))
    df = pl.concat([full, quiet], how="vertical").sort(
        ["tokens_removed", "decisions", "compactions", "messages"], descending=True, nulls_last=True)
    return CorpusXRay(ctx, df)


def _quiet_rows(table, sessions):
    """Every session measured in one pass, as if nothing left its window (right for sessions without events)."""
    import polars as pl

    step = (pl.col("role") == "assistant") & (pl.col("origin").fill_null("model") != "harness")
    # sizes as core.XRay counts them: the full text of fields the loader capped (see XRay.__init__)
    kept_out = pl.col("tool_output").str.len_bytes().fill_null(0)
    out_bytes = pl.max_horizontal(pl.col("tool_output_bytes").fill_null(0), kept_out)
    cut = ((out_bytes - kept_out)
           + (pl.col("text_bytes").fill_null(0) - pl.col("text").str.len_bytes().fill_null(0)).clip(lower_bound=0))
    full = pl.col("tokens") + (cut + 3) // 4
    # the estimated window of a step: every row before it (nothing left the window in these sessions)
    per = (table.with_columns((full.cum_sum().over("session_id") - full).alias("_cum"))
           .group_by("session_id")
           .agg(step.sum().cast(pl.Int64).alias("turns"),
                pl.col("context_tokens").filter(step).max().alias("_recorded"),
                pl.col("_cum").filter(step).max().alias("_estimated")))
    per = per.with_columns(
        pl.coalesce("_recorded", "_estimated").cast(pl.Int64).alias("peak_context"),
        pl.when(pl.col("_recorded").is_not_null()).then(pl.lit("recorded"))
        .when(pl.col("_estimated").is_not_null()).then(pl.lit("estimated")).alias("peak_source"))
    zero = [pl.lit(0, dtype=pl.Int64).alias(c) for c in ("compactions", "prunes", "rewinds", "removed_messages",
                                                          "removed_tool_outputs", "tokens_removed", "decisions",
                                                          "rejected", "constraints", "errors")]
    return (sessions.select("session_id", "format", "title", "path", "messages")
            .join(per.drop("_recorded", "_estimated"), on="session_id", how="left")
            .with_columns(*zero, pl.lit(None, dtype=pl.String).alias("xray_error")))


def _eventful_row(sid: str, part, session_row) -> dict:
    import polars as pl

    from .core import XRay
    from .losses import losses

    row = {c: 0 for c, t in COLUMNS.items() if t == "Int64"}
    row.update(session_id=sid, peak_source=None, xray_error=None)
    try:
        xr = XRay(_OneSession(part, session_row), sid)
        turns = xr.turns
        recorded = turns["context_tokens"].drop_nulls()
        if recorded.len():
            row.update(peak_context=int(recorded.max()), peak_source="recorded")
        elif turns.height:
            row.update(peak_context=int(turns["window_tokens"].max()), peak_source="estimated")
        row["turns"] = turns.height
        ev = xr.events
        for kind, col in (("compaction", "compactions"), ("prune", "prunes"), ("rewind", "rewinds")):
            row[col] = ev.filter(pl.col("kind") == kind).height
        row.update(removed_messages=int(ev["removed_messages"].sum() or 0),
                   removed_tool_outputs=int(ev["removed_tool_outputs"].sum() or 0),
                   tokens_removed=int(ev["removed_tokens"].sum() or 0))
        if ev.height:
            found = losses(xr, sub_model=None).findings
            for cat, col in _FINDING_COLUMN.items():
                row[col] = found.filter(pl.col("category") == cat).height
    except Exception as e:  # one session the X-ray cannot read must not stop the corpus
        row["xray_error"] = f"{type(e).__name__}: {e}"
    return row


# ---- the ranking chart ------------------------------------------------------------------------------------------

def ranking_chart(df, *, top: int = 40, width: int = 720):
    """Sessions ranked by tokens removed (bars), coloured by decisions found among the removed; click = pick."""
    from .plot import _altair

    alt = _altair()
    data = df.head(top).select("session_id", "format", "title", "turns", "peak_context", "compactions", "prunes",
                               "rewinds", "tokens_removed", "decisions", "rejected", "errors").to_dicts()
    for r in data:
        r["label"] = f"{(r['title'] or r['session_id'])[:40]} ({r['session_id'][:8]})"
    pick = alt.selection_point(name="session_pick", fields=["session_id"], on="click", empty=False)
    return (alt.Chart(alt.Data(values=data), title=alt.Title(
        "What each session lost", subtitle=f"top {min(top, df.height)} of {df.height} sessions by tokens removed "
                                           "from the window; click a bar for that session's X-ray"))
            .mark_bar()
            .encode(y=alt.Y("label:N", sort="-x", title=None), x=alt.X("tokens_removed:Q", title="tokens removed"),
                    color=alt.Color("decisions:Q", title="decisions lost", scale=alt.Scale(scheme="reds")),
                    opacity=alt.condition(pick, alt.value(1.0), alt.value(0.75)),
                    tooltip=["session_id:N", "format:N", "turns:Q", "peak_context:Q", "compactions:Q", "prunes:Q",
                             "rewinds:Q", "tokens_removed:Q", "decisions:Q", "rejected:Q", "errors:Q"])
            .add_params(pick).properties(width=width, height=max(120, 18 * len(data))))


class CorpusPlot:
    """What `corpus.plot()` returns: the ranking chart; in a kernel a click on a bar shows that session's X-ray
    (its summary and its own plot) below the chart. `selected_session`: the session clicked last."""

    def __init__(self, corpus: CorpusXRay, chart, interactive: bool):
        self.corpus, self.chart, self.interactive = corpus, chart, interactive
        self.widget = None
        self._handle = None
        if interactive:
            from .plot import _altair, _has_vl_convert

            alt = _altair()
            if _has_vl_convert():
                alt.JupyterChart.enable_offline()
            self.widget = alt.JupyterChart(chart, embed_options={"renderer": "svg", "actions": False})
            if "session_pick" in self.widget.selections.trait_names():
                self.widget.selections.observe(self._on_pick, ["session_pick"])

    @property
    def selected_session(self) -> str | None:
        if self.widget is None or "session_pick" not in self.widget.selections.trait_names():
            return None
        value = self.widget.selections.session_pick.value
        return str(value[0]["session_id"]) if value else None

    def _on_pick(self, change) -> None:
        if self._handle is None:
            return
        sid = self.selected_session
        if sid is None:
            from .plot import _Html

            self._handle.update(_Html("<small>Click a session's bar to open its X-ray.</small>"))
            return
        xr = self.corpus.xray(sid)
        self._handle.update(xr)

    def to_dict(self) -> dict:
        return self.chart.to_dict()

    def save(self, path) -> None:
        self.chart.save(str(path))

    def _repr_mimebundle_(self, include=None, exclude=None):
        from .plot import _altair

        alt = _altair()
        major = alt.SCHEMA_VERSION.lstrip("v").split(".")[0]
        bundle = {f"application/vnd.vegalite.v{major}+json": self.chart.to_dict(),
                  "text/plain": repr(self.corpus)}
        if self.widget is not None:
            widget = self.widget._repr_mimebundle_(include=include, exclude=exclude) or {}
            if isinstance(widget, tuple):
                widget = widget[0]
            bundle.update({k: v for k, v in widget.items() if k != "text/plain"})
        return bundle

    def _ipython_display_(self) -> None:
        from IPython.display import display

        from .plot import _Html

        display(self._repr_mimebundle_(), raw=True)
        if self.widget is not None:
            self._handle = display(_Html("<small>Click a session's bar to open its X-ray.</small>"),
                                   display_id=True)
