"""`Context`: loaded sessions as polars tables, the load report, and the query API a model or a researcher uses.

Positions: the history is the concatenation of the sessions' messages in load order; `position` is a row's
0-based index in `ctx.df` (and `ctx.table`). polars and tantivy are imported on first use, never at import time.
"""

from __future__ import annotations

import warnings
from functools import cached_property

from ..sessions import LoadReport, Session, read_sessions, tables
from .errors import ArgumentError, EmptyContextError, PositionError, PredicateError, UnknownIdError
from .metadata import DEFAULT_PRIORITY, ContextMetadata, active_seconds_expr
from .results import CONTENT_FIELDS, Chunks, Message, Messages, Snippets
from .trace import TraceRecorder, traced

SEARCH_MODES = ("hybrid", "bm25", "semantic")
_warned_semantic_off = False


class Context:
    """A history of one or more agent sessions.

    ``df`` has one row per message (columns in ``rlm_jupyter.sessions.schema``), ``sessions``
    one row per session, and ``report`` says what was read and what was skipped. ``table`` is ``df`` plus
    derived columns (position, tokens, active_s, preserved, pruned, priority) that queries and filters see.
    """

    def __init__(self, sessions: list[Session], report: LoadReport | None = None):
        self._sessions = sessions
        self.report = report or LoadReport()
        self.metadata = ContextMetadata(self)
        self._tracers: list = []
        self._trace_depth = 0
        self._table_cache: tuple | None = None
        self._keyword_index = None

    @classmethod
    def load(cls, *paths) -> Context:
        if len(paths) == 1 and not isinstance(paths[0], (str, bytes)) and hasattr(paths[0], "__iter__"):
            paths = tuple(paths[0])
        sessions, report = read_sessions(list(paths))
        return cls(sessions, report)

    # ---- tables ---------------------------------------------------------------------------------------------

    @cached_property
    def df(self):
        df = tables.messages_frame(self._sessions)
        for s in self._sessions:
            s.release()  # the frame now holds the rows
        return df

    @cached_property
    def sessions(self):
        return tables.sessions_frame(self._sessions, self.df)

    def summaries(self) -> list[dict]:
        """Per-session summaries: the objects `rlm-jupyter inspect --json` prints."""
        return tables.session_summaries(self._sessions, self.df)

    @cached_property
    def _base(self):
        """`df` + position + tokens: built once (the metadata columns are added in `table`)."""
        import polars as pl

        nbytes = pl.sum_horizontal([pl.col(f).str.len_bytes().fill_null(0) for f in CONTENT_FIELDS])
        return self.df.with_columns(
            pl.int_range(pl.len(), dtype=pl.Int64).alias("position"),
            ((nbytes + 3) // 4).cast(pl.Int64).alias("tokens"),
        )

    @property
    def table(self):
        """`df` with position, tokens (estimated), active_s, preserved, pruned and priority columns."""
        key = self.metadata.version
        if self._table_cache is None or self._table_cache[0] != key:
            import polars as pl

            m = self.metadata
            ids = pl.col("id")
            prio = pl.lit(DEFAULT_PRIORITY, dtype=pl.Int64)
            if m.priority:
                prio = ids.replace_strict(m.priority, default=DEFAULT_PRIORITY, return_dtype=pl.Int64)
            table = self._base.with_columns(
                active_seconds_expr(m.gap_threshold),
                ids.is_in(list(m.preserved)).alias("preserved"),
                ids.is_in(list(m.pruned)).alias("pruned"),
                prio.alias("priority"),
            )
            self._table_cache = (key, table)
        return self._table_cache[1]

    @property
    def tokens(self) -> int:
        """Estimated text tokens of the whole history: UTF-8 bytes of text, thinking, tool input and tool output,
        divided by 4 and rounded up per message (see docs/context.md for why this estimate)."""
        return int(self._base["tokens"].sum()) if len(self) else 0

    def __len__(self) -> int:
        return sum(len(s) for s in self._sessions)

    def __repr__(self) -> str:
        formats = sorted({s.format for s in self._sessions})
        return (
            f"<Context: {len(self._sessions)} session(s) [{', '.join(formats)}], {len(self):,} messages; "
            f"{self.report.summary()}>"
        )

    def _need_rows(self, op: str) -> None:
        if len(self) == 0:
            raise EmptyContextError(
                f"{op}: the context has no messages ({self.report.summary()}); load session files with "
                "rj.load(path) and check ctx.report for files that were skipped"
            )

    def _id_index(self) -> dict[str, int]:
        """id -> position (the first one when an id repeats)."""
        if getattr(self, "_ids", None) is None:
            ids = self.df["id"].to_list() if len(self) else []
            index: dict[str, int] = {}
            for pos, i in enumerate(ids):
                index.setdefault(i, pos)
            self._ids = index
        return self._ids

    # ---- positional and lookup API ---------------------------------------------------------------------------

    def __getitem__(self, key):
        if isinstance(key, slice):
            if key.step not in (None, 1):
                raise ArgumentError(f"ctx[{key.start}:{key.stop}:{key.step}]: steps are not supported; "
                                    "pass ctx[start:stop], or ctx.filter(...) to pick messages")
            return self.slice(key.start, key.stop)
        if isinstance(key, str):
            return self.get_by_id(key)
        return self._at(key)

    @traced("getitem")
    def _at(self, position: int) -> Message:
        self._need_rows("ctx[i]")
        n = len(self)
        if isinstance(position, bool) or not isinstance(position, int):
            raise ArgumentError(f"ctx[i]: i must be an int position, a slice (ctx[-20:]) or a message id, "
                                f"got {type(position).__name__}")
        if not -n <= position < n:
            raise PositionError(f"ctx[{position}]: position out of range; the history has {n:,} messages, "
                                f"pass 0…{n - 1} or -{n}…-1")
        return Message(self.table.row(position % n, named=True))

    @traced("slice")
    def slice(self, start: int | None = None, stop: int | None = None) -> Messages:
        """Messages by position: `slice(-20)` the last 20, `slice(100, 140)` positions 100–139, `slice(100)`
        from 100 to the end. A start before the beginning is clamped (the last 20 of 10 messages are all 10);
        a start past the end, or after stop, is an error."""
        self._need_rows("slice")
        n = len(self)
        for name, v in (("start", start), ("stop", stop)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, int)):
                raise ArgumentError(f"slice: {name} must be an int position or None, got {v!r}")
        if start is not None and start >= n:
            raise PositionError(f"slice: start={start} is past the end; the history has {n:,} messages "
                                f"(positions 0…{n - 1}); pass a smaller start, or a negative one (-20 = last 20)")
        lo, hi, _ = slice(start, stop).indices(n)
        if lo > hi:
            raise PositionError(f"slice: start={start} comes after stop={stop} (positions {lo} > {hi}); "
                                "pass start <= stop")
        return Messages(self, list(range(lo, hi)), label=f"[{lo}:{hi}]")

    @traced("get_by_id")
    def get_by_id(self, id):
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

    def _as_id_list(self, value, op: str, arg: str) -> list[str]:
        if isinstance(value, (list, tuple, set, frozenset)) and all(isinstance(v, str) for v in value):
            return list(value)
        raise ArgumentError(f"{op}: {arg} must be a message id (str) or a list of ids, got {type(value).__name__}")

    def _unknown_ids_message(self, op: str, arg: str, missing: list[str]) -> str:
        sample = list(self._id_index())[:2]
        return (
            f"{op}: no message has {arg} {missing[0]!r}" + (f" (and {len(missing) - 1} more unknown)"
                                                               if len(missing) > 1 else "")
            + f"; ids in this context look like {sample}; find ids with ctx.regex_search(...).ids or ctx.slice(-20).ids"
        )

    @traced("filter")
    def filter(self, predicate) -> Messages:
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
            return Messages(self, self._filter_python(predicate), label="filter")
        raise ArgumentError(
            f"filter: predicate must be a polars expression (pl.col('role') == 'tool') or a function of a Message "
            f"(lambda m: m.role == 'tool'), got {type(predicate).__name__}"
            + ("; to find text, use ctx.regex_search(pattern) or ctx.search(query)" if isinstance(predicate, str)
               else "")
        )

    def _filter_python(self, predicate) -> list[int]:
        positions = []
        for pos, row in enumerate(self.table.iter_rows(named=True)):
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

    @traced("chunk")
    def chunk(self, size: int = 10_000) -> Chunks:
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
        return Chunks([Messages(self, list(range(a, b)), label=f"chunk {i}") for i, (a, b) in enumerate(bounds)],
                      size)

    # ---- search ----------------------------------------------------------------------------------------------

    @traced("regex_search")
    def regex_search(self, pattern, limit: int = 50, case: bool = True, flags: int = 0) -> Snippets:
        """Messages whose text, thinking, tool input or tool output match `pattern` (Python regex syntax), in
        history order, with the matched spans. `case=False` ignores case; `flags` takes re flags."""
        from . import search

        self._need_rows("regex_search")
        _check_limit("regex_search", limit)
        rx = search.compile_pattern(pattern, case, flags)
        positions, spans, total = search.regex_matches(self.df, rx, limit)
        return Snippets(self, positions, None, spans, label=f"regex {rx.pattern!r}", total=total)

    @traced("search")
    def search(self, query: str, limit: int = 10, mode: str = "hybrid") -> Snippets:
        """Ranked search over message-sized documents. mode: "bm25" (keyword, tantivy), "semantic" or "hybrid".
        Meaning search is not built yet: "semantic" and "hybrid" run bm25 and warn once."""
        self._need_rows("search")
        if mode not in SEARCH_MODES:
            raise ArgumentError(f"search: mode must be one of {SEARCH_MODES}, got {mode!r}")
        if not isinstance(query, str) or not query.strip():
            raise ArgumentError(f"search: query must be non-empty text such as 'authentication decision', "
                                f"got {query!r}")
        _check_limit("search", limit)
        if mode != "bm25":
            _warn_semantic_off(mode)
        index = self.keyword_index()
        hits = index.search(query, limit)
        hl = index.highlighter(query)
        positions = [p for p, _ in hits]
        spans = []
        if positions:
            from .search import find_spans

            rows = self.df.select(CONTENT_FIELDS)[positions].iter_rows(named=True)
            spans = [find_spans(r, hl) if hl else [] for r in rows]
        return Snippets(self, positions, [s for _, s in hits], spans, label=f"search {query!r} (bm25)")

    def keyword_index(self):
        """The BM25 index, built on first use (seconds for millions of tokens) and kept."""
        if self._keyword_index is None:
            from .search import KeywordIndex

            self._keyword_index = KeywordIndex(self.df)  # assigned only once fully built
        return self._keyword_index

    # ---- observation -----------------------------------------------------------------------------------------

    def attach_tracer(self, fn):
        """Call `fn(event)` after every query; returns `fn` (so it can be used as a decorator)."""
        if not callable(fn):
            raise ArgumentError(f"attach_tracer: pass a function taking one event dict, got {type(fn).__name__}")
        self._tracers.append(fn)
        return fn

    def detach_tracer(self, fn) -> None:
        if fn in self._tracers:
            self._tracers.remove(fn)

    def trace(self) -> TraceRecorder:
        """`with ctx.trace() as events:` collects the events of the queries run inside the block."""
        return TraceRecorder(self)

    # ---- context-management metadata --------------------------------------------------------------------------

    def _resolve(self, target, op: str) -> list[str]:
        """Ids named by an id, a list of ids, a Message, query results, a polars expression or a predicate."""
        from .results import Snippet, _Results

        self._need_rows(op)
        if isinstance(target, _Results):
            return target.ids
        if isinstance(target, (Message, Snippet)):
            return [target.id]
        if isinstance(target, str):
            target = [target]
        if isinstance(target, (list, tuple, set, frozenset)):
            ids = self._as_id_list(target, op, "ids_or_expr")
            missing = [i for i in ids if i not in self._id_index()]
            if missing:
                raise UnknownIdError(self._unknown_ids_message(op, "id", missing))
            return ids
        import polars as pl

        if isinstance(target, pl.Expr) or callable(target):
            return self.filter(target).ids
        raise ArgumentError(f"{op}: pass an id, a list of ids, query results, a polars expression or a predicate, "
                            f"got {type(target).__name__}")

    def preserve(self, ids_or_expr) -> Messages:
        """Mark messages as inception messages: always part of a window. Undoes prune on them."""
        ids = self._resolve(ids_or_expr, "preserve")
        self.metadata.mark(ids, preserve=True)
        return self._messages_for(ids, "preserved")

    def prune(self, ids_or_expr) -> Messages:
        """Take messages out of any window; they stay queryable. Undoes preserve on them."""
        ids = self._resolve(ids_or_expr, "prune")
        self.metadata.mark(ids, prune=True)
        return self._messages_for(ids, "pruned")

    def priority(self, ids_or_expr, level: int) -> Messages:
        """Set the priority (1–10, default 5) of messages."""
        ids = self._resolve(ids_or_expr, "priority")
        self.metadata.set_priority(ids, level)
        return self._messages_for(ids, f"priority {level}")

    def _messages_for(self, ids: list[str], label: str) -> Messages:
        index = self._id_index()
        return Messages(self, [index[i] for i in ids], label=label)

    @traced("window")
    def window(self, keep_active_minutes: float | None = 30) -> Messages:
        """What a managed window would hold: per session, the messages of the last `keep_active_minutes` of active
        time (None: all), minus pruned messages, plus preserved ones, in history order."""
        self._need_rows("window")
        import polars as pl

        if keep_active_minutes is not None and (
            isinstance(keep_active_minutes, bool) or not isinstance(keep_active_minutes, (int, float))
            or keep_active_minutes < 0
        ):
            raise ArgumentError(f"window: keep_active_minutes must be a number of minutes >= 0 or None (all), "
                                f"got {keep_active_minutes!r}")
        recent = pl.lit(True)
        if keep_active_minutes is not None:
            end = pl.col("active_s").max().over("session_id")
            recent = pl.col("active_s") >= end - keep_active_minutes * 60
        keep = (recent & ~pl.col("pruned")) | pl.col("preserved")
        positions = self.table.filter(keep).get_column("position").to_list()
        return Messages(self, positions, label=f"window {keep_active_minutes} active min")


def _check_limit(op: str, limit) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0:
        raise ArgumentError(f"{op}: limit must be a positive int (how many results to return), got {limit!r}")


def _warn_semantic_off(mode: str) -> None:
    global _warned_semantic_off
    if not _warned_semantic_off:
        _warned_semantic_off = True
        warnings.warn(
            f"search(mode={mode!r}): meaning (embedding) search is not built yet; running keyword search (bm25) "
            "instead. Pass mode='bm25' to silence this.",
            UserWarning,
            stacklevel=4,
        )
