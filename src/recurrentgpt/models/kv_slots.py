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
CONTINUES = 0.8  # a call sharing this much of its text with a slot's cache is that conversation's (its next turn)


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
        """The slot holding the longest start of ``text`` (ties: the least recently used), except that a call which
        would throw away more of the latest conversation's cache than it reuses, without being that conversation's
        call again (sharing ``CONTINUES`` of its own text), goes elsewhere: to a new slot while there is room, else
        the least recently used one. So the read ahead keeps the step just written cached for a regeneration, and
        the regeneration, the step's second call and the step after the read ahead each find their cache."""
        if not self.slots:
            return self._new()
        shared = {id(s): _shared(s.holds, text) for s in self.slots}
        best = max(self.slots, key=lambda s: (shared[id(s)], -s.used))
        latest = max(self.slots, key=lambda s: s.used)
        n = shared[id(best)]
        if best is latest and len(best.holds) - n > n and n < CONTINUES * len(text):
            best = self._new() if len(self.slots) < self.size else min(self.slots, key=lambda s: s.used)
        return best

    def _new(self) -> Slot:
        slot = Slot(self.make())
        self.slots.append(slot)
        return slot

    @property
    def first(self) -> Any:
        """The first slot's engine, made if there is none: what tokenizing and the file's name need."""
        return (self.slots[0] if self.slots else self._new()).llm


def as_text(messages: list[dict[str, str]], answer: str = "") -> str:
    """A conversation as one text whose starts compare as the KV cache's tokens do (a shared start of the text is a
    shared start of the tokens, but for a token or two at its end): each message closed as the chat template closes
    it, then the answer being written, not closed yet."""
    text = "".join(f"{m['role']}\x01{m['content']}\x02" for m in messages)
    return text + f"assistant\x01{answer}" if answer else text


def _shared(a: str, b: str) -> int:
    """The length of the longest common start of ``a`` and ``b``."""
    return len(os.path.commonprefix([a, b]))
