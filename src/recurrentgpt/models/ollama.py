"""Ollama through its native API (POST /api/chat), which its OpenAI-compatible route is not: only the native one
takes ``options.num_ctx`` (Ollama's own docs say so), so only through it does a step get the context it needs.

    POST /api/chat    {"model", "messages", "stream": true, "format": SCHEMA, "options": {num_ctx, num_predict,
                      temperature, top_p, top_k, min_p, repeat_penalty, presence_penalty, seed}}
                      -> one JSON object a line; the last has "done": true, "done_reason", "prompt_eval_count",
                      "eval_count"
    POST /api/show    {"model"} -> "model_info" with "<architecture>.context_length", the model's own maximum
    GET  /api/ps      the loaded models, each with the "context_length" it runs with (newer servers)
    GET  /api/tags    the models pulled

The context a call gets is the num_ctx sent (``--num-ctx``, 8,192 by default), within the model's maximum; a call
that would not fit is refused before it is made (models/context.py). The address is ``--base-url``, else
``$OLLAMA_HOST`` (as the ollama command reads it), else http://127.0.0.1:11434.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from typing import Any, Mapping

from ..errors import ConfigError, ModelError, RejectedRequest
from ..story import Usage
from . import context as ctx
from .base import Completion, Model, OnText, Request
from .http import HTTPClient, server_root
from .openai import sampler_fields
from .presets import ENLARGE, PRESETS

DEFAULT_NUM_CTX = 8192  # the paper's settings need ~3,000 tokens a step, the opening ~5,000 (docs/models.md)
FORMATS = ("auto", "json_schema", "json_object", "text")
ADDRESS_HINT = "Ollama's address is the server's root, e.g. http://127.0.0.1:11434 ($OLLAMA_HOST)"


def default_address(environ: Mapping[str, str] | None = None) -> tuple[str, str]:
    """(Ollama's address, where it came from): ``$OLLAMA_HOST`` as Ollama reads it (host, host:port or a URL;
    0.0.0.0 is a bind address, reached as 127.0.0.1), else the preset's."""
    environ = os.environ if environ is None else environ
    host = environ.get("OLLAMA_HOST", "").strip()
    if not host:
        return PRESETS["ollama"].base_url, "the ollama preset"
    scheme, sep, rest = host.partition("://")
    if not sep:
        scheme, rest = "http", host
    rest = rest.rstrip("/")
    hostname, colon, port = rest.rpartition(":") if rest.count(":") == 1 else (rest, "", "")
    if not colon:
        hostname, port = rest, "11434"
    if hostname in ("0.0.0.0", ""):
        hostname = "127.0.0.1"
    return f"{scheme}://{hostname}:{port}", "$OLLAMA_HOST"


