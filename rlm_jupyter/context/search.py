"""Regex search (polars scan, Python `re` for spans) and keyword search (a tantivy BM25 index, optionally on disk).

Imported on first use only: it pulls in polars and tantivy.
"""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl

from .cache import atomic_dir
from .errors import ArgumentError, InvalidPatternError
from .results import CONTENT_FIELDS

MAX_SPANS = 20  # matched spans kept per message: enough to highlight, bounded when a pattern matches everywhere
_BATCH = 256

# Python re flags that have an inline equivalent in the Rust regex syntax polars uses.
_INLINE = ((re.IGNORECASE, "i"), (re.MULTILINE, "m"), (re.DOTALL, "s"), (re.VERBOSE, "x"))
_TRANSLATABLE = re.IGNORECASE | re.MULTILINE | re.DOTALL | re.VERBOSE | re.UNICODE


def compile_pattern(pattern, case: bool, flags: int) -> re.Pattern:
    if isinstance(pattern, re.Pattern):
        flags |= pattern.flags
        pattern = pattern.pattern
    if not isinstance(pattern, str) or not pattern:
        raise ArgumentError(
            f"regex_search: pattern must be a non-empty string, got {pattern!r}; "
            "pass a regular expression such as r'JWT|session cookie'"
        )
    if not isinstance(flags, int):
        raise ArgumentError(f"regex_search: flags must be re flags such as re.IGNORECASE | re.MULTILINE, got {flags!r}")
    if not case:
        flags |= re.IGNORECASE
    try:
        return re.compile(pattern, flags)
    except re.error as e:
        raise InvalidPatternError(
            f"regex_search: pattern {pattern!r} is not a valid regular expression ({e}); pass a Python regex, "
            "or re.escape(text) to search for literal text"
        ) from None


def _polars_pattern(rx: re.Pattern) -> str | None:
    """The pattern with its flags inlined for polars, or None when a flag has no Rust equivalent (e.g. re.ASCII)."""
    if rx.flags & ~_TRANSLATABLE:
        return None
    inline = "".join(c for flag, c in _INLINE if rx.flags & flag)
    return f"(?{inline}){rx.pattern}" if inline else rx.pattern


def candidate_positions(df: pl.DataFrame, rx: re.Pattern) -> tuple[list[int], bool]:
    """Positions whose content may match: (positions, exact).

    polars (Rust regex) scans the columns fast; Python `re` confirms later. When polars rejects the pattern
    (look-around, back-references) every row is scanned with `re` here and the result is exact.
    """
    pp = _polars_pattern(rx)
    if pp is not None:
        try:
            hit = df.select(pl.any_horizontal([pl.col(f).str.contains(pp).fill_null(False) for f in CONTENT_FIELDS]))
            return hit.to_series().arg_true().to_list(), False
        except pl.exceptions.PolarsError:
            pass
    found: set[int] = set()
    search = rx.search
    for f in CONTENT_FIELDS:
        for i, v in enumerate(df.get_column(f).to_list()):
            if v is not None and i not in found and search(v):
                found.add(i)
    return sorted(found), True


def find_spans(row: dict, rx: re.Pattern) -> list[tuple[str, int, int]]:
    spans: list[tuple[str, int, int]] = []
    for f in CONTENT_FIELDS:
        v = row.get(f)
        if not v:
            continue
        for m in rx.finditer(v):
            if m.end() > m.start():  # empty matches (e.g. `a*`) highlight nothing
                spans.append((f, m.start(), m.end()))
                if len(spans) >= MAX_SPANS:
                    return spans
    return spans


# The on-disk BM25 folder's name; a new name when what is indexed changes, so an older index is not reopened.
BM25_DIR = "bm25-distinct"


def distinct_bodies(df: pl.DataFrame):
    """(position, body) of each message whose joined content fields differ from every earlier message's.

    Why: real histories repeat messages verbatim (a resumed or forked session replays its history, the same file is
    read twice, "ok" comes back from every passing test run). Ranked search indexes the first copy only, so ten
    copies of one message cannot fill the top 10 and push the answer out; the benchmark's 10M-token history holds
    ~30 copies of every real row and its recall@10 fell from 9/10 to 5/10 that way. regex_search still finds every
    copy. Empty messages are skipped."""
    seen: set[str] = set()
    cols = [df.get_column(f).to_list() for f in CONTENT_FIELDS]
    for pos, parts in enumerate(zip(*cols, strict=True)):
        body = "\n".join(p for p in parts if p)
        if body and body not in seen:
            seen.add(body)
            yield pos, body


def _build(df: pl.DataFrame, path: Path | None):
    import tantivy

    sb = tantivy.SchemaBuilder()
    sb.add_text_field("body", stored=False, tokenizer_name="en_stem")
    sb.add_integer_field("position", stored=False, fast=True, indexed=False)
    index = tantivy.Index(sb.build(), path=None if path is None else str(path))
    from ..sessions.progress import Progress

    writer = index.writer(heap_size=256_000_000, num_threads=2)
    Document = tantivy.Document
    with Progress(df.height, df.height, desc="word index", unit="msg", postfix=False) as bar:  # silent under 1 s
        done = 0
        for pos, body in distinct_bodies(df):
            writer.add_document(Document(body=body, position=pos))
            if pos - done >= 1000:
                bar.update(pos - done, files=pos - done)
                done = pos
        writer.commit()
        writer.wait_merging_threads()
        bar.update(df.height - done, files=df.height - done)
    del writer  # releases the folder's writer lock before the folder is moved
    return index


