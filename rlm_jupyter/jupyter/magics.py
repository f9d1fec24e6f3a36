"""IPython magics: %rlm_load, %rlm_sessions, %%rlm, %sub_llm (docs/notebook.md).

Loading this module imports IPython only: polars, litellm and anywidget load when a magic first needs them, so
`%load_ext rlm_jupyter` stays fast. Mistakes a user can make (a bad option, an unknown model, a missing key, no
context loaded, a path that does not exist) raise IPython's UsageError: one short line, no traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from IPython.display import display

from .controller import Controller

_VAR = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")
_LOCAL_MODELS = ("offline", "offline-sub", "script:", "replay:", "replay-sub:")


class Answer(str):
    """The answer of a %%rlm cell: a str that shows as plain text (no quotes) as the cell's result."""

    def _repr_pretty_(self, p, cycle) -> None:
        p.text(str(self))


def substitute(text: str, namespace: dict) -> str:
    """`{name}` -> str(namespace[name]); `{{` and `}}` are literal braces; an unknown name is a UsageError."""

    def one(m: re.Match) -> str:
        if m.group(0) in ("{{", "}}"):
            return m.group(0)[0]
        name = m.group(1)
        if name not in namespace:
            raise UsageError(
                f"{{{name}}} in the cell: no notebook variable named {name!r} "
                "(define it first, or write {{ and }} for literal braces)"
            )
        return str(namespace[name])

    return _VAR.sub(one, text)


