"""A tiny scripted OpenAI-compatible chat server for recording real agent sessions offline.

Standard library only. It binds 127.0.0.1 and serves:
  GET  /v1/models             -> the model ids named on the command line (or "scripted-model")
  POST /v1/chat/completions   -> the next scripted answer, plain JSON or SSE when "stream": true

Script (JSON): {"rules": [entry...], "turns": [entry...]} or just a list of turns.
An entry is
  {"text": "..."}                                     a plain answer, or
  {"tool_calls": [{"name": "read", "arguments": {...}}], "text": "optional preamble"}
plus optional keys:
  "match": "substring"   the entry only answers a request whose JSON body contains this substring
                         (or a list of substrings, any of which suffices)
  "usage": {"prompt_tokens": N, "completion_tokens": M, ...}  reported usage (else estimated from sizes)
  "note": "..."          free text, ignored (documents what the step is for)
Rules (always with "match") are reusable: each request first tries the rules in order, e.g. to answer
the agent's title-generation request whatever turn it arrives in. Otherwise the first unused turn whose
"match" (if any) occurs in the body is consumed. When no turn is left the server answers a fixed
"(script exhausted)" text and records that in the log.

Every request is appended to the --log JSONL file as {"n", "path", "body", "answered_with"}.

Usage: python scripted_openai_server.py --script s.json --log req.jsonl [--port 0] [--port-file f]
With --port 0 the OS picks a port; it is printed as "PORT <n>" on stdout and written to --port-file.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

EXHAUSTED = {"text": "(script exhausted)"}


class Script:
    """Hands out scripted entries; thread-safe because the agent may send requests in parallel."""

    def __init__(self, data: dict | list):
        if isinstance(data, list):
            data = {"turns": data}
        self.rules = list(data.get("rules", []))
        self.turns = list(data.get("turns", []))
        self.used = [False] * len(self.turns)
        self.lock = threading.Lock()

    def pick(self, body_text: str) -> tuple[str, dict]:
        with self.lock:
            for i, rule in enumerate(self.rules):
                if rule.get("match") and matches(rule["match"], body_text):
                    return f"rule:{i}", rule
            for i, turn in enumerate(self.turns):
                if self.used[i]:
                    continue
                if turn.get("match") and not matches(turn["match"], body_text):
                    continue
                self.used[i] = True
                return f"turn:{i}", turn
            return "exhausted", EXHAUSTED

    def remaining(self) -> int:
        with self.lock:
            return self.used.count(False)


def matches(pattern: str | list[str], body_text: str) -> bool:
    """A match is one substring or a list of alternatives (any one suffices)."""
    patterns = [pattern] if isinstance(pattern, str) else pattern
    return any(p in body_text for p in patterns)


def estimate_usage(body_text: str, entry: dict) -> dict:
    """Rough token counts (4 chars a token) unless the entry fixes them."""
    out_chars = len(entry.get("text") or "") + len(json.dumps(entry.get("tool_calls") or []))
    usage = {"prompt_tokens": max(1, len(body_text) // 4), "completion_tokens": max(1, out_chars // 4)}
    usage.update(entry.get("usage") or {})
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    return usage


def tool_call_objects(entry: dict, serial: int) -> list[dict]:
    calls = []
    for j, call in enumerate(entry.get("tool_calls") or []):
        args = call.get("arguments", {})
        calls.append({
            "id": call.get("id") or f"call_{serial:03d}_{j}",
            "type": "function",
            "function": {"name": call["name"], "arguments": args if isinstance(args, str) else json.dumps(args)},
        })
    return calls


class Handler(BaseHTTPRequestHandler):
    server_version = "scripted-openai/1"
    protocol_version = "HTTP/1.1"

    # Set on the class by main().
    script: Script
    log_path: Path
    models: list[str]
    counter = [0]
    log_lock = threading.Lock()

    def log_message(self, fmt, *args):  # keep stderr quiet; the JSONL log is the record
        pass

    def _send_json(self, code: int, obj: dict) -> None:
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path.rstrip("/").endswith("/models"):
            now = int(time.time())
            data = [{"id": m, "object": "model", "created": now, "owned_by": "scripted"} for m in self.models]
            self._send_json(200, {"object": "list", "data": data})
        else:
            self._send_json(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode("utf-8", "replace")
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._send_json(404, {"error": {"message": f"no route {self.path}"}})
            return
        try:
            body = json.loads(raw)
        except json.JSONDecodeError:
            self._send_json(400, {"error": {"message": "body is not JSON"}})
            return
        label, entry = self.script.pick(raw)
        with self.log_lock:
            self.counter[0] += 1
            n = self.counter[0]
            with self.log_path.open("a", encoding="utf-8") as f:
                f.write(json.dumps({"n": n, "path": self.path, "answered_with": label, "body": body}) + "\n")
        usage = estimate_usage(raw, entry)
        model = body.get("model", "scripted-model")
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            self._stream(n, model, entry, usage if include_usage else None)
        else:
            self._complete(n, model, entry, usage)

    def _complete(self, n: int, model: str, entry: dict, usage: dict) -> None:
        calls = tool_call_objects(entry, n)
        message = {"role": "assistant", "content": entry.get("text") or (None if calls else "")}
        if calls:
            message["tool_calls"] = calls
        self._send_json(200, {
            "id": f"chatcmpl-{n}", "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if calls else "stop"}],
            "usage": usage,
        })

    def _stream(self, n: int, model: str, entry: dict, usage: dict | None) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        base = {"id": f"chatcmpl-{n}", "object": "chat.completion.chunk", "created": int(time.time()), "model": model}

        def chunk(choices: list, **extra) -> None:
            self.wfile.write(b"data: " + json.dumps({**base, "choices": choices, **extra}).encode() + b"\n\n")
            self.wfile.flush()

        chunk([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
        text = entry.get("text") or ""
        for start in range(0, len(text), 40):  # a few deltas, like a real stream
            chunk([{"index": 0, "delta": {"content": text[start:start + 40]}, "finish_reason": None}])
        calls = tool_call_objects(entry, n)
        for j, call in enumerate(calls):
            chunk([{"index": 0, "delta": {"tool_calls": [{"index": j, **call}]}, "finish_reason": None}])
        chunk([{"index": 0, "delta": {}, "finish_reason": "tool_calls" if calls else "stop"}])
        if usage is not None:
            chunk([], usage=usage)
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()
        self.close_connection = True


def make_server(script: Script, log_path: Path, models: list[str], port: int = 0) -> ThreadingHTTPServer:
    handler = type("BoundHandler", (Handler,), {
        "script": script, "log_path": log_path, "models": models or ["scripted-model"], "counter": [0],
    })
    return ThreadingHTTPServer(("127.0.0.1", port), handler)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--script", required=True, type=Path)
    ap.add_argument("--log", required=True, type=Path)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file", type=Path)
    ap.add_argument("--model", action="append", default=[], help="model id listed by /v1/models (repeatable)")
    args = ap.parse_args()
    server = make_server(Script(json.loads(args.script.read_text())), args.log, args.model, args.port)
    port = server.server_address[1]
    if args.port_file:
        args.port_file.write_text(str(port))
    print(f"PORT {port}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()
