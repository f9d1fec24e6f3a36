"""Seeded mutations of real trace files, for the trace reader fuzz test (tests/test_trace_fuzz.py).

Each mutation is what a damaged or hostile file does to a reader: truncation, byte flips, invalid UTF-8, NUL bytes,
deleted / duplicated / swapped lines, wrong types for the keys readers use (ids, parents, types, times, tokens,
child runs), junk events, lines spliced from agent session files, very deep JSON, a very long line, parent chains
thousands deep and parent loops. `mutate(rng, data)` applies one to two of them to a file's bytes.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable

# Values of the wrong type (and of the right type but out of range) for the keys the readers use.
ODD_VALUES = [None, True, 0, -1, 1.5, 2**70, 1e308, "", "junk", "7", [], [[]], ["a"], {}, {"a": {}}, [1, 2]]
KEYS = [
    "id",
    "parent",
    "type",
    "t",
    "dur",
    "tokens_in",
    "tokens_out",
    "cost_usd",
    "index",
    "child_run",
    "model",
    "question",
    "response",
    "status",
    "answer",
    "result_ids",
    "args",
    "stdout",
    "prompt",
    "iteration",
    "code_blocks",
    "result",
    "rlm_calls",
    "metadata",
    "iterations",
    "usage_summary",
    "timestamp",
    "stderr",
    "root_model",
    "format",
    "version",
    "final_answer",
    "run_metadata",
    "model_usage_summaries",
]


def _lines(data: bytes) -> list[bytes]:
    return data.split(b"\n")


def truncate(rng: random.Random, data: bytes, _: list[bytes]) -> bytes:
    return data[: rng.randrange(len(data) + 1)]


def flip_bytes(rng: random.Random, data: bytes, _: list[bytes]) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        if b:
            b[rng.randrange(len(b))] = rng.randrange(256)
    return bytes(b)


def invalid_utf8(rng: random.Random, data: bytes, _: list[bytes]) -> bytes:
    at = rng.randrange(len(data) + 1)
    return data[:at] + rng.choice([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x80\x80"]) + data[at:]


def nul_bytes(rng: random.Random, data: bytes, _: list[bytes]) -> bytes:
    at = rng.randrange(len(data) + 1)
    return data[:at] + b"\x00" * rng.randint(1, 4) + data[at:]


def delete_lines(rng: random.Random, data: bytes, _: list[bytes]) -> bytes:
    lines = _lines(data)
    for _ in range(rng.randint(1, 3)):
        if lines:
            del lines[rng.randrange(len(lines))]
    return b"\n".join(lines)


def duplicate_lines(rng: random.Random, data: bytes, _: list[bytes]) -> bytes:
    lines = _lines(data)
    i = rng.randrange(len(lines))
    lines[i:i] = [lines[i]] * rng.randint(1, 3)
    return b"\n".join(lines)


def swap_lines(rng: random.Random, data: bytes, _: list[bytes]) -> bytes:
    lines = _lines(data)
    i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
    lines[i], lines[j] = lines[j], lines[i]
    return b"\n".join(lines)


def wrong_type(rng: random.Random, data: bytes, _: list[bytes]) -> bytes:
    """A known key somewhere in a line (or in a whole JSON document) gets a value of another type."""
    lines = _lines(data)
    candidates = [i for i, line in enumerate(lines) if line.strip()]
    if not candidates:
        return data
    single = len(candidates) == 1 or rng.random() < 0.1
    i = candidates[0] if single else rng.choice(candidates)
    try:
        doc = json.loads(data if single else lines[i])
    except (ValueError, RecursionError):  # an earlier mutation nested it too deep to parse: leave it as it is
        return data
    places = list(_dicts(doc))
    if not places:
        return data
    for _ in range(rng.randint(1, 3)):
        d = rng.choice(places)
        keys = [k for k in d if k in KEYS] or KEYS
        d[rng.choice(keys)] = rng.choice(ODD_VALUES)
    text = json.dumps(doc).encode()
    if single:
        return text
    lines[i] = text
    return b"\n".join(lines)


def _dicts(doc, depth: int = 0):
    if depth > 12:
        return
    if isinstance(doc, dict):
        yield doc
        for v in doc.values():
            yield from _dicts(v, depth + 1)
    elif isinstance(doc, list):
        for v in doc:
            yield from _dicts(v, depth + 1)


def junk_events(rng: random.Random, data: bytes, _: list[bytes]) -> bytes:
    junk = [
        b'{"id":"junk"}',
        b'{"id":["a"],"parent":null,"type":"step","t":1}',
        b'{"type":{}}',
        b"[]",
        b"null",
        b'"text"',
        b"42",
        b'{"id":"s","parent":[],"type":"sub_call","t":1,"model":"m","prompt":"","response":""'
        b',"status":"ok","tokens_in":"9"}',
        b'{"type":"header","format":"rlm-jupyter-trace","version":1}',
        b'{"type":"iteration","iteration":"2","code_blocks":"abc"}',
        b'{"type":"metadata","root_model":{}}',
        b'{"id":"x","parent":"x","type":"step","t":1,"index":0,"response":""}',
    ]
    lines = _lines(data)
    for _ in range(rng.randint(1, 4)):
        lines.insert(rng.randrange(len(lines) + 1), rng.choice(junk))
    return b"\n".join(lines)


def splice_other_format(rng: random.Random, data: bytes, others: list[bytes]) -> bytes:
    lines = _lines(data)
    for _ in range(rng.randint(1, 3)):
        lines.insert(rng.randrange(len(lines) + 1), rng.choice(others))
    return b"\n".join(lines)


def deep_json(rng: random.Random, data: bytes, _: list[bytes]) -> bytes:
    n = rng.choice([1_000, 10_000, 100_000])
    deep = rng.choice(
        [
            b"[" * n + b"]" * n,
            b'{"a":' * n + b"1" + b"}" * n,
            b'{"id":"d","parent":null,"type":"run","t":1,"question":"q","model":"m","budget":'
            + b'{"a":' * n
            + b"1"
            + b"}" * n
            + b"}",
        ]
    )
    lines = _lines(data)
    lines.insert(rng.randrange(1, len(lines) + 1), deep)
    return b"\n".join(lines)


def long_line(rng: random.Random, data: bytes, _: list[bytes]) -> bytes:
    big = b'{"id":"big","parent":null,"type":"error","t":1,"message":"' + b"x" * rng.choice([10**5, 2 * 10**6]) + b'"}'
    lines = _lines(data)
    lines.insert(rng.randrange(1, len(lines) + 1), big)
    return b"\n".join(lines)


def deep_chain(rng: random.Random, data: bytes, _: list[bytes]) -> bytes:
    """A run whose sub-calls and child runs nest thousands deep (each child's parent is the one before)."""
    n = rng.choice([500, 3_000, 10_000])
    out = [b'{"id":"c-run","parent":null,"type":"run","t":1,"question":"deep","model":"m"}']
    parent = "c-run"
    for k in range(n):
        out.append(
            json.dumps(
                {
                    "id": f"c{k}",
                    "parent": parent,
                    "type": "sub_call",
                    "t": 1 + k,
                    "model": "m",
                    "prompt": "p",
                    "response": "r",
                    "status": "ok",
                    "tokens_in": 1,
                    "tokens_out": 1,
                    "cost_usd": 0.0,
                }
            ).encode()
        )
        parent = f"c{k}"
    lines = _lines(data)
    return b"\n".join([*lines[:1], *out, *lines[1:]])


def parent_loop(rng: random.Random, data: bytes, _: list[bytes]) -> bytes:
    loop = [
        b'{"id":"la","parent":"lb","type":"step","t":1,"index":0,"response":""}',
        b'{"id":"lb","parent":"la","type":"code","t":1,"index":0,"code":""}',
        b'{"id":"ls","parent":"ls","type":"sub_call","t":1,"model":"m","prompt":"","response":"","status":"ok",'
        b'"child_run":"ls"}',
    ]
    lines = _lines(data)
    lines[1:1] = loop
    return b"\n".join(lines)


MUTATIONS: list[Callable[[random.Random, bytes, list[bytes]], bytes]] = [
    truncate,
    flip_bytes,
    invalid_utf8,
    nul_bytes,
    delete_lines,
    duplicate_lines,
    swap_lines,
    wrong_type,
    wrong_type,
    wrong_type,
    junk_events,
    splice_other_format,
    deep_json,
    long_line,
    deep_chain,
    parent_loop,
]
# The costly ones (megabytes, thousands of events) are drawn less often so a run of thousands stays short.
WEIGHTS = [1, 2, 1, 1, 1, 1, 1, 3, 3, 3, 2, 1, 0.3, 0.15, 0.15, 0.5]


def mutate(rng: random.Random, data: bytes, others: list[bytes]) -> tuple[bytes, str]:
    """One or two mutations of `data` (`others`: lines of other formats to splice in); returns (bytes, names)."""
    names = []
    for _ in range(rng.choice([1, 1, 2])):
        m = rng.choices(MUTATIONS, WEIGHTS)[0]
        data = m(rng, data, others) if data else data
        names.append(m.__name__)
    return data, "+".join(names)
