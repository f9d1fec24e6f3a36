"""A progress bar for long loads and index builds: tqdm's notebook bar in Jupyter, text on a terminal, nothing for
work that ends within a second (tqdm's `delay`), and nothing at all when tqdm is not installed."""

from __future__ import annotations

import time
from typing import Any

DELAY_S = 1.0


class Progress:
    """Counts bytes (the bar; or items, with `unit`), files and sessions (the postfix). Use as a context manager.
    tqdm is imported and the bar made only once the work has taken DELAY_S (at an update): a cached reopen or a
    small index build never pays tqdm's import (~50 ms in a fresh kernel) and shows nothing."""

    def __init__(
        self,
        total_bytes: int,
        total_files: int,
        desc: str = "loading",
        enabled: bool = True,
        unit: str = "B",
        postfix: bool = True,
    ) -> None:
        self.total = total_bytes
        self.total_files = total_files
        self.files = 0
        self.sessions = 0
        self.done = 0
        self.desc, self.unit, self.postfix = desc, unit, postfix
        self._enabled = bool(enabled and total_files)
        self._t0 = time.monotonic()
        self._bar: Any = None

    def _make_bar(self) -> None:
        self._enabled = False  # one attempt
        try:
            from tqdm.auto import tqdm
        except ImportError:  # tqdm is a core dependency; a stripped install just shows nothing
            return
        scaled = self.unit == "B"
        self._bar = tqdm(
            total=self.total,
            initial=self.done,
            desc=self.desc,
            unit=self.unit,
            unit_scale=scaled,
            unit_divisor=1024 if scaled else 1000,
            leave=False,
            dynamic_ncols=True,
        )

    def update(self, nbytes: int, files: int = 1, sessions: int = 0) -> None:
        self.files += files
        self.sessions += sessions
        self.done += nbytes
        if self._bar is None:
            if not self._enabled or time.monotonic() - self._t0 < DELAY_S:
                return
            self._make_bar()  # starts at what is done already
            if self._bar is None:
                return
            nbytes = 0
        if self.postfix:
            self._bar.set_postfix_str(
                f"{self.files:,}/{self.total_files:,} files, {self.sessions:,} sessions", refresh=False
            )
        self._bar.update(nbytes)
        if self.files >= self.total_files:
            self._bar.refresh()  # the last numbers, even when the refresh interval has not passed

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
