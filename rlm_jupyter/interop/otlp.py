"""A run's trace as OpenTelemetry spans with OpenInference kinds and attributes (plus the OTel GenAI `gen_ai.*`
attributes beside them), sent over OTLP/HTTP to Phoenix, Langfuse or any collector.

    run                  -> AGENT      input.value = question, output.value = answer, session.id, metadata
    step                 -> CHAIN      holding the root model's LLM span and one TOOL span per code block
    code (+ its output)  -> TOOL repl  input.value = code, output.value = what it printed; a failed block has
                                       status ERROR and an `exception` event
    query                -> RETRIEVER  retrieval.documents = the messages it returned (id, score; content when the
                                       context is given)
    sub_call             -> LLM        under the TOOL span whose code made it; a recursive `rlm(...)` call is the
                                       child run's own AGENT span there instead
    error, budget_stop   -> events on the closest span (errors as `exception` events)

Span and trace ids are hashes of the top-level run id and the event's position in the trace, so exporting the
same trace twice sends the same ids; times are the trace's, not the export's. Every attribute passes through
the export redactor. OpenTelemetry and openinference are imported on first use (the `export` extra).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..trace import Trace
from ._redact import redactor
from ._tree import child_run

SCOPE = "rlm_jupyter.interop"
BATCH = 512  # spans per OTLP request
DOC_CHARS = 2_000  # a retrieved message's content, as a document, is cut here (the whole message is in the
# session file; a span is for reading what the query got)


@dataclass
class SpanData:
    """One span, independent of the OpenTelemetry SDK (tests and other exporters read these)."""

    name: str
    kind: str  # OpenInference span kind: AGENT, CHAIN, LLM, TOOL, RETRIEVER
    trace_id: int  # 128 bits
    span_id: int  # 64 bits
    parent_id: int | None
    start_ns: int
    end_ns: int
    attributes: dict[str, Any]
    events: list[tuple[str, int, dict[str, Any]]] = field(default_factory=list)
    error: str | None = None  # status ERROR with this description; None: OK


def _hash(text: str, nbytes: int) -> int:
    n = int.from_bytes(hashlib.sha256(text.encode()).digest()[:nbytes], "big")
    return n or 1  # 0 is the invalid id in OpenTelemetry


def _ns(t: float | None) -> int:
    return int(round((t or 0.0) * 1e9))


def _end(e: dict) -> float:
    return (e.get("t") or 0.0) + (e.get("dur") or 0.0)


def _provider(model: str | None) -> str | None:
    """litellm's provider prefix ("anthropic/claude-…" -> anthropic); our local models are "rlm_jupyter"."""
    if not model:
        return None
    if model in ("offline", "offline-sub") or model.startswith(("script:", "replay:", "replay-sub:")):
        return "rlm_jupyter"
    if "/" in model:
        return model.split("/", 1)[0]
    if model.startswith(("gpt-", "o1", "o3", "o4")):
        return "openai"
    if model.startswith("claude"):
        return "anthropic"
    if model.startswith("gemini"):
        return "google"
    return None


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


class _Documents:
    """Message text by id, from a Context's table (duck-typed: anything with a polars `.df` having id and text)."""

    def __init__(self, context: Any):
        self.df = context.df
        self._index: dict[str, int] | None = None

    def get(self, msg_id: str) -> str | None:
        if self._index is None:
            self._index = {i: n for n, i in enumerate(self.df["id"].to_list()) if i is not None}
        n = self._index.get(msg_id)
        if n is None:
            return None
        row = self.df.row(n, named=True)
        parts = [row.get("text") or ""]
        for extra in ("tool_input", "tool_output"):
            if row.get(extra) and row[extra] not in parts[0]:
                parts.append(row[extra])
        text = "\n\n".join(p for p in parts if p)
        return text if len(text) <= DOC_CHARS else text[:DOC_CHARS] + "…"


def build_spans(trace: Trace, *, context: Any = None) -> list[SpanData]:
    """The spans of every top-level run in `trace` (one OTel trace per run), parents before children."""
    try:
        from openinference.semconv.trace import SpanAttributes  # noqa: F401  (fails early without the extra)
    except ImportError as e:
        raise ImportError("exporting over OTLP needs the `export` extra: pip install 'rlm-jupyter[export]'") from e
    docs = _Documents(context) if context is not None and hasattr(context, "df") else None
    position = {e["id"]: i for i, e in enumerate(trace.events)}
    spans: list[SpanData] = []
    for run in trace.runs:
        _RunSpans(trace, run, position, docs, spans).agent(run, None)
    redact = redactor()
    for s in spans:
        s.name = redact(s.name)
        s.attributes = {k: redact(v) for k, v in s.attributes.items() if v is not None}
        s.events = [(n, t, {k: redact(v) for k, v in a.items() if v is not None}) for n, t, a in s.events]
        s.error = redact(s.error) if s.error else None
    return spans


