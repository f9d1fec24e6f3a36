"""What each compaction (prune, rewind) removed from the window, and what among it looks like it mattered.

Found by search, each finding cited by message id:
- regex over the removed messages' text and reasoning: decisions, rejected approaches, constraints, failures
  (patterns below; English only; they find wording, not meaning);
- tool calls the format recorded as failed (`tool_status == "error"`): failed commands, missing files;
- `query=`: BM25 (`ctx.search`) hits among the removed messages;
- `sub_model=` (default "offline", the rule-based demo model; None = off): one sub-model call per event over the
  removed messages that the search found, asked for decisions, constraints and failed approaches; its `[id]`
  citations are kept only when the id is one of the removed messages.
"""

from __future__ import annotations

import re

from .display import losses_html, losses_text

PATTERNS: dict[str, str] = {
    "decision": r"\b(?:decid(?:e|ed|es|ing)|decision|settled on|agreed|chose|chosen|going with|we(?:'ll| will) "
    r"(?:use|keep|go with))\b",
    "rejected": r"\b(?:reject(?:ed|s|ing)?|instead(?: of)?|rather than|ruled out|abandon(?:ed)?|gave up|revert(?:ed)?|"
    r"won't work|doesn't work|did not work|not worth)\b",
    "constraint": r"\b(?:must(?: not)?|never|always|do not|don't|required?|requirement|constraint|cannot|can't)\b",
    "failure": r"\b(?:fail(?:ed|s|ure|ing)?|error|exception|traceback|not found|exit(?:ed)? (?:code|status) [1-9]\d*|"
    r"crash(?:ed)?|broke(?:n)?)\b",
}
MAX_PER_CATEGORY = 25  # findings kept per event and category (counts are always complete)
SUB_PROMPT_CHARS = 24_000
SUB_QUESTION = (
    "Which decisions were made, which approaches were rejected or failed, and which constraints were "
    "stated in these messages? Quote the sentences and cite the message ids."
)
_SENTENCE = re.compile(r"[^.!?\n]*(?:[.!?]|$)")


class Losses:
    """`summary`: one row per event (removed messages, tool outputs, tokens, findings per category);
    `findings`: one row per finding (event, category, id, position, role, excerpt, found_by);
    `removed`: the removed rows themselves (event, id, position, role, tool_name, tokens, ...);
    `sub_calls`: the sub-model calls made (event, model, tokens, cost)."""

    def __init__(self, xr, summary, findings, removed, sub_calls):
        self.xray, self.summary, self.findings, self.removed, self.sub_calls = xr, summary, findings, removed, sub_calls

    @property
    def nothing_removed(self) -> str | None:
        """When no event removed anything: a sentence saying so and why (None otherwise)."""
        s = self.summary
        if s.height and int(s["removed_messages"].sum()) + int(s["removed_tool_outputs"].sum()) > 0:
            return None
        xr = self.xray
        if s.height == 0:
            why = (
                f"no compaction, prune or rewind was found in this {xr.format} session, so every message stayed "
                f"in the model's window ({xr.turns.height:,} turns)"
            )
        else:
            kinds = ", ".join(sorted(set(s["kind"].to_list())))
            why = f"the {s.height} event(s) found ({kinds}) took no message or tool output out of the window"
        return f"Nothing was removed: {why}."

    def of(self, event: int):
        import polars as pl

        return self.findings.filter(pl.col("event") == event)

    def __repr__(self) -> str:
        return losses_text(self)

    def _repr_html_(self) -> str:
        return losses_html(self)


