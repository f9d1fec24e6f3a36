"""The scripted server's Anthropic Messages and OpenAI Responses endpoints, read by real clients.

Claude Code and Codex CLI were recorded against these endpoints (tests/data/recorded/); here the official OpenAI SDK
(Responses), litellm's Anthropic provider (Messages) and raw HTTP check that the answers, streams, usage, tool calls
and faults are what those clients expect. Everything runs on 127.0.0.1.
"""

from __future__ import annotations

import http.client
import json

import openai
import pytest

from rlm_jupyter.engine import models as models_mod
from rlm_jupyter.testing import ScriptedServer

TOOL = {"name": "Read", "arguments": {"file_path": "/tmp/app.py"}}
PATCH = "*** Begin Patch\n*** Update File: app.py\n@@\n-old\n+new\n*** End Patch\n"


@pytest.fixture(scope="module")
def litellm():
    return models_mod.load_litellm()  # offline: the bundled price map, never the network


def _post(srv: ScriptedServer, path: str, body: dict, headers: dict | None = None) -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json", **(headers or {})})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, dict(resp.getheaders()), data


def _sse(data: bytes) -> list[tuple[str, dict]]:
    """(event name, data) pairs of a named-event SSE body."""
    out = []
    for block in data.decode().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if lines:
            out.append((lines["event"], json.loads(lines["data"])))
    return out


# --------------------------------------------------------------------------- Anthropic Messages


def test_messages_through_litellm_text_and_tool_use(litellm):
    script = [
        {"text": "Sessions expire after an hour.", "usage": {"prompt_tokens": 120, "completion_tokens": 9}},
        {"text": "Let me read it.", "tool_calls": [TOOL]},
    ]
    with ScriptedServer(script) as srv:
        first = litellm.completion(
            model="anthropic/claude-sonnet-4-5",
            api_base=srv.url,
            api_key="sk-ant-dummy",
            messages=[{"role": "user", "content": "How do sessions expire?"}],
            max_tokens=100,
        )
        second = litellm.completion(
            model="anthropic/claude-sonnet-4-5",
            api_base=srv.url,
            api_key="sk-ant-dummy",
            messages=[{"role": "user", "content": "Read app.py"}],
            max_tokens=100,
            tools=[
                {
                    "type": "function",
                    "function": {
                        "name": "Read",
                        "parameters": {"type": "object", "properties": {"file_path": {"type": "string"}}},
                    },
                }
            ],
        )
        paths = [r["path"] for r in srv.requests]
        headers = srv.requests[0]["headers"]
    assert first.choices[0].message.content == "Sessions expire after an hour."
    assert (first.usage.prompt_tokens, first.usage.completion_tokens) == (120, 9)
    assert first.choices[0].finish_reason == "stop"
    call = second.choices[0].message.tool_calls[0]
    assert call.function.name == "Read" and json.loads(call.function.arguments) == TOOL["arguments"]
    assert second.choices[0].finish_reason == "tool_calls"
    assert paths == ["/v1/messages", "/v1/messages"]
    assert headers.get("x-api-key") == "[REDACTED]"  # the key is never recorded


def test_messages_stream_through_litellm(litellm):
    text = "A streamed answer that spans several deltas of ten characters."
    with ScriptedServer([{"text": text, "tool_calls": [TOOL]}], chunk_chars=10) as srv:
        chunks = list(
            litellm.completion(
                model="anthropic/claude-sonnet-4-5",
                api_base=srv.url,
                api_key="x",
                messages=[{"role": "user", "content": "go"}],
                max_tokens=50,
                stream=True,
            )
        )
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == text
    args = "".join(tc.function.arguments or "" for c in chunks for tc in (c.choices[0].delta.tool_calls or []))
    assert json.loads(args) == TOOL["arguments"]