@magics_class
class RlmMagics(Magics):
    """The rlm_jupyter magics. `view_factory(question, budget, controller)` builds the live view of a %%rlm run
    (default: the TraceView widget inside a Jupyter kernel, none in a plain IPython shell); tests inject one."""

    view_factory: Callable[..., Any] | None = None

    def __init__(self, shell=None, **kw):
        super().__init__(shell=shell, **kw)
        self.controller: Controller | None = None  # the controller of the running (or last) %%rlm cell
        self.view = None
        self._cell: _Cell | None = None

    # ---- %rlm_load ------------------------------------------------------------------------------------------
    @line_magic
    @magic_arguments()
    @argument(
        "paths",
        nargs="*",
        help="session files or folders (the format is sniffed; ~ and globs work); none: "
        "list the sessions this machine's agents keep, to load with --pick/--newest/--all",
    )
    @argument("--name", default="context", help="the notebook variable to store the context in (default: context)")
    @argument("--pick", nargs="+", type=int, default=None, metavar="N", help="load these rows of the list")
    @argument("--newest", type=int, default=None, metavar="N", help="load the N newest sessions found")
    @argument("--all", action="store_true", help="load every session found")
    @argument("--home", default=None, help="look for sessions under this folder instead of your home folder")
    def rlm_load(self, line):
        """Load agent session histories into a notebook variable and show what was loaded."""
        args = _parse(self.rlm_load, line, "%rlm_load")
        if not args.name.isidentifier():
            raise UsageError(f"%rlm_load: --name {args.name!r} is not a valid variable name")
        paths = _expand(args.paths) if args.paths else self._discovered(args)
        if not paths:
            return None
        from .. import load

        try:
            ctx = load(*paths)
        except (OSError, ValueError) as e:
            raise UsageError(f"%rlm_load: {e}") from None
        from .load_summary import LoadSummary, nothing_loaded

        if len(ctx.sessions) == 0:  # keep what the variable held; say why nothing loaded
            raise UsageError(nothing_loaded(paths, ctx.report, args.name, self.shell.user_ns.get(args.name)))
        self.shell.user_ns[args.name] = ctx
        prestart_worker(models=True)  # a %%rlm over this context usually follows
        display(LoadSummary(ctx, args.name))

    def _discovered(self, args) -> list[str]:
        """%rlm_load without a path: the sessions rj.discover() finds, newest first; shows them (and loads
        nothing) until --pick, --newest or --all says which."""
        from .. import discover

        df = discover(args.home).with_row_index("#")
        if df.height == 0:
            raise UsageError(f"%rlm_load: no agent sessions found under {args.home or '~'}; pass a file or folder")
        if args.all:
            return df["path"].to_list()
        if args.newest is not None:
            return df["path"].head(args.newest).to_list()
        if args.pick is not None:
            bad = [n for n in args.pick if not 0 <= n < df.height]
            if bad:
                raise UsageError(
                    f"%rlm_load: --pick {bad} is outside the {df.height} session(s) found (0..{df.height - 1})"
                )
            return [df["path"][n] for n in args.pick]
        self.shell.user_ns["_rlm_sessions"] = df
        display(df)
        print(f"{df.height} session(s) found, newest first: load with %rlm_load --pick 0 2 …, --newest N or --all")
        return []

    # ---- %rlm_sessions --------------------------------------------------------------------------------------
    @line_magic
    @magic_arguments()
    @argument("--home", default=None, help="look under this folder instead of your home folder")
    @argument("--limit", type=int, default=None, help="show only the newest N sessions")
    def rlm_sessions(self, line):
        """The agent sessions found on this machine, newest first; load one with %rlm_load PATH."""
        args = _parse(self.rlm_sessions, line, "%rlm_sessions")
        from .. import discover

        df = discover(args.home)
        where = args.home or "~"
        if df.height == 0:
            print(
                f"No agent sessions found under {where} (Claude Code, Codex CLI, OpenCode, Gemini CLI; "
                "their *_HOME / CLAUDE_CONFIG_DIR variables are honoured)."
            )
            return None
        if args.limit is not None:
            df = df.head(args.limit)
        df = df.with_row_index("#")
        self.shell.user_ns["_rlm_sessions"] = df
        print(f"{df.height} session(s) under {where}; load one with: %rlm_load {df['path'][0]}")
        return df

    # ---- %%rlm ----------------------------------------------------------------------------------------------
    @cell_magic
    @magic_arguments("%rlm")  # the help's usage line is "%" + this name: a cell magic's usage reads %%rlm
    @argument("--model", default="offline", help="root model: a litellm name (gpt-4o-mini, ollama/…) or offline")
    @argument(
        "--sub-model",
        default=None,
        help="model for sub_llm calls (default: offline-sub for offline, else the root model)",
    )
    @argument("--context", default="context", help="the notebook variable holding the Context (default: context)")
    @argument("--max-depth", type=int, default=1, help="1: rlm() in the REPL is a plain sub-call; 2: child runs")
    @argument("--max-iterations", type=int, default=20, help="root steps before the model must answer")
    @argument("--budget-usd", type=float, default=None, help="stop when the run tree has cost this many dollars")
    @argument(
        "--mode",
        choices=("rlm", "hybrid"),
        default="rlm",
        help="rlm: the REPL loop; hybrid: one packed prompt, for models that cannot write code",
    )
    @argument("--out", default=None, help="store the Run in this variable (default: _rlm)")
    @argument(
        "--trace",
        default=None,
        help="write the trace to this .rlmtrace.jsonl file (default: a new file in the runs folder)",
    )
    @argument(
        "--runs",
        default=None,
        metavar="DIR",
        help="the runs folder for this run's trace (default: "
        "$RLM_JUPYTER_RUNS, else rlm-runs/ beside the notebook, else the cache folder)",
    )
    @argument("--no-trace", action="store_true", help="write no trace file (the view and the Run keep the trace)")
    @argument("--paused", action="store_true", help="start paused: step with the view's buttons")
    @argument(
        "--export-otlp",
        default=None,
        metavar="URL",
        help="when the run ends, send its trace to this "
        "OTLP/HTTP endpoint (Phoenix: http://127.0.0.1:6006/v1/traces; docs/export.md)",
    )
    @argument(
        "--allow-model",
        action="append",
        default=[],
        metavar="MODEL",
        help="a model sub_llm(..., model=MODEL) may use besides --model and --sub-model (repeatable)",
    )
    @argument(
        "--allow-unsandboxed",
        action="store_true",
        help="run even if the only isolation here is plain rlimits (the model's code has the network)",
    )
    def rlm(self, line, cell):
        """Ask a question about the loaded context with a Recursive Language Model. The cell body is the
        question; {name} is replaced by the value of the notebook variable `name`. The answer is the cell's
        result; the Run (answer, trace, usage) goes to --out NAME or _rlm. Budgets not given default to
        rlm_jupyter.engine.budget.default_budget() (600 s, 2,000,000 tokens, $1.00, 1,000 sub-calls)."""
        args = _parse(self.rlm, line, "%%rlm")
        ns = self.shell.user_ns
        out = args.out or "_rlm"
        if not out.isidentifier():
            raise UsageError(f"%%rlm: --out {out!r} is not a valid variable name")
        from ..engine.options import check_options  # the same check as rj.rlm and the CLI
        from ..trace.writer import check_path

        try:
            check_options(
                cli=True, max_depth=args.max_depth, max_iterations=args.max_iterations, budget_usd=args.budget_usd
            )
            if args.trace:
                check_path(args.trace)
            if args.no_trace and (args.trace or args.runs):
                raise ValueError("--no-trace writes no file: drop --trace / --runs, or --no-trace")
        except ValueError as e:
            raise UsageError(f"%%rlm: {e}") from None
        question = substitute(cell or "", ns).strip()
        if not question:
            raise UsageError("%%rlm: the cell is empty: write your question in the cell body, under %%rlm")
        trace_path = None if args.no_trace else _trace_file(question, args.trace, args.runs)
        ctx = _context(ns, args.context)
        models, sub_model = _checked_models(args.model, args.sub_model)
        budget = None
        if args.budget_usd is not None:
            from ..engine.budget import Budget

            budget = Budget(usd=args.budget_usd)
        controller = self.controller = Controller(paused=args.paused)
        view = self.view = self._make_view(question, budget, controller)
        if view is not None and hasattr(view, "set_context"):
            view.set_context(ctx)  # query snippets and "open the full message" in the view
        if view is not None and trace_path is not None:
            from ..trace.runs import shown

            with contextlib.suppress(Exception):
                view.trace_path = shown(trace_path)  # said in the view's header
        if self._cell is not None and view is not None:
            self._cell.trace = False if trace_path is None else (args.runs or True)  # the same for its re-runs
        from ..engine.budget import default_budget
        from ..engine.loop import rlm

        run_budget = default_budget()  # what the user did not set has a default (said in %%rlm?)
        if args.budget_usd is not None:
            run_budget.usd = args.budget_usd

        def go():
            return rlm(
                question,
                ctx,
                model=args.model,
                sub_model=sub_model,
                max_depth=args.max_depth,
                max_iterations=args.max_iterations,
                budget=run_budget,
                mode=args.mode,
                trace_path=trace_path,
                trace=trace_path is not None,
                models=models,
                on_event=view.push if view is not None else None,
                pause=controller,
                allowed_models=args.allow_model,
                allow_unsandboxed=args.allow_unsandboxed,
            )

        run = self._wait(go, controller)
        run.context = ctx  # so rj.rerun(run, ...) needs no context= argument
        ns[out] = run
        if view is not None:
            _set_status(view, run.status)
            self._cell.finished(run, out)
            _refresh_display(view)
        if args.export_otlp:
            _export_otlp(run, ctx, args.export_otlp)
        answer = self._result(run)
        if view is not None and getattr(view, "_rlm_display", None) is not None and answer is not None:
            # In a kernel the answer is a display of its own, so a re-run started from the view can put its answer
            # (and the variable it went to) in its place: the saved notebook then shows what the view shows.
            self._cell.answer = display(answer, display_id=True)
            return None
        return answer

    # ---- %sub_llm -------------------------------------------------------------------------------------------
    @line_magic
    @magic_arguments()
    @argument("--model", default="offline", help="a litellm model name, or offline (the extractive demo model)")
    @argument("prompt", nargs="+", help="the prompt ({name} is replaced by a notebook variable)")
    def sub_llm(self, line):
        """One sub-model call: prints its answer, tokens, cost and latency (the Completion goes to _sub_llm)."""
        # The prompt is taken verbatim (an apostrophe must not be read as a shell quote); IPython has already put
        # notebook values in for {name} on the line.
        m = re.match(r"\s*(?:--model(?:\s+|=)(\S+)\s*)?(.*)$", line, re.S)
        model, prompt = m.group(1) or "offline", m.group(2).strip()
        if prompt.startswith("-"):
            _parse(self.sub_llm, line, "%sub_llm")  # an unknown option: argparse's message
        if not prompt:
            raise UsageError("%sub_llm: give a prompt after the options, e.g. %sub_llm --model offline Summarise …")
        args = argparse.Namespace(model=model, prompt=prompt)
        models, _ = _checked_models(args.model, None, role="sub")
        from ..engine.models import ModelError, sub_llm

        try:
            c = sub_llm(prompt, model=args.model, models=models)
        except ModelError as e:
            raise UsageError(f"%sub_llm: {e}") from None
        self.shell.user_ns["_sub_llm"] = c
        estimated = " (estimated: ~4 characters a token)" if args.model.startswith(_LOCAL_MODELS) else ""
        cost = "unknown" if c.cost_usd is None else f"${c.cost_usd:.6f}"
        print(c.text)
        print(
            f"-- {c.model}: {c.tokens_in:,} tokens in, {c.tokens_out:,} out{estimated}; cost {cost}; "
            f"{c.latency_s:.2f} s"
        )

    # ---- %rlm_xray (implemented in rlm_jupyter/window/magic.py) ----------------------------------------------------
    @line_magic
    def rlm_xray(self, line):
        """%rlm_xray [--session ID] [--context NAME] [--limit N] [--no-plot]: a session's context X-ray."""
        from ..window.magic import run

        return run(self.shell, line)

    # ---- running ----------------------------------------------------------------------------------------------
    def _make_view(self, question: str, budget, controller: Controller):
        factory = type(self).view_factory or _default_view
        view = factory(question=question, budget=budget, controller=controller)
        if view is None:
            return None
        self._cell = _Cell(self, view, controller)
        controller.on_state = lambda state: _set_status(view, state) if state != "stopping" else None
        view.on_action(self._cell.on_action)
        _set_status(view, "running")
        return view

    def _wait(self, fn: Callable[[], Any], controller: Controller):
        """Run `fn` in a thread; the cell waits, pumping widget messages inside a kernel so the view's buttons
        work. Ctrl-C asks the run to stop at its next step."""
        box: dict = {}

        def target():
            try:
                box["run"] = fn()
            except BaseException as e:  # re-raised in the cell's thread
                box["error"] = e

        t = threading.Thread(target=target, name="rlm-run", daemon=True)
        t.start()
        try:
            self._pump(t)
        except KeyboardInterrupt:
            controller.stop()
            print("Stopping at the next step boundary…")
            t.join()
        if "error" in box:
            e = box["error"]
            from ..engine.models import ModelError

            if isinstance(e, (ModelError, ValueError, TypeError)):
                raise UsageError(f"%%rlm: {e}") from None
            raise e
        return box["run"]

    def _pump(self, t: threading.Thread) -> None:
        if getattr(self.shell, "kernel", None) is not None:
            try:
                from jupyter_ui_poll import ui_events
            except ImportError:  # no pump: the run still works, the buttons act after the cell ends
                ui_events = None
            if ui_events is not None:
                with ui_events() as poll:
                    while t.is_alive():
                        poll(20)
                        t.join(0.02)
                return
        while t.is_alive():
            t.join(0.1)

    def _result(self, run) -> Answer | None:
        if run.status == "error":
            errors = [e.get("message") for e in run.trace.of_type("error")]
            print(f"The run failed: {errors[-1] if errors else 'see the trace'}")
        elif run.status != "done":
            why = f" ({run.stopped_by})" if run.stopped_by else ""
            print(f"Run ended: {run.status}{why}; the answer below is the best partial answer.")
        return Answer(run.answer) if run.answer is not None else None


