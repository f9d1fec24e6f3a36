"""`Context`: loaded sessions as polars tables, the load report and the marks; its query API is in queries.py.

Positions: the history is the concatenation of the sessions' messages in load order; `position` is a row's
0-based index in `ctx.df` (and `ctx.table`). polars and tantivy are imported on first use, never at import time.
"""

from __future__ import annotations

import json
import warnings
from collections import Counter
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from ..sessions import LoadReport, Session, tables
from . import cache as _cache
from . import handover
from .errors import ArgumentError, EmptyContextError, UnknownIdError
from .frames import conform, no_panic, return_freed_memory, session_stubs
from .metadata import DEFAULT_PRIORITY, ContextMetadata, active_seconds_expr
from .queries import ContextQueries
from .results import CONTENT_FIELDS, Message, Messages
from .symbols import SymbolTable
from .trace import TraceRecorder, traced

if TYPE_CHECKING:
    from .search import KeywordIndex


class Context(ContextQueries):
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
        self._keyword_index: KeywordIndex | None = None
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

    # ---- indexing and id helpers (the queries in queries.py use them) --------------------------------------

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
