"""A seeded, bounded fuzzer for `rj.load`: mutated copies of real sample sessions of every format.

Used by tests/test_fuzz_load.py (a small subset, in the suite) and benchmarks/fuzz_load.py (5,000 inputs).

Case `i` of seed `s` is always the same input: `make_case(i)` picks a sample and a mutation from `Random(f"{s}:{i}")`,
so a crash found in a run is written again by number (`--save`) and kept in tests/data/crashers/.

Each input is loaded in a worker process (`python -m rlm_jupyter.testing.load_fuzz --worker`) in-process, one
after the other, with an in-process time limit (SIGALRM) per input; the parent kills a worker that stops answering
(a hang in C code) and starts a new one. The only error allowed out of `rj.load` is the documented "nothing
loadable" one (`UnknownFormatError`: an explicitly named file that is no session format); anything else, and any
exception from `.df`, `.sessions` or the report, is a crash.
"""

from __future__ import annotations

import json
import os
import random
import select
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from .samples import sample_tree

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"

# Values that replace a known key's value: wrong types, out-of-range numbers, odd strings.
BAD_VALUES = [
    {},
    [],
    [[]],
    [None],
    {"a": [1]},
    None,
    True,
    False,
    0,
    -1,
    0.5,
    2**64 - 1,
    2**63,
    -(2**63),
    2**63 - 1,
    1.7e308,
    -1.7e308,
    1e-300,
    "",
    "12abc",
    "2026-13-45T99:99:99Z",
    "-9999-01-01",
    "\x00",
    "x" * 2000,
    "[]",
    "{}",
]
HUGE_LINE_MB = 50


@dataclass
class Seed:
    kind: str  # jsonl | json | db | tree | zst
    path: Path

    @property
    def name(self) -> str:
        return self.path.name


def seeds() -> list[Seed]:
    """Every format's real samples, an opencode.db, an OpenCode storage tree and a zstd Codex rollout."""
    out = []
    for p in sorted(sample_tree().rglob("*")):
        if not p.is_file() or p.name == "SOURCES.md" or "rlm-logs" in p.parts:
            continue
        out.append(Seed("jsonl" if p.suffix == ".jsonl" else "json", p))
    out.append(Seed("db", DATA / "recorded" / "opencode" / "current" / "opencode.db"))
    out.append(Seed("tree", DATA / "recorded" / "opencode" / "v1.1" / "storage"))
    codex = sorted((sample_tree() / "codex").glob("rollout-*.jsonl"))[0]
    out.append(Seed("zst", codex))
    return out


# ---------------------------------------------------------------- mutations of bytes and records


def _lines(data: bytes) -> list[bytes]:
    return data.splitlines(keepends=True) or [b""]


def _key_paths(value, path=(), out=None, limit=400) -> list[tuple]:
    """Paths (tuples of keys / indexes) to every dict value inside `value`."""
    out = [] if out is None else out
    if len(out) >= limit:
        return out
    if isinstance(value, dict):
        for k, v in value.items():
            out.append((*path, k))
            _key_paths(v, (*path, k), out, limit)
    elif isinstance(value, list):
        for i, v in enumerate(value[:50]):
            _key_paths(v, (*path, i), out, limit)
    return out


def _set(doc, path: tuple, value):
    target = doc
    for k in path[:-1]:
        target = target[k]
    target[path[-1]] = value


def _dumps(value) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError:  # ints beyond 64 bits
        return json.dumps(value).encode()


_SENTINEL = "\u2063fuzz-sentinel\u2063"


def _retype(rng: random.Random, value, raw_values: list[bytes] | None = None) -> bytes | None:
    """`value` (parsed JSON) with one known key's value swapped for a bad one, as JSON bytes."""
    paths = _key_paths(value)
    if not paths:
        return None
    path = rng.choice(paths)
    bad = rng.choice(raw_values) if raw_values else None
    if bad is None:
        _set(value, path, rng.choice(BAD_VALUES))
        return _dumps(value)
    _set(value, path, _SENTINEL)
    return _dumps(value).replace(_dumps(_SENTINEL), bad, 1)