# ---- helpers ----------------------------------------------------------------------------------------------------


def prestart_worker(models: bool = False) -> None:
    """Start the REPL worker's template (engine/forkserver.py) in a background thread and return at once: the bubblewrap
    probe, the sandbox and the worker's imports happen while the user reads or types, not in the first %%rlm.
    `models`: also import litellm (~3 s of CPU, every model call goes through it; after %rlm_load, not at
    %load_ext, so the kernel stays idle until the user loads something). Off with RLM_JUPYTER_PRESTART=0."""
    import os

    if os.environ.get("RLM_JUPYTER_PRESTART", "1") == "0":
        return

    def go():
        from ..engine import forkserver

        forkserver.prestart()
        if models:
            with contextlib.suppress(Exception):  # a broken install shows at the first model call, with its error
                from ..engine.models import load_litellm

                load_litellm()

    threading.Thread(target=go, name="rlm-prestart", daemon=True).start()


def _default_view(*, question: str, budget, controller: Controller):
    """The TraceView widget inside a Jupyter kernel, displayed; no view in a plain IPython shell (no front-end)."""
    from IPython import get_ipython

    shell = get_ipython()
    if getattr(shell, "kernel", None) is None:
        return None
    try:
        from .widget import TraceView
    except ImportError as e:
        print(f"(live view unavailable: {e}; the run goes on without it)")
        return None
    view = TraceView(title=question, budget=budget)
    view._rlm_display = display(view, display_id=True)  # updated when the run ends (_refresh_display)
    return view


