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
