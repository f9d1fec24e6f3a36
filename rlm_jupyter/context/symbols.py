"""Symbolic compression ("Signal Zero"): a symbol stands for a set of messages with an id, a triad of three key
terms and a one-line gist, and expands back to the messages on demand.

Triads and gists are extractive (no model): the triad is the three terms of the messages with the highest
tf·idf against the whole history (document frequencies from the BM25 index, stemmed so `decide`/`decision`
count once); the gist is the sentence of the messages that holds the most triad weight, cut to one line.
Symbols are kept in `ctx.metadata` (so they persist with the marks and export with `metadata.save`).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import TYPE_CHECKING

from .errors import ArgumentError, UnknownIdError
from .results import CONTENT_FIELDS, Messages, _one_line

if TYPE_CHECKING:
    from .environment import Context

SYMBOL_RX = re.compile(r"§[\w.-]+")
GIST_CHARS = 120
RETRIEVAL_OPS = ("search", "regex_search", "get_by_id", "getitem")
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_]{2,}")
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_STOP_WORDS = (
    "the and for that this with from are was were have has had not but you your our they them their its can will "
    "would should could into then than there here what when where which who why how all any each some such only "
    "also just more most other about after before over under again once very out off now new use used using let "
    "make made get got see one two may might must been being did does done yes okay sure please thanks file line "
    "none true false self return import def class null"
)
_STOP = frozenset(_STOP_WORDS.split(" "))


class Symbol:
    """A named stand-in for messages: `id`, `triad` (three key terms), `gist` (one line), `ids` (the messages),
    `symbol_tokens` vs `expansion_tokens` (estimated, as ctx.tokens) and their `ratio`."""

    def __init__(self, ctx: Context, id: str, ids: list[str], triad: list[str], gist: str):
        self._ctx, self.id, self.ids, self.triad, self.gist = ctx, id, list(ids), list(triad), gist

    def text(self) -> str:
        """What stands in the window for the messages."""
        return f"{self.id} [{' · '.join(self.triad)}]: {self.gist}"

    @property
    def symbol_tokens(self) -> int:
        return (len(self.text().encode()) + 3) // 4

    @property
    def expansion_tokens(self) -> int:
        return self.expand().tokens

    @property
    def ratio(self) -> float:
        """Expansion tokens per symbol token."""
        return self.expansion_tokens / max(1, self.symbol_tokens)

    def expand(self) -> Messages:
        index = self._ctx._id_index()
        return Messages(self._ctx, [index[i] for i in self.ids], label=f"symbol {self.id}")

    def to_dict(self) -> dict:
        return {"ids": self.ids, "triad": self.triad, "gist": self.gist}

    def __repr__(self) -> str:
        return (
            f"<Symbol {self.text()!r}: {len(self.ids)} messages, {self.symbol_tokens} vs "
            f"{self.expansion_tokens:,} tokens ({self.ratio:.0f}x)>"
        )


class SymbolTable:
    """`ctx.symbols`: create, list, expand and suggest symbols."""

    def __init__(self, ctx: Context):
        self._ctx = ctx

    @property
    def _store(self) -> dict[str, dict]:
        return self._ctx.metadata.symbols

    def create(self, ids_or_expr, id: str | None = None) -> Symbol:
        """A symbol for the messages named by `ids_or_expr` (an id, ids, query results, an expression or a
        predicate). `id` defaults to the triad joined by dashes, e.g. `§redis-cookie-ttl`."""
        ids = list(dict.fromkeys(self._ctx._resolve(ids_or_expr, "symbols.create")))
        if not ids:
            raise ArgumentError("symbols.create: ids_or_expr selects no message; pass ids or non-empty results")
        if id is not None:
            if not isinstance(id, str) or not re.fullmatch(r"§?[\w.-]+", id):
                raise ArgumentError(
                    f"symbols.create: id must be letters, digits, '_', '-' or '.', optionally after "
                    f"'§' (e.g. '§auth-decision'), got {id!r}"
                )
            id = id if id.startswith("§") else "§" + id
        sym = self._draft(ids, id)
        self._store[sym.id] = sym.to_dict()
        self._ctx.metadata._changed()
        return sym

    def _draft(self, ids: list[str], id: str | None) -> Symbol:
        messages = self._ctx.get_by_id(ids)
        bodies = ["\n".join(r[f] for f in CONTENT_FIELDS if r[f]) for r in messages.df.iter_rows(named=True)]
        triad, weights = self._triad(bodies)
        gist = _gist(bodies, weights)
        if id is None:
            base = "§" + ("-".join(triad) or "symbol")
            id, n = base, 2
            while id in self._store:
                id, n = f"{base}-{n}", n + 1
        return Symbol(self._ctx, id, ids, triad, gist)

    def _triad(self, bodies: list[str]) -> tuple[list[str], dict[str, float]]:
        index = self._ctx.keyword_index()
        counts = Counter(w.lower() for b in bodies for w in _WORD.findall(b) if w.lower() not in _STOP)
        n_docs = max(1, index.documents)
        weights: dict[str, float] = {}
        stems_taken: set[str] = set()
        ranked = []
        for word, tf in counts.most_common(60):
            stems = index.analyze(word)
            stem = stems[0] if stems else word
            df = index.doc_freq(stem) if stems else 0
            score = (1 + math.log(tf)) * math.log((1 + n_docs) / (1 + df))
            weights[word] = score
            ranked.append((score, word, stem))
        triad = []
        for _score, word, stem in sorted(ranked, key=lambda t: (-t[0], t[1])):
            if stem not in stems_taken:
                stems_taken.add(stem)
                triad.append(word)
            if len(triad) == 3:
                break
        return triad, {w: weights[w] for w in triad}

    def get(self, id: str) -> Symbol:
        if not isinstance(id, str):
            raise ArgumentError(f"symbols: a symbol id is a str such as '§auth-decision', got {type(id).__name__}")
        key = id if id.startswith("§") else "§" + id
        data = self._store.get(key)
        if data is None:
            known = ", ".join(sorted(self._store)[:5]) or "none yet; make one with ctx.symbols.create(ids)"
            raise UnknownIdError(f"symbols: no symbol {key!r}; known symbols: {known}")
        return Symbol(self._ctx, key, data["ids"], data.get("triad", []), data.get("gist", ""))

    def expand(self, id: str) -> Messages:
        """The messages a symbol stands for, in the order it was created with."""
        return self.get(id).expand()

    def delete(self, id: str) -> None:
        sym = self.get(id)
        del self._store[sym.id]
        self._ctx.metadata._changed()

    def __iter__(self):
        return (self.get(k) for k in sorted(self._store))

    def __len__(self) -> int:
        return len(self._store)

    def __contains__(self, id) -> bool:
        return isinstance(id, str) and (id if id.startswith("§") else "§" + id) in self._store

    def compression(self) -> dict:
        """Totals over all symbols: how many tokens the symbols take vs the messages they stand for."""
        syms = list(self)
        s_tok = sum(s.symbol_tokens for s in syms)
        e_tok = sum(s.expansion_tokens for s in syms)
        return {
            "symbols": len(syms),
            "symbol_tokens": s_tok,
            "expansion_tokens": e_tok,
            "ratio": round(e_tok / s_tok, 2) if s_tok else None,
        }

    def suggest(self, n: int = 5, min_count: int = 2, gap: int = 3, events: list[dict] | None = None) -> list[Symbol]:
        """Proposed (not yet created) symbols for the most often retrieved clusters of messages.

        Counts come from `ctx.retrievals` (ids returned by search, regex_search, get_by_id and ctx[i] since the
        context was opened), or from trace `events` when given. Messages retrieved at least `min_count` times
        are grouped into clusters: same session, at most `gap` positions apart. Clusters are ranked by total
        retrievals. Pass a proposal to `ctx.symbols.create(proposal.ids)` to keep it."""
        for name, v in (("n", n), ("min_count", min_count), ("gap", gap)):
            if isinstance(v, bool) or not isinstance(v, int) or v < (0 if name == "gap" else 1):
                raise ArgumentError(f"symbols.suggest: {name} must be a positive int, got {v!r}")
        counts = retrieval_counts(events) if events is not None else self._ctx.retrievals
        index = self._ctx._id_index()
        hot = sorted((index[i], c) for i, c in counts.items() if c >= min_count and i in index)
        if not hot:
            return []
        sessions = self._ctx.df.get_column("session_id").gather([p for p, _ in hot]).to_list()
        clusters: list[list[tuple[int, int]]] = []
        last_session = None
        for (pos, c), sid in zip(hot, sessions, strict=True):
            if clusters and sid == last_session and pos - clusters[-1][-1][0] <= gap:
                clusters[-1].append((pos, c))
            else:
                clusters.append([(pos, c)])
            last_session = sid
        clusters.sort(key=lambda cl: (-sum(c for _, c in cl), cl[0][0]))
        ids = self._ctx.df.get_column("id")
        return [self._draft(ids.gather([p for p, _ in cl]).to_list(), None) for cl in clusters[:n]]


def retrieval_counts(events: list[dict]) -> Counter:
    counts: Counter = Counter()
    for e in events:
        if e.get("op") in RETRIEVAL_OPS and not e.get("error"):
            counts.update(i for i in e.get("result_ids") or [] if isinstance(i, str))
    return counts


def _gist(bodies: list[str], weights: dict[str, float]) -> str:
    best, best_score = "", -1.0
    for body in bodies:
        for sentence in _SENTENCE.split(body):
            s = sentence.strip()
            if len(s) < 12:
                continue
            low = s.lower()
            score = sum(w for t, w in weights.items() if t in low) / (1 + len(s) / 400)
            if score > best_score:
                best, best_score = s, score
    return _one_line(best, GIST_CHARS)
