"""The offline demo model (rule-based, not neural) answers real questions over the sample sessions through the
whole loop (real worker, real litellm custom provider), with evidence from the right messages. Expected answers
were found by reading the sample files; each test re-derives the message ids from the raw files with plain json."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

import rlm_jupyter as rj
from rlm_jupyter.engine import offline
from rlm_jupyter.engine.loop import rlm
from rlm_jupyter.engine.models import Models

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # answers.py grades the question set


@pytest.fixture(scope="module")
def recorded() -> Path:
    return Path(__file__).parent / "data" / "recorded"


@pytest.fixture(scope="module")
def models():
    return Models()


def evidence(answer: str) -> list[str]:
    m = re.search(r"^Evidence: (.+)$", answer, re.M)
    return m.group(1).split(", ") if m else []


def test_which_file_was_made_as_a_copy(samples, models):
    path = samples / "gemini" / "session-2025-12-01T21-45-5b959dae.json"
    doc = json.loads(path.read_text())
    # messages whose own text says lead_gemini.txt (the user's request and the model's closing summary)
    mentioning = {m["id"] for m in doc["messages"] if "lead_gemini.txt" in json.dumps(m.get("content"))}
    run = rlm("Which file did the agent create as a copy of lead_memory.txt?", rj.load(path), models=models)
    assert run.status == "done" and run.trace.of_type("final")[-1]["via"] == "FINAL_VAR"
    assert "lead_gemini.txt" in run.answer
    assert set(evidence(run.answer)) & mentioning
    # it went through the protocol: search and regex queries, batched sub-calls, then the answer
    ops = {q["op"] for q in run.trace.of_type("query")}
    assert {"regex_search", "search", "get_by_id"} <= ops
    subs = run.trace.of_type("sub_call")
    assert subs and all(s["kind"] == "sub_llm_batch" and s["model"] == "offline-sub" for s in subs)


def test_which_command_failed(samples, models):
    folder = samples / "openai-messages"
    doc = json.loads((folder / "mini-swe-agent-github_issue.traj.json").read_text())
    # the command output (sent back as a message with a non-zero <returncode>) that printed the ZeroDivisionError
    # traceback: message #17 of this trajectory (a plain list of chat messages)
    failing = [
        i
        for i, m in enumerate(doc)
        if "<returncode>1</returncode>" in str(m.get("content")) and "ZeroDivisionError" in str(m.get("content"))
    ]
    assert failing == [17]
    run = rlm("Which command failed with a ZeroDivisionError?", rj.load(folder), models=models)
    assert "ZeroDivisionError" in run.answer
    assert f"mini-swe-agent-github_issue-b31de13194af#{failing[0]}" in evidence(run.answer)


def test_which_write_was_rejected(samples, models):
    path = samples / "claude-code" / "codemie-session-9eda1058.jsonl"
    rejected = []
    for line in path.read_text().splitlines():
        rec = json.loads(line)
        for part in (rec.get("message") or {}).get("content") or []:
            if isinstance(part, dict) and part.get("type") == "tool_result" and "rejected" in str(part.get("content")):
                rejected.append(part["tool_use_id"])
    assert rejected == ["toolu_bdrk_01SKk2dM5q1c8gecaoatnwJn"]
    run = rlm("Which file write was rejected?", rj.load(path), models=models)
    assert "available-tools.md" in run.answer
    assert rejected[0] in evidence(run.answer)


def test_no_matching_terms_says_so_without_inventing(samples, models):
    run = rlm("Which kubernetes cluster was autoscaled?", rj.load(samples / "openhands" / "basic.json"), models=models)
    assert run.status == "done" and run.answer.startswith("No message in the context matches")


def test_sub_role_is_extractive():
    text = (
        "[3] tool/Bash t1 (2026-01-01 00:00:00)\nbash: pytest -q\n→ 2 failed. FAILED test_auth.py::test_login. "
        "Ran in 3 s.\n[4] assistant a2 (-)\nThe login test fails on token expiry."
    )
    out = offline.respond("sub", [{"role": "user", "content": f"Question: which test failed?\n\nText:\n{text}"}])
    lines = out.splitlines()
    # a tool call goes with its (short) result, as one item
    assert "[t1] bash: pytest -q → 2 failed. FAILED test_auth.py::test_login. Ran in 3 s." in lines
    for line in lines:  # every part is a substring of the prompt: nothing invented
        for part in re.sub(r"^\[[^\]]+\] ", "", line).split(" → "):
            assert part in text


def test_items_are_whole_sentences_and_failed_calls_keep_their_command():
    output = "\n".join(f"  line {i} of a long traceback that goes on and on" for i in range(12))
    text = (
        "[7] tool/Bash t7 (-) !error\nBash: python3 test_sessions.py\n→ Exit code 1\nTraceback (most recent call "
        f"last):\n{output}\nAssertionError: expired session was returned\n[8] assistant a8 (-)\nThe test fails. "
        "It fails because get_session returns an expired session instead of dropping it, which the design "
        "forbids."
    )
    found = offline.items(text)
    assert {
        "id": "t7",
        "role": "tool/Bash",
        "text": "Bash: python3 test_sessions.py → AssertionError: expired session was returned",
        "weight": 1.0,
    } in found
    # prose is cut into whole sentences, never mid-word
    assert [i["text"] for i in found if i["id"] == "a8"] == [
        "The test fails.",
        "It fails because get_session returns an expired session instead of dropping it, which the design forbids.",
    ]
    # a short lead-in ending in a colon keeps what follows it
    lead = "[9] user u9 (-)\nFormat error:\n\n<error>\nExpected exactly 1 action, found 0.\n</error>"
    assert offline.items(lead)[0]["text"] == "Format error: <error> Expected exactly 1 action, found 0. </error>"


def test_decision_states_what_was_decided_and_rejected():
    lines = [
        ("m1", "Fixed: get_session now pops an expired session and returns None."),
        (
            "m2",
            "Decision: we decided to keep the in-process dict with eviction on read. We rejected Redis "
            "sessions because the app runs as a single process.",
        ),
    ]
    text, ids = offline.decision(lines)
    assert text == (
        "Decided: keep the in-process dict with eviction on read; rejected: Redis sessions (because the "
        "app runs as a single process)."
    )
    assert ids == ["m2"]
    assert offline.decision([("m3", "We rejected Redis sessions (single process, extra network dependency).")]) == (
        "Rejected: Redis sessions (because single process, extra network dependency).",
        ["m3"],
    )
    assert offline.decision([("m4", "The test passes.")]) is None


# One question of each kind and format, from tests/data/questions/recorded.json (the whole set: benchmarks/answers.py).
FAST_SUBSET = ["q01", "q03", "q04", "q20", "q24", "q27", "q28", "q30", "q31"]


def test_question_set_is_consistent(recorded):
    """Every expected fact is stated by one of the question's expected messages (checked on the loaded sessions)."""
    from answers import facts_in, load_questions, message_text

    questions = load_questions()
    assert len(questions) >= 30 and len({q["id"] for q in questions}) == len(questions)
    for q in questions:
        ctx = rj.load(recorded / q["session"])
        text = "\n".join(message_text(m) for m in ctx.get_by_id(q["ids"]))
        assert not facts_in(text, q["facts"]), q["id"]


