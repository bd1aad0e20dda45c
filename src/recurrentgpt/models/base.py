"""The one small interface every LLM backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable

from ..story import Sampling, Usage

OnText = Callable[[str], None]


@dataclass(frozen=True)
class Request:
    system: str
    prompt: str
    schema: dict[str, Any] | None = None  # a JSON schema the answer must follow, if the backend can enforce it
    max_tokens: int = 1024
    temperature: float = 0.8
    # earlier (user, assistant) turns of the same conversation, before ``prompt``: a second call that
    # continues the first (the two-phase step) shares its whole prefix, so the KV cache serves it
    history: tuple[tuple[str, str], ...] = ()
    seed: int | None = None  # this call's sampling seed (a regeneration's own); None: the backend's next
    sampling: Sampling | None = None  # None: the backend's own defaults
    # tokens a later turn of this conversation will add (the two-phase step's second call): a backend that
    # knows its context refuses a call whose conversation could not finish, before the first call is made
    reserve: int = 0

    def messages(self) -> list[dict[str, str]]:
        """The chat messages of this request, as every chat-template backend sends them."""
        out = [{"role": "system", "content": self.system}]
        for user, assistant in self.history:
            out += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
        return [*out, {"role": "user", "content": self.prompt}]


@dataclass(frozen=True)
class Completion:
    text: str
    usage: Usage
    finish_reason: str = "stop"  # "stop" or "length" (hit max_tokens)


class Model(ABC):
    """An LLM backend: one blocking call that may stream text chunks to ``on_text``."""

    name: str = "model"
    #: True when the backend constrains output to ``Request.schema``; the cell then asks for JSON,
    #: otherwise for labelled sections of plain text.
    supports_schema: bool = False
    #: True when concurrent calls overlap usefully (a server batches them); an embedded engine runs one at a time.
    concurrent: bool = False

    @abstractmethod
    def complete(self, request: Request, on_text: OnText | None = None) -> Completion: ...

    def context_window(self) -> int | None:
        """How many tokens a call's prompt and answer may hold together, where the backend can tell (a server
        that says so through its documented endpoint); None when it is not known."""
        return None

    def load(self) -> None:  # noqa: B027 - optional hook
        """Load what the first call would load (an embedded engine's weights). A caller about to call from another
        thread does this first: loading llama.cpp silences the whole process's output for its duration."""

    def prefill(self, request: Request) -> Usage:
        """Read ``request``'s messages into the KV cache ahead of time, so that a later call whose prompt
        starts with them reads only the rest (the next step's plan-independent prompt, while the writer
        chooses a plan). Nothing is generated. A server decides its own caching, and a hosted API would bill
        the call: there this does nothing (an empty ``Usage``)."""
        return Usage()

    def second_context(self) -> "Model":
        """The model for a second conversation that alternates with the first (the human simulator's, between
        the cell's steps). A server keeps its own caches, so this is the model itself; an embedded engine
        answers with a sibling holding its own KV cache, so neither conversation evicts the other's prefix."""
        return self

    def close(self) -> None:  # noqa: B027 - optional hook
        pass
