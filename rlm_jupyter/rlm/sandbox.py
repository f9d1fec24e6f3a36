"""Isolation for the REPL worker: which mechanism works here, the command that starts the worker, and the limits
the worker puts on itself.

Three levels, best first (docs/isolation.md says what each one guarantees):
  "bwrap"            bubblewrap: own user/net/pid/ipc namespaces, read-only `/`, private /tmp and /root, only the
                     worker folder writable, uid 65534, empty environment; plus the rlimits below.
  "rlimits+seccomp"  no namespaces: scrubbed environment, temp working dir, rlimits, and a seccomp filter that makes
                     socket(AF_INET/AF_INET6/AF_NETLINK/AF_PACKET) fail with EPERM (pyseccomp).
  "rlimits"          scrubbed environment, temp working dir and rlimits only: the network is NOT cut.

Parent side: `choose`, `worker_argv`, `worker_env`. Worker side (called inside the worker process):
`set_memory_limit`, `set_cpu_limit`, `install_seccomp`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

LEVELS = ("bwrap", "rlimits+seccomp", "rlimits")
ENV_VAR = "RLM_JUPYTER_SANDBOX"  # force a level: "bwrap", "rlimits+seccomp", "rlimits" (or "auto")

# The only variables the worker sees: nothing from the parent's environment (API keys stay in the kernel).
_BASE_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONUNBUFFERED": "1",
}


def worker_env(workdir: Path) -> dict[str, str]:
    """The whole environment of the worker: a fixed allow-list, HOME and TMPDIR inside its own folder."""
    env = dict(_BASE_ENV)
    env.update(HOME=str(workdir), TMPDIR=str(workdir))
    for name in ("POLARS_MAX_THREADS", "RAYON_NUM_THREADS"):  # performance knobs, never secrets
        if name in os.environ:
            env[name] = os.environ[name]
    return env


def _python_roots() -> list[str]:
    """Folders the interpreter needs: the venv and the base install (a pyenv under /root would be hidden by the
    tmpfs over /root, so they are bound again after it)."""
    roots = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    roots.add(os.path.dirname(os.path.realpath(sys.executable)))
    return sorted(roots)


def _bwrap_flags(rw: list[str], ro: list[str]) -> list[str]:
    flags = [
        "--unshare-all",  # user, net, pid, ipc, uts, cgroup namespaces: no network but a private loopback
        "--uid", "65534", "--gid", "65534",
        "--ro-bind", "/", "/",
        "--dev", "/dev",
        "--proc", "/proc",
    ]
    for hidden in ("/tmp", "/root", "/home"):  # private and empty inside (a mount point must exist on a ro root)
        if os.path.isdir(hidden):
            flags += ["--tmpfs", hidden]
    for p in _python_roots() + ro:  # after the tmpfs mounts: order matters
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
        r = subprocess.run([exe, *_bwrap_flags([], []), sys.executable, "-I", "-S", "-c", "pass"],
                           capture_output=True, timeout=10)
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


def worker_argv(level: str, python_cmd: list[str], workdir: Path, ro: list[str], env: dict[str, str]) -> list[str]:
    """The command line that starts the worker; under bwrap the environment is set by flags (--clearenv first)."""
    if level != "bwrap":
        return python_cmd
    argv = [shutil.which("bwrap") or "bwrap", *_bwrap_flags([str(workdir)], ro), "--chdir", str(workdir)]
    for k, v in env.items():
        argv += ["--setenv", k, v]
    return argv + python_cmd


# ---- worker side ---------------------------------------------------------------------------------------------


def set_memory_limit(memory_mb: int) -> None:
    """RLIMIT_DATA, not RLIMIT_AS: polars and tantivy reserve >1 GB of address space for thread pools while using
    ~150 MB, so an address-space cap would break them; RLIMIT_DATA counts private writable memory (Linux >= 4.7),
    which is what an allocation bomb grows. Hard = soft, so the code cannot raise it."""
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


def install_seccomp() -> None:
    """socket() for internet, netlink and raw packet families fails with EPERM; everything else is allowed.
    Unix sockets stay (the worker talks to the parent over an inherited socketpair)."""
    import errno
    import socket

    import pyseccomp as sc

    f = sc.SyscallFilter(defaction=sc.ALLOW)
    for family in (socket.AF_INET, socket.AF_INET6, socket.AF_NETLINK, socket.AF_PACKET):
        f.add_rule(sc.ERRNO(errno.EPERM), "socket", sc.Arg(0, sc.EQ, family))
    f.load()
