"""Model calls through REAL litellm against the scripted OpenAI-compatible server on 127.0.0.1.

Numbers here come from the script (the server reports the usage it is told to) and from litellm's bundled price
map read independently of our code; nothing is mocked between our client and the HTTP socket.
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import time
import types
import urllib.request

import pytest

from rlm_jupyter.engine import models as models_mod
from rlm_jupyter.engine.models import Completion, ModelError, Models, sub_llm
from rlm_jupyter.testing import ScriptedServer
from rlm_jupyter.trace import TraceWriter

MSG = [{"role": "user", "content": "Which auth approach was decided?"}]
SECRET = "sk-rlmjtest-0123456789abcdefSECRET"


@pytest.fixture(scope="module")
def litellm():
    return models_mod.load_litellm()


def fast(**kw) -> Models:
    """A client with short backoff so retry tests take fractions of a second."""
    return Models(**{"retries": 2, "backoff_s": 0.01, "timeout_s": 10, **kw})


# --- import cost -----------------------------------------------------------------------------------------------


def test_importing_the_package_does_not_import_litellm():
    code = (
        "import sys, rlm_jupyter, rlm_jupyter.engine.models, rlm_jupyter.testing; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('litellm', 'openai')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# --- completions, usage, cost ----------------------------------------------------------------------------------


def test_completion_usage_and_cost_from_litellm_price_map(litellm, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    entry = {"text": "Token rotation was decided.", "usage": {"prompt_tokens": 1000, "completion_tokens": 500}}
    with ScriptedServer([entry]) as srv:
        c = fast().complete("openai/gpt-4o-mini", MSG, api_base=srv.base_url, temperature=0)
        body = srv.requests[0]["body"]
    assert isinstance(c, Completion)
    assert (c.text, c.model, c.tokens_in, c.tokens_out, c.finish_reason) == (
        "Token rotation was decided.",
        "openai/gpt-4o-mini",
        1000,
        500,
        "stop",
    )
    price = litellm.model_cost["gpt-4o-mini"]
    assert c.cost_usd == pytest.approx(1000 * price["input_cost_per_token"] + 500 * price["output_cost_per_token"])
    assert body["model"] == "gpt-4o-mini" and body["messages"] == MSG and body["temperature"] == 0
    assert c.latency_s > 0 and c.attempts == 1


def test_registered_price_and_cost_override(litellm):
    litellm.register_model(
        {
            "openai/rlmj-priced": {
                "input_cost_per_token": 2e-6,
                "output_cost_per_token": 8e-6,
                "litellm_provider": "openai",
                "mode": "chat",
                "cache_read_input_token_cost": 0.0,
                "cache_creation_input_token_cost": 0.0,
            }
        }
    )
    usage = {"prompt_tokens": 300, "completion_tokens": 40}
    with ScriptedServer([{"text": "a", "usage": usage}] * 3) as srv:
        registered = fast().complete("openai/rlmj-priced", MSG, api_base=srv.base_url)
        override = fast(cost_per_token={"openai/rlmj-priced": (1e-3, 1e-2)}).complete(
            "openai/rlmj-priced", MSG, api_base=srv.base_url
        )
        unpriced = fast().complete("openai/no-such-price", MSG, api_base=srv.base_url)
    assert registered.cost_usd == pytest.approx(300 * 2e-6 + 40 * 8e-6)
    assert override.cost_usd == pytest.approx(300 * 1e-3 + 40 * 1e-2)
    assert unpriced.cost_usd is None and unpriced.tokens_in == 300


def test_streaming_passes_pieces_and_reports_usage():
    text = "The team chose short-lived access tokens with refresh rotation; server sessions were rejected."
    with ScriptedServer(
        [{"text": text, "usage": {"prompt_tokens": 77, "completion_tokens": 21}}], chunk_chars=16
    ) as srv:
        pieces: list[str] = []
        c = fast().complete("openai/scripted-model", MSG, api_base=srv.base_url, stream=True, on_delta=pieces.append)
        body = srv.requests[0]["body"]
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert len(pieces) == -(-len(text) // 16) and "".join(pieces) == text == c.text
    assert (c.tokens_in, c.tokens_out, c.finish_reason) == (77, 21, "stop")


def test_acomplete_streams_too():
    with ScriptedServer(["async answer " * 8]) as srv:
        pieces: list[str] = []
        c = asyncio.run(
            fast().acomplete("openai/scripted-model", MSG, api_base=srv.base_url, stream=True, on_delta=pieces.append)
        )
    assert c.text == "async answer " * 8 == "".join(pieces) and len(pieces) > 1


def test_sub_llm_on_a_hosted_model_sends_one_user_prompt():
    with ScriptedServer(["short summary"]) as srv:
        c = sub_llm(
            "Summarize: tokens rotate hourly.",
            model="openai/scripted-model",
            system="Be brief.",
            models=fast(),
            api_base=srv.base_url,
        )
        body = srv.requests[0]["body"]
    assert c.text == "short summary" and c.model == "openai/scripted-model"
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Summarize: tokens rotate hourly."},
    ]
    assert "role" not in body  # our own keyword is not sent to the provider


# --- faults ----------------------------------------------------------------------------------------------------


def test_http_500_is_retried_then_succeeds():
    with ScriptedServer([{"status": 500, "error": "upstream overloaded"}, "recovered"]) as srv:
        c = fast().complete("openai/scripted-model", MSG, api_base=srv.base_url)
        n = len(srv.requests)
    assert (c.text, c.attempts, n) == ("recovered", 2, 2)


def test_persistent_500_gives_up_after_the_retries():
    with ScriptedServer([{"status": 500}] * 5) as srv:
        with pytest.raises(ModelError) as err:
            fast(retries=2).complete("openai/scripted-model", MSG, api_base=srv.base_url)
        n = len(srv.requests)
    assert n == 3 and err.value.kind == "server" and "after 3 attempts" in str(err.value)


def test_429_waits_for_retry_after():
    with ScriptedServer([{"status": 429, "retry_after": 0.4}, "after the wait"]) as srv:
        c = fast().complete("openai/scripted-model", MSG, api_base=srv.base_url)
        gap = srv.requests[1]["t"] - srv.requests[0]["t"]
    assert c.text == "after the wait" and c.attempts == 2
    assert gap >= 0.4  # backoff_s is 0.01: only the Retry-After header explains the wait


def test_rate_limit_without_retry_after_backs_off_exponentially():
    with ScriptedServer([{"status": 429}, {"status": 429}, "ok"]) as srv:
        c = Models(retries=3, backoff_s=0.2, timeout_s=10).complete("openai/scripted-model", MSG, api_base=srv.base_url)
        t = [r["t"] for r in srv.requests]
    assert c.attempts == 3
    # waits are 0.2 and 0.4 s, each with +-25 % jitter
    assert t[1] - t[0] >= 0.15 and t[2] - t[1] >= 0.3


def test_timeout_is_retried_then_reported():
    with ScriptedServer([{"delay_s": 5, "text": "too late"}] * 3) as srv:
        start = time.monotonic()
        with pytest.raises(ModelError) as err:
            fast(retries=1, timeout_s=0.5).complete("openai/scripted-model", MSG, api_base=srv.base_url)
        took = time.monotonic() - start
        n = len(srv.requests)
    assert err.value.kind == "timeout" and n == 2
    assert 1.0 <= took < 3.0  # two attempts of 0.5 s, not the server's 5 s


def test_dropped_stream_is_retried():
    full = "a complete answer that arrives on the second attempt"
    with ScriptedServer([{"text": "x" * 200, "drop_after": 2}, full], chunk_chars=10) as srv:
        pieces: list[str] = []
        c = fast().complete("openai/scripted-model", MSG, api_base=srv.base_url, stream=True, on_delta=pieces.append)
    assert c.text == full and c.attempts == 2
    assert pieces[:2] == ["x" * 10] * 2 and "".join(pieces[2:]) == full  # the dropped attempt's pieces came first


def test_stream_that_always_drops_raises():
    with ScriptedServer([{"text": "y" * 100, "drop_after": 1}] * 3) as srv:
        with pytest.raises(ModelError) as err:
            fast(retries=1).complete("openai/scripted-model", MSG, api_base=srv.base_url, stream=True)
        n = len(srv.requests)
    assert n == 2 and err.value.kind == "connection"


def test_connection_dropped_without_response_is_retried():
    with ScriptedServer([{"drop_after": 0}, "second try"]) as srv:
        c = fast().complete("openai/scripted-model", MSG, api_base=srv.base_url)
    assert c.text == "second try" and c.attempts == 2


# --- batch -----------------------------------------------------------------------------------------------------


def test_batch_of_32_runs_concurrently_keeps_order_and_isolates_a_failure():
    def answer(req):
        prompt = req["body"]["messages"][-1]["content"]
        if prompt == "item 7":
            return {"status": 500, "error": "item 7 always fails"}
        return "answer to " + prompt

    prompts = [[{"role": "user", "content": f"item {i}"}] for i in range(32)]
    m = fast(retries=1)
    with ScriptedServer(answer, latency_s=0.2) as srv:
        m.complete("openai/scripted-model", MSG, api_base=srv.base_url)  # warm the client outside the timing
        start = time.monotonic()
        results = m.batch("openai/scripted-model", prompts, concurrency=32, api_base=srv.base_url)
        took = time.monotonic() - start
    assert len(results) == 32
    assert isinstance(results[7], ModelError) and "item 7 always fails" in str(results[7])
    assert [r.text for i, r in enumerate(results) if i != 7] == [f"answer to item {i}" for i in range(32) if i != 7]
    # Sequential would be 32 x 0.2 = 6.4 s (plus item 7's retry); concurrent is a few rounds of 0.2 s.
    assert took < 6.4 / 3, f"batch took {took:.2f} s"


def test_batch_respects_the_concurrency_limit():
    in_flight, peak = [0], [0]
    import threading

    lock = threading.Lock()

    def answer(req):
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        time.sleep(0.1)
        with lock:
            in_flight[0] -= 1
        return "ok"

    with ScriptedServer(answer) as srv:
        results = fast().batch("openai/scripted-model", [MSG] * 8, concurrency=3, api_base=srv.base_url)
    assert [r.text for r in results] == ["ok"] * 8 and peak[0] <= 3


# --- local models: script, replay, offline -----------------------------------------------------------------------


def test_script_file_answers_in_order_then_errors(tmp_path):
    script = tmp_path / "answers.json"
    script.write_text(json.dumps(["```repl\nprint(1)\n```", "FINAL(42)"]))
    m = Models()
    first = m.complete(f"script:{script}", MSG)
    second = m.complete(f"script:{script}", MSG, stream=True)
    assert (first.text, second.text) == ("```repl\nprint(1)\n```", "FINAL(42)")
    # local models estimate tokens as characters / 4 (at least 1) and cost nothing
    assert (first.cost_usd, first.tokens_out, second.tokens_out) == (0.0, len(first.text) // 4, 2)
    with pytest.raises(ModelError, match="script exhausted") as err:
        m.complete(f"script:{script}", MSG)
    assert err.value.kind == "local"
    assert Models().complete(f"script:{script}", MSG).text == first.text  # a new client starts from the top


def test_script_file_per_role_and_missing_file(tmp_path):
    script = tmp_path / "roles.json"
    script.write_text(json.dumps({"root": ["root says"], "sub": ["sub one", "sub two"]}))
    m = Models()
    assert sub_llm("q", model=f"script:{script}", models=m).text == "sub one"
    assert m.complete(f"script:{script}", MSG).text == "root says"
    assert m.complete(f"script:{script}", MSG, role="sub").text == "sub two"
    with pytest.raises(ModelError, match="no such file") as err:
        m.check(f"script:{tmp_path / 'absent.json'}")
    assert err.value.kind == "config"


def test_replay_trace_answers_root_steps_and_sub_calls(tmp_path):
    path = tmp_path / "run.rlmtrace.jsonl"
    with TraceWriter(path) as w:
        run = w.emit("run", None, question="q?", model="gpt-4o-mini")
        w.emit("step", run["id"], index=0, response="```repl\nx = sub_llm_batch(['p1', 'p2'])\n```")
        w.emit("sub_call", run["id"], model="gpt-4o-mini", prompt="p1", response="s1", status="ok")
        w.emit("sub_call", run["id"], model="gpt-4o-mini", prompt="p2", response="s2", status="ok")
        w.emit(
            "sub_call", run["id"], model="gpt-4o-mini", prompt="p3", response="", status="error", error="RateLimitError"
        )
        w.emit("step", run["id"], index=1, response="FINAL(done)")
    m = Models()
    model = f"replay:{path}"
    assert m.complete(model, MSG).text.startswith("```repl")
    # Concurrent sub-calls may arrive out of order: the recorded call with the same prompt answers.
    assert sub_llm("p2", model=model, models=m).text == "s2"
    assert m.complete(f"replay-sub:{path}", [{"role": "user", "content": "p1"}]).text == "s1"
    with pytest.raises(ModelError, match="RateLimitError"):
        sub_llm("p3", model=model, models=m)  # a recorded failure fails again
    assert m.complete(model, MSG, stream=True).text == "FINAL(done)"
    with pytest.raises(ModelError, match="replay exhausted"):
        m.complete(model, MSG)


@pytest.fixture
def offline_standin(monkeypatch):
    """A stand-in for the LOOP's rule-based model: these tests check the plumbing, not its answers."""
    calls: list[tuple[str, list]] = []

    def respond(role, messages):
        calls.append((role, messages))
        return f"[{role}] " + messages[-1]["content"][::-1]

    fake = types.ModuleType("rlm_jupyter.engine.offline")
    fake.respond = respond
    import rlm_jupyter.engine as pkg

    monkeypatch.setitem(sys.modules, "rlm_jupyter.engine.offline", fake)
    monkeypatch.setattr(pkg, "offline", fake, raising=False)
    return calls


