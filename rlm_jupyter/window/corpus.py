"""`rj.xray_corpus(ctx)`: the X-ray of every session at once, one row per session, ranked by what it lost.

Built for thousands of sessions (3,000 in under 2 s, benchmarks/batch.py): sessions with no event (no boundary row,
every row still in the window: most sessions) are measured in one polars pass over the whole table; for those with
a compaction, prune or rewind, `events.find_events` (what core.XRay runs: a pass over Python lists) finds what each
removed, and the removed rows of all of them are summed and searched for findings (`losses._regex_findings`, the
same regexes and caps) in one frame. tests/test_batch_corpus.py checks every row against the one-session X-ray.
A session whose events cannot be read is a row with its `xray_error`; the others go on.
"""

from __future__ import annotations

from html import escape

from ..context.errors import ArgumentError

CATEGORIES = ("decision", "rejected", "constraint", "failure")
# findings columns of a row: decisions, rejected approaches, constraints, errors (failed commands, tracebacks)
_FINDING_COLUMN = {"decision": "decisions", "rejected": "rejected", "constraint": "constraints", "failure": "errors"}
COLUMNS = {
    "session_id": "String",
    "format": "String",
    "title": "String",
    "path": "String",
    "messages": "Int64",
    "turns": "Int64",
    "peak_context": "Int64",
    "peak_source": "String",
    "compactions": "Int64",
    "prunes": "Int64",
    "rewinds": "Int64",
    "removed_messages": "Int64",
    "removed_tool_outputs": "Int64",
    "tokens_removed": "Int64",
    "decisions": "Int64",
    "rejected": "Int64",
    "constraints": "Int64",
    "errors": "Int64",
    "xray_error": "String",
}


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
        return (
            f"<CorpusXRay {self.df.height} sessions: {lost.height} lost messages to "
            f"{int(self.df['compactions'].sum())} compactions, {int(self.df['prunes'].sum())} prunes, "
            f"{int(self.df['rewinds'].sum())} rewinds; {int(lost['decisions'].sum())} decisions among the "
            f"removed>"
        )

    def _repr_html_(self) -> str:
        head = self.df.head(50).drop("path")
        rows = "".join(
            "<tr>" + "".join(f"<td>{escape('' if v is None else str(v))[:80]}</td>" for v in r) + "</tr>"
            for r in head.iter_rows()
        )
        cols = "".join(f"<th>{escape(c)}</th>" for c in head.columns)
        return (
            f"<div><p>{escape(repr(self))}</p><table><thead><tr>{cols}</tr></thead><tbody>{rows}</tbody></table></div>"
        )


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
    orig = ctx.table
    table = orig.with_columns(
        _full_tokens().alias("tokens"),
        _output_tokens().alias("output_tokens"),
        pl.int_range(pl.len(), dtype=pl.Int64).over("session_id").alias("local"),
    )
    sessions = ctx.sessions
    # which sessions had anything leave the window (a boundary row, a row the loader marked out of context, or a
    # window event the loader recorded)
    eventful = sorted(
        table.group_by("session_id")
        .agg(
            (
                pl.col("boundary").is_not_null()
                | ~pl.col("in_context").fill_null(True)
                | pl.col("window_event").is_not_null()
            )
            .any()
            .alias("e")
        )
        .filter(pl.col("e"))["session_id"]
        .to_list()
    )
    df = _quiet_rows(table, sessions)
    if eventful:
        df = df.update(_eventful_rows(table, orig, sessions, eventful), on="session_id", how="left")
    df = df.select(list(COLUMNS)).cast({k: getattr(pl, v) for k, v in COLUMNS.items()})
    df = df.sort(["tokens_removed", "decisions", "compactions", "messages"], descending=True, nulls_last=True)
    return CorpusXRay(ctx, df)


