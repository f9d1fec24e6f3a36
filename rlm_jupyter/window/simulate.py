"""`xr.simulate(policies, facts=...)`: replay a real session's turns under other context policies and report, per
turn, which key facts each policy still lets the model reach.

Facts: the decisions, rejected approaches, constraints and failures the losses finder's patterns find in the
session's messages (losses.PATTERNS, failed tool calls), or what you give: message ids, or regex patterns (a fact
per pattern, carried by every message it matches). A fact is born at the first turn after its message.

Policies (short strings, or the objects below for other settings):
- `"window:8000"`  `Window(tokens)`: the most recent messages that fit in N tokens (the estimate of xr.rows).
- `"compact:80%"`  `Compact(at, limit)`: messages accumulate until the window passes X% of the limit (the
  session's recorded limit, else `limit=`, else the largest prompt the agent recorded); then the sub-model
  (offline, rule-based, by default) writes a summary of the previous summary plus the messages, and the window
  restarts from it. A fact survives a compaction when the summary cites its message id (the extractive offline
  model quotes sentences with their ids; a neural one is asked to) or quotes its text.
- `"acm"`  `ACM(tokens, keep_turns, recent_active_s)`: active context management after OpenCode #4659 and
  context/metadata.py: inception messages (system rows, the first human prompt) and messages marked
  preserved or with priority above the default are always kept; tool outputs older than the last `keep_turns`
  turns and `recent_active_s` seconds of active (chess-clock) time are pruned (the call stays); messages with a
  priority below the default leave with them; the rest is the most recent that fits in the budget.
- `"rlm"`  `RLM(k)`: nothing is in the window; everything is outside, queried. A fact is reachable when the
  context's BM25 search for its words finds its message (or the same text) in the top k.

Returns a `Simulation`: `.table` (turn x policy: facts born, reachable, share, window tokens), `.facts` (one row per
fact, the last turn each policy could reach it), `.summary`, `.seconds` (time per policy), `.chart()`.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from ..context.errors import ArgumentError

# Few key terms on purpose: the offline model scores every sentence against each term, so a replay of thousands of
# compactions costs terms x sentences regex searches; these five name what a continuation summary must keep.
SUMMARY_QUESTION = "Which decisions, rejected approaches, errors and constraints?"
MESSAGE_CHARS = 1_500  # per message in a compaction prompt (a long tool output is cut, as summarizers do)
PROMPT_CHARS = 120_000  # per compaction prompt: the most recent messages that fit
MAX_FACTS = 300  # found facts kept (spread evenly over the session); given ids / patterns are all kept


@dataclass(frozen=True)
class Window:
    tokens: int = 8000

    @property
    def name(self) -> str:
        return f"window:{self.tokens}"


@dataclass(frozen=True)
class Compact:
    at: float = 0.8
    limit: int | None = None

    @property
    def name(self) -> str:
        return f"compact:{self.at:.0%}"


@dataclass(frozen=True)
class ACM:
    tokens: int | None = None  # None: the budget of the first window policy, else 8000
    keep_turns: int = 3
    recent_active_s: float = 300.0

    @property
    def name(self) -> str:
        return "acm"


@dataclass(frozen=True)
class RLM:
    k: int = 10

    @property
    def name(self) -> str:
        return "rlm"


def parse_policy(p):
    if isinstance(p, (Window, Compact, ACM, RLM)):
        return p
    if not isinstance(p, str):
        raise ArgumentError(
            f"simulate: a policy is a string ('window:8000', 'compact:80%', 'acm', 'rlm') or a "
            f"Window / Compact / ACM / RLM object, got {p!r}"
        )
    s = p.strip().lower()
    m = re.fullmatch(r"window:(\d+)(k?)", s)
    if m:
        return Window(int(m[1]) * (1000 if m[2] else 1))
    m = re.fullmatch(r"compact(?::(\d+(?:\.\d+)?)%)?", s)
    if m:
        return Compact((float(m[1]) / 100) if m[1] else 0.8)
    if s == "acm":
        return ACM()
    if s == "rlm":
        return RLM()
    raise ArgumentError(f"simulate: unknown policy {p!r}; use 'window:N', 'compact:X%', 'acm' or 'rlm'")


# ---- facts -------------------------------------------------------------------------------------------------


def find_facts(xr, facts=None):
    """One row per fact: fact, category, id, local (its message), field ('text' / 'output'), excerpt, pattern."""
    import polars as pl

    from .losses import PATTERNS, _sentence

    r = xr.rows.filter(~pl.col("marker"))
    recs = []
    if facts is None:
        prose = pl.col("role") != "tool"
        text = pl.concat_str([pl.col("text").fill_null(""), pl.col("thinking").fill_null("")], separator="\n")
        # candidates by polars (all rows), then the spread-out sample, then excerpts by Python re for those only
        cand = []
        for cat, pattern in PATTERNS.items():
            hits = r.filter(prose & text.str.contains(f"(?i){pattern}"))
            cand.append(hits.select(pl.lit(cat).alias("category"), "id", "local", pl.lit("text").alias("field")))
        errs = r.filter((pl.col("role") == "tool") & (pl.col("tool_status") == "error"))
        cand.append(errs.select(pl.lit("failure").alias("category"), "id", "local", pl.lit("output").alias("field")))
        cand = pl.concat(cand).sort("local", maintain_order=True)
        if cand.height > MAX_FACTS:  # evenly spread over the session, so early and late facts both count
            step = cand.height / MAX_FACTS
            cand = cand[[int(k * step) for k in range(MAX_FACTS)]]
        src = cand.join(r.select("local", text.alias("_t"), "text", "tool_output"), on="local", how="left")
        for cat, mid, loc, fld, t, call, out in src.select(
            "category", "id", "local", "field", "_t", "text", "tool_output"
        ).iter_rows():
            if fld == "output":
                lines = (out or "").strip().splitlines()
                recs.append((cat, mid, loc, fld, f"{call} -> {lines[-1][:200] if lines else ''}".strip(), None))
                continue
            m = re.search(PATTERNS[cat], t, re.IGNORECASE)
            if m:
                recs.append((cat, mid, loc, fld, _sentence(t, m.start()), None))
    else:
        if isinstance(facts, (str, re.Pattern)):
            facts = [facts]
        ids = dict(zip(r["id"].to_list(), r["local"].to_list(), strict=True))
        texts = r.select(
            "local",
            pl.concat_str(
                [pl.col("text").fill_null(""), pl.col("thinking").fill_null(""), pl.col("tool_output").fill_null("")],
                separator="\n",
            ).alias("_t"),
        )
        for f in facts:
            if isinstance(f, str) and f in ids:
                loc = ids[f]
                row = r.filter(pl.col("local") == loc).row(0, named=True)
                recs.append(
                    (
                        "given",
                        f,
                        loc,
                        "output" if row["role"] == "tool" else "text",
                        (row["text"] or row["tool_output"] or "")[:200],
                        None,
                    )
                )
                continue
            pattern = f.pattern if isinstance(f, re.Pattern) else f
            try:
                re.compile(pattern)
            except re.error as e:
                raise ArgumentError(
                    f"simulate: fact {f!r} is neither a message id of this session nor a valid regex ({e})"
                ) from None
            hits = texts.filter(pl.col("_t").str.contains(f"(?i){pattern}"))["local"].to_list()
            if not hits:
                raise ArgumentError(
                    f"simulate: fact pattern {pattern!r} matches no message of this session; "
                    "give a message id or a pattern that occurs"
                )
            recs.append(("pattern", pattern, hits[0], "any", pattern, pattern))
    out = pl.DataFrame(
        recs,
        schema={
            "category": pl.String,
            "id": pl.String,
            "local": pl.Int64,
            "field": pl.String,
            "excerpt": pl.String,
            "pattern": pl.String,
        },
        orient="row",
    )
    return out.with_row_index("fact", offset=1).with_columns(pl.col("fact").cast(pl.Int64))


# ---- the simulation ---------------------------------------------------------------------------------------


class Simulation:
    """`table`: turn, policy, born (facts so far), reachable, share, tokens (the policy's window);
    `facts`: per fact, its message and `last_<policy>` (last turn reachable, null = never); `summary`;
    `seconds` per policy; `notes`; `sub_calls` (the compaction summaries); `chart()`."""

    def __init__(self, xr, policies, facts, reach, tokens, born, seconds, notes, sub_calls):
        import numpy as np
        import polars as pl

        self.xray, self.policies, self.seconds, self.notes, self.sub_calls = xr, policies, seconds, notes, sub_calls
        turns = np.arange(1, len(xr.turns) + 1)
        born_per_turn = np.bincount(np.clip(born, 0, len(turns) + 1), minlength=len(turns) + 2)[: len(turns) + 1]
        born_cum = np.cumsum(born_per_turn)[1:]  # facts born at or before each turn
        frames = []
        for name in policies:
            m = reach[name]
            frames.append(
                pl.DataFrame(
                    {
                        "turn": turns,
                        "policy": [name] * len(turns),
                        "born": born_cum,
                        "reachable": m.sum(axis=0) if m.size else np.zeros(len(turns), dtype=np.int64),
                        "tokens": tokens[name],
                    }
                )
            )
        self.table = pl.concat(frames).with_columns(
            pl.when(pl.col("born") > 0).then(pl.col("reachable") / pl.col("born")).alias("share"),
            pl.col("reachable").cast(pl.Int64),
            pl.col("born").cast(pl.Int64),
            pl.col("tokens").cast(pl.Int64),
        )
        last = {}
        for name in policies:
            m = reach[name]
            any_ = m.any(axis=1) if m.size else np.zeros(0, dtype=bool)
            idx = m.shape[1] - 1 - np.argmax(m[:, ::-1], axis=1) if m.size else np.zeros(0, dtype=np.int64)
            last[f"last_{name}"] = pl.Series(
                [int(i) + 1 if a else None for i, a in zip(idx, any_, strict=True)], dtype=pl.Int64
            )
        self.facts = facts.with_columns(pl.Series("born_turn", born, dtype=pl.Int64), **last).with_columns(
            pl.when(pl.col("born_turn") > len(turns)).then(None).otherwise(pl.col("born_turn")).alias("born_turn")
        )
        end = self.table.filter(pl.col("turn") == len(turns))
        self.summary = (
            end.select(
                "policy",
                pl.col("born").alias("facts"),
                pl.col("reachable").alias("at_end"),
                pl.col("share").alias("share_at_end"),
            )
            .join(
                self.table.group_by("policy").agg(
                    pl.col("share").mean().alias("mean_share"),
                    pl.col("tokens").mean().round().cast(pl.Int64).alias("mean_tokens"),
                ),
                on="policy",
            )
            .with_columns(
                pl.col("policy")
                .replace_strict({n: self.seconds.get(n, 0.0) for n in policies}, return_dtype=pl.Float64)
                .alias("seconds")
            )
        )
        order = {n: i for i, n in enumerate(policies)}
        self.summary = self.summary.sort(pl.col("policy").replace_strict(order, return_dtype=pl.Int64))

    def chart(self, *, width: int = 720, height: int = 260):
        """Share of the facts born so far that each policy keeps reachable, per turn (altair)."""
        import polars as pl

        from .plot import _altair

        alt = _altair()
        t = self.table.filter(pl.col("born") > 0)
        n = int(t["turn"].max() or 0)
        if n > 600:  # draw ~600 evenly spaced turns; the table has all
            step = max(1, n // 600)
            t = t.filter((pl.col("turn") % step == 0) | (pl.col("turn") == n))
        data = alt.Data(values=t.with_columns(pl.col("share").round(4)).to_dicts())
        base = alt.Chart(data).encode(
            x=alt.X("turn:Q", title="turn (model step)"),
            y=alt.Y(
                "share:Q", title="key facts still reachable", axis=alt.Axis(format="%"), scale=alt.Scale(domain=[0, 1])
            ),
            color=alt.Color("policy:N", sort=list(self.policies), legend=alt.Legend(orient="top")),
            tooltip=[
                "turn:Q",
                "policy:N",
                "reachable:Q",
                alt.Tooltip("born:Q", title="facts so far"),
                alt.Tooltip("share:Q", format=".0%"),
                alt.Tooltip("tokens:Q", title="window tokens", format=","),
            ],
        )
        title = alt.TitleParams(
            f"Key facts reachable per turn: {self.xray.session_id}",
            subtitle=[f"{self.facts.height} facts ({self._fact_kinds()})", *self.notes],
            anchor="start",
            fontSize=13,
            subtitleFontSize=10,
        )
        return (base.mark_line(interpolate="step-after") + base.mark_point(size=12, filled=True)).properties(
            width=width, height=height, title=title, name="simulate_lines"
        )

    def _fact_kinds(self) -> str:
        c = self.facts.group_by("category").len().sort("len", descending=True)
        return ", ".join(f"{n} {k}" for k, n in c.iter_rows())

    def __repr__(self) -> str:
        lines = [
            f"<Simulation of {self.xray.session_id}: {self.xray.turns.height:,} turns, {self.facts.height} "
            f"facts ({self._fact_kinds()})>"
        ]
        for r in self.summary.iter_rows(named=True):
            share = f"{r['share_at_end']:.0%}" if r["share_at_end"] is not None else "-"
            mean = f"{r['mean_share']:.0%}" if r["mean_share"] is not None else "-"
            lines.append(
                f"  {r['policy']:<14} reachable at the end {r['at_end']}/{r['facts']} ({share}), "
                f"mean over turns {mean}, ~{r['mean_tokens']:,} tokens in the window, {r['seconds']:.2f} s"
            )
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        from html import escape

        rows = "".join(
            f"<tr><td>{escape(r['policy'])}</td><td>{r['at_end']}/{r['facts']}</td>"
            f"<td>{(r['share_at_end'] or 0):.0%}</td><td>{(r['mean_share'] or 0):.0%}</td>"
            f"<td>{r['mean_tokens']:,}</td><td>{r['seconds']:.2f}</td></tr>"
            for r in self.summary.iter_rows(named=True)
        )
        notes = "".join(f"<li>{escape(n)}</li>" for n in self.notes)
        return (
            f"<pre>{escape(repr(self).splitlines()[0])}</pre><table><tr><th>policy</th><th>reachable at the "
            f"end</th><th>share</th><th>mean share</th><th>mean window tokens</th><th>seconds</th></tr>{rows}"
            f"</table><ul>{notes}</ul>"
        )


def simulate(xr, policies=("window:8000", "compact:80%", "acm", "rlm"), *, facts=None, sub_model: str = "offline"):
    import numpy as np

    if isinstance(policies, (str, Window, Compact, ACM, RLM)):
        policies = [policies]
    parsed = [parse_policy(p) for p in policies]
    names = [p.name for p in parsed]
    if len(set(names)) != len(names):
        raise ArgumentError(f"simulate: policies {names} repeat one; give each once")
    if xr.turns.height == 0:
        raise ArgumentError(f"simulate: session {xr.session_id} has no model steps to replay")
    t0 = time.perf_counter()
    f = find_facts(xr, facts)
    s = _Session(xr, f)
    seconds = {"facts": time.perf_counter() - t0}
    notes: list[str] = []
    reach, tokens, sub_calls = {}, {}, []
    default_budget = next((p.tokens for p in parsed if isinstance(p, Window)), 8000)
    for p in parsed:
        t = time.perf_counter()
        if isinstance(p, Window):
            reach[p.name], tokens[p.name] = s.window(p.tokens)
        elif isinstance(p, ACM):
            budget = p.tokens or default_budget
            reach[p.name], tokens[p.name] = s.acm(p, budget)
            over = int((tokens[p.name] > budget).sum())
            if over:
                notes.append(
                    f"acm: on {over} turn(s) the pinned messages (system, memory files, first prompt, "
                    f"preserved) alone exceed the {budget:,}-token budget; nothing else fits there"
                )
        elif isinstance(p, Compact):
            reach[p.name], tokens[p.name], calls, note = s.compact(p, sub_model)
            sub_calls += calls
            notes.append(note)
        else:
            reach[p.name], tokens[p.name] = s.rlm(p)
            notes.append(
                f"rlm: nothing in the window; a fact counts as reachable when BM25 search for its words "
                f"finds its message (or the same text) in the top {p.k}"
            )
        seconds[p.name] = time.perf_counter() - t
    if facts is None:
        notes.append(
            f"facts: {f.height} found by the losses patterns and failed tool calls"
            + (f" (at most {MAX_FACTS}, spread over the session)" if f.height == MAX_FACTS else "")
        )
    return Simulation(xr, names, f, reach, tokens, np.asarray(s.born), seconds, notes, sub_calls)


class _Session:
    """Arrays of one session for the policies: rows in order (markers out), prefix sums of tokens, turn ends."""

    def __init__(self, xr, facts):
        import numpy as np
        import polars as pl

        self.xr = xr
        r = xr.rows
        self.n = r.height
        live = ~r["marker"].to_numpy()
        tok = np.where(live, r["tokens"].to_numpy(), 0).astype(np.int64)
        out = np.minimum(r["output_tokens"].fill_null(0).to_numpy(), tok)
        out = np.where(r["role"].to_numpy() == "tool", out, 0)
        self.tok, self.out = tok, out
        self.C = np.concatenate([[0], np.cumsum(tok)])  # C[j] = tokens of rows < j
        self.L = xr.turns["local"].to_numpy()  # turn k (1-based) sees rows < L[k-1]
        self.T = len(self.L)
        self.live = live
        self.facts = facts
        self.flocal = facts["local"].to_numpy()
        # born: the first turn whose window can hold the row (rows < L)
        self.born = np.searchsorted(self.L, self.flocal, side="right") + 1
        roles = r["role"].to_list()
        origin = r["origin"].fill_null("").to_list()
        first_human = next((j for j in range(self.n) if roles[j] == "user" and origin[j] == "human"), None)
        from .composition import MEMORY_RX

        # inception: system rows, memory files (CLAUDE.md / AGENTS.md ...), the first human prompt
        pinned = (
            r.select((pl.col("role") == "system") | pl.col("text").str.contains(MEMORY_RX).fill_null(False))
            .to_series()
            .to_numpy()
            & live
        )
        if first_human is not None:
            pinned[first_human] = True
        if "preserved" in r.columns:
            pinned |= r["preserved"].fill_null(False).to_numpy() & live
        pr = r["priority"].fill_null(5).to_numpy() if "priority" in r.columns else np.full(self.n, 5)
        self.high = (pr > 5) & live
        self.low = (pr < 5) & live
        self.pinned = pinned
        self.active = (
            r["active_s"].fill_null(strategy="forward").fill_null(0.0).to_numpy()
            if "active_s" in r.columns
            else np.zeros(self.n)
        )
        self.ids = r["id"].to_list()
        self._rows = r
        self._pl = pl

    def _alive(self):
        """facts x turns: born by then (a fact's message exists before the turn)."""
        import numpy as np

        return np.arange(1, self.T + 1)[None, :] >= self.born[:, None]

    def window(self, budget: int):
        import numpy as np

        end = self.C[self.L]  # tokens of rows before each turn
        start = np.searchsorted(self.C, end - budget, side="left")  # first row j with C[j] >= end - budget
        in_win = (self.flocal[:, None] >= start[None, :]) & self._alive()
        used = end - self.C[np.minimum(start, self.L)]
        return in_win, used

    def acm(self, p: ACM, budget: int):
        """Pinned (inception, preserved, priority above default) always in; old tool outputs pruned; low-priority
        rows out once old; the rest: the most recent that fits in what the pinned rows leave of the budget."""
        import numpy as np

        T, L = self.T, self.L
        always = self.pinned | self.high
        tok = np.where(always, 0, self.tok)
        reduced = np.where(self.low, 0, tok - self.out + np.where(self.out > 0, 3, 0))  # placeholder ~3 tokens
        C = np.concatenate([[0], np.cumsum(tok)])
        R = np.concatenate([[0], np.cumsum(reduced)])
        P = np.concatenate([[0], np.cumsum(np.where(always, self.tok, 0))])
        # b[t]: the first row whose tool output is still protected at turn t (last keep_turns turns or the last
        # recent_active_s seconds of active time, whichever protects more)
        k_back = np.maximum(np.arange(T) - p.keep_turns, 0)
        by_turns = np.where(np.arange(T) >= p.keep_turns, L[k_back], 0)
        act_end = self.active[np.maximum(L - 1, 0)]
        by_time = np.searchsorted(self.active, act_end - p.recent_active_s, side="left")
        b = np.minimum(by_turns, by_time)
        b = np.minimum(b, L)
        room = budget - P[L]
        recent = C[L] - C[b]
        start = np.where(
            recent > room,
            np.searchsorted(C, C[L] - room, side="left"),
            np.searchsorted(R, R[b] - (room - recent), side="left"),
        )
        start = np.minimum(start, L)
        fl = self.flocal
        out_fact = (self.facts["field"] == "output").to_numpy()
        in_win = fl[:, None] >= start[None, :]
        old = fl[:, None] < b[None, :]
        in_win &= ~(old & (out_fact | self.low[fl])[:, None])
        in_win |= always[fl][:, None]
        in_win &= self._alive()
        used = P[L] + (C[L] - C[np.maximum(start, b)]) + np.where(start < b, R[b] - R[np.minimum(start, b)], 0)
        return in_win, used

    def compact(self, p: Compact, sub_model: str):
        import numpy as np

        from ..engine.models import ModelError, sub_llm

        xr = self.xr
        limit = p.limit or xr.limit
        how = "the session's limit" if xr.limit and not p.limit else "limit=" if p.limit else None
        if not limit:
            recorded = xr.turns["context_tokens"].max()
            limit = int(recorded) if recorded else int(xr.turns["window_tokens"].max() or 0) or 8000
            how = "the largest prompt the agent recorded (no limit recorded; pass Compact(limit=N))"
        threshold = int(p.at * limit)
        # the limit counts the whole prompt; our window counts messages only: add what the agent's recorded sizes
        # say the rest (system prompt, tool definitions) takes, the median over the recorded turns
        gap = (xr.turns["context_tokens"] - xr.turns["window_tokens"]).drop_nulls()
        overhead = max(0, int(gap.median())) if gap.len() else 0
        rendered = self._rendered()
        T, L, C = self.T, self.L, self.C
        reach = np.zeros((len(self.flocal), T), dtype=bool)
        used = np.zeros(T, dtype=np.int64)
        fact_ids = self.facts["id"].to_list()
        excerpts = [e[:60] for e in self.facts["excerpt"].to_list()]
        kept: set[int] = set()  # fact indexes carried by the current summary
        summary_text, summary_tok, since = "", 0, 0
        calls = []
        by_local: dict[int, list[int]] = {}
        for i, loc in enumerate(self.flocal):
            by_local.setdefault(int(loc), []).append(i)
        for k in range(T):
            size = overhead + summary_tok + int(C[L[k]] - C[since])
            if size > threshold and L[k] > since:
                prompt = self._prompt(summary_text, rendered, since, int(L[k]))
                try:
                    text, tin, tout, cost = _summarize(prompt, sub_model, sub_llm)
                    calls.append(
                        {
                            "turn": k + 1,
                            "model": sub_model,
                            "tokens_in": tin,
                            "tokens_out": tout,
                            "cost_usd": cost,
                            "error": None,
                            "summary": text,
                        }
                    )
                except ModelError as e:
                    text = ""
                    calls.append(
                        {
                            "turn": k + 1,
                            "model": sub_model,
                            "tokens_in": 0,
                            "tokens_out": 0,
                            "cost_usd": None,
                            "error": str(e),
                            "summary": "",
                        }
                    )
                cited = set(re.findall(r"\[([^\]\s]+)\]", text))
                candidates = kept | {i for loc in range(since, int(L[k])) for i in by_local.get(loc, ())}
                kept = {i for i in candidates if fact_ids[i] in cited or (excerpts[i] and excerpts[i] in text)}
                summary_text, summary_tok, since = text, (len(text.encode()) + 3) // 4, int(L[k])
                size = overhead + summary_tok
            used[k] = size - overhead
            if kept:
                reach[sorted(kept), k] = True
        reach |= self.flocal[:, None] >= _since_per_turn(calls, L, T)[None, :]
        reach &= self._alive()
        note = (
            f"compact:{p.at:.0%}: at {threshold:,} tokens ({p.at:.0%} of {limit:,}, {how}), counting "
            f"{overhead:,} tokens of system prompt and tools (recorded minus estimated, median); "
            f"{len(calls)} summaries by {sub_model}"
        )
        return reach, used, calls, note

    def _rendered(self) -> list[str]:
        """Each row as transcript text (the header format offline.py reads ids from), long fields cut."""
        pl = self._pl
        r = self._rows
        who = pl.concat_str(
            [
                pl.col("role"),
                pl.when(pl.col("tool_name").is_not_null())
                .then(pl.lit("/") + pl.col("tool_name"))
                .otherwise(pl.lit("")),
            ]
        )
        head = pl.concat_str(
            [
                pl.lit("["),
                pl.col("position").cast(pl.String),
                pl.lit("] "),
                who,
                pl.lit(" "),
                pl.col("id"),
                pl.lit(" (-)"),
            ]
        )
        body = pl.concat_str(
            [
                pl.col("text").fill_null("").str.slice(0, MESSAGE_CHARS),
                pl.when(pl.col("tool_output").is_not_null())
                .then(pl.lit("\n→ ") + pl.col("tool_output").str.slice(0, MESSAGE_CHARS))
                .otherwise(pl.lit("")),
            ]
        )
        return (
            r.select(pl.when(pl.col("marker")).then(pl.lit("")).otherwise(pl.concat_str([head, pl.lit("\n"), body])))
            .to_series()
            .to_list()
        )

    def _prompt(self, summary: str, rendered: list[str], a: int, b: int) -> str:
        parts, size = [], 0
        for j in range(b - 1, a - 1, -1):  # the most recent messages that fit
            t = rendered[j]
            if not t:
                continue
            if size + len(t) > PROMPT_CHARS:
                break
            parts.append(t)
            size += len(t)
        prev = ""
        if summary:
            # the previous summary, its cited lines under their own message headers, so their ids carry over
            blocks = []
            for line in summary.splitlines():
                m = re.match(r"\s*\[([^\]\s]+)\]\s*(.+)", line)
                blocks.append(f"[?] summary {m[1]} (-)\n{m[2]}" if m else line)
            prev = "\n\n".join(blocks) + "\n\n"
        return f"Question: {SUMMARY_QUESTION}\n\n{prev}" + "\n\n".join(reversed(parts))

    def rlm(self, p: RLM):
        import numpy as np

        ctx = self.xr.ctx
        reach = np.zeros((len(self.flocal), self.T), dtype=bool)
        positions = self._rows["position"].to_numpy()
        sid = self.xr.session_id
        for i, row in enumerate(self.facts.iter_rows(named=True)):
            query = _query(row["excerpt"] if row["pattern"] is None else row["pattern"])
            if not query:
                continue
            hits = ctx.search(query, limit=p.k, mode="bm25")
            frame = hits.df if hasattr(hits, "df") else None
            if frame is None or frame.height == 0:
                continue
            frame = frame.filter(frame["session_id"] == sid) if "session_id" in frame.columns else frame
            pos = frame["position"].to_numpy()
            locs = np.searchsorted(positions, pos)
            texts = (
                frame.select(
                    self._pl.concat_str(
                        [
                            self._pl.col("text").fill_null(""),
                            self._pl.col("thinking").fill_null(""),
                            self._pl.col("tool_output").fill_null(""),
                        ],
                        separator="\n",
                    )
                )
                .to_series()
                .to_list()
            )
            key = row["excerpt"][:60] if row["pattern"] is None else None
            rx = re.compile(row["pattern"], re.I) if row["pattern"] else None
            carriers = [
                int(loc)
                for loc, t, hid in zip(locs, texts, frame["id"].to_list(), strict=True)
                if hid == row["id"] or (key and key in t) or (rx and rx.search(t))
            ]
            if not carriers:
                continue
            first = min(carriers)
            born = max(int(self.born[i]), int(np.searchsorted(self.L, first, side="right")) + 1)
            if born <= self.T:
                reach[i, born - 1 :] = True
        return reach, np.zeros(self.T, dtype=np.int64)


def _summarize(prompt: str, model: str, sub_llm) -> tuple[str, int, int, float | None]:
    """The summary text and usage. The offline model is called in-process (the same `respond` the model router
    calls for "offline-sub"), so a replay of hundreds of compactions does not pay the router's one-time litellm
    import (15 s here); any other model goes through `sub_llm` (router, cache, cost)."""
    if model in ("offline", "offline-sub"):
        from ..engine import offline

        text = offline.respond("sub", [{"role": "user", "content": prompt}])
        return text, (len(prompt.encode()) + 3) // 4, (len(text.encode()) + 3) // 4, 0.0
    c = sub_llm(prompt, model=model)
    return c.text, c.tokens_in, c.tokens_out, c.cost_usd


def _since_per_turn(calls, L, T):
    """Per turn, the first row still in the window (the last compaction's cut, 0 before any)."""
    import numpy as np

    since = np.zeros(T, dtype=np.int64)
    for c in calls:
        since[c["turn"] - 1 :] = L[c["turn"] - 1]
    return since


_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_]{2,}")


def _query(text: str) -> str:
    words = _WORD.findall(text or "")
    seen, out = set(), []
    for w in words:
        if w.lower() not in seen:
            seen.add(w.lower())
            out.append(w)
    return " ".join(out[:12])
