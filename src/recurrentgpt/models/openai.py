"""Any OpenAI-compatible chat server: OpenAI, vLLM, llama.cpp, Ollama, LM Studio …

Servers differ in how they constrain JSON. With ``response_format="auto"`` the backend
tries ``json_schema``, then ``json_object`` with a schema, then plain text, and remembers what worked.
Answers always stream (server-sent events); a server that ignores ``stream`` is read whole. Streams ask for
the server's token counts (``stream_options.include_usage``) so usage is counted, not guessed from chunks; a
server that refuses the option is asked again without it, and remembered.

The story's samplers (``Request.sampling``) and the seed go under the names the server's preset lists
(``presets.Preset.samplers``: the OpenAI API's own fields, or the server's documented extensions such as llama.cpp's
top_k, min_p and repeat_penalty); a server that refuses an extension field is asked again with the standard ones
only, and remembered. The seed moves on by one each call, so a run is repeatable from its start while a retry of
the same prompt is not the same draw. Before a call, the prompt and its answer ceiling are checked against the
context the server says it runs with (models/context.py).
"""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

from httpx_sse import EventSource

from ..errors import ConfigError, ContextTooSmall, ModelAuthError, ModelError, RejectedRequest
from ..story import Usage
from . import context as ctx
from .base import Completion, Model, OnText, Request
from .http import HTTPClient
from .presets import ENLARGE, STANDARD, Preset

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
        seed: int | None = None,
        preset: Preset | None = None,
        key_source: str = "",
    ):
        if response_format not in ("auto", *FORMATS):
            raise ConfigError(f"unknown response format '{response_format}' (use auto, {', '.join(FORMATS)})")
        self.client = HTTPClient(base_url, api_key, timeout=timeout, max_retries=max_retries, backoff=backoff)
        self.model = model
        self.name = f"openai:{model}"
        self.preset = preset
        self.key_source = key_source or ("--api-key" if api_key else "none")  # where the key came from (keys.py)
        self.kind = preset.kind if preset is not None else "openai"
        self.samplers = dict(preset.samplers) if preset is not None else dict(STANDARD)
        self.seed = seed
        self._calls = itertools.count()
        self._context: ctx.Context | None = None
        self.response_format = response_format
        # In text mode the prompt asks for labelled sections; in the others for JSON (parsed tolerantly).
        self.supports_schema = response_format != "text"
        self._working: str | None = None if response_format == "auto" else response_format
        self._ask_usage = True  # until the server refuses ``stream_options``

    def context(self) -> ctx.Context:
        """The context the server runs this model with, read once from its documented endpoint (an unknown one is
        asked again after a call: LM Studio loads a model on its first call)."""
        if self._context is None or self._context.tokens is None and self._context.source.startswith("retry:"):
            self._context = ctx.probe(self.client, self.kind, self.model)
        return self._context

    def context_window(self) -> int | None:
        return self.context().tokens

    def list_models(self) -> list[str]:
        """The model names the server lists (GET /v1/models)."""
        listing = self.client.get_json("/models", timeout=min(10.0, self.client.timeout))
        rows = listing.get("data") if isinstance(listing, dict) else None
        if not isinstance(rows, list):
            raise ModelError(f"{self.client.base_url}/models answered without a model list")
        return [str(r.get("id")) for r in rows if isinstance(r, dict) and r.get("id")]

    def _fix(self) -> str:
        return self.preset.context_fix if self.preset is not None else ENLARGE

    def complete(self, request: Request, on_text: OnText | None = None) -> Completion:
        try:
            return self._complete_checked(request, on_text)
        except ModelAuthError as e:
            raise ModelAuthError(f"{e}: {self._key_hint()}") from None

    def _key_hint(self) -> str:
        """What to change when the server refuses the key: where the key came from, or where one would."""
        hosted = self.preset is not None and self.preset.hosted
        if self.key_source == "none":
            if hosted:
                return (f"no key was sent: set ${self.preset.key_env} or `recurrentgpt keys set {self.preset.name}`"  # type: ignore[union-attr]
                        " (a key goes only to its own provider)")
            return "no key was sent (a provider's key never goes to another server): pass --api-key for this server"
        if self.key_source == "keyring":
            return f"the key came from the OS keyring: `recurrentgpt keys set {self.preset.name}` to replace it"  # type: ignore[union-attr]
        return f"the key came from {self.key_source}: is it this provider's?"

    def _complete_checked(self, request: Request, on_text: OnText | None) -> Completion:
        known = self.context()
        ctx.check(request, known.tokens, self.name, self._fix())
        if request.schema is None:
            candidates = ["text"]
        elif self._working:
            candidates = [self._working]
        else:
            candidates = list(FORMATS)
        for i, fmt in enumerate(candidates):
            try:
                completion = self._complete_with_usage(request, fmt, on_text)
            except RejectedRequest as e:
                self._explain(request, e)
                if i + 1 < len(candidates):
                    continue  # this server does not take that response_format: try a simpler one
                raise
            if request.schema is not None:
                self._working = fmt
            if known.tokens is None and self.kind == "lmstudio" and not known.source.startswith("retry:"):
                self._context = ctx.Context(None, "retry: " + known.source, known.limit)  # loaded now: ask again
            return completion
        raise AssertionError("unreachable")

    def _explain(self, request: Request, error: RejectedRequest) -> None:
        """Turn a refusal a writer can fix into one line naming the fix: a prompt too long for the context (which
        is learned, so the next call is refused before it is made), a model the server does not have."""
        learned = ctx.context_from_refusal(str(error))
        if learned:
            self._context = ctx.Context(learned, "the server's refusal of a longer request")
            ctx.check(request, learned, self.name, self._fix())
            raise ContextTooSmall(f"the server refused the call for its length: {error}", 0, learned)
        text = str(error).lower()
        if error.status == 404 and "model" in text and ("not" in text or "exist" in text):
            try:
                names = ", ".join(self.list_models()[:12]) or "none"
            except ModelError:
                names = "unknown"
            raise ConfigError(f"{self.client.base_url} has no model '{self.model}' (it lists: {names})") from None

    def _complete_with_usage(self, request: Request, fmt: str, on_text: OnText | None) -> Completion:
        seed = (
            request.seed if request.seed is not None else None if self.seed is None else self.seed + next(self._calls)
        )
        for _ in range(3):
            try:
                return self._complete(request, fmt, on_text, ask_usage=self._ask_usage, seed=seed)
            except RejectedRequest as e:
                if self._ask_usage and ("stream_options" in str(e) or "include_usage" in str(e)):
                    self._ask_usage = False  # an older server that validates its fields strictly: count chunks
                    continue
                extensions = [wire for ours, wire in self.samplers.items() if ours not in STANDARD]
                if any(wire in str(e) for wire in extensions):
                    self.samplers = {k: v for k, v in self.samplers.items() if k in STANDARD}  # standard fields only
                    continue
                raise
        return self._complete(request, fmt, on_text, ask_usage=self._ask_usage, seed=seed)

    def _complete(self, request: Request, fmt: str, on_text: OnText | None, ask_usage: bool,
                  seed: int | None = None, stream: bool = True) -> Completion:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": request.messages(),
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "stream": stream,
        }
        body.update(sampler_fields(request, self.samplers, seed))
        if ask_usage and stream:
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
        events = -1  # SSE events read; -1: the server answered in one JSON body
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
                events = 0
                for event in EventSource(response).iter_sse():
                    events += 1
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
        if stream and events == 0:
            # llama-cpp-python's server refuses a prompt too long for its context by closing an empty stream; the
            # same call unstreamed answers with the refusal, which says the context (or with the answer)
            return self._complete(request, fmt, on_text, ask_usage, seed, stream=False)
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


def sampler_fields(request: Request, names: dict[str, str], seed: int | None) -> dict[str, Any]:
    """The request's samplers and ``seed`` under the server's field ``names`` (our name -> the server's), for the
    ones it takes."""
    values: dict[str, Any] = {}
    if request.sampling is not None:
        values = {k: getattr(request.sampling, k) for k in ("top_p", "min_p", "top_k", "repeat_penalty",
                                                           "presence_penalty")}
    if seed is not None:
        values["seed"] = seed
    return {names[k]: v for k, v in values.items() if k in names}


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