def test_offline_provider_roles_usage_and_streaming(offline_standin):
    m = Models()
    root = m.complete("offline", [{"role": "user", "content": "abcdefghijkl" * 10}])
    assert root.text == "[root] " + ("abcdefghijkl" * 10)[::-1]
    assert root.tokens_in == 120 // 4 and root.tokens_out == len(root.text) // 4 and root.cost_usd == 0.0
    assert sub_llm("hello", models=m).text == "[sub] olleh"  # sub_llm uses the sub role
    assert m.complete("offline-sub", MSG).text.startswith("[sub] ")
    pieces: list[str] = []
    streamed = m.complete("offline", MSG, stream=True, on_delta=pieces.append)
    assert "".join(pieces) == streamed.text and streamed.finish_reason == "stop"
    assert asyncio.run(m.acomplete("offline", MSG)).text == streamed.text
    assert [r for r, _ in offline_standin] == ["root", "sub", "sub", "root", "root"]


def test_offline_batch(offline_standin):
    prompts = [[{"role": "user", "content": f"q{i}"}] for i in range(10)]
    results = Models().batch("offline-sub", prompts, concurrency=4)
    assert [r.text for r in results] == [f"[sub] {i}q" for i in range(10)]


# --- errors before any network, and secrets ----------------------------------------------------------------------


