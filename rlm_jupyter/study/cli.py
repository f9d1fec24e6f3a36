"""`rlm-jupyter batch QUESTIONS --context PATH... --out DIR`: reads the questions file, runs rj.batch with a
progress bar on stderr, prints the totals and where the results are."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..context.errors import ArgumentError


def read_questions(path):
    """A .txt (one question a line), .jsonl ({"question": ..., other columns} or a string per line) or .csv file
    with a `question` column -> a list of str or a polars frame."""
    import polars as pl

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no questions file {path}")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return pl.read_csv(path)
    if suffix in (".jsonl", ".ndjson"):
        rows = []
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                v = json.loads(line)
            except ValueError as e:
                raise ArgumentError(f'{path}:{n}: not JSON ({e}); each line must be {{"question": ...}}') from None
            rows.append({"question": v} if isinstance(v, str) else v)
        return pl.DataFrame(rows)
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


class Bar:
    """One line on stderr, redrawn as rows finish."""

    def __init__(self, stream=sys.stderr, width: int = 30):
        self.stream, self.width = stream, width

    def __call__(self, row: dict, p: dict) -> None:
        total = max(1, p["total"] - p["skipped"])
        n = p["finished"]
        fill = int(self.width * n / total)
        self.stream.write(
            f"\r[{'#' * fill}{'.' * (self.width - fill)}] {n}/{total} runs, {p['failed']} failed, "
            f"{p['tokens']:,} tokens, ${p['cost_usd']:.4f}, {p['elapsed_s']:.1f} s "
        )
        self.stream.flush()


def run_cli(args) -> int:
    from ..engine.budget import Budget
    from . import batch

    def budget(usd=None, tokens=None):
        return Budget(usd=usd, tokens=tokens) if usd is not None or tokens is not None else None

    bar = Bar()
    res = batch(
        read_questions(args.questions),
        context=args.context,
        model=args.model or ["offline"],
        sub_model=args.sub_model,
        per=args.per,
        concurrency=args.concurrency,
        budget=budget(args.budget_usd, args.budget_tokens),
        run_budget=budget(args.run_budget_usd),
        out=args.out,
        executor=args.executor,
        ray_address=args.ray_address,
        max_iterations=args.max_iterations,
        on_row=bar,
        display=False,
    )
    sys.stderr.write("\n")
    df = res.df
    counts = ", ".join(f"{n} {s}" for s, n in df["status"].value_counts(sort=True).iter_rows()) if df.height else ""
    print(f"{df.height} runs ({counts or 'none'}); {res.progress.get('skipped', 0)} already in {res.out}")
    print(f"results: {res.out / 'results.parquet'}; traces: {res.out / 'traces'}")
    if res.stopped:
        print(f"stopped: {res.stopped}")
        return 1
    return 0
