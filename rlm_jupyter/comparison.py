"""Compare two runs: answers, steps, tokens, cost, time, the snippets each retrieved, and where they diverge.

    cmp = rj.compare(run_a, run_b)     # Runs (or Traces)
    cmp                                # in a notebook: a static HTML table
    cmp.diverged_at                    # {"step": 2, "reason": "code"} or None (steps count from 1, as "#1")
    cmp.to_dict()                      # JSON-able; the compare widget renders this

Steps are the root run's steps, matched by position, and numbered from 1 as the view numbers them ("#1";
`StepSide.index` is the trace's own 0-based field). Step i diverges when its code differs (blocks compared with
trailing whitespace ignored), else when its output differs, else (neither ran code) when the response differs;
a run with fewer steps diverges at the first step it lacks. Snippet ids are the `result_ids` of every context
query in the run's call tree (child runs included), in first-seen order.
"""

from __future__ import annotations

import html
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class StepSide:
    index: int  # the trace's 0-based step index (the step a user reads is index + 1)
    code: list[str]
    output: str
    status: str | None  # worst output status of the step's blocks (ok | error | killed), None with no code
    response: str
    tokens_in: int
    tokens_out: int
    replayed: bool = False


@dataclass
class RunSide:
    run_id: str | None
    question: str
    model: str | None
    status: str | None
    answer: str | None
    steps: int
    sub_calls: int
    tokens_in: int
    tokens_out: int
    cost_usd: float
    wall_s: float | None
    snippet_ids: list[str]


@dataclass
class Comparison:
    a: RunSide
    b: RunSide
    steps: list[tuple[StepSide | None, StepSide | None]]
    # {"step": n (1 = the first step), "reason": "code" | "output" | "response" | "length"}
    diverged_at: dict | None
    snippets: dict = field(default_factory=dict)  # {"both", "only_a", "only_b", "jaccard"}
    labels: tuple[str, str] = ("A", "B")  # what the two runs are called in tables and views

    @property
    def same_answer(self) -> bool:
        return (self.a.answer or "").strip() == (self.b.answer or "").strip()

    def to_dict(self) -> dict:
        return {
            "a": asdict(self.a),
            "b": asdict(self.b),
            "same_answer": self.same_answer,
            "diverged_at": self.diverged_at,
            "snippets": self.snippets,
            "labels": list(self.labels),
            "steps": [
                {"index": i, "step": i + 1, "a": asdict(x) if x else None, "b": asdict(y) if y else None}
                for i, (x, y) in enumerate(self.steps)
            ],
        }

    def __repr__(self) -> str:
        d = self.diverged_at
        where = f"diverge at step {d['step']} ({d['reason']})" if d else "same steps"
        return (
            f"<Comparison: {where}; answers {'equal' if self.same_answer else 'differ'}; steps "
            f"{self.a.steps} vs {self.b.steps}; tokens {self.a.tokens_in + self.a.tokens_out:,} vs "
            f"{self.b.tokens_in + self.b.tokens_out:,}; snippets {len(self.snippets['both'])} shared, "
            f"{len(self.snippets['only_a'])} only A, {len(self.snippets['only_b'])} only B>"
        )

    def _repr_html_(self) -> str:
        return html_table(self.to_dict())


def compare(run_a, run_b, labels: tuple[str, str] | None = None) -> Comparison:
    """Compare two runs (`Run` objects from `rj.rlm` / `rj.rerun`, or `Trace`s). labels: what to call them
    (default: "run A" / "run B" with their model, a re-run says where it came from)."""
    a, b = _side(run_a), _side(run_b)
    steps_a, steps_b = _steps(_trace(run_a)), _steps(_trace(run_b))
    pairs = [
        (steps_a[i] if i < len(steps_a) else None, steps_b[i] if i < len(steps_b) else None)
        for i in range(max(len(steps_a), len(steps_b)))
    ]
    sa, sb = set(a.snippet_ids), set(b.snippet_ids)
    union = sa | sb
    snippets = {
        "both": [i for i in a.snippet_ids if i in sb],
        "only_a": [i for i in a.snippet_ids if i not in sb],
        "only_b": [i for i in b.snippet_ids if i not in sa],
        "jaccard": round(len(sa & sb) / len(union), 4) if union else None,
    }
    if labels is None:
        labels = (_label("A", run_a, a), _label("B", run_b, b))
    return Comparison(
        a=a,
        b=b,
        steps=pairs,
        diverged_at=_divergence(pairs),
        snippets=snippets,
        labels=(str(labels[0]), str(labels[1])),
    )


def _label(letter: str, run, side: RunSide) -> str:
    root = _trace(run).root or {}
    r = root.get("rerun_of")
    if isinstance(r, dict):
        return f"run {letter}: re-run from step {int(r.get('step') or 0) + 1}" + (
            f", {r['edited']} edited" if r.get("edited") else ""
        )
    what = ", ".join(x for x in (side.model, root.get("mode") if root.get("mode") not in (None, "rlm") else None) if x)
    return f"run {letter} ({what})" if what else f"run {letter}"


