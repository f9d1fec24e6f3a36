"""Many RLM runs at once: `rj.batch(questions, context=..., out=...)` (docs/batch.md).

Each run is `rj.rlm(...)` with its own trace file; rows stream to `out/rows.jsonl` as runs finish (resumable) and
`out/results.parquet` is built from that file. Executors: "threads" (this process) or "ray" (the optional `ray`
extra, imported only then). Nothing heavy is imported here.
"""

import sys

from .results import BatchResult
from .runner import batch

__all__ = ["BatchResult", "batch"]


class _CallableModule(type(sys.modules[__name__])):
    """`rj.batch(...)` is the documented call, and importing this subpackage binds the same name
    `rlm_jupyter.batch` to the module: a callable module keeps both working (as rlm_jupyter/rlm/__init__.py)."""

    def __call__(self, *args, **kwargs):
        return batch(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