def test_messages_sse_event_sequence_and_usage():
    with ScriptedServer(
        [
            {
                "text": "abcdefghij" * 3,
                "tool_calls": [TOOL],
                "usage": {"prompt_tokens": 500, "completion_tokens": 40, "cache_read_input_tokens": 300},
            }
        ],
        chunk_chars=10,
    ) as srv:
        status, headers, data = _post(
            srv,
            "/v1/messages?beta=true",
            {"model": "claude-sonnet-4-5", "stream": True, "messages": [], "max_tokens": 10},
        )
    assert status == 200 and headers["Content-Type"] == "text/event-stream"
    events = _sse(data)
    names = [name for name, _ in events]
    assert names == [
        "message_start",
        "content_block_start",
        *["content_block_delta"] * 3,
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert all(d["type"] == name for name, d in events)
    start = events[0][1]["message"]
    assert start["usage"]["input_tokens"] == 500 and start["usage"]["cache_read_input_tokens"] == 300
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use" and events[-2][1]["usage"]["output_tokens"] == 40
    assert json.loads(events[7][1]["delta"]["partial_json"]) == TOOL["arguments"]


def test_messages_count_tokens_and_errors():
    with ScriptedServer([{"status": 529, "error": "overloaded"}, "after"]) as srv:
        status, _, data = _post(
            srv, "/v1/messages/count_tokens", {"model": "m", "messages": [{"role": "user", "content": "x" * 400}]}
        )
        assert status == 200 and json.loads(data)["input_tokens"] >= 100
        assert srv.requests == []  # a size probe uses no script entry and is not recorded
        status, _, data = _post(srv, "/v1/messages", {"model": "m", "messages": [], "max_tokens": 5})
        assert status == 529
        assert json.loads(data) == {"type": "error", "error": {"type": "overloaded_error", "message": "overloaded"}}
        status, _, data = _post(srv, "/v1/messages", {"model": "m", "messages": [], "max_tokens": 5})
        assert status == 200 and json.loads(data)["content"] == [{"type": "text", "text": "after"}]


# --------------------------------------------------------------------------- OpenAI Responses


def _client(srv: ScriptedServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=srv.base_url, api_key="sk-dummy", max_retries=0, timeout=10)


def test_responses_through_the_openai_sdk():
    script = [
        {"text": "Plain answer.", "usage": {"prompt_tokens": 900, "completion_tokens": 12, "cached_tokens": 800}},
        {
            "tool_calls": [
                {"name": "exec_command", "arguments": {"cmd": "cat app.py"}},
                {"name": "apply_patch", "type": "custom", "arguments": PATCH},
            ]
        },
    ]
    tools = [{"type": "function", "name": "exec_command", "parameters": {"type": "object", "properties": {}}}]
    with ScriptedServer(script) as srv:
        client = _client(srv)
        first = client.responses.create(model="gpt-5.5", input="hi", instructions="be brief")
        second = client.responses.create(model="gpt-5.5", input="edit", tools=tools, parallel_tool_calls=False)
    assert first.output_text == "Plain answer." and first.status == "completed"
    assert first.instructions == "be brief"  # request fields are echoed, as the real API does
    assert (first.usage.input_tokens, first.usage.output_tokens) == (900, 12)
    assert first.usage.input_tokens_details.cached_tokens == 800
    call, custom = second.output
    assert (call.type, call.name) == ("function_call", "exec_command")
    assert json.loads(call.arguments) == {"cmd": "cat app.py"}
    assert (custom.type, custom.name, custom.input) == ("custom_tool_call", "apply_patch", PATCH)
    assert call.call_id != custom.call_id
    assert second.parallel_tool_calls is False and second.tools[0].name == "exec_command"


def test_responses_stream_through_the_openai_sdk():
    text = "Streamed through the Responses API in several deltas."
    script = [{"text": text, "tool_calls": [{"name": "apply_patch", "type": "custom", "arguments": PATCH}]}]
    with (
        ScriptedServer(script, chunk_chars=8) as srv,
        _client(srv).responses.stream(model="gpt-5.5", input="go") as stream,
    ):
        events = list(stream)
        final = stream.get_final_response()
    types = [e.type for e in events]
    assert types[:2] == ["response.created", "response.in_progress"] and types[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == text
    assert "response.custom_tool_call_input.done" in types
    assert final.output_text == text and final.output[1].input == PATCH
    assert final.usage.total_tokens == final.usage.input_tokens + final.usage.output_tokens


def test_responses_faults_reach_the_sdk():
    script = [{"status": 500, "error": "boom"}, {"text": "x" * 100, "drop_after": 2}]
    with ScriptedServer(script, chunk_chars=10) as srv:
        client = _client(srv)
        with pytest.raises(openai.InternalServerError, match="boom"):
            client.responses.create(model="gpt-5.5", input="a")
        # cut mid-stream, before response.completed
        with (
            pytest.raises((openai.APIError, openai.APIConnectionError)),
            client.responses.stream(model="gpt-5.5", input="b") as stream,
        ):
            for _ in stream:
                pass
            stream.get_final_response()


# --------------------------------------------------------------------------- the recorders' wrapper


def test_tools_wrapper_keeps_the_recorders_interface(tmp_path):
    """tools/scripted_openai_server.py (used by tools/record_opencode.py) is a thin wrapper over this server."""
    import importlib.util
    import threading
    from pathlib import Path

    path = Path(__file__).parents[1] / "tools" / "scripted_openai_server.py"
    spec = importlib.util.spec_from_file_location("scripted_openai_server_wrapper", path)
    wrapper = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(wrapper)
    log = tmp_path / "requests.jsonl"
    server = wrapper.make_server(
        wrapper.Script({"rules": [{"match": "title", "text": "A title"}], "turns": ["first"]}), log, ["scripted-model"]
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = openai.OpenAI(
            base_url=f"http://127.0.0.1:{server.server_address[1]}/v1", api_key="x", max_retries=0, timeout=10
        )
        answers = [
            client.chat.completions.create(model="scripted-model", messages=[{"role": "user", "content": c}])
            .choices[0]
            .message.content
            for c in ("make a title", "go", "again")
        ]
    finally:
        server.shutdown()
        server.server_close()
    assert answers == ["A title", "first", "(script exhausted)"]
    logged = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["answered_with"] for r in logged] == ["rule:0", "turn:0", "exhausted"]
    assert logged[1]["body"]["messages"] == [{"role": "user", "content": "go"}]
