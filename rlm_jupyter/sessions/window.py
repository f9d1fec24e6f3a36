"""What left the model's window, and when: resolved once, at load time, into three columns of the message table.

Readers record what the agent wrote about its window (`Session.window`: facts of an event on a row; `Session.cleared`:
how a tool output was cleared). `resolve` then walks the session once and fills, per row, `out_by` (the row of the
event that took it out of the window), `cleared_by` (the row of the event that cleared its tool output, the call
staying) and, on each event's row, `window_event` (schema.WINDOW_EVENT). The X-ray reads only these columns.

A model step at row i saw row j when j < i < at(out_by[j]); its output only while i < at(cleared_by[j]). How each
agent's records become events:

- compaction: everything in the window before the boundary left, except what the agent says it kept: Claude Code
  `compactMetadata.preservedMessages` (`keep_ids`, plus for the last boundary the rows the loader found kept),
  Codex `replacement_history` (`keep_texts`: its messages, matched by role and text), OpenCode's kept tail
  (`keep_from`: tail_start_id; the summary call itself was not sent that tail: `held_from`). OpenHands
  condensation and formats without details: the rows the loader marked out of the window (noted as inferred
  where it cannot tell which condensation forgot a row).
- rewind (Gemini `$rewindTo`): the window rows the loader marked out.
- compression (Gemini chat compression, which writes no record): inferred by the reader from a drop of the
  recorded prompt size; the rows before the newest 30 % of the window (Gemini keeps the last 30 %) are taken out.
- prune / microcompact / context_edit / masking: tool outputs cleared, calls kept. OpenCode prune times
  (`time_ms`, grouped by the first step that no longer saw them), Claude Code `microcompact_boundary` (`by`: its
  row) or the results its request copies (api-request-blob) send cleared (`at`: the step of that request), API
  context editing (`clear_oldest`: the API clears the oldest tool results first), Gemini masking (`at`), and
  outputs that hold a placeholder with no record of when (cleared at the end, inferred).
"""

from __future__ import annotations

from typing import Any

from .model import Session
from .schema import CLEARING, WINDOW_EVENT

_EMPTY = dict.fromkeys(WINDOW_EVENT)


def resolve(s: Session) -> None:
    """Fill `out_by`, `cleared_by` and `window_event` of `s` from its rows and the facts its reader recorded."""
    cols = s.columns
    if not cols:
        return
    n = len(cols["id"])
    if not s.window and not s.cleared and cols["boundary"].count(None) == n and False not in cols["in_context"]:
        cols["out_by"], cols["cleared_by"], cols["window_event"] = [None] * n, [None] * n, [None] * n
        return  # most sessions: nothing ever left the window (checked at C speed)
    w = _Walk(s, n)
    w.removals()
    w.clearings()
    cols["out_by"] = w.out_by
    cols["cleared_by"] = w.cleared_by
    cols["window_event"] = w.events


