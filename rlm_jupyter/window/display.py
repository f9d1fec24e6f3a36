"""Text and HTML views of the X-ray objects (all text escaped)."""

from __future__ import annotations

from html import escape


def _n(v) -> str:
    return "—" if v is None else f"{v:,}" if isinstance(v, int) else str(v)


def _cut(s, width: int) -> str:
    s = " ".join(str(s or "").split())
    return s if len(s) <= width else s[: width - 1] + "…"


def xray_text(xr) -> str:
    t = xr.turns
    peak = t["context_tokens"].max() if t.height else None
    lines = [
        f"<XRay {xr.session_id} ({xr.format}{', ' + xr.producer if xr.producer else ''}): {t.height} turns, "
        f"{xr.events.height} events, peak recorded context {_n(peak)} tokens, limit {_n(xr.limit)}>"
    ]
    for r in xr.events.iter_rows(named=True):
        lines.append(
            f"  #{r['event']} {r['kind']} before turn {_n(r['turn'])}: removed {r['removed_messages']} "
            f"message(s), {r['removed_tool_outputs']} tool output(s), ~{r['removed_tokens']:,} tokens; "
            f"{_n(r['pre_tokens'])} -> {_n(r['post_tokens'])} ({r['how']})"
        )
    lines += [f"  note: {n}" for n in xr.notes]
    return "\n".join(lines)


def xray_html(xr) -> str:
    rows = "".join(
        f"<tr><td>#{r['event']}</td><td>{escape(r['kind'])}</td><td>{_n(r['turn'])}</td>"
        f"<td>{r['removed_messages']}</td><td>{r['removed_tool_outputs']}</td><td>{r['removed_tokens']:,}</td>"
        f"<td>{_n(r['pre_tokens'])} → {_n(r['post_tokens'])}</td><td>{escape(r['how'])}</td>"
        f"<td>{escape(r['note'] or '')}</td></tr>"
        for r in xr.events.iter_rows(named=True)
    )
    notes = "".join(f"<li>{escape(n)}</li>" for n in xr.notes)
    t = xr.turns
    return (
        f"<div class='rlm-xray'><b>X-ray</b> {escape(xr.session_id)} ({escape(xr.format)} "
        f"{escape(xr.producer)}): {t.height} turns, {xr.events.height} events, limit {_n(xr.limit)}"
        "<table><tr><th>event</th><th>kind</th><th>turn</th><th>messages</th><th>tool outputs</th>"
        f"<th>tokens</th><th>context before → after</th><th>how</th><th>note</th></tr>{rows}</table>"
        f"{'<ul>' + notes + '</ul>' if notes else ''}"
        "<small>xr.plot(), xr.window(turn), xr.losses(), xr.ask(question)</small></div>"
    )


def window_text(w) -> str:
    head = (
        f"<Window turn {w.turn if w.turn is not None else 'end'}: {len(w)} messages, ~{w.tokens:,} est. tokens"
        f"{f', recorded context {w.context_tokens:,}' if w.context_tokens is not None else ''}; "
        f"{w.dropped.height} earlier messages not in it{'; flags ' + ', '.join(w.flags) if w.flags else ''}>"
    )
    body = [
        f"  [{r['position']}] {r['role']:<9} {r['state']:<6} {_cut(r['text'], 90)}"
        for r in w.messages.head(12).iter_rows(named=True)
    ]
    more = [f"  … {len(w) - 12} more"] if len(w) > 12 else []
    return "\n".join([head, *body, *more])


def window_html(w) -> str:
    def rows(frame, limit=50):
        return "".join(
            f"<tr><td>{r['position']}</td><td>{escape(r['id'] or '')}</td><td>{escape(r['role'] or '')}</td>"
            f"<td>{escape(r['state'])}</td><td>{escape(r['removed_by'] or '')}</td><td>{r['tokens']:,}</td>"
            f"<td>{escape(_cut(r['text'], 140))}</td></tr>"
            for r in frame.head(limit).iter_rows(named=True)
        )

    head = "<tr><th>pos</th><th>id</th><th>role</th><th>state</th><th>removed by</th><th>tokens</th><th>text</th></tr>"
    return (
        f"<div class='rlm-xray-window'><b>{escape(window_text(w).splitlines()[0])}</b>"
        f"<table>{head}{rows(w.messages)}</table>"
        f"<details><summary>{w.dropped.height} not in the window</summary><table>{head}{rows(w.dropped)}</table>"
        "</details></div>"
    )