class _Cell:
    """The view's actions for one %%rlm cell: pause/step/continue/stop go to the controller while the run goes;
    once it has ended, "rerun" re-runs it from a step with the edited code in a background thread, pushing the
    new run's events to the same view (its run event carries `rerun_of`: which run, which step). The new Run goes
    to `<out>_rerun` (`<out>_rerun2`, … for later ones), the view's header says so, the cell's answer display shows
    the new answer, and the cell's saved output is re-sent: it then holds both runs, linked."""

    def __init__(self, magics: RlmMagics, view, controller: Controller):
        self.magics = magics
        self.view = view
        self.controller = controller
        self.run = None
        self.out = "_rlm"
        self.rerun_thread: threading.Thread | None = None
        self.answer = None  # the DisplayHandle of the cell's answer (in a kernel)
        self.trace: bool | str = True  # the re-runs' trace: as the cell's (False: --no-trace, a folder: --runs)
        self.reruns = 0

    def finished(self, run, out: str) -> None:
        self.run, self.out = run, out

    def on_action(self, action: dict) -> None:
        if (action or {}).get("action") != "rerun":
            self.controller.handle(action)
            return
        if self.run is None or (self.rerun_thread is not None and self.rerun_thread.is_alive()):
            return  # a re-run needs a finished run, one at a time
        self.rerun_thread = threading.Thread(target=self._rerun, args=(dict(action),), name="rlm-rerun", daemon=True)
        self.rerun_thread.start()

    def _rerun(self, action: dict) -> None:
        from ..engine.rerun import rerun

        _set_status(self.view, "running")
        step = int(action.get("step", 0))
        try:
            # the view sends the step's trace index (0-based); rerun() counts steps from 1, as the view shows them
            new = rerun(
                self.run,
                step=step + 1,
                code=action.get("code"),
                response=action.get("response"),
                on_event=self.view.push,
                trace=self.trace,
            )
        except Exception as e:
            _set_status(self.view, "error")
            print(f"re-run failed: {e}")
            return
        # the replayed / edited marks are added to the trace when the re-run ends: show them too
        root = new.trace.root
        for e in new.trace.events:
            if e is root or e.get("replayed") or e.get("edited"):
                self.view.push(e)
        self.reruns += 1
        name = f"{self.out}_rerun" + (str(self.reruns) if self.reruns > 1 else "")
        self.magics.shell.user_ns[name] = new
        edited = root.get("rerun_of", {}).get("edited") if root else None
        note = (
            f"re-run from step {step + 1} of {self.out}"
            + (f" ({edited} edited)" if edited else "")
            + f": its Run is in `{name}`, the first run stays in `{self.out}`"
        )
        from ..trace.runs import shown

        with contextlib.suppress(Exception):
            self.view.note = note
            self.view.trace_path = shown(new.trace_path)
        _set_status(self.view, new.status)
        _refresh_display(self.view)  # the saved output: both runs (the view holds both), the new one on top
        if self.answer is not None and new.answer is not None:
            with contextlib.suppress(Exception):
                self.answer.update(Answer(f"{new.answer}\n\n({note})"))


