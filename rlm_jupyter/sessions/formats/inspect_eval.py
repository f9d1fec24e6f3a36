"""inspect_ai evaluation logs: `.eval` (a zip: `header.json`, `samples/<id>_epoch_<n>.json`, …) and `.json` (one
object `{version, status, eval, plan, results, stats, samples[]}`). One session per sample and epoch.

A sample's `messages` are the conversation the model had (inspect's ChatMessage list):
- `system` -> `system`/`harness`; `user` -> `user`/`human` when `source` is `"input"` (the sample's input; logs
  older than the `source` field: the first user message), else `user`/`harness` (solver nudges such as
  basic_agent's "Please proceed to the next step…", a slash command likewise);
- `assistant` -> `assistant`/`model` (`text` and `reasoning` content parts as text and thinking); each of its
  `tool_calls` -> a tool row, filled by the `tool` message whose `tool_call_id` names it; a tool message with an
  `error` (`{type, message}`: parsing, timeout, permission, …) -> `error`.
Tokens and times come from the sample's `model` events: the event whose output message id is an assistant row's
id gives that row its `usage` (inspect already splits it: `input_tokens` exclude cache reads and writes) and its
time; `tool` events give tool rows their time. Content stored as `attachment://<hash>` is read from the sample's
`attachments`. Scores, the sample's error and `model_usage` go to `Session.extra`. The zip members of inspect ≥0.3.1xx
are zstd-compressed (method 93): reading them needs the `zstandard` package (`pip install rlm-jupyter[zstd]`).
"""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path
from typing import Any

import orjson

from ..jsonio import as_dict, as_list, as_str, read_json
from ..model import Issue, Session
from ..textutil import cap, is_slash_command, media_placeholder, one_line, to_json, to_us, utf8_len

NAME = "inspect"
sniff_dir = None  # no folder store (formats.protocol.Format)
related = None  # a file stands alone (formats.protocol.Format)
discover = None  # no known place on this machine (formats.protocol.Format)

_ZSTD = 93
_ZSTD_HINT = "pip install rlm-jupyter[zstd]"
_ATTACHMENT = "attachment://"


def sniff(probe) -> bool:
    head = probe.head
    if head.startswith(b"PK\x03\x04"):
        return (
            b"_journal/start.json" in head[:512]
            or b"header.json" in head[:512]
            or (b"samples/" in head[:512] and zipfile.is_zipfile(probe.path) and _has_header(probe.path))
        )
    if head.lstrip()[:1] != b"{":
        return False
    first = probe.first
    if isinstance(first, dict):
        return _is_log(first)
    return b'"eval": {' in head and b'"task_id"' in head and b'"run_id"' in head and b'"status"' in head


