"""rj.batch on a real local Ray runtime (ray.init(num_cpus=2), no dashboard): the same rows as the threads executor,
rows stream back run by run, a run whose Ray actor process is killed is run again, and model keys reach the actors
without entering rows or traces.
Skips when Ray is not installed (the optional `ray` extra)."""

from __future__ import annotations

import os
import tempfile
import threading
import time
from pathlib import Path

import pytest

import rlm_jupyter as rj
from rlm_jupyter.testing import ScriptedServer
from rlm_jupyter.testing.batch_model import answerer, ctrl_c_after

ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'rlm-jupyter[ray]' to run these tests")
psutil = pytest.importorskip("psutil")

CLAUDE = "claude-code/codemie-session-9eda1058.jsonl"
MODEL = "openai/scripted-model"
SECRET = "sk-test-ray-SECRET-9f8e7d6c5b4a"
COMPARED = (
    "question",
    "session_id",
    "model",
    "answer",
    "status",
    "stopped_by",
    "steps",
    "sub_calls",
    "tokens_in",
    "tokens_out",
    "error",
)


@pytest.fixture(scope="module")
def ray_runtime():
    # Started before the key is set: the actors can only get it through the runtime environment.
    saved = os.environ.pop("OPENAI_API_KEY", None)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()
    if saved is not None:
        os.environ["OPENAI_API_KEY"] = saved


@pytest.fixture()
def server(monkeypatch, ray_runtime):
    with ScriptedServer(answerer) as srv:
        monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", SECRET)
        yield srv


def questions(n: int) -> list[str]:
    return [f"q-{i}: what happened?" for i in range(n)]


def test_ray_and_threads_give_the_same_rows_and_keys_stay_out(tmp_path, samples, server):
    ctx = rj.load(samples / "claude-code")
    qs = questions(2)
    kw = dict(context=ctx, model=MODEL, per="session", concurrency=4, display=False)
    threads = rj.batch(qs, out=tmp_path / "threads", executor="threads", **kw).df
    on_ray = rj.batch(qs, out=tmp_path / "ray", executor="ray", **kw).df
    assert on_ray.height == threads.height == 2 * ctx.sessions.height
    assert on_ray["executor"].unique().to_list() == ["ray"]
    assert on_ray.select(COMPARED).equals(threads.select(COMPARED))
    assert on_ray["status"].to_list() == ["done"] * on_ray.height
    # the key was needed (OPENAI_API_KEY is checked before each call) and came through the runtime env only
    for path in (tmp_path / "ray").rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    for path in on_ray["trace"]:
        assert rj.Trace.load(path).of_type("run_end")[-1]["status"] == "done"


@pytest.fixture()
def actor_options(monkeypatch):
    """The options each batch made its actors with (recorded in the driver; the actors are real)."""
    made: list[dict] = []
    real = ray.actor.ActorClass.options

    def options(self, **kw):
        made.append(kw)
        return real(self, **kw)

    monkeypatch.setattr(ray.actor.ActorClass, "options", options)
    return made


def test_values_the_actors_already_hold_are_not_sent_again(tmp_path, ctx, monkeypatch, ray_runtime, actor_options):
    # HOME was in the driver's environment when it started the local runtime: the actors hold the same value, so no
    # runtime environment (and no fresh Ray worker process) is needed for it
    kw = dict(context=ctx, model="offline", executor="ray", concurrency=2, display=False)
    before = _context_folders()
    res = rj.batch(questions(2), out=tmp_path / "held", env=["HOME"], **kw)
    assert res.df["status"].to_list() == ["done"] * 2
    assert [o.get("runtime_env") for o in actor_options] == [None]
    # a value set after the runtime started is not in the actors' environment: they are made again with it
    monkeypatch.setenv("RLMJ_TEST_ONLY_IN_THE_DRIVER", "set-after-ray-init")
    res = rj.batch(questions(2), out=tmp_path / "sent", env=["HOME", "RLMJ_TEST_ONLY_IN_THE_DRIVER"], **kw)
    assert res.df["status"].to_list() == ["done"] * 2
    sent = {"env_vars": {"HOME": os.environ["HOME"], "RLMJ_TEST_ONLY_IN_THE_DRIVER": "set-after-ray-init"}}
    assert [o.get("runtime_env") for o in actor_options] == [None, None, sent]
    assert _context_folders() <= before  # the actors' copies of the context are gone with them


