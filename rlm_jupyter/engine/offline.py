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

import bisect
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

_HEADER = re.compile(r"^\[(\d+|\?)\] (\S+) (\S+) \(([^)]*)\)( !error)?$")
ERROR_FLAG = " !error"  # appended to a rendered tool row's header by the root's code when the call failed
_CITED = re.compile(r"^\[([^\]\s]+)\] (.+)$")
_TOKEN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./\-]*[A-Za-z0-9_]|[A-Za-z0-9]")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z`\"'(\[])")
_IRREGULAR = {
    "wrote": "writ",
    "written": "writ",
    "ran": "run",
    "chose": "choos",
    "chosen": "choos",
    "broke": "break",
    "broken": "break",
    "threw": "throw",
    "thrown": "throw",
}
_ERRORS = (
    r"\w*(?:Error|Exception)\b|exit(?:ed)? (?:with )?code [1-9]|Exit code [1-9]|No such file|Traceback"
    r"|does not exist|not found|[Ff]ailed|FAILED|is a required property|<error>"
)
# Question words whose evidence rarely repeats them: a failure is told by the error itself ("AssertionError", "No such
# file"), a decision by "decided"/"chose", a rejection by "rejected"/"refused". Their regex matches the family.
FAMILIES = {
    "fail": r"\bfail|" + _ERRORS,
    "error": r"\berror|" + _ERRORS,
    "crash": r"\bcrash|" + _ERRORS,
    "miss": r"\bmiss|does not exist|not found|No such file|[Tt]here is no\b",
    "decid": r"\bdecid|\bdecision|\bchose|\bagreed",
    "decision": r"\bdecid|\bdecision|\bchose|\bagreed",
    "reject": r"\breject|\brefus|\bdeclin|doesn't want",
}
DECISION_KEYS = {"decid", "decision", "reject", "choos", "chose"}
FAILURE_KEYS = {"fail", "error", "crash", "miss", "broke", "break"}
# "Decision: Decided to X" names X once (the label and the verb are one clause, not "Decided: Decided to X")
_DECIDED = re.compile(
    r"(?:\b[Dd]ecided to|\b[Dd]ecision:(?:\s*(?:[Ww]e )?[Dd]ecided to)?|\b[Cc]hose to|"
    r"\b[Aa]greed to)\s+(.+?)\.?$"
)
# what was rejected must be named after the verb: "The tool use was rejected (eg. …)" names nothing, so it is no
# "rejected: …" clause (its sentence still stands among the cited ones)
_REJECTED = re.compile(r"\b[Rr]ejected:?\s+([^\s(].*?)(?:,? because (.+?)|\s*\(([^)]+)\))?\.?$")
# What an answer looks like, by the question's key term (stemmed): boosts items of that shape.
_ANSWER_SHAPES = [
    ("file", re.compile(r"[\w\-/]+\.[A-Za-z0-9]{1,5}\b")),
    ("command", re.compile(r"(^|\s|: )(python3?|pip|npm|npx|git|pytest|cat|ls|cd|rg|grep|sed|make|bash|node)\s")),
    ("error", re.compile(_ERRORS)),
    ("fail", re.compile(_ERRORS)),
    ("miss", re.compile(r"does not exist|not found|No such file")),
    ("decid", re.compile(r"\b[Dd]ecided to|\b[Dd]ecision:")),
    ("reject", re.compile(r"\b[Rr]ejected\b")),
    ("fix", re.compile(r"\b[Ff]ixed\b[:,]|\bnow\b")),
]
PARAGRAPH_CHARS = 320  # a tool output this short is one answer item, with its call
MARK_HITS = "[offline:hits]"
MARK_SUB = "[offline:sub-answers]"
TOP_N = 8
CHUNK_CHARS = 6_000
WINDOW_CHARS = 1_500
MAX_SENTENCE = 400
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
            pattern = FAMILIES.get(key, r"\b" + re.escape(key))
        if key not in seen:
            seen.add(key)
            out.append((key, pattern))
    return out


def _matches(terms: list[tuple[str, str]], text: str) -> set[str]:
    return {k for k, p in terms if re.search(p, text, re.I)}


_JOIN = "\n\x00\n"  # no term pattern can match across it (they hold no anchors, negated classes or `.`)


def _matches_each(terms: list[tuple[str, str]], items: list[str]) -> list[set[str]]:
    """`_matches` of every item, with one regex pass per term over all items joined (a compaction summary scores
    thousands of sentences: one search per term and sentence was most of its time). The same sets: a match never
    spans the joint, and `\b` sees the joint's newlines as it sees a text's ends."""
    if len(items) < 16:
        return [_matches(terms, s) for s in items]
    starts, pos = [], 0
    for s in items:
        starts.append(pos)
        pos += len(s) + len(_JOIN)
    text = _JOIN.join(items)
    found: list[set[str]] = [set() for _ in items]
    for k, p in terms:
        for m in re.finditer(p, text, re.I):
            found[bisect.bisect_right(starts, m.start()) - 1].add(k)
    return found


