"""One trace format for RLM runs: typed events with ids and parent ids, written as append-only JSONL.

`Trace.load(path)` reads our own `.rlmtrace.jsonl` files and the official `rlms` logger JSONL.
"""

from .model import EVENT_TYPES, Trace
from .writer import TraceWriter

__all__ = ["EVENT_TYPES", "Trace", "TraceWriter"]
