"""A user's own premises for the evaluation (``eval --premises FILE``).

Two forms, told apart by the first line that is not blank or a ``#`` comment:

- plain text: one premise per line, each written in the genre "fiction";
- JSON Lines: one object per line, ``{"genre": "horror", "premise": "…"}`` (``genre`` optional, "fiction").

Every premise is one opening per ``--stories``; a file is read whole and refused with the line that is wrong.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import InputError
from ..importing import read_file
from ..story import MAX_TEXT_CHARS

MAX_BYTES = 1_000_000  # thousands of premises: a larger file is a mistake (a book, a data dump)
DEFAULT_GENRE = "fiction"


def read_premises(path: Path) -> list[tuple[str, str]]:
    """``[(genre, premise), …]`` from ``path``, in order."""
    raw = read_file(str(path), "the premises file", MAX_BYTES)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"the premises file {path} is not UTF-8 text") from None
    lines = [(i, line.strip()) for i, line in enumerate(text.splitlines(), 1)]
    lines = [(i, line) for i, line in lines if line and not line.startswith("#")]
    if not lines:
        raise InputError(f"the premises file {path} holds no premise (one a line, or JSON Lines with "
                         "\"genre\" and \"premise\")")
    jsonl = lines[0][1].startswith("{")
    out = []
    for i, line in lines:
        genre, premise = (_json_line(path, i, line) if jsonl else (DEFAULT_GENRE, line))
        if len(premise) > MAX_TEXT_CHARS:
            raise InputError(f"{path} line {i}: the premise is {len(premise):,} characters; the limit is "
                             f"{MAX_TEXT_CHARS:,}")
        out.append((genre, premise))
    return out


def _json_line(path: Path, i: int, line: str) -> tuple[str, str]:
    try:
        data = json.loads(line)
    except json.JSONDecodeError as e:
        raise InputError(f"{path} line {i}: not JSON ({e.msg}); the file is JSON Lines because its first "
                         "premise is") from None
    if not isinstance(data, dict):
        raise InputError(f"{path} line {i}: a JSON object with \"premise\" (and \"genre\") was expected")
    premise, genre = data.get("premise"), data.get("genre", DEFAULT_GENRE)
    if not isinstance(premise, str) or not premise.strip():
        raise InputError(f"{path} line {i}: \"premise\" must be non-empty text")
    if not isinstance(genre, str) or not genre.strip() or len(genre) > 100:
        raise InputError(f"{path} line {i}: \"genre\" must be a short text")
    unknown = set(data) - {"genre", "premise"}
    if unknown:
        raise InputError(f"{path} line {i}: unknown field(s) {', '.join(sorted(unknown))} (use genre, premise)")
    return genre.strip(), premise.strip()