def _full_tokens():
    """A row's tokens as core.XRay counts them: the full text of fields the loader capped (see XRay.__init__)."""
    import polars as pl

    kept_out = pl.col("tool_output").str.len_bytes().fill_null(0)
    out_bytes = pl.max_horizontal(pl.col("tool_output_bytes").fill_null(0), kept_out)
    cut = (out_bytes - kept_out) + (
        pl.col("text_bytes").fill_null(0) - pl.col("text").str.len_bytes().fill_null(0)
    ).clip(lower_bound=0)
    return (pl.col("tokens") + (cut + 3) // 4).cast(pl.Int64)


def _output_tokens():
    import polars as pl

    kept_out = pl.col("tool_output").str.len_bytes().fill_null(0)
    return ((pl.max_horizontal(pl.col("tool_output_bytes").fill_null(0), kept_out) + 3) // 4).cast(pl.Int64)


def _quiet_rows(table, sessions):
    """Every session measured in one pass, as if nothing left its window (right for sessions without events;
    the eventful ones are then updated from their events)."""
    import polars as pl

    step = (pl.col("role") == "assistant") & (pl.col("origin").fill_null("model") != "harness")
    # the estimated window of a step: every row before it (nothing left the window in these sessions)
    per = (
        table.with_columns((pl.col("tokens").cum_sum().over("session_id") - pl.col("tokens")).alias("_cum"))
        .group_by("session_id")
        .agg(
            step.sum().cast(pl.Int64).alias("turns"),
            pl.col("context_tokens").filter(step).max().alias("_recorded"),
            pl.col("_cum").filter(step).max().alias("_estimated"),
        )
    )
    per = per.with_columns(
        pl.coalesce("_recorded", "_estimated").cast(pl.Int64).alias("peak_context"),
        pl.when(pl.col("_recorded").is_not_null())
        .then(pl.lit("recorded"))
        .when(pl.col("_estimated").is_not_null())
        .then(pl.lit("estimated"))
        .alias("peak_source"),
    )
    zero = [
        pl.lit(0, dtype=pl.Int64).alias(c)
        for c in (
            "compactions",
            "prunes",
            "rewinds",
            "removed_messages",
            "removed_tool_outputs",
            "tokens_removed",
            "decisions",
            "rejected",
            "constraints",
            "errors",
        )
    ]
    return (
        sessions.select("session_id", "format", "title", "path", "messages")
        .join(per.drop("_recorded", "_estimated"), on="session_id", how="left")
        .with_columns(*zero, pl.lit(None, dtype=pl.String).alias("xray_error"))
    )


def _eventful_rows(table, orig, sessions, eventful: list[str]):
    """The sessions with events: find_events per session (what core.XRay runs, a pass over Python lists), then the
    removed rows of all of them in one frame, so the sums and the regex findings are one polars pass each."""
    import polars as pl

    from .events import columns, find_events
    from .losses import _regex_findings

    parts = table.filter(pl.col("session_id").is_in(eventful)).partition_by("session_id", as_dict=True)
    ev_sid, ev_id, ev_kind, rm_ev, rm_local = [], [], [], [], []
    counts: dict[str, dict] = {}
    errors: dict[str, str] = {}
    for (sid,), part in parts.items():
        try:
            found = find_events(columns(part))
        except Exception as e:  # one session the X-ray cannot read must not stop the corpus
            errors[sid] = f"{type(e).__name__}: {e}"
            continue
        c = counts[sid] = {"compactions": 0, "prunes": 0, "rewinds": 0, "removed_messages": 0}
        for e in found.events:
            g = len(ev_sid)
            ev_sid.append(sid)
            ev_id.append(g)
            ev_kind.append("prune" if e.clears else e.kind)  # every way of clearing outputs sums as a prune
            c["prunes" if e.clears else "rewinds" if e.kind == "rewind" else "compactions"] += 1
            if not e.clears:
                c["removed_messages"] += len(e.removed)
            rm_ev += [g] * len(e.removed)
            rm_local += e.removed
    events = pl.DataFrame(
        {"session_id": ev_sid, "event": ev_id, "kind": ev_kind},
        schema={"session_id": pl.String, "event": pl.Int64, "kind": pl.String},
    )
    removed = (
        pl.DataFrame({"event": rm_ev, "local": rm_local}, schema={"event": pl.Int64, "local": pl.Int64})
        .join(events, on="event", how="left")
        .join(
            table.select(
                "session_id",
                "local",
                "id",
                "position",
                "role",
                "tool_status",
                "tokens",
                "output_tokens",
                "text",
                "thinking",
                "tool_output",
            ),
            on=["session_id", "local"],
            how="left",
        )
    )
    sums = removed.group_by("session_id").agg(
        (pl.col("role") == "tool").sum().cast(pl.Int64).alias("removed_tool_outputs"),
        pl.when(pl.col("kind") == "prune")
        .then(pl.min_horizontal("output_tokens", "tokens"))
        .otherwise(pl.col("tokens"))
        .sum()
        .cast(pl.Int64)
        .alias("tokens_removed"),
    )
    found = _regex_findings(removed).join(events.select("event", "session_id"), on="event", how="left")
    per_cat = found.group_by("session_id").agg(
        *[(pl.col("category") == cat).sum().cast(pl.Int64).alias(col) for cat, col in _FINDING_COLUMN.items()]
    )
    base = pl.DataFrame(
        [{"session_id": sid, **counts.get(sid, {}), "xray_error": errors.get(sid)} for sid in eventful],
        schema={
            "session_id": pl.String,
            "compactions": pl.Int64,
            "prunes": pl.Int64,
            "rewinds": pl.Int64,
            "removed_messages": pl.Int64,
            "xray_error": pl.String,
        },
    )
    out = (
        base.join(sums, on="session_id", how="left")
        .join(per_cat, on="session_id", how="left")
        .with_columns(
            pl.col(c).fill_null(0)
            for c in ("removed_tool_outputs", "tokens_removed", "decisions", "rejected", "constraints", "errors")
        )
    )
    # The peak of a session that records no usage is the estimated window, which only the full X-ray knows
    # once messages left it: those (rare) sessions get it.
    unrecorded = (
        table.filter(pl.col("session_id").is_in(eventful))
        .group_by("session_id")
        .agg(pl.col("context_tokens").is_not_null().any().alias("r"))
        .filter(~pl.col("r"))["session_id"]
    )
    peaks = [_estimated_peak(orig, sessions, sid) for sid in unrecorded.to_list() if sid not in errors]
    if peaks:
        out = out.join(
            pl.DataFrame(
                peaks,
                schema={"session_id": pl.String, "peak_context": pl.Int64, "peak_source": pl.String},
                orient="row",
            ),
            on="session_id",
            how="left",
        )
    return out


def _estimated_peak(table, sessions, sid: str) -> tuple:
    """The largest estimated window of one session, from its full X-ray."""
    import polars as pl

    from .core import XRay

    part = table.filter(pl.col("session_id") == sid)  # the context's own table: XRay sizes the rows itself
    try:
        xr = XRay(_OneSession(part, sessions.filter(pl.col("session_id") == sid)), sid)
    except Exception:
        return sid, None, None
    return sid, int(xr.turns["window_tokens"].max()) if xr.turns.height else None, "estimated"


# ---- the ranking chart ------------------------------------------------------------------------------------------


def ranking_chart(df, *, top: int = 40, width: int = 720):
    """Sessions ranked by tokens removed (bars), coloured by decisions found among the removed; click = pick."""
    from .plot import _altair

    alt = _altair()
    data = (
        df.head(top)
        .select(
            "session_id",
            "format",
            "title",
            "turns",
            "peak_context",
            "compactions",
            "prunes",
            "rewinds",
            "tokens_removed",
            "decisions",
            "rejected",
            "errors",
        )
        .to_dicts()
    )
    for r in data:
        r["label"] = f"{(r['title'] or r['session_id'])[:40]} ({r['session_id'][:8]})"
    pick = alt.selection_point(name="session_pick", fields=["session_id"], on="click", empty=False)
    return (
        alt.Chart(
            alt.Data(values=data),
            title=alt.Title(
                "What each session lost",
                subtitle=f"top {min(top, df.height)} of {df.height} sessions by tokens removed "
                "from the window; click a bar for that session's X-ray",
            ),
        )
        .mark_bar()
        .encode(
            y=alt.Y("label:N", sort="-x", title=None),
            x=alt.X("tokens_removed:Q", title="tokens removed"),
            color=alt.Color("decisions:Q", title="decisions lost", scale=alt.Scale(scheme="reds")),
            opacity=alt.condition(pick, alt.value(1.0), alt.value(0.75)),
            tooltip=[
                "session_id:N",
                "format:N",
                "turns:Q",
                "peak_context:Q",
                "compactions:Q",
                "prunes:Q",
                "rewinds:Q",
                "tokens_removed:Q",
                "decisions:Q",
                "rejected:Q",
                "errors:Q",
            ],
        )
        .add_params(pick)
        .properties(width=width, height=max(120, 18 * len(data)))
    )


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
        bundle = {f"application/vnd.vegalite.v{major}+json": self.chart.to_dict(), "text/plain": repr(self.corpus)}
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
            self._handle = display(_Html("<small>Click a session's bar to open its X-ray.</small>"), display_id=True)
