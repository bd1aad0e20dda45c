"""Embeddings from any OpenAI-compatible `/v1/embeddings` endpoint."""

from __future__ import annotations

import numpy as np

from ..models.http import HTTPClient
from .base import Embedder, normalise


class OpenAIEmbedder(Embedder):
    def __init__(self, model: str, base_url: str | None = None, api_key: str | None = None, timeout: float = 60):
        self.client = HTTPClient(base_url=base_url, api_key=api_key, timeout=timeout)
        self.model = model
        self.name = f"openai:{model}"
        self.max_words = 300

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        data = self.client.post_json("/embeddings", {"model": self.model, "input": texts})
        rows = sorted(data.get("data", []), key=lambda d: d.get("index", 0))
        return normalise(np.array([r["embedding"] for r in rows], dtype=np.float32))
