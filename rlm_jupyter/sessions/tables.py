"""Polars tables from loaded sessions: one row per message, one row per session, and the
per-session summaries that `rlm-jupyter inspect --json` prints."""

from __future__ import annotations

from typing import Any

from .model import Session
from .schema import MESSAGE_COLUMNS, SESSION_COLUMNS, polars_schema


def messages_frame(sessions: list[Session]):
    import polars as pl

    schema = polars_schema(MESSAGE_COLUMNS)
    raw_schema = {k: (pl.Int64 if v == pl.Datetime("us", "UTC") else v) for k, v in schema.items()}
    frames = [pl.DataFrame(s.columns, schema=raw_schema) for s in sessions if len(s)]
    if not frames:
        return pl.DataFrame(schema=schema)
    df = pl.concat(frames, how="vertical", rechunk=True) if len(frames) > 1 else frames[0]
    return df.with_columns(pl.col("ts").cast(schema["ts"]))


def sessions_frame(sessions: list[Session], df):
    import polars as pl

    schema = polars_schema(SESSION_COLUMNS)
    totals = {
        r["session_id"]: r
        for r in df.group_by("session_id")
        .agg(
            pl.len().alias("messages"),
            ((pl.col("role") == "user") & (pl.col("origin") == "human")).sum().alias("user_prompts"),
            (pl.col("role") == "tool").sum().alias("tool_calls"),
            (pl.col("tool_status") == "error").sum().alias("tool_errors"),
            (pl.col("boundary") == "compaction").sum().alias("compactions"),
            pl.col("input_uncached").sum().alias("input_tokens"),
            pl.col("output").sum().alias("output_tokens"),
            pl.col("cache_read").sum(),
            pl.col("cache_write").sum(),
            pl.col("reasoning").sum(),
            pl.col("cost_usd").sum(),
            pl.col("ts").min().alias("_first"),
            pl.col("ts").max().alias("_last"),
        )
        .iter_rows(named=True)
    }
    rows: dict[str, list] = {c: [] for c in SESSION_COLUMNS}
    for s in sessions:
        t = totals.get(s.session_id, {})
        first, last = t.get("_first"), t.get("_last")
        values: dict[str, Any] = {
            "session_id": s.session_id,
            "format": s.format,
            "producer": s.producer,
            "producer_version": s.producer_version,
            "title": s.title,
            "cwd": s.cwd,
            "model": s.model,
            "started": s.started if s.started is not None else _us(first),
            "updated": s.updated if s.updated is not None else _us(last),
            "parent_session_id": s.parent_session_id,
            "path": s.path,
            "malformed_lines": s.malformed_lines,
            "context_window": s.extra.get("context_window"),
        }
        for c in SESSION_COLUMNS:
            rows[c].append(values[c] if c in values else (t.get(c) or 0))
    raw = {k: (pl.Int64 if v == pl.Datetime("us", "UTC") else v) for k, v in schema.items()}
    out = pl.DataFrame(rows, schema=raw)
    return out.with_columns(pl.col("started").cast(schema["started"]), pl.col("updated").cast(schema["updated"])).sort(
        "updated", descending=True, nulls_last=True
    )


def _us(dt) -> int | None:
    if dt is None:
        return None
    from .textutil import to_us

    return to_us(dt)


def session_summaries(sessions: list[Session], df) -> list[dict[str, Any]]:
    """The stable per-session objects of `inspect --json` (keys documented in docs/cli.md)."""
    import polars as pl

    children: dict[str, list[str]] = {}
    for s in sessions:
        if s.parent_session_id:
            children.setdefault(s.parent_session_id, []).append(s.session_id)
    parts = df.partition_by("session_id", as_dict=True, maintain_order=True) if len(df) else {}
    out = []
    for s in sessions:
        sdf = parts.get((s.session_id,))
        if sdf is None:
            sdf = df.clear()
        sdf = sdf.sort("seq")
        roles = sdf["role"].value_counts(sort=True)
        human = (pl.col("role") == "user") & (pl.col("origin") == "human")
        out.append(
            {
                "format": s.format,
                "producer": s.producer,
                "producer_version": s.producer_version,
                "session_id": s.session_id,
                "parent_session_id": s.parent_session_id,
                "title": s.title,
                "path": s.path,
                "messages": {r: int(n) for r, n in roles.iter_rows()},
                "user_prompts": sdf.filter(human)["text"].to_list(),
                "tool_calls": sdf.filter(pl.col("role") == "tool")["tool_name"].to_list(),
                "tool_errors": int((sdf["tool_status"] == "error").sum()),
                "subagents": children.get(s.session_id, []),
                "compactions": int((sdf["boundary"] == "compaction").sum()),
                "malformed_lines": s.malformed_lines,
                "tokens": {
                    "input": int(sdf["input_uncached"].sum()),
                    "output": int(sdf["output"].sum()),
                    "cache_read": int(sdf["cache_read"].sum()),
                    "cache_write": int(sdf["cache_write"].sum()),
                    "reasoning": int(sdf["reasoning"].sum()),
                },
            }
        )
    return out


def rows_frame(sessions: list[Session]):
    """One frame holding the rows of all `sessions` in order (their column lists joined first, so a batch of
    files costs one frame build, not one per session). The sessions' lists are released."""
    import polars as pl

    schema = polars_schema(MESSAGE_COLUMNS)
    raw_schema = {k: (pl.Int64 if v == pl.Datetime("us", "UTC") else v) for k, v in schema.items()}
    filled = [s for s in sessions if len(s)]
    if len(filled) == 1:
        columns = filled[0].columns
    else:
        columns = {c: [] for c in MESSAGE_COLUMNS}
        for s in filled:
            for c, values in s.columns.items():
                columns[c].extend(values)
    df = pl.DataFrame(columns, schema=raw_schema)
    del columns
    for s in sessions:
        s.release()
    return df.with_columns(pl.col("ts").cast(schema["ts"]))
