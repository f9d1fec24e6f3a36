"""The prompts of a run: the system prompt that teaches the REPL and our context API, the first user message with
the context's shape and the question, the per-turn messages, and how REPL output is shown to the model.

Adapted from the protocol of the paper (arXiv 2512.24601, App. D) and `rlms` (both finish forms are taught), with
our context API instead of a plain string `context`, and one deliberate difference: a bare last expression of a
block is printed, as in a notebook.
"""

from __future__ import annotations

SYSTEM_PROMPT = """\
You are a Recursive Language Model (RLM). You answer a question about the history of one or more coding-agent \
sessions (users, assistants, tool calls and their outputs). The history is too big to read at once: it is loaded \
in a persistent Python REPL as the variable `context`, and you explore it by writing code.

Write Python in fenced blocks that start with ```repl (```python works too). Every block in your reply runs, in \
order, in the same REPL; variables persist across turns. After each turn you see what the code printed.
- A bare expression on the last line of a block is shown (as in a notebook); everything else needs print().
- Output longer than {output_chars:,} characters is cut, so print summaries, counts and excerpts, not whole \
transcripts. Keep big texts in variables and hand them to sub_llm.
- An exception shows you its traceback; fix the code and go on.

`context` (read-only) is the whole history. Each message has a position (0-based, history order) and an id.
  len(context), context.tokens                 messages, estimated tokens
  context.sessions                             polars DataFrame, one row per session (format, title, counts)
  context.df                                   polars DataFrame, one row per message; columns include id, \
session_id, role (user|assistant|system|tool), origin, ts, text, thinking, tool_name, tool_input, tool_output, \
tool_status (ok|error), model
  context.slice(-20), context.slice(100, 140), context[-20:]    Messages by position
  context[i], context.get_by_id("id"), context.get_by_id([ids]) a Message / Messages
  context.filter(lambda m: m.role == "tool" and m.tool_status == "error")   Messages (also a polars expression \
such as pl.col("tool_name") == "bash")
  context.regex_search(r"pattern", limit=50, case=False)       Snippets in history order, with matched spans
  context.search("keywords", limit=10)                         Snippets ranked by BM25 keyword score
  context.chunk(size=10_000)                                   list of Messages, each <= size tokens
A Message m has m.id, m.position, m.role, m.tool_name, m.ts, m.content (text, or the output of a tool row; always \
a str) and m.render() (transcript text). Fields other than content are often None: guard with (m.tool_name or "").
Messages and Snippets: len(), iteration, indexing, .ids, .positions, .df (polars), .text(max_chars=None) (a \
transcript to give a sub-model). A Snippet s has s.id, s.position, s.role, s.score, s.match, s.excerpt(80), \
s.message.

Sub-models (each call costs tokens; batch them):
  sub_llm(prompt) -> str                       one call to a sub-model that sees only the prompt (no REPL)
  sub_llm_batch([prompt, ...]) -> list[str]    calls run concurrently; the order of answers is kept
  rlm(question) -> str                         a recursive RLM run over the same context (plain sub_llm at the \
depth limit)
(Aliases: llm_query, llm_query_batched, rlm_query.) A failed call returns a string starting with "Error:" \
instead of raising. A sub-model reads about 100K tokens at most: pass excerpts or chunks, not the whole history.

How to work: look at the shape of the history first; narrow it with regex_search / search / filter; read the \
matching messages or hand chunks of them to sub_llm_batch with the question; keep the message ids that support \
your answer and cite them.

Finish in one of two ways, only when you are sure:
- in code: answer["content"] = "the answer"; answer["ready"] = True
- in your text, at the start of a line, outside code: FINAL(the answer) or FINAL_VAR(variable_name) to answer \
with a REPL variable that already exists.
A reply with no code and no FINAL is taken as the final answer. Do not write FINAL in a plan.
"""

HYBRID_SYSTEM_PROMPT = """\
You answer a question about the history of one or more coding-agent sessions. You cannot run code: the relevant \
messages are given below, packed from three sources (messages marked preserved, messages retrieved for the \
question, and the most recent messages). Each message starts with a header "[position] role id (time)". Answer \
from these messages only, cite the ids of the messages you rely on, and say so when they do not contain the answer.
"""

