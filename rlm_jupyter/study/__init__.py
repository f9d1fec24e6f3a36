"""Many RLM runs at once: `rj.batch(questions, context=..., out=...)` (docs/batch.md).

Each run is `rj.rlm(...)` with its own trace file; rows stream to `out/rows.jsonl` as runs finish (resumable) and
`out/results.parquet` is built from that file. Executors: "threads" (this process) or "ray" (the optional `ray`
extra, imported only then). Nothing heavy is imported here.
"""

from .results import BatchResult
from .runner import batch

__all__ = ["BatchResult", "batch"]
