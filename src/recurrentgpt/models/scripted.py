"""A scripted model double: for tests, benchmarks, load tests and demos of the plumbing.

``ScriptedModel(["text", {...}])`` answers with the queued replies in order (a dict is sent as JSON);
with no queue left it invents a well-formed answer for the request's schema, so it can drive a story
of any length. ``requests`` records every request, so tests can read the exact prompts.
"""

from __future__ import annotations

import itertools
import json
import random
import threading
import time
from typing import Any, Iterable

from ..story import Usage
from .base import Completion, Model, OnText, Request

_COUNTER = itertools.count(1)  # shared, so two doubles in one process never invent the same text
_WORDS = (
    "lantern harbor winter orchard signal archive engine violin meadow copper canyon comet "
    "ferry garden glacier market mirror monastery needle observatory pilgrim quarry river "
    "satellite tavern thunder tunnel valley vineyard workshop compass ember falcon harvest"
).split()


class ScriptedModel(Model):
    def __init__(
        self,
        replies: Iterable[Any] = (),
        *,
        supports_schema: bool = True,
        latency: float = 0.0,
        chunk_size: int = 16,
        name: str = "scripted",
        concurrent: bool = False,
    ):
        self.replies = list(replies)
        self.supports_schema = supports_schema
        self.latency = latency  # seconds per call, to imitate a real server
        self.concurrent = concurrent  # imitate a server that serves calls in parallel
        self.chunk_size = chunk_size
        self.name = name
        self.requests: list[Request] = []
        self.prefilled: list[Request] = []  # what ``prefill`` was asked to read ahead
        self._lock = threading.Lock()

    def enqueue(self, *replies: Any) -> None:
        self.replies.extend(replies)

    def complete(self, request: Request, on_text: OnText | None = None) -> Completion:
        with self._lock:
            self.requests.append(request)
            reply = self.replies.pop(0) if self.replies else self._invent(request, next(_COUNTER))
        if isinstance(reply, BaseException):
            raise reply
        if callable(reply):
            reply = reply(request)
        text = reply if isinstance(reply, str) else json.dumps(reply)
        if self.latency:
            time.sleep(self.latency)
        if on_text:
            for i in range(0, len(text), self.chunk_size):
                on_text(text[i : i + self.chunk_size])
        usage = Usage(
            prompt_tokens=len((request.system + request.prompt).split()),
            completion_tokens=len(text.split()),
            calls=1,
        )
        return Completion(text=text, usage=usage)

    def prefill(self, request: Request) -> Usage:
        with self._lock:
            self.prefilled.append(request)
        return Usage(prompt_tokens=len((request.system + request.prompt).split()), calls=1)

    def _invent(self, request: Request, n: int) -> str:
        schema = request.schema or {"properties": {"paragraph": {"type": "string"}}}
        answer: dict[str, Any] = {}
        for position, (key, spec) in enumerate(schema.get("properties", {}).items()):
            if spec.get("type") == "array" and spec.get("items", {}).get("type") == "integer":
                answer[key] = []
            elif spec.get("type") == "array":
                count = spec.get("minItems", 3)
                answer[key] = [_sentence(n * 10 + i, f"{key} {i + 1}") for i in range(count)]
            elif spec.get("type") == "integer":
                answer[key] = 1
            else:  # every field its own words: real answers never repeat a paragraph word for word
                answer[key] = _sentence(n + 17 * position, key)
        if self.supports_schema:
            return json.dumps(answer)
        lines = []
        for key, value in answer.items():
            if isinstance(value, list):
                lines += [f"{key.upper()} {i + 1}: {v}" for i, v in enumerate(value)]
            else:
                lines.append(f"{key.upper()}: {value}")
        return "\n".join(lines)


def _sentence(n: int, label: str) -> str:
    # a different draw of words for every n (a cyclic pick would repeat every few dozen answers, and two
    # invented paragraphs alike but for their number would be a weak answer: the same text again)
    words = random.Random(n).sample(_WORDS, 12)
    label = label.replace("_", " ")  # invented prose, not a field name: "Paragraph 2", not "paragraph_2"
    return f"{label.capitalize()} number {n}: the {' '.join(words)}."
