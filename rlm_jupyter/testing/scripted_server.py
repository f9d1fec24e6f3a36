"""A scripted OpenAI-compatible chat server on 127.0.0.1, for tests, benchmarks and recording agent sessions offline.

Standard library only. Routes:
  GET  /v1/models             -> the model ids given (default "scripted-model")
  POST /v1/chat/completions   -> the next scripted answer: plain JSON, or SSE when "stream": true (chunked transfer
                                 encoding; a final usage chunk when stream_options.include_usage is true)
  POST /v1/messages           -> the same answer as an Anthropic Messages response (JSON, or SSE message_start /
                                 content_block_* / message_delta / message_stop when "stream": true); for Claude Code
  POST /v1/messages/count_tokens -> {"input_tokens": estimate}; uses no script entry
  POST /v1/responses          -> the same answer as an OpenAI Responses API response (JSON, or SSE response.created ...
                                 response.completed with sequence_number when "stream": true; request fields such as
                                 instructions, tools, parallel_tool_calls are echoed); for Codex CLI

    with ScriptedServer(["first answer", {"status": 500}, "after a retry"]) as srv:
        litellm.completion(model="openai/scripted-model", api_base=srv.base_url, api_key="unused", ...)
        srv.requests          # every request, in arrival order (auth headers redacted)

The script is a list of turns, a dict {"rules": [...], "turns": [...]}, a Script, or a callable(request) -> entry that
answers every request itself (request: {"n", "path", "headers", "body"}; safe to call from several threads).
An entry is a str (the answer text) or a dict with any of:
  "text"            the answer
  "tool_calls"      [{"name", "arguments", "id"?}] (arguments: dict or JSON string); Responses API only:
                    "type": "custom" makes a custom_tool_call whose "input" is the arguments string (Codex apply_patch)
  "usage"           {"prompt_tokens", "completion_tokens"}; else estimated at 4 characters a token. The Messages API
                    also takes "cache_read_input_tokens" / "cache_creation_input_tokens", the Responses API
                    "cached_tokens" / "reasoning_tokens" (all default 0)
  "finish_reason"   default "stop" ("tool_calls" when there are tool calls); Messages API: "stop_reason", default
                    "end_turn" ("tool_use" when there are tool calls)
  "match"           substring (or list of alternatives) the raw request body must contain for this entry to answer
  "note"            ignored (documents the step)
faults, for this request only:
  "status": 500, "error": "msg"         an HTTP error with an OpenAI-style error body
  "status": 429, "retry_after": 1.5     adds a Retry-After header (seconds)
  "delay_s": 5                          wait before answering (longer than a client timeout -> a timeout)
  "drop_after": 2                       streaming: close the connection after 2 content deltas, mid-body;
                                        not streaming: close without any response
  "raw": "<html>oops"                   HTTP 200 with this body as it is (not an API response: a bad response)
  "no_choices": true                    chat: a 200 completion whose "choices" list is empty
Rules (entries with "match") are tried first on every request and never used up; then the first unused turn whose
"match" (if any) occurs in the body. When no turn is left the answer is `exhausted` (default: the text
"(script exhausted)"; pass exhausted={"status": 500, "error": "script exhausted"} to make it an error).
`latency_s` delays every request (e.g. 0.2 to benchmark concurrent calls).

Command line (what tools/scripted_openai_server.py does):
    python -m rlm_jupyter.testing.scripted_server --script s.json --log req.jsonl [--port 0] [--port-file f]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

EXHAUSTED = {"text": "(script exhausted)"}
_SECRET_HEADERS = {"authorization", "api-key", "x-api-key", "proxy-authorization", "cookie"}

Entry = str | dict[str, Any]
Answerer = Callable[[dict[str, Any]], Entry]


class Script:
    """Hands out scripted entries in order; thread-safe because clients send requests in parallel."""

    def __init__(self, data: dict | list, exhausted: Entry = EXHAUSTED):
        if isinstance(data, list):
            data = {"turns": data}
        self.rules = [as_entry(r) for r in data.get("rules", [])]
        self.turns = [as_entry(t) for t in data.get("turns", [])]
        self.used = [False] * len(self.turns)
        self.exhausted = as_entry(exhausted)
        self.lock = threading.Lock()

    def pick(self, body_text: str) -> tuple[str, dict]:
        with self.lock:
            for i, rule in enumerate(self.rules):
                if rule.get("match") and matches(rule["match"], body_text):
                    return f"rule:{i}", rule
            for i, turn in enumerate(self.turns):
                if self.used[i] or (turn.get("match") and not matches(turn["match"], body_text)):
                    continue
                self.used[i] = True
                return f"turn:{i}", turn
            return "exhausted", self.exhausted

    def remaining(self) -> int:
        with self.lock:
            return self.used.count(False)


def as_entry(entry: Entry) -> dict:
    return {"text": entry} if isinstance(entry, str) else dict(entry)


def matches(pattern: str | list[str], body_text: str) -> bool:
    """A match is one substring or a list of alternatives (any one suffices)."""
    patterns = [pattern] if isinstance(pattern, str) else pattern
    return any(p in body_text for p in patterns)


def estimate_usage(body_text: str, entry: dict) -> dict:
    """Rough token counts (4 characters a token) unless the entry fixes them."""
    out_chars = len(entry.get("text") or "") + len(json.dumps(entry.get("tool_calls") or []))
    usage = {"prompt_tokens": max(1, len(body_text) // 4), "completion_tokens": max(1, out_chars // 4)}
    usage.update(entry.get("usage") or {})
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    return usage


def tool_call_objects(entry: dict, serial: int) -> list[dict]:
    calls = []
    for j, call in enumerate(entry.get("tool_calls") or []):
        args = call.get("arguments", {})
        calls.append(
            {
                "id": call.get("id") or f"call_{serial:03d}_{j}",
                "type": "function",
                "function": {"name": call["name"], "arguments": args if isinstance(args, str) else json.dumps(args)},
            }
        )
    return calls


def redact_headers(headers) -> dict[str, str]:
    """Request headers as recorded: credentials are never kept, only the fact that they were sent."""
    return {k: ("[REDACTED]" if k.lower() in _SECRET_HEADERS else v) for k, v in headers.items()}


_ROUTES = (
    ("/chat/completions", "chat"),
    ("/messages/count_tokens", "count_tokens"),
    ("/messages", "messages"),
    ("/responses", "responses"),
)
_ANTHROPIC_ERRORS = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    429: "rate_limit_error",
    529: "overloaded_error",
}
_TEXT_DELTAS = {"content_block_delta", "response.output_text.delta"}
_FINAL_EVENTS = {"message_delta", "response.completed"}


def call_arguments(call: dict) -> str:
    args = call.get("arguments", {})
    return args if isinstance(args, str) else json.dumps(args)


def anthropic_message(n: int, model: str, entry: dict, usage: dict) -> dict:
    """An Anthropic Messages API response object for one entry."""
    content: list[dict] = []
    if entry.get("text"):
        content.append({"type": "text", "text": entry["text"]})
    for j, call in enumerate(entry.get("tool_calls") or []):
        args = call.get("arguments", {})
        content.append(
            {
                "type": "tool_use",
                "id": call.get("id") or f"toolu_{n:03d}_{j}",
                "name": call["name"],
                "input": json.loads(args) if isinstance(args, str) else args,
            }
        )
    has_calls = any(b["type"] == "tool_use" for b in content)
    stop = entry.get("stop_reason") or ("tool_use" if has_calls else "end_turn")
    return {
        "id": f"msg_scripted_{n:04d}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {
            "input_tokens": usage["prompt_tokens"],
            "output_tokens": usage["completion_tokens"],
            "cache_creation_input_tokens": int(usage.get("cache_creation_input_tokens") or 0),
            "cache_read_input_tokens": int(usage.get("cache_read_input_tokens") or 0),
        },
    }


def anthropic_events(message: dict, step: int) -> list[tuple[str, dict]]:
    """The SSE events of a streamed Messages response: input usage first, output usage in message_delta."""
    usage = message["usage"]
    start = {**message, "content": [], "stop_reason": None, "usage": {**usage, "output_tokens": 1}}
    events: list[tuple[str, dict]] = [("message_start", {"type": "message_start", "message": start})]
    for i, block in enumerate(message["content"]):
        if block["type"] == "text":
            events.append(
                (
                    "content_block_start",
                    {"type": "content_block_start", "index": i, "content_block": {"type": "text", "text": ""}},
                )
            )
            text = block["text"]
            events += [
                (
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": i,
                        "delta": {"type": "text_delta", "text": text[k : k + step]},
                    },
                )
                for k in range(0, len(text), step)
            ]
        else:
            events.append(
                (
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": i,
                        "content_block": {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}},
                    },
                )
            )
            events.append(
                (
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": i,
                        "delta": {"type": "input_json_delta", "partial_json": json.dumps(block["input"])},
                    },
                )
            )
        events.append(("content_block_stop", {"type": "content_block_stop", "index": i}))
    events.append(
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                "usage": {"output_tokens": usage["output_tokens"]},
            },
        )
    )
    events.append(("message_stop", {"type": "message_stop"}))
    return events


# Request fields a Responses API answer echoes back (the real API returns them on every response object).
_RESPONSES_ECHO = {
    "instructions": None,
    "metadata": {},
    "parallel_tool_calls": True,
    "previous_response_id": None,
    "reasoning": None,
    "store": True,
    "temperature": None,
    "text": {"format": {"type": "text"}},
    "tool_choice": "auto",
    "tools": [],
    "top_p": None,
    "truncation": "disabled",
}


def responses_object(n: int, model: str, entry: dict, usage: dict, request: dict | None = None) -> dict:
    """An OpenAI Responses API response object (status completed) for one entry; `request` fields are echoed."""
    output: list[dict] = []
    if entry.get("text"):
        output.append(
            {
                "type": "message",
                "id": f"msg_{n:04d}",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": entry["text"], "annotations": []}],
            }
        )
    for j, call in enumerate(entry.get("tool_calls") or []):
        call_id = call.get("id") or f"call_{n:03d}_{j}"
        if call.get("type") == "custom":
            output.append(
                {
                    "type": "custom_tool_call",
                    "id": f"ctc_{n:04d}_{j}",
                    "status": "completed",
                    "call_id": call_id,
                    "name": call["name"],
                    "input": call_arguments(call),
                }
            )
        else:
            output.append(
                {
                    "type": "function_call",
                    "id": f"fc_{n:04d}_{j}",
                    "status": "completed",
                    "call_id": call_id,
                    "name": call["name"],
                    "arguments": call_arguments(call),
                }
            )
    cached, reasoning = int(usage.get("cached_tokens") or 0), int(usage.get("reasoning_tokens") or 0)
    echoed = {k: (request or {}).get(k, default) for k, default in _RESPONSES_ECHO.items()}
    return {
        "id": f"resp_scripted_{n:04d}",
        "object": "response",
        "created_at": int(time.time()),
        "status": "completed",
        "model": model,
        "output": output,
        "error": None,
        "incomplete_details": None,
        **echoed,
        "usage": {
            "input_tokens": usage["prompt_tokens"],
            "input_tokens_details": {"cached_tokens": cached},
            "output_tokens": usage["completion_tokens"],
            "output_tokens_details": {"reasoning_tokens": reasoning},
            "total_tokens": usage["total_tokens"],
        },
    }


def responses_events(response: dict, step: int) -> list[tuple[str, dict]]:
    """The SSE events of a streamed Responses API answer, ending with response.completed (which carries usage)."""
    pending = {**response, "status": "in_progress", "output": [], "usage": None}
    events: list[tuple[str, dict]] = [
        ("response.created", {"type": "response.created", "response": pending}),
        ("response.in_progress", {"type": "response.in_progress", "response": pending}),
    ]
    for i, item in enumerate(response["output"]):
        if item["type"] == "message":
            events.append(
                (
                    "response.output_item.added",
                    {
                        "type": "response.output_item.added",
                        "output_index": i,
                        "item": {**item, "status": "in_progress", "content": []},
                    },
                )
            )
            part, text = item["content"][0], item["content"][0]["text"]
            ids = {"item_id": item["id"], "output_index": i, "content_index": 0}
            events.append(
                (
                    "response.content_part.added",
                    {"type": "response.content_part.added", **ids, "part": {**part, "text": ""}},
                )
            )
            events += [
                (
                    "response.output_text.delta",
                    {"type": "response.output_text.delta", **ids, "delta": text[k : k + step]},
                )
                for k in range(0, len(text), step)
            ]
            events.append(("response.output_text.done", {"type": "response.output_text.done", **ids, "text": text}))
            events.append(("response.content_part.done", {"type": "response.content_part.done", **ids, "part": part}))
        else:
            key = "input" if item["type"] == "custom_tool_call" else "arguments"
            kind = "custom_tool_call_input" if key == "input" else "function_call_arguments"
            events.append(
                (
                    "response.output_item.added",
                    {
                        "type": "response.output_item.added",
                        "output_index": i,
                        "item": {**item, "status": "in_progress", key: ""},
                    },
                )
            )
            ids = {"item_id": item["id"], "output_index": i}
            events.append((f"response.{kind}.delta", {"type": f"response.{kind}.delta", **ids, "delta": item[key]}))
            events.append((f"response.{kind}.done", {"type": f"response.{kind}.done", **ids, key: item[key]}))
        events.append(
            ("response.output_item.done", {"type": "response.output_item.done", "output_index": i, "item": item})
        )
    events.append(("response.completed", {"type": "response.completed", "response": response}))
    for i, (_, data) in enumerate(events):  # the real stream numbers its events
        data["sequence_number"] = i
    return events


class _Handler(BaseHTTPRequestHandler):
    server_version = "scripted-openai/1"
    protocol_version = "HTTP/1.1"
    owner: ScriptedServer  # set on a per-server subclass

    def setup(self):
        super().setup()
        # Headers and body go out in separate writes: without this, Nagle + delayed ACK add ~40 ms per answer.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, fmt, *args):  # quiet: the request record is the log
        pass

    def _send_json(self, code: int, obj: dict, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path.rstrip("/").endswith("/models"):
            now = int(time.time())
            data = [{"id": m, "object": "model", "created": now, "owned_by": "scripted"} for m in self.owner.models]
            self._send_json(200, {"object": "list", "data": data})
        else:
            self._send_json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})

    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode("utf-8", "replace")
        route = self.path.split("?", 1)[0].rstrip("/")
        api = next((name for suffix, name in _ROUTES if route.endswith(suffix)), None)
        if api is None:
            self._send_json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
            return
        try:
            body = json.loads(raw)
        except json.JSONDecodeError:
            self._send_json(400, {"error": {"message": "body is not JSON", "type": "invalid_request_error"}})
            return
        if api == "count_tokens":  # a size probe, not a model call: no script entry, not recorded
            self._send_json(200, {"input_tokens": max(1, len(raw) // 4)})
            return
        n, label, entry = self.owner._answer(self.path, self.headers, body, raw)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client may have given up (timeout)
            if api == "chat":
                self._respond(n, label, entry, body, raw)
            else:
                self._respond_other(api, n, entry, body, raw)

    def _respond(self, n: int, label: str, entry: dict, body: dict, raw: str) -> None:
        wait = self.owner.latency_s + float(entry.get("delay_s") or 0)
        if wait and self.owner._stopping.wait(wait):
            return
        status = int(entry.get("status") or 200)
        if status != 200:
            self._error(status, entry)
        elif "raw" in entry:
            self._send_raw(str(entry["raw"]))
        elif "drop_after" in entry and not body.get("stream"):
            self.close_connection = True  # no response at all: the client sees a disconnect
        elif body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            self._stream(n, body.get("model", "scripted-model"), entry, estimate_usage(raw, entry), include_usage)
        else:
            self._complete(n, body.get("model", "scripted-model"), entry, estimate_usage(raw, entry))

    def _error(self, status: int, entry: dict) -> None:
        kinds = {
            400: "invalid_request_error",
            401: "authentication_error",
            404: "not_found",
            429: "rate_limit_exceeded",
        }
        headers = {"Retry-After": str(entry["retry_after"])} if "retry_after" in entry else {}
        message = entry.get("error") or f"scripted HTTP {status}"
        self._send_json(
            status, {"error": {"message": message, "type": kinds.get(status, "server_error"), "code": status}}, headers
        )

    def _send_raw(self, text: str) -> None:
        data = text.encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _complete(self, n: int, model: str, entry: dict, usage: dict) -> None:
        calls = tool_call_objects(entry, n)
        message = {"role": "assistant", "content": entry.get("text") or ""}
        if calls:
            message["tool_calls"] = calls
        finish = entry.get("finish_reason") or ("tool_calls" if calls else "stop")
        self._send_json(
            200,
            {
                "id": f"chatcmpl-{n}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": []
                if entry.get("no_choices")
                else [{"index": 0, "message": message, "finish_reason": finish}],
                "usage": usage,
            },
        )

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _stream(self, n: int, model: str, entry: dict, usage: dict, include_usage: bool) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")  # a drop mid-body is then a protocol error, not a clean EOF
        self.end_headers()
        base = {"id": f"chatcmpl-{n}", "object": "chat.completion.chunk", "created": int(time.time()), "model": model}

        def event(choices: list, **extra) -> None:
            self._chunk(b"data: " + json.dumps({**base, "choices": choices, **extra}).encode() + b"\n\n")

        event([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
        text, step = entry.get("text") or "", int(self.owner.chunk_chars)
        drop_after = entry.get("drop_after")
        for i, start in enumerate(range(0, len(text), step)):
            if drop_after is not None and i >= drop_after:
                self._drop()
                return
            event([{"index": 0, "delta": {"content": text[start : start + step]}, "finish_reason": None}])
        if drop_after is not None:  # fewer deltas than drop_after: still never finish
            self._drop()
            return
        calls = tool_call_objects(entry, n)
        for j, call in enumerate(calls):
            event([{"index": 0, "delta": {"tool_calls": [{"index": j, **call}]}, "finish_reason": None}])
        finish = entry.get("finish_reason") or ("tool_calls" if calls else "stop")
        event([{"index": 0, "delta": {}, "finish_reason": finish}])
        if include_usage:
            event([], usage=usage)
        self._chunk(b"data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _respond_other(self, api: str, n: int, entry: dict, body: dict, raw: str) -> None:
        """The Anthropic Messages and OpenAI Responses answers (same entries, same faults as chat)."""
        wait = self.owner.latency_s + float(entry.get("delay_s") or 0)
        if wait and self.owner._stopping.wait(wait):
            return
        status = int(entry.get("status") or 200)
        if status != 200:
            if api == "messages":
                self._send_json(
                    status,
                    {
                        "type": "error",
                        "error": {
                            "type": _ANTHROPIC_ERRORS.get(status, "api_error"),
                            "message": entry.get("error") or f"scripted HTTP {status}",
                        },
                    },
                )
            else:
                self._error(status, entry)
            return
        if "drop_after" in entry and not body.get("stream"):
            self.close_connection = True
            return
        model, usage = body.get("model", "scripted-model"), estimate_usage(raw, entry)
        if api == "messages":
            message = anthropic_message(n, model, entry, usage)
            if body.get("stream"):
                self._sse(anthropic_events(message, int(self.owner.chunk_chars)), entry.get("drop_after"))
            else:
                self._send_json(200, message)
        else:
            response = responses_object(n, model, entry, usage, body)
            if body.get("stream"):
                self._sse(responses_events(response, int(self.owner.chunk_chars)), entry.get("drop_after"))
            else:
                self._send_json(200, response)

    def _sse(self, events: list[tuple[str, dict]], drop_after: int | None) -> None:
        """Named SSE events (`event:` + `data:`), chunked; drop_after counts text deltas, as for chat."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        deltas = 0
        for name, data in events:
            if drop_after is not None and name in _TEXT_DELTAS:
                if deltas >= drop_after:
                    self._drop()
                    return
                deltas += 1
            if drop_after is not None and name in _FINAL_EVENTS:
                self._drop()
                return
            self._chunk(f"event: {name}\ndata: ".encode() + json.dumps(data).encode() + b"\n\n")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _drop(self) -> None:
        """Cut the connection in the middle of the chunked body."""
        self.wfile.flush()
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)
        self.close_connection = True


