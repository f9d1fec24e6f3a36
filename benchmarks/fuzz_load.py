"""Fuzz `rj.load` with 5,000 mutated copies of every format's real samples and print the counts (issue 19).

Each input (a sample with one mutation: truncation, byte flips, deleted / duplicated lines, invalid UTF-8, NUL bytes,
a known key's value swapped for a wrong type or an out-of-range number, lines spliced from other formats, 100k-deep
JSON, a 50 MB line, zip/sqlite/zstd garbage, damaged opencode.db rows and pages, OpenCode storage trees with bad
files) is loaded in a worker process with a time limit; `.df`, `.sessions`, the summaries and the report are built.
Printed: inputs, loaded, refused with the documented "nothing loadable" error (UnknownFormatError), files lost to a
reader error (caught by the file-level net), records skipped by a reader's guard, crashes, hangs, peak memory.

Target: 0 crashes, 0 hangs, 0 files lost in 5,000 inputs, peak memory < 1.5 GB.
`--baseline REV` runs the same inputs against another git revision (e.g. the commit before issue 19) in the same run.

    python benchmarks/fuzz_load.py [--n 5000] [--seed 19] [--workers 2] [--baseline 77a2e8f] [--save DIR]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rlm_jupyter.testing import load_fuzz  # noqa: E402


def _tree_at(rev: str, dest: Path) -> Path:
    """The package of git revision `rev` in `dest`, with this tree's fuzzer and sample data (same inputs)."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "rlm_jupyter"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    (dest / "tests").mkdir(exist_ok=True)
    os.symlink(ROOT / "tests" / "data", dest / "tests" / "data")
    (dest / "rlm_jupyter" / "testing" / "load_fuzz.py").write_bytes(
        (ROOT / "rlm_jupyter" / "testing" / "load_fuzz.py").read_bytes()
    )
    return dest


def _sites(items: list[dict]) -> str:
    by: dict[str, list[int]] = {}
    for r in items:
        by.setdefault(f"{r.get('where')}  {(r.get('error') or r.get('guarded') or '')[:90]}", []).append(r["i"])
    top = sorted(by.items(), key=lambda kv: -len(kv[1]))[:40]
    return "\n".join(f"    {len(cases):4d}  {site}  (cases {', '.join(map(str, cases[:4]))})" for site, cases in top)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=5000, help="inputs (default 5000)")
    ap.add_argument("--seed", type=int, default=19, help="run seed: case i of a seed is always the same input")
    ap.add_argument("--start", type=int, default=0, help="first case number")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--huge-mb", type=int, default=load_fuzz.HUGE_LINE_MB, help="size of the huge-line inputs")
    ap.add_argument("--baseline", metavar="REV", help="also run the same inputs against this git revision")
    ap.add_argument("--save", metavar="DIR", help="write every crashing input of this tree here")
    args = ap.parse_args()

    def run(root: Path):
        done = [0]

        def progress(res):
            done[0] += 1
            if done[0] % 500 == 0:
                print(f"  … {done[0]} inputs", file=sys.stderr, flush=True)

        return load_fuzz.run(
            args.n,
            run_seed=args.seed,
            workers=args.workers,
            start=args.start,
            huge_mb=args.huge_mb,
            progress=progress,
            root=root,
        )

    rows = []
    if args.baseline:
        with tempfile.TemporaryDirectory(prefix="rlm-fuzz-base-") as tmp:
            base = run(_tree_at(args.baseline, Path(tmp)))
        rows.append((f"baseline {args.baseline}", base))
    now = run(load_fuzz.ROOT)
    rows.append(("this tree", now))

    print(
        f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}; seed {args.seed}, cases "
        f"{args.start}..{args.start + args.n - 1}, {args.workers} workers"
    )
    print(
        f"{'loader':<22} {'inputs':>6} {'loaded':>6} {'refused':>7} {'lost':>5} {'guarded':>7} {'crashes':>7} "
        f"{'hangs':>5} {'peak MB':>7} {'slowest s':>9} {'wall s':>7}"
    )
    for name, s in rows:
        print(
            f"{name:<22} {s.inputs:>6} {s.loaded:>6} {s.refused:>7} {len(s.files_lost):>5} "
            f"{len(s.records_guarded):>7} {len(s.crashes):>7} {len(s.hangs):>5} {s.peak_rss_mb:>7.0f} "
            f"{s.slowest:>9.2f} {s.seconds:>7.1f}"
        )
    print("targets: crashes 0, hangs 0, lost 0 (refused = the documented UnknownFormatError), peak < 1500 MB")
    for name, s in rows:
        c = s.slowest_case
        print(f"{name}: slowest input: case {c.get('i')} ({c.get('mutation')} of {c.get('seed')}), {s.slowest:.2f} s")
    print("mutations: " + ", ".join(f"{k} {v}" for k, v in sorted(now.mutations.items())))
    for name, s in rows:
        bad = s.crashes + s.hangs + s.files_lost
        if bad:
            print(f"{name}: crash / hang / lost sites (count, where, error):\n{_sites(bad)}")
        if s.records_guarded:
            print(f"{name}: records skipped by a reader's guard (count, where):\n{_sites(s.records_guarded)}")
    if args.save and (now.crashes or now.hangs or now.files_lost):
        dest = Path(args.save)
        dest.mkdir(parents=True, exist_ok=True)
        for r in now.crashes + now.hangs + now.files_lost:
            print("saved", load_fuzz.save_case(r["i"], dest, args.seed, args.huge_mb))


if __name__ == "__main__":
    main()
