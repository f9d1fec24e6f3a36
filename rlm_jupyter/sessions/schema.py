"""The normalized message row every loader produces, and the per-session row.

Kept free of polars at import time: dtypes are named here and resolved when a table is built,
so `import rlm_jupyter` stays light.
"""

from __future__ import annotations

from typing import Any

# Column name -> polars dtype name. Order is the order of `ctx.df`.
MESSAGE_COLUMNS: dict[str, str] = {
    "id": "str",  # native id where the format has one, else "<session>#<n>"
    "session_id": "str",
    "parent_id": "str",  # the message this one answers or belongs to (tool rows: their assistant message)
    "seq": "int",  # 0-based order in the session
    "role": "str",  # user | assistant | system | tool
    "origin": "str",  # human | harness | model | tool | summary
    "ts": "datetime",  # UTC; null when the format records no time
    "text": "str",  # visible text (tool rows: a one-line "name: input" description)
    "thinking": "str",  # reasoning / thinking text, when the format keeps it
    "tool_name": "str",
    "tool_call_id": "str",
    "tool_input": "str",  # JSON text, capped (see textutil.MAX_FIELD_CHARS)
    "tool_output": "str",  # capped preview; full size in tool_output_bytes, `source` re-reads it
    "tool_output_bytes": "int",
    "tool_status": "str",  # ok | error | null
    "model": "str",
    "input_uncached": "int",  # prompt tokens not read from cache
    "cache_read": "int",
    "cache_write": "int",
    "output": "int",
    "reasoning": "int",
    "context_tokens": "int",  # prompt size of this model step = input_uncached + cache_read + cache_write
    "cost_usd": "float",
    "boundary": "str",  # null | compaction | summary | rewind | fork | prune (a record of cleared outputs)
    "in_context": "bool",  # false for what a compaction/prune/rewind removed from the model's window
    "text_bytes": "int",  # UTF-8 size of the text before capping
    "raw_type": "str",  # the format's own record type, e.g. "response_item/function_call"
    "source": "str",  # "path:line" (JSONL), "path#pointer" (JSON), "db#table/id" (SQLite)
    # What the agent did to its model's window, resolved at load time (sessions/window.py; docs/sessions.md,
    # "Window events"). Row numbers are `seq` values of the same session.
    "out_by": "int",  # the row whose window event took this row out of the window (null: never)
    "cleared_by": "int",  # the row whose window event cleared this row's tool output; the call stayed
    "window_event": "event",  # on the row that carries a window event: WINDOW_EVENT fields, else null
}

# The fields of `window_event` (a polars struct). Kinds that take rows out: compaction | rewind | compression
# (inferred from a token drop); kinds that clear tool outputs (the call stays): prune | microcompact |
# context_edit | masking.
WINDOW_EVENT: dict[str, str] = {
    "kind": "str",
    "how": "str",  # recorded (the agent wrote the event) | inferred (we deduced it; `note` says how)
    "at": "int",  # the first row (seq) whose model step no longer saw what it removed
    "summary": "int",  # the row of the summary that replaced the history, if any
    "summary_kind": "str",  # readable | opaque (encrypted, e.g. Codex remote compaction) | null (no summary)
    "held_from": "int",  # kept tail rows from here on were not sent to the summary call (OpenCode)
    "tokens_before": "int",  # the window size the agent recorded before it (Claude preTokens), or inferred
    "tokens_after": "int",  # the window size after it, where recorded or inferred
    "tokens_removed": "int",  # tokens the agent says it saved (Claude tokensSaved, API cleared_input_tokens)
    "trigger": "str",  # auto | manual | the agent's own word
    "note": "str",  # what was recorded, and what was deduced
}
REMOVING = frozenset({"compaction", "rewind", "compression"})
CLEARING = frozenset({"prune", "microcompact", "context_edit", "masking"})
WINDOW_KINDS = REMOVING | CLEARING

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
    "context_window": "int",  # the model's window in tokens, where the agent records it (Codex model_context_window)
}

ROLES = frozenset({"user", "assistant", "system", "tool"})
ORIGINS = frozenset({"human", "harness", "model", "tool", "summary"})
BOUNDARIES = frozenset({"compaction", "summary", "rewind", "fork", "prune"})
TOOL_STATUSES = frozenset({"ok", "error"})


def polars_schema(columns: dict[str, str]):
    """Resolve dtype names to a polars schema (imports polars)."""
    import polars as pl

    dtypes: dict[str, Any] = {
        "str": pl.String,
        "int": pl.Int64,
        "float": pl.Float64,
        "bool": pl.Boolean,
        "datetime": pl.Datetime("us", "UTC"),
    }
    dtypes["event"] = pl.Struct({name: dtypes[kind] for name, kind in WINDOW_EVENT.items()})
    return {name: dtypes[kind] for name, kind in columns.items()}
