"""Embeddings from any OpenAI-compatible `/v1/embeddings` endpoint: OpenAI's (with $OPENAI_API_KEY, which goes
nowhere else), or the server ``base_url`` names (with the key given for it)."""

from __future__ import annotations

import numpy as np

from ..models.http import HTTPClient
from .base import Embedder, normalise


class OpenAIEmbedder(Embedder):
    def __init__(self, model: str, base_url: str | None = None, api_key: str | None = None, timeout: float = 60):
        from ..keys import refuse_foreign, resolve
        from ..models import address
        from ..models.presets import PRESETS

        url = address("openai:" + model, base_url)[0]  # type: ignore[index]
        key, source = resolve(PRESETS["openai"], url, api_key)
        refuse_foreign(PRESETS["openai"], url, key, source)
        self.client = HTTPClient(base_url=url, api_key=key, timeout=timeout)
        self.model = model
        self.name = f"openai:{model}"
        self.max_words = 300

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        data = self.client.post_json("/embeddings", {"model": self.model, "input": texts})
        rows = sorted(data.get("data", []), key=lambda d: d.get("index", 0))
        return normalise(np.array([r["embedding"] for r in rows], dtype=np.float32))
