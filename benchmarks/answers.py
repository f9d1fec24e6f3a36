"""Answers that hold up: the question set over the recorded sessions, answered three ways, side by side.

    .venv/bin/python benchmarks/answers.py [--only q01 q05 ...] [--window-tokens 2000] [-v]

The questions (tests/data/questions/recorded.json) were written by reading the recorded sessions in
tests/data/recorded: each names the facts a right answer states and the ids of the messages that state them.
Printed, per question kind and in all, the share answered right by
- RLM: `rlm(question, ctx)` with the offline rule-based model (real worker, real loop). Right = every fact is in the
  answer AND in a message the answer cites (its "Evidence:" ids), so an answer cannot pass by naming facts it did
  not take from the history;
- the agent's own last window: the messages the agent still had in its context when the session ended (the X-ray's
  `window(None)`, compactions applied). Right = every fact is somewhere in that window: the best a perfect reader
  of the window could do, an upper bound for the agent;
- a sliding window: the last `--window-tokens` estimated tokens of the session (same rule, same upper bound).
Both windows are graded generously (facts present = right), RLM strictly (stated and cited).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

QUESTIONS = ROOT / "tests" / "data" / "questions" / "recorded.json"
RECORDED = ROOT / "tests" / "data" / "recorded"
WINDOW_TOKENS = 2_000


def load_questions(only: list[str] | None = None) -> list[dict]:
    qs = json.loads(QUESTIONS.read_text())["questions"]
    return [q for q in qs if not only or q["id"] in only]


def _alternatives(fact) -> list[str]:
    return fact if isinstance(fact, list) else [fact]


def facts_in(text: str, facts: list) -> list:
    """The facts (any alternative, case-insensitive) that `text` does NOT contain."""
    low = text.lower()
    return [f for f in facts if not any(a.lower() in low for a in _alternatives(f))]


def cited_ids(answer: str) -> list[str]:
    m = re.search(r"^Evidence: (.+)$", answer or "", re.M)
    return [i.strip() for i in m.group(1).split(", ")] if m else []


def message_text(m) -> str:
    return "\n".join(p for p in (m.text, m.thinking, m.tool_input, m.tool_output) if p)


def grade_rlm(ctx, q: dict, answer: str) -> tuple[bool, str]:
    """(right, why not): every fact stated in the answer and present in a cited message."""
    missing = facts_in(answer or "", q["facts"])
    if missing:
        return False, f"answer lacks {missing}"
    known = set(ctx.df["id"].to_list())
    ids = [i for i in cited_ids(answer) if i in known]
    if not ids:
        return False, "cites no id of the history"
    cited = "\n".join(message_text(m) for m in ctx.get_by_id(ids))
    unsupported = facts_in(cited, q["facts"])
    if unsupported:
        return False, f"cited messages {ids} lack {unsupported}"
    return True, ""


def agent_window(ctx) -> str:
    """Per session, the X-ray's window at the end of the session (what the agent itself last held), as text; a
    pruned tool row (call kept, output cleared) counts without its output."""
    from rlm_jupyter.window import xray

    parts = []
    for sid in ctx.sessions["session_id"].to_list():
        for r in xray(ctx, session=sid).window(None).messages.iter_rows(named=True):
            fields = ("text", "thinking", "tool_input") + (("tool_output",) if r["state"] == "in" else ())
            parts += [r[f] for f in fields if r[f]]
    return "\n".join(parts)


def sliding_window(ctx, tokens: int) -> str:
    """Per session, the last messages that fit in `tokens` estimated tokens, as text."""
    out = []
    table = ctx.table
    for sid in ctx.sessions["session_id"].to_list():
        rows = table.filter(table["session_id"] == sid)
        kept, total = [], 0
        for pos, t in zip(reversed(rows["position"].to_list()), reversed(rows["tokens"].to_list()), strict=True):
            if total + t > tokens and kept:
                break
            kept.append(pos)
            total += t
        out += [message_text(ctx[p]) for p in sorted(kept)]
    return "\n".join(out)


def grade_window(window_text: str, q: dict) -> bool:
    return not facts_in(window_text, q["facts"])


def run(questions: list[dict], window_tokens: int = WINDOW_TOKENS, verbose: bool = False, models=None) -> list[dict]:
    import rlm_jupyter as rj
    from rlm_jupyter.engine.loop import rlm
    from rlm_jupyter.engine.models import Models

    models = models or Models()
    contexts: dict[str, object] = {}
    windows: dict[str, tuple[str, str]] = {}
    rows = []
    for q in questions:
        if q["session"] not in contexts:
            ctx = rj.load(RECORDED / q["session"])
            contexts[q["session"]] = ctx
            windows[q["session"]] = (agent_window(ctx), sliding_window(ctx, window_tokens))
        ctx = contexts[q["session"]]
        t0 = time.perf_counter()
        result = rlm(q["question"], ctx, models=models)
        right, why = grade_rlm(ctx, q, result.answer)
        agent, sliding = windows[q["session"]]
        rows.append(
            {
                "id": q["id"],
                "kind": q["kind"],
                "rlm": right,
                "why": why,
                "answer": result.answer,
                "agent": grade_window(agent, q),
                "sliding": grade_window(sliding, q),
                "seconds": time.perf_counter() - t0,
            }
        )
        if verbose:
            print(
                f"{q['id']} {q['session']}: {q['question']}\n  rlm {'right' if right else 'WRONG: ' + why}\n"
                + "\n".join("    " + line for line in (result.answer or "").splitlines()),
                flush=True,
            )
    return rows


def share(rows: list[dict], key: str) -> str:
    n = sum(r[key] for r in rows)
    return f"{n}/{len(rows)} ({100 * n / len(rows):.0f}%)" if rows else "-"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", help="question ids (default: all)")
    ap.add_argument("--window-tokens", type=int, default=WINDOW_TOKENS)
    ap.add_argument("-v", "--verbose", action="store_true", help="print every answer")
    args = ap.parse_args()
    questions = load_questions(args.only)
    t0 = time.perf_counter()
    rows = run(questions, args.window_tokens, args.verbose)
    wall = time.perf_counter() - t0
    print(
        f"\n{len(rows)} questions over {len({q['session'] for q in questions})} recorded sessions "
        f"({wall:.0f} s, {wall / max(1, len(rows)):.1f} s per RLM answer)"
    )
    print(f"{'':<22}{'RLM (offline)':>18}{'agent last window':>20}{f'sliding {args.window_tokens} tok':>20}")
    for kind in sorted({r["kind"] for r in rows}) + ["all"]:
        sel = [r for r in rows if kind in ("all", r["kind"])]
        print(f"{kind:<22}{share(sel, 'rlm'):>18}{share(sel, 'agent'):>20}{share(sel, 'sliding'):>20}")
    print("target: RLM >= 90% (stated and cited); the windows are graded on presence only (an upper bound)")
    for r in rows:
        if not r["rlm"]:
            print(f"  RLM wrong on {r['id']}: {r['why']}")


if __name__ == "__main__":
    main()
