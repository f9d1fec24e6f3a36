"""Runs against model servers that fail (issue 19, engine side): a slow server stays inside the seconds budget, a
server that never answers is bounded by the per-call timeouts, 401 is not retried, and the run's end says what
failed (`Run.error_kind`, `run_end.error_kind`). Real runs: the real worker, litellm, a real HTTP server."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import rlm_jupyter as rj
from rlm_jupyter.engine.budget import Budget
from rlm_jupyter.engine.loop import rlm
from rlm_jupyter.engine.models import DEFAULT_CALL_TIMEOUT_S, Models
from rlm_jupyter.testing import ScriptedServer, ServerModels
from rlm_jupyter.trace import Trace

CLAUDE = "claude-code/codemie-session-9eda1058.jsonl"
CODE = "```repl\nprint(len(context))\n```"


@pytest.fixture(scope="module")
def ctx(samples):
    from rlm_jupyter.engine.models import load_litellm

    load_litellm()  # its import (seconds) happens before a run's clock starts; keep it out of the timings
    return rj.load(samples / CLAUDE)


def server_models(base_url: str, **options) -> ServerModels:
    """The real client against the test server, with the library's own timeouts and a quick retry."""
    return ServerModels(base_url, **{"retries": 2, "backoff_s": 0.05, "timeout_s": DEFAULT_CALL_TIMEOUT_S, **options})


class RawServer:
    """Answers every POST with a fixed status and raw body (garbage, or JSON that is not a chat completion)."""

    def __init__(self, status: int, body: bytes):
        self.requests = 0
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                outer.requests += 1
                self.rfile.read(int(self.headers.get("content-length") or 0))
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()


def ask(ctx, models, tmp_path, **kw):
    return rlm(
        "How many messages?",
        ctx,
        model="openai/scripted-model",
        sub_model="openai/scripted-model",
        models=models,
        trace_path=tmp_path / "run.rlmtrace.jsonl",
        **kw,
    )


def test_a_slow_server_does_not_run_past_the_seconds_budget(ctx, tmp_path):
    with ScriptedServer([CODE, {"text": "FINAL(late)", "delay_s": 30}]) as srv:
        t0 = time.monotonic()
        run = ask(ctx, server_models(srv.base_url), tmp_path, budget=Budget(seconds=4))
        wall = time.monotonic() - t0
    assert run.usage["wall_s"] < 6.5 and wall < 9, f"the run took {run.usage['wall_s']} s against a 4 s budget"
    assert run.status == "budget" and run.stopped_by == "seconds"
    end = Trace.load(tmp_path / "run.rlmtrace.jsonl").of_type("run_end")[-1]
    assert end["stopped_by"] == "seconds"


def test_a_server_that_never_answers_is_bounded_by_the_call_timeouts(ctx, tmp_path):
    with ScriptedServer([{"text": "x", "delay_s": 120}] * 10) as srv:
        t0 = time.monotonic()
        run = ask(ctx, server_models(srv.base_url, timeout_s=1.5, total_timeout_s=3.5), tmp_path)
        wall = time.monotonic() - t0
        attempts = len(srv.requests)
    assert wall < 7, f"{wall:.1f} s: per attempt 1.5 s, per call 3.5 s"
    assert attempts <= 3
    assert run.status == "error" and run.error_kind == "timeout", (run.status, run.error_kind, run.error)
    end = Trace.load(tmp_path / "run.rlmtrace.jsonl").of_type("run_end")[-1]
    assert end["error_kind"] == "timeout" and "did not answer in time" in end["error"]


def test_auth_failure_is_not_retried_and_the_run_says_auth(ctx, tmp_path):
    with ScriptedServer([{"status": 401, "error": "Incorrect API key provided"}] * 5) as srv:
        run = ask(ctx, server_models(srv.base_url), tmp_path)
        attempts = len(srv.requests)
    assert attempts == 1
    assert run.status == "error" and run.error_kind == "auth" and run.answer is None
    assert "check the API key" in run.error


def test_server_errors_are_retried_then_reported(ctx, tmp_path):
    with ScriptedServer([{"status": 500, "error": "boom"}] * 5) as srv:
        run = ask(ctx, server_models(srv.base_url, retries=1), tmp_path)
        attempts = len(srv.requests)
    assert attempts == 2
    assert run.status == "error" and run.error_kind == "server", run.error


@pytest.mark.parametrize(
    "body", [b"<html>not json</html>", json.dumps({"id": "x", "object": "chat.completion", "choices": []}).encode()]
)
def test_a_response_that_is_not_a_chat_completion_is_a_bad_response(ctx, tmp_path, body):
    with RawServer(200, body) as srv:
        run = ask(ctx, server_models(srv.base_url, retries=0), tmp_path)
    assert run.status == "error" and run.error_kind == "bad_response", (run.error_kind, run.error)


def test_failed_sub_calls_are_counted_at_the_run_end(ctx, tmp_path):
    script = tmp_path / "s.json"
    script.write_text(
        json.dumps(
            {
                "root": ["```repl\nprint(sub_llm('a'))\nprint(sub_llm('b', model='gpt-4o'))\n```", "FINAL(done)"],
                "sub": [],
            }
        )
    )
    run = rlm(
        "q",
        ctx,
        model=f"script:{script}",
        sub_model=f"script:{script}",
        models=Models(),
        trace_path=tmp_path / "t.jsonl",
    )
    assert run.status == "done"
    end = run.trace.of_type("run_end")[-1]
    assert end["failed_calls"] == {"model": 1, "refused": 1}  # script exhausted; a model the run was not given
