"""The top-level API a user types: `rj.load`, `rj.rlm`, `rj.sub_llm`, `rj.Budget`, `rj.Trace`."""

import rlm_jupyter as rj


def test_rlm_is_callable_even_after_its_subpackage_is_imported(samples):
    import rlm_jupyter.rlm.loop  # noqa: F401  (binds rlm_jupyter.rlm to the subpackage)

    ctx = rj.load(samples / "claude-code" / "codemie-session-9eda1058.jsonl")
    run = rj.rlm("Which write did the user reject?", context=ctx, budget=rj.Budget(iterations=6))
    assert run.status == "done"
    assert "toolu_bdrk_01SKk2dM5q1c8gecaoatnwJn" in run.answer
    assert isinstance(run.trace, rj.Trace)
    assert run.usage["calls"] >= 2


def test_sub_llm_offline_is_extractive_and_reports_usage():
    text = ("Question: which store did we keep?\n\nWe decided to keep the in-process dict for sessions. "
            "We rejected Redis sessions because the deployment has a single node. The weather was fine.")
    c = rj.sub_llm(text)
    assert "in-process dict" in c.text or "Redis" in c.text
    assert "weather" not in c.text
    assert c.tokens_in > 0 and c.tokens_out > 0 and c.cost_usd == 0.0
