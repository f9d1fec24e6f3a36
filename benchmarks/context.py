"""Context environment benchmark: 1M- and 10M-token histories, side by side.

    .venv/bin/python benchmarks/context.py [--sizes 1e6 1e7] [--seed 7]

Histories are built from the real sample records (every row the loaders give for tests/data/samples, copied with
fresh ids) interleaved with synthetic filler (words drawn Zipf-style from the samples' own vocabulary) and a few
planted facts. Printed: regex_search vs a plain Python `re` loop over a list[str] of the same messages, BM25 index
build and query p50/p95 (tantivy and bm25s), slice/get_by_id latency, resident memory vs text size, embedding
throughput and semantic query latency (model2vec; MiniLM's rate on a sample), recall@10 of the planted facts for
bm25, semantic, hybrid and bm25s and of questions about the real sample rows (REAL_QUESTIONS; also on the samples
alone, with MiniLM too), and the Arrow IPC hand-off to a worker process. Targets from issue 3 are printed
next to each number.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from rlm_jupyter.testing.samples import sample_tree  # noqa: E402  (from this checkout)

SAMPLES = sample_tree()  # tests/data/samples + the package's shared samples
FIELDS = ("text", "thinking", "tool_input", "tool_output")

# (fact planted in one message, keyword query a model would write without knowing the exact wording)
FACTS = [
    (
        "We decided to keep session cookies in Redis with a fifteen minute TTL after the JWT leak incident.",
        "session cookie redis ttl decision",
    ),
    (
        "The flaky integration test was caused by the timezone of the CI runner being Pacific instead of UTC.",
        "flaky integration test timezone",
    ),
    (
        "Authentication now goes through the gateway; the legacy LDAP bind path was removed on purpose.",
        "authentication gateway ldap removed",
    ),
    (
        "The billing export crashed because invoices with zero line items produced an empty CSV header.",
        "billing export crash empty csv",
    ),
    (
        "Rate limiting uses a token bucket of 120 requests per minute per API key, agreed with the platform team.",
        "rate limit token bucket api key",
    ),
    (
        "The migration script must run before the worker restarts, otherwise the queue schema is stale.",
        "migration before worker restart queue schema",
    ),
    (
        "Memory grew because the thumbnail cache kept decoded images; capping it at 256 entries fixed the leak.",
        "thumbnail cache memory leak fix",
    ),
    (
        "The user asked to never touch the vendored protobuf files under third_party when refactoring imports.",
        "vendored protobuf third_party refactor",
    ),
]


# Questions about the real sample sessions, each with a regex naming the messages that answer it (any copy counts).
# Written from reading the transcripts before any ranking was looked at, so the fusion is not tuned to FACTS only;
# most share few or no words with their answer. In the 1M/10M histories each real row has ~3/~30 copies; ranked
# search indexes each distinct content once (search.distinct_bodies), so copies cannot fill the top 10. Before that
# (issue 17), 10M gave bm25 4/10, semantic 3/10, hybrid 5/10.
REAL_QUESTIONS = [
    ("which tool call did the user refuse to allow", r"The user doesn't want to proceed with this tool use"),
    ("what compaction threshold was configured for OpenCode", r"Implemented the default context compaction setting"),
    ("security problems found while exploring the repository", r"identified specific issues in \*\*Adaptability\*\*"),
    ("make the team lead instructions shorter in a new file", r"I've created the `lead_gemini.txt` file"),
    ("division by zero error after fixing the script", r"ZeroDivisionError"),
    ("a 2048 puzzle game was written", r"I've created a simple implementation of the 2048 game"),
    ("explain the math conjecture about even numbers", r"Goldbach's conjecture is an unsolved problem"),
    ("ignore file for Rust and Bun projects", r"Git Ignore for Rust|Update File: [^\n]*\.gitignore"),
    ("why is the protobuf wire transport disabled", r"Re-enable real protobuf request/response"),
    ("remove the javascript file", r"I've deleted hello.js"),
]


def real_recall(ctx, mode: str, embedder=None, **kw) -> tuple[int, int]:
    """Recall@10 of REAL_QUESTIONS: a question counts when any message matching its regex is in the top 10.
    mode "default" calls `ctx.search(query)` as a model would, with no mode."""
    hits = 0
    for query, answer in REAL_QUESTIONS:
        relevant = set(ctx.regex_search(answer, limit=1_000_000).positions)
        assert relevant, f"no sample message matches {answer!r}: the samples changed, fix REAL_QUESTIONS"
        found = (
            ctx.search(query) if mode == "default" else ctx.search(query, limit=10, mode=mode, embedder=embedder, **kw)
        )
        hits += bool(relevant & set(found.positions))
    return hits, len(REAL_QUESTIONS)


def measure_rerank(ctx) -> dict:
    """Hybrid + the MiniLM reranking stage (context/rerank.py): recall@10 of REAL_QUESTIONS and seconds per query."""
    from rlm_jupyter.context import embed

    if embed.unavailable_reason("minilm"):
        return {}
    embed.get_embedder("minilm")  # loaded outside the timing
    t0 = time.perf_counter()
    recall = real_recall(ctx, "hybrid", rerank=True)
    return {"real_rerank": recall, "rerank_s": (time.perf_counter() - t0) / len(REAL_QUESTIONS)}


def rss_mb() -> float:
    import psutil

    return psutil.Process(os.getpid()).memory_info().rss / 2**20


def template_rows() -> list[dict]:
    """Every row the loaders produce for the real samples (formats whose loader is not finished give none)."""
    import rlm_jupyter as rj

    rows: list[dict] = []
    for folder in sorted(p for p in SAMPLES.iterdir() if p.is_dir()):
        try:
            ctx = rj.load(folder)
        except Exception as e:  # an unfinished loader
            print(f"  (samples {folder.name}: not loaded: {type(e).__name__})")
            continue
        rows += ctx.df.to_dicts()
    return rows


def build_sessions(target_tokens: int, templates: list[dict], rng: random.Random):
    """Sessions of about `target_tokens` estimated tokens: real rows (fresh ids) and filler, facts planted."""
    from rlm_jupyter.sessions import Session

    vocab = sorted(
        {w.lower() for r in templates for f in FIELDS if r.get(f) for w in re.findall(r"[A-Za-z]{3,}", r[f])}
    )
    weights = [1 / (i + 1) for i in range(len(vocab))]
    rng.shuffle(vocab)
    pool = rng.choices(vocab, weights, k=200_000)  # drawn once, reused with random offsets: cheap filler

    def filler(n_words: int) -> str:
        start = rng.randrange(0, len(pool) - n_words)
        return " ".join(pool[start : start + n_words])

    keep = ("role", "origin", "text", "thinking", "tool_name", "tool_input", "tool_output", "tool_status", "model")
    template_tokens = [(sum(len((r.get(f) or "").encode()) for f in FIELDS) + 3) // 4 for r in templates]
    # Facts go into filler messages spread evenly over the history.
    plant_at = [target_tokens * (i + 1) // (len(FACTS) + 1) for i in range(len(FACTS))]
    sessions, tokens, n, k = [], 0, 0, 0
    planted: dict[str, str] = {}
    ts0 = 1_767_225_600_000_000  # 2026-01-01 in epoch µs; one message every 7 s
    while tokens < target_tokens:
        s = Session(session_id=f"bench-{k}", format="bench", path="-")
        for r, t in zip(templates, template_tokens, strict=True):
            s.add(id=f"bench-{k}-{len(s)}", ts=ts0 + n * 7_000_000, **{c: r[c] for c in keep})
            n, tokens = n + 1, tokens + t
            if rng.random() < 0.5:  # filler after about half the real rows
                body = filler(rng.randint(40, 300))
                msg_id = f"bench-{k}-{len(s)}"
                if len(planted) < len(FACTS) and tokens >= plant_at[len(planted)]:
                    fact, query = FACTS[len(planted)]
                    body = f"{body[: len(body) // 2]} {fact} {body[len(body) // 2 :]}"
                    planted[msg_id] = query
                s.add(id=msg_id, role="assistant", origin="model", text=body, ts=ts0 + n * 7_000_000)
                n, tokens = n + 1, tokens + (len(body.encode()) + 3) // 4
            if tokens >= target_tokens:
                break
        sessions.append(s)
        k += 1
    return sessions, planted


def timed(fn, repeat: int = 1) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best * 1000, out


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def run(target: int, templates: list[dict], seed: int, rerank: bool = True) -> dict:
    from rlm_jupyter.context import Context
    from rlm_jupyter.context.frames import return_freed_memory

    rng = random.Random(seed)
    return_freed_memory()  # the baseline as trimmed as the context will be (else the delta can come out negative)
    rss0 = rss_mb()
    sessions, planted = build_sessions(target, templates, rng)
    ctx = Context(sessions, cache=tempfile.mkdtemp(prefix="rlm-ctx-bench-"))  # fresh cache: nothing reused
    _ = ctx.table  # df + derived columns, what queries use
    gc.collect()
    rss_ctx = rss_mb() - rss0
    text_mb = sum(ctx.df[f].str.len_bytes().sum() or 0 for f in FIELDS) / 2**20
    out = {"tokens": ctx.tokens, "messages": len(ctx), "text_mb": text_mb, "rss_ctx_mb": rss_ctx}

    # The same messages as a list[str]: what RLM code greps by default.
    docs = ["\n".join(p for p in parts if p) for parts in ctx.df.select(FIELDS).iter_rows()]
    out["regex"] = []
    patterns = ((r"kestrel-417|third_party", 0), (r"auth\w* token", re.I), (r"JWT|session cookie|refresh token", 0))
    for pattern, flags in patterns:
        ms, hits = timed(lambda p=pattern, f=flags: ctx.regex_search(p, limit=50, flags=f), repeat=3)
        rx = re.compile(pattern, flags)
        loop_ms, found = timed(lambda rx=rx, docs=docs: [i for i, d in enumerate(docs) if rx.search(d)])
        out["regex"].append((pattern + (" (ignore case)" if flags else ""), ms, loop_ms, hits.total, len(found)))
    del docs

    rss_before_index = rss_mb()
    build_ms, index = timed(ctx.keyword_index)
    out["index_build_s"] = build_ms / 1000
    out["index_rss_mb"] = rss_mb() - rss_before_index
    words = [w for w in re.findall(r"[a-z]{4,}", " ".join(ctx.df["text"].head(2000).drop_nulls().to_list()))]
    queries = [" ".join(rng.sample(words, rng.randint(2, 3))) for _ in range(200)]
    lat = []
    for q in queries:
        t0 = time.perf_counter()
        ctx.search(q, limit=10, mode="bm25")
        lat.append((time.perf_counter() - t0) * 1000)
    raw = []
    for q in queries:
        t0 = time.perf_counter()
        index.search(q, 10)
        raw.append((time.perf_counter() - t0) * 1000)
    out["query_ms"] = (pct(lat, 0.5), pct(lat, 0.95))
    out["raw_query_ms"] = (pct(raw, 0.5), pct(raw, 0.95))

    ids = ctx.df["id"].to_list()
    lookups = rng.sample(ids, 500)
    out["slice_ms"] = statistics.median(timed(lambda: ctx.slice(-20))[0] for _ in range(500))
    mid = len(ctx) // 2
    out["slice_mid_ms"] = statistics.median(timed(lambda: ctx.slice(mid, mid + 40))[0] for _ in range(500))
    out["get_ms"] = statistics.median(timed(lambda i=i: ctx.get_by_id(i))[0] for i in lookups)
    out["item_ms"] = statistics.median(timed(lambda: ctx[len(ctx) // 2])[0] for _ in range(500))

    for mode in ("bm25", "semantic", "hybrid"):
        if mode != "bm25" and not out.get("embed_ok", True):
            continue
        if mode == "semantic":
            out.update(measure_semantic(ctx, queries))
            if not out["embed_ok"]:
                continue
        hits = sum(msg_id in ctx.search(query, limit=10, mode=mode).ids for msg_id, query in planted.items())
        out[f"recall_{mode}"] = (hits, len(planted))
        out[f"real_{mode}"] = real_recall(ctx, mode)
    out["real_default"] = real_recall(ctx, "default")
    lat = []
    for q, _ in REAL_QUESTIONS:
        t0 = time.perf_counter()
        ctx.search(q)
        lat.append((time.perf_counter() - t0) * 1000)
    out["default_ms"] = (pct(lat, 0.5), pct(lat, 0.95))
    if rerank and out.get("embed_ok"):
        out.update(measure_rerank(ctx))
    out.update(measure_bm25s(ctx, queries, planted))
    out.update(measure_ipc(ctx))
    return out


def measure_semantic(ctx, queries: list[str]) -> dict:
    from rlm_jupyter.context import embed

    reason = embed.unavailable_reason()
    if reason:
        print(f"  semantic: off ({reason})")
        return {"embed_ok": False}
    embed.get_embedder()  # load (or distil, once) outside the timing
    t0 = time.perf_counter()
    index = ctx.semantic_index(progress=False)
    build = time.perf_counter() - t0
    lat = []
    for q in queries[:50]:
        t0 = time.perf_counter()
        ctx.search(q, limit=10, mode="semantic")
        lat.append((time.perf_counter() - t0) * 1000)
    return {
        "embed_ok": True,
        "chunks": index.chunks,
        "embed_s": build,
        "embed_tps": index.chunks / build,
        "semantic_ms": (pct(lat, 0.5), pct(lat, 0.95)),
    }


def measure_minilm(sample: list[str]) -> float | None:
    """texts/s of sentence-transformers MiniLM on message-sized chunks (too slow to index 10M tokens here)."""
    from rlm_jupyter.context import embed

    if embed.unavailable_reason("minilm"):
        return None
    from rlm_jupyter.context.semantic import embed as run_embed

    model = embed.get_embedder("minilm")
    run_embed(model, sample[:64], progress=False)  # warm up
    t0 = time.perf_counter()
    run_embed(model, sample, progress=False)
    return len(sample) / (time.perf_counter() - t0)


def samples_recall(minilm: bool) -> dict:
    """REAL_QUESTIONS on the sample sessions alone (no copies, no filler), for each embedder that is installed."""
    from rlm_jupyter.context import Context, embed
    from rlm_jupyter.sessions import read_sessions

    sessions, report = read_sessions([SAMPLES])
    ctx = Context(sessions, report, cache=tempfile.mkdtemp(prefix="rlm-ctx-bench-"))  # fresh: vectors embedded here
    out = {"messages": len(ctx), "bm25": real_recall(ctx, "bm25")}
    for name in ("model2vec", "minilm") if minilm else ("model2vec",):
        if embed.unavailable_reason(name) is None:
            out[f"semantic {name}"] = real_recall(ctx, "semantic", name)
            out[f"hybrid {name}"] = real_recall(ctx, "hybrid", name)
    return out


def measure_bm25s(ctx, queries: list[str], planted: dict[str, str]) -> dict:
    """The bm25s library (numpy/scipy, PyStemmer) on the same documents, for comparison with tantivy."""
    try:
        import bm25s
        import Stemmer
    except ImportError:
        return {}
    docs = ["\n".join(p for p in parts if p) for parts in ctx.df.select(FIELDS).iter_rows()]
    stemmer = Stemmer.Stemmer("english")
    t0 = time.perf_counter()
    tokens = bm25s.tokenize(docs, stopwords="en", stemmer=stemmer, show_progress=False)
    retriever = bm25s.BM25()
    retriever.index(tokens, show_progress=False)
    build = time.perf_counter() - t0
    del docs, tokens
    lat = []
    for q in queries:
        t0 = time.perf_counter()
        retriever.retrieve(
            bm25s.tokenize([q], stopwords="en", stemmer=stemmer, show_progress=False), k=10, show_progress=False
        )
        lat.append((time.perf_counter() - t0) * 1000)
    index = ctx._id_index()
    hits = 0
    for msg_id, q in planted.items():
        found, _ = retriever.retrieve(
            bm25s.tokenize([q], stopwords="en", stemmer=stemmer, show_progress=False), k=10, show_progress=False
        )
        hits += index[msg_id] in found[0].tolist()
    return {"bm25s_build_s": build, "bm25s_ms": (pct(lat, 0.5), pct(lat, 0.95)), "recall_bm25s": (hits, len(planted))}


_WORKER = """
import sys, time
t0 = time.perf_counter()
from rlm_jupyter.context import Context
ctx = Context.from_ipc(sys.argv[1], cache=False)
n = len(ctx)
t1 = time.perf_counter()
hits = ctx.regex_search("kestrel-417|third_party", limit=50)
t2 = time.perf_counter()
print(n, (t1 - t0) * 1000, (t2 - t1) * 1000)
"""


def measure_ipc(ctx) -> dict:
    """to_ipc in this process; in a fresh worker process: import + from_ipc, then a first regex query."""
    folder = Path(tempfile.mkdtemp(prefix="rlm-ctx-ipc-", dir="/dev/shm" if Path("/dev/shm").is_dir() else None))
    t0 = time.perf_counter()
    path = ctx.to_ipc(folder / "history.arrow")
    write = time.perf_counter() - t0
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _WORKER, str(path)], capture_output=True, text=True, cwd=ROOT, check=True
    )
    total = time.perf_counter() - t0
    n, load_ms, query_ms = done.stdout.split()
    assert int(n) == len(ctx)
    size = path.stat().st_size / 2**20
    for f in folder.iterdir():
        f.unlink()
    folder.rmdir()
    return {
        "ipc_write_ms": write * 1000,
        "ipc_mb": size,
        "ipc_load_ms": float(load_ms),
        "ipc_query_ms": float(query_ms),
        "ipc_worker_ms": total * 1000,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", type=float, default=[1e6, 1e7])
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--no-minilm", dest="minilm", action="store_false", help="skip the sentence-transformers rate")
    ap.add_argument("--no-rerank", dest="rerank", action="store_false", help="skip the MiniLM reranking stage")
    args = ap.parse_args()
    print("loading the real sample records …")
    templates = template_rows()
    print(f"  {len(templates):,} template rows")
    from rlm_jupyter.context.semantic import split_text

    sample = [p for r in templates for f in FIELDS if r.get(f) for p in split_text(r[f])][:512]
    minilm = measure_minilm(sample) if args.minilm else None
    print("recall on the sample sessions alone (MiniLM embeds them all: minutes on a busy machine) …", flush=True)
    samples = samples_recall(args.minilm)
    results = []
    for size in args.sizes:
        print(f"building and measuring a {size:,.0f}-token history …", flush=True)
        results.append(run(int(size), templates, args.seed, args.rerank))
        gc.collect()

    cols = [f"{r['tokens'] / 1e6:.1f}M tokens" for r in results]
    w = 22

    def line(label: str, values: list[str], target: str = "") -> None:
        print(f"{label:<44}" + "".join(f"{v:>{w}}" for v in values) + (f"   target {target}" if target else ""))

    print()
    line("", cols)
    line("messages", [f"{r['messages']:,}" for r in results])
    line("text (MiB: text+thinking+tool in/out)", [f"{r['text_mb']:.1f}" for r in results])
    for i, (label, *_rest) in enumerate(results[0]["regex"]):
        print(f"regex {label!r}")
        line(
            "  regex_search ms (polars scan + re spans)",
            [f"{r['regex'][i][1]:.1f}" for r in results],
            "<= 100 ms at 10M",
        )
        line("  plain re loop over list[str] ms", [f"{r['regex'][i][2]:.1f}" for r in results])
        line("  speed-up", [f"{r['regex'][i][2] / r['regex'][i][1]:.1f}x" for r in results], ">= 10x")
        line("  matching messages (regex_search / loop)", [f"{r['regex'][i][3]} / {r['regex'][i][4]}" for r in results])
    line("tantivy index build s", [f"{r['index_build_s']:.2f}" for r in results])
    line("tantivy index RSS added MiB", [f"{r['index_rss_mb']:.0f}" for r in results])
    line(
        "ctx.search bm25 p50 / p95 ms",
        [f"{r['query_ms'][0]:.2f} / {r['query_ms'][1]:.2f}" for r in results],
        "p50 <= 5 ms at 10M",
    )
    line(
        "  of which index query p50 / p95 ms",
        [f"{r['raw_query_ms'][0]:.2f} / {r['raw_query_ms'][1]:.2f}" for r in results],
    )
    line("slice(-20) ms (median)", [f"{r['slice_ms']:.3f}" for r in results], "<= 1 ms")
    line("slice(mid, mid + 40) ms (median)", [f"{r['slice_mid_ms']:.3f}" for r in results], "<= 1 ms")
    line("get_by_id ms (median)", [f"{r['get_ms']:.3f}" for r in results], "<= 1 ms")
    line("ctx[i] ms (median)", [f"{r['item_ms']:.3f}" for r in results])
    line("context RSS MiB (sessions + df + table)", [f"{r['rss_ctx_mb']:.0f}" for r in results])
    line("  RSS / text", [f"{r['rss_ctx_mb'] / r['text_mb']:.2f}x" for r in results], "<= 2.5x")
    for mode in ("bm25", "semantic", "hybrid", "bm25s"):
        if all(f"recall_{mode}" in r for r in results):
            line(
                f"recall@10 of planted facts, {mode}",
                [f"{r[f'recall_{mode}'][0]}/{r[f'recall_{mode}'][1]}" for r in results],
                "hybrid >= bm25",
            )
    for mode in ("bm25", "semantic", "hybrid", "default", "rerank"):
        if all(f"real_{mode}" in r for r in results):
            label = {"default": "default", "rerank": "+rerank"}.get(mode, mode)  # ctx.search(q); hybrid + MiniLM
            line(
                f"recall@10 of real-sample questions, {label}",
                [f"{r[f'real_{mode}'][0]}/{r[f'real_{mode}'][1]}" for r in results],
                ">= 9/10 at 10M (before issue 17: 5/10)" if mode == "default" else "",
            )
    print("  (default: ctx.search(q) as a model calls it; +rerank: hybrid, then MiniLM on the top 20)")
    line(
        "ctx.search(q) default p50 / p95 ms", [f"{r['default_ms'][0]:.1f} / {r['default_ms'][1]:.1f}" for r in results]
    )
    if all("rerank_s" in r for r in results):
        line("hybrid + MiniLM rerank s per query (top 20)", [f"{r['rerank_s']:.2f}" for r in results])
    if all(r.get("embed_ok") for r in results):
        line("chunks embedded (model2vec; ~200-char sentence windows)", [f"{r['chunks']:,}" for r in results])
        line("model2vec embed s / texts per s", [f"{r['embed_s']:.1f} / {r['embed_tps']:,.0f}" for r in results])
        line(
            "ctx.search semantic p50 / p95 ms",
            [f"{r['semantic_ms'][0]:.1f} / {r['semantic_ms'][1]:.1f}" for r in results],
        )
    if all("bm25s_build_s" in r for r in results):
        line("bm25s (+PyStemmer) index build s", [f"{r['bm25s_build_s']:.2f}" for r in results])
        line("bm25s query p50 / p95 ms", [f"{r['bm25s_ms'][0]:.2f} / {r['bm25s_ms'][1]:.2f}" for r in results])
    line("to_ipc ms (Arrow IPC, uncompressed) / MiB", [f"{r['ipc_write_ms']:.0f} / {r['ipc_mb']:.0f}" for r in results])
    line("worker: import + from_ipc ms", [f"{r['ipc_load_ms']:.0f}" for r in results])
    line("worker: first regex_search ms", [f"{r['ipc_query_ms']:.0f}" for r in results])
    line("worker process start to exit ms", [f"{r['ipc_worker_ms']:.0f}" for r in results])
    print(
        f"recall@10 of real-sample questions on the {samples.pop('messages')} sample messages alone:  "
        + ",  ".join(f"{k} {v[0]}/{v[1]}" for k, v in samples.items())
    )
    if minilm is not None:
        print(f"sentence-transformers MiniLM (embedder='minilm'): {minilm:,.0f} texts/s on 512 message chunks")


if __name__ == "__main__":
    main()
