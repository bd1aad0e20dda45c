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

    def failed(self, text: str) -> None:
        """A call for ``text`` failed before its answer began: the cache holds at most what it held and the call
        shared with it."""
        self.holds = self.holds[: _shared(self.holds, text)]


class Slots:
    """Up to ``size`` slots, each made by the ``make()`` a call passes when it needs one more (each holds a KV
    cache: 346 MiB for the bundled model at 8,192 tokens). ``make`` is passed, not kept: a kept bound method would
    tie the engine to itself, and its contexts would wait for the garbage collector to be freed."""

    def __init__(self, size: int):
        self.size = max(1, size)
        self.slots: list[Slot] = []

    def pick(self, text: str, make: Callable[[], Any]) -> Slot:
        """The slot holding the longest start of ``text`` (ties: the least recently used), except that a call which
        would throw away more of the latest conversation's cache than it reuses, without being that conversation's
        call again (sharing ``CONTINUES`` of its own text), goes elsewhere: to a new slot while there is room, else
        the least recently used one. So the read ahead keeps the step just written cached for a regeneration, and
        the regeneration, the step's second call and the step after the read ahead each find their cache."""
        if not self.slots:
            return self._new(make)
        shared = {id(s): _shared(s.holds, text) for s in self.slots}
        best = max(self.slots, key=lambda s: (shared[id(s)], -s.used))
        latest = max(self.slots, key=lambda s: s.used)
        n = shared[id(best)]
        if best is latest and len(best.holds) - n > n and n < CONTINUES * len(text):
            best = self._new(make) if len(self.slots) < self.size else min(self.slots, key=lambda s: s.used)
        return best

    def fill(self, make: Callable[[], Any]) -> None:
        """Make every slot now (loading llama.cpp silences the process's output: better before a writer's prompt)."""
        while len(self.slots) < self.size:
            self._new(make)

    def first(self, make: Callable[[], Any]) -> Any:
        """The first slot's engine, made if there is none: what tokenizing and the file's name need."""
        return (self.slots[0] if self.slots else self._new(make)).llm

    def _new(self, make: Callable[[], Any]) -> Slot:
        slot = Slot(make())
        self.slots.append(slot)
        return slot


def as_text(messages: list[dict[str, str]], answer: str = "") -> str:
    """A conversation as one text whose starts compare as the KV cache's tokens do (a shared start of the text is a
    shared start of the tokens, but for a token or two at its end): each message closed as the chat template closes
    it, then the answer being written, not closed yet."""
    text = "".join(f"{m['role']}\x01{m['content']}\x02" for m in messages)
    return text + f"assistant\x01{answer}" if answer else text


def _shared(a: str, b: str) -> int:
    """The length of the longest common start of ``a`` and ``b``."""
    return len(os.path.commonprefix([a, b]))