def losses(xr, *, event: int | None = None, query: str | None = None, sub_model: str | None = "offline") -> Losses:
    import polars as pl

    chosen = list(enumerate(xr._events, 1))
    if event is not None:
        xr.event(event)  # raises with the valid range
        chosen = [(event, xr._events[event - 1])]
    locs, evs = [], []
    for k, e in chosen:
        locs += e.removed
        evs += [k] * len(e.removed)
    kinds = {k: e.kind for k, e in chosen}
    removed = (
        pl.DataFrame({"event": evs, "local": locs}, schema={"event": pl.Int64, "local": pl.Int64})
        .join(xr.rows, on="local", how="left")
        .select(
            "event",
            "id",
            "position",
            "role",
            "origin",
            "tool_name",
            "tool_status",
            "tokens",
            "output_tokens",
            "text",
            "thinking",
            "tool_output",
            "ts",
        )
    )
    removed = removed.with_columns(pl.col("event").replace_strict(kinds, return_dtype=pl.String).alias("kind"))
    findings = _regex_findings(removed)
    if query:
        findings = pl.concat([findings, _bm25_findings(xr, removed, query)], how="vertical")
    sub_rows: list[dict] = []
    if sub_model:
        model_findings, sub_rows = _sub_model_findings(xr, removed, findings, sub_model)
        findings = pl.concat([findings, model_findings], how="vertical")
    findings = findings.sort("event", "position", "category")
    summary = _summary(chosen, removed, findings)
    sub_calls = pl.DataFrame(
        sub_rows,
        schema={
            "event": pl.Int64,
            "model": pl.String,
            "tokens_in": pl.Int64,
            "tokens_out": pl.Int64,
            "cost_usd": pl.Float64,
            "error": pl.String,
        },
    )
    return Losses(xr, summary, findings, removed.drop("text", "thinking", "tool_output"), sub_calls)


_FINDING_SCHEMA = {
    "event": "Int64",
    "category": "String",
    "id": "String",
    "position": "Int64",
    "role": "String",
    "excerpt": "String",
    "found_by": "String",
}


def _empty_findings():
    import polars as pl

    return pl.DataFrame(schema={k: getattr(pl, v) for k, v in _FINDING_SCHEMA.items()})


def _regex_findings(removed):
    """Candidates by polars (vectorised), excerpts by Python re on those rows only."""
    import polars as pl

    rows = []
    prose = pl.col("role") != "tool"
    text = pl.concat_str([pl.col("text").fill_null(""), pl.col("thinking").fill_null("")], separator="\n")
    for cat, pattern in PATTERNS.items():
        rx = re.compile(pattern, re.IGNORECASE)
        hits = removed.filter(prose & text.str.contains(f"(?i){pattern}")).with_columns(text.alias("_t"))
        per_event: dict[int, int] = {}
        for r in hits.select("event", "id", "position", "role", "_t").iter_rows(named=True):
            if per_event.get(r["event"], 0) >= MAX_PER_CATEGORY:
                continue
            m = rx.search(r["_t"])
            if m is None:
                continue
            per_event[r["event"]] = per_event.get(r["event"], 0) + 1
            rows.append(
                {
                    "event": r["event"],
                    "category": cat,
                    "id": r["id"],
                    "position": r["position"],
                    "role": r["role"],
                    "excerpt": _sentence(r["_t"], m.start()),
                    "found_by": "regex",
                }
            )
    errors = removed.filter((pl.col("role") == "tool") & (pl.col("tool_status") == "error"))
    for r in errors.select("event", "id", "position", "role", "text", "tool_output").iter_rows(named=True):
        out = (r["tool_output"] or "").strip().splitlines()
        tail = out[-1][:200] if out else ""
        rows.append(
            {
                "event": r["event"],
                "category": "failure",
                "id": r["id"],
                "position": r["position"],
                "role": r["role"],
                "excerpt": f"{r['text']} -> {tail}".strip(),
                "found_by": "tool_status",
            }
        )
    if not rows:
        return _empty_findings()
    return pl.DataFrame(rows, schema=_empty_findings().schema)


def _bm25_findings(xr, removed, query: str):
    import polars as pl

    where = dict(zip(removed["position"].to_list(), removed["event"].to_list(), strict=True))
    if not where:
        return _empty_findings()
    hits = xr.ctx.search(query, limit=max(50, min(len(where), 500)), mode="bm25")
    rows = []
    for s in hits:
        if s.position in where:
            rows.append(
                {
                    "event": where[s.position],
                    "category": "query",
                    "id": s.id,
                    "position": s.position,
                    "role": s.role,
                    "excerpt": s.excerpt(width=100),
                    "found_by": "bm25",
                }
            )
    return pl.DataFrame(rows, schema=_empty_findings().schema) if rows else _empty_findings()


