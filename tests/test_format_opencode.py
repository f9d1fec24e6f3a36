"""OpenCode loader: real `opencode export` files (1.2.5), SQLite opencode.db and <=1.1 storage trees.

Expected values are computed here from the raw JSON (independently of the loader) or were checked by hand
against the sample files, as noted.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from pathlib import Path

import pytest

import rlm_jupyter as rj
from rlm_jupyter.sessions import formats
from rlm_jupyter.sessions.formats import opencode

EXPORTS = Path(__file__).parent / "data" / "samples" / "opencode-export"
RECORDED = Path(__file__).parent / "data" / "recorded" / "opencode"
ALL = sorted(EXPORTS.glob("*.json"))
NEON = EXPORTS / "session__neon-river__ses_39b623ce7ffeILPe9UgDcyGicH.json"
JOLLY = EXPORTS / "session__jolly-eagle__ses_39b5d713cffeRgAoxPIwS3Plus.json"
QUIET = EXPORTS / "session__quiet-meadow__ses_39c0a3da8ffeFQWvKTGUJWivpv.json"


def raw(path: Path) -> dict:
    return json.loads(path.read_text())


def messages(data: dict) -> list[dict]:
    return sorted(data["messages"], key=lambda m: m["info"]["id"])


def expected(data: dict) -> dict:
    """What `inspect --json` must say, computed straight from the export."""
    prompts, tools, errors, roles = [], [], 0, {"user": 0, "assistant": 0, "tool": 0}
    tokens = dict.fromkeys(("input", "output", "cache_read", "cache_write", "reasoning"), 0)
    for m in messages(data):
        info, parts = m["info"], m["parts"]
        if info["role"] == "user":
            typed = [p["text"] for p in parts if p["type"] == "text" and not p.get("synthetic")]
            synthetic = [p for p in parts if p["type"] == "text" and p.get("synthetic")]
            roles["user"] += 1 + bool(synthetic)
            prompts.append("\n\n".join(typed))
            continue
        roles["assistant"] += 1
        t = info.get("tokens") or {}
        tokens["input"] += t.get("input", 0)
        tokens["output"] += t.get("output", 0)
        tokens["reasoning"] += t.get("reasoning", 0)
        tokens["cache_read"] += t.get("cache", {}).get("read", 0)
        tokens["cache_write"] += t.get("cache", {}).get("write", 0)
        for p in parts:
            if p["type"] == "tool":
                tools.append(p["tool"])
                roles["tool"] += 1
                st = p["state"]
                exit_code = (st.get("metadata") or {}).get("exit") if st["status"] == "completed" else None
                errors += st["status"] == "error" or (isinstance(exit_code, int) and exit_code != 0)
    return {"prompts": prompts, "tools": tools, "errors": errors, "roles": roles, "tokens": tokens}


def summary(ctx, session_id: str) -> dict:
    return next(s for s in ctx.summaries() if s["session_id"] == session_id)


# --- real exports ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name.split("__")[1])
def test_real_export_matches_the_file(path):
    data = raw(path)
    ctx = rj.load(path)
    assert ctx.report.skipped == []
    s = summary(ctx, data["info"]["id"])
    want = expected(data)
    assert s["format"] == "opencode" and s["producer"] == "opencode"
    assert s["producer_version"] == data["info"]["version"] == "1.2.5"
    assert s["title"] == data["info"]["title"]
    assert s["user_prompts"] == want["prompts"]
    assert s["tool_calls"] == want["tools"]
    assert s["tool_errors"] == want["errors"]
    assert s["tokens"] == want["tokens"]
    assert s["messages"] == {k: v for k, v in want["roles"].items() if v}
    row = ctx.sessions.row(0, named=True)
    assert row["cwd"] == data["info"]["directory"]
    assert row["model"] == "gpt-5.3-codex"  # first assistant's modelID, the same in all four samples
    assert row["started"].timestamp() * 1000 == pytest.approx(data["info"]["time"]["created"])


def test_sample_counts_checked_by_hand():
    """Numbers read by hand from the files (and in samples/SOURCES.md): messages and tool calls per session."""
    ctx = rj.load(EXPORTS)
    by_id = {s["session_id"]: s for s in ctx.summaries()}
    assert len(by_id) == 4
    assert len(by_id["ses_39b5d713cffeRgAoxPIwS3Plus"]["tool_calls"]) == 2
    assert len(by_id["ses_39b623ce7ffeILPe9UgDcyGicH"]["tool_calls"]) == 15
    assert len(by_id["ses_39b4c1891ffezxPVc5OPmcqF33"]["tool_calls"]) == 4
    assert len(by_id["ses_39c0a3da8ffeFQWvKTGUJWivpv"]["tool_calls"]) == 37
    # quiet-meadow: two glob calls on missing folders and an aborted task call failed.
    assert by_id["ses_39c0a3da8ffeFQWvKTGUJWivpv"]["tool_errors"] == 3


def test_assistant_rows_carry_tokens_cost_and_thinking():
    data = raw(JOLLY)
    df = rj.load(JOLLY).df
    first = next(m["info"] for m in messages(data) if m["info"]["role"] == "assistant")
    row = df.filter(df["id"] == first["id"]).row(0, named=True)
    t = first["tokens"]
    assert (row["input_uncached"], row["output"], row["reasoning"]) == (t["input"], t["output"], t["reasoning"])
    assert (row["cache_read"], row["cache_write"]) == (t["cache"]["read"], t["cache"]["write"])
    assert row["context_tokens"] == t["input"] + t["cache"]["read"] + t["cache"]["write"]
    assert row["cost_usd"] == first["cost"] == 0
    assert row["model"] == first["modelID"]
    assert row["origin"] == "model" and row["boundary"] is None
    last = messages(data)[-1]
    text = "\n\n".join(p["text"] for p in last["parts"] if p["type"] == "text")
    assert df.filter(df["id"] == last["info"]["id"])["text"].item() == text
    reasoning = [p["text"] for p in messages(data)[-1]["parts"] if p["type"] == "reasoning" and p["text"]]
    assert df.filter(df["id"] == last["info"]["id"])["thinking"].item() == ("\n\n".join(reasoning) or None)


def test_synthetic_parts_are_one_harness_row_after_the_prompt():
    data = raw(NEON)
    df = rj.load(NEON).df
    first = messages(data)[0]
    synthetic = [p["text"] for p in first["parts"] if p["type"] == "text" and p.get("synthetic")]
    assert len(synthetic) == 8  # four @-mentions: a "Called the Read tool" line and the listing for each
    rows = df.filter(df["id"].str.starts_with(first["info"]["id"])).sort("seq")
    assert rows["origin"].to_list() == ["human", "harness"]
    assert rows["raw_type"].to_list() == ["user", "user/synthetic"]
    assert rows["text"][1] == "\n\n".join(synthetic)
    # file:// mentions stay out of the typed text: their content is in the synthetic parts.
    assert "file://" not in rows["text"][0]
    harness = df.filter((df["role"] == "user") & (df["origin"] == "harness"))
    assert (
        harness.height
        == sum(any(p.get("synthetic") for p in m["parts"]) for m in data["messages"] if m["info"]["role"] == "user")
        == 3
    )


def test_aborted_message_keeps_its_row():
    data = raw(NEON)
    aborted = [m["info"] for m in data["messages"] if (m["info"].get("error") or {}).get("name")]
    assert [a["error"]["name"] for a in aborted] == ["MessageAbortedError"]
    df = rj.load(NEON).df
    row = df.filter(df["id"] == aborted[0]["id"]).row(0, named=True)
    assert row["role"] == "assistant"
    assert row["raw_type"] == "assistant/MessageAbortedError"
    assert "MessageAbortedError" in row["text"] and "aborted" in row["text"]


def test_task_tool_row_keeps_the_child_session_link():
    data = raw(JOLLY)
    task = next(p for m in data["messages"] for p in m["parts"] if p.get("tool") == "task")
    child = task["state"]["metadata"]["sessionId"]
    ctx = rj.load(JOLLY)
    row = ctx.df.filter(ctx.df["tool_name"] == "task").row(0, named=True)
    assert row["tool_call_id"] == row["id"] == task["callID"]
    assert child in row["text"]
    assert row["tool_output"] == task["state"]["output"]
    assert row["tool_status"] == "ok"
    assert row["parent_id"] == task["messageID"]
    assert ctx.df.filter(ctx.df["tool_name"] == "skill").height == 1
    # The child is not in the export, so no loaded session lists it; the parent keeps the id.
    assert summary(ctx, data["info"]["id"])["subagents"] == []


def test_tool_error_output_is_the_error_text():
    data = raw(QUIET)
    errs = [p for m in data["messages"] for p in m["parts"] if p["type"] == "tool" and p["state"]["status"] == "error"]
    df = rj.load(QUIET).df
    got = df.filter(df["tool_status"] == "error").sort("seq")
    assert got["tool_call_id"].to_list() == [p["callID"] for p in errs]
    assert got["tool_output"].to_list() == [p["state"]["error"] for p in errs]
    # The aborted task call still names the child session it had started.
    assert errs[-1]["state"]["metadata"]["sessionId"] in got["text"][-1]


def test_sources_point_back_to_the_records():
    df = rj.load(QUIET).df
    data = raw(QUIET)
    for src in df["source"].to_list()[:30]:
        path, pointer = src.split("#")
        node = data
        for key in pointer.strip("/").split("/"):
            node = node[int(key)] if isinstance(node, list) else node[key]
        assert isinstance(node, dict) and ("info" in node or "type" in node)


# --- robustness on variants of real exports -------------------------------------------------------------------
def write(tmp_path: Path, data, name="variant.json") -> Path:
    out = tmp_path / name
    out.write_text(json.dumps(data, indent=2))
    return out


def test_messages_out_of_order_are_sorted_by_id(tmp_path):
    data = raw(QUIET)
    data["messages"] = list(reversed(data["messages"]))
    for m in data["messages"]:
        m["parts"] = list(reversed(m["parts"]))
    a, b = rj.load(QUIET).df, rj.load(write(tmp_path, data)).df
    assert a["id"].to_list() == b["id"].to_list()
    assert a["text"].to_list() == b["text"].to_list()


def test_missing_optional_fields(tmp_path):
    data = raw(NEON)
    for m in data["messages"]:
        info = m["info"]
        info.pop("finish", None)
        info.get("time", {}).pop("completed", None)
        if info["role"] == "assistant":
            info["tokens"].pop("total", None)
    last = messages(data)[-1]["info"]
    del last["tokens"]
    del last["cost"]
    df = rj.load(write(tmp_path, data)).df
    row = df.filter(df["id"] == last["id"]).row(0, named=True)
    assert row["input_uncached"] is None and row["output"] is None and row["cost_usd"] is None
    assert df.filter(df["role"] == "assistant").height == 7


def test_windows_paths(tmp_path):
    data = raw(JOLLY)
    data["info"]["directory"] = "C:\\Users\\alex\\repos\\dark-factory"
    for m in data["messages"]:
        if m["info"]["role"] == "assistant":
            m["info"]["path"] = {"cwd": "C:\\Users\\alex\\repos\\dark-factory", "root": "C:\\Users\\alex"}
    ctx = rj.load(write(tmp_path, data))
    assert ctx.sessions["cwd"].item() == "C:\\Users\\alex\\repos\\dark-factory"


def _part(msg: dict, pid: str, **fields) -> dict:
    return {"id": pid, "sessionID": msg["info"]["sessionID"], "messageID": msg["info"]["id"], **fields}


def with_compaction(data: dict) -> dict:
    """quiet-meadow plus a manual compaction after its 10th message: a user message with a compaction part and the
    summary assistant answering it (shapes from the design notes §1.4), and the first read call pruned."""
    msgs = messages(data)
    anchor = msgs[9]["info"]
    sid = anchor["sessionID"]
    base = anchor["id"][:-4]
    user = {
        "info": {
            "id": base + "zzz1",
            "sessionID": sid,
            "role": "user",
            "time": {"created": anchor["time"]["created"]},
            "agent": "build",
            "model": {"providerID": "openai", "modelID": "gpt-5.3-codex"},
        },
        "parts": [],
    }
    user["parts"].append(_part(user, "prt_compaction_1", type="compaction", auto=False))
    summ = {
        "info": {
            **msgs[1]["info"],
            "id": base + "zzz2",
            "parentID": user["info"]["id"],
            "summary": True,
            "agent": "compaction",
            "mode": "compaction",
        },
        "parts": [],
    }
    summ["parts"].append(_part(summ, "prt_summary_text", type="text", text="## Goal\nWrite AGENTS.md"))
    data["messages"].extend([user, summ])
    read = next(p for m in msgs for p in m["parts"] if p.get("tool") == "read")
    read["state"]["time"]["compacted"] = read["state"]["time"]["end"]
    return data


def test_compaction_boundary_and_in_context(tmp_path):
    data = with_compaction(raw(QUIET))
    ctx = rj.load(write(tmp_path, data))
    df = ctx.df.sort("seq")
    marker = df.filter(df["boundary"] == "compaction").row(0, named=True)
    assert marker["role"] == "user" and marker["origin"] == "harness" and marker["raw_type"] == "compaction/manual"
    summ = df.filter(df["boundary"] == "summary").row(0, named=True)
    assert summ["origin"] == "summary" and summ["seq"] == marker["seq"] + 1 and summ["text"].startswith("## Goal")
    before = df.filter(df["seq"] < marker["seq"])
    assert before.height > 0 and not before["in_context"].any()
    after = df.filter(df["seq"] >= marker["seq"])
    assert after["in_context"].all()
    assert summary(ctx, data["info"]["id"])["compactions"] == 1
    # The human prompts are unchanged: the compaction request is harness text.
    assert summary(ctx, data["info"]["id"])["user_prompts"] == expected(raw(QUIET))["prompts"]


def test_failed_compaction_removes_nothing(tmp_path):
    data = with_compaction(raw(QUIET))
    summ = data["messages"][-1]["info"]
    assert summ["summary"] is True
    summ["error"] = {"name": "ContextOverflowError", "data": {"message": "too long"}}
    df = rj.load(write(tmp_path, data)).df
    assert df.filter(df["boundary"] == "compaction").height == 1
    assert df.filter(df["in_context"].not_())["tool_name"].to_list() == ["read"]  # only the pruned call


def test_pruned_tool_output_is_out_of_context(tmp_path):
    data = raw(QUIET)
    read = next(p for m in messages(data) for p in m["parts"] if p.get("tool") == "read")
    read["state"]["time"]["compacted"] = read["state"]["time"]["end"]
    df = rj.load(write(tmp_path, data)).df
    assert df.filter(df["tool_call_id"] == read["callID"])["in_context"].to_list() == [False]
    assert df.filter(df["in_context"].not_()).height == 1


def test_tail_start_id_keeps_the_tail_in_context(tmp_path):
    data = with_compaction(raw(QUIET))
    marker = next(p for m in data["messages"] for p in m["parts"] if p["type"] == "compaction")
    tail = messages(data)[8]["info"]["id"]
    marker["tail_start_id"] = tail
    df = rj.load(write(tmp_path, data)).df.sort("seq")
    tail_seq = df.filter(df["id"] == tail)["seq"].item()
    assert not df.filter(df["seq"] < tail_seq)["in_context"].any()
    assert df.filter(df["seq"] >= tail_seq)["in_context"].all()


def test_data_url_files_become_media_placeholders(tmp_path):
    data = raw(NIMBLE := EXPORTS / "session__nimble-pixel__ses_39b4c1891ffezxPVc5OPmcqF33.json")
    user = messages(data)[0]
    payload = "iVBORw0KGgo" + "A" * 4000
    user["parts"].append(
        _part(
            user,
            "prt_zzzz_image",
            type="file",
            mime="image/png",
            filename="shot.png",
            url=f"data:image/png;base64,{payload}",
        )
    )
    df = rj.load(write(tmp_path, data)).df
    text = df.filter(df["id"] == user["info"]["id"])["text"].item()
    assert "[media: image/png, 3,008 bytes]" in text
    assert payload not in text
    assert NIMBLE.exists()


def test_unknown_part_and_role_are_kept_as_harness_rows(tmp_path):
    data = raw(JOLLY)
    m = messages(data)[1]
    m["parts"].append(_part(m, "prt_zzzz_new", type="hologram", payload={"x": 1}))
    data["messages"].append(
        {
            "info": {
                "id": "msg_zzzz",
                "sessionID": m["info"]["sessionID"],
                "role": "narrator",
                "time": {"created": 1771214975000},
            },
            "parts": [],
        }
    )
    df = rj.load(write(tmp_path, data)).df
    unknown = df.filter(df["origin"] == "harness").sort("seq")
    assert unknown["raw_type"].to_list() == ["part/hologram", "message/narrator"]
    assert unknown["role"].to_list() == ["system", "system"]


def test_broken_exports_are_reported(tmp_path):
    cut = tmp_path / "cut.json"
    cut.write_bytes(JOLLY.read_bytes()[:5000])
    ctx = rj.load(tmp_path)
    assert len(ctx.report.issues) == 1
    assert "cut.json" in ctx.report.issues[0].where() and "not valid JSON" in ctx.report.issues[0].reason

    data = raw(JOLLY)
    data["messages"].insert(1, {"parts": []})
    ctx = rj.load(write(tmp_path, data, "noinfo.json"))
    issue = ctx.report.issues[0]
    assert issue.where().endswith("noinfo.json#/messages/1") and "without an info" in issue.reason
    assert ctx.df.filter(ctx.df["role"] == "assistant").height == 3


def test_non_utf8_and_crlf(tmp_path):
    text = JOLLY.read_bytes().replace(b"\n", b"\r\n")
    text = text.replace(b"Use the `gitter-commit`", b"Use the \xff `gitter-commit`")
    path = tmp_path / "bytes.json"
    path.write_bytes(text)
    ctx = rj.load(path)
    assert ctx.summaries()[0]["user_prompts"][0].startswith("Use the \ufffd `gitter-commit`")


def test_sniff_rejects_other_json(tmp_path):
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"info": {"id": "abc"}, "messages": []}, indent=2))
    assert not opencode.sniff(formats.Probe(other))
    gem = tmp_path / "gemini.json"
    gem.write_text(json.dumps({"sessionId": "ses_x", "projectHash": "h", "messages": []}, indent=2))
    assert not opencode.sniff(formats.Probe(gem))
    for p in ALL:
        assert opencode.sniff(formats.Probe(p))
    plain = tmp_path / "plain.db"
    sqlite3.connect(plain).execute("create table t(x)").connection.close()
    assert not opencode.sniff(formats.Probe(plain))


# --- SQLite and storage tree built from real export records (schema of design notes §1.3) ----------------------
SCHEMA = """
CREATE TABLE project (id TEXT PRIMARY KEY, worktree TEXT, time_created INTEGER, time_updated INTEGER);
CREATE TABLE session (id TEXT PRIMARY KEY, project_id TEXT, parent_id TEXT, slug TEXT, directory TEXT, title TEXT,
  version TEXT, share_url TEXT, time_created INTEGER, time_updated INTEGER, time_compacting INTEGER,
  time_archived INTEGER);
