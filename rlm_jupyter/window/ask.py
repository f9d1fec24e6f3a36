"""One question, three answers side by side:

(a) `window`: from the window the agent had after its last compaction (the window at the end of the session;
    pruned tool outputs cleared as the agent had them), in one packed prompt (`rlm(mode="hybrid")`);
(b) `sliding`: from a sliding window of the last N tokens of the session that keeps preserved (inception)
    messages (`ctx.preserve`), also one packed prompt; N = `tokens`, else the model's window limit when known,
    else the size of (a), so (a) and (b) get the same budget;
(c) `rlm`: a Recursive Language Model over the session's full history, compacted messages included.

Each answer has its evidence (the message ids it cites that exist in the session, and whether each was in the
agent's window), its tokens, cost and time. With the default `model="offline"` (a rule-based demo model, not a
neural one) nothing leaves the machine.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field

from .display import answers_html, answers_text

CLEARED = "[Old tool result content cleared]"  # what OpenCode sends in place of a pruned tool output
_CITE = re.compile(r"\[([^\[\]\s]{1,200})\]")


@dataclass
class Answer:
    name: str  # window | sliding | rlm
    label: str
    answer: str | None
    evidence: list[str]
    in_window: list[bool]  # per evidence id: was it in the agent's window after its last compaction
    context_messages: int  # messages the answer could draw on
    context_tokens: int  # their estimated tokens
    tokens_in: int
    tokens_out: int
    cost_usd: float
    seconds: float
    status: str
    run: object = field(repr=False, default=None)


class Answers:
    def __init__(self, question: str, answers: list[Answer]):
        self.question = question
        self.answers = answers
        self.window, self.sliding, self.rlm = answers

    @property
    def frame(self):
        import polars as pl

        return pl.DataFrame(
            [
                {
                    "name": a.name,
                    "answer": a.answer,
                    "evidence": a.evidence,
                    "evidence_in_window": sum(a.in_window),
                    "context_messages": a.context_messages,
                    "context_tokens": a.context_tokens,
                    "tokens_in": a.tokens_in,
                    "tokens_out": a.tokens_out,
                    "cost_usd": a.cost_usd,
                    "seconds": a.seconds,
                    "status": a.status,
                }
                for a in self.answers
            ]
        )

    def __iter__(self):
        return iter(self.answers)

    def __repr__(self) -> str:
        return answers_text(self)

    def _repr_html_(self) -> str:
        return answers_html(self)


def ask(
    xr, question: str, *, model: str = "offline", sub_model: str | None = None, tokens: int | None = None, budget=None
) -> Answers:
    import polars as pl

    from ..context import Context
    from ..context.errors import ArgumentError

    if not isinstance(question, str) or not question.strip():
        raise ArgumentError("xray.ask: question must be a non-empty string, e.g. xr.ask('Why did we reject Redis?')")
    if tokens is not None and (isinstance(tokens, bool) or not isinstance(tokens, int) or tokens <= 0):
        raise ArgumentError(f"xray.ask: tokens must be a positive int (the sliding window size), got {tokens!r}")
    cache = getattr(xr.ctx, "_cache", "auto")
    cols = list(xr.ctx.df.columns)
    win = xr.window(None)
    in_window = set(win.messages["id"].to_list())
    cleared = pl.when(pl.col("state") == "pruned").then(pl.lit(CLEARED)).otherwise(pl.col("tool_output"))
    a_rows = win.messages.with_columns(cleared.alias("tool_output"))
    n_tokens = tokens or xr.limit or max(win.tokens, 1)
    b_rows = _sliding(xr, n_tokens)
    full = xr.rows.filter(~pl.col("marker"))
    specs = [
        ("window", "(a) the agent's window after its last compaction", a_rows, "hybrid"),
        ("sliding", f"(b) sliding window of the last {n_tokens:,} tokens + preserved", b_rows, "hybrid"),
    ]
    known = set(xr.rows["id"].to_list())

    def packed() -> list[Answer]:
        out = []
        for name, label, frame, mode in specs:
            ctx = Context.from_frame(frame.select(cols), cache=cache)
            out.append(
                _run(
                    name,
                    label,
                    question,
                    ctx,
                    mode,
                    int(frame["tokens"].sum() or 0),
                    frame.height,
                    model,
                    sub_model,
                    budget,
                    in_window,
                    known,
                )
            )
        return out

    # (a) and (b) are one call each: they run beside (c), whose RLM run stays on this thread (Ctrl-C stops it).
    box: dict = {}
    side = threading.Thread(target=lambda: box.update(done=_capture(packed)), daemon=True)
    side.start()
    single = xr.ctx.sessions.height == 1  # the context is this session: use it (and its cached index) as it is
    ctx_c = xr.ctx if single else Context.from_frame(full.select(cols), cache=cache)
    c = _run(
        "rlm",
        "(c) RLM over the full history",
        question,
        ctx_c,
        "rlm",
        int(full["tokens"].sum() or 0),
        full.height,
        model,
        sub_model,
        budget,
        in_window,
        known,
    )
    side.join()
    ok, value = box["done"]
    if not ok:
        raise value
    return Answers(question, [*value, c])


def _capture(fn):
    try:
        return True, fn()
    except BaseException as e:  # re-raised on the caller's thread
        return False, e


def _sliding(xr, n_tokens: int):
    """Preserved messages first, then the most recent messages that fit, in history order."""
    import polars as pl

    rows = xr.rows.filter(~pl.col("marker") & ~pl.col("pruned"))
    keep = rows.filter(pl.col("preserved"))
    left = n_tokens - int(keep["tokens"].sum() or 0)
    rest = rows.filter(~pl.col("preserved")).reverse()
    fits = rest.filter(pl.col("tokens").cum_sum() <= max(left, 0))
    return pl.concat([keep, fits]).sort("local")


def _run(name, label, question, ctx, mode, size, n_msgs, model, sub_model, budget, in_window, known) -> Answer:
    from ..engine import rlm
    from ..engine.loop import HYBRID_TOKENS

    t = time.monotonic()
    if len(ctx) == 0:
        return Answer(name, label, None, [], [], 0, 0, 0, 0, 0.0, 0.0, "empty")
    hybrid_tokens = max(int(size * 1.25) + 256, 1024) if mode == "hybrid" else HYBRID_TOKENS
    run = rlm(question, ctx, model=model, sub_model=sub_model, mode=mode, budget=budget, hybrid_tokens=hybrid_tokens)
    cited = list(dict.fromkeys(i for i in _CITE.findall(run.answer or "") if i in known))
    u = run.usage
    return Answer(
        name,
        label,
        run.answer,
        cited,
        [i in in_window for i in cited],
        n_msgs,
        size,
        int(u.get("tokens_in", 0)),
        int(u.get("tokens_out", 0)),
        float(u.get("cost_usd", 0.0) or 0.0),
        round(time.monotonic() - t, 3),
        run.status,
        run,
    )