@pytest.fixture
def network_events():
    """Socket events raised while the test runs (audit hooks cannot be removed: this one switches off after)."""
    events: list[tuple] = []
    active = [True]

    def hook(name, args):
        if active[0] and name in ("socket.connect", "socket.getaddrinfo", "socket.__new__"):
            events.append((name, args))

    sys.addaudithook(hook)
    yield events
    active[0] = False


def test_missing_api_key_names_the_env_var_without_network(litellm, monkeypatch, network_events):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ModelError) as err:
        Models().complete("gpt-4o-mini", MSG)
    assert "OPENAI_API_KEY" in str(err.value) and err.value.kind == "missing_key"
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(ModelError, match="ANTHROPIC_API_KEY"):
        Models().check("anthropic/claude-3-5-sonnet-20240620")
    assert network_events == []


def test_unknown_model_is_refused_without_network(litellm, network_events):
    with pytest.raises(ModelError, match="unknown model 'no-such-model-xyz'") as err:
        Models().complete("no-such-model-xyz", MSG)
    assert err.value.kind == "unknown_model" and network_events == []
    with ScriptedServer() as srv:  # the hook does see a connection when one is made
        urllib.request.urlopen(srv.base_url + "/models", timeout=5).read()
    assert any(name == "socket.connect" for name, _ in network_events)


