"""Prompt templates are package data: ``prompts/<language>/<name>.j2``, rendered with Jinja2.

StrictUndefined makes a missing variable an error instead of a silently empty prompt.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from ..errors import ConfigError

HERE = Path(__file__).parent


def languages() -> list[str]:
    return sorted(p.name for p in HERE.iterdir() if p.is_dir() and not p.name.startswith("_"))


@lru_cache(maxsize=None)
def _environment(language: str):
    import jinja2

    folder = HERE / language
    if not folder.is_dir():
        raise ConfigError(f"no prompts for language '{language}' (have: {', '.join(languages())})")
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(folder)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        autoescape=False,
    )


def render(language: str, name: str, **variables: Any) -> str:
    template = _environment(language).get_template(f"{name}.j2")
    return template.render(**variables).strip() + "\n"
