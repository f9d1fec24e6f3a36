"""Load speed and memory of `rj.load` on large Claude Code and Codex files, next to the floor.

Builds files of >= 200 MB (override with --mb) by repeating the real sample records with fresh ids, then
prints, side by side for each format in one run:
  floor   read the file and `orjson.loads` every line, nothing else;
  rj.load  the full load: sniff, normalise, build `ctx.df`;
their MB/s, the ratio, and the peak memory of each (measured in a fresh process, so numbers do not mix).

Targets (issue 2): rj.load within 2.5x of the floor, >= 100 MB/s, peak memory < 3x the file size.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "tests" / "data" / "samples"

CLAUDE_SOURCES = [
    SAMPLES / "claude-code" / "codemie-session-9eda1058.jsonl",
    SAMPLES / "claude-code" / "codemie-4c2ddfdc-b619-4525-8d03-1950fb1b0257.jsonl",
    SAMPLES / "claude-code" / "codemie-incremental-subagents" / "turn-1.jsonl",
]
CODEX_SOURCE = SAMPLES / "codex" / "rollout-2026-05-11T11-26-55-019e1625-789d-76c0-80ab-3724b5ddb799.jsonl"

# Fields whose values are ids: each repetition gets fresh ones, so nothing dedupes away.
CLAUDE_ID_KEYS = {"uuid", "parentUuid", "logicalParentUuid", "leafUuid", "messageId", "requestId",
                  "sourceToolAssistantUUID", "tool_use_id", "promptId"}
CODEX_ID_KEYS = {"call_id", "turn_id", "id"}


def _renew(value, keys: set[str], suffix: str, parent_key: str = ""):
    if isinstance(value, dict):
        return {k: (v + suffix if k in keys and isinstance(v, str) else _renew(v, keys, suffix, k))
                for k, v in value.items()}
    if isinstance(value, list):
        return [_renew(v, keys, suffix, parent_key) for v in value]
    return value


def _records(paths: list[Path]) -> list[dict]:
    out = []
    for p in paths:
        for line in p.read_bytes().splitlines():
            if line.strip():
                out.append(orjson.loads(line))
    return out


def build_claude(target: Path, mb: int) -> None:
    base = _records(CLAUDE_SOURCES)
    session = "bench-claude-session"
    with open(target, "wb") as fh:
        rep = 0
        while fh.tell() < mb * 1_000_000:
            suffix = f"-r{rep}"
            for rec in base:
                rec = _renew(rec, CLAUDE_ID_KEYS, suffix)
                if "sessionId" in rec:
                    rec["sessionId"] = session
                msg = rec.get("message")
                if isinstance(msg, dict):
                    if isinstance(msg.get("id"), str):
                        msg["id"] += suffix
                    for block in msg.get("content") or []:
                        if isinstance(block, dict) and isinstance(block.get("id"), str):
                            block["id"] += suffix
                fh.write(orjson.dumps(rec) + b"\n")
            rep += 1


def build_codex(target: Path, mb: int) -> None:
    base = _records([CODEX_SOURCE])
    meta, rest = base[0], base[1:]
    with open(target, "wb") as fh:
        fh.write(orjson.dumps(meta) + b"\n")
        rep = 0
        while fh.tell() < mb * 1_000_000:
            suffix = f"-r{rep}"
            for rec in rest:
                fh.write(orjson.dumps(_renew(rec, CODEX_ID_KEYS, suffix)) + b"\n")
            rep += 1


_CHILD = r"""
import json, resource, sys, time
mode, path = sys.argv[1], sys.argv[2]
import orjson
if mode == "load":
    import polars, rlm_jupyter as rj
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
if mode == "floor":
    n = 0
    with open(path, "rb") as fh:
        for line in fh:
            orjson.loads(line)
            n += 1
    rows = n
else:
    ctx = rj.load(path)
    rows = ctx.df.height
    skipped = len(ctx.report.skipped)
dt = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": dt, "rows": rows, "peak_kb": peak, "base_kb": base}))
"""


def measure(mode: str, path: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", _CHILD, mode, str(path)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=int, default=200, help="size of each generated file in MB (default 200)")
    ap.add_argument("--keep", metavar="DIR", help="write the generated files here and keep them")
    args = ap.parse_args()

    workdir = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="rlmj-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    cases = [("claude", workdir / "claude-big.jsonl", build_claude), ("codex", workdir / "codex-big.jsonl", build_codex)]
    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}")
    header = (f"{'format':<7} {'size MB':>8} {'rows':>9} | {'floor s':>8} {'MB/s':>7} {'peak MB':>8} | "
              f"{'rj.load s':>9} {'MB/s':>7} {'peak MB':>8} | {'ratio':>6} {'mem/file':>8}")
    results = []
    for name, path, build in cases:
        if not path.exists():
            build(path, args.mb)
        size_mb = path.stat().st_size / 1e6
        floor = measure("floor", path)
        load = measure("load", path)
        results.append((name, size_mb, floor, load))
    print(header)
    print("-" * len(header))
    for name, size_mb, floor, load in results:
        fl_peak = (floor["peak_kb"]) / 1024
        ld_peak = (load["peak_kb"]) / 1024
        print(f"{name:<7} {size_mb:>8.0f} {load['rows']:>9,} | {floor['seconds']:>8.2f} {size_mb / floor['seconds']:>7.0f}"
              f" {fl_peak:>8.0f} | {load['seconds']:>9.2f} {size_mb / load['seconds']:>7.0f} {ld_peak:>8.0f} |"
              f" {load['seconds'] / floor['seconds']:>5.2f}x {ld_peak / size_mb:>7.2f}x")
    print("targets: ratio <= 2.5x, rj.load >= 100 MB/s, peak memory < 3x file size "
          "(peak = whole process, imports included)")
    if not args.keep:
        for _, path, _ in cases:
            path.unlink(missing_ok=True)
        workdir.rmdir()


if __name__ == "__main__":
    main()
