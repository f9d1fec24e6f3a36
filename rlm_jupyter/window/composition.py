"""`xr.composition()`: what filled the window at each turn, in estimated tokens per band.

Bands: the system prompt, tool definitions, memory files (CLAUDE.md / AGENTS.md / GEMINI.md content the harness
injects), user turns, assistant turns (text, reasoning and the tool calls the model wrote), tool results,
compaction summaries, and "unattributed": what the agent recorded as the prompt size (`context_tokens`) minus
what we can attribute. Most formats store neither the system prompt nor the tool definitions (Codex stores both
in its `session_meta` line), so for them these tokens land in "unattributed", which the notes say.

Same method as the per-turn window sizes (core.py): each row adds its band's tokens when it enters the window
and takes them out at `out_at` (its tool output at `prune_at`); one cumulative sum per band gives every turn in
O(rows), so a 20k-turn session takes well under a second.
"""

from __future__ import annotations

import json
from pathlib import Path

BANDS = (
    "system_prompt",
    "tool_definitions",
    "memory",
    "user",
    "assistant",
    "tool_results",
    "summaries",
    "unattributed",
)
BAND_TITLES = {
    "system_prompt": "system prompt",
    "tool_definitions": "tool definitions",
    "memory": "memory files",
    "user": "user turns",
    "assistant": "assistant turns",
    "tool_results": "tool results",
    "summaries": "summaries",
    "unattributed": "unattributed",
}
# Memory files as the harnesses inject them: Claude Code's claudeMd system-reminder (inside a user message),
# Codex's "# AGENTS.md instructions for <dir>" message, Gemini CLI's "--- Context from: GEMINI.md ---" blocks.
MEMORY_RX = (
    r"(?s)(<system-reminder>[^<]*?# claudeMd.*?</system-reminder>"
    r"|^# AGENTS\.md instructions for .*"
    r"|Contents of \S*(?:CLAUDE|AGENTS|GEMINI)\.md.*?(?:</system-reminder>|$)"
    r"|--- Context from: \S*(?:GEMINI|AGENTS|CLAUDE)\.md ---.*?(?:--- End of Context from: \S+ ---|$))"
)


