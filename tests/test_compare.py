"""rj.compare on real runs over a real sample: an offline run against a re-run of it with an edited step, and two
scripted runs that take different paths."""

from __future__ import annotations

import json

import pytest

from rlm_jupyter.comparison import compare
from rlm_jupyter.engine.loop import rlm
from rlm_jupyter.engine.models import Models
from rlm_jupyter.engine.rerun import rerun
from rlm_jupyter.testing.scripted import repl, script_model

CLAUDE = "claude-code/codemie-session-9eda1058.jsonl"
REJECTED_WRITE = "toolu_bdrk_01SKk2dM5q1c8gecaoatnwJn"  # the Write the user rejected (checked by hand in the file)


def test_an_offline_run_against_its_rerun_with_an_edited_last_step(ctx):
    a = rlm("Which write was rejected?", ctx)
    assert [s["index"] for s in a.trace.steps()] == [0, 1, 2]
    b = rerun(a, step=3, response="FINAL(I checked by hand: available-tools.md)", context=ctx)
    c = compare(a, b)
    # steps 1 and 2 were replayed: same code, same output; step 3 ran code in A and none in B
    assert c.diverged_at == {"step": 3, "reason": "code"}
    assert c.steps[0][1].replayed and not c.steps[0][0].replayed
    assert c.a.answer == a.answer and c.b.answer == "I checked by hand: available-tools.md" and not c.same_answer
    assert (c.a.steps, c.b.steps) == (3, 3)
    assert (c.a.tokens_in, c.a.tokens_out) == (a.usage["tokens_in"], a.usage["tokens_out"])
    assert c.b.tokens_in == c.b.tokens_out == 0  # everything in B was replayed or typed
    # A's step 2 looked its cited ids up (get_by_id); B never ran that code, so those ids are only A's
    step2_code = a.trace.children(a.trace.steps()[2]["id"], "code")
    looked_up = [i for code in step2_code for q in a.trace.children(code["id"], "query") for i in q["result_ids"]]
    assert looked_up and REJECTED_WRITE in c.a.snippet_ids and REJECTED_WRITE in c.b.snippet_ids
    assert set(c.snippets["both"]) == set(c.b.snippet_ids)
    assert set(c.snippets["only_a"]) == set(looked_up) - set(c.b.snippet_ids)
    assert c.snippets["only_b"] == []
    d = c.to_dict()
    assert json.loads(json.dumps(d))["diverged_at"]["step"] == 3 and len(d["steps"]) == 3
    assert [s["step"] for s in d["steps"]] == [1, 2, 3] and [s["index"] for s in d["steps"]] == [0, 1, 2]


def test_two_scripted_runs_diverging_at_a_step_with_counts_and_a_safe_table(ctx, tmp_path):
    first = repl("hits = context.regex_search('available-tools')\nprint(len(hits))")
    a = rlm("q", ctx, model=script_model(tmp_path, [first, "FINAL(A says available-tools.md)"]), models=Models())
    more = repl("more = context.regex_search('rejected')\nprint(len(more))")
    b = rlm("q", ctx, model=script_model(tmp_path, [first, more, "FINAL(<script>alert(1)</script>)"]), models=Models())
    c = compare(a, b)
    assert c.diverged_at == {"step": 2, "reason": "code"}
    assert (c.a.steps, c.b.steps, c.a.status, c.b.status) == (2, 3, "done", "done")
    expected_a = [m.id for m in ctx.regex_search("available-tools")]
    expected_b = list(dict.fromkeys(expected_a + [m.id for m in ctx.regex_search("rejected")]))
    assert c.a.snippet_ids == expected_a == [REJECTED_WRITE]
    assert c.b.snippet_ids == expected_b
    assert c.snippets["both"] == expected_a and c.snippets["only_b"] == expected_b[1:]
    assert c.snippets["jaccard"] == pytest.approx(1 / len(expected_b))
    page = c._repr_html_()
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "First divergence</b>: step 2 (code)" in page
    from rlm_jupyter.comparison import _MARK

    assert f';{_MARK}">2</td>' in page  # the divergent row, numbered as the view numbers steps: 1, 2, …
    assert "steps 2 vs 3" in repr(c) and "diverge at step 2 (code)" in repr(c)


def test_identical_runs_do_not_diverge_and_a_run_that_stops_earlier_diverges_by_length(ctx, tmp_path):
    code = repl("print(len(context))")
    a = rlm("q", ctx, model=script_model(tmp_path, [code, "FINAL(done)"]), models=Models())
    b = rlm("q", ctx, model=script_model(tmp_path, [code, "FINAL(done)"]), models=Models())
    assert compare(a, b).diverged_at is None and compare(a, b).same_answer
    early = rlm("q", ctx, model=script_model(tmp_path, [code + "\nFINAL(done)"]), models=Models())  # same code, 1 step
    assert compare(a.trace, early).diverged_at == {"step": 2, "reason": "length"}
    none = rlm("q", ctx, model=script_model(tmp_path, ["FINAL(done)"]), models=Models())
    assert compare(a, none).diverged_at == {"step": 1, "reason": "code"}
    assert compare(none, none).snippets["jaccard"] is None


