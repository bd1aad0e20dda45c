"""Embedders behind one interface; ``get_embedder`` builds one from a short spec.

    minilm (default)   the bundled all-MiniLM-L6-v2, offline
    mpnet              sentence-transformers/all-mpnet-base-v2 from the Hugging Face cache (stronger on real prose,
                       ~6x slower)
    embeddinggemma     google/embeddinggemma-300m from the Hugging Face cache (strongest on real prose, ~3x slower to
                       recall than MiniLM with its int8 query model; its query/document prompts are used)
    st:NAME_OR_PATH    any sentence-transformers model (a folder, or a name in the Hugging Face cache)
    ollama:NAME        an embedding model Ollama serves (nomic-embed-text, mxbai-embed-large, embeddinggemma)
    lmstudio:NAME      one LM Studio serves
    llamacpp-server[:NAME]  a llama.cpp server started with --embeddings
    openai:MODEL       an OpenAI-compatible /v1/embeddings endpoint (OpenAI's, or --base-url)
    hash               a deterministic lexical embedder (no model; fast)
"""

from __future__ import annotations

from .base import Embedder
from .hashing import HashingEmbedder

__all__ = ["Embedder", "HashingEmbedder", "embedder_name", "get_embedder"]


def embedder_name(spec: str | None) -> str:
    """The name ``get_embedder(spec)`` will have (the one stored with its vectors), without building it:
    ``minilm`` is ``st:all-MiniLM-L6-v2`` everywhere it is shown."""
    spec = (spec or "minilm").strip()
    if spec in ("minilm", "bundled", "default"):
        return "st:all-MiniLM-L6-v2"
    if spec == "mpnet":
        return "st:all-mpnet-base-v2"
    if spec == "embeddinggemma":
        return "st:embeddinggemma-300m"
    if spec.startswith("st:"):
        from pathlib import Path

        return f"st:{Path(spec[3:]).name}"
    if spec == "hash":
        return "hash-256"
    from .servers import split, vector_name

    if split(spec) is not None and spec.partition(":")[2]:
        return vector_name(spec)
    return spec


def get_embedder(spec: str | None = None, *, base_url: str | None = None, api_key: str | None = None,
                 server_url: str | None = None) -> Embedder:
    """``base_url`` and ``api_key``: the model's server's (``--base-url``, ``--api-key``), which ``openai:MODEL``
    shares; ``server_url`` (``--embedder-url``): the embedding server's own address, which wins for both; without
    it a server embedder goes to its own preset's address (``$OLLAMA_HOST`` for Ollama)."""
    from ..errors import ConfigError

    spec = (spec or "minilm").strip()
    if spec in ("minilm", "bundled", "default"):
        from .sentence_transformers import SentenceTransformerEmbedder

        return SentenceTransformerEmbedder()
    if spec in ("mpnet", "embeddinggemma"):
        from .sentence_transformers import SentenceTransformerEmbedder

        # EmbeddingGemma's queries through an int8 copy: its 24 layers make a float query slow, and int8 keeps
        # the recall
        return SentenceTransformerEmbedder(official=spec, query_int8=spec == "embeddinggemma")
    if spec.startswith("st:"):
        from .sentence_transformers import SentenceTransformerEmbedder

        return SentenceTransformerEmbedder(spec[3:])
    from .servers import ServerEmbedder, split

    if split(spec) is not None:  # (--base-url is the model's server, not this one's)
        return ServerEmbedder(spec, base_url=server_url)  # (the model's key is not for this server)
    if spec.startswith("openai:"):
        from .openai import OpenAIEmbedder

        return OpenAIEmbedder(spec[7:], base_url=server_url or base_url, api_key=api_key)
    if spec == "hash" or spec.startswith("hash-"):
        return HashingEmbedder(int(spec[5:]) if spec.startswith("hash-") else 256)
    raise ConfigError(f"unknown embedder '{spec}' (use minilm, mpnet, embeddinggemma, st:NAME, ollama:NAME, "
                      "lmstudio:NAME, llamacpp-server, openai:MODEL or hash)")
