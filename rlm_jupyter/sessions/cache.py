"""The persistent cache of loaded tables: what each source file gave, so reopening a store reads only the cache.

Layout under `root()` (env RLM_JUPYTER_CACHE, else ~/.cache/rlm_jupyter), in `loads/v1/`:

    packs/<id>.arrow   the normalized rows of a batch of source files (Arrow IPC, zstd: ~4x smaller on real sessions,
                       and no slower to read back than uncompressed, since polars copies either into memory)
    packs/<id>.json    the pack's manifest: per source file its key, row range, sessions and report

A source file's entry is valid only while its key matches: real path, size, mtime_ns, the loader version (the
shared reading code) and its format module's version (a hash of that module's source). A file that grew is read
again and lands in a new pack; the old rows stop being used. A file modified within RACY_NS of being read also
keeps a hash of its content, checked on reopen, since a same-size rewrite in the same mtime tick keeps its key.
Each file is written to a temp name and renamed into place (arrow first, manifest last), and a pack is used only
when its manifest parses, names this cache format, and its arrow file has exactly the size and rows the manifest
records and the expected columns: anything else is ignored (and deleted), never trusted.

Rows live in packs of many files rather than one file per source file: writing 3,000 tiny Arrow files costs
~0.5 ms each and reading them back ~0.5 ms each (more than parsing the sessions), while a pack is one write and one
read.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

PACK_FORMAT = "rlm_jupyter.sessions.load-pack/1"
# Bump when what a pack holds changes meaning without any loader source changing.
LOADER_VERSION = "2"  # 2: window events resolved at load time (out_by, cleared_by, window_event)
# A file changed less than this before it was read may be rewritten with the same size in the same mtime tick
# (coarse file-system clocks): its entry also keeps a hash of its content, checked on every reopen ("racy git").
RACY_NS = 3_000_000_000
# A load whose rows come from more packs than this (or from packs mostly superseded) writes them into one pack.
MAX_PACKS_PER_LOAD = 64


def root(base: Path | None = None) -> Path:
    """The load cache inside `base` (default: RLM_JUPYTER_CACHE, else ~/.cache/rlm_jupyter; the context's index
    cache lives beside it in `histories/`)."""
    if base is None:
        env = os.environ.get("RLM_JUPYTER_CACHE")
        base = Path(env).expanduser() if env else Path.home() / ".cache" / "rlm_jupyter"
    return base / "loads" / "v1"


def _source_hash(paths: list[Path]) -> str:
    h = hashlib.blake2b(digest_size=8)
    for p in sorted(paths):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()


@functools.cache
def loader_version() -> str:
    """The version of the reading code every format shares: the constant plus a hash of those modules."""
    here = Path(__file__).parent
    core = [here / n for n in ("model.py", "schema.py", "textutil.py", "jsonio.py", "window.py")]
    core += list((here / "formats").glob("_*.py"))
    return f"{LOADER_VERSION}.{_source_hash(core)}"


@functools.cache
def format_version(name: str) -> str:
    """A format module's version: its VERSION (if it sets one) and a hash of its source."""
    from . import formats

    for mod in formats.modules():
        if name == mod.NAME:
            return f"{getattr(mod, 'VERSION', 0)}.{_source_hash([Path(str(getattr(mod, '__file__', '')))])}"
    return "unknown"


def file_digest(path: Path) -> str | None:
    h = hashlib.blake2b(digest_size=16)
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                h.update(chunk)
    except OSError:
        return None
    return h.hexdigest()


@dataclass(frozen=True)
class Key:
    """What a source file's cached rows depend on."""

    path: str  # real path
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, real: str, st: os.stat_result) -> Key:
        return cls(real, st.st_size, st.st_mtime_ns)


@dataclass
class Hit:
    pack: Path
    entry: dict  # the manifest's record of the file: start, rows, format, sessions, issues, notes


