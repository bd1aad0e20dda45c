"""Long-term memory (the cell state c_t): every past paragraph, on disk, searched by meaning.

Unlike the reference demo, which re-embeds the whole story at every step, each paragraph is embedded
exactly once, when it is accepted, and its vectors are stored beside it. Retrieval searches only the
paragraphs on the path to the current node (a sibling branch never leaks in), skips the ones already
in the prompt, and fuses dense similarity with BM25 keyword search (dense MiniLM is weakest on the
names of characters and places, which is where keywords are strongest).

Paragraphs longer than the embedder reads are cut into chunks; a paragraph scores as its best chunk.
"""

from __future__ import annotations

import re
import threading
from typing import Literal

import numpy as np

from .embeddings.base import Embedder
from .story import Retrieved
from .store.base import StoryStore

RetrievalMode = Literal["hybrid", "dense", "bm25"]

_SENTENCE = re.compile(r"(?<=[.!?…。！？])\s+")
_WORD = re.compile(r"\w+", re.UNICODE)
_STOPWORDS = set(
    "a an and are as at be but by for from has have he her his in into is it its of on or she that the their "
    "them then there they this to was were will with you your what when where which who why how not no".split()
)
RRF_K = 60  # reciprocal-rank-fusion constant (Cormack et al. 2009)


def chunk_paragraph(text: str, max_words: int) -> list[str]:
    """Split at sentence ends into chunks of at most ``max_words`` words (long sentences are cut)."""
    chunks: list[str] = []
    current: list[str] = []
    for sentence in _SENTENCE.split(text.strip()):
        words = sentence.split()
        while len(words) > max_words:  # one sentence longer than a whole chunk
            if current:
                chunks.append(" ".join(current))
                current = []
            chunks.append(" ".join(words[:max_words]))
            words = words[max_words:]
        if len(current) + len(words) > max_words and current:
            chunks.append(" ".join(current))
            current = []
        current.extend(words)
    if current or not chunks:
        chunks.append(" ".join(current))
    return chunks


def keyword_terms(text: str, max_terms: int = 32) -> list[str]:
    """The distinctive words of ``text``, for keyword search (each store quotes them its own way)."""
    terms: list[str] = []
    for word in _WORD.findall(text.lower()):
        if len(word) > 2 and word not in _STOPWORDS and word not in terms:
            terms.append(word)
    return terms[:max_terms]


def _members(universe: np.ndarray, items: np.ndarray) -> np.ndarray:
    """For each of ``items``, whether it is in ``universe`` (non-negative ints): a bitmap, no sorting."""
    if len(items) == 0:
        return np.zeros(0, dtype=bool)
    size = int(max(items.max(), universe.max() if len(universe) else 0)) + 1
    bitmap = np.zeros(size, dtype=bool)
    bitmap[universe] = True
    return bitmap[items]


class _Vectors:
    """A story's cached vectors in buffers that double when full: adding a step's vectors is
    amortised O(1), not a copy of the whole matrix (measured: 29 ms at 100k rows, 1.2 s at 1M)."""

    def __init__(self) -> None:
        self._seqs = np.empty(0, dtype=np.int64)
        self._matrix = np.empty((0, 0), dtype=np.float32)
        self.size = 0
        self.last_rowid = 0

    @property
    def seqs(self) -> np.ndarray:
        return self._seqs[: self.size]

    @property
    def matrix(self) -> np.ndarray:
        return self._matrix[: self.size]

    def append(self, seqs: np.ndarray, matrix: np.ndarray, last_rowid: int) -> None:
        self.last_rowid = last_rowid
        n = len(seqs)
        if n == 0:
            return
        if self.size + n > len(self._seqs) or self._matrix.shape[1] != matrix.shape[1]:
            capacity = max(2 * len(self._seqs), self.size + n, 64)
            grown_seqs = np.empty(capacity, dtype=np.int64)
            grown = np.empty((capacity, matrix.shape[1]), dtype=np.float32)
            grown_seqs[: self.size] = self.seqs
            if self.size:
                grown[: self.size] = self.matrix
            self._seqs, self._matrix = grown_seqs, grown  # views handed out before stay valid
        self._seqs[self.size : self.size + n] = seqs
        self._matrix[self.size : self.size + n] = matrix
        self.size += n


