"""Snippets: the messages a context query returned, looked up by id and cut to a short piece centred on the match.

Used twice: the run loop stores them in the trace's query events (`snippets`, so a trace file alone shows what the
model saw), and the live trace view adds richer ones (position, role, tool) and opens whole messages. Messages are
read from the Context's table directly, not through `Context.get_by_id`: that call is traced, and these look-ups
must not show up in a run's trace as queries of the model.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading

SNIPPETS_PER_QUERY = 10  # snippets kept per query event
SNIPPET_CHARS = 320  # characters of a snippet (a preview: the whole message opens in the live view)
TRACE_TEXT_LIMIT = 2_000  # cap of a snippet's text in a trace, the same cap as a notebook's static bundle
SNIPPET_SCAN = 50_000  # chars of a message searched for the match a snippet is centred on
_SPACE = re.compile(r"\s+")
_COLUMNS = ("text", "tool_input", "tool_output", "role", "tool_name", "session_id", "source")


class Messages:
    """Messages of a Context by id (the id index is built on first use, once per Context)."""

    def __init__(self, context):
        self.context = context
        self._index: dict[str, int] | None = None
        self._lock = threading.Lock()

    @classmethod
    def of(cls, context) -> Messages:
        """The shared instance for `context` (kept on it, so every run over one Context builds the index once)."""
        found = getattr(context, "_rlm_messages", None)
        if isinstance(found, cls) and found.context is context:
            return found
        made = cls(context)
        with contextlib.suppress(AttributeError, TypeError):
            context._rlm_messages = made
        return made

    def _rows(self) -> dict[str, int]:
        with self._lock:
            if self._index is None:
                ids = self.context.df["id"].to_list()
                self._index = {i: n for n, i in enumerate(ids) if i is not None}
            return self._index

    def get(self, msg_id: str) -> dict | None:
        found = self.get_many([msg_id])
        return found[0] if found else None

    def get_many(self, msg_ids: list) -> list[dict]:
        """The messages of these ids (unknown ids left out), read in one go: one row gather of the few columns a
        snippet needs, not a whole-row read per message (10x faster on a wide table)."""
        index = self._rows()
        rows = [(i, index[i]) for i in msg_ids if isinstance(i, str) and i in index]
        if not rows:
            return []
        df = self.context.df
        cols = [c for c in _COLUMNS if c in df.columns]
        picked = df.select(cols)[[n for _, n in rows]].to_dicts()
        return [self._message(i, n, row) for (i, n), row in zip(rows, picked, strict=True)]

    @staticmethod
    def _message(msg_id: str, n: int, row: dict) -> dict:
        parts = [row.get("text") or ""]
        for extra in ("tool_input", "tool_output"):
            if row.get(extra) and row.get(extra) not in parts[0]:
                parts.append(readable(row[extra]))
        return {
            "id": msg_id,
            "position": n,
            "role": row.get("role"),
            "tool_name": row.get("tool_name"),
            "session_id": row.get("session_id"),
            "format": row.get("source"),
            "text": "\n\n".join(p for p in parts if p),
        }

    def snippets(self, query: dict, limit: int = SNIPPETS_PER_QUERY) -> list[dict]:
        """Up to `limit` snippets of the query's first results: id, position, role, tool_name, session_id, text."""
        patterns = query_patterns(query)
        out = []
        for m in self.get_many((query.get("result_ids") or [])[:limit]):
            text = m["text"]
            start = 0
            for p in patterns:
                hit = p.search(text, 0, SNIPPET_SCAN)
                if hit:
                    start = max(0, hit.start() - SNIPPET_CHARS // 3)
                    break
            piece = text[start : start + SNIPPET_CHARS]
            piece = ("…" if start else "") + piece + ("…" if start + SNIPPET_CHARS < len(text) else "")
            piece = _SPACE.sub(" ", piece).strip()  # a preview: line breaks would make every snippet tall
            out.append(
                {
                    "id": m["id"],
                    "position": m["position"],
                    "role": m["role"],
                    "tool_name": m["tool_name"],
                    "session_id": m["session_id"],
                    "text": piece,
                }
            )
        return out

    def for_trace(self, query: dict) -> list[dict]:
        """The snippets a trace's query event stores (the shared contract: id, text capped, session_id)."""
        return [
            {"id": s["id"], "text": s["text"][:TRACE_TEXT_LIMIT], "session_id": s["session_id"]}
            for s in self.snippets(query)
        ]


def readable(text: str) -> str:
    """A tool's JSON input as `key: value` lines, string values as they are (not as escaped JSON strings: a file's
    content then reads as the file); anything else unchanged."""
    if not text.lstrip().startswith("{"):
        return text
    try:
        obj = json.loads(text)
    except ValueError:
        return text
    if not isinstance(obj, dict):
        return text
    lines = []
    for k, v in obj.items():
        v = v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)
        lines.append(f"{k}:\n{v}" if "\n" in v else f"{k}: {v}")
    return "\n".join(lines)


def query_patterns(q: dict) -> list[re.Pattern]:
    """What a query matched: the regex of regex_search, the words of a search (a snippet is centred on it)."""
    args = q.get("args") or {}
    raw: list[tuple[str, int]] = []
    if q.get("op") == "regex_search" and isinstance(args.get("pattern"), str):
        raw.append((args["pattern"], 0 if args.get("case", True) else re.I))
    elif isinstance(args.get("query"), str):
        raw += [(r"\b" + re.escape(w), re.I) for w in re.split(r"\W+", args["query"]) if len(w) > 2]
    out = []
    for p, flags in raw:
        with contextlib.suppress(re.error):
            out.append(re.compile(p, flags))
    return out