class Index:
    """Every valid pack's entries, by real path (the newest pack wins)."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = (folder or root()) / "packs"
        self.entries: dict[str, tuple[int, Path, dict]] = {}  # real path -> (pack time, arrow path, entry)
        self.packs: dict[Path, dict] = {}  # arrow path -> manifest
        self.rejected: list[str] = []
        self.settled: dict[Path, set[str]] = {}  # racy entries found unchanged once their window had passed

    def read(self) -> Index:
        try:
            names = os.listdir(self.folder)
        except OSError:
            return self
        for name in names:
            if not name.endswith(".json") or name.startswith("."):
                continue
            arrow = self.folder / (name[:-5] + ".arrow")
            man = _manifest(self.folder / name, arrow)
            if man is None:
                self.rejected.append(name[:-5])
                continue
            self.packs[arrow] = man
            for e in man["files"]:
                cur = self.entries.get(e["path"])
                if cur is None or cur[0] < man["time"]:
                    self.entries[e["path"]] = (man["time"], arrow, e)
        return self

    def lookup(self, key: Key, path: str | None = None) -> Hit | None:
        found = self.entries.get(key.path)
        if found is None:
            return None
        _, arrow, e = found
        if (e["size"], e["mtime_ns"]) != (key.size, key.mtime_ns) or e["loader"] != loader_version():
            return None
        if e["format_version"] != format_version(e["format"]):
            return None
        if e.get("digest"):
            if file_digest(Path(path or key.path)) != e["digest"]:
                return None  # read within RACY_NS of its last change, and its content differs now
            if time.time_ns() - key.mtime_ns >= RACY_NS:
                # unchanged, checked after its mtime tick had passed: a later write gets a later mtime, so the
                # key alone decides from now on (settle() drops the digest: no more hashing on every reopen)
                self.settled.setdefault(arrow, set()).add(e["path"])
        return Hit(arrow, e)

    def settle(self) -> None:
        """Rewrite the manifests whose racy entries were found unchanged (lookup) without their digests. Best
        effort: a manifest that cannot be written keeps its digests (checked again next time)."""
        for arrow, paths in self.settled.items():
            man = self.packs.get(arrow)
            if man is None:
                continue
            for e in man["files"]:
                if e["path"] in paths:
                    e.pop("digest", None)
            with contextlib.suppress(OSError):
                atomic_write(arrow.with_suffix(".json"), _dump(man))
        self.settled.clear()

    def superseded(self) -> list[Path]:
        """Packs of which no entry is the newest for its path any more."""
        live = {arrow for _, arrow, _ in self.entries.values()}
        return [p for p in self.packs if p not in live]

    def live_fraction(self, arrow: Path) -> float:
        man = self.packs.get(arrow)
        if not man or not man["rows"]:
            return 1.0
        live = sum(e["rows"] for t, a, e in self.entries.values() if a == arrow)
        return live / man["rows"]


def _manifest(path: Path, arrow: Path) -> dict | None:
    """The pack's manifest when the pack is whole and ours; None for anything foreign, partial or corrupt."""
    try:
        man = orjson.loads(path.read_bytes())
        if not isinstance(man, dict) or man.get("format") != PACK_FORMAT:
            return None
        if arrow.stat().st_size != man["bytes"] or not isinstance(man["files"], list):
            return None
        for e in man["files"]:
            if not all(
                k in e
                for k in (
                    "path",
                    "size",
                    "mtime_ns",
                    "loader",
                    "format",
                    "format_version",
                    "start",
                    "rows",
                    "sessions",
                    "issues",
                )
            ):
                return None
        return man
    except (OSError, ValueError, KeyError, TypeError):
        return None


def read_pack(arrow: Path, rows: int):
    """The pack's frame, checked against the manifest's row count and the schema's columns."""
    import polars as pl

    return _checked(arrow, rows, pl.read_ipc(arrow))