class LongTermMemory:
    def __init__(
        self, store: StoryStore, embedder: Embedder, mode: RetrievalMode = "hybrid", chunk_words: int | None = None
    ):
        self.store = store
        self.embedder = embedder
        self.mode = mode
        # Smaller chunks find single-sentence facts better (bench/needle.py: hybrid recall@2 0.48 -> 0.58 with
        # 40-word chunks) at ~1.5x embedding time and 3-4x vectors; the default is what the embedder reads.
        self.chunk_words = min(chunk_words or embedder.max_words, embedder.max_words)
        self.embedded_paragraphs = 0  # how many paragraphs this process has embedded (tests, benchmarks)
        self._cache: dict[str, _Vectors] = {}
        self._lock = threading.Lock()
        self._embed_lock = threading.Lock()

    def embed(self, paragraphs: dict[str, str]) -> dict[str, np.ndarray]:
        """Vectors for new paragraphs (node id -> chunk matrix), in one embedder call."""
        if not paragraphs:
            return {}
        ids, texts, owners = list(paragraphs), [], []
        for i, node_id in enumerate(ids):
            for chunk in chunk_paragraph(paragraphs[node_id], self.chunk_words):
                texts.append(chunk)
                owners.append(i)
        with self._embed_lock:  # local embedders are not safe to call from several threads at once
            matrix = self.embedder.embed(texts)
            self.embedded_paragraphs += len(ids)
        owners_arr = np.asarray(owners)
        return {node_id: matrix[owners_arr == i] for i, node_id in enumerate(ids)}

    def recall(
        self, story_id: str, path_seqs: np.ndarray, query: str, k: int, exclude_seqs: np.ndarray | None = None
    ) -> list[Retrieved]:
        """The ``k`` paragraphs on the path that are most related to ``query`` (usually the plan)."""
        if k <= 0 or not query.strip() or len(path_seqs) == 0:
            return []
        allowed = np.setdiff1d(path_seqs, exclude_seqs if exclude_seqs is not None else [], assume_unique=False)
        if len(allowed) == 0:
            return []
        rankings: list[list[int]] = []
        dense_scores: dict[int, float] = {}
        if self.mode in ("hybrid", "dense"):
            ranked, dense_scores = self._dense(story_id, allowed, query, limit=max(k * 4, 20))
            rankings.append(ranked)
        if self.mode in ("hybrid", "bm25"):
            rankings.append(self._keyword(story_id, allowed, query, limit=max(k * 4, 20)))
        fused: dict[int, float] = {}
        for ranked in rankings:
            for rank, seq in enumerate(ranked):
                fused[seq] = fused.get(seq, 0.0) + 1.0 / (RRF_K + rank + 1)
        best = sorted(fused, key=lambda s: (-fused[s], -dense_scores.get(s, 0.0)))[:k]
        rows = self.store.seq_to_node(best)
        score = dense_scores if self.mode == "dense" else fused
        return [Retrieved(rows[s][0], rows[s][1], rows[s][2], round(float(score[s]), 4)) for s in best if s in rows]

    # -- dense ------------------------------------------------------------------------------

    def _dense(self, story_id: str, allowed: np.ndarray, query: str, limit: int) -> tuple[list[int], dict[int, float]]:
        vectors = self._vectors(story_id)
        missing = allowed[~_members(vectors.seqs, allowed)]
        if len(missing):
            self._backfill(missing)
            vectors = self._vectors(story_id)
        if len(vectors.seqs) == 0:
            return [], {}
        mask = _members(allowed, vectors.seqs)
        if not mask.any():
            return [], {}
        with self._embed_lock:
            q = self.embedder.embed([query])[0]
        # score every row (one matmul, no copy of the matrix), then drop the rows off the path
        scores = vectors.matrix @ q
        scores[~mask] = -np.inf
        n = min(limit * 4, int(mask.sum()))
        top = np.argpartition(-scores, n - 1)[:n] if n < len(scores) else np.arange(len(scores))
        top = top[np.argsort(-scores[top])]
        ranked: list[int] = []
        best: dict[int, float] = {}
        for i in top:  # a paragraph counts once, with its best chunk
            if scores[i] == -np.inf:
                break
            seq = int(vectors.seqs[i])
            if seq not in best:
                best[seq] = float(scores[i])
                ranked.append(seq)
                if len(ranked) == limit:
                    break
        return ranked, best

    def _vectors(self, story_id: str) -> _Vectors:
        """This story's vectors, loaded once and then topped up with rows added since (by any process)."""
        with self._lock:
            cached = self._cache.setdefault(story_id, _Vectors())
            batch = self.store.load_vectors(story_id, self.embedder.name, cached.last_rowid)
            cached.append(batch.seqs, batch.matrix, batch.last_rowid)
            return cached

    def _backfill(self, seqs: np.ndarray) -> None:
        """Embed, once, any paragraph on the path that has no vector for this embedder yet
        (an imported tree, or a story written with another embedder)."""
        missing = self.store.missing_vectors(seqs, self.embedder.name)  # seqs: not in this process's cache
        if missing:
            self.store.add_vectors(self.embed(dict(missing)), self.embedder.name)

    # -- keywords ---------------------------------------------------------------------------

    def _keyword(self, story_id: str, allowed: np.ndarray, query: str, limit: int) -> list[int]:
        terms = keyword_terms(query)
        if not terms:
            return []
        allowed_set = set(allowed.tolist())
        hits = self.store.keyword_search(story_id, terms, limit=limit * 10)
        return [seq for seq, _ in hits if seq in allowed_set][:limit]