def _trace_file(question: str, trace: str | None, runs: str | None) -> Path | None:
    """The file this cell's run writes its trace to: --trace FILE, else a new file in the runs folder (--runs DIR or
    the default, rlm_jupyter/trace/runs.py); None when traces are off (RLM_JUPYTER_RUNS=off) or the folder cannot
    be made (said in one line: the run goes on without a file)."""
    if trace:
        return Path(trace).expanduser()
    from ..trace.runs import new_trace_path

    try:
        return new_trace_path(question, runs)
    except OSError as e:
        print(
            f"(no trace file: cannot make the runs folder {e.filename or runs}: {e.strerror or e}; set "
            "RLM_JUPYTER_RUNS or --runs DIR to a writable folder, or --no-trace)"
        )
        return None


def _refresh_display(view) -> None:
    """Re-send the view's display once the run has ended, so the notebook file holds the whole trace in the
    static `application/vnd.rlm-jupyter.trace+json` / HTML / text outputs (shown without a kernel), not the
    empty snapshot taken when the cell started. The live front-end re-renders the same widget model."""
    handle = getattr(view, "_rlm_display", None)
    if handle is not None:
        with contextlib.suppress(Exception):  # a broken display must not break the cell
            handle.update(view)


def _set_status(view, status: str) -> None:
    from ..trace.events import view_status

    status = view_status(status)
    with contextlib.suppress(Exception):  # a broken view must not break the cell
        view.set_status(status)


