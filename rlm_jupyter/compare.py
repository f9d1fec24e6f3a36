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
import sys
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class StepSide:
    index: int                # the trace's 0-based step index (the step a user reads is index + 1)
    code: list[str]
    output: str
    status: str | None        # worst output status of the step's blocks (ok | error | killed), None with no code
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

    @property
    def same_answer(self) -> bool:
        return (self.a.answer or "").strip() == (self.b.answer or "").strip()

    def to_dict(self) -> dict:
        return {"a": asdict(self.a), "b": asdict(self.b), "same_answer": self.same_answer,
                "diverged_at": self.diverged_at, "snippets": self.snippets,
                "steps": [{"index": i, "step": i + 1, "a": asdict(x) if x else None, "b": asdict(y) if y else None}
                          for i, (x, y) in enumerate(self.steps)]}

    def __repr__(self) -> str:
        d = self.diverged_at
        where = f"diverge at step {d['step']} ({d['reason']})" if d else "same steps"
        return (f"<Comparison: {where}; answers {'equal' if self.same_answer else 'differ'}; steps "
                f"{self.a.steps} vs {self.b.steps}; tokens {self.a.tokens_in + self.a.tokens_out:,} vs "
                f"{self.b.tokens_in + self.b.tokens_out:,}; snippets {len(self.snippets['both'])} shared, "
                f"{len(self.snippets['only_a'])} only A, {len(self.snippets['only_b'])} only B>")

    def _repr_html_(self) -> str:
        return _html(self)


def compare(run_a, run_b) -> Comparison:
    """Compare two runs (`Run` objects from `rj.rlm` / `rj.rerun`, or `Trace`s)."""
    a, b = _side(run_a), _side(run_b)
    steps_a, steps_b = _steps(_trace(run_a)), _steps(_trace(run_b))
    pairs = [(steps_a[i] if i < len(steps_a) else None, steps_b[i] if i < len(steps_b) else None)
             for i in range(max(len(steps_a), len(steps_b)))]
    sa, sb = set(a.snippet_ids), set(b.snippet_ids)
    union = sa | sb
    snippets = {"both": [i for i in a.snippet_ids if i in sb], "only_a": [i for i in a.snippet_ids if i not in sb],
                "only_b": [i for i in b.snippet_ids if i not in sa],
                "jaccard": round(len(sa & sb) / len(union), 4) if union else None}
    return Comparison(a=a, b=b, steps=pairs, diverged_at=_divergence(pairs), snippets=snippets)


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
    wall = trace.wall_s(rid) if rid else None   # the view's definition (trace/model.py), not the run's clock
    tree = [e for _, e in trace.walk(rid)] if rid else []
    snippet_ids: dict[str, None] = {}
    for e in tree:
        if e["type"] == "query":
            for i in e.get("result_ids") or []:
                snippet_ids.setdefault(str(i), None)
    return RunSide(run_id=rid, question=root.get("question") or "", model=root.get("model"), status=status,
                   answer=answer, steps=len(trace.steps(rid)) if rid else 0,
                   sub_calls=sum(1 for e in tree if e["type"] == "sub_call"),
                   tokens_in=int(usage.get("tokens_in") or 0), tokens_out=int(usage.get("tokens_out") or 0),
                   cost_usd=float(usage.get("cost_usd") or 0.0), wall_s=wall, snippet_ids=list(snippet_ids))


_RANK = {"ok": 0, "error": 1, "killed": 2}


def _steps(trace) -> list[StepSide]:
    out = []
    for s in sorted(trace.steps(), key=lambda s: s.get("index", 0)):
        codes = trace.children(s["id"], "code")
        outputs = [o for c in codes for o in trace.children(c["id"], "output")]
        statuses = [o.get("status") for o in outputs if o.get("status")]
        out.append(StepSide(index=s.get("index", len(out)), code=[c.get("code") or "" for c in codes],
                            output="".join((o.get("stdout") or "") + (o.get("stderr") or "") for o in outputs),
                            status=max(statuses, key=lambda x: _RANK.get(x, 3)) if statuses else None,
                            response=s.get("response") or "", tokens_in=s.get("tokens_in") or 0,
                            tokens_out=s.get("tokens_out") or 0, replayed=bool(s.get("replayed"))))
    return out


