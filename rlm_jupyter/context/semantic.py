"""Meaning search: message-sized chunks embedded once, cosine similarity at query time, vectors cached on disk.

Each message's four content fields are joined; a message longer than CHUNK_CHARS is cut at whitespace into
pieces of about CHUNK_CHARS, and when there are more than MAX_CHUNKS pieces, MAX_CHUNKS of them spread evenly
(first and last included) are kept. Every chunk maps back to its message position; a message scores the best
cosine of its chunks.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from .cache import atomic_write
from .embed import Progress
from .results import CONTENT_FIELDS

CHUNK_CHARS = 1_200  # ~300 tokens: within MiniLM's 256 word-piece window for most English, one idea per chunk
MAX_CHUNKS = 8
SHOW_PROGRESS_FROM = 2_000  # texts; smaller batches finish before a bar would be readable
_EMBED_BATCH = 4_096


def split_text(body: str, size: int = CHUNK_CHARS, most: int = MAX_CHUNKS) -> list[str]:
    if len(body) <= size:
        return [body]
    pieces, start = [], 0
    while start < len(body):
        end = min(len(body), start + size)
        if end < len(body):
            cut = body.rfind(" ", start + size // 2, end)
            end = cut if cut > start else end
        pieces.append(body[start:end])
        start = end
    if len(pieces) > most:
        step = (len(pieces) - 1) / (most - 1)
        pieces = [pieces[round(i * step)] for i in range(most)]
    return pieces


def message_chunks(df) -> tuple[list[str], np.ndarray]:
    """(chunk texts, position of each chunk's message) for the non-empty messages of `df`."""
    texts: list[str] = []
    owners: list[int] = []
    cols = [df.get_column(f).to_list() for f in CONTENT_FIELDS]
    for pos, parts in enumerate(zip(*cols, strict=True)):
        body = "\n".join(p for p in parts if p).strip()
        if body:
            for piece in split_text(body):
                texts.append(piece)
                owners.append(pos)
    return texts, np.asarray(owners, dtype=np.int64)


def embed(embedder, texts: list[str], progress: bool | None = None) -> np.ndarray:
    """Unit-length float32 vectors, embedded in batches with a progress bar for large inputs."""
    show = len(texts) >= SHOW_PROGRESS_FROM if progress is None else progress
    bar = Progress(len(texts), f"embedding ({embedder.name})", show)
    out = []
    try:
        for start in range(0, len(texts), _EMBED_BATCH):
            batch = texts[start : start + _EMBED_BATCH]
            out.append(np.asarray(embedder.encode(batch), dtype=np.float32))
            bar.update(len(batch))
    finally:
        bar.close()
    if not out:
        return np.zeros((0, 1), dtype=np.float32)
    vecs = np.concatenate(out)
    norms = np.linalg.norm(vecs, axis=1, keepdims=True)
    return vecs / np.where(norms == 0, 1, norms)


class SemanticIndex:
    """Chunk vectors of one history for one embedder; `search` ranks messages by their best chunk's cosine."""

    def __init__(self, df, embedder, cache_file: Path | None = None, progress: bool | None = None):
        self.embedder = embedder
        self.from_cache = False
        if cache_file is not None and cache_file.exists():
            try:
                with np.load(cache_file) as data:
                    self.vectors, self.owners = data["vectors"], data["owners"]
                self.from_cache = True
                return
            except (OSError, ValueError, KeyError, zipfile.BadZipFile):
                pass  # a damaged cache file: embed again and overwrite it
        texts, self.owners = message_chunks(df)
        self.vectors = embed(embedder, texts, progress)
        if cache_file is not None:
            import io

            buf = io.BytesIO()
            np.savez(buf, vectors=self.vectors, owners=self.owners)
            atomic_write(cache_file, buf.getvalue())

    @property
    def chunks(self) -> int:
        return len(self.owners)

    def search(self, query: str, limit: int) -> list[tuple[int, float]]:
        if not len(self.owners):
            return []
        q = embed(self.embedder, [query], progress=False)[0]
        if q.shape[0] != self.vectors.shape[1]:
            raise ValueError("the cached vectors come from another model; delete the cache folder")
        sims = self.vectors @ q
        # More chunks than `limit`, since several may belong to one message; widen until enough messages.
        take = min(len(sims), max(limit * 4, 64))
        while True:
            top = np.argpartition(-sims, take - 1)[:take] if take < len(sims) else np.arange(len(sims))
            top = top[np.argsort(-sims[top], kind="stable")]
            best: dict[int, float] = {}
            for i in top:
                pos = int(self.owners[i])
                if pos not in best:
                    best[pos] = float(sims[i])
                    if len(best) >= limit:
                        return list(best.items())
            if take >= len(sims):
                return list(best.items())
            take = min(len(sims), take * 4)
