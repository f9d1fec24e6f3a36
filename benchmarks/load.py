"""Load speed, cache and memory of `rj.load` on real-shaped agent stores, next to the orjson floor, in one run.

Builds, in a temp folder, stores from the real records in tests/data/samples with every id remapped per file and
per repetition (so parent chains hold and nothing dedupes away): Claude Code (one `<sessionId>.jsonl` per session)
and Codex (`sessions/YYYY/MM/DD/rollout-*.jsonl`), each as N small files (default 300 and 3,000 of ~--file-kb KB)
and as one big file (--big-mb, default 1000). For every store, each number from a fresh process:

  floor      read every file and `orjson.loads` every line, nothing else (one core)
  load w=1   first load, no cache yet, one process          load w=2  the same with a pool of 2 workers
  reopen     the same store again, everything from the cache
  append     1 MB appended to one session of the store, then reopen (that file re-read, the rest cached);
             `1file+reopen` is the time to read that one file alone plus a plain cached reopen
  peak/MB    peak resident memory of the w=1 load above the process's memory after imports, per MB of store

Targets (issue 11): first load <= 2.5x the floor (w=2 on this 2-core machine); s/MB at 3,000 files <= 1.2x s/MB at
300; reopen >= 10x faster than the first load; append-reopen <= 2x (1file+reopen); peak <= 2.5x the store size.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from rlm_jupyter.testing.samples import sample_tree  # noqa: E402  (from this checkout)

SAMPLES = sample_tree()  # tests/data/samples + the package's shared samples
CLAUDE_SOURCES = [
    SAMPLES / "claude-code" / "codemie-session-9eda1058.jsonl",
    SAMPLES / "claude-code" / "codemie-4c2ddfdc-b619-4525-8d03-1950fb1b0257.jsonl",
    SAMPLES / "claude-code" / "codemie-incremental-subagents" / "turn-1.jsonl",
]
CODEX_SOURCE = SAMPLES / "codex" / "rollout-2026-05-11T11-26-55-019e1625-789d-76c0-80ab-3724b5ddb799.jsonl"

# Every uuid, and every provider id (msg_…, toolu_…, call_…), is remapped per file and repetition: the first 8 hex
# digits of a uuid become a tag, a provider id gets the tag after its prefix. The same id in the source maps to the
# same new id, so parentUuid chains, tool_use/tool_result pairs and call/output pairs still hold.
_UUID = re.compile(rb"[0-9a-f]{8}(-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})")
_PROVIDER = re.compile(rb"\b(msg_bdrk_|msg_|toolu_bdrk_|toolu_|req_|call_|rs_|fc_|ctc_)([A-Za-z0-9]{6,})")
_SESSION = b"SESSION-PLACEHOLDER"


def _remap(template: bytes, tag: bytes) -> bytes:
    out = _UUID.sub(lambda m: tag + m.group(1), template)
    return _PROVIDER.sub(lambda m: m.group(1) + tag + m.group(2), out)


def _claude_template() -> bytes:
    lines = []
    for p in CLAUDE_SOURCES:
        for raw in p.read_bytes().splitlines():
            if raw.strip():
                rec = orjson.loads(raw)
                if "sessionId" in rec:
                    rec["sessionId"] = _SESSION.decode()
                lines.append(orjson.dumps(rec))
    return b"\n".join(lines) + b"\n"


def _codex_template() -> tuple[bytes, bytes]:
    raw = CODEX_SOURCE.read_bytes().splitlines()
    meta = orjson.loads(raw[0])
    meta["payload"]["id"] = _SESSION.decode()
    return orjson.dumps(meta) + b"\n", b"\n".join(r for r in raw[1:] if r.strip()) + b"\n"


def _session_id(n: int) -> str:
    return f"{n:08x}-b3c4-4d5e-8f60-{n:012x}"


def write_session(path: Path, fmt: str, n: int, nbytes: int) -> None:
    """One session file of about `nbytes`, session number `n` (ids remapped per repetition)."""
    sid = _session_id(n).encode()
    with open(path, "wb") as fh:
        if fmt == "codex":
            head, body = _TEMPLATES["codex"]
            fh.write(head.replace(_SESSION, sid))
        else:
            body = _TEMPLATES["claude"]
        rep = 0
        while fh.tell() < nbytes:
            chunk = _remap(body, f"{n % 0xFFFFF:05x}{rep % 0xFFF:03x}".encode()).replace(_SESSION, sid)
            room = nbytes - fh.tell()
            if len(chunk) > room:  # end the session at a line boundary near the size asked for
                cut = chunk.find(b"\n", room)
                chunk = chunk if cut < 0 else chunk[: cut + 1]
            fh.write(chunk)
            rep += 1


_TEMPLATES: dict = {}


def build_store(folder: Path, fmt: str, files: int, file_bytes: int) -> Path:
    _TEMPLATES.setdefault("claude", _claude_template())
    _TEMPLATES.setdefault("codex", _codex_template())
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(files):
        if fmt == "codex":
            day = folder / "sessions" / "2026" / "05" / f"{1 + n % 28:02d}"
            day.mkdir(parents=True, exist_ok=True)
            path = day / f"rollout-2026-05-{1 + n % 28:02d}T10-00-00-{_session_id(n)}.jsonl"
        else:
            path = folder / f"{_session_id(n)}.jsonl"
        write_session(path, fmt, n, file_bytes)
        # a real store's sessions were written before it is loaded, not within the load cache's racy window (3 s,
        # in which a file's content is hashed on every reopen, since a same-size rewrite could keep its mtime)
        old = time.time_ns() - 86_400 * 10**9
        os.utime(path, ns=(old, old))
    return folder


def append_session(path: Path, fmt: str, nbytes: int) -> None:
    _TEMPLATES.setdefault("claude", _claude_template())  # also for a store kept from an earlier run (--keep)
    _TEMPLATES.setdefault("codex", _codex_template())
    """Append about `nbytes` of new records of the same session (what an agent does) to an existing file."""
    sid = (orjson.loads(path.open("rb").readline())["payload"]["id"] if fmt == "codex" else path.stem).encode()
    body = _TEMPLATES["claude"] if fmt == "claude" else _TEMPLATES["codex"][1]
    with open(path, "ab") as fh:
        end = fh.tell() + nbytes
        rep = 0
        while fh.tell() < end:
            fh.write(_remap(body, f"fffff{rep:03x}".encode()).replace(_SESSION, sid))
            rep += 1


_CHILD = r"""
import json, os, resource, sys, time
mode, target, cache, workers = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
import orjson
if mode != "floor":
    import polars, rlm_jupyter as rj
    from rlm_jupyter import context  # noqa: F401  (imports before the clock starts: a notebook has them already)
    from rlm_jupyter.sessions import corpus, formats, tables  # noqa: F401
    formats.modules()
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
rows = 0
if mode == "floor":
    for root, _, files in os.walk(target):
        for name in files:
            with open(os.path.join(root, name), "rb") as fh:
                for line in fh:
                    orjson.loads(line)
                    rows += 1
