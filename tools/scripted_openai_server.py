"""The scripted model server used to record agent sessions offline: a thin wrapper.

The server itself is rlm_jupyter/testing/scripted_server.py (OpenAI chat completions, Anthropic Messages, OpenAI
Responses; script format, faults and request log are described there). This file keeps the interface that
tools/record_opencode.py was written against, and the same command line:

    python tools/scripted_openai_server.py --script s.json --log req.jsonl [--port 0] [--port-file f] [--model m]
"""

from __future__ import annotations

import sys
from http.server import ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing the package
from rlm_jupyter.testing.scripted_server import Script, ScriptedServer, main  # noqa: E402

__all__ = ["Script", "make_server", "main"]


def make_server(script: Script, log_path: Path, models: list[str], port: int = 0) -> ThreadingHTTPServer:
    """An unstarted server on 127.0.0.1 (port 0 = any free port): call serve_forever() / shutdown() on it.

    Every request is appended to log_path as JSONL {"n", "path", "answered_with", "body"}."""
    return ScriptedServer(script, models=models, log_path=log_path, port=port).httpd


if __name__ == "__main__":
    main()