def losses_text(lo) -> str:
    lines = [f"<Losses of {lo.xray.session_id}: {lo.summary.height} event(s), {lo.findings.height} finding(s)>"]
    if lo.nothing_removed:
        lines.append(f"  {lo.nothing_removed}")
    for s in lo.summary.iter_rows(named=True):
        lines.append(
            f"  #{s['event']} {s['kind']} ({s['how']}): {s['removed_messages']} messages, "
            f"{s['removed_tool_outputs']} tool outputs, ~{s['removed_tokens']:,} tokens removed"
        )
        part = lo.of(s["event"])
        for f in part.head(8).iter_rows(named=True):
            lines.append(f"    {f['category']:<10} [{f['id']}] {_cut(f['excerpt'], 100)}")
        if part.height > 8:
            lines.append(f"    … {part.height - 8} more (lo.of({s['event']}))")
    return "\n".join(lines)


def losses_html(lo) -> str:
    out = [f"<div class='rlm-xray-losses'><b>Losses of {escape(lo.xray.session_id)}</b>"]
    if lo.nothing_removed:
        out.append(f"<p>{escape(lo.nothing_removed)}</p>")
    for s in lo.summary.iter_rows(named=True):
        items = "".join(
            f"<tr><td>{escape(f['category'])}</td><td><code>{escape(f['id'])}</code></td>"
            f"<td>{escape(f['role'] or '')}</td><td>{escape(_cut(f['excerpt'], 200))}</td>"
            f"<td>{escape(f['found_by'])}</td></tr>"
            for f in lo.of(s["event"]).head(50).iter_rows(named=True)
        )
        out.append(
            f"<details open><summary>#{s['event']} {escape(s['kind'])} ({escape(s['how'])}): "
            f"{s['removed_messages']} messages, {s['removed_tool_outputs']} tool outputs, "
            f"~{s['removed_tokens']:,} tokens removed</summary><table><tr><th>category</th><th>id</th>"
            f"<th>role</th><th>excerpt</th><th>found by</th></tr>{items}</table></details>"
        )
    out.append("</div>")
    return "".join(out)


def answers_text(ans) -> str:
    lines = [f"<XRay ask: {ans.question!r}>"]
    for a in ans.answers:
        ev = ", ".join(f"{i}{'' if w else ' (not in window)'}" for i, w in zip(a.evidence, a.in_window, strict=True))
        lines += [
            f"  {a.label}: {a.context_messages} messages, ~{a.context_tokens:,} tokens",
            f"    answer: {_cut(a.answer, 300)}",
            f"    evidence: {ev or '—'}",
            f"    tokens in/out {a.tokens_in:,}/{a.tokens_out:,}, ${a.cost_usd:.4f}, {a.seconds:.2f} s, {a.status}",
        ]
    return "\n".join(lines)


def answers_html(ans) -> str:
    cells = []
    for a in ans.answers:
        ev = "".join(
            f"<li><code>{escape(i)}</code>{'' if w else ' <i>not in the window</i>'}</li>"
            for i, w in zip(a.evidence, a.in_window, strict=True)
        )
        cells.append(
            f"<td style='vertical-align:top'><b>{escape(a.label)}</b><br>"
            f"<small>{a.context_messages} messages, ~{a.context_tokens:,} tokens</small>"
            f"<p style='white-space:pre-wrap'>{escape(a.answer or '(no answer)')}</p>"
            f"<small>evidence</small><ul>{ev or '<li>none cited</li>'}</ul>"
            f"<small>tokens in/out {a.tokens_in:,}/{a.tokens_out:,} · ${a.cost_usd:.4f} · "
            f"{a.seconds:.2f} s · {escape(a.status)}</small></td>"
        )
    return (
        f"<div class='rlm-xray-ask'><b>{escape(ans.question)}</b>"
        f"<table style='table-layout:fixed;width:100%'><tr>{''.join(cells)}</tr></table></div>"
    )
