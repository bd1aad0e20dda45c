"""LLM backends behind one interface; ``get_model`` builds one from a short spec.

    smollm2 (default)      the bundled SmolLM2-135M-Instruct, embedded, offline
    path/to/file.gguf      any GGUF file, embedded (also gguf:PATH)
    openai:MODEL           OpenAI's API, or any OpenAI-compatible server (--base-url, $OPENAI_BASE_URL)
    ollama:NAME            Ollama through its native API (ollama.py)
    lmstudio:NAME, koboldcpp, llamacpp-server, vllm:NAME
                           a local server by name: its usual address, JSON mode and sampler fields (presets.py)
    openrouter:MODEL, groq:MODEL, deepseek:MODEL, mistral:MODEL, together:MODEL
                           a hosted API, with its own key (keys.py)
    scripted               a model double that invents well-formed answers (tests, demos of plumbing)
"""

from __future__ import annotations

from typing import Any

from .base import Completion, Model, Request, Sampling
from .presets import PRESETS, split_spec
from .scripted import ScriptedModel

__all__ = ["PRESETS", "Completion", "Model", "Request", "Sampling", "ScriptedModel", "address", "get_model",
           "is_embedded"]


def is_embedded(spec: str | None) -> bool:
    """Does this spec run the model inside the process (llama.cpp), so that every process loads its own?"""
    spec = (spec or "smollm2").strip()
    return spec in ("smollm2", "bundled", "default") or spec.endswith(".gguf") or spec.startswith("gguf:")


def address(spec: str | None, base_url: str | None = None) -> tuple[str, str] | None:
    """(the server a spec's calls go to, where that address came from), or None for an embedded model or the
    scripted double. ``$OPENAI_BASE_URL`` applies to ``openai:`` only: it never moves a named server."""
    import os

    spec = (spec or "smollm2").strip()
    if spec.startswith("openai:") or spec == "openai":
        if base_url:
            return base_url, "--base-url"
        if os.environ.get("OPENAI_BASE_URL"):
            return os.environ["OPENAI_BASE_URL"], "$OPENAI_BASE_URL"
        return PRESETS["openai"].base_url, "the openai preset"
    preset = split_spec(spec)
    if preset is None:
        return None
    if base_url:
        return base_url, "--base-url"
    if preset[0].kind == "ollama":
        from .ollama import default_address

        return default_address()
    return preset[0].base_url, f"the {preset[0].name} preset"


def get_model(spec: str | None = None, **options: Any) -> Model:
    """``options``: base_url, api_key, response_format, timeout, seed, num_ctx (servers); num_ctx (as n_ctx), seed,
    n_threads (llamacpp). A server's key is resolved by keys.py: an explicit ``api_key`` goes to the server named,
    a provider's own key only to that provider."""
    from ..errors import ConfigError
    from ..keys import refuse_foreign, resolve, same_host

    spec = (spec or "smollm2").strip()
    http_keys = {"response_format", "timeout", "max_retries", "seed"}
    chosen = {k: v for k, v in options.items() if k in http_keys and v is not None}
    preset = split_spec(spec)
    if preset is not None:
        server, name = preset
        if server.name == "openai":
            name = name or server.default_model
        elif not name and server.needs_model:
            raise ConfigError(f"name the model: --model {server.name}:MODEL (as the server lists it)")
        where = address(spec, options.get("base_url"))
        assert where is not None
        chosen.setdefault("response_format", server.response_format)
        if server.kind == "ollama":
            from .ollama import OllamaModel

            return OllamaModel(name, base_url=where[0], api_key=options.get("api_key") or None,
                               num_ctx=options.get("num_ctx"), **chosen)
        from .openai import OpenAIModel

        key, key_source = resolve(server, where[0], options.get("api_key"))
        refuse_foreign(server, where[0], key, key_source)
        # a preset moved to another address keeps its JSON form and field names; OpenAI's own preset only where
        # the address is OpenAI's (another OpenAI-compatible server takes the standard fields and any JSON form)
        generic = server.name == "openai" and not same_host(where[0], server.base_url)
        if generic and "response_format" not in {k for k, v in options.items() if v is not None}:
            chosen["response_format"] = "auto"
        model = OpenAIModel(name or server.default_model, base_url=where[0], api_key=key,
                            preset=None if generic else server, key_source=key_source, **chosen)
        model.name = f"{server.name}:{name}" if name else server.name
        return model
    if spec == "scripted":
        return ScriptedModel()
    if is_embedded(spec):
        from .llamacpp import LlamaCppModel

        llama = {"seed": options.get("seed"), "n_threads": options.get("n_threads"), "n_ctx": options.get("num_ctx"),
                 "prompt_cache_mb": options.get("prompt_cache_mb")}
        path = None if spec in ("smollm2", "bundled", "default") else spec.removeprefix("gguf:")
        return LlamaCppModel(path, **{k: v for k, v in llama.items() if v is not None})
    names = ", ".join(f"{p}:MODEL" if PRESETS[p].needs_model else p for p in PRESETS)
    raise ConfigError(f"unknown model '{spec}' (use smollm2, a .gguf path, {names} or scripted)")
