"""The query API of a `Context` (positions, ids, filters, chunks, regex and ranked search, the indexes behind
them), kept apart from the class's tables and marks (environment.py). Each method is typed `self: Context`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import ranking
from .errors import ArgumentError, PositionError, PredicateError, UnknownIdError
from .ranking import PRIORITY_WEIGHT, RECENCY_HALF_LIFE, RECENCY_WEIGHT, RRF_K, SEARCH_MODES
from .results import CONTENT_FIELDS, Chunks, Message, Messages, Snippets
from .symbols import SYMBOL_RX
from .trace import traced

if TYPE_CHECKING:
    from .environment import Context


class ContextQueries:
    """Mixed into `Context`: what a model or a researcher asks of a history."""

    # ---- positional and lookup API ---------------------------------------------------------------------------

    @traced("getitem", counts=True)
    def _at(self: Context, position: int) -> Message:
        self._need_rows("ctx[i]")
        n = len(self)
        if isinstance(position, bool) or not isinstance(position, int):
            raise ArgumentError(
                f"ctx[i]: i must be an int position, a slice (ctx[-20:]) or a message id, got {type(position).__name__}"
            )
        if not -n <= position < n:
            raise PositionError(
                f"ctx[{position}]: position out of range; the history has {n:,} messages, pass 0…{n - 1} or -{n}…-1"
            )
        return Message(self.table.row(position % n, named=True))

    @traced("slice")
    def slice(self: Context, start: int | None = None, stop: int | None = None) -> Messages:
        """Messages by position: `slice(-20)` the last 20, `slice(100, 140)` positions 100–139, `slice(100)`
        from 100 to the end. A start before the beginning is clamped (the last 20 of 10 messages are all 10);
        a start past the end, or after stop, is an error."""
        self._need_rows("slice")
        n = len(self)
        for name, v in (("start", start), ("stop", stop)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, int)):
                raise ArgumentError(f"slice: {name} must be an int position or None, got {v!r}")
        if start is not None and start >= n:
            raise PositionError(
                f"slice: start={start} is past the end; the history has {n:,} messages "
                f"(positions 0…{n - 1}); pass a smaller start, or a negative one (-20 = last 20)"
            )
        lo, hi, _ = slice(start, stop).indices(n)
        if lo > hi:
            raise PositionError(
                f"slice: start={start} comes after stop={stop} (positions {lo} > {hi}); pass start <= stop"
            )
        return Messages(self, list(range(lo, hi)), label=f"[{lo}:{hi}]")

    @traced("get_by_id", counts=True)
    def get_by_id(self: Context, id):
        """The message with this id (a Message), or for a list of ids their Messages in the order given."""
        self._need_rows("get_by_id")
        index = self._id_index()
        if isinstance(id, str):
            if id not in index:
                raise UnknownIdError(self._unknown_ids_message("get_by_id", "id", [id]))
            return Message(self.table.row(index[id], named=True))
        ids = self._as_id_list(id, "get_by_id", "id")
        missing = [i for i in ids if i not in index]
        if missing:
            raise UnknownIdError(self._unknown_ids_message("get_by_id", "id", missing))
        return Messages(self, [index[i] for i in ids], label="by id")

    @traced("filter")
    def filter(self: Context, predicate) -> Messages:
        """Messages for which `predicate` holds: a polars expression over `ctx.table`'s columns
        (`pl.col("tool_name") == "bash"`) or a function of a Message (`lambda m: m.role == "tool"`)."""
        self._need_rows("filter")
        import polars as pl

        if isinstance(predicate, pl.Expr):
            try:
                positions = self.table.filter(predicate).get_column("position").to_list()
            except (pl.exceptions.PolarsError, TypeError, ValueError) as e:
                first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                raise PredicateError(
                    f"filter: the expression {predicate} failed on ctx.table ({type(e).__name__}: {first}); "
                    f"it must give one boolean per message over the columns {self.table.columns}, "
                    "e.g. pl.col('tool_name') == 'bash'"
                ) from None
            return Messages(self, positions, label=f"filter {predicate}")
        if callable(predicate):
            return Messages(self, _filter_python(self, predicate), label="filter")
        raise ArgumentError(
            f"filter: predicate must be a polars expression (pl.col('role') == 'tool') or a function of a Message "
            f"(lambda m: m.role == 'tool'), got {type(predicate).__name__}"
            + (
                "; to find text, use ctx.regex_search(pattern) or ctx.search(query)"
                if isinstance(predicate, str)
                else ""
            )
        )

    @traced("chunk")
    def chunk(self: Context, size: int = 10_000) -> Chunks:
        """The history cut into consecutive chunks of at most `size` estimated tokens, never splitting a message;
        a message bigger than `size` is a chunk of its own."""
        self._need_rows("chunk")
        if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
            raise ArgumentError(f"chunk: size must be a positive number of tokens (e.g. 10_000), got {size!r}")
        bounds, start, acc = [], 0, 0
        for pos, t in enumerate(self._base["tokens"].to_list()):
            if acc and acc + t > size:
                bounds.append((start, pos))
                start, acc = pos, 0
            acc += t
        bounds.append((start, len(self)))
        return Chunks([Messages(self, list(range(a, b)), label=f"chunk {i}") for i, (a, b) in enumerate(bounds)], size)

    # ---- search ----------------------------------------------------------------------------------------------

    @traced("regex_search", counts=True)
    def regex_search(self: Context, pattern, limit: int = 50, case: bool = True, flags: int = 0) -> Snippets:
        """Messages whose text, thinking, tool input or tool output match `pattern` (Python regex syntax), in
        history order, with the matched spans. `case=False` ignores case; `flags` takes re flags."""
        from . import search

        self._need_rows("regex_search")
        ranking.check_limit("regex_search", limit)
        rx = search.compile_pattern(pattern, case, flags)
        positions, spans, total = search.regex_matches(self.df, rx, limit)
        return Snippets(self, positions, None, spans, label=f"regex {rx.pattern!r}", total=total)

    @traced("search", counts=True)
    def search(
        self: Context,
        query: str,
        limit: int = 10,
        mode: str = "hybrid",
        *,
        embedder=None,
        k: int = RRF_K,
        priority_weight: float = PRIORITY_WEIGHT,
        recency_weight: float = RECENCY_WEIGHT,
        recency_half_life: float = RECENCY_HALF_LIFE,
        rerank: bool = False,
    ) -> Snippets:
        """Ranked search over messages. mode: "bm25" (keyword, tantivy), "semantic" (embeddings) or "hybrid"
        (both rankings fused: a message scores 1/(k + its best rank), agreement breaks ties). Scores are then
        weighted by priority and by active-time recency (see docs/context.md for the defaults). `embedder`:
        "model2vec" (default), "minilm" or an object with encode() and name. A `§symbol` id in the query expands
        to that symbol's messages, listed first. Without the embedding packages, "semantic" and "hybrid" run bm25
        and say so once. `rerank=True` re-scores the top 20 with MiniLM (context/rerank.py; seconds per query)."""
        self._need_rows("search")
        if mode not in SEARCH_MODES:
            raise ArgumentError(f"search: mode must be one of {SEARCH_MODES}, got {mode!r}")
        if not isinstance(query, str) or not query.strip():
            raise ArgumentError(
                f"search: query must be non-empty text such as 'authentication decision', got {query!r}"
            )
        ranking.check_limit("search", limit)
        ranking.check_weights(k, priority_weight, recency_weight, recency_half_life)
        named = SYMBOL_RX.findall(query)
        rest = SYMBOL_RX.sub(" ", query).strip()
        expanded: list[int] = []
        for sid in named:
            expanded += [p for p in self.symbols.expand(sid).positions if p not in expanded]
        ranked: ranking.Ranked = []
        used = "symbols"
        if rest:
            pool = max(limit * 5, 50)
            ranked, used = ranking.ranked(self, rest, pool, mode, embedder, k)
            if rerank:
                from . import embed
                from .rerank import rerank as rerank_top

                ranked, used = rerank_top(self.df, rest, ranked, k, embed.get_embedder("minilm")), used + "+rerank"
            ranked = ranking.weigh(self, ranked, priority_weight, recency_weight, recency_half_life)
        positions = expanded + [p for p, _ in ranked if p not in expanded][: max(0, limit - len(expanded))]
        positions = positions[: max(limit, len(expanded))]
        scores = None if expanded else [sc for _, sc in ranked[:limit]]
        spans = _spans(self, rest, positions)
        return Snippets(self, positions, scores, spans, label=f"search {query!r} ({used})")

    @traced("expand", counts=True)
    def expand(self: Context, symbol: str) -> Messages:
        """The messages a symbol (`§id`, from ctx.symbols.create or suggest) stands for."""
        self._need_rows("expand")
        return self.symbols.expand(symbol)


def _filter_python(ctx: Context, predicate) -> list[int]:
    positions = []
    for pos, row in enumerate(ctx.table.iter_rows(named=True)):
        m = Message(row)
        try:
            keep = predicate(m)
        except Exception as e:
            raise PredicateError(
                f"filter: the predicate raised {type(e).__name__}: {e} on message {row['id']!r} "
                f"(position {pos}); fields are often None (tool_name on non-tool rows, ts, thinking): guard "
                "with (m.tool_name or ''), or use .content, which is always a str"
            ) from e
        if keep:
            positions.append(pos)
    return positions


def _spans(ctx: Context, query: str, positions: list[int]) -> list[list]:
    if not positions or not query:
        return [[] for _ in positions]
    from .search import find_spans

    hl = ctx.keyword_index().highlighter(query)
    rows = ctx.df.select(CONTENT_FIELDS)[positions].iter_rows(named=True)
    return [find_spans(r, hl) if hl else [] for r in rows]
