"""What a loader returns: sessions made of normalized rows, plus notes on what it skipped."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .schema import MESSAGE_COLUMNS
from .textutil import to_us, utf8_len

_COLS = tuple(MESSAGE_COLUMNS)


@dataclass(slots=True)
class Issue:
    """One thing the loader could not take as it was: where, and why."""

    path: str
    line: int | None  # 1-based line (JSONL) or None for whole-file / record-pointer issues
    reason: str
    kind: str = "malformed"  # malformed | truncated | unknown | duplicate | note
    pointer: str | None = None  # record pointer inside a JSON file or database

    def where(self) -> str:
        if self.line is not None:
            return f"{self.path}:{self.line}"
        return f"{self.path}#{self.pointer}" if self.pointer else self.path


@dataclass
class Session:
    """One agent session: metadata plus its message rows, column by column."""

    session_id: str
    format: str
    path: str
    producer: str | None = None
    producer_version: str | None = None
    title: str | None = None
    cwd: str | None = None
    model: str | None = None
    parent_session_id: str | None = None
    started: int | None = None  # epoch µs
    updated: int | None = None
    malformed_lines: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    columns: dict[str, list] = field(default_factory=lambda: {c: [] for c in _COLS})
    _released: int | None = None

    def __len__(self) -> int:
        return self._released if self._released is not None else len(self.columns["id"])

    def release(self) -> None:
        """Drop the row lists once they are in a table: the table holds the same data, and keeping both
        would double the memory of a large history."""
        self._released = len(self)
        self.columns = {}

    def add(
        self,
        *,
        role: str,
        origin: str,
        id: str | None = None,
        parent_id: str | None = None,
        ts: Any = None,
        text: str | None = "",
        thinking: str | None = None,
        tool_name: str | None = None,
        tool_call_id: str | None = None,
        tool_input: str | None = None,
        tool_output: str | None = None,
        tool_output_bytes: int | None = None,
        tool_status: str | None = None,
        model: str | None = None,
        input_uncached: int | None = None,
        cache_read: int | None = None,
        cache_write: int | None = None,
        output: int | None = None,
        reasoning: int | None = None,
        context_tokens: int | None = None,
        cost_usd: float | None = None,
        boundary: str | None = None,
        in_context: bool = True,
        text_bytes: int | None = None,
        raw_type: str | None = None,
        source: str | None = None,
    ) -> int:
        """Append one message row and return its index in this session.

        `text` and `tool_output` must already be capped (textutil.cap); pass the original sizes in
        `text_bytes` / `tool_output_bytes` when capping cut them. `ts` may be ISO text, epoch
        s/ms/µs or a datetime. `context_tokens` defaults to the sum of the three input columns.
        """
        c = self.columns
        n = len(c["id"])
        if context_tokens is None and input_uncached is not None:
            context_tokens = input_uncached + (cache_read or 0) + (cache_write or 0)
        c["id"].append(id if id is not None else f"{self.session_id}#{n}")
        c["session_id"].append(self.session_id)
        c["parent_id"].append(parent_id)
        c["seq"].append(n)
        c["role"].append(role)
        c["origin"].append(origin)
        c["ts"].append(ts if ts is None or type(ts) is int else to_us(ts))
        c["text"].append(text)
        c["thinking"].append(thinking)
        c["tool_name"].append(tool_name)
        c["tool_call_id"].append(tool_call_id)
        c["tool_input"].append(tool_input)
        c["tool_output"].append(tool_output)
        c["tool_output_bytes"].append(
            tool_output_bytes if tool_output_bytes is not None or tool_output is None else utf8_len(tool_output)
        )
        c["tool_status"].append(tool_status)
        c["model"].append(model)
        c["input_uncached"].append(input_uncached)
        c["cache_read"].append(cache_read)
        c["cache_write"].append(cache_write)
        c["output"].append(output)
        c["reasoning"].append(reasoning)
        c["context_tokens"].append(context_tokens)
        c["cost_usd"].append(cost_usd)
        c["boundary"].append(boundary)
        c["in_context"].append(in_context)
        c["text_bytes"].append(text_bytes if text_bytes is not None else utf8_len(text))
        c["raw_type"].append(raw_type)
        c["source"].append(source)
        return n

    def set(self, index: int, **values: Any) -> None:
        """Change fields of an already added row (e.g. attach a tool result to its call)."""
        for name, value in values.items():
            if name == "ts" and value is not None and type(value) is not int:
                value = to_us(value)
            self.columns[name][index] = value

    def get(self, index: int, name: str) -> Any:
        return self.columns[name][index]
