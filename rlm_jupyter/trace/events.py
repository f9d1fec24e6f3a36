"""The trace format's one definition: every event type, its payload fields, and the status values.

`schema.json` (what both readers check untrusted lines against) and `labextension/src/trace-events.ts` (the
front-end's types) are generated from this module by `python -m rlm_jupyter.trace.gen`; a test fails when they are
stale. TypedDicts, not pydantic models: events are plain dicts everywhere (written, read, sent to the widget), the
reader checks ~10 µs an event with the compiled schema, and the generated schema keeps the per-type
`if type == T then …` shape both checkers (and their fuzz test) rely on. Field metadata in `Annotated[...]`: a
string is the field's description, a dict extra JSON-Schema keywords, `LOOSE` a field typed for Python and
TypeScript but not checked by the readers (fields that predate the typing: an odd value there must not hide an
event of an old trace).

The format version is a major number: a reader opens every version up to its own and refuses a newer one (upgrade).
New optional fields and event types keep the version (old readers list an unknown event type as not shown).
"""

from typing import Annotated, Any, Literal, NotRequired, TypedDict, get_args

FORMAT = "rlm-jupyter-trace"
VERSION = 1

LOOSE = "loose"  # Annotated marker: typed, not checked by the readers

# How a run ended (run_end.status, Run.status). A budget or iteration stop keeps a (partial or forced) answer.
RunStatus = Literal["done", "max_iterations", "budget", "interrupted", "error"]
RUN_STATUSES: tuple[RunStatus, ...] = get_args(RunStatus)
# The statuses whose answer counts as the run's answer (the CLI exits 0, a child run's answer is returned).
ANSWERED: tuple[RunStatus, ...] = ("done", "max_iterations", "budget")
# An imported `rlms` run with no final answer (rlms.py and rlms.ts write it; the engine never does).
ImportedStatus = Literal["unfinished"]
# What the live view shows: a run going on, or how it ended (max_iterations is shown as done).
ViewStatus = Literal["running", "paused", "done", "interrupted", "error", "budget"]
VIEW_STATUSES: tuple[ViewStatus, ...] = get_args(ViewStatus)


def view_status(status: str) -> str:
    """The status the view shows for a run status (an iteration stop with its forced answer is shown as done)."""
    return "done" if status == "max_iterations" else status


OutputStatus = Literal["ok", "error", "killed"]
CallStatus = Literal["ok", "error"]
BudgetName = Literal["tokens", "usd", "seconds", "iterations", "depth"]


class Header(TypedDict):
    """Line 1 of a .rlmtrace.jsonl file (and the `header` of a notebook bundle)."""

    type: Literal["header"]
    format: Literal["rlm-jupyter-trace"]
    version: Annotated[int, {"minimum": 1}, "the format's major version; a reader refuses a newer one"]
    producer: NotRequired[Annotated[str, LOOSE]]
    title: NotRequired[Annotated[str | None, LOOSE, "notebook bundle: the view's title"]]
    status: NotRequired[Annotated[ViewStatus | None, LOOSE, "notebook bundle: the view's status when saved"]]
    budget: NotRequired[Annotated[dict[str, Any] | None, LOOSE, "notebook bundle: the run's budget"]]
    text_limit: NotRequired[Annotated[int, LOOSE, "notebook bundle: long texts were cut to this many characters"]]
    cut_events: NotRequired[Annotated[int, LOOSE, "notebook bundle: how many events have cut texts (`_cut`)"]]


class _Event(TypedDict):
    id: Annotated[str, {"minLength": 1}]
    parent: str | None
    t: Annotated[float, "epoch seconds when the event started"]
    dur: NotRequired[Annotated[float | None, "seconds"]]
    _cut: NotRequired[Annotated[dict[str, int], LOOSE, "notebook bundle: the full size of each cut field"]]


class BudgetLimits(TypedDict):
    """A run's budget (`rj.Budget.to_dict()`): only the limits that were set."""

    usd: NotRequired[float | None]
    tokens: NotRequired[int | None]
    seconds: NotRequired[float | None]
    iterations: NotRequired[int | None]
    depth: NotRequired[int | None]