def row_bands(xr):
    """Per row of the session: its band and tokens, the part of it that is tool output, and the memory part.

    Columns: local, band, out_at, prune_at, tokens (whole row), output_part, memory_part."""
    import polars as pl

    r = xr.rows
    mem_bytes = pl.col("text").str.extract(MEMORY_RX, 1).str.len_bytes().fill_null(0)
    band = (
        pl.when(pl.col("role") == "system")
        .then(pl.lit("system_prompt"))
        .when(pl.col("origin") == "summary")
        .then(pl.lit("summaries"))
        .when(pl.col("role") == "tool")
        .then(pl.lit("assistant"))  # the call; its output is split off below
        .when(pl.col("role") == "assistant")
        .then(pl.lit("assistant"))
        .otherwise(pl.lit("user"))
    )
    return r.filter(~pl.col("marker")).select(
        "local",
        "id",
        "role",
        "out_at",
        "prune_at",
        "tokens",
        band.alias("band"),
        pl.when(pl.col("role") == "tool")
        .then(pl.min_horizontal("output_tokens", "tokens"))
        .otherwise(0)
        .cast(pl.Int64)
        .alias("output_part"),
        pl.when(pl.col("role").is_in(["user", "system"]))
        .then(pl.min_horizontal((mem_bytes + 3) // 4, pl.col("tokens")))
        .otherwise(0)
        .cast(pl.Int64)
        .alias("memory_part"),
    )


def _pieces(rb):
    """Split each row into (band, tokens, enters, leaves) pieces: the memory part, the tool output, the rest."""
    import polars as pl

    rest = pl.col("tokens") - pl.col("output_part") - pl.col("memory_part")
    whole = rb.select("local", "out_at", "prune_at", "band", rest.alias("t"))
    memory = rb.filter(pl.col("memory_part") > 0).select(
        "local", "out_at", "prune_at", pl.lit("memory").alias("band"), pl.col("memory_part").alias("t")
    )
    output = rb.filter(pl.col("output_part") > 0).select(
        "local",
        pl.min_horizontal("out_at", "prune_at").alias("out_at"),
        "prune_at",
        pl.lit("tool_results").alias("band"),
        pl.col("output_part").alias("t"),
    )
    return pl.concat([whole, memory, output])


def _session_meta(xr) -> dict:
    """Codex keeps its system prompt (`base_instructions`) and tool schemas (`dynamic_tools`) in the first line."""
    if xr.format != "codex":
        return {}
    import polars as pl

    info = xr.ctx.sessions.filter(pl.col("session_id") == xr.session_id).row(0, named=True)
    path = info.get("path")
    if not path:
        return {}
    try:
        with Path(path).open("rb") as f:
            first = json.loads(f.readline() or b"{}")
    except (OSError, ValueError):
        return {}
    payload = first.get("payload") if isinstance(first, dict) else None
    if not isinstance(payload, dict):
        return {}
    out = {}
    bi = payload.get("base_instructions")
    text = bi.get("text") if isinstance(bi, dict) else bi if isinstance(bi, str) else None
    if text:
        out["system_prompt"] = (len(text.encode()) + 3) // 4
    tools = payload.get("dynamic_tools") or payload.get("tools")
    if tools:
        out["tool_definitions"] = (len(json.dumps(tools).encode()) + 3) // 4
    return out


def composition(xr):
    """One row per turn: turn, id, context_tokens (recorded), a column per band (estimated tokens), estimated
    (the sum of the attributed bands) and unattributed (recorded minus attributed; null where nothing is
    recorded)."""
    import polars as pl

    cached = xr._cache.get("composition")
    if cached is not None:
        return cached
    rb = row_bands(xr)
    p = _pieces(rb)
    n = xr.rows.height
    deltas = [
        p.select((pl.col("local") + 1).alias("at"), "band", "t"),
        p.select(pl.col("out_at").alias("at"), "band", (-pl.col("t")).alias("t")),
    ]
    held = _held_deltas(xr, p)
    if held is not None:
        deltas.append(held)
    d = (
        pl.concat(deltas)
        .filter(pl.col("at") <= n)
        .group_by("at", "band")
        .agg(pl.col("t").sum())
        .pivot(on="band", index="at", values="t")
    )
    attributed = [b for b in BANDS if b not in ("unattributed",)]
    for b in attributed:
        if b not in d.columns:
            d = d.with_columns(pl.lit(0, dtype=pl.Int64).alias(b))
    grid = (
        pl.DataFrame({"at": pl.int_range(n + 1, dtype=pl.Int64, eager=True)})
        .join(d.select("at", *attributed), on="at", how="left")
        .sort("at")
        .fill_null(0)
        .with_columns(pl.col(b).cum_sum() for b in attributed)
    )
    t = xr.turns
    out = t.select("turn", "id", "local", "context_tokens").with_columns(
        grid.select(attributed).gather(t["local"]).get_columns()
    )
    meta = _session_meta(xr)
    for b, v in meta.items():
        out = out.with_columns((pl.col(b) + v).alias(b))
    est = pl.sum_horizontal(attributed)
    out = out.with_columns(est.alias("estimated")).with_columns(
        (pl.col("context_tokens") - pl.col("estimated")).clip(lower_bound=0).alias("unattributed")
    )
    out = out.select("turn", "id", "context_tokens", *BANDS, "estimated").with_columns(
        pl.col(b).cast(pl.Int64) for b in BANDS
    )
    xr._cache["composition"] = out
    return out


def _held_deltas(xr, p):
    """A kept tail not sent to the summary call: out at that one step, back at the next (see Event.held)."""
    import polars as pl

    pairs = [(step, j) for step, rows in xr._held.items() for j in rows]
    if not pairs:
        return None
    h = pl.DataFrame(pairs, schema={"step": pl.Int64, "local": pl.Int64}, orient="row")
    live = h.join(p, on="local").filter(pl.col("out_at") > pl.col("step"))
    return pl.concat(
        [
            live.select(pl.col("step").alias("at"), "band", (-pl.col("t")).alias("t")),
            live.select((pl.col("step") + 1).alias("at"), "band", "t"),
        ]
    )


def notes(xr) -> list[str]:
    """What the composition could not attribute, and why (shown as the chart's subtitle)."""
    meta = _session_meta(xr)
    c = composition(xr)
    out = []
    missing = [
        BAND_TITLES[b]
        for b in ("system_prompt", "tool_definitions")
        if b not in meta and not (b == "system_prompt" and int(c["system_prompt"].max() or 0) > 0)
    ]
    if missing:
        out.append(f"{xr.format} session files do not store the {' or the '.join(missing)}: they are in 'unattributed'")
    if c.height and c["context_tokens"].null_count() == c.height:
        out.append("no token usage recorded: only the attributed (estimated) bands, no 'unattributed'")
    over = c.filter(c["estimated"] > c["context_tokens"]).height
    if over:
        out.append(
            f"on {over} turn(s) the estimate exceeds the recorded size (bytes/4 over-counts): 'unattributed' is 0 there"
        )
    return out


def band_messages(xr, turn: int, band: str, limit: int = 6):
    """The messages of `band` in the window at `turn` (largest first, at most `limit`): local, id, role, tokens,
    excerpt. The chart's hover lists these."""
    import polars as pl

    i = xr._local_of_turn(turn)
    rb = _window_pieces(xr, i)
    return _top(xr, rb.filter(pl.col("band") == band), limit)


def _window_pieces(xr, i: int):
    import polars as pl

    p = xr._cache.get("composition_pieces")
    if p is None:
        p = _pieces(row_bands(xr)).filter(pl.col("t") > 0)
        xr._cache["composition_pieces"] = p
    held = sorted(xr._held.get(i, ()))
    return p.filter((pl.col("local") < i) & (pl.col("out_at") > i) & ~pl.col("local").is_in(held))


def _top(xr, pieces, limit: int):
    import polars as pl

    top = pieces.sort("t", descending=True).head(limit)
    rows = xr._cache.get("composition_excerpts")
    if rows is None:  # built once: the chart asks for the messages of hundreds of turns
        rows = xr.rows.select(
            "local",
            "id",
            "role",
            pl.coalesce(pl.col("text").str.slice(0, 80), pl.col("tool_output").str.slice(0, 80), pl.lit("")).alias(
                "excerpt"
            ),
        )
        xr._cache["composition_excerpts"] = rows
    return top.join(rows, on="local", how="left").select(
        "local", "band", "id", "role", pl.col("t").alias("tokens"), pl.col("excerpt").str.replace_all(r"\s+", " ")
    )
