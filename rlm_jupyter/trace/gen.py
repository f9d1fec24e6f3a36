"""Generate the trace format's derived files from `events.py`: `trace/schema.json` (both readers check untrusted
lines against it) and `labextension/src/trace-events.ts` (the front-end's event types and status lists).

    python -m rlm_jupyter.trace.gen          # rewrite both
    python -m rlm_jupyter.trace.gen --check  # exit 1 when either is stale (tests/test_trace_events.py runs it)
"""

import json
import sys
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints, is_typeddict

from . import events as ev

SCHEMA_PATH = Path(__file__).parent / "schema.json"
TS_PATH = Path(__file__).parents[2] / "labextension" / "src" / "trace-events.ts"
_BASE = (*get_type_hints(ev._Event), "type")  # the fields every event has
_JSON_TYPES = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    type(None): "null",
    dict: "object",
    list: "array",
}
_TS_TYPES = {str: "string", int: "number", float: "number", bool: "boolean", type(None): "null"}
# Literal types the TypeScript file names (a field of one of these types is written with the name)
_ALIASES = {
    "RunStatus": ev.RunStatus,
    "ImportedStatus": ev.ImportedStatus,
    "ViewStatus": ev.ViewStatus,
    "OutputStatus": ev.OutputStatus,
    "CallStatus": ev.CallStatus,
    "BudgetName": ev.BudgetName,
}


def _hints(td: type) -> dict[str, Any]:
    return get_type_hints(td, include_extras=True)


def _split(tp: Any) -> tuple[Any, list[Any]]:
    """(the type, its Annotated metadata), NotRequired / Required taken off."""
    meta: list[Any] = []
    while True:
        origin = get_origin(tp)
        if origin is typing.Annotated:
            tp, *more = get_args(tp)
            meta.extend(more)
        elif origin in (typing.NotRequired, typing.Required):
            tp = get_args(tp)[0]
        else:
            return tp, meta


def _members(tp: Any) -> list[Any]:
    if get_origin(tp) in (Union, types.UnionType):
        return [m for a in get_args(tp) for m in _members(a)]
    return [tp]


def _schema(tp: Any) -> dict[str, Any]:
    """The JSON Schema of a type, in the style schema.json always had (`"type": ["string", "null"]`)."""
    tp, meta = _split(tp)
    members = _members(tp)
    literals = [v for m in members if get_origin(m) is Literal for v in get_args(m)]
    others = [m for m in members if get_origin(m) is not Literal]
    out: dict[str, Any]
    if literals:
        if any(o is not type(None) for o in others):
            raise TypeError(f"{tp}: a Literal may only be unioned with None")
        values = literals + [None] * bool(others)
        out = {"const": values[0]} if len(values) == 1 else {"enum": values}
    elif any(m is Any for m in members):
        out = {}
    elif len(members) == 1 and is_typeddict(members[0]):
        out = _object(members[0])
    elif len(members) == 1 and get_origin(members[0]) is list and get_args(members[0])[0] is not Any:
        out = {"type": "array", "items": _schema(get_args(members[0])[0])}
    else:
        # a TypedDict in a union is checked as an object only (its fields predate the typing)
        names = [_JSON_TYPES[dict if is_typeddict(m) else get_origin(m) or m] for m in members]
        out = {"type": names[0] if len(names) == 1 else names}
    for m in meta:
        if isinstance(m, dict):
            out.update(m)
    for m in meta:
        if isinstance(m, str) and m != ev.LOOSE:
            out["description"] = m
    return out


def _loose(tp: Any) -> bool:
    return ev.LOOSE in _split(tp)[1]


def _object(td: Any, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    hints = _hints(td)
    names = [k for k in hints if k not in skip and not _loose(hints[k])]
    return {
        "type": "object",
        "required": [k for k in names if k in td.__required_keys__],
        "properties": {k: _schema(hints[k]) for k in names},
    }


def schema() -> dict[str, Any]:
    base = _hints(ev._Event)
    event: dict[str, Any] = {
        "type": "object",
        "required": ["id", "parent", "type", "t"],
        "properties": {
            "id": _schema(base["id"]),
            "parent": _schema(base["parent"]),
            "type": {"enum": list(ev.EVENT_TYPES)},
            "t": _schema(base["t"]),
            "dur": _schema(base["dur"]),
        },
        "allOf": [],
    }
    for model, name in zip(ev.EVENT_MODELS, ev.EVENT_TYPES, strict=True):
        then = _object(model, skip=_BASE)
        del then["type"]
        event["allOf"].append({"if": {"properties": {"type": {"const": name}}}, "then": then})
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://rlm-jupyter.invalid/trace-v{ev.VERSION}.schema.json",
        "title": f"rlm-jupyter trace event (version {ev.VERSION})",
        "description": "One line of a .rlmtrace.jsonl file: the header (first line) or an event. Events form a tree "
        "through parent ids; a child run's parent is the sub_call that opened it. Extra fields are "
        "allowed so the format can grow; the listed ones keep their meaning. Generated from "
        "rlm_jupyter/trace/events.py (python -m rlm_jupyter.trace.gen): do not edit by hand.",
        "type": "object",
        "oneOf": [{"$ref": "#/$defs/header"}, {"$ref": "#/$defs/event"}],
        "$defs": {"header": _object(ev.Header), "event": event},
    }


# ---- TypeScript ---------------------------------------------------------------------------------------------------