class _RunSpans:
    """Spans of one top-level run and everything below it (child runs included)."""

    def __init__(
        self, trace: Trace, root: dict, position: dict[str, int], docs: _Documents | None, out: list[SpanData]
    ):
        from openinference.semconv.trace import (
            DocumentAttributes,
            MessageAttributes,
            OpenInferenceSpanKindValues,
            SpanAttributes,
        )

        self.SA, self.MA, self.DA, self.K = (
            SpanAttributes,
            MessageAttributes,
            DocumentAttributes,
            OpenInferenceSpanKindValues,
        )
        self.trace, self.root, self.position, self.docs, self.out = trace, root, position, docs, out
        self.trace_id = _hash(f"rlm-jupyter trace {root['id']}", 16)
        self.session = root["id"]
        self._steps: dict[str, dict] = {}

    # -- helpers --------------------------------------------------------------------------------------------------
    def _span(
        self,
        event: dict,
        part: str,
        name: str,
        kind: Any,
        parent: SpanData | None,
        start: float,
        end: float,
        attrs: dict[str, Any],
    ) -> SpanData:
        sid = _hash(f"{self.root['id']}:{self.position[event['id']]}:{part}", 8)
        attrs = {
            self.SA.OPENINFERENCE_SPAN_KIND: kind.value,
            self.SA.SESSION_ID: self.session,
            "gen_ai.conversation.id": self.session,
            "rlm_jupyter.event.id": event["id"],
            **attrs,
        }
        span = SpanData(
            name=name,
            kind=kind.value,
            trace_id=self.trace_id,
            span_id=sid,
            parent_id=parent.span_id if parent else None,
            start_ns=_ns(start),
            end_ns=_ns(max(end, start)),
            attributes=attrs,
        )
        self.out.append(span)
        return span

    @staticmethod
    def _extend(span: SpanData, child: SpanData) -> None:
        """A parent lasts at least as long as its children (events without `dur` would otherwise end early)."""
        span.end_ns = max(span.end_ns, child.end_ns)

    def _note(self, span: SpanData, e: dict) -> None:
        """Events that are not spans: errors (as OTel `exception` events) and budget stops, on the closest span."""
        if e["type"] == "error":
            msg = e.get("message") or ""
            span.events.append(
                (
                    "exception",
                    _ns(e.get("t")),
                    {"exception.type": msg.split(":", 1)[0] if ":" in msg else "Error", "exception.message": msg},
                )
            )
        elif e["type"] == "budget_stop":
            span.events.append(
                (
                    "budget_stop",
                    _ns(e.get("t")),
                    {
                        "rlm_jupyter.budget": e.get("budget"),
                        "rlm_jupyter.budget.limit": e.get("limit"),
                        "rlm_jupyter.budget.used": e.get("used"),
                    },
                )
            )

    def _visit(self, e: dict, parent: SpanData) -> None:
        kind = e["type"]
        child = None
        if kind == "step":
            child = self.step(e, parent)
        elif kind == "code":
            child = self.tool(e, parent)
        elif kind == "query":
            child = self.retriever(e, parent)
        elif kind == "sub_call":
            child = self.sub_call(e, parent)
        elif kind in ("error", "budget_stop"):
            self._note(parent, e)
        if child is not None:
            self._extend(parent, child)

    # -- one method per span kind ---------------------------------------------------------------------------------
    def agent(self, run: dict, parent: SpanData | None, call: dict | None = None) -> SpanData:
        SA = self.SA
        kids = self.trace.children(run["id"])
        end = next((k for k in reversed(kids) if k["type"] == "run_end"), None)
        final = next((k for k in reversed(kids) if k["type"] == "final"), None)
        meta = {
            k: run.get(k)
            for k in (
                "model",
                "sub_model",
                "mode",
                "max_depth",
                "max_iterations",
                "depth",
                "budget",
                "sandbox",
                "context",
            )
        }
        if end is not None:
            meta.update(status=end.get("status"), stopped_by=end.get("stopped_by"), usage=end.get("usage"))
        if final is not None:
            meta["answer_via"] = final.get("via")
        question = run.get("question") or ""
        attrs = {
            SA.INPUT_VALUE: question,
            SA.INPUT_MIME_TYPE: "text/plain",
            SA.OUTPUT_VALUE: final.get("answer") if final else None,
            SA.OUTPUT_MIME_TYPE: "text/plain",
            SA.AGENT_NAME: "rlm",
            SA.METADATA: _json({k: v for k, v in meta.items() if v is not None}),
            SA.LLM_MODEL_NAME: run.get("model"),
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": "rlm",
            "gen_ai.request.model": run.get("model"),
        }
        name = "rlm" if parent is None else "rlm (child run)"
        span = self._span(
            run, "agent", name, self.K.AGENT, parent, run.get("t") or 0.0, (end or run).get("t") or 0.0, attrs
        )
        if end is not None and end.get("status") in ("error", "interrupted"):
            span.error = f"run ended with status {end.get('status')}"
        for k in kids:
            self._visit(k, span)
        return span

    def step(self, step: dict, parent: SpanData) -> SpanData:
        SA = self.SA
        index = step.get("index", 0)
        # the span name a user reads counts steps from 1, as the view ("#1"); metadata.index keeps the trace's
        chain = self._span(
            step,
            "chain",
            f"step {index + 1}",
            self.K.CHAIN,
            parent,
            step.get("t") or 0.0,
            _end(step),
            {
                SA.INPUT_VALUE: self._step_input(step),
                SA.OUTPUT_VALUE: step.get("response"),
                SA.METADATA: _json(
                    {
                        "index": index,
                        "prompt_messages": step.get("prompt_messages"),
                        "prompt_chars": step.get("prompt_chars"),
                    }
                ),
            },
        )
        llm = self._llm(step, "llm", chain, [("user", self._step_input(step))], step.get("response") or "")
        llm.attributes[SA.LLM_INVOCATION_PARAMETERS] = _json({"prompt_messages": step.get("prompt_messages")})
        if step.get("finish_reason"):
            llm.attributes[SA.LLM_FINISH_REASON] = step["finish_reason"]
            llm.attributes["gen_ai.response.finish_reasons"] = (step["finish_reason"],)
        if step.get("status") == "error":
            chain.error = step.get("error") or "the model call failed"
        self._extend(chain, llm)
        for k in self.trace.children(step["id"]):
            self._visit(k, chain)
        return chain

    def _step_input(self, step: dict) -> str:
        """What was new in this call's prompt: the question (step 0), else what the previous step's code printed.
        The trace keeps responses and outputs, not the prompt the loop assembled (system prompt, cut outputs)."""
        index = step.get("index", 0)
        run = self.trace.get(step["parent"]) if step.get("parent") else {}
        if index == 0:
            return run.get("question") or ""
        steps = self._steps.get(run.get("id"))
        if steps is None:  # index -> step, once per run (a long run would otherwise scan its steps per step)
            steps = self._steps[run.get("id")] = {s.get("index"): s for s in self.trace.children(run.get("id"), "step")}
        prev = [steps[index - 1]] if index - 1 in steps else []
        parts = []
        for code in self.trace.children(prev[0]["id"], "code") if prev else []:
            for out in self.trace.children(code["id"], "output"):
                parts.append((out.get("stdout") or "") + (out.get("stderr") or ""))
        return "\n\n".join(p for p in parts if p) or "(no output)"

    def _llm(self, e: dict, part: str, parent: SpanData, messages: list[tuple[str, str]], response: str) -> SpanData:
        SA, MA = self.SA, self.MA
        model = e.get("model")
        tin, tout = e.get("tokens_in"), e.get("tokens_out")
        attrs: dict[str, Any] = {
            SA.LLM_MODEL_NAME: model,
            SA.LLM_PROVIDER: _provider(model),
            SA.INPUT_VALUE: messages[-1][1] if messages else "",
            SA.INPUT_MIME_TYPE: "text/plain",
            SA.OUTPUT_VALUE: response,
            SA.OUTPUT_MIME_TYPE: "text/plain",
            SA.LLM_TOKEN_COUNT_PROMPT: tin,
            SA.LLM_TOKEN_COUNT_COMPLETION: tout,
            SA.LLM_TOKEN_COUNT_TOTAL: (tin or 0) + (tout or 0) if tin is not None or tout is not None else None,
            SA.LLM_TOKEN_COUNT_PROMPT_DETAILS_CACHE_READ: e.get("cache_read_tokens"),
            SA.LLM_TOKEN_COUNT_PROMPT_DETAILS_CACHE_WRITE: e.get("cache_write_tokens"),
            SA.LLM_COST_TOTAL: e.get("cost_usd"),
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": model,
            "gen_ai.provider.name": _provider(model),
            "gen_ai.usage.input_tokens": tin,
            "gen_ai.usage.output_tokens": tout,
        }
        for i, (role, content) in enumerate(messages):
            attrs[f"{SA.LLM_INPUT_MESSAGES}.{i}.{MA.MESSAGE_ROLE}"] = role
            attrs[f"{SA.LLM_INPUT_MESSAGES}.{i}.{MA.MESSAGE_CONTENT}"] = content
        attrs[f"{SA.LLM_OUTPUT_MESSAGES}.0.{MA.MESSAGE_ROLE}"] = "assistant"
        attrs[f"{SA.LLM_OUTPUT_MESSAGES}.0.{MA.MESSAGE_CONTENT}"] = response
        span = self._span(e, part, model or "llm", self.K.LLM, parent, e.get("t") or 0.0, _end(e), attrs)
        if e.get("status") == "error":
            span.error = e.get("error") or "the model call failed"
            span.events.append(
                ("exception", span.end_ns, {"exception.type": "ModelError", "exception.message": span.error})
            )
        return span

    def tool(self, code: dict, parent: SpanData) -> SpanData:
        SA = self.SA
        outputs = self.trace.children(code["id"], "output")
        out = outputs[-1] if outputs else {}
        printed = (out.get("stdout") or "") + (out.get("stderr") or "")
        end = max(out.get("t") or 0.0, (code.get("t") or 0.0) + (out.get("dur") or 0.0))
        span = self._span(
            code,
            "tool",
            "repl",
            self.K.TOOL,
            parent,
            code.get("t") or 0.0,
            end,
            {
                SA.TOOL_NAME: "repl",
                SA.TOOL_DESCRIPTION: "runs the root model's Python in the isolated REPL worker",
                SA.TOOL_PARAMETERS: _json({"code": code.get("code")}),
                SA.INPUT_VALUE: code.get("code"),
                SA.INPUT_MIME_TYPE: "text/x-python",
                SA.OUTPUT_VALUE: printed,
                SA.OUTPUT_MIME_TYPE: "text/plain",
                SA.METADATA: _json(
                    {
                        "index": code.get("index"),
                        "status": out.get("status"),
                        "stdout_bytes": out.get("stdout_bytes"),
                        "variables": out.get("variables"),
                    }
                ),
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": "repl",
            },
        )
        if out.get("status") in ("error", "killed"):
            span.error = out.get("error") or f"the code block was {out.get('status')}"
            first = span.error.strip().splitlines()[-1] if span.error.strip() else "Error"
            span.events.append(
                (
                    "exception",
                    _ns(out.get("t")),
                    {
                        "exception.type": first.split(":", 1)[0],
                        "exception.message": span.error,
                        "exception.stacktrace": out.get("stderr") or None,
                    },
                )
            )
        for k in self.trace.children(code["id"]):
            if k["type"] != "output":
                self._visit(k, span)
        return span

    def retriever(self, q: dict, parent: SpanData) -> SpanData:
        SA, DA = self.SA, self.DA
        args = q.get("args") or {}
        text = args.get("query") or args.get("pattern")
        attrs: dict[str, Any] = {
            SA.INPUT_VALUE: text if isinstance(text, str) else _json(args),
            SA.INPUT_MIME_TYPE: "text/plain" if isinstance(text, str) else "application/json",
            SA.METADATA: _json({"op": q.get("op"), "args": args, "latency_ms": q.get("latency_ms")}),
            "gen_ai.operation.name": "retrieval",
            "gen_ai.data_source.id": "context",
        }
        scores = q.get("scores") or []
        for i, msg_id in enumerate(q.get("result_ids") or []):
            key = f"{SA.RETRIEVAL_DOCUMENTS}.{i}"
            attrs[f"{key}.{DA.DOCUMENT_ID}"] = msg_id
            if i < len(scores) and isinstance(scores[i], (int, float)):
                attrs[f"{key}.{DA.DOCUMENT_SCORE}"] = float(scores[i])
            if self.docs is not None:
                attrs[f"{key}.{DA.DOCUMENT_CONTENT}"] = self.docs.get(msg_id)
        start = q.get("t") or parent.start_ns / 1e9
        span = self._span(
            q,
            "retriever",
            f"context.{q.get('op', 'query')}",
            self.K.RETRIEVER,
            parent,
            start,
            start + (q.get("latency_ms") or 0.0) / 1000,
            attrs,
        )
        if q.get("error"):
            span.error = str(q["error"])
        return span

    def sub_call(self, call: dict, parent: SpanData) -> SpanData:
        child = child_run(self.trace, call)
        if child is not None:
            return self.agent(child, parent, call)
        span = self._llm(call, "llm", parent, [("user", call.get("prompt") or "")], call.get("response") or "")
        span.attributes[self.SA.METADATA] = _json(
            {k: call.get(k) for k in ("kind", "batch", "batch_index") if call.get(k) is not None}
        )
        for k in self.trace.children(call["id"]):
            self._visit(k, span)
        return span