def test_a_runs_wall_time_is_one_number_in_run_usage_compare_and_the_view(ctx, tmp_path):
    """One definition (Trace.wall_s: run event to run_end event): the view once said 6.44 s and compare 6.74 s
    for the same run, compare reading the loop's own clock (which also counted the worker's shutdown)."""
    from rlm_jupyter.jupyter.static_bundle import _summary

    a = rlm("Which write was rejected?", ctx)
    root, end = a.trace.root, a.trace.of_type("run_end")[-1]
    assert a.trace.wall_s() == round(end["t"] - root["t"], 3) > 0
    assert a.usage["wall_s"] == a.trace.wall_s() == compare(a, a).a.wall_s
    assert round(_summary({"events": a.trace.events})["wall"], 3) == a.usage["wall_s"]
    assert f"{a.usage['wall_s']:.1f} s" in repr(a)


# ---- the compare view's saved output, and the static table ---------------------------------------------------


def _cells(page: str, tag: str) -> list[str]:
    import re

    return re.findall(rf'<{tag} style="([^"]*)">', page)


def test_compare_view_saves_a_static_bundle_a_themed_table_and_a_readable_text(ctx):
    widget = pytest.importorskip(
        "rlm_jupyter.jupyter.compare_view", reason="anywidget or the front-end is missing", exc_type=ImportError
    )
    a = rlm("Which write was rejected?", ctx)
    b = rerun(a, step=1, code="print(context.regex_search('rejected'))\nprint('[offline:hits]')", context=ctx)
    cv = widget.compare_view(a, b, labels=("wide search", "failed writes only"))
    data, _ = cv._repr_mimebundle_()
    # the static bundle: what the extension renders without a kernel (the comparison, labels, texts capped)
    payload = data[widget.COMPARE_MIME]
    assert payload["format"] == "rlm-jupyter-compare" and payload["version"] == 1
    assert payload["labels"] == ["wide search", "failed writes only"]
    assert payload["a"]["answer"].startswith(a.answer[:500]) and len(payload["a"]["answer"]) <= 2_100
    assert payload["b"]["run_id"] == b.trace.root["id"] and payload["diverged_at"]["reason"] == "code"
    assert json.loads(json.dumps(payload)) == payload
    # the plain text says which runs and what they answered (not only "<CompareView: …>")
    text = data["text/plain"]
    assert "wide search vs failed writes only" in text and b.answer.splitlines()[0][:60] in text
    # the HTML table (GitHub, a Lab without the extension): named columns, left-aligned, code not wrapped mid-token,
    # no fixed pale colour, nothing unescaped
    page = data["text/html"]
    assert "wide search: code (or reply)" in page and "failed writes only: code (or reply)" in page
    assert ">A<" not in page and ">A code<" not in page and "#fff3cd" not in page and "#fff4d6" not in page
    assert all("text-align:left" in style for style in _cells(page, "td") + _cells(page, "th"))
    code_pres = [p for p in page.split("<pre ")[1:] if "context.regex_search" in p]
    assert code_pres and all(p.startswith('style="margin:0;white-space:pre;') for p in code_pres)
    # the divergent step and differing rows shaded by a translucent colour over the theme's own background: only
    # rgb/rgba survive JupyterLab's sanitizer in an untrusted notebook (var(--jp-…) would be dropped, unshaded)
    assert "background-color:rgba(245,124,0,0.2)" in page and "var(" not in page and "color-mix" not in page
    cv.close()


def test_default_labels_say_which_run_is_a_rerun_and_the_table_shows_replies_as_replies(ctx):
    a = rlm("Which write was rejected?", ctx)
    b = rerun(a, step=3, response="FINAL(by hand: available-tools.md)", context=ctx)
    c = compare(a, b)
    assert c.labels == ("run A (offline)", "run B: re-run from step 3, response edited")
    page = c._repr_html_()
    assert "run B: re-run from step 3, response edited: code (or reply)" in page
    # B's step 2 is a reply (no code): labelled so, and wrapped as prose (at spaces), not as code
    reply = page[page.index("<i>reply</i>") :]
    assert reply.startswith('<i>reply</i><pre style="margin:0;white-space:pre-wrap;word-break:normal;')
    assert "by hand: available-tools.md" in reply.split("</pre>")[0]
