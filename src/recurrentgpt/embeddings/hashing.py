"""A deterministic lexical embedder: hashed word and word-pair counts.

No model, no download, microseconds per text. The test suite and the scripted benchmarks use it for
speed; it is also a usable fallback for `--embedder hash` on machines without torch.
"""

from __future__ import annotations

import re
import zlib

import numpy as np

from .base import Embedder, normalise

_WORD = re.compile(r"\w+", re.UNICODE)


class HashingEmbedder(Embedder):
    def __init__(self, dim: int = 256):
        self.dim = dim
        self.name = f"hash-{dim}"
        self.max_words = 10_000

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            words = _WORD.findall(text.lower())
            for feature in words + [a + " " + b for a, b in zip(words, words[1:])]:
                h = zlib.crc32(feature.encode("utf-8"))
                out[row, h % self.dim] += 1.0 if (h >> 31) & 1 else -1.0
        return normalise(out)