# ---- reading one run ----------------------------------------------------------------------------------------------


def _trace(run):
    return getattr(run, "trace", run)


def _side(run) -> RunSide:
    trace = _trace(run)
    root = trace.root or {}
    rid = root.get("id")
    is_run = run is not trace
    usage = run.usage if is_run else trace.usage()
    ends = trace.children(rid, "run_end") if rid else []
    status = run.status if is_run else (ends[-1].get("status") if ends else None)
    answer = run.answer if is_run else trace.answer
    wall = trace.wall_s(rid) if rid else None  # the view's definition (trace/model.py), not the run's clock
    tree = [e for _, e in trace.walk(rid)] if rid else []
    snippet_ids: dict[str, None] = {}
    for e in tree:
        if e["type"] == "query":
            for i in e.get("result_ids") or []:
                snippet_ids.setdefault(str(i), None)
    return RunSide(
        run_id=rid,
        question=root.get("question") or "",
        model=root.get("model"),
        status=status,
        answer=answer,
        steps=len(trace.steps(rid)) if rid else 0,
        sub_calls=sum(1 for e in tree if e["type"] == "sub_call"),
        tokens_in=int(usage.get("tokens_in") or 0),
        tokens_out=int(usage.get("tokens_out") or 0),
        cost_usd=float(usage.get("cost_usd") or 0.0),
        wall_s=wall,
        snippet_ids=list(snippet_ids),
    )


_RANK = {"ok": 0, "error": 1, "killed": 2}


def _steps(trace) -> list[StepSide]:
    out = []
    for s in sorted(trace.steps(), key=lambda s: s.get("index", 0)):
        codes = trace.children(s["id"], "code")
        outputs = [o for c in codes for o in trace.children(c["id"], "output")]
        statuses = [o.get("status") for o in outputs if o.get("status")]
        out.append(
            StepSide(
                index=s.get("index", len(out)),
                code=[c.get("code") or "" for c in codes],
                output="".join((o.get("stdout") or "") + (o.get("stderr") or "") for o in outputs),
                status=max(statuses, key=lambda x: _RANK.get(x, 3)) if statuses else None,
                response=s.get("response") or "",
                tokens_in=s.get("tokens_in") or 0,
                tokens_out=s.get("tokens_out") or 0,
                replayed=bool(s.get("replayed")),
            )
        )
    return out


def _divergence(pairs: list[tuple[StepSide | None, StepSide | None]]) -> dict | None:
    for i, (x, y) in enumerate(pairs, start=1):  # steps a user reads count from 1
        if x is None or y is None:
            return {"step": i, "reason": "length"}
        if [c.rstrip() for c in x.code] != [c.rstrip() for c in y.code]:
            return {"step": i, "reason": "code"}
        if x.output != y.output:
            return {"step": i, "reason": "output"}
        if not x.code and x.response.strip() != y.response.strip():
            return {"step": i, "reason": "response"}
    return None


# ---- the static table -------------------------------------------------------------------------------------------
# Inline styles only (a notebook's <style> is dropped where it is not trusted), and only what JupyterLab's sanitizer
# keeps there: colours as rgb/rgba, not var(--jp-…) or color-mix. So no fixed background colour: the divergent step
# is a translucent orange laid over whatever the theme's background is, the text keeps the theme's colour, and the
# table reads in light and dark themes. Code never wraps mid-token (it scrolls), prose wraps at spaces; every cell is
# left-aligned (JupyterLab right-aligns table cells).

_CELL = "border:1px solid rgba(128,128,128,0.35);padding:3px 6px;vertical-align:top;text-align:left"
_MARK = "background-color:rgba(245,124,0,0.2);border-left:3px solid rgb(245,124,0)"
_CODE = (
    "margin:0;white-space:pre;overflow:auto;max-height:14em;max-width:100%;text-align:left;font-size:12px;"
    "background:transparent"
)
_PROSE = (
    "margin:0;white-space:pre-wrap;word-break:normal;overflow-wrap:normal;overflow:auto;max-height:12em;"
    "max-width:100%;text-align:left;font-size:12px;background:transparent"
)
# fixed layout: the two runs get half each and long code scrolls inside its cell instead of widening the table
_TABLE = '<table style="border-collapse:collapse;margin:4px 0 10px;table-layout:fixed;width:100%">'
_KEY_COL = '<colgroup><col style="width:{}"><col style="width:auto"><col style="width:auto"></colgroup>'


def _e(value: Any, limit: int = 2_000) -> str:
    text = "" if value is None else str(value)
    if len(text) > limit:
        text = text[:limit] + f"… ({len(text):,} characters)"
    return html.escape(text)