def _has_header(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as z:
            return "header.json" in z.namelist()
    except (zipfile.BadZipFile, OSError):
        return False


def _is_log(doc: Any) -> bool:
    ev = doc.get("eval") if isinstance(doc, dict) else None
    return isinstance(ev, dict) and "task" in ev and "run_id" in ev and "status" in doc


# ---------------------------------------------------------------- reading


def read(path, report) -> list[Session]:
    path = Path(path)
    if _starts_zip(path):
        header, samples = _read_zip(path, report)
    else:
        doc = read_json(path)
        if not _is_log(doc):
            raise ValueError("not an inspect_ai log (no eval with task and run_id)")
        header = doc
        samples = [(f"/samples/{i}", s) for i, s in enumerate(doc.get("samples") or [])]
        if not samples:
            report.issues.append(
                Issue(str(path), None, "the log holds no samples (written with --no-log-samples?)", "note")
            )
    ev = as_dict(header.get("eval"))
    out = []
    for pointer, sample in samples:
        if not isinstance(sample, dict):
            report.issues.append(Issue(str(path), None, "sample is not a JSON object; skipped", pointer=pointer))
            continue
        out.append(_sample(path, pointer, ev, header, sample, report))
    return out


def _starts_zip(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(4) == b"PK\x03\x04"


def _read_zip(path: Path, report) -> tuple[dict, list[tuple[str, Any]]]:
    try:
        z = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise ValueError(f"not a readable .eval zip ({exc})") from None
    with z, open(path, "rb") as fh:
        names = z.namelist()
        header: dict = {}
        for name in ("header.json", "_journal/start.json"):
            if name in names:
                value = _member(z, fh, name)
                if isinstance(value, dict):
                    header = value
                    break
        if not _is_log(header) and not isinstance(header.get("eval"), dict):
            raise ValueError("an .eval zip without header.json or _journal/start.json: not an inspect_ai log")
        samples = []
        for name in sorted(n for n in names if n.startswith("samples/") and n.endswith(".json")):
            try:
                samples.append((f"/{name}", _member(z, fh, name)))
            except ValueError as exc:
                report.issues.append(Issue(str(path), None, f"{exc}; sample skipped", pointer=f"/{name}"))
    return header, samples


def _member(z: zipfile.ZipFile, fh, name: str) -> Any:
    info = z.getinfo(name)
    if info.compress_type == _ZSTD:  # zipfile (before Python 3.14) cannot open these: decompress the raw bytes
        try:
            import zstandard
        except ImportError:
            raise ValueError(f"{name} is zstd-compressed; install the zstandard package: {_ZSTD_HINT}") from None
        fh.seek(info.header_offset)
        local = fh.read(30)
        if local[:4] != b"PK\x03\x04":
            raise ValueError(f"{name}: bad zip local header")
        name_len, extra_len = struct.unpack("<HH", local[26:30])
        fh.seek(info.header_offset + 30 + name_len + extra_len)
        raw = zstandard.ZstdDecompressor().decompressobj().decompress(fh.read(info.compress_size))
    else:
        raw = z.read(name)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"{name}: not valid JSON ({str(exc)[:80]})") from None


def _sample(path: Path, pointer: str, ev: dict, header: dict, sample: dict, report) -> Session:
    sid_part, epoch = sample.get("id"), sample.get("epoch", 1)
    run = ev.get("eval_id") or ev.get("run_id") or path.stem
    session_id = sample.get("uuid") or f"{run}/{sid_part}/{epoch}"
    packages = as_dict(ev.get("packages"))
    s = Session(
        session_id=str(session_id),
        format=NAME,
        path=str(path),
        producer="inspect_ai",
        producer_version=packages.get("inspect_ai"),
        title=f"{ev.get('task')} {sid_part} (epoch {epoch})",
        model=as_str(ev.get("model")),
    )
    s.started, s.updated = _us(sample.get("started_at")), _us(sample.get("completed_at"))
    s.extra.update(
        {
            k: sample[k]
            for k in ("id", "epoch", "scores", "error", "model_usage", "total_time", "working_time")
            if sample.get(k) is not None
        }
    )
    s.extra.update(
        {
            "task": ev.get("task"),
            "eval_id": ev.get("eval_id"),
            "run_id": ev.get("run_id"),
            "log_status": header.get("status"),
        }
    )
    _Messages(s, f"{path}#{pointer}", sample, report).run()
    return s


def _us(v: Any) -> int | None:
    return to_us(v) if isinstance(v, str) else None


class _Messages:
    def __init__(self, s: Session, base: str, sample: dict, report):
        self.s = s
        self.base = base
        self.report = report
        self.attachments = as_dict(sample.get("attachments"))
        self.messages = as_list(sample.get("messages"))
        self.open_calls: dict[str, int] = {}
        self.seen_input = False
        self.has_source = any(isinstance(m, dict) and m.get("source") for m in self.messages)
        self.model_events: dict[str, dict] = {}
        self.tool_times: dict[object, Any] = {}  # tool event id, as written -> its time
        for e in sample.get("events") or []:
            if not isinstance(e, dict):
                continue
            if e.get("event") == "model":
                out = as_dict(e.get("output"))
                choices = as_list(out.get("choices"))
                msg = choices[0].get("message") if choices and isinstance(choices[0], dict) else None
                if isinstance(msg, dict) and msg.get("id"):
                    self.model_events[msg["id"]] = e
            elif e.get("event") == "tool" and e.get("id"):
                self.tool_times[e["id"]] = e.get("completed") or e.get("timestamp")

    def text(self, value: Any) -> tuple[str, str | None]:
        """(text, thinking) of a message's content: a string or a list of content parts."""
        if isinstance(value, str):
            return self.resolve(value), None
        texts, thoughts = [], []
        for part in value if isinstance(value, list) else []:
            if not isinstance(part, dict):
                continue
            kind = part.get("type")
            if kind == "text":
                texts.append(self.resolve(part.get("text") or ""))
            elif kind == "reasoning":
                thoughts.append(self.resolve(part.get("reasoning") or part.get("summary") or ""))
            elif kind in ("image", "audio", "video", "document"):
                data = as_str(part.get(kind)) or ""
                texts.append(media_placeholder(part.get("format") or kind, len(data) * 3 // 4))
            else:
                texts.append(to_json(part) or "")
        return "\n".join(t for t in texts if t), ("\n".join(thoughts) or None)

    def resolve(self, text: str) -> str:
        if text.startswith(_ATTACHMENT):
            return str(self.attachments.get(text[len(_ATTACHMENT) :], text))
        return text

    def run(self) -> None:
        for i, m in enumerate(self.messages):
            src = f"{self.base}/messages/{i}"
            if not isinstance(m, dict):
                self.report.issues.append(
                    Issue(self.s.path, None, "message is not a JSON object; skipped", pointer=src.split("#", 1)[1])
                )
                continue
            self.message(m, src)

    def message(self, m: dict, src: str) -> None:
        s = self.s
        role = m.get("role")
        text, thinking = self.text(m.get("content"))
        if role == "assistant":
            self.assistant(m, text, thinking, src)
        elif role == "tool":
            self.tool(m, text, src)
        elif role == "user":
            human = (m.get("source") == "input") if self.has_source else not self.seen_input
            human = human and not is_slash_command(text)
            self.seen_input = True
            s.add(
                role="user",
                origin="human" if human else "harness",
                id=m.get("id"),
                text=cap(text),
                text_bytes=utf8_len(text),
                raw_type="user" + (f"/{m['source']}" if m.get("source") else ""),
                source=src,
            )
        else:
            s.add(
                role="system",
                origin="harness",
                id=m.get("id"),
                text=cap(text),
                text_bytes=utf8_len(text),
                raw_type=str(role),
                source=src,
            )

    def assistant(self, m: dict, text: str, thinking: str | None, src: str) -> None:
        s = self.s
        event = self.model_events.get(m.get("id") or "")
        out = event.get("output") if event else None
        usage = out.get("usage") if isinstance(out, dict) and isinstance(out.get("usage"), dict) else None
        tokens: dict[str, Any] = {}
        if usage:
            tokens = {
                "input_uncached": usage.get("input_tokens") or 0,
                "cache_read": usage.get("input_tokens_cache_read") or 0,
                "cache_write": usage.get("input_tokens_cache_write") or 0,
                "output": usage.get("output_tokens") or 0,
                "reasoning": usage.get("reasoning_tokens") or 0,
            }
            if isinstance(usage.get("total_cost"), (int, float)):
                tokens["cost_usd"] = float(usage["total_cost"])
        ts = event.get("timestamp") if event else None
        row = s.add(
            role="assistant",
            origin="model",
            id=m.get("id"),
            ts=ts,
            text=cap(text),
            text_bytes=utf8_len(text),
            thinking=thinking,
            model=m.get("model") or s.model,
            raw_type="assistant",
            source=src,
            **tokens,
        )
        parent = s.get(row, "id")
        for call in m.get("tool_calls") or []:
            if not isinstance(call, dict):
                continue
            name = call.get("function") or "unknown"
            args = call.get("arguments")
            short = next(
                (
                    args[k]
                    for k in ("command", "cmd", "code", "path", "answer", "query")
                    if isinstance(args, dict) and isinstance(args.get(k), str)
                ),
                None,
            )
            cid = call.get("id")
            self.open_calls[cid or ""] = s.add(
                role="tool",
                origin="tool",
                id=cid,
                parent_id=parent,
                ts=self.tool_times.get(cid) or ts,
                text=one_line(f"{name}: {short if short is not None else to_json(args)}"),
                tool_name=name,
                tool_call_id=cid,
                tool_input=to_json(args),
                raw_type="tool_call",
                source=src,
            )

    def tool(self, m: dict, text: str, src: str) -> None:
        s = self.s
        err = m.get("error") if isinstance(m.get("error"), dict) else None
        if err and not text:
            text = f"{err.get('type')}: {err.get('message')}"
        row = self.open_calls.pop(m.get("tool_call_id") or "", None)
        if row is None:
            name = m.get("function") or "unknown"
            row = s.add(
                role="tool",
                origin="tool",
                text=one_line(f"{name}: (result without a call)"),
                tool_name=name,
                tool_call_id=m.get("tool_call_id"),
                raw_type="tool",
                source=src,
            )
        s.set(
            row,
            tool_output=cap(text),
            tool_output_bytes=utf8_len(text),
            tool_status="error" if err else "ok",
            source=src,
        )
