"""A server's context window, read where the server says it, and the check that refuses a call that won't fit.

A server cuts a prompt longer than its context from the front, without an error, and the front is where the
instructions are. So a server backend asks once, through the server's documented endpoint, and refuses before
the call a prompt whose answer ceiling (``max_tokens``, plus what a later turn of the same conversation adds:
``Request.reserve``) would not fit:

    llama.cpp's llama-server   GET /props                         default_generation_settings.n_ctx
    KoboldCpp                  GET /api/extra/true_max_context_length   value
    LM Studio                  GET /api/v0/models/MODEL           loaded_context_length (state "loaded");
                               GET /api/v1/models                 loaded_instances[].config.context_length
    vLLM (and servers that list it)   GET /v1/models              max_model_len (or context_length)
    Ollama                     the num_ctx it is sent, within POST /api/show's model_info "*.context_length"
                               (models/ollama.py)

Where none says it (llama-cpp-python's server has no such endpoint), the call goes ahead; a server that then
refuses it for its length (OpenAI's, vLLM's and llama-cpp-python's "maximum context length is N tokens",
llama-server's ``n_ctx``) teaches the backend its context, and the refusal is the same one line.
Prompt sizes are estimated (a server's tokenizer is not at hand): words at 1.35 tokens, at least a token per four
characters, an ideograph 1.2, so the estimate errs long.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from ..errors import ContextTooSmall, ModelError, RecurrentGPTError
from .base import Request

_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
_WORD = re.compile(r"\w+")
MESSAGE_OVERHEAD = 6  # a chat template's role markers around each message


@dataclass(frozen=True)
class Context:
    tokens: int | None  # what one call's prompt and answer may hold together; None: not known
    source: str  # where it was read (or why it could not be), for `doctor`
    limit: int | None = None  # the model's own maximum, where the server says it


def estimate_tokens(text: str) -> int:
    """About how many tokens ``text`` is, erring long."""
    cjk = len(_CJK.findall(text))
    words = len(_WORD.findall(_CJK.sub(" ", text)))
    return math.ceil(max(words * 1.35, (len(text) - cjk) / 4) + cjk * 1.2)


def prompt_tokens(request: Request) -> int:
    return sum(estimate_tokens(m["content"]) + MESSAGE_OVERHEAD for m in request.messages())


def needed(request: Request) -> tuple[int, int]:
    """(the prompt's estimated tokens, the tokens the whole call may need: prompt, answer ceiling, reserve)."""
    prompt = prompt_tokens(request)
    return prompt, prompt + request.max_tokens + request.reserve


def check(request: Request, context: int | None, who: str, fix: str) -> None:
    """Refuse ``request`` when it cannot fit ``context`` tokens (nothing known: let it go)."""
    if not context:
        return
    prompt, total = needed(request)
    if total > context:
        later = f" and {request.reserve:,} for the step's second call" if request.reserve else ""
        raise ContextTooSmall(
            f"this call needs about {total:,} tokens (a ~{prompt:,}-token prompt, up to {request.max_tokens:,} for the "
            f"answer{later}) but {who} runs with a {context:,}-token context: {fix}", total, context)


_REFUSALS = (
    re.compile(r"maximum context length is (\d+)"),  # OpenAI, vLLM, llama-cpp-python's server
    re.compile(r"context window of (\d+)"),  # llama-cpp-python's engine
    re.compile(r"\bn_ctx\D{0,4}(\d+)"),  # llama-server: exceed_context_size_error with n_ctx
)


def context_from_refusal(detail: str) -> int | None:
    """The context a server's refusal of an over-long request names, if it names one."""
    if not re.search(r"context|n_ctx", detail, re.IGNORECASE):
        return None
    for pattern in _REFUSALS:
        match = pattern.search(detail)
        if match and int(match.group(1)) > 0:
            return int(match.group(1))
    return None


# -- reading it from each server ----------------------------------------------------------------------------------


def probe(client: Any, kind: str, model: str) -> Context:
    """The context ``client``'s server (of preset ``kind``) runs ``model`` with, through its documented endpoint;
    unknown (with the reason) when it does not say or does not answer."""
    try:
        if kind == "llamacpp":
            props = client.get_json("/props", root=True)
            settings = props.get("default_generation_settings") or {} if isinstance(props, dict) else {}
            n_ctx = _positive(settings.get("n_ctx")) or _positive(props.get("n_ctx") if isinstance(props, dict) else 0)
            return Context(n_ctx, "GET /props: default_generation_settings.n_ctx" if n_ctx else "GET /props: no n_ctx")
        if kind == "koboldcpp":
            data = client.get_json("/api/extra/true_max_context_length", root=True)
            value = _positive(data.get("value") if isinstance(data, dict) else data)
            return Context(value, "GET /api/extra/true_max_context_length" if value else
                           "GET /api/extra/true_max_context_length: no value")
        if kind == "lmstudio":
            return _lmstudio(client, model)
        return _listed(client, model)
    except RecurrentGPTError as e:
        return Context(None, f"not read ({_short(e)})")


def _lmstudio(client: Any, model: str) -> Context:
    try:
        info = client.get_json(f"/api/v0/models/{quote(model, safe='')}", root=True)
    except ModelError:
        info = None
    if isinstance(info, dict) and info.get("id"):
        limit = _positive(info.get("max_context_length"))
        if info.get("state") == "loaded":
            loaded = _positive(info.get("loaded_context_length"))
            return Context(loaded or None, "GET /api/v0/models/MODEL: loaded_context_length", limit)
        return Context(None, f"GET /api/v0/models/MODEL: {model} is not loaded yet (it loads with LM Studio's "
                             "default context)", limit)
    listing = client.get_json("/api/v1/models", root=True)
    for entry in (listing.get("models") or []) if isinstance(listing, dict) else []:
        if entry.get("key") == model:
            limit = _positive(entry.get("max_context_length"))
            instances = entry.get("loaded_instances") or []
            loaded = _positive(((instances[0] or {}).get("config") or {}).get("context_length")) if instances else 0
            if loaded:
                return Context(loaded, "GET /api/v1/models: loaded_instances[].config.context_length", limit)
            return Context(None, f"GET /api/v1/models: {model} is not loaded yet", limit)
    return Context(None, f"LM Studio does not list {model}")


def _listed(client: Any, model: str) -> Context:
    """vLLM's ``max_model_len`` in its model list (and the ``context_length`` some OpenAI-compatible APIs list)."""
    listing = client.get_json("/models")
    for entry in (listing.get("data") or []) if isinstance(listing, dict) else []:
        if isinstance(entry, dict) and entry.get("id") == model:
            for key in ("max_model_len", "context_length", "context_window"):
                if _positive(entry.get(key)):
                    return Context(int(entry[key]), f"GET /v1/models: {key}")
            return Context(None, "GET /v1/models lists no context length")
    return Context(None, "GET /v1/models does not list this model")


def _positive(value: Any) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return 0
    return number if number > 0 else 0


def _short(error: Exception) -> str:
    text = " ".join(str(error).split())
    return text if len(text) <= 120 else text[:117] + "..."