def _td(body: Any, extra: str = "", tag: str = "td") -> str:
    return f'<{tag} style="{_CELL};{extra}">{body}</{tag}>'


def html_table(d: dict) -> str:
    """The comparison (`Comparison.to_dict()`) as escaped HTML tables: what each run did and said, its steps side by
    side (the first divergent step marked), the snippets each retrieved."""
    a, b = d["a"], d["b"]
    la, lb = (d.get("labels") or ["A", "B"])[:2]
    same = d.get("same_answer")
    rows = [
        (
            "answer",
            f'<pre style="{_PROSE}">{_e(a.get("answer"))}</pre>',
            f'<pre style="{_PROSE}">{_e(b.get("answer"))}</pre>',
            not same,
        ),
        ("status", _e(a.get("status")), _e(b.get("status")), None),
        ("model", _e(a.get("model")), _e(b.get("model")), None),
        ("steps", a.get("steps"), b.get("steps"), None),
        ("sub-calls", a.get("sub_calls"), b.get("sub_calls"), None),
        (
            "tokens in / out",
            f"{a.get('tokens_in', 0):,} / {a.get('tokens_out', 0):,}",
            f"{b.get('tokens_in', 0):,} / {b.get('tokens_out', 0):,}",
            None,
        ),
        ("cost (USD)", f"{a.get('cost_usd') or 0:.4f}", f"{b.get('cost_usd') or 0:.4f}", None),
        ("time (s)", _e(a.get("wall_s")), _e(b.get("wall_s")), None),
        ("snippets retrieved", len(a.get("snippet_ids") or []), len(b.get("snippet_ids") or []), None),
    ]
    parts = ['<div class="rlmj-cmp" style="text-align:left">', f"<b>Question</b>: {_e(a.get('question'), 500)}"]
    if b.get("question") != a.get("question"):
        parts.append(f" <i>vs</i> {_e(b.get('question'), 500)}")
    parts.append(
        _TABLE
        + _KEY_COL.format("11em")
        + "<tr>"
        + _td("", tag="th")
        + _td(_e(la), tag="th")
        + _td(_e(lb), tag="th")
        + "</tr>"
    )
    for k, x, y, differ in rows:
        differ = differ if differ is not None else str(x) != str(y)
        mark = _MARK if differ else ""
        parts.append("<tr>" + _td(k, tag="th") + _td(x, mark) + _td(y, mark) + "</tr>")
    parts.append("</table>")
    div = d.get("diverged_at")
    # step numbers as diverged_at gives them (the numbering a user reads is settled there, not here)
    parts.append(
        f"<b>First divergence</b>: step {div['step']} ({_e(div['reason'])})"
        if div
        else "<b>First divergence</b>: none (same steps)"
    )
    parts.append(
        _TABLE
        + _KEY_COL.format("4em")
        + "<tr>"
        + _td("step", tag="th")
        + _td(f"{_e(la)}: code (or reply)", tag="th")
        + _td(f"{_e(lb)}: code (or reply)", tag="th")
        + "</tr>"
    )
    for i, s in enumerate(d.get("steps") or [], start=1):
        mark = _MARK if div and i == div["step"] else ""
        parts.append(
            "<tr>" + _td(i, mark) + _td(_step_cell(s.get("a")), mark) + _td(_step_cell(s.get("b")), mark) + "</tr>"
        )
    parts.append("</table>")
    s = d.get("snippets") or {}
    jac = "n/a" if s.get("jaccard") is None else f"{s['jaccard']:.2f}"
    both, only_a, only_b = s.get("both") or [], s.get("only_a") or [], s.get("only_b") or []
    parts.append(
        f"<b>Snippets</b>: {len(both)} in both, {len(only_a)} only in {_e(la)}, {len(only_b)} only in "
        f"{_e(lb)} (Jaccard {jac})"
    )
    parts.append(
        _TABLE
        + "<tr>"
        + _td(f"only in {_e(la)}", tag="th")
        + _td("in both", tag="th")
        + _td(f"only in {_e(lb)}", tag="th")
        + "</tr><tr>"
    )
    parts += [_td(f'<pre style="{_CODE}">{_e(chr(10).join(ids[:50]))}</pre>') for ids in (only_a, both, only_b)]
    parts.append("</tr></table></div>")
    return "".join(parts)


def _step_cell(s: dict | None) -> str:
    if not s:
        return "<i>(no step)</i>"
    tag = " <i>(replayed)</i>" if s.get("replayed") else ""
    status = f" [{_e(s.get('status'))}]" if s.get("status") and s.get("status") != "ok" else ""
    if s.get("code"):
        return f'<pre style="{_CODE}">{_e(chr(10).join(s["code"]))}</pre>{status}{tag}'
    return f'<i>reply</i><pre style="{_PROSE}">{_e(s.get("response"))}</pre>{status}{tag}'