def _sub_model_findings(xr, removed, findings, model: str):
    """One sub-model call per event over the removed messages the search flagged (all of them if none was)."""
    import polars as pl

    from ..engine.models import ModelError, sub_llm
    from ..engine.offline import _unbullet

    rows, calls = [], []
    by_event = findings.group_by("event").agg(pl.col("position").unique())
    flagged = {r["event"]: set(r["position"]) for r in by_event.iter_rows(named=True)}
    for (k,), part in removed.partition_by("event", as_dict=True, maintain_order=True).items():
        positions = [p for p in part["position"].to_list() if not flagged.get(k) or p in flagged[k]]
        if not positions:
            continue
        msgs = xr.ctx.filter(pl.col("position").is_in(positions))
        prompt = f"{SUB_QUESTION}\n\n{msgs.text(max_chars=SUB_PROMPT_CHARS)}"
        try:
            c = sub_llm(prompt, model=model)
        except ModelError as e:
            calls.append(
                {"event": k, "model": model, "tokens_in": 0, "tokens_out": 0, "cost_usd": None, "error": str(e)}
            )
            continue
        calls.append(
            {
                "event": k,
                "model": model,
                "tokens_in": c.tokens_in,
                "tokens_out": c.tokens_out,
                "cost_usd": c.cost_usd,
                "error": None,
            }
        )
        ids = dict(
            zip(part["id"].to_list(), zip(part["position"].to_list(), part["role"].to_list(), strict=True), strict=True)
        )
        for line in c.text.splitlines():
            m = re.match(r"\s*\[([^\]]+)\]\s*(.+)", _unbullet(line))  # "- [id] x" and "[id] - x" as "[id] x"
            if m and m.group(1) in ids:
                pos, role = ids[m.group(1)]
                rows.append(
                    {
                        "event": k,
                        "category": "sub_model",
                        "id": m.group(1),
                        "position": pos,
                        "role": role,
                        "excerpt": _unbullet(m.group(2)),
                        "found_by": f"sub_model:{model}",
                    }
                )
    frame = pl.DataFrame(rows, schema=_empty_findings().schema) if rows else _empty_findings()
    return frame, calls


def _summary(chosen, removed, findings):
    import polars as pl

    cats = [*PATTERNS, "query", "sub_model"]
    counts = {
        (r["event"], r["category"]): r["len"]
        for r in findings.group_by("event", "category").len().iter_rows(named=True)
    }
    recs = []
    for k, e in chosen:
        part = removed.filter(pl.col("event") == k)
        prune = e.clears  # outputs cleared, calls kept (prune, micro-compaction, context editing, masking)
        tok = part.select((pl.min_horizontal("output_tokens", "tokens") if prune else pl.col("tokens")).sum()).item()
        recs.append(
            {
                "event": k,
                "kind": e.kind,
                "how": e.how,
                "removed_messages": 0 if prune else part.height,
                "removed_tool_outputs": part.filter(pl.col("role") == "tool").height,
                "removed_tokens": int(tok or 0),
                **{c: counts.get((k, c), 0) for c in cats},
            }
        )
    schema = {
        "event": pl.Int64,
        "kind": pl.String,
        "how": pl.String,
        "removed_messages": pl.Int64,
        "removed_tool_outputs": pl.Int64,
        "removed_tokens": pl.Int64,
        **{c: pl.Int64 for c in cats},
    }
    return pl.DataFrame(recs, schema=schema)


def _sentence(text: str, at: int, width: int = 220) -> str:
    start = max(text.rfind(".", 0, at), text.rfind("\n", 0, at), text.rfind("!", 0, at), text.rfind("?", 0, at)) + 1
    ends = [i for i in (text.find(c, at) for c in ".!?\n") if i != -1]
    end = min(ends) + 1 if ends else len(text)
    s = " ".join(text[start:end].split())
    return s if len(s) <= width else s[: width - 1] + "…"
