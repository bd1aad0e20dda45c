"""The one small interface every embedder implements."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np


class Embedder(ABC):
    #: identifies the vector space: vectors of different names are never compared
    name: str = "embedder"
    #: how many words one text may have before the embedder stops reading (chunks are cut to fit)
    max_words: int = 150

    @abstractmethod
    def embed(self, texts: list[str]) -> np.ndarray:
        """Return float32 vectors of shape (len(texts), dim), L2-normalised (passages: paragraphs, chunks)."""

    def embed_query(self, text: str) -> np.ndarray:
        """The vector of one search query (a plan). Retrieval models that embed queries differently
        (a prefix, fewer threads for a single short text) override this."""
        return self.embed([text])[0]


def normalise(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.maximum(norms, 1e-12)
