"""Which of the embedded engine's KV caches serves a call.

A llama.cpp context keeps the tokens of its last call in its KV cache, and a call that starts with them
evaluates only the rest. A writer alternates between conversations that one cache cannot both keep: after a step,
the next step's prompt is read ahead while the writer chooses a plan (``Loom.prefill``), and "regenerate" asks
the step's own prompt again. With a few contexts (slots), each call goes to the slot that already holds the
longest start of it, so both stay cached.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field
from typing import Any, Callable

_CLOCK = itertools.count(1)


@dataclass
class Slot:
    llm: Any  # a llama_cpp.Llama: one context, one KV cache
    holds: str = ""  # what its KV cache holds, as text (``as_text``): the last call's messages and answer
    used: int = field(default_factory=lambda: next(_CLOCK))  # when it last served

    def serve(self, text: str) -> None:
        """Record that the slot now holds ``text`` (a call's messages, then its answer once it is written)."""
        self.holds, self.used = text, next(_CLOCK)


class Slots:
    """Up to ``size`` slots, made by ``make()`` when first needed (each holds a KV cache: 346 MiB for the
    bundled model at 8,192 tokens)."""

    def __init__(self, make: Callable[[], Any], size: int):
        self.make, self.size = make, max(1, size)
        self.slots: list[Slot] = []

    def pick(self, text: str) -> Slot:
        """The slot holding the longest start of ``text`` (ties: the least recently used). While there is room, a
        call that would throw away more of that slot's cache than it reuses gets a new slot instead: reading the
        next step ahead keeps the last step cached for a regeneration."""
        best = min(self.slots, key=lambda s: (-_shared(s.holds, text), s.used), default=None)
        if best is None or (len(self.slots) < self.size and len(best.holds) - _shared(best.holds, text)
                            > _shared(best.holds, text)):
            best = Slot(self.make())
            self.slots.append(best)
        return best

    @property
    def first(self) -> Any:
        """The first slot's engine, made if there is none: what tokenizing and the file's name need."""
        if not self.slots:
            self.slots.append(Slot(self.make()))
        return self.slots[0].llm


def as_text(messages: list[dict[str, str]], answer: str = "") -> str:
    """A conversation as one text whose starts compare as the KV cache's tokens do (a shared start of the text is a
    shared start of the tokens, but for a token or two at its end): each message closed as the chat template closes
    it, then the answer being written, not closed yet."""
    text = "".join(f"{m['role']}\x01{m['content']}\x02" for m in messages)
    return text + f"assistant\x01{answer}" if answer else text


def _shared(a: str, b: str) -> int:
    """The length of the longest common start of ``a`` and ``b``."""
    return len(os.path.commonprefix([a, b]))