class OllamaModel(Model):
    concurrent = True

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        response_format: str = "json_schema",
        timeout: float = 120.0,
        max_retries: int = 3,
        backoff: float = 0.5,
        seed: int | None = None,
        num_ctx: int | None = None,
    ):
        if response_format not in FORMATS:
            raise ConfigError(f"unknown response format '{response_format}' (use {', '.join(FORMATS)})")
        address = server_root(base_url) if base_url else default_address()[0]
        self.client = HTTPClient(address, api_key, timeout=timeout, max_retries=max_retries, backoff=backoff)
        self.client.address_hint = ADDRESS_HINT
        self.model = model
        self.name = f"ollama:{model}"
        self.preset = PRESETS["ollama"]
        self.response_format = response_format
        self.supports_schema = response_format != "text"
        self.num_ctx = num_ctx or DEFAULT_NUM_CTX
        self.seed = seed
        self._calls = itertools.count()
        self._context: ctx.Context | None = None

    # -- what the server says ---------------------------------------------------------------------------------

    def show(self) -> dict[str, Any]:
        """POST /api/show: the model's details; a model the server has not pulled is one line naming it."""
        try:
            return self.client.post_json("/api/show", {"model": self.model})
        except RejectedRequest as e:
            if e.status == 404:
                raise self._missing() from None
            raise

    def _missing(self) -> ConfigError:
        try:
            names = ", ".join(self.list_models()[:12]) or "none"
        except ModelError:
            names = "unknown"
        return ConfigError(f"Ollama at {self.client.base_url} has no model '{self.model}': `ollama pull {self.model}` "
                           f"(it has: {names})")

    def context(self) -> ctx.Context:
        """The num_ctx sent, within the model's maximum from /api/show (read once)."""
        if self._context is None:
            info = self.show().get("model_info") or {}
            limit = next((int(v) for k, v in info.items() if k.endswith(".context_length") and ctx._positive(v)), None)
            tokens = min(self.num_ctx, limit) if limit else self.num_ctx
            source = "num_ctx sent (--num-ctx)" + (f", within POST /api/show's {limit:,}" if limit else "")
            self._context = ctx.Context(tokens, source, limit)
        return self._context

    def context_window(self) -> int | None:
        return self.context().tokens

    def running_context(self) -> int | None:
        """The context Ollama has loaded this model with now (GET /api/ps), where it says so."""
        data = self.client.get_json("/api/ps")
        for entry in (data.get("models") or []) if isinstance(data, dict) else []:
            if entry.get("name") in (self.model, f"{self.model}:latest") or entry.get("model") == self.model:
                return ctx._positive(entry.get("context_length")) or None
        return None

    def list_models(self) -> list[str]:
        data = self.client.get_json("/api/tags", timeout=min(10.0, self.client.timeout))
        rows = data.get("models") if isinstance(data, dict) else None
        if not isinstance(rows, list):
            raise ModelError(f"{self.client.base_url}/api/tags answered without a model list")
        return [str(r.get("name") or r.get("model")) for r in rows if isinstance(r, dict)]

    # -- a call ---------------------------------------------------------------------------------------------------

    def _fix(self) -> str:
        limit = self.context().limit
        if limit and self.num_ctx >= limit:
            return f"{self.model} takes at most {limit:,} tokens: {ENLARGE}"
        return f"raise --num-ctx (now {self.num_ctx:,}" + (f"; the model takes up to {limit:,})" if limit else ")")

    def complete(self, request: Request, on_text: OnText | None = None) -> Completion:
        ctx.check(request, self.context_window(), self.name, self._fix())
        options: dict[str, Any] = {"num_ctx": self.num_ctx, "num_predict": request.max_tokens,
                                   "temperature": request.temperature}
        seed = request.seed
        if seed is None and self.seed is not None:
            seed = self.seed + next(self._calls)
        options.update(sampler_fields(request, self.preset.samplers, seed))
        body: dict[str, Any] = {"model": self.model, "messages": request.messages(), "stream": True,
                                "options": options}
        if request.schema is not None and self.response_format in ("auto", "json_schema"):
            body["format"] = request.schema
        elif request.schema is not None and self.response_format == "json_object":
            body["format"] = "json"
        started = time.perf_counter()
        parts: list[str] = []
        last: dict[str, Any] = {}
        try:
            with self.client.stream("/api/chat", body) as response:
                for line in response.iter_lines():
                    if not line.strip():
                        continue
                    try:
                        data = json.loads(line)
                    except json.JSONDecodeError:
                        raise ModelError("Ollama sent a malformed line (not JSON)") from None
                    if not isinstance(data, dict):
                        raise ModelError("Ollama sent a line of the wrong shape")
                    if data.get("error"):
                        raise ModelError(f"Ollama failed mid-answer: {data['error']}")
                    piece = (data.get("message") or {}).get("content") or ""
                    if piece:
                        parts.append(piece)
                        if on_text:
                            on_text(piece)
                    if data.get("done"):
                        last = data
                        break
        except RejectedRequest as e:
            if e.status == 404:
                raise self._missing() from None
            raise
        text = "".join(parts)
        if not text.strip():
            raise ModelError(f"Ollama at {self.client.base_url} returned an empty answer")
        return Completion(
            text=text,
            usage=Usage(prompt_tokens=int(last.get("prompt_eval_count") or 0),
                        completion_tokens=int(last.get("eval_count") or len(parts)),
                        seconds=time.perf_counter() - started, calls=1),
            finish_reason="length" if last.get("done_reason") == "length" else "stop",
        )

    def close(self) -> None:
        self.client.close()