def test_api_key_argument_is_refused():
    with pytest.raises(ModelError, match="environment"):
        Models().complete("offline", MSG, api_key="sk-should-not-be-passed-around")


def test_no_key_or_auth_header_in_results_errors_or_logs(litellm, monkeypatch, caplog, capsys):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    caplog.set_level(logging.DEBUG, logger="rlm_jupyter")
    echo = {"status": 401, "error": f"Incorrect API key provided: {SECRET}. Header was 'Bearer {SECRET}'"}
    with ScriptedServer([{"status": 500}, "fine", echo]) as srv:
        ok = fast().complete("openai/scripted-model", MSG, api_base=srv.base_url)
        with pytest.raises(ModelError) as err:
            fast().complete("openai/scripted-model", MSG, api_base=srv.base_url)
        recorded = json.dumps(srv.requests)
        auth = [r["headers"].get("authorization") for r in srv.requests]
    assert auth == ["[REDACTED]"] * 3  # the key was sent (from the environment), and the server kept none of it
    assert err.value.kind == "auth" and "Incorrect API key provided" in str(err.value)
    out = capsys.readouterr()
    seen = "\n".join([repr(ok), str(err.value), repr(err.value.args), caplog.text, out.out, out.err, recorded])
    assert "retrying" in caplog.text  # the 500 was logged ...
    assert SECRET not in seen and SECRET[3:20] not in seen  # ... and nothing anywhere holds the key