def test_offline_answers_a_subset_of_the_question_set(models):
    """RLM with the offline model: >= 90% of the subset stated AND cited (the cited messages hold the facts);
    decision answers say what was decided and what was rejected."""
    from answers import load_questions, run

    rows = run(load_questions(FAST_SUBSET), models=models)
    right = [r["id"] for r in rows if r["rlm"]]
    assert len(right) >= 0.9 * len(rows), [(r["id"], r["why"]) for r in rows if not r["rlm"]]
    decision = next(r for r in rows if r["id"] == "q01")
    assert re.match(
        r"Decided: keep (sessions in )?the in-process dict with eviction on read; rejected: Redis "
        r"sessions \(because [^)]*single process",
        decision["answer"],
    ), decision["answer"]


def test_offline_answers_carry_one_bullet_each_when_the_sub_model_writes_bullets(tmp_path):
    """A sub-model that lists its findings ("[id] - Rejected …", "- [id] …") made the offline root's answer read
    "- - Rejected …"; and "Decision: Decided to X" read "Decided: Decided to X"."""
    from rlm_jupyter.testing import ScriptedServer, ServerModels

    chat = tmp_path / "chat.json"
    chat.write_text(
        json.dumps(
            [
                {"role": "user", "content": "Which session store should we use for auth?"},
                {
                    "role": "assistant",
                    "content": "Decision: Decided to use signed JWT cookies for sessions.\n"
                    "Rejected Redis sessions because it adds another server to run.",
                },
                {"role": "user", "content": "ok"},
            ]
        )
    )
    ctx = rj.load(chat, cache=False)
    mid = ctx.df.filter(ctx.df["role"] == "assistant")["id"][0]

    def sub_model(request):  # every chunk: the two sentences as a bulleted list, with the message's id
        return (
            f"[{mid}] - Decision: Decided to use signed JWT cookies for sessions.\n"
            f"- [{mid}] Rejected Redis sessions because it adds another server to run."
        )

    with ScriptedServer(sub_model) as srv:
        run = rlm(
            "Which auth approach was decided, and what was rejected?",
            ctx,
            model="offline",
            sub_model="openai/scripted-model",
            models=ServerModels(srv.base_url),
        )
        assert srv.requests  # the sub-calls went to the scripted server
    assert run.status == "done", run.error
    lines = run.answer.splitlines()
    assert lines[0] == (
        f"Decided: use signed JWT cookies for sessions; rejected: Redis sessions (because it adds "
        f"another server to run). [{mid}]"
    )
    bullets = [x for x in lines if x.startswith("- ")]
    assert bullets and not [x for x in lines if re.match(r"\s*[-*•]\s+[-*•]\s", x)]
    assert f"- Rejected Redis sessions because it adds another server to run. [{mid}]" in bullets


def test_scoring_all_sentences_in_one_pass_finds_what_one_search_per_sentence_finds(samples):
    """`_matches_each` (one regex pass per term over the joined sentences) against `_matches` per sentence, on the
    sentences of real sessions and questions whose terms use every kind of pattern (families, stems, literals)."""
    import rlm_jupyter as rj
    from rlm_jupyter.engine import offline

    ctx = rj.load(samples / "claude-code", cache=False)
    texts = [t for col in ("text", "tool_output") for t in ctx.df[col].drop_nulls().to_list() if t][:600]
    sentences = [s for t in texts for _, s in offline.sentences(t)]
    assert len(sentences) > 500
    hits = 0
    for q in (
        "Which decisions, rejected approaches, errors and constraints?",
        "Which file failed in src/app.py?",
        "Did the build crash or miss a test_x.py step?",
        "What was chosen for FooBar and v1.2?",
    ):
        terms = offline.key_terms(q)
        one_by_one = [offline._matches(terms, s) for s in sentences]
        hits += sum(bool(f) for f in one_by_one)
        assert offline._matches_each(terms, sentences) == one_by_one
    assert hits >= 30  # the questions do match real sentences: the comparison is not between empty sets
