"""mini-swe-agent 2.x trajectories (`*.traj.json`): `{info, messages, trajectory_format: "mini-swe-agent-1.x"}`.

`messages` are OpenAI chat messages plus an `extra` dict, read like openai_messages (tool calls answered by
`role:"tool"`, or the text-based mode's fenced ```mswea_bash_command answered by the next `user` message), and:
- the system prompt -> `system`/`harness`; the first `user` message (the task, from `instance_template`) ->
  `user`/`human`; later `user` messages that answer no command are harness (mini's own messages);
- a message with `extra.interrupt_type` (a format error: the reply had no or several commands) carries in
  `extra.response` the model reply mini rejected: that reply becomes an `assistant` row (with its tokens and cost)
  before the `user`/`harness` row of mini's error message;
- `role:"tool"` content is the JSON `{returncode, output, exception_info}` the model saw; `extra.returncode` > 0
  -> `error`;
- `role:"exit"` (how the run ended: `Submitted`, `LimitsExceeded`, `RepeatedFormatError`, an exception) ->
  `system`/`harness`, `raw_type="exit"`, its `exit_status` also in `Session.extra`.
Tokens, model, cost and time of an assistant row come from `extra.response` (litellm's response: `prompt_tokens`
include cached ones), `extra.cost` and `extra.timestamp` (epoch seconds); tool rows take their `extra.timestamp`.
`info.model_stats` (instance_cost, api_calls) and `info.exit_status` go to `Session.extra`; `info.submission` (the
patch) is not kept. mini-swe-agent 1.x files (no `trajectory_format`, or a bare message list) are read by
openai_messages.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..jsonio import as_dict, as_str, read_json
from ..model import Issue, Session
from ..textutil import cap, to_us, utf8_len
from .openai_messages import _Builder, content_id, content_text

NAME = "mini-swe-agent"
sniff_dir = None  # no folder store (formats.protocol.Format)
related = None  # a file stands alone (formats.protocol.Format)
discover = None  # no known place on this machine (formats.protocol.Format)

_TAIL = 4096


def sniff(probe) -> bool:
    head = probe.head.lstrip()
    if head[:1] != b"{" or b'"messages"' not in probe.head and b'"info"' not in probe.head:
        return False
    if isinstance(probe.first, dict):
        return _format_of(probe.first) is not None
    if b'"mini_version"' in probe.head and b'"trajectory_format"' in probe.head:
        return True
    try:  # mini writes trajectory_format last: look at the file's end
        with open(probe.path, "rb") as fh:
            fh.seek(0, 2)
            fh.seek(max(fh.tell() - _TAIL, 0))
            tail = fh.read()
    except OSError:
        return False
    return b'"trajectory_format": "mini-swe-agent' in tail or b'"trajectory_format":"mini-swe-agent' in tail


def _format_of(doc: Any) -> str | None:
    fmt = doc.get("trajectory_format") if isinstance(doc, dict) else None
    ok = isinstance(fmt, str) and fmt.startswith("mini-swe-agent") and isinstance(doc.get("messages"), list)
    return fmt if ok else None


def read(path, report) -> list[Session]:
    path = Path(path)
    raw = path.read_bytes()
    doc = read_json(path)
    fmt = _format_of(doc)
    if fmt is None:
        raise ValueError('not a mini-swe-agent trajectory (no trajectory_format "mini-swe-agent-…" with messages)')
    info = as_dict(doc.get("info"))
    s = Session(
        session_id=content_id(path, raw),
        format=NAME,
        path=str(path),
        producer="mini-swe-agent",
        producer_version=as_str(info.get("mini_version")),
        title=path.name.split(".", 1)[0],
        model=_model(info),
    )
    s.extra["trajectory_format"] = fmt
    for key in ("model_stats", "exit_status"):
        if key in info:
            s.extra[key] = info[key]
    _Mini(s, f"{path}#/messages", report, str(path)).run(doc["messages"])
    return [s]


def _model(info: dict) -> str | None:
    cfg = info.get("config")
    model = cfg.get("model") if isinstance(cfg, dict) else None
    name = model.get("model_name") if isinstance(model, dict) else None
    return name if isinstance(name, str) else None


class _Mini(_Builder):
    def __init__(self, s: Session, base: str, report, path: str):
        super().__init__(s, base)
        self.report = report
        self.path = path
        self.seen_task = False

    def run(self, messages: list) -> None:
        for i, m in enumerate(messages):
            if isinstance(m, dict):
                self.message(i, m)
            else:
                self.report.issues.append(
                    Issue(
                        self.path,
                        None,
                        "message is not a JSON object; skipped",
                        pointer=f"{self.base.split('#', 1)[1]}/{i}",
                    )
                )

    def message(self, i: int, m: dict) -> None:
        s = self.s
        role = m.get("role")
        extra = as_dict(m.get("extra"))
        src = f"{self.base}/{i}"
        first = len(s)
        if role == "exit":
            text = content_text(m.get("content")) or str(extra.get("exit_status") or "")
            s.add(
                role="system", origin="harness", text=cap(text), text_bytes=utf8_len(text), raw_type="exit", source=src
            )
            if extra.get("exit_status"):
                s.extra["exit_status"] = extra["exit_status"]
            return
        if role == "user" and extra.get("interrupt_type"):
            self.rejected_reply(extra, src)
            text = content_text(m.get("content"))
            self.pending_fence = None
            s.add(
                role="user",
                origin="harness",
                ts=_ts(extra),
                text=cap(text),
                text_bytes=utf8_len(text),
                raw_type=f"user/{extra['interrupt_type']}",
                source=src,
            )
            return
        if role == "user" and self.pending_fence is None:
            text = content_text(m.get("content"))
            s.add(
                role="user",
                origin="harness" if self.seen_task else "human",
                ts=_ts(extra),
                text=cap(text),
                text_bytes=utf8_len(text),
                raw_type="user",
                source=src,
            )
            self.seen_task = True
            return
        fence = self.pending_fence
        super().message(i, m)
        if role == "assistant":
            s.set(first, ts=_ts(extra), **_response_fields(extra))
            for r in range(first + 1, len(s)):
                s.set(r, ts=_ts(extra))
        elif role in ("tool", "user"):
            row = fence if role == "user" else self._last_filled(m)
            if row is not None:
                code = extra.get("returncode")
                if isinstance(code, int):
                    s.set(row, tool_status="error" if code > 0 else "ok")

    def _last_filled(self, m: dict) -> int | None:
        cid = m.get("tool_call_id")
        ids = self.s.columns["tool_call_id"]
        for r in range(len(ids) - 1, -1, -1):
            if ids[r] == cid:
                return r
        return None

    def rejected_reply(self, extra: dict, src: str) -> None:
        resp = extra.get("response")
        choices = resp.get("choices") if isinstance(resp, dict) else None
        msg = (
            choices[0].get("message")
            if isinstance(choices, list) and choices and isinstance(choices[0], dict)
            else None
        )
        if not isinstance(msg, dict):
            return
        text = content_text(msg.get("content"))
        self.s.add(
            role="assistant",
            origin="model",
            ts=_ts(resp, "created"),
            text=cap(text),
            text_bytes=utf8_len(text),
            raw_type="assistant/rejected",
            source=src,
            **_response_fields(extra),
        )


def _ts(d: Any, key: str = "timestamp") -> Any:
    v = d.get(key) if isinstance(d, dict) else None
    return to_us(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None  # epoch s -> µs


def _response_fields(extra: dict) -> dict:
    resp = as_dict(extra.get("response"))
    usage = resp.get("usage") if isinstance(resp.get("usage"), dict) else None
    out: dict = {}
    if isinstance(resp.get("model"), str):
        out["model"] = resp["model"]
    if isinstance(extra.get("cost"), (int, float)):
        out["cost_usd"] = float(extra["cost"])
    if usage:
        details = as_dict(usage.get("prompt_tokens_details"))
        prompt, cached = usage.get("prompt_tokens") or 0, details.get("cached_tokens") or 0
        out_details = usage.get("completion_tokens_details")
        reasoning = out_details.get("reasoning_tokens") if isinstance(out_details, dict) else None
        out.update(
            input_uncached=max(prompt - cached, 0),
            cache_read=cached,
            cache_write=0,
            output=usage.get("completion_tokens") or 0,
            reasoning=reasoning or 0,
            context_tokens=prompt,
        )
    return out
