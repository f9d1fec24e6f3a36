"""`Context`: loaded sessions as polars tables, the load report, and the query API a model or a researcher uses.

Positions: the history is the concatenation of the sessions' messages in load order; `position` is a row's
0-based index in `ctx.df` (and `ctx.table`). polars and tantivy are imported on first use, never at import time.
"""

from __future__ import annotations

import json
import warnings
from collections import Counter
from functools import cached_property
from pathlib import Path

from ..sessions import LoadReport, Session, tables
from . import cache as _cache
from . import handover, ranking
from .errors import ArgumentError, EmptyContextError, PositionError, PredicateError, UnknownIdError
from .frames import conform, no_panic, return_freed_memory, session_stubs
from .metadata import DEFAULT_PRIORITY, ContextMetadata, active_seconds_expr
from .ranking import PRIORITY_WEIGHT, RECENCY_HALF_LIFE, RECENCY_WEIGHT, RRF_K, SEARCH_MODES
from .results import CONTENT_FIELDS, Chunks, Message, Messages, Snippets
from .symbols import SYMBOL_RX, SymbolTable
from .trace import TraceRecorder, traced


class Context:
    """A history of one or more agent sessions.

    ``df`` has one row per message (columns in ``rlm_jupyter.sessions.schema``), ``sessions``
    one row per session, and ``report`` says what was read and what was skipped. ``table`` is ``df`` plus
    derived columns (position, tokens, active_s, preserved, pruned, priority) that queries and filters see.
    """

    def __init__(self, sessions: list[Session], report: LoadReport | None = None, *, cache="auto"):
        if not (cache in ("auto", False, None) or isinstance(cache, (str, Path))):
            raise ArgumentError(
                f"Context: cache must be 'auto' (RLM_JUPYTER_CACHE or ~/.cache/rlm_jupyter), a "
                f"folder, or False (nothing on disk), got {cache!r}"
            )
        self._sessions = sessions
        self.report = report or LoadReport()
        self._metadata = ContextMetadata(self)
        self._restored = False
        self._cache = cache
        self._digest: str | None = None
        self._length: int | None = None
        self._tracers: list = []
        self._trace_depth = 0
        self._table_cache: tuple | None = None
        self._recency_cache: tuple | None = None
        self._ids: dict[str, int] | None = None
        self._keyword_index = None
        self._semantic: dict[str, object] = {}
        self.retrievals: Counter = Counter()  # message id -> times returned by a search or lookup
        self.symbols = SymbolTable(self)

    @classmethod
    def load(cls, *paths, cache="auto", workers: int | None = None, progress: bool = True) -> Context:
        """Load files/folders into one table (sessions/corpus.py): unchanged files come from the load cache,
        the others are read by `workers` processes. `cache`: "auto", a folder, or False (no cache at all)."""
        from ..sessions.corpus import load_table

        if len(paths) == 1 and not isinstance(paths[0], (str, bytes)) and hasattr(paths[0], "__iter__"):
            paths = tuple(paths[0])
        df, sessions, report = load_table(
            list(paths), cache=cache if cache is not None else False, workers=workers, progress=progress
        )
        ctx = cls(sessions, report, cache="auto" if cache is True else cache)
        ctx.__dict__["df"] = df
        ctx._length = df.height
        return ctx

    @classmethod
    def from_frame(cls, df, sessions=None, report: LoadReport | None = None, *, cache="auto") -> Context:
        """A context over a message frame (the columns of `rlm_jupyter.sessions.schema.MESSAGE_COLUMNS`).

        Missing optional columns are added as nulls; id, session_id and role are required. `sessions` is a
        sessions frame (`ctx.sessions`), a list of `Session`, or None (one bare session per session_id)."""
        frame = conform(df)
        ctx = cls(session_stubs(frame, sessions), report, cache=cache)
        ctx.__dict__["df"] = frame
        ctx._length = frame.height
        return ctx

    def to_ipc(self, path) -> Path:
        """Write the message frame as an uncompressed Arrow IPC file (memory-mappable) and, beside it as
        `<path>.json`, the sessions, the load report, the marks and the content hash. `Context.from_ipc(path)`
        in another process gives the same context."""
        return handover.write_ipc(self, path)

    @classmethod
    def from_ipc(cls, path, *, cache="auto") -> Context:
        """The context written by `ctx.to_ipc(path)`: the frame memory-mapped, marks and symbols restored."""
        return handover.read_ipc(cls, path, cache)

    # ---- tables ---------------------------------------------------------------------------------------------

    @cached_property
    def df(self):
        df = no_panic("the message table", tables.messages_frame, self._sessions)
        for s in self._sessions:
            s.release()  # the frame now holds the rows
        return df

    @cached_property
    def sessions(self):
        return no_panic("the sessions table", tables.sessions_frame, self._sessions, self.df)

    @property
    def metadata(self) -> ContextMetadata:
        """The marks (preserve/prune/priority, gap threshold, symbols). With a cache, the marks saved for this
        same history (same content hash) are restored on first use, and every change is saved there."""
        if not self._restored:
            self._restored = True
            folder = self.cache_dir
            if folder is not None and (folder / "metadata.json").exists():
                try:
                    self._metadata.load(folder / "metadata.json", strict=False)
                except (ArgumentError, UnknownIdError) as e:
                    warnings.warn(
                        f"ignoring the cached marks {folder / 'metadata.json'}: {e}", RuntimeWarning, stacklevel=2
                    )
            self._metadata.on_change = self._save_marks
        return self._metadata

    def _save_marks(self, meta: ContextMetadata) -> None:
        folder = self.cache_dir
        if folder is not None:
            data = json.dumps(meta.to_dict(), indent=1, ensure_ascii=False) + "\n"
            _cache.atomic_write(folder / "metadata.json", data.encode())

    @property
    def content_hash(self) -> str:
        """Hash of ids, roles and content, the key of this history's cache folder."""
        if self._digest is None:
            self._digest = _cache.content_hash(self.df)
        return self._digest

    @property
    def cache_dir(self) -> Path | None:
        """This history's cache folder (index, vectors, marks), or None with cache=False or no messages."""
        if self._cache in (False, None) or len(self) == 0:
            return None
        root = None if self._cache == "auto" else Path(self._cache).expanduser()
        return _cache.history_dir(self.content_hash, root)

    def summaries(self) -> list[dict]:
        """Per-session summaries: the objects `rlm-jupyter inspect --json` prints."""
        return tables.session_summaries(self._sessions, self.df)

    @cached_property
    def _base(self):
        """`df` + position + tokens: built once (the metadata columns are added in `table`)."""
        import polars as pl

        nbytes = pl.sum_horizontal([pl.col(f).str.len_bytes().fill_null(0) for f in CONTENT_FIELDS])
        base = self.df.with_columns(
            pl.int_range(pl.len(), dtype=pl.Int64).alias("position"),
            ((nbytes + 3) // 4).cast(pl.Int64).alias("tokens"),
        )
        if self.df.height >= 50_000:  # the loaders' row lists are garbage by now; a full gc.collect costs ~1-2 s
            return_freed_memory()  # in a big process (a kernel, pytest), too much for a small live reload
        return base

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
        if self._length is not None:
            return self._length
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
        if self._ids is None:
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
                raise ArgumentError(
                    f"ctx[{key.start}:{key.stop}:{key.step}]: steps are not supported; "
                    "pass ctx[start:stop], or ctx.filter(...) to pick messages"
                )
            return self.slice(key.start, key.stop)
        if isinstance(key, str):
            return self.get_by_id(key)
        return self._at(key)

    @traced("getitem", counts=True)
    def _at(self, position: int) -> Message:
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
            f"{op}: no message has {arg} {missing[0]!r}"
            + (f" (and {len(missing) - 1} more unknown)" if len(missing) > 1 else "")
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
            + (
                "; to find text, use ctx.regex_search(pattern) or ctx.search(query)"
                if isinstance(predicate, str)
                else ""
            )
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
        return Chunks([Messages(self, list(range(a, b)), label=f"chunk {i}") for i, (a, b) in enumerate(bounds)], size)

    # ---- search ----------------------------------------------------------------------------------------------

    @traced("regex_search", counts=True)
    def regex_search(self, pattern, limit: int = 50, case: bool = True, flags: int = 0) -> Snippets:
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
        self,
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
        spans = self._spans(rest, positions)
        return Snippets(self, positions, scores, spans, label=f"search {query!r} ({used})")

    def _spans(self, query: str, positions: list[int]) -> list[list]:
        if not positions or not query:
            return [[] for _ in positions]
        from .search import find_spans

        hl = self.keyword_index().highlighter(query)
        rows = self.df.select(CONTENT_FIELDS)[positions].iter_rows(named=True)
        return [find_spans(r, hl) if hl else [] for r in rows]

    @traced("expand", counts=True)
    def expand(self, symbol: str) -> Messages:
        """The messages a symbol (`§id`, from ctx.symbols.create or suggest) stands for."""
        self._need_rows("expand")
        return self.symbols.expand(symbol)

    def keyword_index(self):
        """The BM25 index, built on first use (seconds for millions of tokens) and kept; histories of at least
        BM25_CACHE_MIN_MESSAGES messages keep it in the cache folder, so reopening them loads it."""
        if self._keyword_index is None:
            from .search import BM25_DIR, KeywordIndex

            folder = self.cache_dir if len(self) >= _cache.BM25_CACHE_MIN_MESSAGES else None
            # assigned only once fully built
            self._keyword_index = KeywordIndex(self.df, None if folder is None else folder / BM25_DIR)
        return self._keyword_index

    def semantic_index(self, embedder=None, progress: bool | None = None):
        """The embedding index for `embedder` (default model2vec): built on first use with a progress bar for
        large histories, and cached as `vectors-<embedder>.npz` in the cache folder."""
        from . import embed
        from .semantic import SemanticIndex

        model = embed.get_embedder(embed.DEFAULT_EMBEDDER if embedder is None else embedder)
        if model.name not in self._semantic:
            folder = self.cache_dir
            file = None if folder is None else folder / f"vectors-{model.name}.npz"
            self._semantic[model.name] = SemanticIndex(self.df, model, file, progress)
        return self._semantic[model.name]

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
        raise ArgumentError(
            f"{op}: pass an id, a list of ids, query results, a polars expression or a predicate, "
            f"got {type(target).__name__}"
        )

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
            isinstance(keep_active_minutes, bool)
            or not isinstance(keep_active_minutes, (int, float))
            or keep_active_minutes < 0
        ):
            raise ArgumentError(
                f"window: keep_active_minutes must be a number of minutes >= 0 or None (all), "
                f"got {keep_active_minutes!r}"
            )
        recent = pl.lit(True)
        if keep_active_minutes is not None:
            end = pl.col("active_s").max().over("session_id")
            recent = pl.col("active_s") >= end - keep_active_minutes * 60
        keep = (recent & ~pl.col("pruned")) | pl.col("preserved")
        positions = self.table.filter(keep).get_column("position").to_list()
        return Messages(self, positions, label=f"window {keep_active_minutes} active min")
