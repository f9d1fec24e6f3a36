"""What left the model's window, and when: one pass over a session's rows that finds every compaction, prune and
rewind and the rows each took out, from what the format records.

Per row the result is `out_at` (the first row position whose model step no longer saw it; n + 1 = never) and
`prune_at` (from there on only the call stayed, its output was cleared). A model step at local position i saw row j
when j < i < out_at[j]. How each format says what a compaction kept:

- Claude Code `compact_boundary`: everything before it left, except `compactMetadata.preservedMessages` (re-read
  from the file) and, for the last boundary, the messages the loader found re-written after it.
- Codex `compacted`: everything before it left, except the messages of its `replacement_history` (re-read).
  A `context_compacted` event without a `compacted` record names nothing kept: noted.
- OpenCode `compaction` part: everything before it left except the tail from `tail_start_id` (re-read); the
  summary step itself still saw the whole history, except that tail (`Event.held`: OpenCode summarises the head
  and puts the tail back after the summary). Tool outputs pruned (`state.time.compacted`, re-read) are
  cleared from the first step after that time.
- OpenHands `condensation` and Gemini `$rewindTo`: the rows the loader marked out of the window that came before
  the event; which earlier condensation forgot a row is not separated (noted as inferred).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .raw import RawReader


@dataclass
class Event:
    kind: str                      # compaction | prune | rewind
    row: int                       # local row index of the boundary (prune: the first step that no longer saw it)
    effective: int                 # local index from which the removal holds
    removed: list[int] = field(default_factory=list)
    kept: list[int] = field(default_factory=list)
    summary: int | None = None     # local row of the summary that replaced the history
    how: str = "recorded"          # recorded | inferred
    note: str = ""
    pre_tokens: int | None = None  # the window size the agent recorded before it (Claude preTokens)
    trigger: str | None = None
    held: list[int] = field(default_factory=list)  # kept rows the summary call itself was not sent (a kept tail)


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


def find_events(rows: dict[str, list], fmt: str, raw: RawReader) -> SessionEvents:
    """`rows`: the session's columns, indexable by row (role, origin, boundary, in_context as lists; id, raw_type,
    text, source read only at events; optionally `marker`)."""
    n = len(rows["role"])
    role, origin, boundary = rows["role"], rows["origin"], rows["boundary"]
    in_ctx = [v is not False for v in rows["in_context"]]
    marker = rows["marker"] if "marker" in rows else [is_marker(role[i], origin[i], boundary[i]) for i in range(n)]
    never = n + 1  # past the window at the end of the session (local index n)
    out_at = [never] * n
    prune_at = [never] * n
    events: list[Event] = []
    notes: list[str] = []
    window: list[int] = []  # rows currently in the window, in order
    compactions = [i for i in range(n) if boundary[i] == "compaction"]
    if fmt == "opencode":  # older OpenCode writes a summary message without a compaction marker: it is the boundary
        for i in range(n):
            if boundary[i] == "summary" and role[i] == "assistant" and not _has_marker_before(i, boundary, role):
                compactions.append(i)
        compactions.sort()
    last = compactions[-1] if compactions else None
    todo = set(compactions)
    for i in range(n):
        if i in todo:
            ev = _compaction(i, i == last, fmt, rows, in_ctx, window, raw)
            _apply(ev, window, out_at)
            events.append(ev)
        elif boundary[i] == "rewind":
            ev = Event("rewind", i, i, how="recorded", note="messages after the $rewindTo target")
            ev.removed = [j for j in window if not in_ctx[j]]
            ev.kept = [j for j in window if in_ctx[j]]
            _apply(ev, window, out_at)
            events.append(ev)
        if not marker[i]:
            window.append(i)
    events += _prunes(fmt, rows, in_ctx, out_at, prune_at, raw, notes)
    left = [j for j in window if not in_ctx[j] and prune_at[j] > n]
    if left:
        notes.append(f"{len(left)} message(s) are out of the window at the end (the loader says so) but no recorded "
                     "event says when they left: they are shown in the window until the end")
    events.sort(key=lambda e: (e.effective, e.row))
    return SessionEvents(out_at, prune_at, marker, events, notes)


def _has_marker_before(i: int, boundary: list, role: list) -> bool:
    for j in range(i - 1, max(-1, i - 4), -1):
        if boundary[j] == "compaction":
            return True
        if role[j] == "assistant":
            return False
    return False


def _apply(ev: Event, window: list[int], out_at: list[int]) -> None:
    gone = set(ev.removed)
    for j in ev.removed:
        out_at[j] = ev.effective
    window[:] = [j for j in window if j not in gone]


def _compaction(i: int, is_last: bool, fmt: str, rows: dict, in_ctx: list[bool], window: list[int],
                raw: RawReader) -> Event:
    n = len(rows["role"])
    role, origin = rows["role"], rows["origin"]
    ev = Event("compaction", i, i)
    # The summary that replaced the history: this row (Codex `compacted` with a message) or the next summary row.
    for j in range(i, min(n, i + 4)):
        if origin[j] == "summary":
            ev.summary = j
            break
    if ev.summary is not None and role[ev.summary] == "assistant":
        ev.effective = ev.summary + 1  # the summary step itself was sent the whole history
    candidates = [j for j in window if j < i]
    kept: set[int] | None = None
    rec = raw.record(rows["source"][i])
    if fmt == "claude":
        meta = (rec or {}).get("compactMetadata") if isinstance((rec or {}).get("compactMetadata"), dict) else {}
        ev.pre_tokens = meta.get("preTokens") if type(meta.get("preTokens")) is int else None
        ev.trigger = meta.get("trigger") or (rec or {}).get("trigger")
        preserved = meta.get("preservedMessages") if isinstance(meta.get("preservedMessages"), dict) else {}
        uuids = {u for u in preserved.get("uuids") or () if isinstance(u, str)}
        ids = _claude_row_ids(raw.records_with_uuids(rows["source"][i], uuids)) | uuids
        kept = {j for j in candidates if rows["id"][j] in ids}
        if uuids:
            ev.note = f"preservedMessages keeps {len(uuids)} record(s)"
        if is_last:
            kept |= {j for j in candidates if in_ctx[j]}
        files = raw.claude_reattached_files(rows["source"][i])
        if files:
            ev.note = (ev.note + "; " if ev.note else "") + (
                f"{len(files)} file(s) re-attached after it ({', '.join(files[:3])}): attachment records, not rows, "
                "not counted in window_tokens")
        if rec is None:
            ev.how, ev.note = "inferred", "compact_boundary record not readable: kept = what survives to the end"
            kept = {j for j in candidates if in_ctx[j]}
    elif fmt == "codex":
        history = (rec or {}).get("payload", {}).get("replacement_history") if rec else None
        if isinstance(history, list):
            kept = _codex_kept(history, candidates, rows)
            ev.note = f"replacement_history keeps {len(history)} item(s)"
        elif is_last:
            kept = {j for j in candidates if in_ctx[j]}
            ev.how, ev.note = "inferred", "no replacement_history recorded: kept = what the loader kept"
        else:
            kept = set()
            ev.how, ev.note = "inferred", "no replacement_history recorded: assumed nothing kept"
        if ev.summary is None:
            ev.note += "; the summary text is not recorded in this file"
    elif fmt == "opencode":
        parts = raw.opencode_parts(rows["source"][i]) if rows["raw_type"][i] != "assistant" else []
        comp = next((p for p in parts if p.get("type") == "compaction"), None)
        if comp is not None:
            ev.trigger = "auto" if comp.get("auto") else "manual"
            tail = comp.get("tail_start_id")
            start = next((j for j in range(i) if rows["id"][j] == tail), i) if isinstance(tail, str) else i
            kept = {j for j in candidates if j >= start}
            if start < i:
                ev.note = f"tail kept from {tail}"
                if ev.summary is not None and role[ev.summary] == "assistant":
                    # OpenCode summarises the head only (SessionCompaction.select): the summary call is not sent
                    # the tail, which comes back verbatim after the summary
                    ev.held = sorted(kept)
                    ev.note += " (not sent to the summary call)"
        elif is_last:
            kept = {j for j in candidates if in_ctx[j] or rows["role"][j] == "tool"}
            ev.how, ev.note = "inferred", "compaction part not readable: kept = what the loader kept"
        else:
            kept = set()
            ev.how, ev.note = "inferred", "compaction part not readable: assumed nothing kept"
    if kept is None:  # OpenHands condensation and formats without details: what the loader marked out
        kept = {j for j in candidates if in_ctx[j]}
        ev.how = "recorded" if is_last and fmt != "openhands" else "inferred"
        if fmt == "openhands":
            ev.note = "forgotten events of all condensations, attributed to the first one after them"
    ev.kept = [j for j in candidates if j in kept]
    ev.removed = [j for j in candidates if j not in kept]
    return ev


def _claude_row_ids(records: list[dict]) -> set[str]:
    """Row ids the loader gives the preserved records: a user/attachment row is its uuid, an assistant row its
    message id, a tool row its tool_use id (from the call or from the result)."""
    ids: set[str] = set()
    for rec in records:
        msg = rec.get("message") if isinstance(rec.get("message"), dict) else {}
        if isinstance(msg.get("id"), str):
            ids.add(msg["id"])
        content = msg.get("content")
        for block in content if isinstance(content, list) else ():
            if isinstance(block, dict):
                for key in ("id", "tool_use_id"):
                    if isinstance(block.get(key), str) and block.get("type") in ("tool_use", "tool_result"):
                        ids.add(block[key])
    return ids


def _codex_kept(history: list, candidates: list[int], rows: dict) -> set[int]:
    from ..sessions.formats.codex import _content_text  # the loader's own text of a message (same matching)

    want: dict[tuple, int] = {}
    for item in history:
        if isinstance(item, dict) and item.get("type") == "message":
            key = (item.get("role"), _content_text(item.get("content")))
            want[key] = want.get(key, 0) + 1
    kept = set()
    for j in reversed(candidates):  # each kept item is one message: the latest row with that role and text
        r = rows["role"][j]
        if r in ("user", "assistant", "system"):
            key_role = (rows["raw_type"][j] or "").rsplit("/", 1)[-1] if r == "system" else r
            if key_role == "compacted":  # an earlier summary: a later replacement_history carries it as user text
                key_role = "user"
            key = (key_role, rows["text"][j])
            if want.get(key):
                want[key] -= 1
                kept.add(j)
    return kept


def _prunes(fmt: str, rows: dict, in_ctx: list[bool], out_at: list[int], prune_at: list[int], raw: RawReader,
            notes: list[str]) -> list[Event]:
    """OpenCode clears old tool outputs (`state.time.compacted`) and keeps the calls: one event per prune pass."""
    if fmt != "opencode":
        return []
    n = len(rows["role"])
    times: dict[int, float | None] = {}

    def step_ms(k: int) -> float | None:
        # The message's own time.created (ms), re-read: the prune time is compared in the agent's own clock.
        if k not in times:
            rec = raw.record(rows["source"][k]) or {}
            rec = rec.get("info") if isinstance(rec.get("info"), dict) else rec  # an export wraps it in info
            t = rec.get("time") if isinstance(rec.get("time"), dict) else {}
            times[k] = t.get("created") if isinstance(t.get("created"), (int, float)) else None
        return times[k]

    by_time: dict[float | None, list[int]] = {}
    role, source = rows["role"], rows["source"]
    stamp: dict[str, float | None] = {}  # source -> time.compacted (a replayed history shares its sources)
    for j in [j for j in range(n) if role[j] == "tool" and not in_ctx[j]]:  # pruned, or compacted, or both
        src = source[j]
        if src in stamp:
            t = stamp[src]
        else:
            part = raw.record(src)
            state = (part or {}).get("state") if isinstance((part or {}).get("state"), dict) else {}
            t = (state.get("time") or {}).get("compacted") if isinstance(state.get("time"), dict) else None
            t = stamp[src] = t if isinstance(t, (int, float)) and not isinstance(t, bool) else None
        if t is not None:
            by_time.setdefault(t, []).append(j)
        elif out_at[j] > n:  # out at the end, yet neither pruned with a time nor compacted
            by_time.setdefault(None, []).append(j)
    # One prune pass stamps each part with its own Date.now(): group the outputs by the first step that no longer
    # saw them (one event per step), not by the exact millisecond.
    by_step: dict[int, list[int]] = {}
    untimed = by_time.pop(None, [])
    for t, js in sorted(by_time.items()):
        at = next((k for k in range(js[0] + 1, n) if rows["role"][k] == "assistant" and (step_ms(k) or 0) >= t), n)
        by_step.setdefault(at, []).extend(js)
    events = []
    for at, js in sorted(by_step.items()):
        js = sorted(j for j in js if at < out_at[j])  # pruned after a compaction had removed it: nothing to clear
        if not js:
            continue
        ev = Event("prune", min(at, n - 1), at, how="recorded", note="tool outputs cleared (time.compacted)")
        for j in js:
            prune_at[j] = at
        ev.removed = js
        events.append(ev)
    if untimed:
        notes.append(f"{len(untimed)} pruned tool output(s) without time.compacted")
        ev = Event("prune", n - 1, n, how="inferred", note="tool outputs pruned at a time not recorded: shown "
                   "cleared only at the end")
        js = [j for j in untimed if n < out_at[j]]
        for j in js:
            prune_at[j] = n
        ev.removed = js
        if js:
            events.append(ev)
    return events