class ContextShape(TypedDict):
    """The shape of the context a run was given (the view's header shows it)."""

    messages: NotRequired[int]
    tokens: NotRequired[int]
    sessions: NotRequired[int]
    formats: NotRequired[list[str]]
    roles: NotRequired[dict[str, int]]
    tool_calls: NotRequired[int]
    first: NotRequired[str | None]
    last: NotRequired[str | None]


class RerunOf(TypedDict):
    """Where a re-run came from (engine/rerun.py)."""

    run: NotRequired[str | None]
    trace_path: NotRequired[str | None]
    step: NotRequired[Annotated[int, "0-based, as the step events' index"]]
    replayed_steps: NotRequired[list[int]]
    edited: NotRequired[Literal["code", "response"] | None]
    replayed_sub_calls: NotRequired[int]
    live_calls_during_replay: NotRequired[int]


class RunEvent(_Event):
    """A (sub-)run starts: question, models, limits, context shape. A child run's parent is its sub_call."""

    type: Literal["run"]
    question: str
    model: str | None
    sub_model: NotRequired[str | None]
    mode: NotRequired[Literal["rlm", "hybrid"] | None]
    max_depth: NotRequired[int | None]
    max_iterations: NotRequired[int | None]
    budget: NotRequired[Annotated[BudgetLimits | None, "its fields are not checked"]]
    context: NotRequired[Annotated[ContextShape | None, "its fields are not checked"]]
    depth: NotRequired[Annotated[int, LOOSE, "0 for a top-level run, 1 for its child runs, …"]]
    sandbox: NotRequired[Annotated[str | None, LOOSE, "the worker's isolation level"]]
    rerun_of: NotRequired[Annotated[RerunOf, LOOSE, "a re-run: the run and step it started from"]]


class WorkerStartEvent(_Event):
    """Written when the run has its REPL worker: right after `run` when it started before the first step; after the
    first step's model call when it started during that call (`start_s`). `t` is when the run began waiting."""

    type: Literal["worker_start"]
    wait_s: Annotated[float, "seconds this run waited for its worker (~0 when a pre-started worker was ready)"]
    prestarted: bool
    isolation: NotRequired[Annotated[str | None, "the same value the run event reports"]]
    start_s: NotRequired[
        Annotated[float, "seconds the start took on a thread of its own, during the first model call (not waited)"]
    ]


class _ModelCall(TypedDict):
    """What a step and a sub-call record of their model call (Trace.usage sums these)."""

    tokens_in: NotRequired[int | None]
    tokens_out: NotRequired[int | None]
    cost_usd: NotRequired[float | None]
    cache_read_tokens: NotRequired[Annotated[int, LOOSE, "part of tokens_in, when the provider reported caching"]]
    cache_write_tokens: NotRequired[Annotated[int, LOOSE]]
    error_kind: NotRequired[Annotated[str, LOOSE, "auth, server, timeout, … (docs/trace.md)"]]


class StepEvent(_Event, _ModelCall):
    """One root-model call: prompt size, response, tokens, cost, latency."""

    type: Literal["step"]
    index: Annotated[int, {"minimum": 0}, "0-based in the file; shown 1-based"]
    response: str
    model: NotRequired[str | None]
    prompt_messages: NotRequired[int | None]
    status: NotRequired[Annotated[Literal["pending", "ok", "error"], LOOSE]]
    error: NotRequired[Annotated[str | None, LOOSE]]
    finish_reason: NotRequired[Annotated[str | None, LOOSE, "replayed / edited in a re-run"]]
    replayed: NotRequired[Annotated[bool, LOOSE, "a re-run's step given back from the recording"]]
    edited: NotRequired[Annotated[Literal["code", "response"], LOOSE, "a re-run's edited step"]]


class CodeEvent(_Event):
    """A code block of a step, as run in the worker."""

    type: Literal["code"]
    index: Annotated[int, {"minimum": 0}]
    code: str


