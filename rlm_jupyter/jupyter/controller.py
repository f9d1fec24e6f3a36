"""Pause, step, continue and stop a running `rlm(...)` from another thread (a widget button, a notebook cell).

The engine calls `controller.before_step(run_id, step_index)` before every root-model call (child runs included)
and gets "go" or "stop"; while paused the call blocks. No Jupyter imports here: the controller works the same from
plain threads.

    c = Controller(paused=True)
    t = threading.Thread(target=lambda: rj.rlm(q, ctx, pause=c)); t.start()
    c.wait_paused(); c.step()      # one root step, then paused again
    c.resume()                     # run to the end (alias: continue_())
    c.stop()                       # the next step boundary ends the run: status "interrupted", trace kept

A stop takes effect at the next step boundary (the code of the current step is not killed).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable

GO = "go"
STOP = "stop"


class Controller:
    """Thread-safe pause/step/continue/stop for a run. `on_state(state)` is called with "paused", "running" or
    "stopping" when the run blocks, goes on, or is told to stop (e.g. to update a view's status)."""

    def __init__(self, *, paused: bool = False, on_state: Callable[[str], None] | None = None):
        self._cond = threading.Condition(threading.RLock())  # on_state may call back in
        self._paused = paused
        self._credits = 0  # steps allowed while paused (step() adds one)
        self._stopped = False
        self.on_state = on_state
        self.waiting_at: tuple[str, int] | None = None  # (run_id, step_index) while blocked
        self.steps_seen = 0

    # -- what the engine calls -------------------------------------------------------------------------------
    def before_step(self, run_id: str, step_index: int) -> str:
        """Block while paused (unless a step() credit is available); "stop" once stop() was called."""
        with self._cond:
            if self._paused and not self._stopped and self._credits == 0:
                self.waiting_at = (run_id, step_index)
                self._cond.notify_all()
                self._emit("paused")
                while self._paused and not self._stopped and self._credits == 0:
                    self._cond.wait()
                self.waiting_at = None
                self._cond.notify_all()
                if not self._stopped:
                    self._emit("running")
            if self._stopped:
                return STOP
            if self._paused and self._credits:
                self._credits -= 1
            self.steps_seen += 1
            return GO

    # -- what the user calls ---------------------------------------------------------------------------------
    def pause(self) -> None:
        """Block before the next root step."""
        with self._cond:
            self._paused = True
            self._credits = 0

    def step(self) -> None:
        """Let exactly one more root step through, then stay paused (pauses a running run after its next step)."""
        with self._cond:
            self._paused = True
            self._credits += 1
            self.waiting_at = None  # so wait_paused() waits for the *next* pause
            self._cond.notify_all()

    def resume(self) -> None:
        """Run on without pausing."""
        with self._cond:
            self._paused = False
            self._credits = 0
            self.waiting_at = None
            self._cond.notify_all()

    continue_ = resume  # "continue" is a Python keyword

    def stop(self) -> None:
        """End the run at the next step boundary (status "interrupted"); wakes a paused run."""
        with self._cond:
            if not self._stopped:
                self._stopped = True
                self._emit("stopping")
            self._cond.notify_all()

    def handle(self, action: dict) -> bool:
        """Apply a front-end action ({"action": "pause" | "step" | "continue" | "stop"}); False if not ours."""
        fn = {
            "pause": self.pause,
            "step": self.step,
            "continue": self.resume,
            "resume": self.resume,
            "stop": self.stop,
        }.get((action or {}).get("action"))
        if fn is None:
            return False
        fn()
        return True

    # -- state ------------------------------------------------------------------------------------------------
    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def stopped(self) -> bool:
        return self._stopped

    def wait_paused(self, timeout: float | None = None) -> tuple[str, int] | None:
        """Wait until the run is blocked before a step; (run_id, step) with the step about to run counted from 1,
        as the view numbers steps ("#1"), or None on timeout. (`waiting_at` holds the engine's 0-based index.)"""
        with self._cond:
            self._cond.wait_for(lambda: self.waiting_at is not None, timeout)
            if self.waiting_at is None:
                return None
            run_id, index = self.waiting_at
            return run_id, index + 1

    def _emit(self, state: str) -> None:
        if self.on_state is None:
            return
        with contextlib.suppress(Exception):  # a broken view must not wedge the run
            self.on_state(state)

    def __repr__(self) -> str:
        state = "stopped" if self._stopped else "paused" if self._paused else "running"
        return f"<Controller {state}, {self.steps_seen} steps let through>"
