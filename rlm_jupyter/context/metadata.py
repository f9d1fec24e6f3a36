"""Context-management metadata (after OpenCode issue #4659): preserved, pruned and prioritised messages, and
active ("chess-clock") time. Kept by message id, so it survives reloading the same history and can be saved as a
small JSON file."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ArgumentError, UnknownIdError

if TYPE_CHECKING:
    from .environment import Context

DEFAULT_PRIORITY = 5
DEFAULT_GAP_THRESHOLD = 60.0
_FORMAT = "rlm_jupyter.context.metadata/1"


class ContextMetadata:
    """Marks on messages. Preserve and prune exclude each other: the last call on a message wins."""

    def __init__(self, ctx: Context):
        self._ctx = ctx
        self.preserved: set[str] = set()
        self.pruned: set[str] = set()
        self.priority: dict[str, int] = {}
        self.symbols: dict[str, dict] = {}  # symbol id -> {"ids", "triad", "gist"} (see symbols.py)
        self._gap = DEFAULT_GAP_THRESHOLD
        self.version = 0  # bumped on every change; ctx.table is rebuilt when it moves
        self.on_change: Callable[[ContextMetadata], None] | None = (
            None  # called after each change (the context saves the marks to its cache)
        )

    def _changed(self) -> None:
        self.version += 1
        if self.on_change is not None:
            self.on_change(self)

    @property
    def gap_threshold(self) -> float:
        """Seconds of silence after which the clock stops (default 60): longer gaps add no active time."""
        return self._gap

    @gap_threshold.setter
    def gap_threshold(self, seconds: float) -> None:
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds <= 0:
            raise ArgumentError(f"gap_threshold must be a positive number of seconds (default 60), got {seconds!r}")
        self._gap = float(seconds)
        self._changed()

    def mark(self, ids: list[str], *, preserve: bool | None = None, prune: bool | None = None) -> None:
        for i in ids:
            if preserve:
                self.preserved.add(i)
                self.pruned.discard(i)
            if prune:
                self.pruned.add(i)
                self.preserved.discard(i)
        self._changed()

    def set_priority(self, ids: list[str], level: int) -> None:
        if isinstance(level, bool) or not isinstance(level, int) or not 1 <= level <= 10:
            raise ArgumentError(
                f"priority: level must be an integer from 1 to 10 (default {DEFAULT_PRIORITY}), got {level!r}"
            )
        for i in ids:
            self.priority[i] = level
        self._changed()

    def reset(self, ids: list[str] | None = None) -> None:
        """Forget every mark (or the marks on `ids`)."""
        if ids is None:
            self.preserved.clear()
            self.pruned.clear()
            self.priority.clear()
        else:
            for i in ids:
                self.preserved.discard(i)
                self.pruned.discard(i)
                self.priority.pop(i, None)
        self._changed()

    def to_dict(self) -> dict:
        return {
            "format": _FORMAT,
            "gap_threshold": self._gap,
            "preserved": sorted(self.preserved),
            "pruned": sorted(self.pruned),
            "priority": dict(sorted(self.priority.items())),
            "symbols": {k: self.symbols[k] for k in sorted(self.symbols)},
        }

    def save(self, path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        return path

    def load(self, path, strict: bool = True) -> ContextMetadata:
        """Replace the marks by those saved in `path`. With strict=True (default) ids this history does not
        have are an error; strict=False keeps the known ones and drops the rest."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ArgumentError(
                f"metadata.load: cannot read {path} ({e}); pass a file written by ctx.metadata.save"
            ) from e
        return self.apply(data, strict, source=str(path))

    def apply(self, data: dict, strict: bool = True, source: str = "the marks") -> ContextMetadata:
        """Replace the marks by those of a `to_dict()` result (what `load` reads from a file)."""
        path = source
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise ArgumentError(f"metadata.load: {path} is not a metadata file written by ctx.metadata.save")
        preserved, pruned = list(data.get("preserved", [])), list(data.get("pruned", []))
        priority = {str(k): v for k, v in dict(data.get("priority", {})).items()}
        symbols = {str(k): v for k, v in dict(data.get("symbols", {})).items()}
        if any(not isinstance(v, dict) or not isinstance(v.get("ids"), list) for v in symbols.values()):
            raise ArgumentError(f"metadata.load: symbols in {path} must map ids to {{'ids': [...], ...}}")
        known = self._ctx._id_index()
        symbol_ids = [i for v in symbols.values() for i in v["ids"]]
        unknown = sorted({i for i in (*preserved, *pruned, *priority, *symbol_ids) if i not in known})
        if unknown and strict:
            raise UnknownIdError(
                f"metadata.load: {len(unknown)} id(s) in {path} are not in this context (e.g. {unknown[:3]}); "
                "load it into the history it was saved from, or pass strict=False to keep only the known ids"
            )
        bad = {k: v for k, v in priority.items() if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 10}
        if bad:
            raise ArgumentError(f"metadata.load: priorities must be integers 1–10, got {list(bad.items())[:3]}")
        gap = data.get("gap_threshold", DEFAULT_GAP_THRESHOLD)
        hook, self.on_change = self.on_change, None  # one save at the end, not one per field
        try:
            self.gap_threshold = gap  # validates before anything is replaced
        finally:
            self.on_change = hook
        self.preserved = {i for i in preserved if i in known}
        self.pruned = {i for i in pruned if i in known}
        self.priority = {k: v for k, v in priority.items() if k in known}
        self.symbols = {}
        for k, v in symbols.items():
            ids = [i for i in v["ids"] if i in known]
            if ids:
                self.symbols[k] = {**v, "ids": ids}
        self._changed()
        return self

    def __repr__(self) -> str:
        return (
            f"<ContextMetadata: {len(self.preserved)} preserved, {len(self.pruned)} pruned, "
            f"{len(self.priority)} with priority, {len(self.symbols)} symbol(s), gap_threshold={self._gap:g}s>"
        )


def active_seconds_expr(gap_threshold: float):
    """Cumulative active seconds per session (polars expression over `ts`, `session_id`, table order).

    Each message adds the time since the previous timed message of its session when that gap is at most
    `gap_threshold`; longer gaps (the person was away), missing times and clock jumps backwards add nothing.
    """
    import polars as pl

    ts = pl.col("ts").dt.epoch("us")
    prev = ts.forward_fill().shift(1).over("session_id")
    gap = (ts - prev) / 1e6
    step = pl.when(gap.is_not_null() & (gap >= 0) & (gap <= gap_threshold)).then(gap).otherwise(0.0)
    return step.cum_sum().over("session_id").alias("active_s")
