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
from ..sessions.checks import TableError
from . import cache as _cache
from .errors import ArgumentError, EmptyContextError, PositionError, PredicateError, UnknownIdError
from .metadata import DEFAULT_PRIORITY, ContextMetadata, active_seconds_expr
from .results import CONTENT_FIELDS, Chunks, Message, Messages, Snippets
from .symbols import SYMBOL_RX, SymbolTable
from .trace import TraceRecorder, traced

SEARCH_MODES = ("hybrid", "bm25", "semantic")
RRF_K = 60  # reciprocal-rank constant (Cormack et al. 2009): hybrid scores 1 / (k + best rank)
PRIORITY_WEIGHT = 0.5  # score x (1 + w * (priority - 5) / 5): priority 10 -> x1.5, 1 -> x0.6 (no-op while unset)
RECENCY_WEIGHT = 0.0  # score x (1 + w * 0.5 ** (active minutes before its session's end / half-life)); off
RECENCY_HALF_LIFE = 30.0  # active minutes
IPC_FORMAT = "rlm_jupyter.context.ipc/1"
_warned_semantic_off = False


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
        frame = _conform(df)
        ctx = cls(_session_stubs(frame, sessions), report, cache=cache)
        ctx.__dict__["df"] = frame
        ctx._length = frame.height
        return ctx

    def to_ipc(self, path) -> Path:
        """Write the message frame as an uncompressed Arrow IPC file (memory-mappable) and, beside it as
        `<path>.json`, the sessions, the load report, the marks and the content hash. `Context.from_ipc(path)`
        in another process gives the same context."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.df.write_ipc(path, compression="uncompressed")
        side = {
            "format": IPC_FORMAT,
            "rows": len(self),
            "content_hash": self.content_hash if len(self) else None,
            "sessions": [_session_meta(s) for s in self._sessions],
            "report": self.report.to_dict(),
            "metadata": self.metadata.to_dict(),
        }
        _cache.atomic_write(_sidecar(path), json.dumps(side, ensure_ascii=False, default=str).encode())
        return path

    @classmethod
    def from_ipc(cls, path, *, cache="auto") -> Context:
        """The context written by `ctx.to_ipc(path)`: the frame memory-mapped, marks and symbols restored."""
        import polars as pl

        path = Path(path)
        try:
            side = json.loads(_sidecar(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ArgumentError(
                f"from_ipc: cannot read {_sidecar(path)} ({e}); pass the path given to "
                "ctx.to_ipc(path), with its .json file beside it"
            ) from None
        if side.get("format") != IPC_FORMAT:
            raise ArgumentError(f"from_ipc: {_sidecar(path)} was not written by ctx.to_ipc")
        df = pl.read_ipc(path)  # polars memory-maps uncompressed local IPC files
        if df.height != side.get("rows"):
            raise ArgumentError(
                f"from_ipc: {path} has {df.height} rows, its .json says {side.get('rows')}; "
                "write both again with ctx.to_ipc"
            )
        ctx = cls(_sessions_from_meta(side.get("sessions", [])), _report_from_dict(side.get("report", {})), cache=cache)
        ctx.__dict__["df"] = df
        ctx._length = df.height
        ctx._digest = side.get("content_hash")
        ctx._restored = True  # the marks come from the file, not from the cache
        if df.height:
            ctx._metadata.apply(side["metadata"], strict=False, source=str(_sidecar(path)))
        ctx._metadata.on_change = ctx._save_marks
        return ctx

    # ---- tables ---------------------------------------------------------------------------------------------

    @cached_property
    def df(self):
        df = _no_panic("the message table", tables.messages_frame, self._sessions)
        for s in self._sessions:
            s.release()  # the frame now holds the rows
        return df

    @cached_property
    def sessions(self):
        return _no_panic("the sessions table", tables.sessions_frame, self._sessions, self.df)

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
            _return_freed_memory()  # in a big process (a kernel, pytest), too much for a small live reload
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
        _check_limit("regex_search", limit)
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
        _check_limit("search", limit)
        _check_weights(k, priority_weight, recency_weight, recency_half_life)
        named = SYMBOL_RX.findall(query)
        rest = SYMBOL_RX.sub(" ", query).strip()
        expanded: list[int] = []
        for sid in named:
            expanded += [p for p in self.symbols.expand(sid).positions if p not in expanded]
        ranked, used = [], "symbols"
        if rest:
            pool = max(limit * 5, 50)
            ranked, used = self._ranked(rest, pool, mode, embedder, k)
            if rerank:
                from . import embed
                from .rerank import rerank as rerank_top

                ranked, used = rerank_top(self.df, rest, ranked, k, embed.get_embedder("minilm")), used + "+rerank"
            ranked = self._weigh(ranked, priority_weight, recency_weight, recency_half_life)
        positions = expanded + [p for p, _ in ranked if p not in expanded][: max(0, limit - len(expanded))]
        positions = positions[: max(limit, len(expanded))]
        scores = None if expanded else [sc for _, sc in ranked[:limit]]
        spans = self._spans(rest, positions)
        return Snippets(self, positions, scores, spans, label=f"search {query!r} ({used})")

    def _ranked(self, query: str, pool: int, mode: str, embedder, k: int) -> tuple[list[tuple[int, float]], str]:
        if mode != "bm25":
            from . import embed

            reason = embed.unavailable_reason(embedder if embedder is not None else embed.DEFAULT_EMBEDDER)
            if reason is None:
                semantic = self.semantic_index(embedder).search(query, pool)
                if mode == "semantic":
                    return semantic, "semantic"
                from .search import fuse_ranks  # best rank wins, agreement breaks ties: see search.py

                return fuse_ranks([self.keyword_index().search(query, pool), semantic], k), "hybrid"
            _warn_semantic_off(mode, reason)
        return self.keyword_index().search(query, pool), "bm25"

    def _weigh(self, ranked, priority_weight, recency_weight, half_life) -> list[tuple[int, float]]:
        use_priority = priority_weight and self.metadata.priority
        if not ranked or not (use_priority or recency_weight):
            return ranked
        import polars as pl

        positions = [p for p, _ in ranked]
        rows = self._recency_frame()[positions]
        factor = pl.lit(1.0)
        if use_priority:
            factor = factor * (1 + priority_weight * (pl.col("priority") - DEFAULT_PRIORITY) / DEFAULT_PRIORITY)
        if recency_weight:
            factor = factor * (1 + recency_weight * 0.5 ** (pl.col("age_s") / 60 / half_life))
        factors = rows.select(factor.alias("f"))["f"].to_list()
        out = [(p, sc * f) for (p, sc), f in zip(ranked, factors, strict=True)]
        return sorted(out, key=lambda t: -t[1])

    def _recency_frame(self):
        """priority and age_s (active seconds from the message to its session's last message), per position."""
        key = ("recency", self.metadata.version)
        if getattr(self, "_recency_cache", (None,))[0] != key:
            import polars as pl

            frame = self.table.select(
                "priority", (pl.col("active_s").max().over("session_id") - pl.col("active_s")).alias("age_s")
            )
            self._recency_cache = (key, frame)
        return self._recency_cache[1]

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


def _check_limit(op: str, limit) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0:
        raise ArgumentError(f"{op}: limit must be a positive int (how many results to return), got {limit!r}")


def _check_weights(k, priority_weight, recency_weight, half_life) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise ArgumentError(f"search: k (the fusion constant) must be an int >= 0 (default {RRF_K}), got {k!r}")
    for name, v in (("priority_weight", priority_weight), ("recency_weight", recency_weight)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 10:
            raise ArgumentError(f"search: {name} must be a number from 0 (off) to 10, got {v!r}")
    if isinstance(half_life, bool) or not isinstance(half_life, (int, float)) or half_life <= 0:
        raise ArgumentError(f"search: recency_half_life must be a positive number of active minutes, got {half_life!r}")


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


def _no_panic(what: str, build, *args):
    """`build(*args)`, with a polars panic (pyo3's PanicException derives from BaseException, so a notebook's
    `except Exception` would not catch it) turned into a TableError. The loaders' values are checked before they
    reach polars (sessions/checks.py), so this is a last net, not the rule."""
    try:
        return build(*args)
    except BaseException as exc:
        if type(exc).__name__ != "PanicException":
            raise
        raise TableError(
            f"building {what} failed inside polars ({str(exc)[:200]}); this is a bug of rlm_jupyter: "
            "please report it with the files you loaded (ctx.report lists them)"
        ) from None


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


_SESSION_FIELDS = (
    "session_id",
    "format",
    "path",
    "producer",
    "producer_version",
    "title",
    "cwd",
    "model",
    "parent_session_id",
    "started",
    "updated",
    "malformed_lines",
)


def _session_meta(s: Session) -> dict:
    return {**{f: getattr(s, f) for f in _SESSION_FIELDS}, "extra": s.extra}


def _sessions_from_meta(items: list[dict]) -> list[Session]:
    out = []
    for d in items:
        s = Session(**{f: d.get(f) for f in _SESSION_FIELDS if d.get(f) is not None or f in ("started", "updated")})
        s.extra = d.get("extra") or {}
        out.append(s)
    return out


def _report_from_dict(data: dict) -> LoadReport:
    from ..sessions import FileReport, Issue

    files = []
    for f in data.get("files", []):
        # an issue keeps its own file (a sub-agent's, under its main file's report) and its record pointer
        issues = [
            Issue(
                i.get("path") or f["path"],
                i.get("line"),
                i.get("reason", ""),
                i.get("kind", "malformed"),
                i.get("pointer"),
            )
            for i in f.get("issues", [])
        ]
        files.append(
            FileReport(f["path"], f.get("format"), list(f.get("sessions", [])), f.get("records_kept", 0), issues)
        )
    return LoadReport(files, list(data.get("notes", [])))


def _conform(df):
    """`df` with exactly the schema's message columns, in order and with their types (missing ones null)."""
    import polars as pl

    from ..sessions.schema import MESSAGE_COLUMNS, polars_schema

    if not isinstance(df, pl.DataFrame):
        raise ArgumentError(f"from_frame: df must be a polars DataFrame (e.g. ctx.df), got {type(df).__name__}")
    missing = [c for c in ("id", "session_id", "role") if c not in df.columns]
    if missing:
        raise ArgumentError(
            f"from_frame: df lacks the column(s) {missing}; it needs at least id, session_id and "
            f"role, plus any of {list(MESSAGE_COLUMNS)}"
        )
    schema = polars_schema(MESSAGE_COLUMNS)
    cols = []
    for name, dtype in schema.items():
        col = pl.col(name) if name in df.columns else pl.lit(None)
        cols.append(col.cast(dtype).alias(name))
    try:
        return df.select(cols)
    except pl.exceptions.PolarsError as e:
        raise ArgumentError(
            f"from_frame: a column does not have the schema's type ({str(e).splitlines()[0]}); "
            "see rlm_jupyter.sessions.schema.MESSAGE_COLUMNS"
        ) from None


def _session_stubs(frame, sessions) -> list[Session]:
    """Session metadata for a frame: from a sessions frame, a list of Session, or bare ones in order of appearance."""
    import polars as pl

    if isinstance(sessions, list) and all(isinstance(s, Session) for s in sessions):
        return sessions
    order = frame.get_column("session_id").unique(maintain_order=True).to_list()
    known: dict[str, dict] = {}
    if isinstance(sessions, pl.DataFrame):
        if "session_id" not in sessions.columns:
            raise ArgumentError("from_frame: sessions must be a sessions frame (ctx.sessions) with session_id")
        times = [c for c in ("started", "updated") if c in sessions.columns]
        rows = sessions.with_columns([pl.col(c).dt.epoch("us") for c in times]).to_dicts()
        known = {r["session_id"]: r for r in rows}
        order += [sid for sid in known if sid not in set(order)]
    elif sessions is not None:
        raise ArgumentError(
            f"from_frame: sessions must be a sessions frame, a list of Session or None, got {type(sessions).__name__}"
        )
    out = []
    for sid in order:
        r = known.get(sid, {})
        fields = {f: r.get(f) for f in _SESSION_FIELDS[3:] if r.get(f) is not None}
        out.append(Session(session_id=sid, format=r.get("format") or "frame", path=r.get("path") or "-", **fields))
    return out


def _return_freed_memory() -> None:
    """Hand the row lists' freed memory back to the OS (glibc keeps freed heap otherwise): on a 10M-token history
    this lowers the process's resident memory by ~15%. A no-op where glibc is not the allocator."""
    import contextlib
    import ctypes
    import gc

    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to hand back
        ctypes.CDLL("libc.so.6").malloc_trim(0)