# --- the scripted server itself --------------------------------------------------------------------------------


def test_scripted_server_models_rules_and_exhaustion(tmp_path):
    log = tmp_path / "req.jsonl"
    script = {"rules": [{"match": "title", "text": "A title"}], "turns": ["first", {"match": "second", "text": "2"}]}
    with ScriptedServer(
        script, models=["m1", "m2"], log_path=log, exhausted={"status": 500, "error": "script exhausted"}
    ) as srv:
        listed = json.loads(urllib.request.urlopen(srv.base_url + "/models", timeout=5).read())
        m = fast(retries=0)
        texts = [
            m.complete("openai/m1", [{"role": "user", "content": c}], api_base=srv.base_url).text
            for c in ("make a title", "hello", "the second one", "title again")
        ]
        with pytest.raises(ModelError, match="script exhausted"):
            m.complete("openai/m1", MSG, api_base=srv.base_url)
    assert [d["id"] for d in listed["data"]] == ["m1", "m2"]
    assert texts == ["A title", "first", "2", "A title"]
    labels = [json.loads(line)["answered_with"] for line in log.read_text().splitlines()]
    assert labels == ["rule:0", "turn:0", "turn:1", "rule:0", "exhausted"]


def _closed_port() -> int:
    """A port of 127.0.0.1 nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_local_model_server_says_to_start_it_or_set_api_base(monkeypatch):
    """A stopped Ollama (or any api_base that refuses connections) said only "could not be reached"."""
    base = f"http://127.0.0.1:{_closed_port()}"
    with pytest.raises(ModelError) as err:
        fast().complete("ollama/llama3", MSG, api_base=base)
    assert err.value.kind == "connection"
    assert str(err.value).endswith(
        f"(after 3 attempts, nothing answers at {base}: start Ollama (`ollama serve`, "
        "then `ollama pull llama3`) or set api_base= (or the OLLAMA_API_BASE environment "
        "variable) to where it runs)"
    )
    # where the address came from the environment, the hint names it
    monkeypatch.setenv("OLLAMA_API_BASE", base)
    with pytest.raises(ModelError, match=f"nothing answers at {base}: start Ollama"):
        fast().complete("ollama_chat/qwen3", MSG)
    # an OpenAI-compatible local server (vLLM, LM Studio, llama.cpp) behind openai/NAME: the OpenAI client calls
    # the same failure an InternalServerError("Connection error."); it is a connection failure with the hint
    with pytest.raises(ModelError) as err:
        fast().complete("openai/local-model", MSG, api_base=base + "/v1")
    assert err.value.kind == "connection"
    assert (
        f"nothing answers at {base}/v1: start the local model server there, or set api_base= (or the "
        "OPENAI_API_BASE environment variable) to where it runs"
    ) in str(err.value)
