"""The on-disk cache: distilled embedding models, and per history (keyed by a hash of its content) the BM25
index, the embedding vectors and the context-management marks.

Layout under `cache_root()` (env RLM_JUPYTER_CACHE, else ~/.cache/rlm_jupyter):

    models/<model>/                      distilled static embedding models
    histories/<content hash>/metadata.json
    histories/<content hash>/bm25/       tantivy index (histories of >= BM25_CACHE_MIN_MESSAGES messages)
    histories/<content hash>/vectors-<embedder>.npz
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from .results import CONTENT_FIELDS

# Small histories index in milliseconds: writing their BM25 index to disk would cost more than rebuilding it.
BM25_CACHE_MIN_MESSAGES = 5_000
_HASH_VERSION = b"rlm_jupyter.context.hash/1"


def cache_root() -> Path:
    env = os.environ.get("RLM_JUPYTER_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "rlm_jupyter"


def content_hash(df) -> str:
    """A hash of what the indexes are built from: ids, roles and the four content fields, row by row in order.

    blake2b over the columns' text (nulls and row ends marked), so it is stable across processes and polars
    versions, unlike polars' own row hashes."""
    h = hashlib.blake2b(_HASH_VERSION, digest_size=16)
    h.update(str(df.height).encode())
    for name in ("id", "role", *CONTENT_FIELDS):
        col = df.get_column(name)
        h.update(name.encode() + b"\x00")
        h.update("\x1e".join(col.fill_null("\x1f").to_list()).encode("utf-8", "surrogatepass"))
    return h.hexdigest()


def history_dir(digest: str, root: Path | None = None) -> Path:
    return (root or cache_root()) / "histories" / digest


def atomic_dir(final: Path, build) -> Path:
    """Build a folder with `build(tmp_path)` beside `final`, then move it into place (readers never see half)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
    try:
        build(tmp)
        if final.exists():  # another process finished first: keep theirs
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


# One atomic write for every cache (the load cache's, in sessions/, which context may import).
from ..sessions.cache import atomic_write  # noqa: E402,F401 - re-exported: context modules import it from here
