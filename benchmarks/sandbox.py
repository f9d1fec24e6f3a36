"""The sandbox under attack: every attack of issue 18 (rlm_jupyter/testing/sandbox_attacks.py) as a scripted-model
run in each isolation mode this machine has, each mode in its own process with a planted API key. Prints a table:
attacks tried per mode, contained, got through (and of those, how many the docs say the mode does not stop),
then one row per attack. Target: every attack contained in the bwrap and seccomp modes; plain rlimits refused
without --allow-unsandboxed.

    python benchmarks/sandbox.py [--modes bwrap seccomp rlimits]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rlm_jupyter.testing import sandbox_attacks as A  # noqa: E402

BASELINE = {  # what issue 18 reported getting through before this work (forged-call and dev-shm were not tried)
    "bwrap": "foreign-models, forged-result, batch-loop, mmap-shared, vsock, etc-shadow, secret-in-answer",
    "seccomp": "foreign-models, forged-result, batch-loop, mmap-shared, socket-highbits, io-uring, vsock, "
    "kill-parent, ptrace-parent, parent-environ, write-outside, etc-shadow, secret-in-answer",
    "rlimits": "all of the seccomp list plus socket-plain; and the mode ran without being asked for",
}


def run_mode(mode: str) -> tuple[list[dict], float, int]:
    out = Path(tempfile.mkdtemp(prefix="rlm-bench-")) / f"{mode}.jsonl"
    env = {**os.environ, A.PLANTED_NAME: A.PLANTED, "PYTHONPATH": str(ROOT)}
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "rlm_jupyter.testing.sandbox_attacks", "--mode", mode, "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    wall = time.monotonic() - t0
    rows = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    out.unlink(missing_ok=True)
    out.parent.rmdir()
    if proc.returncode != 0:
        print(f"{mode}: the runner exited {proc.returncode}\n{proc.stderr[-2000:]}", file=sys.stderr)
    return rows, wall, proc.returncode


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--modes", nargs="*", default=A.available_modes())
    args = ap.parse_args()
    names = [a.name for a in A.ATTACKS] + ["refuse-unsandboxed"]
    results: dict[str, dict[str, dict]] = {}
    summary = []
    for mode in args.modes:
        rows, wall, rc = run_mode(mode)
        by = {r["attack"]: r for r in rows}
        results[mode] = by
        tried = len(rows)
        contained = sum(r["contained"] for r in rows)
        through = [r for r in rows if not r["contained"]]
        documented = sum(not r["expected"] for r in through)
        missing = len(names) - tried
        summary.append((mode, tried, contained, len(through), documented, missing, wall, rc))
    print("Sandbox attacks (issue 18): scripted-model runs through rlm(), real worker, one process per mode\n")
    print(
        f"{'mode':<9} {'tried':>5} {'contained':>9} {'through':>7} {'of which documented':>20} {'not run':>7} "
        f"{'wall s':>7}"
    )
    for mode, tried, contained, through, documented, missing, wall, _ in summary:
        print(f"{mode:<9} {tried:>5} {contained:>9} {through:>7} {documented:>20} {missing:>7} {wall:>7.1f}")
    print("\nbaseline (issue 18, before this work), attacks that got through:")
    for mode in args.modes:
        print(f"  {mode:<8} {BASELINE.get(mode, '-')}")
    print(f"\n{'attack':<20} " + " ".join(f"{m:<10}" for m in args.modes))
    for name in names:
        cells = []
        for mode in args.modes:
            r = results[mode].get(name)
            cells.append(
                "not run"
                if r is None
                else "contained"
                if r["contained"]
                else "OPEN (doc)"
                if not r["expected"]
                else "THROUGH"
            )
        print(f"{name:<20} " + " ".join(f"{c:<10}" for c in cells))
    print("\ndetails:")
    for mode in args.modes:
        for name in names:
            r = results[mode].get(name)
            if r is not None:
                print(f"  {mode:<8} {name:<19} {r['seconds']:>5.1f} s  {r['detail'][:110]}")
    target_ok = all(results[m].get(n, {}).get("contained") for m in args.modes if m != "rlimits" for n in names)
    refused = results.get("rlimits", {}).get("refuse-unsandboxed", {}).get("contained", True)
    print(
        f"\ntarget: all contained in bwrap and seccomp modes: {'MET' if target_ok else 'NOT MET'}; "
        f"plain rlimits refused unless allowed: {'MET' if refused else 'NOT MET'}"
    )
    return 0 if target_ok and refused else 1


if __name__ == "__main__":
    sys.exit(main())
