"""The offline demo model: RULE-BASED, NOT A NEURAL MODEL. It needs no key and no network, and it is
deterministic, so the whole RLM loop (REPL code, context queries, batched sub-calls, FINAL_VAR) can run and be
tested anywhere. It does not understand language: it matches the question's words.

`respond(role, messages) -> str` is called through the "offline" (root) and "offline-sub" (sub) model names.

Root role (writes the REPL code; its state is read back from the conversation, never kept in Python):
  1. no search yet      -> code that prints the context's shape, runs `context.search` (BM25) and one
                           `context.regex_search` per key term of the question (stop words dropped), scores the
                           messages (rarer terms weigh more; matching more terms ranks higher; BM25 rank adds) and
                           prints `TOP_POSITIONS = [...]`.
  2. hits printed       -> reads TOP_POSITIONS from that output; code that takes those messages, cuts each around
                           its first match, packs them into chunks and calls `sub_llm_batch` with the question.
  3. sub-answers shown  -> reads the `[id] sentence` lines the sub-model returned, keeps the best 3 by the same term
                           scoring, and writes code that checks the cited ids exist (`context.get_by_id`), stores the
                           answer in `final_answer` and the `answer` dict, then `FINAL_VAR(final_answer)`.
  4. FINAL_VAR refused / code failed / out of turns -> `FINAL(...)` with the same text, written directly.
  No term matches anything -> `FINAL(...)` saying so. Hybrid prompt (no REPL) -> the extractive answer at once.
Sub role (extractive): the sentences of the prompt's text that share the most (rarest) terms with the prompt's
  question, in text order, each tagged `[message id]` when the text is a transcript of rendered messages.
  Nothing is generated: every sentence returned is a substring of the prompt.

Limits: word matching only (no synonyms, no reasoning, no counting across messages); questions whose answer
does not share words with the question ("why did it fail?") get the messages that mention the words, not an
explanation.
"""

from __future__ import annotations

import math
import re

NAME = "offline (rule-based demo model, not a neural model)"

_STOP_TEXT = """
a about above after again against all also am an and any are as at be because been before being below between
both but by can could did do does doing done down during each few find for from further give had has have having
he her here hers him his how i if in into is it its itself just let list me more most my no nor not now of off
on once only or other our out over own please same she should show so some such tell than that the their them
then there these they this those through to too under until up very was we were what when where which while who
whom why will with would you your yes agent assistant model user session sessions message messages context
history conversation did ever anything something thing things way get got make made one ones
"""
STOP_WORDS = frozenset(_STOP_TEXT.split())

_HEADER = re.compile(r"^\[(\d+|\?)\] (\S+) (\S+) \(([^)]*)\)$")
_CITED = re.compile(r"^\[([^\]\s]+)\] (.+)$")
_TOKEN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./\-]*[A-Za-z0-9_]|[A-Za-z0-9]")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z`\"'(\[])")
_IRREGULAR = {"wrote": "writ", "written": "writ", "ran": "run", "chose": "choos", "chosen": "choos",
              "broke": "break", "broken": "break", "threw": "throw", "thrown": "throw"}
# What an answer looks like, by the question's key term (stemmed): boosts items of that shape.
_ANSWER_SHAPES = [
    ("file", re.compile(r"[\w\-/]+\.[A-Za-z0-9]{1,5}\b")),
    ("command", re.compile(r"(^|\s|: )(python3?|pip|npm|npx|git|pytest|cat|ls|cd|rg|grep|sed|make|bash|node)\s")),
    ("error", re.compile(r"\b\w*(Error|Exception)\b|exit(ed)? (with )?code [1-9]|No such file|Traceback")),
    ("fail", re.compile(r"\b\w*(Error|Exception)\b|exit(ed)? (with )?code [1-9]|No such file|Traceback")),
]
MARK_HITS = "[offline:hits]"
MARK_SUB = "[offline:sub-answers]"
TOP_N = 8
CHUNK_CHARS = 6_000
WINDOW_CHARS = 1_500
MAX_SENTENCE = 300
SUB_SENTENCES = 4
ANSWER_LINES = 3


def respond(role: str, messages: list[dict]) -> str:
    """The reply of the rule-based demo model for `role` ("root" or "sub") to a chat `messages` list."""
    if role == "sub":
        return sub_answer(_text(messages[-1]) if messages else "")
    return root_reply(messages)