def _export_otlp(run, ctx, endpoint: str) -> None:
    """Send the finished run's spans; a failure is one printed line (the run and its answer are kept)."""
    from ..interop import export

    try:
        r = export(run, to="otlp", endpoint=endpoint, context=ctx)
    except (ImportError, RuntimeError, ValueError) as e:
        print(f"%%rlm --export-otlp: {e}")
        return
    print(f"sent {r['spans']} spans to {endpoint}")


def _parse(fn, line: str, name: str):
    """magic_arguments parsing; a bad option says where the options are listed."""
    try:
        return parse_argstring(fn, line)
    except UsageError as e:
        raise UsageError(f"{name}: {e} (options: {name}?)") from None


def _expand(paths: list[str]) -> list[str]:
    import glob

    out: list[str] = []
    for p in paths:
        p = str(Path(p.strip("'\"")).expanduser())
        hits = sorted(glob.glob(p)) if any(ch in p for ch in "*?[") else [p]
        if not hits:
            raise UsageError(f"%rlm_load: nothing matches {p}")
        for h in hits:
            if not Path(h).exists():
                raise UsageError(f"%rlm_load: no such file or folder: {h}")
        out.extend(hits)
    return out


def _context(ns: dict, name: str):
    ctx = ns.get(name)
    if ctx is None:
        raise UsageError(
            f"no context loaded: run %rlm_load PATH first (or pass --context NAME); there is no variable {name!r}"
        )
    if not (hasattr(ctx, "regex_search") and hasattr(ctx, "df")):
        raise UsageError(
            f"--context {name}: {name!r} is a {type(ctx).__name__}, not a Context from %rlm_load or rj.load(...)"
        )
    if len(ctx) == 0:
        raise UsageError(f"the context {name!r} has no messages: load session files with %rlm_load PATH")
    return ctx


def _checked_models(model: str, sub_model: str | None, role: str = "root"):
    """A Models client with both models checked up front (unknown model, missing key), as UsageErrors."""
    from ..engine.models import ModelError, Models

    models = Models()
    if sub_model is None and role == "root":
        sub_model = "offline-sub" if model == "offline" else model
    try:
        models.check(model, role=role)
        if sub_model is not None:
            models.check(sub_model, role="sub")
    except ModelError as e:
        raise UsageError(str(e)) from None
    return models, sub_model
