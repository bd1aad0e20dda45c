"""Any OpenAI-compatible chat server: OpenAI, vLLM, llama.cpp, Ollama, LM Studio …

Servers differ in how they constrain JSON. With ``response_format="auto"`` the backend
tries ``json_schema``, then ``json_object`` with a schema, then plain text, and remembers what worked.
Answers always stream (server-sent events); a server that ignores ``stream`` is read whole. Streams ask for
the server's token counts (``stream_options.include_usage``) so usage is counted, not guessed from chunks; a
server that refuses the option is asked again without it, and remembered.
"""

from __future__ import annotations

import json
import time
from typing import Any

from httpx_sse import EventSource

from ..errors import ConfigError, ModelError, RejectedRequest
from ..story import Usage
from .base import Completion, Model, OnText, Request
from .http import HTTPClient

FORMATS = ("json_schema", "json_object", "text")


class OpenAIModel(Model):
    concurrent = True
    def __init__(
        self,
        model: str = "gpt-4o-mini",
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        response_format: str = "auto",
        timeout: float = 120.0,
        max_retries: int = 3,
        backoff: float = 0.5,
    ):
        if response_format not in ("auto", *FORMATS):
            raise ConfigError(f"unknown response format '{response_format}' (use auto, {', '.join(FORMATS)})")
        self.client = HTTPClient(base_url, api_key, timeout=timeout, max_retries=max_retries, backoff=backoff)
        self.model = model
        self.name = f"openai:{model}"
        self.response_format = response_format
        # In text mode the prompt asks for labelled sections; in the others for JSON (parsed tolerantly).
        self.supports_schema = response_format != "text"
        self._working: str | None = None if response_format == "auto" else response_format
        self._ask_usage = True  # until the server refuses ``stream_options``

    def complete(self, request: Request, on_text: OnText | None = None) -> Completion:
        if request.schema is None:
            candidates = ["text"]
        elif self._working:
            candidates = [self._working]
        else:
            candidates = list(FORMATS)
        for i, fmt in enumerate(candidates):
            try:
                completion = self._complete_with_usage(request, fmt, on_text)
            except RejectedRequest:
                if i + 1 < len(candidates):
                    continue  # this server does not take that response_format: try a simpler one
                raise
            if request.schema is not None:
                self._working = fmt
            return completion
        raise AssertionError("unreachable")

    def _complete_with_usage(self, request: Request, fmt: str, on_text: OnText | None) -> Completion:
        if not self._ask_usage:
            return self._complete(request, fmt, on_text, ask_usage=False)
        try:
            return self._complete(request, fmt, on_text, ask_usage=True)
        except RejectedRequest as e:
            if "stream_options" not in str(e) and "include_usage" not in str(e):
                raise
        self._ask_usage = False  # an older server that validates its fields strictly: count chunks instead
        return self._complete(request, fmt, on_text, ask_usage=False)

    def _complete(self, request: Request, fmt: str, on_text: OnText | None, ask_usage: bool) -> Completion:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": request.messages(),
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "stream": True,
        }
        if ask_usage:
            body["stream_options"] = {"include_usage": True}
        if request.seed is not None:  # (OpenAI, vLLM, llama.cpp's server and Ollama take a seed)
            body["seed"] = request.seed
        if fmt == "json_schema":
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": request.schema, "strict": False},
            }
        elif fmt == "json_object":
            body["response_format"] = {"type": "json_object", "schema": request.schema}
        started = time.perf_counter()
        parts: list[str] = []
        finish = "stop"
        usage: dict[str, Any] = {}
        timings: dict[str, Any] = {}  # llama.cpp's server: ``cache_n`` = prompt tokens its KV cache served
        chunks = 0
        with self.client.stream("/chat/completions", body) as response:
            if "text/event-stream" not in response.headers.get("content-type", ""):  # it ignored "stream"
                data = _json(response.read().decode("utf-8", errors="replace"))
                choice = (data.get("choices") or [{}])[0]
                text = (choice.get("message") or {}).get("content") or ""
                parts.append(text)
                if on_text and text:
                    on_text(text)
                finish = choice.get("finish_reason") or "stop"
                usage = data.get("usage") or {}
                timings = data.get("timings") or {}
            else:
                for event in EventSource(response).iter_sse():
                    if event.data.strip() == "[DONE]":
                        break
                    data = _json(event.data)
                    if "error" in data:
                        raise ModelError(f"the model server failed mid-answer: {data['error']}")
                    usage = data.get("usage") or usage
                    timings = data.get("timings") or timings
                    for choice in data.get("choices") or []:
                        delta = (choice.get("delta") or {}).get("content") or ""
                        if delta:
                            chunks += 1
                            parts.append(delta)
                            if on_text:
                                on_text(delta)
                        finish = choice.get("finish_reason") or finish
        text = "".join(parts)
        if not text.strip():
            raise ModelError(f"the model server at {self.client.base_url} returned an empty answer")
        return Completion(
            text=text,
            usage=Usage(
                prompt_tokens=int(usage.get("prompt_tokens") or 0),
                completion_tokens=int(usage.get("completion_tokens") or chunks),
                cached_tokens=_cached_tokens(usage, timings),
                seconds=time.perf_counter() - started,
                calls=1,
            ),
            finish_reason="length" if finish == "length" else "stop",
        )

    def close(self) -> None:
        self.client.close()


def _cached_tokens(usage: dict[str, Any], timings: dict[str, Any]) -> int:
    """Prompt tokens the server's cache served: OpenAI's and vLLM's ``prompt_tokens_details``, else llama.cpp's
    ``timings.cache_n``."""
    details = usage.get("prompt_tokens_details") or {}
    return int(details.get("cached_tokens") or timings.get("cache_n") or 0)


def _json(payload: str) -> dict[str, Any]:
    try:
        data = json.loads(payload)
    except json.JSONDecodeError:
        raise ModelError("the model server sent a malformed event (not JSON)") from None
    if not isinstance(data, dict):
        raise ModelError("the model server sent an event of the wrong shape")
    return data
