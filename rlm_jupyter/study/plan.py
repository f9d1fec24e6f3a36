"""The rows of a batch: each (question, session, model, sub_model, extra inputs) with a stable key.

The key is a hash of everything that makes the run what it is, so a re-run over the same `out` folder recognises
the rows it already finished whatever their order."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from ..context.errors import ArgumentError

# Columns a batch writes itself: an input column of the same name would be overwritten.
OUTPUT_COLUMNS = (
    "key",
    "index",
    "answer",
    "status",
    "stopped_by",
    "steps",
    "sub_calls",
    "tokens_in",
    "tokens_out",
    "tokens",
    "cost_usd",
    "wall_s",
    "error",
    "trace",
    "executor",
)


@dataclass
class Spec:
    """One run to make. `inputs` holds every input column (question, session_id, model, sub_model and any extra
    column of the questions frame) as the results row will show them."""

    key: str
    index: int
    question: str
    session_id: str | None
    model: str
    sub_model: str | None
    inputs: dict = field(default_factory=dict)


def plan(
    questions, *, sessions: list[str] | None, models: list[str], sub_model: str | None, settings: dict
) -> list[Spec]:
    """Specs for every question (x every session when `sessions`, x every model). `questions`: a list of str, or
    a polars frame with a `question` column (its other columns are carried as inputs; `session_id`, `model` and
    `sub_model` columns set those per row)."""
    rows = _question_rows(questions)
    specs: list[Spec] = []
    for row in rows:
        row_sessions = [row["session_id"]] if row.get("session_id") is not None else (sessions or [None])
        row_models = [row["model"]] if row.get("model") is not None else models
        for sid in row_sessions:
            for m in row_models:
                sub = row.get("sub_model") if row.get("sub_model") is not None else sub_model
                inputs = {**row, "session_id": sid, "model": m, "sub_model": sub}
                ident = json.dumps({"inputs": inputs, "settings": settings}, sort_keys=True, default=str)
                key = hashlib.sha1(ident.encode()).hexdigest()[:16]
                specs.append(Spec(key, len(specs), row["question"], sid, m, sub, inputs))
    seen: set[str] = set()
    for s in specs:
        if s.key in seen:
            raise ArgumentError(
                f"batch: the run {s.inputs!r} appears twice; give each question once (or add a "
                "column that tells the copies apart, e.g. `repeat`)"
            )
        seen.add(s.key)
    return specs


def _question_rows(questions) -> list[dict]:
    if isinstance(questions, str):
        raise ArgumentError(
            "batch: questions must be a list of questions or a frame with a `question` column, "
            "not one string (use rj.rlm(question, ctx) for one)"
        )
    if hasattr(questions, "to_dicts") and hasattr(questions, "columns"):  # a polars frame
        if "question" not in questions.columns:
            raise ArgumentError(
                f"batch: the questions frame needs a `question` column (it has "
                f"{', '.join(questions.columns)}); add one, e.g. .with_columns(question=pl.lit(...))"
            )
        clash = [c for c in questions.columns if c in OUTPUT_COLUMNS]
        if clash:
            raise ArgumentError(
                f"batch: the questions frame has column(s) {', '.join(clash)}, which batch writes itself; rename them"
            )
        rows = questions.to_dicts()
    else:
        rows = [{"question": q} for q in questions]
    for i, r in enumerate(rows):
        q = r.get("question")
        if not isinstance(q, str) or not q.strip():
            raise ArgumentError(f"batch: question {i} is {q!r}; every row needs a non-empty question")
    if not rows:
        raise ArgumentError("batch: no questions given")
    return rows