def read_packs(packs: list[tuple[Path, int]]) -> list[Any]:
    """`read_pack` of each (arrow, rows), in one polars query so that the packs are decompressed on all cores
    (reading 9 packs one by one took 2.3x as long). Each item is the frame, or the exception that makes that pack
    untrusted."""
    import polars as pl

    if len(packs) > 1:
        try:
            frames = pl.collect_all([pl.scan_ipc(a) for a, _ in packs])
        except Exception:  # noqa: BLE001  (some pack is unreadable: find which, one by one)
            pass
        else:
            out: list[Any] = []
            for (a, rows), df in zip(packs, frames, strict=True):
                try:
                    out.append(_checked(a, rows, df))
                except ValueError as e:
                    out.append(e)
            return out
    out = []
    for a, rows in packs:
        try:
            out.append(read_pack(a, rows))
        except Exception as e:  # noqa: BLE001  (whatever a foreign or corrupt file raises, the pack is not used)
            out.append(e)
    return out


def _checked(arrow: Path, rows: int, df):
    from .schema import MESSAGE_COLUMNS, polars_schema

    if df.height != rows or dict(df.schema) != polars_schema(MESSAGE_COLUMNS):
        raise ValueError(f"{arrow}: rows or columns differ from its manifest")
    return df


def write_pack(folder: Path, df, files: list[dict]) -> Path:
    """Write `df` (the rows of `files`, in order) and its manifest; returns the arrow path. Raises OSError."""
    packs = folder / "packs"
    packs.mkdir(parents=True, exist_ok=True)
    pid = f"{time.time_ns():x}-{uuid.uuid4().hex[:8]}"
    arrow = packs / f"{pid}.arrow"
    fd, tmp = tempfile.mkstemp(prefix=f".{pid}-", suffix=".arrow", dir=packs)
    try:
        with os.fdopen(fd, "wb") as fh:
            df.write_ipc(fh, compression="zstd")
        size = os.path.getsize(tmp)
        os.replace(tmp, arrow)
        man = {"format": PACK_FORMAT, "time": time.time_ns(), "rows": df.height, "bytes": size, "files": files}
        atomic_write(packs / f"{pid}.json", _dump(man))
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        arrow.unlink(missing_ok=True)
        raise
    return arrow


def _dump(man: dict) -> bytes:
    """A manifest as JSON: orjson (~10x faster than json: 2 vs 17 ms for the 3,000 entries of a large load); json for
    what orjson refuses (an integer beyond 64 bits that a record carried into a session's `extra`)."""
    try:
        return orjson.dumps(man)
    except TypeError:
        return json.dumps(man, ensure_ascii=False).encode()


def atomic_write(path: Path, data: bytes) -> Path:
    """Write `data` to `path` through a temp file and a rename, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def drop_pack(arrow: Path) -> None:
    for p in (arrow.with_suffix(".json"), arrow):
        with contextlib.suppress(OSError):
            p.unlink()


ORPHAN_AGE_S = 3600


def drop_orphans(index: Index) -> None:
    """Temp files and arrow files without a manifest left by a crashed or killed load (an hour old: a live load
    finishes its pack long before)."""
    cutoff = time.time() - ORPHAN_AGE_S
    try:
        entries = list(os.scandir(index.folder))
    except OSError:
        return
    for e in entries:
        orphan = e.name.startswith(".") or (e.name.endswith(".arrow") and Path(e.path) not in index.packs)
        with contextlib.suppress(OSError):
            if orphan and e.stat().st_mtime < cutoff:
                os.unlink(e.path)


def info(folder: Path | None = None) -> dict[str, Any]:
    """What the cache holds: its folder, packs, source files, rows and bytes."""
    folder = folder or root()
    idx = Index(folder).read()
    size = 0
    if idx.folder.is_dir():
        size = sum(p.stat().st_size for p in idx.folder.iterdir() if p.is_file())
    return {
        "folder": str(folder),
        "packs": len(idx.packs),
        "files": len(idx.entries),
        "rows": sum(m["rows"] for m in idx.packs.values()),
        "bytes": size,
        "stale_packs": len(idx.superseded()),
        "invalid_packs": len(idx.rejected),
    }


def clear(folder: Path | None = None) -> int:
    """Delete the load cache; returns the bytes freed."""
    folder = folder or root()
    freed = info(folder)["bytes"]
    shutil.rmtree(folder, ignore_errors=True)
    return freed
