"""Any OpenAI-compatible chat server: OpenAI, vLLM, llama.cpp, Ollama, LM Studio …

Servers differ in how they constrain JSON (DESIGN.md §5). With ``response_format="auto"`` the backend
tries ``json_schema``, then ``json_object`` with a schema, then plain text, and remembers what worked.
Answers always stream (server-sent events); a server that ignores ``stream`` is read whole.
"""

from __future__ import annotations

import json
import time
from typing import Any

from ..errors import ConfigError, ModelError
from ..story import Usage
from .base import Completion, Model, OnText, Request
from .http import HTTPClient, RejectedRequest

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

    def complete(self, request: Request, on_text: OnText | None = None) -> Completion:
        if request.schema is None:
            candidates = ["text"]
        elif self._working:
            candidates = [self._working]
        else:
            candidates = list(FORMATS)
        for i, fmt in enumerate(candidates):
            try:
                completion = self._complete(request, fmt, on_text)
            except RejectedRequest:
                if i + 1 < len(candidates):
                    continue  # this server does not take that response_format: try a simpler one
                raise
            if request.schema is not None:
                self._working = fmt
            return completion
        raise AssertionError("unreachable")

    def _complete(self, request: Request, fmt: str, on_text: OnText | None) -> Completion:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": request.messages(),
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "stream": True,
        }
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
        chunks = 0
        with self.client.stream("/chat/completions", body) as response:
            if "text/event-stream" not in response.headers.get("content-type", "text/event-stream"):
                data = _json(response.read().decode("utf-8", errors="replace"))
                choice = (data.get("choices") or [{}])[0]
                text = (choice.get("message") or {}).get("content") or ""
                parts.append(text)
                if on_text and text:
                    on_text(text)
                finish = choice.get("finish_reason") or "stop"
                usage = data.get("usage") or {}
            else:
                for line in response.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    payload = line[5:].strip()
                    if payload == "[DONE]":
                        break
                    data = _json(payload)
                    if "error" in data:
                        raise ModelError(f"the model server failed mid-answer: {data['error']}")
                    usage = data.get("usage") or usage
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
                cached_tokens=int(((usage.get("prompt_tokens_details") or {}).get("cached_tokens")) or 0),
                seconds=time.perf_counter() - started,
                calls=1,
            ),
            finish_reason="length" if finish == "length" else "stop",
        )

    def close(self) -> None:
        self.client.close()


def _json(payload: str) -> dict[str, Any]:
    try:
        data = json.loads(payload)
    except json.JSONDecodeError:
        raise ModelError("the model server sent a malformed event (not JSON)") from None
    if not isinstance(data, dict):
        raise ModelError("the model server sent an event of the wrong shape")
    return data