def _ts(tp: Any) -> str:
    tp, _ = _split(tp)
    for name, alias in _ALIASES.items():
        if tp == alias:
            return name
    members = _members(tp)
    if len(members) > 1:
        return " | ".join(_ts(m) for m in members)
    m = members[0]
    if get_origin(m) is Literal:
        return " | ".join(json.dumps(v).replace('"', "'") for v in get_args(m))
    if m is Any:
        return "unknown"
    if is_typeddict(m):
        return m.__name__
    if get_origin(m) is list:
        inner = _ts(get_args(m)[0])
        return f"{inner}[]" if inner.isidentifier() or inner == "unknown" else f"({inner})[]"
    if get_origin(m) is dict:
        k, v = get_args(m)
        return f"Record<string, {_ts(v)}>"
    return _TS_TYPES[m]


def _doc(tp: Any) -> str:
    texts = [m for m in _split(tp)[1] if isinstance(m, str) and m != ev.LOOSE]
    loose = ["not checked by the readers"] if _loose(tp) else []
    text = "; ".join(texts + loose)
    return f"  /** {text} */\n" if text else ""


def _interface(td: Any, extends: str | None = None, skip: tuple[str, ...] = ()) -> str:
    hints = _hints(td)
    doc = f"/** {' '.join((td.__doc__ or '').split())} */\n" if td.__doc__ and "TypedDict" not in td.__doc__ else ""
    lines = [f"{doc}export interface {td.__name__}{f' extends {extends}' if extends else ''} {{"]
    for k, tp in hints.items():
        if k in skip:
            continue
        opt = "" if k in td.__required_keys__ else "?"
        lines.append(f"{_doc(tp)}  {k}{opt}: {_ts(tp)};")
    return "\n".join(lines) + "\n}\n"


def typescript() -> str:
    out = [
        "// Generated by `python -m rlm_jupyter.trace.gen` from rlm_jupyter/trace/events.py: do not edit by hand.",
        "// The trace format's event types and status values, for the front-end (schema.json is its twin).",
        "",
        f"export const TRACE_FORMAT = {json.dumps(ev.FORMAT)};".replace('"', "'"),
        f"export const TRACE_VERSION = {ev.VERSION};",
        "",
    ]
    for name, alias in _ALIASES.items():
        out.append(f"export type {name} = {' | '.join(repr(v) for v in get_args(alias))};")
    out += [
        "",
        "/** How a run ended (run_end.status). */",
        f"export const RUN_STATUSES: readonly RunStatus[] = {_list(ev.RUN_STATUSES)};",
        "/** The statuses whose answer counts as the run's answer. */",
        f"export const ANSWERED: readonly RunStatus[] = {_list(ev.ANSWERED)};",
        "/** What the live view shows. */",
        f"export const VIEW_STATUSES: readonly ViewStatus[] = {_list(ev.VIEW_STATUSES)};",
        f"export const EVENT_TYPES = {_list(ev.EVENT_TYPES)} as const;",
        "export type EventType = (typeof EVENT_TYPES)[number];",
        "",
    ]
    out.append(_interface(ev.Header))
    out.append(_interface(ev.Snippet))
    out += [_interface(td) for td in (ev.BudgetLimits, ev.ContextShape, ev.RerunOf)]
    out.append(_interface(ev._Event).replace("interface _Event", "interface EventBase"))
    out.append(_interface(ev._ModelCall).replace("interface _ModelCall", "interface ModelCall"))
    mixin = _hints(ev._ModelCall)
    for model in ev.EVENT_MODELS:
        hints = _hints(model)
        if all(hints.get(k) == tp for k, tp in mixin.items()):  # it declares the model-call fields
            out.append(_interface(model, extends="EventBase, ModelCall", skip=(*_BASE[:-1], *mixin)))
        else:
            out.append(_interface(model, extends="EventBase", skip=_BASE[:-1]))
    out.append("export type TraceEvent =\n  | " + "\n  | ".join(m.__name__ for m in ev.EVENT_MODELS) + ";\n")
    # One optional view of every payload field of any type (its type: the union over the types that have it).
    out.append(
        "type KeysOf<U> = U extends unknown ? keyof U : never;\n"
        "type ValueOf<U, K extends PropertyKey> =\n"
        "  U extends unknown ? (K extends keyof U ? U[K] : never) : never;\n"
        "/** Every payload field of any event type, optional: for code that has not narrowed `type`. */\n"
        "export type EventFields = {\n"
        "  [K in Exclude<KeysOf<TraceEvent>, keyof EventBase | 'type'>]?: ValueOf<TraceEvent, K>;\n"
        "};\n"
    )
    out.append("export interface ModelUsage {\n" + "".join(f"  {k}: number;\n" for k in _hints(ev.ModelUsage)) + "}\n")
    return "\n".join(out)


def _list(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(repr(v) for v in values) + "]"


def render() -> dict[Path, str]:
    return {SCHEMA_PATH: json.dumps(schema(), indent=1, ensure_ascii=False) + "\n", TS_PATH: typescript()}


def main(argv: list[str] | None = None) -> int:
    check = "--check" in (argv if argv is not None else sys.argv[1:])
    stale = [p for p, text in render().items() if not p.exists() or p.read_text(encoding="utf-8") != text]
    if check:
        for p in stale:
            print(f"{p} is stale: run `python -m rlm_jupyter.trace.gen` and commit it", file=sys.stderr)
        return 1 if stale else 0
    for p, text in render().items():
        p.write_text(text, encoding="utf-8")
        print(f"wrote {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
