"""Read traces back: our `.rlmtrace.jsonl` files and the official `rlms` logger's JSONL / completion JSON.

Every line is untrusted. The rule, the same as the JupyterLab extension's (labextension/src/tracefile.ts): a line
that is not JSON, or an event that does not match schema.json, is skipped and listed in `trace.header["issues"]`
with its file:line, id and why; the rest is shown. Only a file with nothing to show at all (empty, not a trace, a
newer format version, no valid event) raises ValueError, with a message that says what was expected.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import orjson

from .model import EVENT_TYPES, FORMAT, VERSION, Trace

# orjson reads JSON nested at most this deep; deeper lines are skipped (the extension applies the same limit).
MAX_NESTING = 1024


def read_trace(path: str | Path) -> Trace:
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a folder, not a trace file: give a .rlmtrace.jsonl file (or an rlms log)")
    if path.exists() and not path.is_file():  # a pipe would block the read forever, /dev/zero never end
        raise ValueError(f"{path} is not a regular file: give a .rlmtrace.jsonl file (or an rlms log)")
    raw = path.read_bytes()
    try:
        # a single (pretty-printed) JSON document: an rlms RLMChatCompletion dump; bad UTF-8 reads as U+FFFD
        whole = _loads(raw)
    except ValueError:
        whole = None
    if isinstance(whole, dict) and "root_model" in whole and "metadata" in whole:
        from .rlms import from_completion

        trace = from_completion(whole, source=str(path))
        return _checked(trace.header, trace.events, _notes(trace, path), None, str(path))
    records: list[Any] = []
    line_nos: list[int] = []  # the file line of each record (blank and unreadable lines are not records)
    issues: list[str] = []
    lines = raw.split(b"\n")  # "\n" only, as the extension splits: the line numbers agree
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            # invalid UTF-8 is read as U+FFFD, as the browser decodes the file: the event is kept, not the bytes
            records.append(_loads(line))
            line_nos.append(n)
        except ValueError as e:
            # Only the last line can be cut off by a killed writer (every other line ended with its newline).
            issues.append(
                f"{path}:{n}: nested deeper than {MAX_NESTING} levels; skipped"
                if "depth limit" in str(e)
                else f"{path}:{n}: not valid JSON; skipped"
                if n < len(lines)
                else f"{path}:{n}: cut-off last line (run interrupted?); ignored"
            )
    if not records and issues:
        raise ValueError(
            f"{path}: not a trace: no line of it is JSON (a trace file has a header line, then one JSON event per line)"
        )
    if not records:
        raise ValueError(f"{path}: empty trace file: a trace file has a header line, then one event per line")
    first = records[0]
    if isinstance(first, dict) and first.get("format") == FORMAT:
        _check_version(first, path)
        return _checked(first, records[1:], issues, line_nos[1:], str(path))
    if isinstance(first, dict) and first.get("type") == "metadata" and "root_model" in first:
        from .rlms import from_log

        trace = from_log(records, source=str(path))
        return _checked(trace.header, trace.events, issues + _notes(trace, path), None, str(path))
    if any(_looks_like_event(r) for r in records[:20]):  # the header line was damaged: show the events
        issues.insert(
            0,
            f"{path}: no trace header on line 1 (damaged or missing); read as an rlm-jupyter trace "
            f"of version {VERSION}",
        )
        return _checked({"type": "header", "format": FORMAT, "version": VERSION}, records, issues, line_nos, str(path))
    first_line = next((x for x in lines if x.strip()), b"").decode("utf-8", "replace").strip()
    first_line = first_line if len(first_line) <= 80 else first_line[:79] + "…"
    raise ValueError(
        f"{path}: not a trace: expected an rlm-jupyter trace (first line a header with format "
        f"'{FORMAT}') or an rlms log (first line type 'metadata'); the first line is {first_line!r}"
    )


def _looks_like_event(rec: Any) -> bool:
    return isinstance(rec, dict) and isinstance(rec.get("id"), str) and rec.get("type") in EVENT_TYPES


def _notes(imported: Trace, path: Path) -> list[str]:
    """What the rlms import read as missing (fields of the wrong type), said with the file."""
    return [f"{path}: {note}" for note in imported.header.pop("issues", [])]


def _loads(data: bytes) -> Any:
    """orjson; what it refuses and a browser reads is read the browser's way: invalid UTF-8 as U+FFFD, and a lone
    surrogate escape ("\\ud800", which JSON allows) as U+FFFD through the standard library (no NaN / Infinity,
    as in JSON). ValueError when the text is not JSON."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        pass
    text = data.decode("utf-8", "replace")
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as e:
        if "surrogate" not in str(e):
            raise

    def no_constants(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    try:
        return _fix_surrogates(json.loads(text, parse_constant=no_constants))
    except RecursionError:
        raise ValueError(f"depth limit exceeded (over {MAX_NESTING} levels)") from None


def _fix_surrogates(v: Any) -> Any:
    if isinstance(v, str):
        return v.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(v, list):
        return [_fix_surrogates(x) for x in v]
    if isinstance(v, dict):
        return {_fix_surrogates(k): _fix_surrogates(x) for k, x in v.items()}
    return v


def _check_version(header: dict, path: Path) -> None:
    """The format version is a major number: every version up to ours is read, a newer one is refused (upgrade)."""
    version = header.get("version")
    if "version" not in header:
        return
    number = version if isinstance(version, (int, float)) and not isinstance(version, bool) else None
    if number is not None and float(number).is_integer() and 1 <= number <= VERSION:
        return
    newer = number is not None and number > VERSION
    raise ValueError(
        f"{path}: this trace has format version {version!r}; this rlm-jupyter reads versions 1 to "
        f"{VERSION}. "
        + (
            "It was written by a newer rlm-jupyter: upgrade it (pip install -U rlm-jupyter)."
            if newer
            else "A format version is a whole number from 1."
        )
    )


def _checked(header: dict, records: list[Any], issues: list[str], line_nos: list[int] | None, source: str) -> Trace:
    """Keep the events that match the schema (a later version of an id replaces the earlier one in place, as
    TraceWriter.update writes them); list the others with where and why."""
    check = _checker()
    reason = check(header)
    if reason:
        raise ValueError(f"{source}: the trace header is not valid: {reason}")
    by_id: dict[str, dict] = {}
    for i, rec in enumerate(records):
        reason = check(rec)
        if reason is None and rec.get("type") == "header":
            continue  # a header repeated by a resumed writer
        if reason is not None:
            where = f"{source}:{line_nos[i]}" if line_nos is not None else f"{source}: event {i + 1}"
            rid = rec.get("id") if isinstance(rec, dict) else None
            issues.append(f"{where}{f' ({rid})' if isinstance(rid, str) else ''}: {reason}; not shown")
            continue
        by_id[rec["id"]] = rec  # a dict keeps a key's first position when it is set again
    events = list(by_id.values())
    if not any(e["type"] == "run" and e["parent"] is None for e in events):
        if not events and issues:
            raise ValueError(f"{source}: no valid trace event to show. {'. '.join(issues[:3])}")
        issues.append(f"{source}: no top-level run event: the trace is incomplete")
    trace = Trace(events=events, header=header)
    if issues:
        trace.header.setdefault("issues", []).extend(issues)
    return trace


@cache
def _checker():
    """check(record) -> None when it matches schema.json, else the reason ("t: must be number"). fastjsonschema
    compiles the schema to Python; jsonschema takes ~500 µs an event. The header and each event type get their own
    validator, made from schema.json's per-type `if type == T then ...` rules (the same verdicts: an event's type
    is checked first), so an event costs ~10 µs and the reason names the field, not "not valid under oneOf"."""
    import fastjsonschema

    schema = json.loads((Path(__file__).parent / "schema.json").read_text())
    defs = schema["$defs"]
    header = fastjsonschema.compile({"$ref": "#/$defs/header", "$defs": defs})
    base = {k: v for k, v in defs["event"].items() if k != "allOf"}
    rules: dict[str | None, list] = {}  # event type -> its `then`; None: rules for every type
    for rule in defs["event"].get("allOf", []):
        t = rule.get("if", {}).get("properties", {}).get("type", {}).get("const") if set(rule) >= {"if"} else None
        if t is not None and set(rule["if"]) == {"properties"} and set(rule["if"]["properties"]) == {"type"}:
            rules.setdefault(t, []).append(rule.get("then", True))
        else:
            rules.setdefault(None, []).append(rule)
    every = rules.get(None, [])
    event = fastjsonschema.compile({**base, "allOf": every, "$defs": defs})  # an unknown type fails here
    by_type = {
        t: fastjsonschema.compile({**base, "allOf": [*every, *then], "$defs": defs})
        for t, then in rules.items()
        if t is not None
    }

    def check(rec: Any) -> str | None:
        if not isinstance(rec, dict):
            return f"expected an object, got {_describe(rec)}"
        is_header = rec.get("type") == "header"
        missing = [k for k in (() if is_header else ("id", "parent", "type", "t")) if k not in rec]
        if missing:  # said first: the per-type rules would otherwise speak for an event with no type
            return f"{', '.join(missing)}: required field missing"
        try:
            (header if is_header else by_type.get(rec["type"], event) if isinstance(rec["type"], str) else event)(rec)
        except fastjsonschema.JsonSchemaValueException as e:
            field = ".".join(str(p) for p in (e.path or [])[1:])
            rule = str(e.message).removeprefix("data").removeprefix(f".{field}" if field else "").strip()
            return f"{field}: {rule}" if field else rule
        except (RecursionError, TypeError, ValueError) as e:  # a value too deep or too odd to check
            return f"cannot be checked ({type(e).__name__})"
        return None

    return check


def _describe(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, list):
        return "an array"
    if isinstance(v, str):
        return f'"{v[:37]}…"' if len(v) > 40 else f'"{v}"'
    return str(v)