# -- sending ----------------------------------------------------------------------------------------------------


def send(
    spans: list[SpanData],
    endpoint: str,
    *,
    headers: dict[str, str] | None = None,
    timeout_s: float = 10,
    service: str = "rlm-jupyter",
    project: str | None = None,
) -> int:
    """POST the spans to an OTLP/HTTP traces endpoint (protobuf). Returns how many were sent; a one-line
    RuntimeError says why when the collector refused them or could not be reached."""
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import Event, ReadableSpan
        from opentelemetry.sdk.trace.export import SpanExportResult
        from opentelemetry.sdk.util.instrumentation import InstrumentationScope
        from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags
    except ImportError as e:
        raise ImportError("exporting over OTLP needs the `export` extra: pip install 'rlm-jupyter[export]'") from e
    from .. import __version__

    res = {"service.name": service, "service.version": __version__}
    if project:
        res["openinference.project.name"] = project  # Phoenix files the spans under this project
    resource = Resource.create(res)
    scope = InstrumentationScope(SCOPE, __version__)

    def ctx(trace_id: int, span_id: int) -> SpanContext:
        return SpanContext(trace_id, span_id, is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED))

    otel = []
    for s in spans:
        otel.append(
            ReadableSpan(
                name=s.name,
                context=ctx(s.trace_id, s.span_id),
                parent=ctx(s.trace_id, s.parent_id) if s.parent_id else None,
                resource=resource,
                attributes=s.attributes,
                events=[Event(n, a, timestamp=t) for n, t, a in s.events],
                kind=SpanKind.INTERNAL,
                instrumentation_scope=scope,
                status=Status(StatusCode.ERROR, s.error) if s.error else Status(StatusCode.OK),
                start_time=s.start_ns,
                end_time=s.end_ns,
            )
        )
    exporter = OTLPSpanExporter(endpoint=endpoint, headers=dict(headers or {}), timeout=timeout_s)
    reasons = _Reasons()
    log = logging.getLogger("opentelemetry.exporter.otlp.proto.http.trace_exporter")
    log.addHandler(reasons)
    try:
        for i in range(0, len(otel), BATCH):
            if exporter.export(otel[i : i + BATCH]) is not SpanExportResult.SUCCESS:
                why = redactor()(reasons.last or "no answer")
                raise RuntimeError(
                    f"OTLP export to {endpoint} failed ({why}); check that the collector runs, the "
                    "URL ends in /v1/traces (Langfuse: /api/public/otel/v1/traces) and the headers"
                )
    finally:
        log.removeHandler(reasons)
        exporter.shutdown()
    return len(otel)


class _Reasons(logging.Handler):
    """Keeps the exporter's last warning (it logs why an export failed instead of raising)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.last: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        self.last = " ".join(record.getMessage().split())[:300]


def export_otlp(
    trace: Trace,
    endpoint: str,
    *,
    headers: dict[str, str] | None = None,
    context: Any = None,
    project: str | None = None,
    timeout_s: float = 10,
    on_spans: Callable[[list[SpanData]], None] | None = None,
) -> dict[str, Any]:
    """Build the spans of `trace` and send them; returns {"spans", "traces", "endpoint"}."""
    spans = build_spans(trace, context=context)
    if on_spans is not None:
        on_spans(spans)
    n = send(spans, endpoint, headers=headers, timeout_s=timeout_s, project=project) if spans else 0
    return {
        "spans": n,
        "traces": len({s.trace_id for s in spans}),
        "endpoint": endpoint,
        "trace_ids": sorted({f"{s.trace_id:032x}" for s in spans}),
    }
