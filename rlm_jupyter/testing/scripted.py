"""Scripted root and sub models for tests and demos: the replies a `script:FILE` model gives, in order.

    model = script_model(tmp_path, [repl("print(1)"), "FINAL(done)"], sub=["a sub answer"])
    rlm("q", ctx, model=model, sub_model=model)

The `script:` provider (engine/models.py) is the real litellm path; only the replies are fixed.
"""

from __future__ import annotations

import json
from pathlib import Path


def repl(code: str) -> str:
    """A reply that runs `code` in the REPL (a ```repl block, as the root model writes it)."""
    return f"```repl\n{code}\n```"


def script_model(folder: Path, root: list[str], sub: list[str] | None = None) -> str:
    """Write the replies to a new JSON file in `folder` and return its model name ("script:FILE"): root-role calls
    take `root` in order, sub-model calls `sub`."""
    folder = Path(folder)
    path = folder / f"script-{len(list(folder.iterdir()))}.json"
    path.write_text(json.dumps({"root": root, "sub": sub or []}))
    return f"script:{path}"