else:
    ctx = rj.load(target, cache=cache if cache != "off" else False, workers=workers, progress=False)
    rows = ctx.df.height
dt = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": dt, "rows": rows, "peak_kb": peak, "base_kb": base}))
"""


def measure(mode: str, target: Path, cache: Path | str = "off", workers: int = 1) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, mode, str(target), str(cache), str(workers)],
        capture_output=True,
        text=True,
        env=env,
    )
    if out.returncode:
        raise SystemExit(f"{mode} {target} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def store_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def run_case(work: Path, fmt: str, files: int, file_bytes: int) -> dict:
    store = work / f"{fmt}-{files}"
    if not store.exists():
        build_store(store, fmt, files, file_bytes)
    mb = store_size(store) / 1e6
    c1, c2 = work / f"cache-{fmt}-{files}-w1", work / f"cache-{fmt}-{files}-w2"
    for c in (c1, c2):
        shutil.rmtree(c, ignore_errors=True)
    r = {"fmt": fmt, "files": files, "mb": mb}
    # Untimed: the page cache warm for every measurement alike (a store built or read long ago may have been evicted,
    # and a cold floor would make every ratio look better than it is).
    measure("floor", store)
    r["floor"] = measure("floor", store)
    r["w1"] = measure("load", store, c1, 1)
    r["w2"] = measure("load", store, c2, 2)
    r["reopen"] = measure("load", store, c2, 2)
    victim = sorted(p for p in store.rglob("*.jsonl"))[len(list(store.rglob("*.jsonl"))) // 2]
    append_session(victim, fmt, 1_000_000)
    r["append"] = measure("load", store, c2, 2)
    r["one"] = measure("load", victim, "off", 1)
    r["reopen2"] = measure("load", store, c2, 2)
    assert r["append"]["rows"] == r["reopen2"]["rows"] > r["reopen"]["rows"], "the appended rows are missing"
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--counts", default="300,3000", help="numbers of files per store (default 300,3000)")
    ap.add_argument("--file-kb", type=int, default=100, help="size of each session file in KB (default 100)")
    ap.add_argument("--big-mb", type=int, default=1000, help="size of the one-file store in MB (0: skip)")
    ap.add_argument("--formats", default="claude,codex")
    ap.add_argument("--keep", metavar="DIR", help="build the stores here and keep them")
    args = ap.parse_args()

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="rlmj-bench-load-"))
    work.mkdir(parents=True, exist_ok=True)
    cases = []
    try:
        for fmt in args.formats.split(","):
            for n in (int(c) for c in args.counts.split(",") if c):
                t = time.perf_counter()
                cases.append(run_case(work, fmt, n, args.file_kb * 1000))
                print(f"  {fmt} {n} files done in {time.perf_counter() - t:.0f} s", file=sys.stderr)
            if args.big_mb:
                cases.append(run_case(work, fmt, 1, args.big_mb * 1_000_000))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}")
    head = (
        f"{'store':<14} {'MB':>6} {'rows':>9} | {'floor s':>7} | {'w=1 s':>6} {'x':>5} | {'w=2 s':>6} {'x':>5} | "
        f"{'reopen s':>8} {'gain':>5} | {'append s':>8} {'1file+reopen':>12} {'x':>5} | {'peak/MB':>7}"
    )
    print(head)
    print("-" * len(head))
    per_mb = {}
    for r in cases:
        fl, w1, w2, ro = r["floor"]["seconds"], r["w1"]["seconds"], r["w2"]["seconds"], r["reopen"]["seconds"]
        ref = r["one"]["seconds"] + r["reopen2"]["seconds"]
        peak = (r["w1"]["peak_kb"] - r["w1"]["base_kb"]) / 1024 / r["mb"]
        name = f"{r['fmt']}-{r['files']}" if r["files"] > 1 else f"{r['fmt']}-1file"
        per_mb[name] = w2 / r["mb"]
        print(
            f"{name:<14} {r['mb']:>6.0f} {r['w1']['rows']:>9,} | {fl:>7.2f} | {w1:>6.2f} {w1 / fl:>4.1f}x |"
            f" {w2:>6.2f} {w2 / fl:>4.1f}x | {ro:>8.2f} {min(w1, w2) / ro:>4.0f}x | {r['append']['seconds']:>8.2f}"
            f" {ref:>12.2f} {r['append']['seconds'] / ref:>4.1f}x | {peak:>6.2f}x"
        )
    for fmt in args.formats.split(","):
        counts = [int(c) for c in args.counts.split(",") if c]
        if len(counts) >= 2 and f"{fmt}-{counts[0]}" in per_mb:
            print(
                f"{fmt}: s/MB at {counts[-1]} files / s/MB at {counts[0]} files (w=2) = "
                f"{per_mb[f'{fmt}-{counts[-1]}'] / per_mb[f'{fmt}-{counts[0]}']:.2f}x"
            )
    print(
        "targets: first load (w=2) <= 2.5x floor; s/MB 3,000 vs 300 files <= 1.2x; reopen gain >= 10x; "
        "append-reopen <= 2x (1file+reopen); peak <= 2.5x the store size (above the imports)"
    )


if __name__ == "__main__":
    main()