def regex_matches(df: pl.DataFrame, rx: re.Pattern, limit: int) -> tuple[list[int], list[list], int]:
    """First `limit` matching positions with spans, and how many messages match in all."""
    candidates, _exact = candidate_positions(df, rx)
    positions: list[int] = []
    spans: list[list] = []
    rejected = 0
    fields = df.select(CONTENT_FIELDS)
    for start in range(0, len(candidates), _BATCH):
        batch = candidates[start : start + _BATCH]
        for pos, row in zip(batch, fields[batch].iter_rows(named=True), strict=True):
            sp = find_spans(row, rx)
            if not sp:
                rejected += 1  # polars and Python re disagree (rare syntax differences): Python decides
                continue
            positions.append(pos)
            spans.append(sp)
            if len(positions) >= limit:
                return positions, spans, len(candidates) - rejected
    return positions, spans, len(candidates) - rejected


class KeywordIndex:
    """A BM25 index (tantivy) with one document per message: text, thinking, tool input and output.

    In memory, or with `path` in a folder on disk: opened from there when a finished index is present (written
    under another name and moved into place, so a half-written one is never opened)."""

    def __init__(self, df: pl.DataFrame, path: Path | None = None):
        import tantivy

        self.from_cache = False
        index = None
        if path is not None and (path / "meta.json").exists():
            try:
                index = tantivy.Index.open(str(path))
                self.from_cache = True
            except (ValueError, OSError):
                index = None  # damaged: rebuilt below, in memory
        if index is None:
            if path is not None and not path.exists():
                atomic_dir(path, lambda tmp: _build(df, tmp))
                index = tantivy.Index.open(str(path))
            else:
                index = _build(df, None)
        self._index = index
        self._index.reload()
        self._searcher = self._index.searcher()
        self._stemmer = (
            tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
            .filter(tantivy.Filter.lowercase())
            .filter(tantivy.Filter.stemmer("english"))
            .build()
        )
        self.documents = self._searcher.num_docs

    def doc_freq(self, stem: str) -> int:
        """How many messages hold this (already stemmed, lowercase) term."""
        return self._searcher.doc_freq("body", stem)

    def analyze(self, text: str) -> list[str]:
        return self._stemmer.analyze(text)

    def search(self, query: str, limit: int) -> list[tuple[int, float]]:
        q, errors = self._index.parse_query_lenient(query, ["body"])
        if errors:  # stray quotes, colons or brackets: search the plain words instead
            q, _ = self._index.parse_query_lenient(" ".join(re.findall(r"\w+", query)), ["body"])
        # Equal scores come back in segment order, which differs between two builds of the same history (the
        # writer is multi-threaded): over-fetch, then break ties by position so every build answers alike.
        hits = self._searcher.search(q, limit + max(limit, 16), count=False).hits
        if not hits:
            return []
        positions = self._searcher.fast_field_values("position", [addr for _, addr in hits])
        ranked = sorted(
            ((int(p), float(s)) for (s, _), p in zip(hits, positions, strict=True)),
            key=lambda ps: (-round(ps[1], 5), ps[0]),
        )
        return ranked[:limit]

    def highlighter(self, query: str) -> re.Pattern | None:
        """A case-insensitive regex for the query's stems as word prefixes: approximate highlighting only."""
        words = [w for w in re.findall(r"\w+", query) if w not in ("AND", "OR", "NOT")]
        stems = sorted({s for w in words for s in self._stemmer.analyze(w) if s}, key=len, reverse=True)
        if not stems:
            return None
        return re.compile(r"\b(?:" + "|".join(re.escape(s) for s in stems) + r")\w*", re.IGNORECASE)


# Hybrid fusion. Plain RRF sums 1/(k + rank) over the lists, so messages both lists rank vaguely outscore a message
# only one list ranks first: measured on benchmarks/context.py, bm25 found all 8 planted facts at rank 1 and RRF
# hybrid kept 4/8 at 1M tokens, because the semantic neighbours of each query (relevant or not) also had keyword hits.
# Gating the semantic list (cosine z-score floor) helped on average but still lost one of them (7/8) when the
# neighbours were genuine near-matches. Here a message scores by its BEST rank in either list, 1/(k + min rank), and
# agreement only breaks ties. Provably, a message at rank r in either list ends at rank <= 2r, so bm25's top 5 and
# the semantic top 5 always stay in the hybrid top 10: hybrid recall@10 is never below bm25's recall@5. k does not
# change the order, only the score scale that priority/recency weights multiply.


def fuse_ranks(rankings: list[list[tuple[int, float]]], k: int) -> list[tuple[int, float]]:
    """(position, 1/(k + best rank)) best first; ties by the sum of 1/(k + rank) over the lists, then position."""
    best: dict[int, float] = {}
    total: dict[int, float] = {}
    for ranking in rankings:
        for rank, (pos, _score) in enumerate(ranking, start=1):
            c = 1.0 / (k + rank)
            if c > best.get(pos, 0.0):
                best[pos] = c
            total[pos] = total.get(pos, 0.0) + c
    return sorted(best.items(), key=lambda t: (-t[1], -total[t[0]], t[0]))
