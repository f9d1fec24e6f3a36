"""Trace reading speed with every line checked (issue 19), next to the floor, in one run.

    .venv/bin/python benchmarks/trace_read.py [--events 10000] [--repeats 5]

Builds a trace of about --events events by cloning a real offline run's events with fresh ids, then prints the
median of --repeats for:
  floor      read the file, `orjson.loads` every line and build the `Trace` (what the reader did before checks);
  Trace.load the reader as shipped: every line checked against schema.json (fastjsonschema, per event type),
             issues listed;
  node       the JupyterLab extension's `loadText` on the same text under Node (parse, schema check, settle),
             when node and labextension/node_modules are there.
Target: Trace.load <= 0.5 s for 10,000 events, and within 5x of the floor.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

NODE = """
import { readFileSync } from 'node:fs';
import { loadText } from './tracefile.mjs';
const text = readFileSync(process.argv[2], 'utf8');
const times = [];
for (let i = 0; i < Number(process.argv[3]); i++) {
  const t = performance.now();
  loadText(text, 'bench');
  times.push(performance.now() - t);
}
times.sort((a, b) => a - b);
console.log(times[Math.floor(times.length / 2)] / 1000);
"""


def build(path: Path, events: int) -> int:
    import rlm_jupyter as rj

    seed = path.with_name("seed.rlmtrace.jsonl")
    rj.rlm("Which write was rejected?", rj.load(rj.samples() / "claude-code"), trace_path=str(seed), max_depth=2)
    lines = seed.read_bytes().splitlines()
    head, body = lines[0], [x for x in lines[1:] if x.strip()]
    out = [head]
    k = 0
    while len(out) - 1 < events:
        for line in body:
            e = orjson.loads(line)
            e["id"] = f"k{k}-{e['id']}"
            e["parent"] = f"k{k}-{e['parent']}" if e["parent"] else None
            if e.get("child_run"):
                e["child_run"] = f"k{k}-{e['child_run']}"
            out.append(orjson.dumps(e))
        k += 1
    path.write_bytes(b"\n".join(out) + b"\n")
    return len(out) - 1


def floor(path: Path):
    from rlm_jupyter.trace.model import Trace

    lines = [orjson.loads(x) for x in path.read_bytes().splitlines() if x.strip()]
    by_id = {}
    for e in lines[1:]:
        by_id[e["id"]] = e
    return Trace(events=list(by_id.values()), header=lines[0])


def median_s(fn, repeats: int) -> float:
    fn()  # warm: imports, the compiled validators
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def node_s(path: Path, repeats: int, tmp: Path) -> float | None:
    node, esbuild = shutil.which("node"), ROOT / "labextension" / "node_modules" / ".bin" / "esbuild"
    if node is None or not esbuild.exists():
        return None
    subprocess.run(
        [
            str(esbuild),
            str(ROOT / "labextension" / "src" / "tracefile.ts"),
            "--bundle",
            "--format=esm",
            "--platform=node",
            f"--outfile={tmp / 'tracefile.mjs'}",
            "--log-level=warning",
        ],
        check=True,
    )
    (tmp / "bench.mjs").write_text(NODE)
    r = subprocess.run(
        [node, str(tmp / "bench.mjs"), str(path), str(repeats)], capture_output=True, text=True, check=True, cwd=tmp
    )
    return float(r.stdout.strip())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    from rlm_jupyter.trace import Trace

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        path = tmp / "bench.rlmtrace.jsonl"
        n = build(path, args.events)
        mb = path.stat().st_size / 1e6
        base = median_s(lambda: floor(path), args.repeats)
        checked = median_s(lambda: Trace.load(path), args.repeats)
        assert len(Trace.load(path)) == len(floor(path)), "the checks dropped events of a valid trace"
        node = node_s(path, args.repeats, tmp)
    ok = checked <= 0.5 * n / 10_000 and checked <= 5 * base
    print(f"trace of {n:,} events, {mb:.1f} MB (a real offline run's events, cloned)")
    print(f"  floor (parse + Trace)   {base:.3f} s   {n / base:,.0f} events/s")
    print(f"  Trace.load (checked)    {checked:.3f} s   {n / checked:,.0f} events/s   {checked / base:.1f}x the floor")
    if node is not None:
        print(f"  node loadText (checked) {node:.3f} s   {n / node:,.0f} events/s")
    print(f"target: <= {0.5 * n / 10_000:.2f} s and <= 5x the floor: {'ok' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
