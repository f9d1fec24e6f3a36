"""What context queries return: one `Message`, or small typed collections (`Messages`, `Snippets`, `Chunks`).

A collection holds positions into the context's table plus scores and matched spans; rows are read from the
table only when shown or iterated, so a filter that selects 50,000 messages costs a list of ints until used.
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .environment import Context

# The fields that hold a message's words: searched by regex_search and search, counted by ctx.tokens.
CONTENT_FIELDS = ("text", "thinking", "tool_input", "tool_output")

_REPR_ROWS = 12
_HTML_ROWS = 50
_PREVIEW = 100
_HTML_PREVIEW = 400


def _one_line(text: str | None, limit: int) -> str:
    if not text:
        return ""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _time(ts) -> str:
    return ts.strftime("%Y-%m-%d %H:%M:%S") if ts is not None else "-"


class Message:
    """One row of the history. Every column of `ctx.table` is an attribute (`m.role`, `m.tool_name`,
    `m.ts`, `m.position`, `m.tokens`, `m.active_s`, `m.priority`, ...); `m.content` is the text, or the tool
    output for tool rows, so predicates such as `lambda m: "error" in m.content` read naturally."""

    __slots__ = ("_row",)

    def __init__(self, row: dict[str, Any]):
        self._row = row

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "_row":
            raise AttributeError(name)
        try:
            return self._row[name]
        except KeyError:
            raise AttributeError(
                f"Message has no attribute {name!r}; use .content or one of: {', '.join(self._row)}"
            ) from None

    @property
    def content(self) -> str:
        row = self._row
        if row["role"] == "tool" and row.get("tool_output") is not None:
            return row["tool_output"]
        return row.get("text") or ""

    def to_dict(self) -> dict[str, Any]:
        return dict(self._row)

    def render(self) -> str:
        """The message as transcript text: a header line, then its words (tool rows: call, then output)."""
        r = self._row
        who = r["role"] + (f"/{r['tool_name']}" if r.get("tool_name") else "")
        parts = [f"[{r.get('position', '?')}] {who} {r['id']} ({_time(r.get('ts'))})"]
        if r.get("thinking"):
            parts.append(f"(thinking) {r['thinking']}")
        if r.get("text"):
            parts.append(r["text"])
        if r["role"] == "tool" and r.get("tool_output") is not None:
            parts.append(f"→ {r['tool_output']}")
        return "\n".join(parts)

    def __eq__(self, other) -> bool:
        return isinstance(other, Message) and other._row.get("id") == self._row.get("id")

    def __hash__(self) -> int:
        return hash(self._row.get("id"))

    def __repr__(self) -> str:
        r = self._row
        return (
            f"<Message [{r.get('position', '?')}] {r['id']} {r['role']} session={r['session_id']} "
            f"{_time(r.get('ts'))}: {_one_line(self.content, _PREVIEW)!r}>"
        )

    def _repr_html_(self) -> str:
        return f"<pre style='white-space:pre-wrap'>{html.escape(self.render())}</pre>"


class Snippet:
    """A message that matched a query, with its score and the matched spans.

    `spans` is a list of `(field, start, end)`: offsets into that field of the message
    (`m.text`, `m.thinking`, `m.tool_input` or `m.tool_output`), so `getattr(s.message, f)[a:b]` is the match.
    """

    __slots__ = ("message", "score", "spans")

    def __init__(self, message: Message, score: float | None, spans: list[tuple[str, int, int]]):
        self.message, self.score, self.spans = message, score, spans

    id = property(lambda self: self.message.id)
    position = property(lambda self: self.message.position)
    session_id = property(lambda self: self.message.session_id)
    role = property(lambda self: self.message.role)
    ts = property(lambda self: self.message.ts)

    @property
    def match(self) -> str | None:
        """The first matched text, or None when the query matched no literal span (e.g. stemmed terms)."""
        if not self.spans:
            return None
        f, a, b = self.spans[0]
        return (getattr(self.message, f) or "")[a:b]

    def excerpt(self, width: int = 80) -> str:
        """Text around the first match (the message start when there is no span)."""
        if not self.spans:
            return _one_line(self.message.content, 2 * width)
        f, a, b = self.spans[0]
        src = getattr(self.message, f) or ""
        lo, hi = max(0, a - width), min(len(src), b + width)
        return ("…" if lo else "") + src[lo:hi] + ("…" if hi < len(src) else "")

    def _html_excerpt(self, width: int = 160) -> str:
        if not self.spans:
            return html.escape(_one_line(self.message.content, _HTML_PREVIEW))
        field = self.spans[0][0]
        src = getattr(self.message, field) or ""
        spans = sorted((a, b) for f, a, b in self.spans if f == field)
        lo, hi = max(0, spans[0][0] - width), min(len(src), spans[0][1] + width)
        out, cur = ["…" if lo else ""], lo
        for a, b in spans:
            if a < cur or b > hi:
                continue
            out.append(html.escape(src[cur:a]) + "<mark>" + html.escape(src[a:b]) + "</mark>")
            cur = b
        out.append(html.escape(src[cur:hi]) + ("…" if hi < len(src) else ""))
        return f"<small>{html.escape(field)}:</small> " + "".join(out)

    def __repr__(self) -> str:
        score = "" if self.score is None else f" score={self.score:.3f}"
        return f"<Snippet [{self.position}] {self.id} {self.role}{score}: {_one_line(self.excerpt(40), 120)!r}>"


class _Results:
    """Shared body of Messages and Snippets: positions into `ctx.table`, rows fetched on use."""

    _noun = "messages"

    def __init__(self, ctx: Context, positions: list[int], scores: list[float] | None = None, label: str = ""):
        self._ctx = ctx
        self.positions = list(positions)
        self.scores = scores
        self.label = label
        self._rows: dict[int, dict] = {}

    def __len__(self) -> int:
        return len(self.positions)

    def _fetch(self, idx: list[int]) -> list[dict]:
        missing = [self.positions[i] for i in idx if self.positions[i] not in self._rows]
        if missing:
            frame = self._ctx.table[missing]
            for pos, row in zip(missing, frame.iter_rows(named=True), strict=True):
                self._rows[pos] = row
        return [self._rows[self.positions[i]] for i in idx]

    def messages(self) -> list[Message]:
        return [Message(r) for r in self._fetch(list(range(len(self))))]

    @property
    def ids(self) -> list[str]:
        if not self.positions:
            return []
        return self._ctx.table["id"].gather(self.positions).to_list()

    @property
    def tokens(self) -> int:
        if not self.positions:
            return 0
        return int(self._ctx.table["tokens"].gather(self.positions).sum())

    @property
    def df(self):
        """The selected rows of `ctx.table`, in result order, with a `score` column when scored."""
        import polars as pl

        frame = self._ctx.table[self.positions] if self.positions else self._ctx.table.clear()
        if self.scores is not None:
            frame = frame.with_columns(pl.Series("score", self.scores, dtype=pl.Float64))
        return frame

    def text(self, max_chars: int | None = None) -> str:
        """All selected messages as one transcript (what to hand a sub-model), optionally cut at `max_chars`."""
        out = "\n\n".join(m.render() for m in self.messages())
        return out if max_chars is None or len(out) <= max_chars else out[:max_chars] + "\n[… cut …]"

    def _header(self) -> str:
        label = f" {self.label}" if self.label else ""
        return f"{type(self).__name__}{label}: {len(self):,} {self._noun}, ~{self.tokens:,} tokens"


class Messages(_Results):
    """Messages selected by position, id, filter or window. Iterate for `Message` objects; `.df` for polars."""

    def __iter__(self) -> Iterator[Message]:
        for start in range(0, len(self), 1024):
            yield from (Message(r) for r in self._fetch(list(range(start, min(start + 1024, len(self))))))

    def __getitem__(self, key):
        if isinstance(key, slice):
            idx = range(len(self))[key]
            scores = [self.scores[i] for i in idx] if self.scores is not None else None
            return Messages(self._ctx, [self.positions[i] for i in idx], scores, self.label)
        if not -len(self) <= key < len(self):
            raise IndexError(f"index {key} is out of range for {len(self)} messages")
        return Message(self._fetch([key % len(self)])[0])

    def __repr__(self) -> str:
        lines = [self._header()]
        shown = self._fetch(list(range(min(len(self), _REPR_ROWS))))
        for i, r in enumerate(shown):
            score = "" if self.scores is None else f" {self.scores[i]:.3f}"
            lines.append(
                f"  [{r['position']}]{score} {r['id']} {r['role']} {_time(r['ts'])}: "
                f"{_one_line(Message(r).content, _PREVIEW)}"
            )
        if len(self) > _REPR_ROWS:
            lines.append(f"  … {len(self) - _REPR_ROWS:,} more (.df for all)")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        rows = self._fetch(list(range(min(len(self), _HTML_ROWS))))
        body = []
        for i, r in enumerate(rows):
            score = "" if self.scores is None else f"{self.scores[i]:.3f}"
            body.append(_html_row(r, score, html.escape(_one_line(Message(r).content, _HTML_PREVIEW))))
        return _html_table(self._header(), body, len(self) - len(rows))


class Snippets(_Results):
    """Messages that matched a query, with scores (search) and matched spans (both)."""

    _noun = "snippets"

    def __init__(self, ctx, positions, scores, spans: list[list[tuple[str, int, int]]], label="", total=None):
        super().__init__(ctx, positions, scores, label)
        self.spans = spans
        self.total = len(positions) if total is None else total  # messages matching before `limit`

    def _snippet(self, i: int, row: dict) -> Snippet:
        return Snippet(Message(row), None if self.scores is None else self.scores[i], self.spans[i])

    def __iter__(self) -> Iterator[Snippet]:
        rows = self._fetch(list(range(len(self))))
        return (self._snippet(i, r) for i, r in enumerate(rows))

    def __getitem__(self, key):
        if isinstance(key, slice):
            idx = range(len(self))[key]
            scores = [self.scores[i] for i in idx] if self.scores is not None else None
            return Snippets(
                self._ctx, [self.positions[i] for i in idx], scores, [self.spans[i] for i in idx], self.label
            )
        if not -len(self) <= key < len(self):
            raise IndexError(f"index {key} is out of range for {len(self)} snippets")
        key %= len(self)
        return self._snippet(key, self._fetch([key])[0])

    @property
    def df(self):
        import polars as pl

        frame = super().df
        matches = [s.match for s in self] if self.positions else []
        return frame.with_columns(
            pl.Series("match", matches, dtype=pl.String),
            pl.Series("n_spans", [len(sp) for sp in self.spans], dtype=pl.Int64),
        )

    def _header(self) -> str:
        more = f" (of {self.total:,} matching)" if self.total > len(self) else ""
        return super()._header() + more

    def __repr__(self) -> str:
        lines = [self._header()]
        for i, s in enumerate(self):
            if i >= _REPR_ROWS:
                lines.append(f"  … {len(self) - _REPR_ROWS:,} more (.df for all)")
                break
            score = "" if s.score is None else f" {s.score:.3f}"
            lines.append(f"  [{s.position}]{score} {s.id} {s.role}: {_one_line(s.excerpt(50), 140)}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        body = []
        for i, s in enumerate(self):
            if i >= _HTML_ROWS:
                break
            score = "" if s.score is None else f"{s.score:.3f}"
            body.append(_html_row(s.message._row, score, s._html_excerpt()))
        return _html_table(self._header(), body, len(self) - len(body))


class Chunks(list):
    """`ctx.chunk(size)`: a list of `Messages`, each at most `size` estimated tokens unless one message is bigger."""

    def __init__(self, chunks: list[Messages], size: int):
        super().__init__(chunks)
        self.size = size

    def __repr__(self) -> str:
        tokens = [c.tokens for c in self]
        lines = [f"Chunks: {len(self)} chunk(s) of <= {self.size:,} tokens, {sum(tokens):,} tokens in all"]
        for i, (c, t) in enumerate(zip(self, tokens, strict=True)):
            if i >= _REPR_ROWS:
                lines.append(f"  … {len(self) - _REPR_ROWS} more")
                break
            lines.append(f"  {i}: positions {c.positions[0]}–{c.positions[-1]}, {len(c):,} messages, {t:,} tokens")
        return "\n".join(lines)


def _html_row(row: dict, score: str, content_html: str) -> str:
    cells = [str(row["position"]), row["id"], row["session_id"], row["role"], _time(row["ts"]), score]
    tds = "".join(f"<td>{html.escape(str(c))}</td>" for c in cells)
    return f"<tr>{tds}<td style='text-align:left;white-space:pre-wrap'>{content_html}</td></tr>"


def _html_table(header: str, rows: list[str], more: int) -> str:
    head = "".join(f"<th>{h}</th>" for h in ("#", "id", "session", "role", "time", "score", "content"))
    tail = f"<p>… {more:,} more (.df for all)</p>" if more > 0 else ""
    return (
        f"<div><p><b>{html.escape(header)}</b></p><table><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>{tail}</div>"
    )
