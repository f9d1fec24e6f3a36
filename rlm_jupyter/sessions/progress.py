"""A progress bar for long loads and index builds: tqdm's notebook bar in Jupyter, text on a terminal, nothing for
work that ends within a second (tqdm's `delay`), and nothing at all when tqdm is not installed."""

from __future__ import annotations

import time
from typing import Any

DELAY_S = 1.0


class Progress:
    """Counts bytes (the bar), files and sessions (the postfix). Use as a context manager."""

    def __init__(self, total_bytes: int, total_files: int, desc: str = "loading", enabled: bool = True) -> None:
        self.total_files = total_files
        self.files = 0
        self.sessions = 0
        self._bar: Any = None
        if enabled and total_files:
            try:
                from tqdm.auto import tqdm
            except ImportError:  # tqdm is a core dependency; a stripped install just shows nothing
                return
            self._bar = tqdm(total=total_bytes, desc=desc, unit="B", unit_scale=True, unit_divisor=1024,
                             delay=DELAY_S, leave=False, dynamic_ncols=True)

    def update(self, nbytes: int, files: int = 1, sessions: int = 0) -> None:
        self.files += files
        self.sessions += sessions
        if self._bar is not None:
            self._bar.set_postfix_str(f"{self.files:,}/{self.total_files:,} files, {self.sessions:,} sessions",
                                      refresh=False)
            self._bar.update(nbytes)
            bar = self._bar
            if self.files >= self.total_files and time.time() >= bar.start_t + bar.delay:
                bar.refresh()  # the last numbers, even when the refresh interval has not passed (not before delay)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