FIRST_TURN = (
    "You have not seen the context yet: look at its shape and search it before answering. Do not answer on this turn."
)
FORCE_ANSWER = (
    "You are out of turns. Give your final answer now, from what you found so far: FINAL(your answer), "
    "with the ids of the messages that support it."
)


def context_shape(ctx) -> dict:
    """What the root is told about the context: counts, formats, tokens and time span (no message content)."""
    shape: dict = {
        "messages": len(ctx),
        "tokens": 0,
        "sessions": 0,
        "formats": [],
        "roles": {},
        "tool_calls": 0,
        "first": None,
        "last": None,
    }
    if len(ctx) == 0:
        return shape
    import polars as pl

    df = ctx.df
    sessions = ctx.sessions
    shape["tokens"] = ctx.tokens
    shape["sessions"] = sessions.height
    shape["formats"] = sorted(set(sessions["format"].drop_nulls().to_list()))
    shape["roles"] = dict(df.group_by("role").len().sort("len", descending=True).iter_rows())
    tools = df.filter(pl.col("tool_name").is_not_null())
    shape["tool_calls"] = tools.height
    shape["tools"] = dict(tools.group_by("tool_name").len().sort("len", descending=True).head(8).iter_rows())
    ts = df["ts"].drop_nulls()
    if len(ts):
        shape["first"], shape["last"] = ts.min().isoformat(), ts.max().isoformat()
    return shape


def first_user_message(question: str, shape: dict, *, max_iterations: int | None = None) -> str:
    lines = [
        f"The context holds {shape['messages']:,} messages (~{shape['tokens']:,} estimated tokens) from "
        f"{shape['sessions']} session(s) in format(s) {', '.join(shape['formats']) or 'unknown'}.",
        "Messages by role: " + (", ".join(f"{k}: {v:,}" for k, v in shape["roles"].items()) or "none") + ".",
    ]
    if shape.get("tool_calls"):
        top = ", ".join(f"{k} ({v})" for k, v in shape.get("tools", {}).items())
        lines.append(f"Tool calls: {shape['tool_calls']:,}; most used: {top}.")
    if shape.get("first"):
        lines.append(f"Time span: {shape['first']} to {shape['last']} (UTC).")
    if max_iterations:
        lines.append(f"You have up to {max_iterations} turns.")
    lines += ["", f"Question: {question}"]
    return "\n".join(lines)


def turn_message(index: int, max_iterations: int | None) -> str:
    """The user message that opens turn `index` (0-based)."""
    head = f"Turn {index + 1}" + (f" of {max_iterations}" if max_iterations else "") + "."
    return head + " " + FIRST_TURN if index == 0 else head + " Continue, or give your final answer."


def shown(text: str, limit: int) -> tuple[str, bool]:
    """`text` cut for the prompt to `limit` characters (head and tail kept), and whether it was cut."""
    if len(text) <= limit:
        return text, False
    head = limit * 3 // 4
    tail = max(limit - head - 80, 0)
    cut = len(text) - head - tail
    return f"{text[:head]}\n[… {cut:,} characters cut; print less, or slice …]\n{text[len(text) - tail :]}", True


def output_message(blocks: list[dict], limit: int) -> str:
    """One user message with what every block of the turn printed: [{stdout, stderr, status, error,
    variables}]. Each block's text is cut to `limit` characters."""
    parts = []
    for k, b in enumerate(blocks):
        body = b.get("stdout") or ""
        if b.get("stderr"):
            body += ("\n" if body else "") + b["stderr"]
        if b.get("status") == "killed":
            body += ("\n" if body else "") + f"[the step was killed: {b.get('error')}]"
        text, _ = shown(body.rstrip() or "(no output)", limit)
        parts.append(f"REPL output (block {k + 1}):\n{text}")
        if b.get("variables"):
            parts.append("REPL variables: " + ", ".join(b["variables"]))
    return "\n\n".join(parts)
