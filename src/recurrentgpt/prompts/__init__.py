"""Prompt templates are package data: ``prompts/<language>/<name>.j2``, rendered with Jinja2.

StrictUndefined makes a missing variable an error instead of a silently empty prompt.
"""

from __future__ import annotations

import json
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..structured import Field

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


@lru_cache(maxsize=None)
def _labels(language: str) -> dict[str, str]:
    """A language's section labels for the labelled-text answer format (``labels.json``: field -> label)."""
    path = HERE / language / "labels.json"
    return json.loads(path.read_text("utf-8")) if path.is_file() else {}


def localize(language: str, fields: list["Field"]) -> list["Field"]:
    """The fields with their labels in the prompt's language (what a model answering in text mode writes)."""
    labels = _labels(language)
    out = []
    for f in fields:
        label = labels.get(f.about or f.name, labels.get(f.name))
        number = f.label.rpartition(" ")[2] if f.label[-1:].isdigit() else ""  # "Paragraph 2" -> "段落 2"
        out.append(replace(f, label=f"{label} {number}".strip()) if label else f)
    return out