class OutputEvent(_Event):
    """What a code block printed, its status and error."""

    type: Literal["output"]
    stdout: str
    stderr: str
    status: OutputStatus
    stdout_bytes: NotRequired[int | None]
    error: NotRequired[str | None]


class Snippet(TypedDict):
    id: str
    text: Annotated[str, "capped as the notebook bundle caps texts"]
    session_id: NotRequired[str | None]
    position: NotRequired[Annotated[int, LOOSE, "the message's position in its session"]]
    role: NotRequired[Annotated[str | None, LOOSE]]
    tool_name: NotRequired[Annotated[str | None, LOOSE]]


class QueryEvent(_Event):
    """A context query made by the code: op, args, result ids, scores, latency."""

    type: Literal["query"]
    op: str
    args: dict[str, Any]
    result_ids: list[str]
    scores: NotRequired[list[Any] | None]
    latency_ms: NotRequired[float | None]
    total: NotRequired[Annotated[int | None, LOOSE, "how many matched before the result was capped"]]
    snippets: NotRequired[Annotated[list[Snippet], "the messages the query returned, as the view shows them"]]


class SubCallEvent(_Event, _ModelCall):
    """A sub-model call made by the code; `child_run` names the run a recursive `rlm(...)` opened."""

    type: Literal["sub_call"]
    model: str | None
    prompt: str
    response: str
    status: CallStatus
    error: NotRequired[str | None]
    child_run: NotRequired[str | None]
    kind: NotRequired[Annotated[str, LOOSE, "sub_llm, sub_llm_batch or rlm"]]
    batch: NotRequired[Annotated[str, LOOSE, "the batch id of a sub_llm_batch call"]]
    batch_index: NotRequired[Annotated[int, LOOSE]]


class ErrorEvent(_Event):
    """Something failed outside a code block (model call, worker start)."""

    type: Literal["error"]
    message: str
    kind: NotRequired[Annotated[str, LOOSE, "e.g. unsandboxed"]]


class BudgetStopEvent(_Event):
    """A budget ended the run (or, for depth, a recursion)."""

    type: Literal["budget_stop"]
    budget: BudgetName
    limit: NotRequired[float | None]
    used: NotRequired[float | None]


class FinalEvent(_Event):
    """The answer and how it was given (FINAL, FINAL_VAR, answer dict, no-code, partial)."""

    type: Literal["final"]
    answer: str | None
    via: NotRequired[str | None]


class RunEndEvent(_Event):
    """A (sub-)run ends: status and usage."""

    type: Literal["run_end"]
    status: RunStatus | ImportedStatus
    usage: NotRequired[dict[str, Any] | None]
    stopped_by: NotRequired[Annotated[str | None, LOOSE, "the budget that stopped the run"]]
    error_kind: NotRequired[Annotated[str, LOOSE]]
    error: NotRequired[Annotated[str, LOOSE]]
    failed_calls: NotRequired[Annotated[dict[str, int], LOOSE, "failed steps and sub-calls by error kind"]]


# In the order of the old schema's list (new types last: the enum order is in readers' messages).
EVENT_MODELS: tuple[type, ...] = (
    RunEvent,
    StepEvent,
    CodeEvent,
    OutputEvent,
    QueryEvent,
    SubCallEvent,
    ErrorEvent,
    BudgetStopEvent,
    FinalEvent,
    RunEndEvent,
    WorkerStartEvent,
)
EVENT_TYPES: tuple[str, ...] = tuple(get_args(m.__annotations__["type"])[0] for m in EVENT_MODELS)
TraceEvent = (
    RunEvent
    | StepEvent
    | CodeEvent
    | OutputEvent
    | QueryEvent
    | SubCallEvent
    | ErrorEvent
    | BudgetStopEvent
    | FinalEvent
    | RunEndEvent
    | WorkerStartEvent
)


class ModelUsage(TypedDict):
    calls: int
    tokens_in: int
    tokens_out: int
    cost_usd: float


class Usage(ModelUsage):
    """`Trace.usage()`: summed over a run and everything below it (child runs included)."""

    per_model: dict[str, ModelUsage]
