"""One error hierarchy for everything a user can cause or fix.

    RecurrentGPTError
    ├── ConfigError            bad option, missing model file, missing optional extra
    │   └── ContextTooSmall        a call would not fit the server's context window (refused before it is made)
    ├── InputError             bad user input: empty plan, unreadable manuscript, pruning the root
    ├── ModelError             the model could not answer
    │   ├── ModelConnectionError   server unreachable, timed out, stalled
    │   ├── ModelAuthError         401/403 from a server
    │   ├── RejectedRequest        a server refused the request (400, 404, 422 …; or its response_format)
    │   └── OutputFormatError      the model answered, but not in the required shape (after retries)
    │       └── WeakAnswer             well-formed but weak (same plans, a repeated paragraph): asked again,
    │                                  and kept with a warning when the retries run out
    ├── Cancelled              the caller stopped a generation (nothing was saved)
    └── StoreError             the story library on disk
        ├── NotFoundError          unknown story, node or bookmark
        └── ConflictError          someone else moved the story first

The CLI prints ``str(error)`` on one line and exits with ``error.exit_code``.
"""

from __future__ import annotations


class RecurrentGPTError(Exception):
    exit_code = 1


class ConfigError(RecurrentGPTError):
    exit_code = 2


class ContextTooSmall(ConfigError):
    """A call's prompt and answer ceiling would not fit the context the server runs with: refused before the
    call, because a server cuts an over-long prompt from the front (where the instructions are) without an error."""

    def __init__(self, message: str, needed: int = 0, context: int = 0):
        super().__init__(message)
        self.needed, self.context = needed, context


class InputError(RecurrentGPTError):
    exit_code = 2


class ModelError(RecurrentGPTError):
    exit_code = 3


class ModelConnectionError(ModelError):
    pass


class ModelAuthError(ModelError):
    pass


class RejectedRequest(ModelError):
    """The server understood the request and refused it: a caller may fall back (a simpler response_format)."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


class OutputFormatError(ModelError):
    exit_code = 4
    # set by ``structured.ask`` on a try it asks again: whether that try streamed text to the caller, text that is
    # now not the story (a call that streams nothing, like a step's memory and plans, leaves the kept paragraph)
    streamed = False


class WeakAnswer(OutputFormatError):
    """An answer that parses and holds only story, but is weak: ask again, and if every try is weak,
    keep the last one and say why (a tiny model would otherwise never finish a step)."""

    def __init__(self, message: str, answer: dict | None = None):
        super().__init__(message)
        self.answer = answer


class Cancelled(RecurrentGPTError):
    exit_code = 130


class StoreError(RecurrentGPTError):
    exit_code = 5


class NotFoundError(StoreError):
    exit_code = 6


class ConflictError(StoreError):
    exit_code = 7

    def __init__(self, message: str, node_id: str | None = None):
        super().__init__(message)
        self.node_id = node_id  # the work that was kept (as a branch) despite the conflict