def rank_sentences(
    terms: list[tuple[str, str]], items: list[str], weights: list[float] | None = None
) -> list[tuple[float, int]]:
    """(score, index) of items sharing terms with the question, best first: the sum over matched terms of
    log(1 + n / df) (rare terms weigh more), plus 1.5 when the item has the shape the question asks for (a file
    name for "which file", a command line for "which command", an error for "error"/"fail", "decided to" for a
    decision), times the item's weight (see `_weight`); ties by text order."""
    found = _matches_each(terms, items)
    df: dict[str, int] = {}
    for f in found:
        for k in f:
            df[k] = df.get(k, 0) + 1
    n = len(items)
    shapes = [rx for key, rx in _ANSWER_SHAPES if any(k == key for k, _ in terms)]
    weights = weights or [1.0] * n
    scored = [
        ((sum(math.log(1 + n / df[k]) for k in f) + sum(1.5 for rx in shapes if rx.search(items[i]))) * weights[i], i)
        for i, f in enumerate(found)
        if f
    ]
    return sorted(scored, key=lambda x: (-x[0], x[1]))


# ---- sub role: extractive ---------------------------------------------------------------------------------


def split_prompt(prompt: str) -> tuple[str, str]:
    """(question, text) of a sub-call prompt: a "Question:" line, else the prompt's first line."""
    m = re.search(r"^\s*Question:\s*(.+)$", prompt, re.M)
    if m:
        text = prompt[: m.start()] + prompt[m.end() :]
        return m.group(1).strip(), re.sub(r"^\s*Text:\s*$", "", text, flags=re.M).strip()
    first, _, rest = prompt.strip().partition("\n")
    return first.strip(), rest.strip() or first.strip()


_BOILERPLATE = re.compile(r"^(Traceback \(most recent call last\):|<returncode>\d+</returncode>|</?output>)$")
_LIST_MARK = re.compile(r"^(?:\d+\t|\d+: |[-*•] |\d+\. )+")  # list bullets, Read/cat line numbers


def _weight(role: str | None, sentence: str) -> float:
    """Answers come from what the agent and its tools said: the question itself (a sentence ending in "?") and
    instructions (user and system text) are weaker evidence than assistant and tool text."""
    w = {"user": 0.7, "system": 0.4}.get((role or "").split("/")[0], 1.0)
    if _BOILERPLATE.match(sentence):
        w *= 0.2  # "Traceback (most recent call last):" says that something failed, not what
    return w * (0.3 if sentence.rstrip().endswith("?") else 1.0)


def _blocks(text: str) -> list[dict]:
    """The rendered messages of a transcript: header fields, the call line of a tool row, its prose and output
    lines. Text without headers is one block with id None."""
    blocks = [{"id": None, "role": None, "error": False, "call": None, "prose": [], "output": []}]
    for raw in text.splitlines():
        line = raw.rstrip()
        h = _HEADER.match(line.strip())
        if h:
            blocks.append(
                {
                    "id": h.group(3),
                    "role": h.group(2),
                    "error": bool(h.group(5)),
                    "call": None,
                    "prose": [],
                    "output": [],
                }
            )
            continue
        b = blocks[-1]
        if line.startswith("→ ") and not b["output"]:
            b["output"].append(line[2:])
        elif b["output"]:
            b["output"].append(line)
        elif (b["role"] or "").startswith("tool/") and b["call"] is None and line.strip():
            b["call"] = line.strip()  # the first line of a rendered tool row is its call ("Bash: python3 x.py")
        else:
            b["prose"].append(line)
    return [b for b in blocks if b["id"] is not None or b["prose"] or b["output"]]


def _paragraphs(lines: list[str]) -> list[str]:
    """Blank-line separated paragraphs, lines joined by spaces, list bullets and line numbers dropped; a paragraph
    that ends with a colon ("Format error:") keeps the paragraph after it."""
    out, para = [], []
    for line in lines + [""]:
        line = _LIST_MARK.sub("", line.strip()).strip()
        if line:
            para.append(line)
        elif para and not para[-1].endswith(":"):
            out.append(" ".join(para))
            para = []
    if para:
        out.append(" ".join(para))
    return out


def _units(lines: list[str]) -> list[str]:
    """Whole sentences of prose; a sentence ending in a colon ("Format error:") keeps the sentence after it."""
    out: list[str] = []
    for para in _paragraphs(lines):
        for u in (u.strip() for u in _SENTENCE_END.split(para)):
            if not u:
                continue
            if out and out[-1].endswith(":") and len(out[-1]) < 60:
                out[-1] = f"{out[-1]} {u}"
            else:
                out.append(u)
    return out