CREATE TABLE message (id TEXT PRIMARY KEY, session_id TEXT, time_created INTEGER, time_updated INTEGER, data TEXT);
CREATE TABLE part (id TEXT PRIMARY KEY, message_id TEXT, session_id TEXT, time_created INTEGER,
  time_updated INTEGER, data TEXT);
CREATE INDEX message_session_time_created_id_idx ON message (session_id, time_created, id);
CREATE INDEX part_message_id_id_idx ON part (message_id, id);
CREATE INDEX part_session_idx ON part (session_id);
"""

CHILD = "ses_39b5d3ed8ffea9fQ9vQMuZnTtO"  # jolly-eagle's task child (metadata.sessionId); not in the samples


def child_export() -> dict:
    """A stand-in child session of jolly-eagle: its task prompt as the user message, its result as the answer."""
    parent = raw(JOLLY)
    task = next(p for m in parent["messages"] for p in m["parts"] if p.get("tool") == "task")
    t0 = task["state"]["time"]["start"]
    info = {
        **parent["info"],
        "id": CHILD,
        "parentID": parent["info"]["id"],
        "slug": "child",
        "title": "gitter",
        "time": {"created": t0, "updated": task["state"]["time"]["end"]},
    }
    u = {
        "id": "msg_c64a2b1a0001aaaaaaaaaaaaaa",
        "sessionID": CHILD,
        "role": "user",
        "time": {"created": t0 + 1},
        "agent": "gitter",
        "model": {"providerID": "openai", "modelID": "gpt-5.3-codex"},
    }
    a = {
        **next(m["info"] for m in parent["messages"] if m["info"]["role"] == "assistant"),
        "id": "msg_c64a2b1b0001bbbbbbbbbbbbbb",
        "sessionID": CHILD,
        "parentID": u["id"],
        "time": {"created": t0 + 2},
    }
    return {
        "info": info,
        "messages": [
            {
                "info": u,
                "parts": [
                    {
                        "id": "prt_c64a2b1a0002cccccccccccccc",
                        "sessionID": CHILD,
                        "messageID": u["id"],
                        "type": "text",
                        "text": task["state"]["input"]["prompt"],
                    }
                ],
            },
            {
                "info": a,
                "parts": [
                    {
                        "id": "prt_c64a2b1b0002dddddddddddddd",
                        "sessionID": CHILD,
                        "messageID": a["id"],
                        "type": "text",
                        "text": "done",
                    }
                ],
            },
        ],
    }


def exports() -> list[dict]:
    return [raw(p) for p in ALL] + [child_export()]


def build_db(path: Path, wal: bool = True) -> Path:
    conn = sqlite3.connect(path)
    if wal:
        conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript(SCHEMA)
    for data in exports():
        insert(conn, data)
    conn.commit()
    conn.close()
    return path


def insert(conn: sqlite3.Connection, data: dict) -> None:
    i = data["info"]
    conn.execute(
        "INSERT INTO session (id, project_id, parent_id, slug, directory, title, version, time_created, "
        "time_updated) VALUES (?,?,?,?,?,?,?,?,?)",
        (
            i["id"],
            i["projectID"],
            i.get("parentID"),
            i["slug"],
            i["directory"],
            i["title"],
            i["version"],
            i["time"]["created"],
            i["time"]["updated"],
        ),
    )
    for m in data["messages"]:
        info = {k: v for k, v in m["info"].items() if k not in ("id", "sessionID")}
        conn.execute(
            "INSERT INTO message VALUES (?,?,?,?,?)",
            (m["info"]["id"], i["id"], m["info"]["time"]["created"], m["info"]["time"]["created"], json.dumps(info)),
        )
        for p in m["parts"]:
            body = {k: v for k, v in p.items() if k not in ("id", "sessionID", "messageID")}
            conn.execute(
                "INSERT INTO part VALUES (?,?,?,?,?,?)",
                (p["id"], m["info"]["id"], i["id"], m["info"]["time"]["created"], 0, json.dumps(body)),
            )


def build_tree(root: Path) -> Path:
    for data in exports():
        i = data["info"]
        (root / "session" / i["projectID"]).mkdir(parents=True, exist_ok=True)
        (root / "session" / i["projectID"] / f"{i['id']}.json").write_text(json.dumps(i))
        (root / "message" / i["id"]).mkdir(parents=True, exist_ok=True)
        for m in data["messages"]:
            (root / "message" / i["id"] / f"{m['info']['id']}.json").write_text(json.dumps(m["info"]))
            (root / "part" / m["info"]["id"]).mkdir(parents=True, exist_ok=True)
            for p in m["parts"]:
                (root / "part" / m["info"]["id"] / f"{p['id']}.json").write_text(json.dumps(p))
    return root


def comparable(df):
    return df.drop("source").sort("session_id", "seq")


def test_sqlite_db_holds_all_sessions_like_the_exports(tmp_path):
    db = build_db(tmp_path / "opencode.db")
    assert opencode.sniff(formats.Probe(db))
    ctx = rj.load(db)
    con = sqlite3.connect(f"file:{db}?mode=ro&immutable=1", uri=True)
    n_sessions = con.execute("SELECT count(*) FROM session").fetchone()[0]
    n_messages = con.execute("SELECT count(*) FROM message").fetchone()[0]
    n_tools = con.execute("SELECT count(*) FROM part WHERE json_extract(data, '$.type') = 'tool'").fetchone()[0]
    con.close()
    assert ctx.sessions.height == n_sessions == 5
    assert ctx.df.filter(ctx.df["role"] == "tool").height == n_tools
    assert ctx.df.filter(ctx.df["raw_type"] != "user/synthetic")["id"].str.starts_with("msg_").sum() == n_messages
    from_exports = rj.load(EXPORTS).df
    assert comparable(ctx.df.filter(ctx.df["session_id"] != CHILD)).equals(comparable(from_exports))
    assert ctx.df["source"][0].startswith(f"{db}#message/msg_")
    # the child session links to its parent, whose summary lists it
    child = ctx.sessions.filter(ctx.sessions["session_id"] == CHILD).row(0, named=True)
    assert child["parent_session_id"] == "ses_39b5d713cffeRgAoxPIwS3Plus"
    assert summary(ctx, "ses_39b5d713cffeRgAoxPIwS3Plus")["subagents"] == [CHILD]
    assert sorted(os.listdir(tmp_path)) == ["opencode.db"]  # nothing written beside a closed WAL db


def test_export_and_db_give_each_session_once(tmp_path):
    db = build_db(tmp_path / "opencode.db")
    ctx = rj.load([JOLLY, db])
    assert ctx.sessions.height == 5
    dup = [i for i in ctx.report.issues if i.kind == "duplicate"]
    assert len(dup) == 1 and "ses_39b5d713cffeRgAoxPIwS3Plus" in dup[0].reason


def test_live_wal_db_is_read_with_its_wal(tmp_path):
    db = build_db(tmp_path / "opencode.db")
    writer = sqlite3.connect(db)  # a live OpenCode: WAL mode, committed rows still only in -wal
    writer.execute("PRAGMA wal_autocheckpoint=0")
    writer.execute("UPDATE session SET title = 'renamed live' WHERE id = ?", (CHILD,))
    writer.commit()
    try:
        assert Path(f"{db}-wal").stat().st_size > 0
        ctx = rj.load(db)
        assert "renamed live" in ctx.sessions["title"].to_list()
        # a -wal without its -shm (copied without it): read from a temporary copy, nothing created beside it
        lone = tmp_path / "copy"
        lone.mkdir()
        shutil.copyfile(db, lone / "opencode.db")
        shutil.copyfile(f"{db}-wal", lone / "opencode.db-wal")
        ctx = rj.load(lone / "opencode.db")
        assert "renamed live" in ctx.sessions["title"].to_list()
        assert sorted(os.listdir(lone)) == ["opencode.db", "opencode.db-wal"]
    finally:
        writer.close()


def test_db_orders_messages_by_time_created_and_reports_bad_rows(tmp_path):
    db = build_db(tmp_path / "opencode.db", wal=False)
    conn = sqlite3.connect(db)
    conn.execute(
        "UPDATE part SET data = '{not json' WHERE id = (SELECT min(id) FROM part WHERE session_id = ?)", (CHILD,)
    )
    conn.commit()
    conn.close()
    ctx = rj.load(db)
    bad = [i for i in ctx.report.issues if i.kind == "malformed"]
    assert len(bad) == 1 and bad[0].pointer.startswith("part/prt_c64a2b1a0002")
    child = ctx.df.filter(ctx.df["session_id"] == CHILD).sort("seq")
    assert child["role"].to_list() == ["user", "assistant"] and child["text"][0] == ""


def test_storage_tree_matches_the_exports(tmp_path):
    root = build_tree(tmp_path / "opencode" / "storage")
    for folder in (root, root.parent):
        assert opencode.sniff_dir(formats.Probe(folder))
    ctx = rj.load(root.parent)
    assert ctx.sessions.height == 5
    assert comparable(ctx.df.filter(ctx.df["session_id"] != CHILD)).equals(comparable(rj.load(EXPORTS).df))
    assert ctx.df["source"][0].startswith(str(root / "message"))
    assert not opencode.sniff_dir(formats.Probe(EXPORTS))


def test_data_folder_reads_db_and_tree_once(tmp_path):
    data_dir = tmp_path / "opencode"
    build_tree(data_dir / "storage")
    build_db(data_dir / "opencode.db")
    # a session only in the tree (left behind by a failed migration)
    lone = child_export()
    lone["info"] = {**lone["info"], "id": "ses_zzzzonlyintree000000000000"}
    for m in lone["messages"]:
        m["info"]["sessionID"] = lone["info"]["id"]
    tree = data_dir / "storage"
    (tree / "session" / "p" / "ses_zzzzonlyintree000000000000.json").parent.mkdir()
    (tree / "session" / "p" / "ses_zzzzonlyintree000000000000.json").write_text(json.dumps(lone["info"]))
    (tree / "message" / "ses_zzzzonlyintree000000000000").mkdir()
    (tree / "message" / "ses_zzzzonlyintree000000000000" / "msg_1.json").write_text(
        json.dumps({**lone["messages"][0]["info"], "id": "msg_1"})
    )
    ctx = rj.load(data_dir)
    assert ctx.sessions.height == 6
    assert (
        ctx.sessions.filter(ctx.sessions["session_id"] != "ses_zzzzonlyintree000000000000")["path"]
        .str.ends_with("opencode.db")
        .all()
    )
    assert len([i for i in ctx.report.issues if i.kind == "duplicate"]) == 5


def test_db_with_an_unknown_schema_is_reported(tmp_path):
    db = tmp_path / "opencode.db"
    conn = sqlite3.connect(db)
    conn.executescript("CREATE TABLE session (id TEXT); CREATE TABLE message (id TEXT); CREATE TABLE part (id TEXT);")
    conn.close()
    ctx = rj.load(tmp_path)
    assert ctx.sessions.height == 0
    assert "could not be read: SQLite: no such column" in ctx.report.issues[0].reason


def test_tree_with_broken_record(tmp_path):
    root = build_tree(tmp_path / "storage")
    victim = sorted((root / "part").glob("*/*.json"))[0]
    victim.write_bytes(b'{"type": "text", "text": "cut')
    ctx = rj.load(root)
    assert [i.path for i in ctx.report.issues] == [str(victim)]
    assert ctx.sessions.height == 5


def test_discover(tmp_path, monkeypatch):
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    base = tmp_path / ".local" / "share" / "opencode"
    build_tree(base / "storage")
    build_db(base / "opencode.db")
    (base / "opencode-beta.db").write_bytes((base / "opencode.db").read_bytes())
    assert opencode.discover(tmp_path) == [base / "opencode-beta.db", base / "opencode.db", base / "storage"]
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert opencode.discover(tmp_path) == []


# --- real recorded stores (written by the opencode CLI against a scripted model server) -------------------------
def recorded_dbs() -> list[Path]:
    return sorted(RECORDED.rglob("opencode*.db")) if RECORDED.is_dir() else []


@pytest.mark.skipif(not recorded_dbs(), reason="no recorded opencode.db yet under tests/data/recorded/opencode")
def test_recorded_db():
    for db in recorded_dbs():
        con = sqlite3.connect(f"file:{db}?mode=ro&immutable=1", uri=True)
        n_sessions = con.execute("SELECT count(*) FROM session").fetchone()[0]
        n_tools = con.execute("SELECT count(*) FROM part WHERE json_extract(data, '$.type') = 'tool'").fetchone()[0]
        n_asst = con.execute(
            "SELECT count(*) FROM message WHERE json_extract(data, '$.role') = 'assistant'"
        ).fetchone()[0]
        con.close()
        ctx = rj.load(db)
        assert ctx.sessions.height == n_sessions
        assert ctx.df.filter(ctx.df["role"] == "tool").height == n_tools
        assert ctx.df.filter(ctx.df["role"] == "assistant").height == n_asst


def recorded_trees() -> list[Path]:
    if not RECORDED.is_dir():
        return []
    return sorted({p.parent for p in RECORDED.rglob("message") if (p.parent / "part").is_dir()})


@pytest.mark.skipif(not recorded_trees(), reason="no recorded storage/ tree yet under tests/data/recorded/opencode")
def test_recorded_tree():
    for root in recorded_trees():
        infos = [json.loads(f.read_text()) for f in (root / "message").glob("*/*.json")]
        parts = [json.loads(f.read_text()) for f in (root / "part").glob("*/*.json")]
        ctx = rj.load(root)
        assert ctx.report.skipped == []
        assert ctx.sessions.height == len(list((root / "message").iterdir()))
        assert ctx.df.filter(ctx.df["role"] == "assistant").height == sum(i["role"] == "assistant" for i in infos)
        assert ctx.df.filter(ctx.df["role"] == "tool").height == sum(p["type"] == "tool" for p in parts)


@pytest.mark.skipif(not (RECORDED / "current" / "exports").is_dir(), reason="no recorded exports yet")
@pytest.mark.parametrize("store", ["current/opencode.db", "v1.1/storage"])
def test_recorded_store_equals_its_exports(store):
    """OpenCode 1.18.33 (SQLite) and 1.1.65 (JSON tree), recorded with `opencode export` of each session
    (tests/data/recorded/opencode/NOTES.md): both layouts give the same rows as the exports."""
    path = RECORDED / store
    exported = RECORDED / store.split("/")[0] / "exports"
    a, b = rj.load(path), rj.load(exported)
    assert comparable(a.df).equals(comparable(b.df))
    assert a.report.issues == []
    main = a.sessions.filter(a.sessions["parent_session_id"].is_null()).row(0, named=True)
    child = a.sessions.filter(a.sessions["parent_session_id"].is_not_null()).row(0, named=True)
    assert child["parent_session_id"] == main["session_id"]
    s = summary(a, main["session_id"])
    assert s["subagents"] == [child["session_id"]] and s["compactions"] == 1
    # NOTES.md: 6 run turns, the last asking about the Redis decision; turn 2 read a missing config.py (a tool
    # error) and the first bash ran the failing test (exit 1): two failed calls.
    assert len(s["user_prompts"]) == 6 and s["user_prompts"][-1].strip() == "What did we decide about Redis, and why?"
    assert s["tool_errors"] == 2
    failed = a.df.filter((a.df["session_id"] == main["session_id"]) & (a.df["tool_status"] == "error"))
    assert sorted(failed["tool_name"].to_list()) == ["bash", "read"]
    df = a.df.filter(a.df["session_id"] == main["session_id"]).sort("seq")
    marker = df.filter(df["boundary"] == "compaction")["seq"].item()
    assert not df.filter(df["seq"] < marker)["in_context"].any()
    assert df.filter(df["boundary"] == "summary")["origin"].to_list() == ["summary"]


# --- timestamps -----------------------------------------------------------------------------------------------
def _expected_ts_us(data: dict) -> dict[str, int]:
    """Row id -> the time OpenCode wrote for it (epoch ms) in µs: messages `time.created`, tool rows their
    `state.time.start` (else the message's)."""
    out: dict[str, int] = {}
    for m in data["messages"]:
        created = m["info"]["time"]["created"]
        out.setdefault(m["info"]["id"], created * 1000)
        for p in m["parts"]:
            if p.get("type") == "tool" and p.get("callID"):
                start = ((p.get("state") or {}).get("time") or {}).get("start")
                out.setdefault(p["callID"], (start or created) * 1000)
    return out


TS_SOURCES = [*ALL, RECORDED / "current" / "opencode.db", RECORDED / "v1.1" / "storage"]


@pytest.mark.parametrize("path", TS_SOURCES, ids=lambda p: p.name.split("__")[-1])
def test_timestamps_are_the_recorded_epoch_milliseconds(path):
    """OpenCode writes epoch milliseconds; rows must land on those instants (not in 1970, as a ms value read as µs
    would) and in the session's own [started, updated] span."""
    import datetime as dt

    ctx = rj.load(path)
    df = ctx.df
    assert df.height > 0 and df["ts"].null_count() == 0
    years = set(df["ts"].dt.year().unique().to_list()) | set(ctx.sessions["started"].dt.year().to_list())
    assert years <= {2025, 2026}, years
    exports = [path] if path.suffix == ".json" else sorted((path.parent / "exports").glob("*.json"))
    assert exports
    checked = 0
    for export in exports:
        data = raw(export)
        want = _expected_ts_us(data)
        rows = df.filter(df["session_id"] == data["info"]["id"])
        for rid, ts in zip(rows["id"].to_list(), rows["ts"].to_list(), strict=True):
            if rid in want:
                got = (ts - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)
                assert got == want[rid], rid
                checked += 1
        s = ctx.sessions.filter(ctx.sessions["session_id"] == data["info"]["id"]).row(0, named=True)
        assert s["started"].timestamp() * 1000 == pytest.approx(data["info"]["time"]["created"])
        assert s["started"] <= rows["ts"].min() and rows["ts"].max() <= s["updated"]
    assert checked >= len(exports) * 3
