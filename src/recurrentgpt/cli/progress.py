"""Progress for long waits (tqdm: a bar with rate and ETA), on stderr and only when it is a terminal:
piped or logged runs stay quiet."""

from __future__ import annotations

import sys
from typing import Any


def is_terminal() -> bool:
    return sys.stderr.isatty()


def meter(done: int, total: int, elapsed: float, unit: str) -> str:
    """One line, for runs that also stream text to stdout (a live bar would be overwritten)."""
    from tqdm import tqdm

    return tqdm.format_meter(done, total, elapsed, unit=unit, ncols=90)


def bar(total: int, unit: str, desc: str = "") -> Any:
    """A live bar; a no-op object when stderr is not a terminal."""
    from tqdm import tqdm

    return tqdm(total=total, unit=unit, desc=desc or None, file=sys.stderr, disable=not is_terminal(),
                dynamic_ncols=True, leave=True)


class LazyBar:
    """An ``on_progress(done, total)`` callback that opens its bar at the first report (the total is known
    only then); ``close()`` it in a ``finally``."""

    def __init__(self, unit: str, desc: str):
        self.unit, self.desc = unit, desc
        self.bar: Any = None

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            self.bar = bar(total, self.unit, self.desc)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