def items(text: str) -> list[dict]:
    """The answer items of `text`: {"id", "role", "text", "weight"}, in text order. The id and role come from the
    transcript header ("[position] role id (time)") above, None when the text is not a transcript; headers are not
    items. Units are whole sentences (tool output: lines, then sentences; a short lead-in ending in a colon keeps
    the sentence after it). A tool call goes with its result: a short output (at most PARAGRAPH_CHARS) is one item
    "call → output", and an error line of a longer one is given as "call → error"."""
    out: list[dict] = []
    for b in _blocks(text):
        mid, role = b["id"], b["role"]
        units = _units(b["prose"])
        if b["call"] and not b["output"]:
            units.insert(0, b["call"])
        output = "\n".join(b["output"]).strip()
        if output:
            flat = " ".join(_paragraphs(b["output"]))
            if b["call"] and len(flat) <= PARAGRAPH_CHARS:
                units.append(f"{b['call']} → {flat}")
            else:
                lines = [_LIST_MARK.sub("", x.strip()).strip() for x in b["output"]]
                for u in (u.strip() for x in lines if x for u in _SENTENCE_END.split(x)):
                    if not u:
                        continue
                    if b["call"] and re.search(_ERRORS, u) and not _BOILERPLATE.match(u):
                        u = f"{b['call']} → {u}"
                    units.append(u)
        for u in units:
            if len(u) >= 3:
                out.append({"id": mid, "role": role, "text": u, "weight": _weight(role, u)})
    return out


def sentences(text: str) -> list[tuple[str | None, str]]:
    """(message id, item text) for every answer item of `text` (see `items`)."""
    return [(it["id"], it["text"]) for it in items(text)]


