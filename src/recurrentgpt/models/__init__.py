"""LLM backends behind one interface; ``get_model`` builds one from a short spec.

    smollm2 (default)      the bundled SmolLM2-135M-Instruct, embedded, offline
    path/to/file.gguf      any GGUF file, embedded (also gguf:PATH)
    openai:MODEL           any OpenAI-compatible server (--base-url, OPENAI_BASE_URL, OPENAI_API_KEY)
    scripted               a model double that invents well-formed answers (tests, demos of plumbing)
"""

from __future__ import annotations

from typing import Any

from .base import Completion, Model, Request
from .scripted import ScriptedModel

__all__ = ["Completion", "Model", "Request", "ScriptedModel", "get_model"]


def get_model(spec: str | None = None, **options: Any) -> Model:
    """``options``: base_url, api_key, response_format, timeout (openai); n_ctx, seed (llamacpp)."""
    from ..errors import ConfigError

    spec = (spec or "smollm2").strip()
    openai_keys = {"base_url", "api_key", "response_format", "timeout", "max_retries"}
    llama_keys = {"n_ctx", "seed", "n_threads", "prompt_cache_mb"}
    if spec.startswith("openai:") or spec == "openai":
        from .openai import OpenAIModel

        name = spec.partition(":")[2] or "gpt-4o-mini"
        return OpenAIModel(name, **{k: v for k, v in options.items() if k in openai_keys and v is not None})
    if spec == "scripted":
        return ScriptedModel()
    if spec in ("smollm2", "bundled", "default") or spec.endswith(".gguf") or spec.startswith("gguf:"):
        from .llamacpp import LlamaCppModel

        path = None if spec in ("smollm2", "bundled", "default") else spec.removeprefix("gguf:")
        return LlamaCppModel(path, **{k: v for k, v in options.items() if k in llama_keys and v is not None})
    raise ConfigError(f"unknown model '{spec}' (use smollm2, a .gguf path, openai:MODEL or scripted)")
