"""Embedders a writer's own server runs: ``--embedder ollama:nomic-embed-text``, ``lmstudio:NAME``,
``llamacpp-server[:NAME]`` (the same presets and addresses as the models: models/presets.py).

    Ollama             POST /api/embed {"model", "input": [...]}  -> {"embeddings": [[...], ...]}  ($OLLAMA_HOST)
    LM Studio          POST /v1/embeddings (OpenAI's form)
    llama.cpp server   POST /v1/embeddings (started with --embeddings)

Vectors are filed under the embedder's name (``ollama:nomic-embed-text``), so changing the embedder never mixes
vector spaces; a llama.cpp server named without a model is keyed by the model its /v1/models lists, read on first
use. Retrieval models trained with a query and a document prefix get them, by family (their model cards):
nomic-embed-text's ``search_query: ``/``search_document: ``, EmbeddingGemma's ``task: search result | query: ``/
``title: none | text: ``, mxbai-embed-large's and snowflake-arctic-embed's query instruction. No key is sent
unless --api-key names one for this server.
"""

from __future__ import annotations

from pathlib import PurePath

import numpy as np

from ..errors import ConfigError, ModelError, RejectedRequest
from ..models.http import HTTPClient, server_root
from ..models.presets import PRESETS
from .base import Embedder, normalise

QUERY_INSTRUCTION = "Represent this sentence for searching relevant passages: "
# family (a substring of the model's name) -> (query prefix, document prefix)
PREFIXES = {
    "nomic-embed": ("search_query: ", "search_document: "),
    "embeddinggemma": ("task: search result | query: ", "title: none | text: "),
    "mxbai-embed-large": (QUERY_INSTRUCTION, ""),
    "snowflake-arctic-embed": (QUERY_INSTRUCTION, ""),
}
SERVERS = ("ollama", "lmstudio", "llamacpp-server")


def prefixes(model: str) -> tuple[str, str]:
    name = model.lower()
    return next((p for family, p in PREFIXES.items() if family in name), ("", ""))


def split(spec: str) -> tuple[str, str] | None:
    """``ollama:nomic-embed-text`` -> ("ollama", "nomic-embed-text"); None when the spec names no server."""
    server, _, name = spec.partition(":")
    return (server, name.strip()) if server in SERVERS else None


def vector_name(spec: str) -> str:
    """The name vectors are filed under (``:latest`` is Ollama's default tag, so it names the same model)."""
    server, name = split(spec) or ("", spec)
    if server == "ollama":
        name = name.removesuffix(":latest")
    return f"{server}:{name}" if name else server


class ServerEmbedder(Embedder):
    def __init__(self, spec: str, base_url: str | None = None, api_key: str | None = None, timeout: float = 60.0):
        parsed = split(spec)
        if parsed is None:
            raise ConfigError(f"unknown embedding server in '{spec}' (use {', '.join(SERVERS)})")
        self.server, self.model = parsed
        if not self.model and self.server != "llamacpp-server":
            raise ConfigError(f"name the embedding model: --embedder {self.server}:MODEL (as the server lists it)")
        if base_url:
            address = base_url
        elif self.server == "ollama":
            from ..models.ollama import default_address

            address = default_address()[0]
        else:
            address = PRESETS[self.server].base_url
        self.native = self.server == "ollama"
        self.client = HTTPClient(server_root(address) if self.native else address, api_key, timeout=timeout)
        if self.native:
            from ..models.ollama import ADDRESS_HINT

            self.client.address_hint = ADDRESS_HINT
        self._name = vector_name(spec) if self.model else ""
        self.query_prefix, self.document_prefix = prefixes(self.model)
        self.max_words = 300

    @property
    def name(self) -> str:  # type: ignore[override]
        """``llamacpp-server`` alone: keyed by the model the server lists (read once), so another GGUF behind the
        same address never shares its vectors."""
        if not self._name:
            listing = self.client.get_json("/models")
            rows = listing.get("data") if isinstance(listing, dict) else None
            if not rows or not isinstance(rows[0], dict) or not rows[0].get("id"):
                raise ModelError(f"{self.client.base_url}/models names no model to key the vectors by: "
                                 "use --embedder llamacpp-server:NAME")
            self.model = PurePath(str(rows[0]["id"])).name
            self.query_prefix, self.document_prefix = prefixes(self.model)
            self._name = f"llamacpp-server:{self.model}"
        return self._name

    def _embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        model = self.model or self.name.partition(":")[2]
        try:
            if self.native:
                data = self.client.post_json("/api/embed", {"model": model, "input": texts})
                rows = data.get("embeddings")
            else:
                data = self.client.post_json("/embeddings", {"model": model, "input": texts})
                rows = [r.get("embedding") for r in sorted(data.get("data") or [], key=lambda d: d.get("index", 0))]
        except RejectedRequest as e:
            raise self._explain(e) from None
        if not isinstance(rows, list) or len(rows) != len(texts) or not all(isinstance(r, list) and r for r in rows):
            raise ModelError(f"{self.client.base_url} answered the embedding request without {len(texts)} vectors")
        return normalise(np.array(rows, dtype=np.float32))

    def _explain(self, error: RejectedRequest) -> Exception:
        text = str(error).lower()
        if self.server == "ollama" and error.status == 404:
            return ConfigError(f"Ollama has no embedding model '{self.model}': `ollama pull {self.model}`")
        if self.server == "llamacpp-server" and ("embedding" in text and ("support" in text or "enable" in text)):
            return ConfigError("the llama.cpp server was not started for embeddings: restart it with --embeddings")
        return error

    def embed(self, texts: list[str]) -> np.ndarray:
        return self._embed([self.document_prefix + t for t in texts])

    def embed_query(self, text: str) -> np.ndarray:
        return self._embed([self.query_prefix + text])[0]
