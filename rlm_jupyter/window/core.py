"""`XRay`: per-turn windows of one session, the events that shaped them, and the views on top (losses, ask, plot).

A turn is one model step (an assistant row). The window of a turn is what the agent sent the model for that step,
rebuilt from the rows before it minus what compactions, prunes and rewinds had taken out by then (events.py).
Sizes: `context_tokens` is the prompt size the agent recorded for the step (null where the format records no
usage); `window_tokens` is our estimate (bytes / 4, as `ctx.tokens`, of the full texts: fields the loader capped
count at their recorded size) of the rebuilt window's messages, without the system prompt and tool definitions,
which no format stores.
"""

from __future__ import annotations

import bisect

from ..context.errors import ArgumentError, PositionError, UnknownIdError
from .events import Event, columns, find_events


class XRay:
    """The X-ray of one session: `turns`, `events`, `window(turn)`, `losses()`, `ask(question)`, `plot()`."""

    def __init__(self, ctx, session: str | None = None, *, limit: int | None = None):
        import polars as pl

        if len(ctx) == 0:
            raise ArgumentError("xray: the context has no messages; load a session first (rj.load(path))")
        self.ctx = ctx
        self.session_id = _pick_session(ctx, session)
        info = ctx.sessions.filter(pl.col("session_id") == self.session_id).row(0, named=True)
        self.format = info.get("format") or "?"
        self.producer = " ".join(str(x) for x in (info.get("producer"), info.get("producer_version")) if x)
        # Sizes of the full text: loaders cap long fields in the table (a marker says how much was cut) and keep the
        # full UTF-8 size in text_bytes / tool_output_bytes; a 40 KB log read must weigh 40 KB in the window.
        kept_out = pl.col("tool_output").str.len_bytes().fill_null(0)
        out_bytes = pl.max_horizontal(pl.col("tool_output_bytes").fill_null(0), kept_out)
        cut = (out_bytes - kept_out) + (
            pl.col("text_bytes").fill_null(0) - pl.col("text").str.len_bytes().fill_null(0)
        ).clip(lower_bound=0)
        self.rows = ctx.table.filter(pl.col("session_id") == self.session_id).with_columns(
            ((out_bytes + 3) // 4).cast(pl.Int64).alias("output_tokens"),
            (pl.col("tokens") + (cut + 3) // 4).cast(pl.Int64).alias("tokens"),
        )
        self.offset = self.rows["position"][0]
        cols = columns(self.rows)
        unresolved = _unresolved(self.rows)
        if unresolved:
            cols.update(_resolve_from_rows(self.rows, self.session_id, self.format))
            cols["window_event"] = dict(enumerate(cols["window_event"]))
        found = find_events(cols)
        self._found = found
        self.notes: list[str] = list(found.notes)
        if unresolved:
            self.notes.append(
                "this table carries no window events (made without the loaders, or by an older "
                "version): events found from its boundaries and in_context only; rj.load the files "
                "for what the agent recorded"
            )
        n = self.rows.height
        self.rows = self.rows.with_columns(
            pl.Series("out_at", found.out_at, dtype=pl.Int64),
            pl.Series("prune_at", found.prune_at, dtype=pl.Int64),
            pl.Series("marker", found.marker, dtype=pl.Boolean),
            pl.int_range(n, dtype=pl.Int64).alias("local"),
            *_event_labels(found.events, n),
        )
        self.limit, limit_note = _window_limit(limit, self.format, info.get("context_window"))
        if limit_note:
            self.notes.append(limit_note)
        self._events = found.events
        # step -> rows held back from that one step (see Event.held), and the label for `removed_by`
        self._held = {e.summary: set(e.held) for e in self._events if e.held and e.summary is not None}
        self._held_label = {
            e.summary: f"{e.kind} #{k} (tail kept, not sent to the summary call)"
            for k, e in enumerate(self._events, 1)
            if e.held and e.summary is not None
        }
        self.turns = self._turns()
        self.events = self._events_frame()
        self._cache: dict = {}

    # ---- per-turn windows -------------------------------------------------------------------------------------

    def _turns(self):
        """One row per model step, sizes from difference arrays: O(rows), not O(turns x rows)."""
        import polars as pl

        r = self.rows
        n = r.height
        live = r.filter(~pl.col("marker"))
        tok = live["tokens"]
        at_in = live["local"] + 1
        out = live["out_at"]
        pruned = live.filter(pl.col("prune_at") < pl.col("out_at"))
        p_out = pruned["output_tokens"].clip(upper_bound=pruned["tokens"])
        deltas = (
            pl.concat(
                [
                    pl.DataFrame({"at": at_in, "t": tok, "m": pl.repeat(1, live.height, eager=True, dtype=pl.Int64)}),
                    pl.DataFrame({"at": out, "t": -tok, "m": pl.repeat(-1, live.height, eager=True, dtype=pl.Int64)}),
                    pl.DataFrame(
                        {
                            "at": pruned["prune_at"],
                            "t": -p_out,
                            "m": pl.repeat(0, pruned.height, eager=True, dtype=pl.Int64),
                        }
                    ),
                    pl.DataFrame(
                        {
                            "at": pruned["out_at"],
                            "t": p_out,
                            "m": pl.repeat(0, pruned.height, eager=True, dtype=pl.Int64),
                        }
                    ),
                    self._held_deltas(),
                ]
            )
            .group_by("at")
            .agg(pl.col("t").sum(), pl.col("m").sum())
        )
        grid = (
            pl.DataFrame({"at": pl.int_range(n + 1, dtype=pl.Int64, eager=True)})
            .join(deltas, on="at", how="left")
            .sort("at")
            .fill_null(0)
            .with_columns(pl.col("t").cum_sum().alias("window_tokens"), pl.col("m").cum_sum().alias("window_messages"))
        )
        self._grid = grid
        # a model step: an assistant row the model wrote (not one the harness wrote, e.g. Claude's "<synthetic>")
        steps = r.filter(
            (pl.col("role") == "assistant") & ~pl.col("marker") & (pl.col("origin").fill_null("model") != "harness")
        )
        sizes = grid.select("window_tokens", "window_messages").gather(steps["local"])
        turns = steps.select(
            pl.int_range(1, steps.height + 1, dtype=pl.Int64).alias("turn"),
            "position",
            "local",
            "id",
            "ts",
            "context_tokens",
            "origin",
        ).with_columns(sizes.get_columns())
        turns = turns.with_columns(pl.lit(self.limit, dtype=pl.Int64).alias("limit"))
        # events and flags per turn
        # events: each listed on the first turn that no longer saw what it removed (built in polars: 100k+ turns)
        locs = turns["local"].to_list()
        at, labels = [], []
        for k, e in enumerate(self._events, 1):
            t = bisect.bisect_left(locs, e.effective)
            if t < len(locs):
                at.append(t + 1)
                labels.append(f"{e.kind} #{k}")
        per_turn = (
            pl.DataFrame({"turn": at, "events": labels}, schema={"turn": pl.Int64, "events": pl.String})
            .group_by("turn", maintain_order=True)
            .agg("events")
        )
        turns = turns.join(per_turn, on="turn", how="left").with_columns(
            pl.col("events").fill_null(pl.lit([], dtype=pl.List(pl.String)))
        )
        inferred_from = min((e.effective for e in self._events if e.how == "inferred"), default=None)
        flag = [
            pl.when(pl.col("context_tokens").is_null()).then(pl.lit("no_usage")),
            pl.when(pl.col("origin") == "summary").then(pl.lit("compaction_call")),
            pl.when(pl.lit(inferred_from is not None) & (pl.col("local") >= (inferred_from or 0))).then(
                pl.lit("inferred")
            ),
        ]
        turns = turns.with_columns(pl.concat_list(flag).list.drop_nulls().alias("flags"))
        return turns.drop("origin")

    def _events_frame(self):
        import polars as pl

        r = self.rows
        ids = r["id"].to_list()
        locs = self.turns["local"].to_list()
        cts = self.turns["context_tokens"].to_list()
        last_known, first_known = [None] * len(cts), [None] * (len(cts) + 1)  # nearest recorded size, each side
        for x, v in enumerate(cts):
            last_known[x] = v if v is not None else (last_known[x - 1] if x else None)
        for x in range(len(cts) - 1, -1, -1):
            first_known[x] = cts[x] if cts[x] is not None else first_known[x + 1]
        # removed tool outputs and tokens per event, summed in polars (thousands of events, 100k+ removed rows)
        ev_of = [k for k, e in enumerate(self._events, 1) for _ in e.removed]
        loc_of = [j for e in self._events for j in e.removed]
        sums = (
            pl.DataFrame({"event": ev_of, "local": loc_of}, schema={"event": pl.Int64, "local": pl.Int64})
            .join(r.select("local", "role", "tokens", "output_tokens"), on="local", how="left")
            .group_by("event")
            .agg(
                (pl.col("role") == "tool").sum().alias("tools"),
                pl.col("tokens").sum().alias("tok"),
                pl.min_horizontal("output_tokens", "tokens").sum().alias("otok"),
            )
        )
        per_event = {e: (tools, tok, otok) for e, tools, tok, otok in sums.iter_rows()}
        recs = []
        for k, e in enumerate(self._events, 1):
            tools, tok, otok = per_event.get(k, (0, 0, 0))
            t = bisect.bisect_left(locs, e.effective)
            b = bisect.bisect_left(locs, e.row) - 1  # the last step before the boundary row
            before = last_known[b] if b >= 0 else None
            after = first_known[t]
            prune = e.clears
            recs.append(
                {
                    "event": k,
                    "kind": e.kind,
                    "turn": t + 1 if t < len(locs) else None,
                    "position": self.offset + e.row,
                    "id": ids[e.row] if not prune else None,
                    "summary_id": ids[e.summary] if e.summary is not None else None,
                    "removed_messages": 0 if prune else len(e.removed),
                    "removed_tool_outputs": int(tools or 0),
                    "removed_tokens": int((otok if prune else tok) or 0),
                    "kept_messages": len(e.kept),
                    "pre_tokens": e.pre_tokens if e.pre_tokens is not None else before,
                    "post_tokens": e.post_tokens if e.post_tokens is not None else after,
                    "trigger": e.trigger,
                    "how": e.how,
                    "note": e.note,
                    "summary_kind": e.summary_kind,
                    "tokens_saved": e.tokens_removed,
                }
            )
        schema = {
            "event": pl.Int64,
            "kind": pl.String,
            "turn": pl.Int64,
            "position": pl.Int64,
            "id": pl.String,
            "summary_id": pl.String,
            "removed_messages": pl.Int64,
            "removed_tool_outputs": pl.Int64,
            "removed_tokens": pl.Int64,
            "kept_messages": pl.Int64,
            "pre_tokens": pl.Int64,
            "post_tokens": pl.Int64,
            "trigger": pl.String,
            "how": pl.String,
            "note": pl.String,
            "summary_kind": pl.String,
            "tokens_saved": pl.Int64,
        }
        return pl.DataFrame(recs, schema=schema)

    def _local_of_turn(self, turn: int | None) -> int:
        if turn is None:
            return self.rows.height  # after the last row: the window the session ended with
        n = self.turns.height
        if isinstance(turn, bool) or not isinstance(turn, int):
            raise ArgumentError(
                f"xray.window: turn must be an int from 1 to {n} (negative counts from the end) or "
                f"None for the window at the end, got {turn!r}"
            )
        if n == 0:
            raise PositionError(
                f"xray.window: session {self.session_id} has no model steps (no assistant rows); "
                "use turn=None for the window at its end"
            )
        k = turn if turn > 0 else n + turn + 1
        if not 1 <= k <= n:
            raise PositionError(f"xray.window: turn {turn} is out of range; this session has turns 1..{n}")
        return self.turns["local"][k - 1]

    def _held_deltas(self):
        """Rows out of the window at one step only (a kept tail not sent to the summary call): -/+ around it."""
        import polars as pl

        rows: list[tuple[int, int, int]] = []
        tok = self.rows["tokens"].to_list()
        pruned_out = self.rows["output_tokens"].to_list()
        prune_at = self.rows["prune_at"].to_list()
        for step, held in self._held.items():
            for j in held:
                t = tok[j] - (min(pruned_out[j], tok[j]) if prune_at[j] <= step else 0)
                rows += [(step, -t, -1), (step + 1, t, 1)]
        return pl.DataFrame(rows, schema={"at": pl.Int64, "t": pl.Int64, "m": pl.Int64}, orient="row")

    def window(self, turn: int | None = None) -> Window:
        """What the model was sent at `turn` (1-based; -1 = the last; None = the window at the end of the session):
        `.messages` the rows in it, `.dropped` the earlier rows that were not (with the event that removed them)."""
        import polars as pl

        i = self._local_of_turn(turn)
        before = self.rows.filter(pl.col("local") < i)
        held = pl.col("local").is_in(sorted(self._held.get(i, ())))
        state = (
            pl.when(pl.col("marker"))
            .then(pl.lit("marker"))
            .when(pl.col("out_at") <= i)
            .then(pl.lit("removed"))
            .when(held)
            .then(pl.lit("held"))
            .when(pl.col("prune_at") <= i)
            .then(pl.lit("pruned"))
            .otherwise(pl.lit("in"))
        )
        removed_by = (
            pl.when(pl.col("out_at") <= i)
            .then(pl.col("out_event"))
            .when(held)
            .then(pl.lit(self._held_label.get(i)))
            .when(pl.col("prune_at") <= i)
            .then(pl.col("prune_event"))
        )
        frame = before.with_columns(state.alias("state"), removed_by.alias("removed_by")).drop(
            "out_event", "prune_event"
        )
        if turn is not None:  # -1 -> the turn's own number
            turn = self.turns.filter(pl.col("local") == i)["turn"][0]
        return Window(self, turn, i, frame)

    def window_rows(self, turn: int | None = None):
        """Positions in the window at `turn`, recomputed from scratch (the per-turn baseline of the benchmark)."""
        import polars as pl

        i = self._local_of_turn(turn)
        return self.rows.filter(
            (pl.col("local") < i)
            & (pl.col("out_at") > i)
            & ~pl.col("marker")
            & ~pl.col("local").is_in(sorted(self._held.get(i, ())))
        ).get_column("position")

    # ---- views ------------------------------------------------------------------------------------------------

    def event(self, n: int) -> Event:
        if not 1 <= n <= len(self._events):
            raise PositionError(
                f"xray: event {n} does not exist; this session has events 1..{len(self._events)} (see xr.events)"
            )
        return self._events[n - 1]

    def losses(self, event: int | None = None, *, query: str | None = None, sub_model: str | None = "offline"):
        """Per compaction (or the one numbered `event`): what it removed and the decisions, constraints, rejected
        and failed approaches among it, each cited by message id (see losses.py)."""
        from .losses import losses

        return losses(self, event=event, query=query, sub_model=sub_model)

    def ask(
        self,
        question: str,
        *,
        model: str = "offline",
        sub_model: str | None = None,
        tokens: int | None = None,
        budget=None,
    ):
        """The same question answered from (a) the window after the last compaction, (b) a sliding window of the
        last `tokens` tokens that keeps preserved messages, (c) RLM over the full history (see ask.py)."""
        from .ask import ask

        return ask(self, question, model=model, sub_model=sub_model, tokens=tokens, budget=budget)

    def plot(self, *, interactive: bool | None = None, width: int = 720, height: int = 280, **options):
        """Context tokens per turn, the window limit, every event marked (see plot.py: turns=, max_buckets=;
        needs altair)."""
        from .plot import plot

        return plot(self, interactive=interactive, width=width, height=height, **options)

    def composition(self):
        """What filled the window per turn, estimated tokens by band (see composition.py)."""
        from .composition import composition

        return composition(self)

    def composition_plot(self, *, interactive: bool | None = None, width: int = 720, height: int = 280):
        """The composition as a stacked chart per turn; hover a band to list its messages (composition_plot.py)."""
        from .composition_plot import plot

        return plot(self, interactive=interactive, width=width, height=height)

    def simulate(
        self, policies=("window:8000", "compact:80%", "acm", "rlm"), *, facts=None, sub_model: str = "offline"
    ):
        """Replay this session under other context policies; which key facts each keeps reachable (simulate.py)."""
        from .simulate import simulate

        return simulate(self, policies, facts=facts, sub_model=sub_model)

    def __repr__(self) -> str:
        from .display import xray_text

        return xray_text(self)

    def _repr_html_(self) -> str:
        from .display import xray_html

        return xray_html(self)


class Window:
    """The window of one turn. `messages`: rows sent (state "in", or "pruned" = call kept, output cleared);
    `dropped`: earlier rows not sent ("removed", or "held" = a kept tail the summary call was not sent), with
    `removed_by`; `frame`: both, plus event markers."""

    def __init__(self, xr: XRay, turn, local: int, frame):
        import polars as pl

        self.xray, self.turn, self.local, self.frame = xr, turn, local, frame
        self.messages = frame.filter(pl.col("state").is_in(["in", "pruned"]))
        self.dropped = frame.filter(pl.col("state").is_in(["removed", "held"]))
        self.tokens = int(
            self.messages.select(
                pl.when(pl.col("state") == "pruned")
                .then(pl.col("tokens") - pl.col("output_tokens").clip(upper_bound=pl.col("tokens")))
                .otherwise(pl.col("tokens"))
                .sum()
            ).item()
            or 0
        )
        row = None
        if turn is not None:
            row = xr.turns.filter(pl.col("local") == local).row(0, named=True)
        self.context_tokens = row["context_tokens"] if row else None
        self.flags = row["flags"] if row else []

    @property
    def ids(self) -> list[str]:
        return self.messages["id"].to_list()

    def __len__(self) -> int:
        return self.messages.height

    def __repr__(self) -> str:
        from .display import window_text

        return window_text(self)

    def _repr_html_(self) -> str:
        from .display import window_html

        return window_html(self)


def _event_labels(events: list[Event], n: int):
    """Per row, the event that removed it and the one that pruned its output ("compaction #3"), as columns."""
    import polars as pl

    out: list[str | None] = [None] * n
    pruned: list[str | None] = [None] * n
    for k, e in enumerate(events, 1):
        target = pruned if e.clears else out
        label = f"{e.kind} #{k}"
        for j in e.removed:
            target[j] = label
    return pl.Series("out_event", out, dtype=pl.String), pl.Series("prune_event", pruned, dtype=pl.String)


def _unresolved(rows) -> bool:
    """A compaction or rewind row without its window event: a frame that did not come through the loaders
    (Context.from_frame, an older saved table). The loaders give every such row one."""
    import polars as pl

    marked = rows.select(pl.col("boundary").is_in(["compaction", "rewind"]).any()).item()
    filled = rows.select(pl.col("window_event").is_not_null().any()).item()
    return bool(marked) and not filled


def _resolve_from_rows(rows, session_id: str, fmt: str) -> dict[str, list]:
    """The window-event columns from the table's own rows (sessions/window.py without a reader's facts)."""
    from ..sessions.model import Session
    from ..sessions.schema import MESSAGE_COLUMNS
    from ..sessions.window import resolve

    s = Session(session_id, fmt, "", columns={c: rows.get_column(c).to_list() for c in MESSAGE_COLUMNS})
    resolve(s)
    return {c: s.columns[c] for c in ("out_by", "cleared_by", "window_event")}


def _pick_session(ctx, session: str | None) -> str:
    s = ctx.sessions
    ids = s["session_id"].to_list()
    if session is None:
        if len(ids) == 1:
            return ids[0]
        best = s.sort(["compactions", "messages"], descending=True, nulls_last=True)
        return best["session_id"][0]
    if session in ids:
        return session
    hits = [i for i in ids if i.startswith(session)]
    if len(hits) == 1:
        return hits[0]
    shown = ", ".join(s.sort("compactions", descending=True)["session_id"].head(5).to_list())
    if hits:
        raise UnknownIdError(
            f"xray: session {session!r} matches {len(hits)} sessions ({', '.join(hits[:5])}); give more of the id"
        )
    raise UnknownIdError(f"xray: no session {session!r} in this context; see ctx.sessions (e.g. {shown})")


def _window_limit(limit, fmt: str, recorded) -> tuple[int | None, str | None]:
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0:
            raise ArgumentError(f"xray: limit must be a positive number of tokens (the model's window), got {limit!r}")
        return limit, None
    if recorded:  # ctx.sessions.context_window: what the loader read (Codex model_context_window)
        return int(recorded), None
    return None, f"the window limit is not recorded by {fmt} session files; pass xray(..., limit=N) to draw it"
