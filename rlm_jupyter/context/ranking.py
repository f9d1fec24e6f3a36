"""How `Context.search` ranks: keyword (BM25), meaning (embeddings) or both fused, then weighted by priority and
active-time recency. The defaults and the reasons for them are in docs/context.md."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from .errors import ArgumentError
from .metadata import DEFAULT_PRIORITY

if TYPE_CHECKING:
    from .environment import Context

SEARCH_MODES = ("hybrid", "bm25", "semantic")
RRF_K = 60  # reciprocal-rank constant (Cormack et al. 2009): hybrid scores 1 / (k + best rank)
PRIORITY_WEIGHT = 0.5  # score x (1 + w * (priority - 5) / 5): priority 10 -> x1.5, 1 -> x0.6 (no-op while unset)
RECENCY_WEIGHT = 0.0  # score x (1 + w * 0.5 ** (active minutes before its session's end / half-life)); off
RECENCY_HALF_LIFE = 30.0  # active minutes
_warned_semantic_off = False

Ranked = list[tuple[int, float]]  # (position, score), best first


def check_limit(op: str, limit: Any) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0:
        raise ArgumentError(f"{op}: limit must be a positive int (how many results to return), got {limit!r}")


def check_weights(k: Any, priority_weight: Any, recency_weight: Any, half_life: Any) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise ArgumentError(f"search: k (the fusion constant) must be an int >= 0 (default {RRF_K}), got {k!r}")
    for name, v in (("priority_weight", priority_weight), ("recency_weight", recency_weight)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 10:
            raise ArgumentError(f"search: {name} must be a number from 0 (off) to 10, got {v!r}")
    if isinstance(half_life, bool) or not isinstance(half_life, (int, float)) or half_life <= 0:
        raise ArgumentError(f"search: recency_half_life must be a positive number of active minutes, got {half_life!r}")


def ranked(ctx: Context, query: str, pool: int, mode: str, embedder: Any, k: int) -> tuple[Ranked, str]:
    """The best `pool` positions for `query` in `mode`, and the mode actually used ("bm25" when the embedding
    packages are missing: said once per process)."""
    if mode != "bm25":
        from . import embed

        reason = embed.unavailable_reason(embedder if embedder is not None else embed.DEFAULT_EMBEDDER)
        if reason is None:
            semantic = ctx.semantic_index(embedder).search(query, pool)
            if mode == "semantic":
                return semantic, "semantic"
            from .search import fuse_ranks  # best rank wins, agreement breaks ties: see search.py

            return fuse_ranks([ctx.keyword_index().search(query, pool), semantic], k), "hybrid"
        _warn_semantic_off(mode, reason)
    return ctx.keyword_index().search(query, pool), "bm25"


def weigh(ctx: Context, ranked: Ranked, priority_weight: float, recency_weight: float, half_life: float) -> Ranked:
    """`ranked` re-scored by priority and active-time recency, best first (unchanged while both are off)."""
    use_priority = priority_weight and ctx.metadata.priority
    if not ranked or not (use_priority or recency_weight):
        return ranked
    import polars as pl

    positions = [p for p, _ in ranked]
    rows = recency_frame(ctx)[positions]
    factor = pl.lit(1.0)
    if use_priority:
        factor = factor * (1 + priority_weight * (pl.col("priority") - DEFAULT_PRIORITY) / DEFAULT_PRIORITY)
    if recency_weight:
        factor = factor * (1 + recency_weight * 0.5 ** (pl.col("age_s") / 60 / half_life))
    factors = rows.select(factor.alias("f"))["f"].to_list()
    out = [(p, sc * f) for (p, sc), f in zip(ranked, factors, strict=True)]
    return sorted(out, key=lambda t: -t[1])


def recency_frame(ctx: Context):
    """priority and age_s (active seconds from the message to its session's last message), per position."""
    key = ("recency", ctx.metadata.version)
    if ctx._recency_cache is None or ctx._recency_cache[0] != key:
        import polars as pl

        frame = ctx.table.select(
            "priority", (pl.col("active_s").max().over("session_id") - pl.col("active_s")).alias("age_s")
        )
        ctx._recency_cache = (key, frame)
    return ctx._recency_cache[1]


def _warn_semantic_off(mode: str, reason: str) -> None:
    global _warned_semantic_off
    if not _warned_semantic_off:
        _warned_semantic_off = True
        from .embed import INSTALL_HINT

        warnings.warn(
            f"search(mode={mode!r}): meaning search is off ({reason}); running keyword search (bm25) instead. "
            f"To turn it on: {INSTALL_HINT}. Pass mode='bm25' to silence this.",
            UserWarning,
            stacklevel=5,
        )