class _Server(ThreadingHTTPServer):
    # socketserver listens with a backlog of 5: 32 clients connecting at once (a sub_llm_batch, a batch of runs)
    # overflow it, the kernel drops their SYNs and each retries after 1 s, so a 0.2 s answer took 1.2 s (the
    # 6.42x of issue 12). 128 lets a burst of connections wait for accept() instead.
    request_queue_size = 128


class ScriptedServer:
    """The server; a context manager that starts it on a free port of 127.0.0.1 and stops it on exit."""

    def __init__(
        self,
        script: list | dict | Script | Answerer | None = None,
        *,
        models: list[str] | None = None,
        latency_s: float = 0.0,
        chunk_chars: int = 40,
        log_path: str | Path | None = None,
        exhausted: Entry = EXHAUSTED,
        port: int = 0,
    ):
        self.answerer: Answerer | None = script if callable(script) else None
        if isinstance(script, Script) or callable(script):
            self.script = script if isinstance(script, Script) else None
        else:
            self.script = Script(script or [], exhausted)
        self.models = list(models or ["scripted-model"])
        self.latency_s = latency_s
        self.chunk_chars = chunk_chars
        self.log_path = Path(log_path) if log_path else None
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        handler = type("BoundHandler", (_Handler,), {"owner": self})
        self.httpd = _Server(("127.0.0.1", port), handler)
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """What an OpenAI client takes as base_url / litellm as api_base."""
        return self.url + "/v1"

    def start(self) -> ScriptedServer:
        if self._thread is None:
            self._thread = threading.Thread(target=self.httpd.serve_forever, name="scripted-server", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers waiting on a delay
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join(5)
            self._thread = None
        self.httpd.server_close()

    def __enter__(self) -> ScriptedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _answer(self, path: str, headers, body: dict, raw: str) -> tuple[int, str, dict]:
        """Pick the entry for one request and record the request (thread-safe)."""
        with self._lock:
            n = len(self.requests) + 1
            record = {"n": n, "t": time.time(), "path": path, "headers": redact_headers(headers), "body": body}
            self.requests.append(record)
        if self.answerer is not None:
            label, entry = (
                "callable",
                as_entry(self.answerer({"n": n, "path": path, "headers": record["headers"], "body": body})),
            )
        else:
            label, entry = self.script.pick(raw)
        record["answered_with"] = label
        if self.log_path is not None:
            with self._lock, self.log_path.open("a", encoding="utf-8") as f:
                f.write(json.dumps({"n": n, "path": path, "answered_with": label, "body": body}) + "\n")
        return n, label, entry

    def bodies(self) -> list[dict]:
        """The JSON bodies received, in arrival order."""
        with self._lock:
            return [r["body"] for r in self.requests]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--script", required=True, type=Path, help="JSON: a list of turns or {rules, turns}")
    ap.add_argument("--log", type=Path, help="append every request as JSONL {n, path, answered_with, body}")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file", type=Path)
    ap.add_argument("--latency", type=float, default=0.0, help="seconds added to every answer")
    ap.add_argument("--model", action="append", default=[], help="model id listed by /v1/models (repeatable)")
    args = ap.parse_args()
    server = ScriptedServer(
        json.loads(args.script.read_text()),
        models=args.model,
        latency_s=args.latency,
        log_path=args.log,
        port=args.port,
    )
    if args.port_file:
        args.port_file.write_text(str(server.port))
    print(f"PORT {server.port}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.httpd.serve_forever()
    server.httpd.server_close()


if __name__ == "__main__":
    main()
