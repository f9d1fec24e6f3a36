"""Meaning search: sentence-window chunks embedded once, cosine similarity at query time, vectors cached on disk.

Each message's four content fields are joined and cut into windows of about CHUNK_CHARS characters made of whole
sentences (or lines); a sentence longer than a window is cut at whitespace into pieces that overlap by half, so a
fact that straddles a cut is still whole in one piece. A message with more than MAX_CHUNKS windows keeps MAX_CHUNKS
of them spread evenly (first and last included). Every chunk maps back to its message position, and a message scores
the best cosine of its chunks (max pooling).

Why short windows: the default embedder is a static model (token vectors averaged), so one planted sentence inside
1,200 characters of unrelated text is averaged away; benchmarks/context.py measured recall@10 of planted facts at
0/8 with 1,200-character chunks and 6/8 with ~200-character windows (MiniLM gains too, see docs/context.md).
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import numpy as np

from ..sessions.progress import Progress
from .cache import atomic_write

CHUNK_CHARS = 200  # a sentence or two: short enough that a mean-pooled static vector still says what it is about
MAX_CHUNKS = 64  # per message: a 16,000-char capped tool output gives ~80-160 windows; keep a spread of 64
_EMBED_BATCH = 4_096
# stored with cached vectors: a change re-embeds. "distinct": a message whose content repeats an earlier one's is
# not embedded again (see search.distinct_bodies).
CHUNKING = f"sentence-windows-{CHUNK_CHARS}x{MAX_CHUNKS}-distinct"
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")


def _cut_long(sentence: str, size: int) -> list[str]:
    """Pieces of at most `size` chars cut at whitespace, each starting about half a piece after the previous one."""
    pieces, start = [], 0
    while True:
        end = min(len(sentence), start + size)
        if end < len(sentence):
            cut = sentence.rfind(" ", start + size // 2, end)
            end = cut if cut > start else end
        pieces.append(sentence[start:end])
        if end >= len(sentence):
            return pieces
        nxt = sentence.find(" ", start + size // 2, end)
        start = nxt + 1 if nxt > start else end


def split_text(body: str, size: int = CHUNK_CHARS, most: int = MAX_CHUNKS) -> list[str]:
    """Sentence windows of about `size` chars (see the module doc); `[body]` when it is short."""
    if len(body) <= size:
        return [body]
    windows: list[str] = []
    current = ""
    for sentence in _SENTENCE_END.split(body):
        sentence = sentence.strip()
        if not sentence:
            continue
        for piece in _cut_long(sentence, size) if len(sentence) > size else (sentence,):
            if current and len(current) + 1 + len(piece) > size:
                windows.append(current)
                current = piece
            else:
                current = f"{current} {piece}" if current else piece
    if current:
        windows.append(current)
    if len(windows) > most:
        step = (len(windows) - 1) / (most - 1)
        windows = [windows[round(i * step)] for i in range(most)]
    return windows


def message_chunks(df) -> tuple[list[str], np.ndarray]:
    """(chunk texts, position of each chunk's message) for the non-empty messages of `df` whose content is the
    first of its kind (a repeated message is represented by its first copy)."""
    from .search import distinct_bodies

    texts: list[str] = []
    owners: list[int] = []
    for pos, body in distinct_bodies(df):
        body = body.strip()
        if body:
            for piece in split_text(body):
                texts.append(piece)
                owners.append(pos)
    return texts, np.asarray(owners, dtype=np.int64)


def embed(embedder, texts: list[str], progress: bool | None = None) -> np.ndarray:
    """Unit-length float32 vectors, embedded in batches, with the load's progress bar (sessions/progress.py: shown
    once the work has taken a second, tqdm's notebook bar in Jupyter; never with progress=False)."""
    with Progress(
        len(texts),
        len(texts),
        desc=f"embedding ({embedder.name})",
        enabled=progress is not False,
        unit="text",
        postfix=False,
    ) as bar:
        out = []
        for start in range(0, len(texts), _EMBED_BATCH):
            batch = texts[start : start + _EMBED_BATCH]
            out.append(np.asarray(embedder.encode(batch), dtype=np.float32))
            bar.update(len(batch), files=len(batch))
    if not out:
        return np.zeros((0, 1), dtype=np.float32)
    vecs = np.concatenate(out)
    norms = np.linalg.norm(vecs, axis=1, keepdims=True)
    return vecs / np.where(norms == 0, 1, norms)


class SemanticIndex:
    """Chunk vectors of one history for one embedder; `search` ranks messages by their best chunk's cosine.

    The cache file also records CHUNKING, so vectors cut another way (an older version) are embedded again."""

    def __init__(self, df, embedder, cache_file: Path | None = None, progress: bool | None = None):
        self.embedder = embedder
        self.from_cache = False
        if cache_file is not None and cache_file.exists():
            try:
                with np.load(cache_file) as data:
                    if str(data["chunking"]) == CHUNKING:
                        self.vectors, self.owners = data["vectors"], data["owners"]
                        self.from_cache = True
                        return
            except (OSError, ValueError, KeyError, zipfile.BadZipFile):
                pass  # damaged, or from before chunking was recorded: embed again and overwrite it
        texts, self.owners = message_chunks(df)
        self.vectors = embed(embedder, texts, progress)
        if cache_file is not None:
            import io

            buf = io.BytesIO()
            np.savez(buf, vectors=self.vectors, owners=self.owners, chunking=np.array(CHUNKING))
            atomic_write(cache_file, buf.getvalue())

    @property
    def chunks(self) -> int:
        return len(self.owners)

    def search(self, query: str, limit: int) -> list[tuple[int, float]]:
        """Up to `limit` (position, best chunk cosine) pairs, best first."""
        if not len(self.owners):
            return []
        q = embed(self.embedder, [query], progress=False)[0]
        if q.shape[0] != self.vectors.shape[1]:
            raise ValueError("the cached vectors come from another model; delete the cache folder")
        return self._best(self.vectors @ q, limit)

    def _best(self, sims: np.ndarray, limit: int) -> list[tuple[int, float]]:
        """The `limit` messages with the best chunk cosine; equal cosines in chunk (= position) order."""
        # More chunks than `limit`, since several may belong to one message; widen until enough messages.
        take = min(len(sims), max(limit * 4, 64))
        while True:
            top = np.argpartition(-sims, take - 1)[:take] if take < len(sims) else np.arange(len(sims))
            top = top[np.lexsort((top, -sims[top]))]
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
