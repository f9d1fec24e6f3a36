"""Isolation for the REPL worker: which mechanism works here, the command that starts the worker, and what the
worker does to itself before it runs any model-written code.

Three levels, best first (docs/isolation.md says what each one guarantees and what it does not):
  "bwrap"            bubblewrap: own net/pid/ipc/uts (+ user, when not root) namespaces, read-only `/`, private
                     /tmp, /root and /home, only the worker folder writable, empty environment; plus everything below.
  "rlimits+seccomp"  no bubblewrap: scrubbed environment, temp working dir, rlimits, a memory cgroup when one can be
                     made, and the seccomp filter of `install_seccomp` (no sockets but the one to the parent, no
                     io_uring, no ptrace, no signals to older processes). As root it also hides /root and /home in a
                     private mount namespace.
  "rlimits"          scrubbed environment, temp working dir and rlimits only: the NETWORK IS OPEN. `rlm(...)` refuses
                     this level unless `allow_unsandboxed=True` (`--allow-unsandboxed`).
At every level, when the kernel runs as root the worker loads its context and then drops to uid/gid 65534 (nobody)
for good, before the first line of model code: the parent's /proc files, the user's home, other runs' traces and
/etc/shadow are then closed to it by ordinary file permissions.

Parent side: `choose`, `worker_argv`, `worker_env`, `MemoryCgroup`. Worker side (called inside the worker
process, in this order): `hide_home`, `drop_privileges`, `set_memory_limit`, `set_cpu_limit`, `die_with_parent`,
`install_seccomp`.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import shutil
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

LEVELS = ("bwrap", "rlimits+seccomp", "rlimits")
ENV_VAR = "RLM_JUPYTER_SANDBOX"  # force a level: "bwrap", "rlimits+seccomp", "rlimits" (or "auto")
NOBODY = 65534
HIDDEN = ("/tmp", "/root", "/home")  # private and empty under bwrap
NPROC = 512  # processes + threads of uid nobody (RLIMIT_NPROC): stops a fork bomb

# The only variables the worker sees: nothing from the parent's environment (API keys stay in the kernel).
_BASE_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONUNBUFFERED": "1",
}


class UnsandboxedError(RuntimeError):
    """The only level that works here leaves the network open, and the caller did not allow it."""


def worker_env(workdir: Path) -> dict[str, str]:
    """The whole environment of the worker: a fixed allow-list, HOME and TMPDIR inside its own folder."""
    env = dict(_BASE_ENV)
    env.update(HOME=str(workdir), TMPDIR=str(workdir))
    for name in ("POLARS_MAX_THREADS", "RAYON_NUM_THREADS"):  # performance knobs, never secrets
        if name in os.environ:
            env[name] = os.environ[name]
    return env


def drops_to_nobody() -> bool:
    """The worker gives up root for uid 65534 when the kernel runs as root (it cannot change uid otherwise)."""
    return os.geteuid() == 0


def python_roots() -> list[str]:
    """Folders the interpreter needs: the venv and the base install (a pyenv under /root would be hidden by the
    tmpfs over /root, so they are bound again after it)."""
    roots = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    roots.add(os.path.dirname(os.path.realpath(sys.executable)))
    return sorted(roots)


def _bwrap_flags(rw: list[str], ro: list[str]) -> list[str]:
    if drops_to_nobody():
        # As root, bubblewrap needs no user namespace, and one would map the worker's "65534" to root outside (file
        # access would still be checked as root). The worker drops to the real uid 65534 itself (drop_privileges).
        flags = ["--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
    else:  # an ordinary user: the user namespace gives the worker uid 65534 inside (the user's uid outside)
        flags = ["--unshare-all", "--uid", str(NOBODY), "--gid", str(NOBODY)]
    flags += ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    for hidden in HIDDEN:  # private and empty inside (a mount point must exist on a ro root)
        if os.path.isdir(hidden):
            flags += ["--tmpfs", hidden]
    made: set[str] = set()
    for p in python_roots() + ro + rw:  # after the tmpfs mounts (order matters); parents world-traversable
        for parent in reversed(Path(p).parents):
            d = str(parent)
            if d != "/" and d not in made and any(d == h or d.startswith(h + "/") for h in HIDDEN):
                flags += ["--perms", "0755", "--dir", d]
                made.add(d)
    for p in python_roots() + ro:
        flags += ["--ro-bind", p, p]
    for p in rw:
        flags += ["--bind", p, p]
    return flags + ["--die-with-parent", "--new-session", "--clearenv"]


@lru_cache(maxsize=1)
def bwrap_works() -> str | None:
    """None when a bubblewrap sandbox starts here, else why not (probed once per process, ~20 ms)."""
    exe = shutil.which("bwrap")
    if exe is None:
        return "bwrap not installed (Debian/Ubuntu: apt-get install bubblewrap)"
    try:
        r = subprocess.run(
            [exe, *_bwrap_flags([], []), sys.executable, "-I", "-S", "-c", "pass"], capture_output=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"bwrap probe failed: {e}"
    if r.returncode != 0:
        return f"bwrap probe failed (user namespaces off?): {r.stderr.decode(errors='replace').strip()[:200]}"
    return None


def seccomp_available() -> bool:
    try:
        import pyseccomp  # noqa: F401
    except Exception:
        return False
    return True


@lru_cache(maxsize=1)
def library_names() -> dict[str, str]:
    """libc's and libseccomp's names, found here, outside the sandbox. pyseccomp looks both up when it is imported,
    with `ctypes.util.find_library`, which forks `ldconfig`; in a worker started alone that fork is made as uid
    nobody, and once that uid's processes reach their cap (RLIMIT_NPROC, shared by every worker) it is refused and
    the import fails ("Unable to find libseccomp": 31-42 of 200 runs in a batch, docs/batch.md)."""
    import ctypes.util

    return {n: p for n in ("c", "seccomp") if (p := ctypes.util.find_library(n))}


def use_library_names(names: dict[str, str]) -> None:
    """In the worker, before pyseccomp is imported: `ctypes.util.find_library` answers these names without a fork."""
    if not names:
        return
    import ctypes.util

    find = ctypes.util.find_library
    ctypes.util.find_library = lambda name: names.get(name) or find(name)


def choose(requested: str | None = None) -> str:
    """The isolation level to use: `requested` (or $RLM_JUPYTER_SANDBOX) when given, else the best that works.
    A level asked for explicitly that cannot work raises RuntimeError rather than silently weakening."""
    level = requested or os.environ.get(ENV_VAR) or "auto"
    if level == "auto":
        if bwrap_works() is None:
            return "bwrap"
        return "rlimits+seccomp" if seccomp_available() else "rlimits"
    if level not in LEVELS:
        raise ValueError(f"sandbox level must be one of {LEVELS} or 'auto', got {level!r}")
    if level == "bwrap" and (why := bwrap_works()) is not None:
        raise RuntimeError(f"sandbox 'bwrap' requested but unavailable: {why}")
    if level == "rlimits+seccomp" and not seccomp_available():
        raise RuntimeError("sandbox 'rlimits+seccomp' requested but pyseccomp is not installed (pip install pyseccomp)")
    return level


UNSANDBOXED_MESSAGE = (
    "the REPL worker would run at sandbox level 'rlimits': model-written code would have the "
    "network and your files. Install bubblewrap (apt-get install bubblewrap) or pyseccomp (pip "
    "install pyseccomp), or allow it explicitly: rlm(..., allow_unsandboxed=True), "
    "`--allow-unsandboxed` for `ask` and `%%rlm`"
)


UNSANDBOXED_WARNING = (
    "UNSANDBOXED: this run's REPL worker runs at sandbox level 'rlimits' (allowed with "
    "allow_unsandboxed / --allow-unsandboxed): model-written code has the network and can read "
    "what your user can read. Only limits on time and memory apply."
)


def worker_argv(
    level: str,
    python_cmd: list[str],
    workdir: Path,
    ro: list[str],
    env: dict[str, str],
    cgroup_procs: str | None = None,
) -> list[str]:
    """The command line that starts the worker; under bwrap the environment is set by flags (--clearenv first).
    With `cgroup_procs`, a shell moves itself into that cgroup and then execs the rest (so the worker and
    everything it starts are in the cgroup from their first instruction)."""
    argv = python_cmd
    if level == "bwrap":
        argv = [shutil.which("bwrap") or "bwrap", *_bwrap_flags([str(workdir)], ro), "--chdir", str(workdir)]
        for k, v in env.items():
            argv += ["--setenv", k, v]
        argv += python_cmd
    if cgroup_procs:
        argv = ["/bin/sh", "-c", 'echo $$ > "$1" || exit 97; shift; exec "$@"', "rlm-worker", cgroup_procs, *argv]
    return argv


# ---- memory cgroup (parent side) ---------------------------------------------------------------------------------


class MemoryCgroup:
    """A memory cgroup for one worker, made under the kernel's own cgroup, when the kernel may make one (root with a
    writable cgroup v1 memory hierarchy, or a delegated cgroup v2 subtree). It counts what RLIMIT_DATA does not:
    shared anonymous memory, tmpfs/shm files, page tables. `create` returns None where it cannot."""

    def __init__(self, path: Path, version: int):
        self.path = path
        self.version = version
        self.procs = str(path / "cgroup.procs")

    @classmethod
    def create(cls, name: str, memory_mb: int) -> MemoryCgroup | None:
        limit = str(int(memory_mb) * 1024 * 1024)
        for version, base in _memory_cgroup_bases():
            path = base / name
            try:
                path.mkdir()
            except OSError:
                continue
            cg = cls(path, version)
            try:
                if version == 1:
                    (path / "memory.limit_in_bytes").write_text(limit)
                    with contextlib.suppress(OSError):  # no swap accounting: the RAM limit alone
                        (path / "memory.memsw.limit_in_bytes").write_text(limit)
                else:
                    (path / "memory.max").write_text(limit)
                    with contextlib.suppress(OSError):
                        (path / "memory.swap.max").write_text("0")
                return cg
            except OSError:
                cg.remove()
        return None

    def oom_killed(self) -> bool:
        """Did the kernel kill something in this cgroup for going over the limit?"""
        try:
            if self.version == 1:
                return any(
                    line.split()[-1] != "0"
                    for line in (self.path / "memory.oom_control").read_text().splitlines()
                    if line.startswith("oom_kill ")
                )
            return any(
                line.split()[-1] != "0"
                for line in (self.path / "memory.events").read_text().splitlines()
                if line.startswith("oom_kill ")
            )
        except OSError:
            return False

    def kill_all(self) -> None:
        import signal

        with contextlib.suppress(OSError):
            for pid in (self.path / "cgroup.procs").read_text().split():
                with contextlib.suppress(OSError):
                    os.kill(int(pid), signal.SIGKILL)

    def remove(self) -> None:
        self.kill_all()
        for _ in range(50):  # the kernel refuses while the killed processes are being reaped
            try:
                self.path.rmdir()
                return
            except OSError as e:
                if e.errno != errno.EBUSY:
                    return
                import time

                time.sleep(0.02)


def _memory_cgroup_bases() -> list[tuple[int, Path]]:
    out = []
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        _, controllers, rel = line.split(":", 2)
        if "memory" in controllers.split(","):
            out.append((1, Path("/sys/fs/cgroup/memory") / rel.lstrip("/")))
        elif controllers == "":
            base = Path("/sys/fs/cgroup") / rel.lstrip("/")
            if not (base / "cgroup.controllers").exists():
                base = Path("/sys/fs/cgroup/unified") / rel.lstrip("/")
            with contextlib.suppress(OSError):
                if "memory" in (base / "cgroup.subtree_control").read_text().split():
                    out.append((2, base))
    return out


def sweep_cgroups() -> None:
    """Remove memory cgroups of workers whose kernel died (empty ones only; the kernel refuses the others)."""
    for _, base in _memory_cgroup_bases():
        with contextlib.suppress(OSError):
            for d in base.glob("rlm-worker-*"):
                pid = d.name.split("-")[2] if d.name.count("-") >= 3 else ""
                if pid.isdigit() and not _alive(int(pid)):
                    with contextlib.suppress(OSError):
                        d.rmdir()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# ---- worker side -------------------------------------------------------------------------------------------------

_libc = None


def _c():
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def _check(rc: int, what: str) -> None:
    if rc != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"{what}: {os.strerror(e)}")


def hide_home(ro: list[str], rw: list[str]) -> None:
    """Fallback levels, as root: a private mount namespace with empty, read-only tmpfs over /root, /home and /tmp
    (the user's secrets, trace folders, other runs' files) and a private tmpfs over /dev/shm (64 MB, so shared
    memory files cannot outlive the worker), with the folders in `ro` (the Python install, this package) bound
    back read-only and those in `rw` (the worker's folder) read-write. Needs CAP_SYS_ADMIN: before
    drop_privileges. Without bubblewrap's other namespaces, the network and other processes stay visible
    (the seccomp filter and the uid drop handle those)."""
    CLONE_NEWNS, MS_REC, MS_PRIVATE, MS_BIND, MS_REMOUNT, MS_RDONLY, MS_NOSUID, MS_NODEV = (
        0x20000,
        0x4000,
        1 << 18,
        0x1000,
        0x20,
        0x1,
        0x2,
        0x4,
    )
    libc = _c()
    _check(libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    _check(libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "mount --make-rprivate /")
    hidden = [h for h in HIDDEN if os.path.isdir(h)]
    keep = [(p, False) for p in ro] + [(p, True) for p in rw]
    under = [(p, w) for p, w in keep if any(p == h or p.startswith(h + "/") for h in hidden)]
    fds = [(p, w, os.open(p, os.O_PATH | os.O_DIRECTORY)) for p, w in under]  # reachable once covered
    try:
        for h in hidden:
            _check(
                libc.mount(b"tmpfs", h.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, b"mode=0755,size=1m"),
                f"mount tmpfs on {h}",
            )
        if os.path.isdir("/dev/shm"):
            _check(
                libc.mount(b"tmpfs", b"/dev/shm", b"tmpfs", MS_NOSUID | MS_NODEV, b"mode=1777,size=64m"),
                "mount tmpfs on /dev/shm",
            )
        for p, writable, fd in fds:
            os.makedirs(p, mode=0o755, exist_ok=True)
            _check(libc.mount(f"/proc/self/fd/{fd}".encode(), p.encode(), None, MS_BIND | MS_REC, None), f"bind {p}")
            if not writable:
                _check(
                    libc.mount(None, p.encode(), None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC, None),
                    f"read-only {p}",
                )
        for h in hidden:  # nothing can be added there any more
            _check(
                libc.mount(None, h.encode(), None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, b"mode=0755,size=1m"),
                f"read-only {h}",
            )
    finally:
        for _, _, fd in fds:
            os.close(fd)


def own_namespaces() -> None:
    """A worker forked from the template (forkserver.py), before it forks the worker: new pid, mount and IPC
    namespaces, so each worker sees and signals only its own processes and shares no SysV IPC with other runs'
    workers (what bubblewrap gives a worker it starts itself). Needs CAP_SYS_ADMIN (root, before drop_privileges)."""
    CLONE_NEWNS, CLONE_NEWIPC, CLONE_NEWPID = 0x20000, 0x08000000, 0x20000000
    _check(_c().unshare(CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWPID), "unshare(CLONE_NEWPID | CLONE_NEWNS)")


def own_proc_and_folder(pool: str | None, workdir: str) -> None:
    """In a forked worker (pid 1 of its own pid namespace, in its own mount namespace): /proc shows its own
    processes only, and, under bwrap, the folder holding every forked worker's folder (`pool`, bound into the
    template's sandbox) is covered by an empty read-only tmpfs with only this worker's own folder bound back, so
    a worker cannot reach another run's files. (The fallback levels get the same from hide_home, which covers /tmp.)"""
    MS_REC, MS_PRIVATE, MS_BIND, MS_REMOUNT, MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = (
        0x4000,
        1 << 18,
        0x1000,
        0x20,
        0x1,
        0x2,
        0x4,
        0x8,
    )
    libc = _c()
    _check(libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "mount --make-rprivate /")
    _check(libc.mount(b"proc", b"/proc", b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None), "mount proc")
    if pool is None:
        return
    fd = os.open(workdir, os.O_PATH | os.O_DIRECTORY)  # reachable once the pool is covered
    try:
        _check(
            libc.mount(b"tmpfs", pool.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, b"mode=0755,size=1m"),
            f"mount tmpfs on {pool}",
        )
        os.makedirs(workdir, mode=0o755, exist_ok=True)
        _check(
            libc.mount(f"/proc/self/fd/{fd}".encode(), workdir.encode(), None, MS_BIND | MS_REC, None),
            f"bind {workdir}",
        )
        _check(
            libc.mount(None, pool.encode(), None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, b"mode=0755,size=1m"),
            f"read-only {pool}",
        )
    finally:
        os.close(fd)


def set_death_signal() -> None:
    """SIGKILL this process when its parent dies (PR_SET_PDEATHSIG)."""
    import signal

    _check(_c().prctl(1, int(signal.SIGKILL), 0, 0, 0), "prctl(PR_SET_PDEATHSIG)")


def drop_privileges(uid: int = NOBODY, gid: int = NOBODY) -> None:
    """Become uid/gid `uid` for good (real, effective and saved ids; no supplementary groups, no capabilities),
    with no_new_privs so no setuid program can give root back. A process cap RLIMIT_NPROC bounds fork bombs."""
    import resource

    PR_SET_NO_NEW_PRIVS = 38
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    if os.getuid() != uid or os.geteuid() != uid:
        raise OSError(errno.EPERM, f"could not drop to uid {uid}")
    _check(_c().prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")
    resource.setrlimit(resource.RLIMIT_NPROC, (NPROC, NPROC))


def die_with_parent(expected_ppid: int | None, alive_fd: int | None = None) -> None:
    """SIGKILL this process when the kernel that started it dies (PR_SET_PDEATHSIG; set after the uid change,
    which clears it). If the parent is already gone, exit now: `expected_ppid` is no longer the parent, or
    `alive_fd` (the read end of a pipe only the parent holds open; a forked worker's parent is outside its pid
    namespace, so getppid() says 0) has hung up. The seccomp filter then forbids changing it."""
    import select

    set_death_signal()
    if expected_ppid and os.getppid() != expected_ppid:
        os._exit(70)
    if alive_fd is not None and select.select([alive_fd], [], [], 0)[0]:
        os._exit(70)


def set_memory_limit(memory_mb: int) -> None:
    """RLIMIT_DATA, not RLIMIT_AS: polars and tantivy reserve >1 GB of address space for thread pools while using
    ~150 MB, so an address-space cap would break them; RLIMIT_DATA counts private writable memory (Linux >= 4.7),
    which is what an allocation bomb grows. Hard = soft, so the code cannot raise it. Shared memory is not in it:
    the memory cgroup covers that where there is one, else the seccomp filter refuses shared anonymous maps."""
    import resource

    n = int(memory_mb) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_DATA, (n, n))


def set_cpu_limit(seconds: float | None) -> None:
    """Per-step CPU time: soft limit = CPU used so far + `seconds`; the kernel sends SIGXCPU (which kills) when it is
    passed. The hard limit stays open (it can never be raised again), so this is a guard, and the parent's wall
    clock timeout is the real one."""
    import resource

    if seconds is None:
        return
    used = resource.getrusage(resource.RUSAGE_SELF)
    spent = used.ru_utime + used.ru_stime
    soft = int(spent + seconds) + 1
    hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


# Syscalls no REPL code needs and that reach outside the worker (or the kernel's attack surface): EPERM.
DENIED = (
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",  # io_uring ops bypass the socket() rule
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "pidfd_getfd",  # reading or steering other processes
    "kcmp",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "add_key",
    "request_key",
    "keyctl",
    "unshare",
    "setns",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "move_mount",
    "open_tree",
    "fsopen",
    "fsmount",
    "fspick",
    "mount_setattr",
    "open_by_handle_at",
    "name_to_handle_at",
    "init_module",
    "finit_module",
    "delete_module",
    "kexec_load",
    "kexec_file_load",
    "reboot",
    "swapon",
    "swapoff",
    "acct",
    "quotactl",
    "syslog",
    "personality",
    "lookup_dcookie",
    "fanotify_init",
)


def install_seccomp(*, shared_memory: bool) -> None:
    """The worker's seccomp filters. libseccomp compares whole 64-bit arguments (a socket family with high bits set
    is not AF_UNIX), and the kernel reads an int argument's low 32 bits only, so pid rules match exact values.
    Three filters, stacked (the kernel applies the stricter answer):
      1. default allow, with refusals: socket() for every family (the worker already holds its socket to the
         parent); socketpair() but for AF_UNIX (a connected pair reaches nothing); io_uring, ptrace,
         process_vm_*, namespaces, mounts, bpf, keyrings, modules, … (DENIED); prctl(PR_SET_PDEATHSIG) and
         prctl(PR_SET_DUMPABLE) (the death signal cannot be cleared); with `shared_memory=False` (no memory cgroup)
         shared anonymous mmap and memfd_create, which RLIMIT_DATA does not count.
      2. default deny: every syscall number this libseccomp knows is allowed except the ones that name another
         process by pid; kill(), tgkill() and pidfd_open() only for 0 (its own process group), itself and
         younger pids (what it started), and never for a negative pid (another group, or -1: everyone);
         tkill, pidfd_send_signal, kcmp never. So no signal reaches the parent or any older process.
    Seccomp sees only integer arguments, never what a pointer points at (a path, a sockaddr): files are left to
    the uid drop and the mount namespaces."""
    import socket

    import pyseccomp as sc

    me = os.getpid()
    eperm = sc.ERRNO(errno.EPERM)
    f = sc.SyscallFilter(defaction=sc.ALLOW)
    f.add_rule(eperm, "socket")
    f.add_rule(eperm, "socketpair", sc.Arg(0, sc.NE, socket.AF_UNIX))
    for name in DENIED:
        with contextlib.suppress(Exception):  # a syscall this libseccomp or arch does not know
            f.add_rule(eperm, name)
    f.add_rule(eperm, "prctl", sc.Arg(0, sc.EQ, 1))  # PR_SET_PDEATHSIG
    f.add_rule(eperm, "prctl", sc.Arg(0, sc.EQ, 4))  # PR_SET_DUMPABLE
    if not shared_memory:
        MAP_SHARED, MAP_ANONYMOUS = 0x01, 0x20  # MAP_SHARED_VALIDATE (0x03) has the 0x01 bit too
        f.add_rule(
            sc.ERRNO(errno.ENOMEM),
            "mmap",
            sc.Arg(3, sc.MASKED_EQ, MAP_SHARED | MAP_ANONYMOUS, MAP_SHARED | MAP_ANONYMOUS),
        )
        f.add_rule(eperm, "memfd_create")
    f.load()

    g = sc.SyscallFilter(defaction=eperm)
    for nr in known_syscalls():
        g.add_rule(sc.ALLOW, nr)
    for name in ("kill", "tgkill", "pidfd_open"):  # itself and younger processes (the ones it started)
        g.add_rule(sc.ALLOW, name, sc.Arg(0, sc.EQ, me))
        g.add_rule(sc.ALLOW, name, sc.Arg(0, sc.GT, me))
    g.add_rule(sc.ALLOW, "kill", sc.Arg(0, sc.EQ, 0))  # its own process group
    g.load()
    # "> me" above compares 64 bits; the kernel reads 32. A third filter refuses every value that is not a plain
    # positive int (negative pids = process groups or -1 = everyone, and high bits smuggling an older pid).
    h = sc.SyscallFilter(defaction=sc.ALLOW)
    for name in ("kill", "tgkill", "pidfd_open"):
        h.add_rule(eperm, name, sc.Arg(0, sc.GT, 0x7FFFFFFF))
    h.load()


@lru_cache(maxsize=1)
def known_syscalls() -> tuple[int, ...]:
    """Every syscall number this libseccomp knows on this arch, except those that name another process by pid
    (filter 2 allows these). Computed once: the fork server's template computes it before it forks workers."""
    import pyseccomp as sc

    arch = sc.system_arch()
    by_pid = set()
    for n in PID_SYSCALLS:
        with contextlib.suppress(Exception):
            by_pid.add(sc.resolve_syscall(arch, n))
    out = []
    for nr in range(0, 1024):
        if nr in by_pid:
            continue
        with contextlib.suppress(Exception):  # numbers the arch does not have
            name = sc.resolve_syscall(arch, nr)
            if isinstance(name, bytes) and name:
                out.append(nr)
    return tuple(out)


PID_SYSCALLS = (
    "kill",
    "tkill",
    "tgkill",
    "pidfd_open",
    "pidfd_send_signal",
    "rt_sigqueueinfo",
    "rt_tgsigqueueinfo",
    "kcmp",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "pidfd_getfd",
    "process_madvise",
)