def _divergence(pairs: list[tuple[StepSide | None, StepSide | None]]) -> dict | None:
    for i, (x, y) in enumerate(pairs, start=1):   # steps a user reads count from 1
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

_CSS = ("<style>.rlmj-cmp table{border-collapse:collapse;margin:4px 0 10px}.rlmj-cmp td,.rlmj-cmp th{border:1px "
        "solid #ccc;padding:3px 6px;vertical-align:top;text-align:left}.rlmj-cmp pre{margin:0;white-space:pre-wrap;"
        "max-height:12em;overflow:auto;font-size:12px}.rlmj-cmp .div{background:#fff3cd}</style>")


def _e(value: Any, limit: int = 2_000) -> str:
    text = "" if value is None else str(value)
    if len(text) > limit:
        text = text[:limit] + f"… ({len(text):,} characters)"
    return html.escape(text)


def _html(c: Comparison) -> str:
    a, b = c.a, c.b
    rows = [("answer", f"<pre>{_e(a.answer)}</pre>", f"<pre>{_e(b.answer)}</pre>"),
            ("status", _e(a.status), _e(b.status)), ("model", _e(a.model), _e(b.model)),
            ("steps", a.steps, b.steps), ("sub-calls", a.sub_calls, b.sub_calls),
            ("tokens in / out", f"{a.tokens_in:,} / {a.tokens_out:,}", f"{b.tokens_in:,} / {b.tokens_out:,}"),
            ("cost (USD)", f"{a.cost_usd:.4f}", f"{b.cost_usd:.4f}"),
            ("time (s)", _e(a.wall_s), _e(b.wall_s)),
            ("snippets retrieved", len(a.snippet_ids), len(b.snippet_ids))]
    parts = [_CSS, '<div class="rlmj-cmp">', f"<b>Question</b>: {_e(a.question, 500)}"]
    if b.question != a.question:
        parts.append(f" <i>vs</i> {_e(b.question, 500)}")
    parts.append("<table><tr><th></th><th>A</th><th>B</th></tr>")
    parts += [f"<tr><th>{k}</th><td>{x}</td><td>{y}</td></tr>" for k, x, y in rows]
    parts.append("</table>")
    d = c.diverged_at
    parts.append(f"<b>First divergence</b>: step {d['step']} ({_e(d['reason'])})" if d else
                 "<b>First divergence</b>: none (same steps)")
    parts.append("<table><tr><th>step</th><th>A code</th><th>B code</th></tr>")
    for i, (x, y) in enumerate(c.steps, start=1):
        cls = ' class="div"' if d and i == d["step"] else ""
        parts.append(f"<tr{cls}><td>{i}</td><td>{_step_cell(x)}</td><td>{_step_cell(y)}</td></tr>")
    parts.append("</table>")
    s = c.snippets
    jac = "n/a" if s["jaccard"] is None else f"{s['jaccard']:.2f}"
    parts.append(f"<b>Snippets</b>: {len(s['both'])} in both, {len(s['only_a'])} only in A, "
                 f"{len(s['only_b'])} only in B (Jaccard {jac})")
    parts.append("<table><tr><th>only A</th><th>both</th><th>only B</th></tr><tr>")
    parts += [f"<td><pre>{_e(chr(10).join(s[k][:50]))}</pre></td>" for k in ("only_a", "both", "only_b")]
    parts.append("</tr></table></div>")
    return "".join(parts)


def _step_cell(s: StepSide | None) -> str:
    if s is None:
        return "<i>(no step)</i>"
    code = "\n\n".join(s.code) if s.code else s.response
    tag = " <i>(replayed)</i>" if s.replayed else ""
    status = f" [{_e(s.status)}]" if s.status and s.status != "ok" else ""
    return f"<pre>{_e(code)}</pre>{status}{tag}"


class _CallableModule(type(sys.modules[__name__])):
    """`rj.compare(...)` is the documented call, and Python binds this module to the same name
    `rlm_jupyter.compare` as soon as it is imported (so `rj.compare` worked once, then was the module): a callable
    module keeps both working, as in rlm_jupyter/rlm/__init__.py."""

    def __call__(self, *args, **kwargs):
        return compare(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