def _deep(depth: int = 100_000) -> bytes:
    return b"[" * depth + b"]" * depth


def mutate_bytes(rng: random.Random, data: bytes, kind: str, splice: list[bytes], huge_mb: int) -> bytes:
    """One mutation of a JSON or JSONL file's bytes."""
    lines = _lines(data)
    if kind == "truncate":
        return data[: rng.randrange(len(data) + 1)]
    if kind == "flip":
        b = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            if b:
                b[rng.randrange(len(b))] = rng.randrange(256)
        return bytes(b)
    if kind == "delete-lines":
        for _ in range(rng.randint(1, 3)):
            if len(lines) > 1:
                del lines[rng.randrange(len(lines))]
        return b"".join(lines)
    if kind == "duplicate-lines":
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(lines))
            lines.insert(rng.randrange(len(lines) + 1), lines[i])
        return b"".join(lines)
    if kind == "invalid-utf8":
        pos = rng.randrange(len(data) + 1)
        bad = rng.choice([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x80\x80", b"\xf8\x88\x80\x80\x80"])
        return data[:pos] + bad + data[pos:]
    if kind == "nul":
        pos = rng.randrange(len(data) + 1)
        return data[:pos] + b"\x00" * rng.randint(1, 64) + data[pos:]
    if kind == "splice":
        for _ in range(rng.randint(1, 3)):
            lines.insert(rng.randrange(len(lines) + 1), rng.choice(splice).rstrip(b"\n") + b"\n")
        return b"".join(lines)
    if kind == "deep":
        return _with_raw_value(rng, data, [_deep(), b'{"a":' * 100_000 + b"1" + b"}" * 100_000])
    if kind == "huge-line":
        return _with_raw_value(rng, data, [b'"' + b"x" * (huge_mb << 20) + b'"'])
    if kind == "retype":
        return _retype_bytes(rng, data, rng.randint(1, 3))
    raise ValueError(kind)


def _records(data: bytes) -> tuple[str, list]:
    """('json', [doc]) for a JSON document, ('jsonl', [records...]) for JSONL (None for bad lines)."""
    try:
        return "json", [orjson.loads(data)]
    except orjson.JSONDecodeError:
        pass
    out = []
    for raw in _lines(data):
        try:
            out.append(orjson.loads(raw))
        except orjson.JSONDecodeError:
            out.append(raw)
    return "jsonl", out


def _retype_bytes(rng: random.Random, data: bytes, times: int, raw_values: list[bytes] | None = None) -> bytes:
    kind, recs = _records(data)
    for _ in range(times):
        idx = [i for i, r in enumerate(recs) if isinstance(r, (dict, list))]
        if not idx:
            break
        i = rng.choice(idx)
        new = _retype(rng, recs[i], raw_values)
        if new is not None:
            recs[i] = orjson.loads(new) if raw_values is None and len(new) < 10_000_000 and _plain(new) else new
    if kind == "json":
        r = recs[0]
        return r if isinstance(r, bytes) else _dumps(r)
    return b"".join((r if isinstance(r, bytes) else _dumps(r)).rstrip(b"\n") + b"\n" for r in recs)


def _plain(raw: bytes) -> bool:
    try:
        orjson.loads(raw)
        return True
    except orjson.JSONDecodeError:
        return False


def _with_raw_value(rng: random.Random, data: bytes, raws: list[bytes]) -> bytes:
    """A known key's value replaced by raw JSON bytes (a 100k-deep value, a 50 MB string)."""
    out = _retype_bytes(rng, data, 1, raws)
    if out == data:  # nothing to retype: add a line
        out = data + b"\n" + rng.choice(raws) + b"\n"
    return out


GARBAGE_HEADS = {
    "zip": b"PK\x03\x04",
    "sqlite": b"SQLite format 3\x00",
    "zstd": b"\x28\xb5\x2f\xfd",
    "gzip": b"\x1f\x8b\x08",
}

BYTE_MUTATIONS = [
    "truncate",
    "flip",
    "delete-lines",
    "duplicate-lines",
    "invalid-utf8",
    "nul",
    "splice",
    "deep",
    "retype",
    "retype",
    "retype",
    "retype",
]


@dataclass
class Case:
    index: int
    seed: str
    mutation: str
    path: Path  # what to pass to rj.load
    notes: list[str] = field(default_factory=list)


class Generator:
    def __init__(self, run_seed: int, workdir: Path, huge_mb: int = HUGE_LINE_MB, huge_every: int = 250):
        self.run_seed = run_seed
        self.workdir = workdir
        self.huge_mb = huge_mb
        self.huge_every = huge_every
        self.seeds = seeds()
        self._splice: list[bytes] | None = None

    def splice_lines(self) -> list[bytes]:
        if self._splice is None:
            out = []
            for s in self.seeds:
                if s.kind == "jsonl":
                    out.extend(ln for ln in s.path.read_bytes().splitlines()[:40] if ln.strip())
                elif s.kind == "json":
                    doc = orjson.loads(s.path.read_bytes())
                    items = (
                        doc
                        if isinstance(doc, list)
                        else next((v for v in doc.values() if isinstance(v, list) and v), [doc])
                        if isinstance(doc, dict)
                        else []
                    )
                    out.extend(_dumps(x) for x in items[:20])
            self._splice = out
        return self._splice

    def make(self, i: int) -> Case:
        rng = random.Random(f"{self.run_seed}:{i}")
        seed = rng.choice(self.seeds)
        folder = self.workdir / f"case-{i}"
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        if self.huge_every and i % self.huge_every == self.huge_every - 1:
            seed = rng.choice([s for s in self.seeds if s.kind in ("jsonl", "json")])
            return self._file_case(rng, i, seed, folder, "huge-line")
        if rng.random() < 0.03:
            return self._garbage(rng, i, folder)
        if seed.kind == "db":
            return self._db_case(rng, i, seed, folder)
        if seed.kind == "tree":
            return self._tree_case(rng, i, seed, folder)
        return self._file_case(rng, i, seed, folder, rng.choice(BYTE_MUTATIONS))

    def _file_case(self, rng, i, seed: Seed, folder: Path, mutation: str) -> Case:
        data = mutate_bytes(rng, seed.path.read_bytes(), mutation, self.splice_lines(), self.huge_mb)
        name = seed.name
        if seed.kind == "zst":
            import zstandard

            data = zstandard.ZstdCompressor().compress(data)
            if rng.random() < 0.3:  # a cut-off or damaged frame
                data = data[: rng.randrange(len(data))] if rng.random() < 0.5 else _flip(rng, data)
            name += ".zst"
        target = folder / name
        target.write_bytes(data)
        load = target
        if rng.random() < 0.15:  # inside a folder, beside an intact sample
            intact = rng.choice([s for s in self.seeds if s.kind in ("json", "jsonl")]).path
            shutil.copy(intact, folder / f"intact-{intact.name}")
            load = folder
        return Case(i, seed.name, mutation, load)

    def _garbage(self, rng, i, folder: Path) -> Case:
        kind = rng.choice(sorted(GARBAGE_HEADS))
        data = GARBAGE_HEADS[kind] + rng.randbytes(rng.randint(0, 8192))
        name = rng.choice(["x.jsonl", "opencode.db", "rollout-x.jsonl.zst", "x.json", "x.traj"])
        (folder / name).write_bytes(data)
        return Case(i, "garbage", f"garbage-{kind}", folder / name if rng.random() < 0.7 else folder)

    def _db_case(self, rng, i, seed: Seed, folder: Path) -> Case:
        target = folder / "opencode.db"
        shutil.copy(seed.path, target)
        mutation = rng.choice(
            ["db-retype", "db-retype", "db-retype", "db-column", "db-raw", "db-flip", "db-truncate", "db-drop"]
        )
        if mutation == "db-flip":
            target.write_bytes(_flip(rng, target.read_bytes(), rng.randint(1, 40)))
        elif mutation == "db-truncate":
            data = target.read_bytes()
            target.write_bytes(data[: rng.randrange(len(data))])
        else:
            conn = sqlite3.connect(target)
            try:
                table = rng.choice(["session", "message", "part"])
                if mutation == "db-drop":  # rows picked by the seeded rng (SQLite's random() is not seeded)
                    rowids = [r[0] for r in conn.execute(f"SELECT rowid FROM {table} ORDER BY rowid")]
                    conn.executemany(
                        f"DELETE FROM {table} WHERE rowid=?", [(r,) for r in rng.sample(rowids, min(3, len(rowids)))]
                    )
                else:
                    cols = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
                    rowids = [r[0] for r in conn.execute(f"SELECT rowid FROM {table}")]
                    for _ in range(rng.randint(1, 3)):
                        if not rowids:
                            break
                        rowid = rng.choice(rowids)
                        if mutation == "db-retype" and "data" in cols:
                            (raw,) = conn.execute(f"SELECT data FROM {table} WHERE rowid=?", (rowid,)).fetchone()
                            new = _retype_bytes(rng, raw.encode() if isinstance(raw, str) else raw, 1)
                            conn.execute(
                                f"UPDATE {table} SET data=? WHERE rowid=?", (new.decode("utf-8", "replace"), rowid)
                            )
                        elif mutation == "db-raw" and "data" in cols:
                            bad = rng.choice([b"\xff\xfe", "not json", 12, 1.5, None, "[]", "null", '{"id": {}}'])
                            conn.execute(f"UPDATE {table} SET data=? WHERE rowid=?", (bad, rowid))
                        else:
                            col = rng.choice(cols)
                            bad = rng.choice(
                                [
                                    None,
                                    2**63 - 1,
                                    -(2**63),
                                    float("inf"),
                                    -float("inf"),
                                    1.7e308,
                                    "abc",
                                    b"\x00\xff",
                                    "",
                                    0,
                                    -1,
                                ]
                            )
                            conn.execute(f"UPDATE {table} SET {col}=? WHERE rowid=?", (bad, rowid))
                conn.commit()
            except sqlite3.Error:
                pass
            finally:
                conn.close()
        return Case(i, seed.name, mutation, target)

    def _tree_case(self, rng, i, seed: Seed, folder: Path) -> Case:
        root = folder / "storage"
        shutil.copytree(seed.path, root)
        files = sorted(root.rglob("*.json"))
        mutation = "tree-" + rng.choice(BYTE_MUTATIONS)
        for f in rng.sample(files, rng.randint(1, 3)):
            f.write_bytes(mutate_bytes(rng, f.read_bytes(), mutation[5:], self.splice_lines(), self.huge_mb))
        return Case(i, "storage", mutation, root)


def _flip(rng, data: bytes, n: int = 8) -> bytes:
    b = bytearray(data)
    for _ in range(n):
        if b:
            b[rng.randrange(len(b))] = rng.randrange(256)
    return bytes(b)


# ---------------------------------------------------------------- running one input (in a worker process)


class _TimeLimit(BaseException):
    pass


def _alarm(signum, frame):
    raise _TimeLimit()


def _where(exc: BaseException) -> str:
    """The innermost frame of the package (or any frame) that raised: the crash site."""
    frames = traceback.extract_tb(exc.__traceback__)
    own = [f for f in frames if "rlm_jupyter" in f.filename and "load_fuzz" not in f.filename]
    f = (own or frames or [None])[-1]
    return f"{Path(f.filename).name}:{f.lineno} {f.name}" if f is not None else "?"


def load_one(path: Path, time_limit: float) -> dict:
    """Load `path` with `rj.load` and build every table; what happened, as a small dict."""
    import rlm_jupyter as rj
    from rlm_jupyter.sessions import UnknownFormatError

    t0 = time.perf_counter()
    signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, time_limit)
    out: dict = {}
    try:
        # the readers and the table build are what is fuzzed: the load cache has its own corrupt-pack tests, and a
        # cached copy of an input would hide the reader on a second look
        ctx = rj.load(path, cache=False, progress=False)
        df = ctx.df
        ctx.sessions  # noqa: B018 - builds the sessions table
        ctx.summaries()
        repr(ctx.report)
        out.update(status="loaded", rows=df.height, issues=len(ctx.report.issues))
        # The safety nets of sessions/checks.py: a whole file lost to a reader error, or a record skipped by a
        # reader's guard. Both are handled, but each names a reader site that should take the value itself.
        lost = [i.reason for i in ctx.report.issues if "nothing loaded from this file" in i.reason]
        guarded = [i.reason for i in ctx.report.issues if i.reason.startswith("record skipped: unexpected value")]
        if lost:
            out.update(status="file-lost", error=lost[0], where=lost[0].rpartition(" at ")[2])
        elif guarded:
            out.update(guarded=guarded[0], where=guarded[0].rpartition(" at ")[2])
    except UnknownFormatError as exc:
        out.update(status="refused", error=str(exc)[:200])
    except _TimeLimit:
        out.update(status="hang", where="in-process time limit")
    except BaseException as exc:  # noqa: BLE001 - counting crashes is the point; PanicException is a BaseException
        out.update(status="crash", error=f"{type(exc).__name__}: {str(exc)[:300]}", where=_where(exc))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    out["secs"] = round(time.perf_counter() - t0, 3)
    return out


def _peak_rss_mb() -> float:
    """This worker's own peak resident memory. Not getrusage's ru_maxrss: Linux carries that across fork + exec, so a
    worker started from a big pytest process would report its parent's size (1.7 GB seen in a full suite run)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB: the high-water mark of this process's own memory
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker(run_seed: int, workdir: Path, huge_mb: int, huge_every: int, time_limit: float) -> None:
    """Read case numbers from stdin, answer one JSON line each."""
    import gc

    gen = Generator(run_seed, workdir, huge_mb, huge_every)
    for line in sys.stdin:
        i = int(line)
        case = gen.make(i)
        res = load_one(case.path, time_limit)
        res.update(i=i, seed=case.seed, mutation=case.mutation, rss_mb=round(_peak_rss_mb(), 1))
        shutil.rmtree(workdir / f"case-{i}", ignore_errors=True)
        gc.collect()
        sys.stdout.write(json.dumps(res) + "\n")
        sys.stdout.flush()


# ---------------------------------------------------------------- the parent: workers, hang watch, counts


@dataclass
class Summary:
    inputs: int = 0
    loaded: int = 0
    refused: int = 0
    files_lost: list[dict] = field(default_factory=list)  # a reader error caught by the file-level net
    records_guarded: list[dict] = field(default_factory=list)  # a record skipped by a reader's per-record guard
    crashes: list[dict] = field(default_factory=list)
    hangs: list[dict] = field(default_factory=list)
    peak_rss_mb: float = 0.0
    mutations: Counter = field(default_factory=Counter)  # inputs per mutation kind
    seeds: Counter = field(default_factory=Counter)  # inputs per sample file
    slowest: float = 0.0
    slowest_case: dict = field(default_factory=dict)
    seconds: float = 0.0

    def line(self) -> str:
        return (
            f"inputs={self.inputs} loaded={self.loaded} refused(nothing loadable)={self.refused} "
            f"files_lost={len(self.files_lost)} records_guarded={len(self.records_guarded)} "
            f"crashes={len(self.crashes)} hangs={len(self.hangs)} peak_memory={self.peak_rss_mb:.0f} MB "
            f"slowest={self.slowest:.2f} s wall={self.seconds:.1f} s"
        )


class _Worker:
    def __init__(self, run_seed, workdir, huge_mb, huge_every, time_limit, root: Path = ROOT):
        env = dict(
            os.environ,
            PYTHONPATH=os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
            RUST_BACKTRACE="0",
            POLARS_MAX_THREADS="1",
        )
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "rlm_jupyter.testing.load_fuzz",
                "--worker",
                str(run_seed),
                str(workdir),
                str(huge_mb),
                str(huge_every),
                str(time_limit),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            text=True,
            bufsize=1,
            cwd=root,
        )  # `-m` puts the working folder first on sys.path: it must be the tree under test
        self.case: int | None = None
        self.started = 0.0

    def send(self, i: int) -> None:
        self.case, self.started = i, time.monotonic()
        self.proc.stdin.write(f"{i}\n")
        self.proc.stdin.flush()

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()


def run(
    n: int,
    run_seed: int = 19,
    workers: int = 2,
    start: int = 0,
    huge_mb: int = HUGE_LINE_MB,
    huge_every: int = 250,
    time_limit: float = 10.0,
    hang_after: float = 30.0,
    workdir: Path | None = None,
    progress=None,
    root: Path = ROOT,
) -> Summary:
    """Load cases start..start+n-1 in `workers` processes; count crashes, hangs and peak memory.

    `root` is the source tree the workers import rlm_jupyter from (another revision, for a baseline)."""
    import tempfile

    own = workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="rlm-fuzz-")) if own else workdir
    summary = Summary()
    t0 = time.monotonic()
    todo = list(range(start, start + n))
    pool = [_Worker(run_seed, workdir, huge_mb, huge_every, time_limit, root) for _ in range(max(1, min(workers, n)))]
    try:
        for w in pool:
            if todo:
                w.send(todo.pop(0))
        while any(w.case is not None for w in pool):
            busy = {w.proc.stdout: w for w in pool if w.case is not None}
            ready, _, _ = select.select(list(busy), [], [], 1.0)
            for fh in ready:
                w = busy[fh]
                line = fh.readline()
                if not line:  # the worker died (a hard crash: segfault, abort)
                    res = {
                        "i": w.case,
                        "status": "crash",
                        "error": f"worker died (exit {w.proc.wait()})",
                        "where": "process",
                    }
                else:
                    res = json.loads(line)
                _count(summary, res)
                if progress:
                    progress(res)
                if not line:
                    pool[pool.index(w)] = w = _Worker(run_seed, workdir, huge_mb, huge_every, time_limit, root)
                w.case = None
                if todo:
                    w.send(todo.pop(0))
            now = time.monotonic()
            for k, w in enumerate(pool):
                if w.case is not None and now - w.started > hang_after:
                    res = {"i": w.case, "status": "hang", "where": f"no answer in {hang_after:.0f} s (killed)"}
                    _count(summary, res)
                    w.kill()
                    pool[k] = w = _Worker(run_seed, workdir, huge_mb, huge_every, time_limit, root)
                    if todo:
                        w.send(todo.pop(0))
    finally:
        for w in pool:
            if w.proc.poll() is None:
                w.proc.stdin.close()
                try:
                    w.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    w.kill()
        if own:
            shutil.rmtree(workdir, ignore_errors=True)
    summary.seconds = time.monotonic() - t0
    return summary


def _count(summary: Summary, res: dict) -> None:
    summary.inputs += 1
    summary.mutations[res.get("mutation", "?")] += 1
    summary.seeds[res.get("seed", "?")] += 1
    status = res.get("status")
    if status == "loaded":
        summary.loaded += 1
        if res.get("guarded"):
            summary.records_guarded.append(res)
    elif status == "file-lost":
        summary.loaded += 1
        summary.files_lost.append(res)
    elif status == "refused":
        summary.refused += 1
    elif status == "hang":
        summary.hangs.append(res)
    else:
        summary.crashes.append(res)
    summary.peak_rss_mb = max(summary.peak_rss_mb, res.get("rss_mb", 0.0))
    if res.get("secs", 0.0) > summary.slowest:
        summary.slowest, summary.slowest_case = res["secs"], res


def save_case(i: int, dest: Path, run_seed: int = 19, huge_mb: int = HUGE_LINE_MB, huge_every: int = 250) -> Path:
    """Write case `i` again (it is deterministic) into `dest`; returns what to load."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        case = Generator(run_seed, Path(tmp), huge_mb, huge_every).make(i)
        folder = Path(tmp) / f"case-{i}"
        out = dest / f"seed{run_seed}-case{i}-{case.mutation}"
        if out.exists():
            shutil.rmtree(out)
        shutil.copytree(folder, out)
        return out / case.path.relative_to(folder)


if __name__ == "__main__" and sys.argv[1:2] == ["--worker"]:
    seed_arg, wd, mb, every, limit = sys.argv[2:7]
    worker(int(seed_arg), Path(wd), int(mb), int(every), float(limit))