class _Walk:
    def __init__(self, s: Session, n: int) -> None:
        self.s, self.n, self.fmt = s, n, s.format
        c = self.c = s.columns
        self.role, self.origin, self.boundary = c["role"], c["origin"], c["boundary"]
        self.in_ctx = [v is not False for v in c["in_context"]]
        self.marker = [
            self.role[i] == "system" and self.origin[i] == "harness" and self.boundary[i] is not None for i in range(n)
        ]
        self.hints = {r: h for r, h in s.window.items() if 0 <= r < n and isinstance(h, dict)}
        self.out_at = [n + 1] * n  # the `at` of the event that removed the row; n + 1 = never
        self.out_by: list[int | None] = [None] * n
        self.cleared_by: list[int | None] = [None] * n
        self.events: list[dict | None] = [None] * n

    # ---- events that take rows out ----------------------------------------------------------------------------

    def removals(self) -> None:
        n, boundary, role = self.n, self.boundary, self.role
        compactions = [i for i in range(n) if boundary[i] == "compaction"]
        if self.fmt == "opencode":  # older OpenCode writes a summary message without a marker: it is the boundary
            compactions += [
                i
                for i in range(n)
                if boundary[i] == "summary" and role[i] == "assistant" and not self._marker_before(i)
            ]
            compactions.sort()
        last = compactions[-1] if compactions else None
        todo = set(compactions)
        inferred = {r for r, h in self.hints.items() if h.get("kind") == "compression"}
        window: list[int] = []  # rows in the window, in order
        for i in range(n):
            ev = removed = None
            if i in todo:
                ev, removed = self._compaction(i, i == last, window)
            elif i in inferred:
                ev, removed = self._compression(i, window)
            elif boundary[i] == "rewind":
                ev = _event("rewind", at=i, note="messages after the $rewindTo target")
                removed = [j for j in window if not self.in_ctx[j]]
            if ev is not None and removed is not None:
                gone = set(removed)
                for j in removed:
                    self.out_at[j], self.out_by[j] = ev["at"], i
                window[:] = [j for j in window if j not in gone]
                self.events[i] = ev
            if not self.marker[i]:
                window.append(i)

    def _marker_before(self, i: int) -> bool:
        for j in range(i - 1, max(-1, i - 4), -1):
            if self.boundary[j] == "compaction":
                return True
            if self.role[j] == "assistant":
                return False
        return False

    def _compaction(self, i: int, is_last: bool, window: list[int]) -> tuple[dict, list[int]]:
        n, role, origin, in_ctx, fmt = self.n, self.role, self.origin, self.in_ctx, self.fmt
        hint = self.hints.get(i) or {}
        ev = _event(
            "compaction",
            at=i,
            trigger=hint.get("trigger"),
            tokens_before=hint.get("tokens_before"),
            tokens_after=hint.get("tokens_after"),
            note=hint.get("note") or "",
        )
        summary = next((j for j in range(i, min(n, i + 4)) if origin[j] == "summary"), None)
        ev["summary"] = summary
        if summary is not None and (self.hints.get(summary) or {}).get("opaque"):
            ev["summary_kind"] = "opaque"  # never shown as read: the agent kept only an encrypted item
            if "encrypted" not in ev["note"]:
                ev["note"] = _join(ev["note"], "the summary is encrypted: its text cannot be read")
        elif summary is not None:
            ev["summary_kind"] = hint.get("summary_kind") or "readable"
        else:
            ev["summary_kind"] = hint.get("summary_kind")
        if summary is not None and role[summary] == "assistant":
            ev["at"] = summary + 1  # the summary step itself was sent the whole history
        candidates = [j for j in window if j < i]
        kept: set[int] | None = None
        ids = self.c["id"]
        if "keep_ids" in hint:  # Claude Code: preservedMessages, as row ids
            want = hint["keep_ids"]
            kept = {j for j in candidates if ids[j] in want}
            if is_last:
                kept |= {j for j in candidates if in_ctx[j]}
        elif "keep_texts" in hint:  # Codex: replacement_history messages (role, text); None = not recorded
            texts = hint["keep_texts"]
            if texts is not None:
                kept = self._codex_kept(texts, candidates)
            elif is_last:
                kept = {j for j in candidates if in_ctx[j]}
                ev["how"] = "inferred"
                ev["note"] = _join(ev["note"], "no replacement_history recorded: kept = what the loader kept")
            else:
                kept = set()
                ev["how"] = "inferred"
                ev["note"] = _join(ev["note"], "no replacement_history recorded: assumed nothing kept")
            if summary is None:
                ev["note"] = _join(ev["note"], "the summary text is not recorded in this file")
        elif "keep_from" in hint:  # OpenCode: the compaction part, with its kept tail
            tail = hint["keep_from"]
            start = next((j for j in range(i) if ids[j] == tail), i) if isinstance(tail, str) else i
            kept = {j for j in candidates if j >= start}
            if start < i:
                ev["note"] = f"tail kept from {tail}"
                if summary is not None and role[summary] == "assistant":
                    # OpenCode summarises the head only (SessionCompaction.select): the summary call is not sent
                    # the tail, which comes back verbatim after the summary
                    ev["held_from"] = start
                    ev["note"] += " (not sent to the summary call)"
        elif fmt == "opencode":  # a summary without its compaction part
            ev["how"] = "inferred"
            if is_last:
                kept = {j for j in candidates if in_ctx[j] or role[j] == "tool"}
                ev["note"] = "compaction part not recorded: kept = what the loader kept"
            else:
                kept = set()
                ev["note"] = "compaction part not recorded: assumed nothing kept"
        if kept is None:  # OpenHands condensation and formats without details: what the loader marked out
            kept = {j for j in candidates if in_ctx[j]}
            ev["how"] = "recorded" if is_last and fmt != "openhands" else "inferred"
            if fmt == "openhands":
                ev["note"] = "forgotten events of all condensations, attributed to the first one after them"
        if hint.get("how"):
            ev["how"] = hint["how"]
        return ev, [j for j in candidates if j not in kept]

    def _codex_kept(self, texts: list, candidates: list[int]) -> set[int]:
        want: dict[tuple, int] = {}
        for key in texts:
            want[key] = want.get(key, 0) + 1
        kept = set()
        role, raw_type, text = self.role, self.c["raw_type"], self.c["text"]
        for j in reversed(candidates):  # each kept item is one message: the latest row with that role and text
            r = role[j]
            if r in ("user", "assistant", "system"):
                key_role = (raw_type[j] or "").rsplit("/", 1)[-1] if r == "system" else r
                if key_role == "compacted":  # an earlier summary: a later replacement_history carries it as user
                    key_role = "user"
                key = (key_role, text[j])
                if want.get(key):
                    want[key] -= 1
                    kept.add(j)
        return kept

    def _compression(self, k: int, window: list[int]) -> tuple[dict, list[int]]:
        """A compression the agent did not record (Gemini CLI): the reader saw the prompt size drop at step k.
        Gemini summarises all but the newest 30 % of the history (by characters), cut at a user message."""
        hint = self.hints[k]
        keep = hint.get("keep_share", 0.3)
        ev = _event(
            "compression",
            at=k,
            how="inferred",
            tokens_before=hint.get("tokens_before"),
            tokens_after=hint.get("tokens_after"),
            trigger=hint.get("trigger"),
            note=hint.get("note") or "",
        )
        candidates = [j for j in window if j < k]
        tb, ob = self.c["text_bytes"], self.c["tool_output_bytes"]
        sizes = [(tb[j] or 0) + (ob[j] or 0) for j in candidates]
        total, run, cut = sum(sizes), 0, None
        for x, j in enumerate(candidates):
            if run >= total * (1 - keep) and self.role[j] == "user" and self.origin[j] in ("human", "harness"):
                cut = x
                break
            run += sizes[x]
        if cut is None:
            ev["note"] = _join(
                ev["note"],
                "no user message in the newest 30 %: which messages were summarised is "
                "not known; none are shown removed",
            )
            return ev, []
        ev["note"] = _join(
            ev["note"],
            "the messages before the newest 30 % are taken as summarised (Gemini CLI "
            "keeps the last 30 %); the summary is not in the session file",
        )
        return ev, candidates[:cut]

    # ---- events that clear tool outputs -----------------------------------------------------------------------

    def clearings(self) -> None:
        n, cleared = self.n, self.s.cleared
        groups: dict[tuple[str, int | None], list[int]] = {}  # (kind, at) -> rows; at None = not recorded when
        by_event: dict[int, list[int]] = {}
        for j, h in sorted(cleared.items()):
            if not (0 <= j < n) or not isinstance(h, dict) or h.get("kind") not in CLEARING:
                continue
            by = h.get("by")
            if type(by) is int and by in self.hints and self.hints[by].get("kind") in CLEARING:
                by_event.setdefault(by, []).append(j)
            elif type(h.get("at")) is int:
                groups.setdefault((h["kind"], min(h["at"], n)), []).append(j)
            elif h["kind"] in _AFTER_ANSWER:  # the step that answered the call saw it; when it was cleared after
                groups.setdefault((h["kind"], -1 - self._second_step(j)), []).append(j)  # that is not recorded
            elif h["kind"] != "prune":
                groups.setdefault((h["kind"], None), []).append(j)
        if self.fmt == "opencode":
            self._prunes(groups)
        for r, h in self.hints.items():  # events recorded on their own row (Claude microcompact_boundary, API edits)
            if h.get("kind") not in CLEARING:
                continue
            js = by_event.get(r, [])
            if "clear_oldest" in h:  # API context editing: the oldest tool results still in, as many as it says
                js = [
                    j
                    for j in range(r)
                    if self.role[j] == "tool"
                    and self.cleared_by[j] is None
                    and self.out_at[j] > r
                    and self.c["tool_output"][j] is not None
                ][: h["clear_oldest"]]
            ev = _event(
                h["kind"],
                at=r,
                how=h.get("how") or "recorded",
                trigger=h.get("trigger"),
                tokens_before=h.get("tokens_before"),
                tokens_removed=h.get("tokens_removed"),
                note=h.get("note") or "",
            )
            self._clear(r, ev, js)

        def order(item):
            kind, at = item[0]
            return (at is None, at if at is None or at >= 0 else -1 - at, kind)

        for (kind, at), js in sorted(groups.items(), key=order):
            note = _CLEAR_NOTES.get(kind, "tool outputs cleared")
            if at is None:
                ev = _event(
                    kind, at=n, how="inferred", note=f"{note}; when is not recorded: shown cleared only at the end"
                )
                row = n - 1
            elif at < 0:  # (kind, -1 - step): cleared from the step after the one that answered the call
                at = -1 - at
                ev = _event(
                    kind,
                    at=at,
                    how="inferred",
                    note=f"{note}; when is not recorded: shown cleared from the step after the one that "
                    "answered the call",
                )
                row = min(at, n - 1)
            else:
                ev = _event(kind, at=at, how="recorded", note=note)
                row = min(at, n - 1)
            for h in (cleared[j] for j in js):
                if h.get("how") == "inferred":
                    ev["how"] = "inferred"
                if h.get("note") and h["note"] not in ev["note"]:
                    ev["note"] = _join(ev["note"], h["note"])
            self._clear(row, ev, js)

    def _second_step(self, j: int) -> int:
        """The second model step after row j (the first answered its output), or n."""
        steps = (k for k in range(j + 1, self.n) if self.role[k] == "assistant" and self.origin[k] != "harness")
        next(steps, None)
        return next(steps, self.n)

    def _prunes(self, groups: dict) -> None:
        """OpenCode clears old tool outputs (`state.time.compacted`) and keeps the calls. One prune pass stamps each
        part with its own Date.now(): the outputs are grouped by the first step that no longer saw them."""
        n, role, ts, cleared = self.n, self.role, self.c["ts"], self.s.cleared
        by_time: dict[Any, list[int]] = {}
        for j in [j for j in range(n) if role[j] == "tool" and not self.in_ctx[j]]:  # pruned, compacted, or both
            t = (cleared.get(j) or {}).get("time_ms")
            if isinstance(t, (int, float)) and not isinstance(t, bool):
                by_time.setdefault(t, []).append(j)
            elif self.out_at[j] > n:  # out at the end, yet neither pruned with a time nor compacted
                groups.setdefault(("prune", None), []).append(j)
        for t, js in sorted(by_time.items()):
            at = next((k for k in range(js[0] + 1, n) if role[k] == "assistant" and (ts[k] or 0) / 1000 >= t), n)
            groups.setdefault(("prune", at), []).extend(js)

    def _clear(self, row: int, ev: dict, js: list[int]) -> None:
        at = ev["at"]
        js = sorted(j for j in js if at < self.out_at[j] and self.cleared_by[j] is None)  # removed first: nothing
        if not js:
            return
        free = self._free(row)
        if free is None:
            return
        for j in js:
            self.cleared_by[j] = free
        self.events[free] = ev

    def _free(self, row: int) -> int | None:
        """The event's row, or the nearest one after (then before) that carries no event yet."""
        for r in (*range(row, self.n), *range(row - 1, -1, -1)):
            if self.events[r] is None:
                return r
        return None


# Placeholders found with no record of when they replaced the output
_AFTER_ANSWER = frozenset({"microcompact", "context_edit"})

_CLEAR_NOTES = {
    "prune": "tool outputs cleared (time.compacted)",
    "microcompact": "tool outputs replaced by Claude Code's placeholder (micro-compaction)",
    "context_edit": "tool uses cleared by API context editing",
    "masking": "tool outputs masked (Gemini CLI keeps the full output on disk)",
}


def _event(kind: str, *, at: int, how: str = "recorded", note: str = "", **facts: Any) -> dict:
    ev = dict(_EMPTY)
    ev.update(kind=kind, at=at, how=how, note=note)
    for k, v in facts.items():
        if v is not None:
            ev[k] = v
    for k in ("tokens_before", "tokens_after", "tokens_removed"):
        v = ev[k]
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            ev[k] = None
    if ev["trigger"] is not None and type(ev["trigger"]) is not str:
        ev["trigger"] = str(ev["trigger"])
    return ev


def _join(a: str, b: str) -> str:
    return f"{a}; {b}" if a else b
