"""Follow a live agent: `rj.xray(path, follow=True)` / `%rlm_xray --follow PATH`.

A background thread watches a session file (or a folder of them) while the agent writes it, and rebuilds the
X-ray whenever complete lines arrive: the chart, the window at the last turn and the losses follow the file.

- Lines: only complete lines count. The bytes after the last newline (a line the agent is still writing) wait
  for their end; the view says how many bytes are pending. Complete lines are appended to a private copy of the
  file (same name, in a temp folder) that the ordinary loader reads, so rows keep `source` = "copy:line" and the
  X-ray re-reads boundary records from it as from the original. JSON / SQLite sessions (written whole) are
  copied whole when they change; an unparsable half-written JSON keeps the previous view and says so.
- Bad input: a file that shrinks (truncated), whose start changes or whose inode changes (replaced / rotated),
  or that disappears, is re-read from its start and the view says what happened; a folder switches to the
  session file written last and says so. The view never shows a stale X-ray without a notice.
- Watching: `watchfiles` (Rust notify: inotify / FSEvents) when installed, else polling every `interval`
  seconds; with watchfiles a poll still runs every second so a missed event cannot freeze the view.
- The model (`Follower.xray`, `.lines`, `.history`: (monotonic time, lines in the view) per update) is what the
  tests measure the lag from; rendering to the notebook is separate and throttled.
- `stop()` ends the thread and removes the copy; the follower is also stopped at interpreter exit.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import shutil
import tempfile
import threading
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .core import XRay

_LINE_SUFFIXES = (".jsonl", ".ndjson")
_HEAD = 512  # bytes hashed to notice a replaced file
_LIVE: weakref.WeakSet = weakref.WeakSet()


@dataclass
class Notice:
    at: float  # time.time()
    kind: str  # truncated | replaced | rotated | missing | partial | unreadable | error | switched
    text: str


@dataclass
class _Tracked:
    path: Path
    inode: int | None = None
    offset: int = 0  # bytes consumed (complete lines only)
    head: bytes = b""  # hash of the first _HEAD bytes, once that many were read
    pending: bytes = b""  # a partial last line
    lines: int = 0
    mtime_ns: int = 0
    size: int = 0
    notices: list = field(default_factory=list)


class Follower:
    """Follows one session file (or the newest in a folder). Attributes: `xray` (latest X-ray or None), `lines`
    (complete lines in it), `pending_bytes`, `notices` (what happened to the file), `history`, `error`."""

    def __init__(
        self,
        path,
        *,
        session: str | None = None,
        limit: int | None = None,
        interval: float = 0.2,
        watcher: str | None = None,
        render: bool | None = None,
        render_every: float = 0.5,
    ):
        self.path = Path(path).expanduser()
        if not self.path.exists():
            raise FileNotFoundError(
                f"xray follow: {self.path} does not exist; pass the session file (or its folder) the agent is writing"
            )
        self.session, self.limit, self.interval = session, limit, interval
        self.xray: XRay | None = None
        self.lines = 0
        self.pending_bytes = 0
        self.notices: list[Notice] = []
        self.history: list[tuple[float, int]] = []
        self.error: str | None = None
        self.updates = 0
        self.rebuild_s: list[float] = []  # seconds per rebuild (load + X-ray of the copy)
        self._tmp = Path(tempfile.mkdtemp(prefix="rlm-xray-follow-"))
        self._tracked: _Tracked | None = None
        self._copy: Path = self._tmp / "none-yet"  # the copy the X-ray reads (named once a file is followed)
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._changed = threading.Event()
        self.watcher = _pick_watcher(watcher)
        self._render = render
        self._render_every = render_every
        self._handles: list = []  # every place the view is displayed; each is updated
        self._render_evt = threading.Event()
        self._threads: list[threading.Thread] = []
        self._poll()  # the first view before returning: what is in the file now
        _LIVE.add(self)
        t = threading.Thread(target=self._loop, name="rlm-xray-follow", daemon=True)
        self._threads.append(t)
        t.start()
        if self.watcher == "watchfiles":
            w = threading.Thread(target=self._watch, name="rlm-xray-follow-watch", daemon=True)
            self._threads.append(w)
            w.start()

    # ---- the loop ---------------------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return not self._stop.is_set()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop watching (the view keeps its last state, marked stopped) and remove the private copy."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._notify("stopped", "stopped following; the view shows the file as of the last update")
        self._changed.set()
        self._render_evt.set()  # the render thread draws the final state, then ends
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(timeout)
        shutil.rmtree(self._tmp, ignore_errors=True)

    def _watch(self) -> None:
        import watchfiles

        target = self.path if self.path.is_dir() else self.path.parent
        try:
            for _ in watchfiles.watch(
                target,
                stop_event=self._stop,
                debounce=20,
                step=20,
                rust_timeout=1000,
                yield_on_timeout=True,
                recursive=self.path.is_dir(),
            ):
                self._changed.set()
        except Exception as e:  # the poll loop keeps going on its own
            self._notify(
                "error", f"file watcher stopped ({type(e).__name__}: {e}); polling every {self.interval:g} s instead"
            )

    def _loop(self) -> None:
        wait = self.interval if self.watcher == "poll" else 1.0
        while not self._stop.is_set():
            self._changed.wait(wait)
            self._changed.clear()
            if self._stop.is_set():
                break
            try:
                self._poll()
            except Exception as e:  # never die silently: the view says what broke
                self.error = f"{type(e).__name__}: {e}"
                self._notify("error", f"update failed ({self.error}); the view is from line {self.lines}")
                self._render_now(force=True)

    # ---- reading ----------------------------------------------------------------------------------------------

    def _target(self) -> Path | None:
        """The file to follow: the path itself, or the newest session file in the folder."""
        if not self.path.is_dir():
            return self.path if self.path.exists() else None
        files = [p for p in self.path.rglob("*") if p.is_file() and p.suffix in (*_LINE_SUFFIXES, ".json", ".db")]
        # Claude Code writes sub-agents beside the session (<session>/subagents/*.jsonl): follow the main file
        files = [p for p in files if "subagents" not in p.relative_to(self.path).parts[:-1]] or files
        if self.session:
            files = [p for p in files if self.session in p.name] or files
        if not files:
            return None
        return max(files, key=lambda p: (p.stat().st_mtime_ns, p.name))

    def _poll(self) -> None:
        with self._lock:
            target = self._target()
            tr = self._tracked
            if target is None:
                if tr is not None and not tr.path.exists() and not any(n.kind == "missing" for n in self.notices[-1:]):
                    self._notify("missing", f"{tr.path.name} disappeared; showing its last state until it is back")
                    self._render_now(force=True)
                return
            if tr is None or tr.path != target:
                if tr is not None:
                    self._notify("rotated", f"now following {target.name} (written after {tr.path.name})")
                self._start(target)
            changed = self._read() if target.suffix in _LINE_SUFFIXES else self._read_whole()
            if changed:
                self._rebuild()
            self._render_now()

    def _start(self, target: Path) -> None:
        self._tracked = _Tracked(target)
        self._copy = self._tmp / target.name
        self._copy.write_bytes(b"")
        self.lines = 0
        self.xray = None

    @property
    def _tr(self) -> _Tracked:
        """The file being followed (read only once one is: a folder may have none yet)."""
        if self._tracked is None:
            raise RuntimeError("xray follow: no file is followed yet")
        return self._tracked

    def _restart(self, kind: str, text: str) -> None:
        self._notify(kind, text)
        self._start(self._tr.path)

    def _read(self) -> bool:
        tr = self._tr
        try:
            st = tr.path.stat()
        except FileNotFoundError:
            if not any(n.kind == "missing" for n in self.notices[-1:]):
                self._notify("missing", f"{tr.path.name} disappeared; showing its last state until it is back")
            return False
        if tr.inode is not None and st.st_ino != tr.inode:
            self._restart("replaced", f"{tr.path.name} was replaced by a new file; re-read from its start")
        elif st.st_size < tr.offset + len(tr.pending):
            self._restart(
                "truncated",
                f"{tr.path.name} shrank to {st.st_size:,} bytes (was "
                f"{tr.offset + len(tr.pending):,}): truncated; re-read from its start",
            )
        elif tr.head and _head(tr.path) != tr.head:
            self._restart("replaced", f"{tr.path.name} was rewritten from its start; re-read")
        tr = self._tr
        if st.st_size == tr.offset + len(tr.pending) and tr.inode is not None:
            return False
        tr.inode = st.st_ino
        with tr.path.open("rb") as f:
            f.seek(tr.offset + len(tr.pending))
            new = f.read()
        buf = tr.pending + new
        cut = buf.rfind(b"\n")
        complete, tr.pending = (buf[: cut + 1], buf[cut + 1 :]) if cut >= 0 else (b"", buf)
        self.pending_bytes = len(tr.pending)
        if not complete:
            return False
        with self._copy.open("ab") as out:
            out.write(complete)
        tr.offset += len(complete)
        tr.lines += complete.count(b"\n")
        if not tr.head and tr.offset >= _HEAD:
            tr.head = _head(tr.path)
        self.lines = tr.lines
        return True

    def _read_whole(self) -> bool:
        tr = self._tr
        try:
            st = tr.path.stat()
        except FileNotFoundError:
            return False
        if (st.st_mtime_ns, st.st_size) == (tr.mtime_ns, tr.size):
            return False
        if tr.size and st.st_size < tr.size:
            self._notify("truncated", f"{tr.path.name} shrank to {st.st_size:,} bytes; re-read")
        tr.mtime_ns, tr.size, tr.inode = st.st_mtime_ns, st.st_size, st.st_ino
        shutil.copyfile(tr.path, self._copy)
        for extra in ("-wal", "-shm"):  # SQLite writers keep recent pages beside the database
            side = tr.path.with_name(tr.path.name + extra)
            if side.exists():
                shutil.copyfile(side, self._copy.with_name(self._copy.name + extra))
        self.lines = st.st_size
        return True

    def _rebuild(self) -> None:
        from ..context import Context
        from ..context.errors import ContextQueryError
        from .core import XRay

        t0 = time.perf_counter()
        try:
            ctx = Context.load(self._copy, cache=False, workers=0, progress=False)
            if len(ctx) == 0:  # lines, but no message yet (Claude starts with queue records): up to date
                self.history.append((time.monotonic(), self.lines))
                return
            xr = XRay(ctx, self.session, limit=self.limit)
        except (ContextQueryError, ValueError, OSError) as e:
            self._notify(
                "unreadable",
                f"{self._tr.path.name} could not be read yet ({e}); the view is from the last readable state",
            )
            return
        self.xray = xr
        self.updates += 1
        self.history.append((time.monotonic(), self.lines))
        self.rebuild_s.append(time.perf_counter() - t0)

    def _notify(self, kind: str, text: str) -> None:
        self.notices.append(Notice(time.time(), kind, text))

    # ---- the view ---------------------------------------------------------------------------------------------

    def status(self) -> str:
        """One line: what is shown, and what is pending or happened."""
        src = self._tracked.path.name if self._tracked else self.path.name
        state = "following" if self.running else "stopped"
        parts = [f"{state} {src}: {self.lines:,} lines"]
        xr = self.xray
        if xr is not None:
            parts.append(f"{xr.turns.height} turns, {xr.events.height} events")
        if self.pending_bytes:
            parts.append(f"a partial last line ({self.pending_bytes:,} bytes) waits for its end")
        return "; ".join(parts)

    def _recent_notices(self, n: int = 3) -> list[Notice]:
        return self.notices[-n:]

    def __repr__(self) -> str:
        out = [f"<Follower {self.status()}>"]
        out += [f"  ! {n.kind}: {n.text}" for n in self._recent_notices()]
        return "\n".join(out)

    def _repr_html_(self) -> str:
        return self._html()

    def _html(self) -> str:
        from html import escape

        parts = [f"<div><b>X-ray, live</b> <small>{escape(self.status())}</small></div>"]
        for n in self._recent_notices():
            when = time.strftime("%H:%M:%S", time.localtime(n.at))
            parts.append(f"<div style='color:#b35900'>⚠ {when} {escape(n.kind)}: {escape(n.text)}</div>")
        xr = self.xray
        if xr is None:
            parts.append("<div><i>no complete session yet</i></div>")
            return "".join(parts)
        if xr.turns.height:
            w = xr.window(-1)
            parts.append(
                f"<details open><summary>window at turn {w.turn}: {len(w)} messages, "
                f"~{w.tokens:,} tokens</summary>{w._repr_html_()}</details>"
            )
        if xr.events.height:
            lo = xr.losses(sub_model=None)
            parts.append(f"<details><summary>losses: {xr.events.height} events</summary>{lo._repr_html_()}</details>")
        return "".join(parts)

    def _plot_bundle(self) -> dict | None:
        if self.xray is None or self.xray.turns.height == 0:
            return None
        try:
            p = self.xray.plot(interactive=False)
            return p._static_bundle()[0]
        except ImportError:
            return None

    def _bundle(self) -> dict:
        html = self._html()
        plot = self._plot_bundle()
        if plot is not None:
            img = plot.get("image/png")
            if img:
                html = html.replace("</small></div>", f"</small></div><img src='data:image/png;base64,{img}'/>", 1)
        return {"text/html": html, "text/plain": repr(self)}

    def _render_now(self, force: bool = False) -> None:
        """Ask the render thread to redraw (rendering never delays reading the file)."""
        if self._handles or force:
            self._render_evt.set()

    def _render_loop(self) -> None:
        while True:
            self._render_evt.wait()
            self._render_evt.clear()
            if not self._handles:
                if self._stop.is_set():
                    return
                continue
            bundle = self._bundle()
            for h in list(self._handles):
                try:
                    h.update(bundle, raw=True)
                except Exception:  # a closed notebook: the model keeps following
                    self._handles.remove(h)
            if self._stop.is_set():
                return
            time.sleep(self._render_every)  # at most one redraw per interval; the last change is drawn after it

    def _ipython_display_(self) -> None:
        from IPython.display import display

        self._handles.append(display(self._bundle(), raw=True, display_id=True))
        if not any(t.name == "rlm-xray-follow-render" for t in self._threads):
            r = threading.Thread(target=self._render_loop, name="rlm-xray-follow-render", daemon=True)
            self._threads.append(r)
            r.start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def _head(path: Path) -> bytes:
    with path.open("rb") as f:
        return hashlib.blake2b(f.read(_HEAD), digest_size=16).digest()


def _pick_watcher(watcher: str | None) -> str:
    if watcher not in (None, "watchfiles", "poll"):
        raise ValueError(f"xray follow: watcher must be 'watchfiles', 'poll' or None (auto), got {watcher!r}")
    if watcher == "poll":
        return "poll"
    try:
        import watchfiles  # noqa: F401
    except ImportError:
        if watcher == "watchfiles":
            raise ImportError(
                "xray follow: watcher='watchfiles' needs `pip install watchfiles` (in the lab "
                "extra); or use watcher='poll'"
            ) from None
        return "poll"
    return "watchfiles"


def still_written_note(path) -> str | None:
    """A note when a JSONL session file ends in a partial line (the agent is still writing it), so a one-off
    X-ray does not pass for the finished session. (A recent mtime alone says nothing: copies are recent too.)"""
    p = Path(path) if path else None
    if p is None or not p.is_file() or p.suffix not in _LINE_SUFFIXES:
        return None
    try:
        size = p.stat().st_size
        with p.open("rb") as f:
            f.seek(max(0, size - (1 << 20)))
            tail = f.read()
    except OSError:
        return None
    if not size or tail.endswith(b"\n"):
        return None
    try:
        json.loads(tail.rsplit(b"\n", 1)[-1])
        return None  # a complete last record without a final newline
    except ValueError:
        return (
            f"{p.name} ends in a partial line: the agent may still be writing it; this view stops at its last "
            "complete line (rj.xray(path, follow=True) follows it)"
        )
    return None


def follow(path, **kw) -> Follower:
    return Follower(path, **kw)


@atexit.register
def _stop_all() -> None:
    for f in list(_LIVE):
        f._stop.set()
        f._render_evt.set()