# ---- terms and scoring --------------------------------------------------------------------------------------

def stem(word: str) -> str:
    w = word.lower()
    if w in _IRREGULAR:
        return _IRREGULAR[w]
    for suffix, repl in (("ies", "y"), ("ied", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", "")):
        if w.endswith(suffix) and len(w) - len(suffix) >= 3 and not w.endswith("ss"):
            w = w[: len(w) - len(suffix)] + repl
            break
    return w[:-1] if w.endswith("e") and len(w) >= 5 else w


def _special(token: str) -> bool:
    """File names, paths, identifiers, numbers, CamelCase: matched literally, not stemmed."""
    return bool(re.search(r"[._/\-0-9]", token)) or bool(re.search(r"[a-z][A-Z]", token))


def key_terms(question: str) -> list[tuple[str, str]]:
    """(term, regex) pairs for the question's content words, in order, without duplicates. Special tokens are
    matched literally; plain words as a word-initial stem (`\\bfail` matches failed, failure)."""
    out, seen = [], set()
    for tok in _TOKEN.findall(question):
        tok = tok.strip("./-")
        low = tok.lower()
        if not tok or low in STOP_WORDS or (len(tok) < 3 and not tok.isdigit()):
            continue
        if _special(tok):
            pattern = re.escape(tok)
            key = low
        else:
            key = stem(tok)
            pattern = r"\b" + re.escape(key)
        if key not in seen:
            seen.add(key)
            out.append((key, pattern))
    return out


def _matches(terms: list[tuple[str, str]], text: str) -> set[str]:
    return {k for k, p in terms if re.search(p, text, re.I)}


def rank_sentences(terms: list[tuple[str, str]], items: list[str]) -> list[tuple[float, int]]:
    """(score, index) of items sharing terms with the question, best first: the sum over matched terms of
    log(1 + n / df) (rare terms weigh more), plus 1.5 when the item has the shape the question asks for (a file
    name for "which file", a command line for "which command", an error for "error"/"fail"); ties by text order."""
    found = [_matches(terms, s) for s in items]
    df: dict[str, int] = {}
    for f in found:
        for k in f:
            df[k] = df.get(k, 0) + 1
    n = len(items)
    shapes = [rx for key, rx in _ANSWER_SHAPES if any(k == key for k, _ in terms)]
    scored = [(sum(math.log(1 + n / df[k]) for k in f) + sum(1.5 for rx in shapes if rx.search(items[i])), i)
              for i, f in enumerate(found) if f]
    return sorted(scored, key=lambda x: (-x[0], x[1]))


# ---- sub role: extractive ---------------------------------------------------------------------------------

def split_prompt(prompt: str) -> tuple[str, str]:
    """(question, text) of a sub-call prompt: a "Question:" line, else the prompt's first line."""
    m = re.search(r"^\s*Question:\s*(.+)$", prompt, re.M)
    if m:
        text = prompt[: m.start()] + prompt[m.end():]
        return m.group(1).strip(), re.sub(r"^\s*Text:\s*$", "", text, flags=re.M).strip()
    first, _, rest = prompt.strip().partition("\n")
    return first.strip(), rest.strip() or first.strip()


def sentences(text: str) -> list[tuple[str | None, str]]:
    """(message id, sentence) for every sentence of `text`; the id comes from the last transcript header line
    ("[position] role id (time)") above it, None when the text is not a transcript. Headers are not sentences."""
    out: list[tuple[str | None, str]] = []
    current = None
    for line in text.splitlines():
        line = line.strip()
        h = _HEADER.match(line)
        if h:
            current = h.group(3)
            continue
        if line.startswith("→ "):
            line = line[2:]
        for s in _SENTENCE_END.split(line):
            s = s.strip()
            if len(s) >= 3:
                out.append((current, s))
    return out


def _clip(sentence: str, terms: list[tuple[str, str]]) -> str:
    """A long sentence (JSON, a log line) cut to MAX_SENTENCE characters around its first matched term."""
    if len(sentence) <= MAX_SENTENCE:
        return sentence
    first = min((m.start() for _, p in terms if (m := re.search(p, sentence, re.I))), default=0)
    lo = max(0, first - MAX_SENTENCE // 3)
    return ("…" if lo else "") + sentence[lo:lo + MAX_SENTENCE] + "…"


def extract(question: str, text: str, k: int = SUB_SENTENCES) -> list[tuple[str | None, str]]:
    """The k sentences of `text` most relevant to `question`, in text order, with their message ids."""
    terms = key_terms(question)
    items = sentences(text)
    if not terms or not items:
        return []
    ranked = rank_sentences(terms, [s for _, s in items])
    chosen, seen = [], set()
    for _, i in ranked:
        if items[i][1] not in seen:
            seen.add(items[i][1])
            chosen.append(i)
        if len(chosen) == k:
            break
    return [(items[i][0], _clip(items[i][1], terms)) for i in sorted(chosen)]


def sub_answer(prompt: str) -> str:
    question, text = split_prompt(prompt)
    found = extract(question, text)
    if not found:
        return "No sentence of the text shares a key term with the question."
    return "\n".join(f"[{mid}] {s}" if mid else s for mid, s in found)


# ---- root role -----------------------------------------------------------------------------------------------

def _text(message: dict) -> str:
    c = message.get("content")
    if isinstance(c, list):  # OpenAI content parts
        return "\n".join(p.get("text", "") for p in c if isinstance(p, dict))
    return c or ""


def question_of(messages: list[dict]) -> str:
    users = [_text(m) for m in messages if m.get("role") == "user"]
    first = users[0] if users else ""
    m = re.search(r"^Question:\s*(.+?)(?:\n\n|\Z)", first, re.M | re.S)
    return (m.group(1) if m else first).strip()


def root_reply(messages: list[dict]) -> str:
    system = _text(messages[0]) if messages and messages[0].get("role") == "system" else ""
    question = question_of(messages)
    if "You cannot run code" in system:
        return _hybrid_answer(*split_prompt(_text(messages[-1])))
    terms = key_terms(question)
    outputs = [_text(m) for m in messages[2:] if m.get("role") == "user"]  # REPL outputs (after the task message)
    last = _text(messages[-1]) if messages else ""
    steps = sum(1 for m in messages if m.get("role") == "assistant")
    sub_out = next((o for o in reversed(outputs) if MARK_SUB in o), None)
    hits_out = next((o for o in reversed(outputs) if MARK_HITS in o), None)

    if not terms:
        return ("FINAL(The question has no key terms this rule-based demo model can search for "
                f"(all words are stop words): {question!r}. Ask with specific words, names or file names.)")
    if "out of turns" in last or steps >= 6:
        return "FINAL(" + (_synthesis(question, sub_out) or "No answer found within the turn limit.") + ")"
    if sub_out is not None:
        if "FINAL_VAR(" in last or "Traceback" in last or "was not taken" in last:
            return "FINAL(" + (_synthesis(question, sub_out) or _no_answer(question)) + ")"
        return _step_answer(question, sub_out)
    if hits_out is not None:
        positions = _top_positions(hits_out)
        if not positions:
            return "FINAL(" + _no_answer(question) + ")"
        return _step_sub_calls(question, terms, positions)
    if outputs and "Traceback" in outputs[-1]:
        return "FINAL(The search code failed in the REPL (see the traceback above); no answer.)"
    return _step_search(question, terms)


def _no_answer(question: str) -> str:
    terms = ", ".join(k for k, _ in key_terms(question))
    return f"No message in the context matches the question's key terms ({terms})."


def _step_search(question: str, terms: list[tuple[str, str]]) -> str:
    words = " ".join(k for k, _ in terms)
    return f"""Step 1: look at the shape of the history, then find the messages that mention the question's key terms \
({words}).

```repl
import math
question = {question!r}
TERMS = {terms!r}
print(len(context), "messages,", context.tokens, "estimated tokens")
print(context.sessions.select("session_id", "format", "messages"))
score, matched = {{}}, {{}}
for key, pattern in TERMS:
    hits = context.regex_search(pattern, limit=200, case=False)
    print(f"regex {{pattern!r}}: {{hits.total}} messages")
    weight = 1.0 / (1.0 + math.log1p(hits.total))  # rarer terms weigh more
    for s in hits:
        score[s.position] = score.get(s.position, 0.0) + weight
        matched.setdefault(s.position, set()).add(key)
ranked = context.search({words!r}, limit=20, mode="bm25")
print(ranked)
for rank, s in enumerate(ranked):
    score[s.position] = score.get(s.position, 0.0) + 0.5 / (rank + 1)
    matched.setdefault(s.position, set())
top = sorted(score, key=lambda p: (-len(matched[p]), -score[p], p))[:{TOP_N}]
print("{MARK_HITS}")
for p in top:
    m = context[p]
    print(f"  [{{p}}] {{m.id}} {{m.role}} terms={{sorted(matched[p])}} score={{score[p]:.2f}}: {{m.content[:100]!r}}")
print("TOP_POSITIONS =", top)
```"""


def _top_positions(output: str) -> list[int]:
    m = re.search(r"TOP_POSITIONS = \[([0-9,\s]*)\]", output)
    return [int(x) for x in m.group(1).replace(",", " ").split()] if m else []


def _step_sub_calls(question: str, terms: list[tuple[str, str]], positions: list[int]) -> str:
    return f"""Step 2: read the {len(positions)} best-matching messages through sub-model calls, in parallel.

```repl
import re
question = {question!r}
patterns = {[p for _, p in terms]!r}
positions = {positions!r}

def around(rendered, width={WINDOW_CHARS}):
    header, _, body = rendered.partition("\\n")
    starts = [m.start() for p in patterns if (m := re.search(p, body, re.I))]
    if len(body) <= 2 * width:
        return rendered
    lo = max(0, min(starts, default=0) - width // 2)
    return header + "\\n" + ("…" if lo else "") + body[lo:lo + 2 * width] + "…"

chunks, current, size = [], [], 0
for p in positions:
    m = context[p]
    text = around(m.render())
    if current and size + len(text) > {CHUNK_CHARS}:
        chunks.append(current)
        current, size = [], 0
    current.append((m.id, text))
    size += len(text)
if current:
    chunks.append(current)
prompts = [f"Question: {{question}}\\n\\nText:\\n" + "\\n\\n".join(t for _, t in c) for c in chunks]
chunk_ids = [[i for i, _ in c] for c in chunks]
sub_answers = sub_llm_batch(prompts)
print("{MARK_SUB}")
for ids, a in zip(chunk_ids, sub_answers):
    print("--- chunk of", ids)
    print(a)
```"""


def _cited_lines(sub_out: str) -> list[tuple[str, str]]:
    body = sub_out.split(MARK_SUB, 1)[-1]
    return [(m.group(1), m.group(2)) for line in body.splitlines() if (m := _CITED.match(line.strip()))]


def _best_lines(question: str, sub_out: str | None) -> list[tuple[str, str]]:
    if not sub_out:
        return []
    lines = list(dict.fromkeys(_cited_lines(sub_out)))
    ranked = rank_sentences(key_terms(question), [s for _, s in lines])
    return [lines[i] for _, i in ranked[:ANSWER_LINES]]


def _format(question: str, best: list[tuple[str, str]]) -> str:
    evidence = list(dict.fromkeys(i for i, _ in best))
    lines = ["From the messages that best match the question (rule-based extraction, offline demo model):"]
    lines += [f"- {s} [{i}]" for i, s in best]
    lines.append("Evidence: " + ", ".join(evidence))
    return "\n".join(lines)


def _synthesis(question: str, sub_out: str | None) -> str | None:
    best = _best_lines(question, sub_out)
    return _format(question, best) if best else None


def _step_answer(question: str, sub_out: str) -> str:
    best = _best_lines(question, sub_out)
    if not best:
        return "FINAL(" + _no_answer(question) + " (the sub-model found no matching sentence))"
    evidence = list(dict.fromkeys(i for i, _ in best))
    return f"""Step 3: the sub-answers that share the most key terms with the question, with the ids of their \
messages; check that every cited id exists, then answer.

```repl
evidence = {evidence!r}
print(context.get_by_id(evidence))
final_answer = {_format(question, best)!r}
answer["content"] = final_answer
print(final_answer)
```
FINAL_VAR(final_answer)"""


def _hybrid_answer(question: str, packed: str) -> str:
    found = [(i, s) for i, s in extract(question, packed, k=ANSWER_LINES) if i]
    if not found:
        return _no_answer(question)
    return _format(question, found)
