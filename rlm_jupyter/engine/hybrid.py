"""mode="hybrid": for models that cannot write code. One prompt, packed under a token budget from three sources in
this order of priority: the preserved (inception) messages (`ctx.preserve`), the messages retrieved for the
question (`ctx.search`), and the most recent messages; shown in history order. The step event records which
message ids went in from each source (`packed`), and the search is recorded as a query event.
"""

from __future__ import annotations

import time

from . import prompts

MESSAGE_CHARS = 4_000  # one message's share of the prompt at most (its head), so one huge tool output cannot fill it
RETRIEVE = 30  # how many search hits to consider


def pack(ctx, question: str, token_budget: int) -> tuple[list[int], dict[str, list[str]], list[dict]]:
    """(positions in history order, {source: ids}, query events) fitting `token_budget` estimated tokens
    (characters / 4, the estimate `ctx.tokens` uses)."""
    import polars as pl

    if len(ctx) == 0:
        return [], {"preserved": [], "retrieved": [], "recent": []}, []
    table = ctx.table
    preserved = table.filter(pl.col("preserved")).get_column("position").to_list()
    with ctx.trace() as events:
        try:
            retrieved = ctx.search(question, limit=RETRIEVE, mode="bm25").positions
        except Exception:  # a question with no searchable words: the other sources still fill the prompt
            retrieved = []
    pruned = set(table.filter(pl.col("pruned")).get_column("position").to_list())
    recent = [p for p in range(len(ctx) - 1, -1, -1) if p not in pruned]
    chosen: dict[int, str] = {}
    left = token_budget
    for source, positions in (("preserved", preserved), ("retrieved", retrieved), ("recent", recent)):
        for p in positions:
            if p in chosen:
                continue
            cost = (min(len(ctx[p].render()), MESSAGE_CHARS) + 3) // 4
            if cost > left:
                if source == "recent":
                    break  # the recent window is contiguous: stop at the first message that does not fit
                continue
            chosen[p] = source
            left -= cost
    by_source = {s: [] for s in ("preserved", "retrieved", "recent")}
    order = sorted(chosen)
    ids = ctx.table["id"].gather(order).to_list() if order else []
    for p, i in zip(order, ids, strict=True):
        by_source[chosen[p]].append(i)
    return order, by_source, events


def render(ctx, positions: list[int]) -> str:
    parts = []
    for p in positions:
        text = ctx[p].render()
        parts.append(text if len(text) <= MESSAGE_CHARS else text[:MESSAGE_CHARS] + "\n[… cut …]")
    return "\n\n".join(parts)


def run_hybrid(engine, state, question: str) -> str:
    """One packed call; returns the model's text as the answer. `engine` is the loop's _Engine."""
    engine._check()
    budget_tokens = engine.hybrid_tokens
    if engine.meter.budget.tokens is not None:
        budget_tokens = min(budget_tokens, max(engine.meter.budget.tokens // 2, 256))
    t = time.time()
    positions, by_source, queries = pack(engine.ctx, question, budget_tokens)
    shape = prompts.context_shape(engine.ctx)
    user = (
        f"{len(positions)} of {shape['messages']:,} messages from {shape['sessions']} session(s), "
        f"packed under ~{budget_tokens:,} tokens:\n\n{render(engine.ctx, positions)}\n\nQuestion: {question}"
    )
    messages = [{"role": "system", "content": prompts.HYBRID_SYSTEM_PROMPT}, {"role": "user", "content": user}]
    state.prose = None
    text = engine._step(state, 0, messages)
    step = state.step_event
    engine.writer.update(step, packed=by_source, packed_tokens=(len(user) + 3) // 4, pack_s=round(time.time() - t, 4))
    for q in queries:
        engine.writer.emit(
            "query",
            step["id"],
            t=q.get("ts"),
            op=q.get("op", "?"),
            args=q.get("args") or {},
            result_ids=[str(i) for i in q.get("result_ids") or []],
            scores=q.get("scores"),
            latency_ms=q.get("latency_ms"),
            **engine.snippets_of(q),
        )
    return text.strip()
