"""The normalized message row every loader produces, and the per-session row.

Kept free of polars at import time: dtypes are named here and resolved when a table is built,
so `import rlm_jupyter` stays light.
"""

from __future__ import annotations

# Column name -> polars dtype name. Order is the order of `ctx.df`.
MESSAGE_COLUMNS: dict[str, str] = {
    "id": "str",               # native id where the format has one, else "<session>#<n>"
    "session_id": "str",
    "parent_id": "str",        # the message this one answers or belongs to (tool rows: their assistant message)
    "seq": "int",              # 0-based order in the session
    "role": "str",             # user | assistant | system | tool
    "origin": "str",           # human | harness | model | tool | summary
    "ts": "datetime",          # UTC; null when the format records no time
    "text": "str",             # visible text (tool rows: a one-line "name: input" description)
    "thinking": "str",         # reasoning / thinking text, when the format keeps it
    "tool_name": "str",
    "tool_call_id": "str",
    "tool_input": "str",       # JSON text, capped (see textutil.MAX_FIELD_CHARS)
    "tool_output": "str",      # capped preview; full size in tool_output_bytes, `source` re-reads it
    "tool_output_bytes": "int",
    "tool_status": "str",      # ok | error | null
    "model": "str",
    "input_uncached": "int",   # prompt tokens not read from cache
    "cache_read": "int",
    "cache_write": "int",
    "output": "int",
    "reasoning": "int",
    "context_tokens": "int",   # prompt size of this model step = input_uncached + cache_read + cache_write
    "cost_usd": "float",
    "boundary": "str",         # null | compaction | summary | rewind | fork
    "in_context": "bool",      # false for what a compaction/prune/rewind removed from the model's window
    "text_bytes": "int",       # UTF-8 size of the text before capping
    "raw_type": "str",         # the format's own record type, e.g. "response_item/function_call"
    "source": "str",           # "path:line" (JSONL), "path#pointer" (JSON), "db#table/id" (SQLite)
}

SESSION_COLUMNS: dict[str, str] = {
    "session_id": "str",
    "format": "str",
    "producer": "str",
    "producer_version": "str",
    "title": "str",
    "cwd": "str",
    "model": "str",
    "started": "datetime",
    "updated": "datetime",
    "parent_session_id": "str",
    "path": "str",
    "messages": "int",
    "user_prompts": "int",
    "tool_calls": "int",
    "tool_errors": "int",
    "compactions": "int",
    "input_tokens": "int",
    "output_tokens": "int",
    "cache_read": "int",
    "cache_write": "int",
    "reasoning": "int",
    "cost_usd": "float",
    "malformed_lines": "int",
}

ROLES = frozenset({"user", "assistant", "system", "tool"})
ORIGINS = frozenset({"human", "harness", "model", "tool", "summary"})
BOUNDARIES = frozenset({"compaction", "summary", "rewind", "fork"})
TOOL_STATUSES = frozenset({"ok", "error"})


def polars_schema(columns: dict[str, str]):
    """Resolve dtype names to a polars schema (imports polars)."""
    import polars as pl

    dtypes = {
        "str": pl.String,
        "int": pl.Int64,
        "float": pl.Float64,
        "bool": pl.Boolean,
        "datetime": pl.Datetime("us", "UTC"),
    }
    return {name: dtypes[kind] for name, kind in columns.items()}
