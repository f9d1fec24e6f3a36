"""The compare widget: two runs side by side (`compare_view(a, b)`), an anywidget on the trace view's front-end.

Saved like the trace view: besides the widget, its output holds the comparison as a static
`application/vnd.rlm-jupyter.compare+json` bundle (texts cut to the notebook cap), which the JupyterLab extension
renders with no kernel (labextension/src/labext.ts; in trusted notebooks fallback.ts shows it while the widget
cannot render), and the HTML table of `rlm_jupyter.comparison` for readers without the extension (GitHub).
"""

from __future__ import annotations

import json

import anywidget
import traitlets

from .static_bundle import BUNDLE_TEXT_LIMIT, LIVE_TEXT_LIMIT, split_bundle
from .widget import _esm

COMPARE_MIME = "application/vnd.rlm-jupyter.compare+json"
FORMAT = "rlm-jupyter-compare"
VERSION = 1


class CompareView(anywidget.AnyWidget):
    """Two runs side by side (data: `rlm_jupyter.comparison.compare(a, b).to_dict()`)."""

    _esm = traitlets.Unicode().tag(sync=True)
    _kind = traitlets.Unicode("compare").tag(sync=True)
    comparison = traitlets.Dict().tag(sync=True)

    def __init__(self, comparison: dict, **kw):
        super().__init__(_esm=_esm(), comparison=comparison, **kw)

    def bundle(self, limit: int = BUNDLE_TEXT_LIMIT) -> dict:
        """The static payload: format, version and the comparison with long texts cut to `limit`."""
        return {"format": FORMAT, "version": VERSION, **_cut_comparison(self.comparison, limit)}

    def _repr_mimebundle_(self, **kwargs):
        from ..comparison import html_table

        data, meta = split_bundle(super()._repr_mimebundle_(**kwargs))
        payload = self.bundle()
        data[COMPARE_MIME] = payload
        data["text/html"] = html_table(payload)
        data["text/plain"] = plain_text(payload)
        return data, meta


def plain_text(c: dict) -> str:
    d = c.get("diverged_at")
    la, lb = (c.get("labels") or ["A", "B"])[:2]
    a, b = c.get("a") or {}, c.get("b") or {}
    lines = [
        f"<CompareView {la} vs {lb}: {'diverge at step ' + str(d['step']) if d else 'same steps'}; "
        f"answers {'equal' if c.get('same_answer') else 'differ'}>"
    ]
    for label, side in ((la, a), (lb, b)):
        lines.append(
            f"{label}: {side.get('steps', 0)} steps, "
            f"{(side.get('tokens_in') or 0) + (side.get('tokens_out') or 0):,} tokens; "
            f"answer: {(side.get('answer') or '')[:300]}"
        )
    return "\n".join(lines)


def _cut_comparison(d: dict, limit: int = LIVE_TEXT_LIMIT) -> dict:
    """Cut long code/output/response/answer texts so a compare widget stays small in the notebook."""

    def cut(v):
        if isinstance(v, str) and len(v) > limit:
            return v[:limit] + f"… (cut: {len(v):,} characters)"
        if isinstance(v, list):
            return [cut(x) for x in v]
        if isinstance(v, dict):
            return {k: cut(x) for k, x in v.items()}
        return v

    return cut(d)


def compare_view(run_a, run_b, labels: tuple[str, str] | None = None) -> CompareView:
    """A side-by-side compare widget: answers, steps (the first divergent step marked), tokens, cost, time and
    which snippets each run retrieved. labels: what to call the runs (default: as `rj.compare` names them)."""
    from ..comparison import compare

    data = _cut_comparison(compare(run_a, run_b, labels=labels).to_dict())
    return CompareView(json.loads(json.dumps(data, default=str)))