def _clip(sentence: str, terms: list[tuple[str, str]]) -> str:
    """A long item (JSON, a log line) cut at spaces to about MAX_SENTENCE characters around its first matched term;
    "…" marks each cut."""
    if len(sentence) <= MAX_SENTENCE:
        return sentence
    first = min((m.start() for _, p in terms if (m := re.search(p, sentence, re.I))), default=0)
    lo = max(0, first - MAX_SENTENCE // 3)
    hi = lo + MAX_SENTENCE
    if lo:
        space = sentence.find(" ", lo)
        lo = space + 1 if 0 <= space < first else lo
    if hi < len(sentence):
        space = sentence.rfind(" ", lo, hi)
        hi = space if space > lo else hi
    return ("…" if lo else "") + sentence[lo:hi] + ("…" if hi < len(sentence) else "")


def extract(question: str, text: str, k: int = SUB_SENTENCES) -> list[tuple[str | None, str]]:
    """The k items of `text` most relevant to `question`, in text order, with their message ids."""
    terms = key_terms(question)
    found = items(text)
    if not terms or not found:
        return []
    ranked = rank_sentences(terms, [it["text"] for it in found], [it["weight"] for it in found])
    order = [i for _, i in ranked]
    if any(k in DECISION_KEYS for k, _ in terms):
        # a decision has two halves: the best sentence saying what was decided and the best saying what was
        # rejected go first, so neither is crowded out by restatements of the other
        halves = [next((i for i in order if rx.search(found[i]["text"])), None) for rx in (_DECIDED, _REJECTED)]
        order = [i for i in halves if i is not None] + order
    chosen, seen = [], set()
    for i in order:
        if found[i]["text"] not in seen:
            seen.add(found[i]["text"])
            chosen.append(i)
        if len(chosen) == k:
            break
    return [(found[i]["id"], _clip(found[i]["text"], terms)) for i in sorted(chosen)]


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
        return (
            "FINAL(The question has no key terms this rule-based demo model can search for "
            f"(all words are stop words): {question!r}. Ask with specific words, names or file names.)"
        )
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
    failure = any(k in FAILURE_KEYS for k, _ in terms)
    errors = (
        """
# a failure question: the tool calls that failed are evidence even when they share no word with it
failed = context.filter(lambda m: m.role == "tool" and m.tool_status == "error")
print("tool calls that failed:", len(failed))
for s in failed:
    score[s.position] = score.get(s.position, 0.0) + 1.0
    matched.setdefault(s.position, set()).add("(tool error)")
"""
        if failure
        else ""
    )
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
{errors}ranked = context.search({words!r}, limit=20, mode="bm25")
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

def around(msg, width={WINDOW_CHARS}):
    # the message cut to whole lines around its first match; a failed tool call is flagged in its header
    header, _, body = msg.render().partition("\\n")
    if msg.role == "tool" and msg.tool_status == "error":
        header += {ERROR_FLAG!r}
    if len(body) <= 2 * width:
        return header + "\\n" + body
    starts = [m.start() for p in patterns if (m := re.search(p, body, re.I))]
    lo = body.rfind("\\n", 0, max(0, min(starts, default=0) - width // 2)) + 1
    hi = body.find("\\n", lo + 2 * width)
    hi = len(body) if hi < 0 else hi
    return header + "\\n" + body[lo:hi] + ("\\n…" if hi < len(body) else "")

chunks, current, size = [], [], 0
for p in positions:
    m = context[p]
    text = around(m)
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


# a list marker before or after a sub-answer's "[id]" ("- [id] x", "[id] - x", "[id] 1. x"): the answer writes its
# own "- " bullet, and a second one read "- - Rejected …"
_BULLET = re.compile(r"^(?:\s*(?:[-*•+]|\d+[.)])\s+)+")


def _unbullet(text: str) -> str:
    return _BULLET.sub("", text.strip()).strip()


def _cited_lines(sub_out: str) -> list[tuple[str, str]]:
    body = sub_out.split(MARK_SUB, 1)[-1]
    return [
        (m.group(1), _unbullet(m.group(2)))
        for line in body.splitlines()
        if (m := _CITED.match(_unbullet(line))) and _unbullet(m.group(2))
    ]


def _best_lines(question: str, sub_out: str | None) -> list[tuple[str, str]]:
    if not sub_out:
        return []
    lines = list(dict.fromkeys(_cited_lines(sub_out)))
    ranked = rank_sentences(key_terms(question), [s for _, s in lines], [_weight(None, s) for _, s in lines])
    return [lines[i] for _, i in ranked[:ANSWER_LINES]]


def _clause(text: str) -> str:
    return text.strip().strip("`*").rstrip(".;:,").strip()


def decision(lines: list[tuple[str, str]]) -> tuple[str, list[str]] | None:
    """("Decided: X; rejected: Y (because Z).", ids) from the first cited sentences that say "decided to X" and
    "rejected Y because Z" / "Rejected: Y, because Z" / "rejected Y (Z)"; None when neither is said."""
    decided = rejected = None
    for mid, line in lines:
        for sentence in _SENTENCE_END.split(line):
            if decided is None and (m := _DECIDED.search(sentence)):
                decided = (mid, _clause(m.group(1)))
            if rejected is None and (m := _REJECTED.search(sentence)):
                because = m.group(2) or m.group(3)
                rejected = (mid, _clause(m.group(1)), _clause(because) if because else None)
    if decided is None and rejected is None:
        return None
    parts, ids = [], []
    if decided:
        parts.append(f"decided: {decided[1]}")
        ids.append(decided[0])
    if rejected:
        parts.append(f"rejected: {rejected[1]}" + (f" (because {rejected[2]})" if rejected[2] else ""))
        ids.append(rejected[0])
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + ".", list(dict.fromkeys(ids))


def _format(question: str, best: list[tuple[str, str]], all_lines: list[tuple[str, str]] | None = None) -> str:
    """The answer: for a decision question, "Decided: X; rejected: Y (because Z)." first when the cited sentences
    say so; then the best sentences, each with its message id; then the Evidence line (every id cited)."""
    lines = ["From the messages that best match the question (rule-based extraction, offline demo model):"]
    cited = [i for i, _ in best]
    if any(k in DECISION_KEYS for k, _ in key_terms(question)):
        found = decision(best + [line for line in all_lines or [] if line not in best])
        if found:
            lines.insert(0, f"{found[0]} [{', '.join(found[1])}]")
            cited = found[1] + cited
    lines += [f"- {_unbullet(s)} [{i}]" for i, s in best]
    lines.append("Evidence: " + ", ".join(dict.fromkeys(cited)))
    return "\n".join(lines)


def _synthesis(question: str, sub_out: str | None) -> str | None:
    best = _best_lines(question, sub_out)
    return _format(question, best, _cited_lines(sub_out) if sub_out else None) if best else None


def _step_answer(question: str, sub_out: str) -> str:
    best = _best_lines(question, sub_out)
    if not best:
        return "FINAL(" + _no_answer(question) + " (the sub-model found no matching sentence))"
    final = _format(question, best, _cited_lines(sub_out))
    evidence = cited_ids(final)
    return f"""Step 3: the sub-answers that share the most key terms with the question, with the ids of their \
messages; check that every cited id exists, then answer.

```repl
evidence = {evidence!r}
print(context.get_by_id(evidence))
final_answer = {final!r}
answer["content"] = final_answer
print(final_answer)
```
FINAL_VAR(final_answer)"""


def cited_ids(answer: str) -> list[str]:
    m = re.search(r"^Evidence: (.+)$", answer, re.M)
    return m.group(1).split(", ") if m else []


def _hybrid_answer(question: str, packed: str) -> str:
    found = [(i, s) for i, s in extract(question, packed, k=ANSWER_LINES) if i]
    if not found:
        return _no_answer(question)
    return _format(question, found)