def _context_folders() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("rlm*-ctx-*")}


def test_a_run_whose_actor_is_killed_is_run_again(tmp_path, ctx, monkeypatch, ray_runtime):
    # The first answer for q-0 is slow; while it waits, the Ray actor process running that run is killed.
    slow = threading.Event()

    def slow_first(request):
        entry = answerer(request)
        if "q-0" in str(request["body"].get("messages")) and not slow.is_set():
            slow.set()
            entry = {**entry, "delay_s": 20}
        return entry

    killed = []

    def killer():
        slow.wait(60)
        time.sleep(0.3)
        for p in psutil.process_iter(["pid", "cmdline"]):
            cmd = " ".join(p.info["cmdline"] or [])
            if cmd.startswith("ray::RlmjBatchRunner"):
                p.kill()
                killed.append(p.info["pid"])

    with ScriptedServer(slow_first) as srv:
        monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", SECRET)
        t = threading.Thread(target=killer, daemon=True)
        t.start()
        res = rj.batch(questions(1), context=ctx, model=MODEL, out=tmp_path / "b", executor="ray", display=False)
        t.join(5)
    assert killed, "no Ray actor running the run was found to kill"
    assert res.df["status"].to_list() == ["done"] and res.df["answer"].to_list() == ["answer q-0"]
    first_calls = [r for r in srv.requests if len(r["body"]["messages"]) == 2]
    assert len(first_calls) == 2  # the killed attempt's first call, then the retry's


def test_rows_stream_back_as_each_run_ends(tmp_path, ctx, monkeypatch, ray_runtime):
    # q-0's model calls take 1 s each, q-1's none: q-1's row reaches the driver (on_row) while q-0 still runs,
    # though both run on the same actor.
    def slow_q0(request):
        entry = answerer(request)
        return {**entry, "delay_s": 1} if "q-0" in str(request["body"].get("messages")) else entry

    seen: list[tuple[str, float]] = []
    with ScriptedServer(slow_q0) as srv:
        monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", SECRET)
        res = rj.batch(
            questions(2),
            context=ctx,
            model=MODEL,
            concurrency=2,
            group_size=2,
            out=tmp_path / "b",
            executor="ray",
            display=False,
            on_row=lambda row, _: seen.append((row["question"], time.monotonic())),
        )
    assert res.df["status"].to_list() == ["done", "done"]
    assert [q[:3] for q, _ in seen] == ["q-1", "q-0"]
    assert seen[1][1] - seen[0][1] > 1.0, "q-1's row waited for q-0's run"


def test_ctrl_c_on_ray_keeps_finished_rows_and_the_rest_resumes(tmp_path, ctx, server):
    out = tmp_path / "b"
    kw = dict(context=ctx, model=MODEL, concurrency=2, out=out, executor="ray", display=False)
    res = rj.batch(questions(8), on_row=ctrl_c_after(2), **kw)
    assert res.stopped and res.stopped.startswith("interrupted")
    assert 2 <= res.df.height < 8
    for path in res.df["trace"]:
        assert rj.Trace.load(path).of_type("run")  # every recorded row has its trace on disk
    assert not (out / "STOP").exists()
    assert _live_runners() == 0  # no actor outlives its batch
    res2 = rj.batch(questions(8), **kw)
    assert res2.df.height == 8 and res2.df["status"].to_list() == ["done"] * 8


def _live_runners() -> int:
    deadline = time.monotonic() + 10  # ray.kill is asynchronous
    while True:
        n = sum(
            1
            for p in psutil.process_iter(["cmdline"])
            if " ".join(p.info["cmdline"] or []).startswith("ray::RlmjBatchRunner")
        )
        if n == 0 or time.monotonic() > deadline:
            return n
        time.sleep(0.2)
