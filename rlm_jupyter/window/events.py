"""The window events of one session, as the loader recorded them in the table (sessions/window.py resolves them at
load time: `out_by`, `cleared_by`, `window_event`; docs/sessions.md, "Window events"). Nothing here reads the
agent's files: a format whose loader fills those columns has an X-ray.

Per row the result is `out_at` (the first row position whose model step no longer saw it; n + 1 = never) and
`prune_at` (from there on only the call stayed, its output was cleared). A model step at local position i saw row j
when j < i < out_at[j].
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..sessions.schema import CLEARING


@dataclass
class Event:
    kind: str  # compaction | rewind | compression | prune | microcompact | context_edit | masking
    row: int  # local row index of the event (a clearing: the first step that no longer saw it)
    effective: int  # local index from which the removal holds
    removed: list[int] = field(default_factory=list)
    kept: list[int] = field(default_factory=list)
    summary: int | None = None  # local row of the summary that replaced the history
    how: str = "recorded"  # recorded | inferred
    note: str = ""
    pre_tokens: int | None = None  # the window size the agent recorded before it (Claude preTokens)
    trigger: str | None = None
    held: list[int] = field(default_factory=list)  # kept rows the summary call itself was not sent (a kept tail)
    post_tokens: int | None = None  # the window size after it, where recorded or inferred
    tokens_removed: int | None = None  # what the agent says it saved
    summary_kind: str | None = None  # readable | opaque (encrypted: never shown as read) | None (no summary)

    @property
    def clears(self) -> bool:
        """Tool outputs cleared, calls kept (prune, micro-compaction, context editing, masking)."""
        return self.kind in CLEARING


@dataclass
class SessionEvents:
    out_at: list[int]
    prune_at: list[int]
    marker: list[bool]
    events: list[Event]
    notes: list[str]


def is_marker(role, origin, boundary) -> bool:
    """A row the loader adds to mark an event (Claude compact_boundary, a rewind, a fork): never sent to the model."""
    return role == "system" and origin == "harness" and boundary is not None


def columns(frame) -> dict:
    """What `find_events` reads of one session's rows (a polars frame in `seq` order): lists, and the window events
    as {row: struct} (read only where there is one: most rows have none)."""
    import polars as pl

    marker = (pl.col("role") == "system") & (pl.col("origin") == "harness") & pl.col("boundary").is_not_null()
    cols = {c: frame.get_column(c).to_list() for c in ("in_context", "out_by", "cleared_by")}
    cols["marker"] = frame.select(marker.fill_null(False)).to_series().to_list()
    ev = frame.with_row_index("_row").filter(pl.col("window_event").is_not_null())
    cols["window_event"] = dict(zip(ev["_row"].to_list(), ev["window_event"].to_list(), strict=True))
    return cols


def find_events(rows: dict) -> SessionEvents:
    """`rows`: the session's columns as lists indexed by local row (= `seq`): in_context, out_by, cleared_by, and
    either `marker` or role, origin, boundary; `window_event` as a list or as {row: struct} (see `columns`)."""
    n = len(rows["in_context"])
    if "marker" in rows:
        marker = rows["marker"]
    else:
        role, origin, boundary = rows["role"], rows["origin"], rows["boundary"]
        marker = [is_marker(role[i], origin[i], boundary[i]) for i in range(n)]
    in_ctx = rows["in_context"]
    out_by, cleared_by = rows["out_by"], rows["cleared_by"]
    never = n + 1
    by_row: dict[int, Event] = {}
    we_rows = rows["window_event"]
    for i, we in we_rows.items() if isinstance(we_rows, dict) else enumerate(we_rows):
        if we is not None:
            at = we.get("at")
            by_row[i] = Event(
                we.get("kind") or "?",
                i,
                at if type(at) is int else i,
                summary=we.get("summary"),
                how=we.get("how") or "recorded",
                note=we.get("note") or "",
                pre_tokens=we.get("tokens_before"),
                trigger=we.get("trigger"),
                post_tokens=we.get("tokens_after"),
                tokens_removed=we.get("tokens_removed"),
                summary_kind=we.get("summary_kind"),
            )
    out_at = [never] * n
    prune_at = [never] * n
    for j, b in enumerate(out_by):
        if b is not None and b in by_row:
            out_at[j] = by_row[b].effective
            by_row[b].removed.append(j)
    for j, c in enumerate(cleared_by):
        if c is not None and c in by_row:
            prune_at[j] = by_row[c].effective
            by_row[c].removed.append(j)
    notes = [
        f"{len(ev.removed)} pruned tool output(s) without time.compacted"
        for ev in by_row.values()
        if ev.kind == "prune" and ev.how == "inferred"
    ]
    # kept: what was in the window at an event and stayed after it (one pass, as the loader walked it)
    window: list[int] = []
    for i in range(n):
        ev = by_row.get(i)
        if ev is not None and not ev.clears:
            window = ev.kept = [j for j in window if out_by[j] != i]
            held_from = we_rows[i].get("held_from")
            if type(held_from) is int:
                ev.held = [j for j in ev.kept if j >= held_from]
            window = list(window)
        if not marker[i]:
            window.append(i)
    left = [j for j in range(n) if in_ctx[j] is False and not marker[j] and out_at[j] > n and prune_at[j] > n]
    if left:
        notes.append(
            f"{len(left)} message(s) are out of the window at the end (the loader says so) but no recorded "
            "event says when they left: they are shown in the window until the end"
        )
    events = sorted(by_row.values(), key=lambda e: (e.effective, e.row))
    return SessionEvents(out_at, prune_at, marker, events, notes)
