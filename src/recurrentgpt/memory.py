"""Long-term memory (the cell state c_t): every past paragraph, on disk, searched by meaning.

Unlike the reference demo, which re-embeds the whole story at every step, each paragraph is embedded
exactly once, when it is accepted, and its vectors are stored beside it. Retrieval searches only the
paragraphs on the path to the current node (a sibling branch never leaks in), skips the ones already
in the prompt, and fuses dense similarity with BM25 keyword search (dense MiniLM is weakest on the
names of characters and places, which is where keywords are strongest).

Paragraphs longer than the embedder reads are cut into chunks; a paragraph's synopsis (one or two sentences,
written by its step or a backfill) is embedded beside them; a paragraph scores as its best vector. A recalled
paragraph longer than the recall's ``passage_words`` is shown as its passage: the chunk that matched best,
widened with its neighbours to that length (a model that writes twice the length asked for would otherwise
double the prompt, and with it the wait for the first word).
Vectors are stored under a key naming the embedder *and* the chunk size (``vector_key``): a library
embedded one way is re-embedded, never mixed, when either changes.
"""

from __future__ import annotations

import re
import threading
from typing import Callable, Literal

import numpy as np

from .embeddings.base import Embedder
from .store.base import StoryStore
from .story import Retrieved

# hybrid: rank fusion; weighted: cosine + IDF-weighted BM25
RetrievalMode = Literal["hybrid", "weighted", "dense", "bm25"]
#: called as embedding proceeds, with (paragraphs done, paragraphs to do)
OnProgress = Callable[[int, int], None]
EMBED_BATCH = 64  # paragraphs per embedder call when reporting progress

_SENTENCE = re.compile(r"(?<=[.!?…。！？])\s+")
_WORD = re.compile(r"\w+", re.UNICODE)
_STOPWORDS = set(
    "a an and are as at be but by for from has have he her his in into is it its of on or she that the their "
    "them then there they this to was were will with you your what when where which who why how not no".split()
)
RRF_K = 60  # reciprocal-rank-fusion constant (Cormack et al. 2009), for retrieval="hybrid"
BM25_WEIGHT = 0.05  # weighted: a rare name (BM25 ~ log N) adds ~0.05 to a cosine; 0.02-0.3 measured on real prose


def vector_key(embedder: Embedder, chunk_words: int | None = None) -> str:
    """What the store files vectors under: the embedder, and the chunk size when it is not the embedder's own
    (so the key of a default library is unchanged)."""
    chunk_words = min(chunk_words or embedder.max_words, embedder.max_words)
    if chunk_words == embedder.max_words:
        return embedder.name
    return f"{embedder.name}/chunks-{chunk_words}"


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


def passage(text: str, chunk_words: int, best_chunk: int | None, max_words: int | None, query: str = "") -> str:
    """What a prompt shows of a recalled paragraph: all of it when it has at most ``max_words`` words (or no
    limit is given); else its chunk ``best_chunk`` (unknown: the chunk sharing most keywords with ``query``),
    widened with the chunks after and before it in turn while it stays within ``max_words``. At least that one
    chunk is shown, so a chunk longer than ``max_words`` (what the embedder reads) is shown whole; "…" marks a
    cut."""
    if not max_words or len(text.split()) <= max_words:
        return text
    chunks = chunk_paragraph(text, chunk_words)
    sizes = [len(chunk.split()) for chunk in chunks]
    best = best_chunk
    if best is None or not 0 <= best < len(chunks):
        terms = set(keyword_terms(query))
        best = max(range(len(chunks)), key=lambda i: len(terms & set(keyword_terms(chunks[i], max_terms=10**6))))
    first = last = best
    size = sizes[best]
    grown = True
    while grown:
        grown = False
        for i in (last + 1, first - 1):  # what follows the matched moment first, then what led to it
            if 0 <= i < len(chunks) and size + sizes[i] <= max_words:
                first, last, size, grown = min(first, i), max(last, i), size + sizes[i], True
    shown = " ".join(chunks[first : last + 1])
    return ("… " if first > 0 else "") + shown + (" …" if last < len(chunks) - 1 else "")


def keyword_terms(text: str, max_terms: int = 32) -> list[str]:
    """The distinctive words of ``text``, for keyword search (each store quotes them its own way)."""
    terms: list[str] = []
    for word in _WORD.findall(text.lower()):
        if len(word) > 2 and word not in _STOPWORDS and word not in terms:
            terms.append(word)
    return terms[:max_terms]


def _lookup(bitmap: np.ndarray, seqs: np.ndarray) -> np.ndarray:
    """``bitmap[seqs]``, False for seqs past its end."""
    seqs = np.asarray(seqs, dtype=np.int64)
    inside = seqs < len(bitmap)
    if inside.all():
        return bitmap[seqs]
    out = np.zeros(len(seqs), dtype=bool)
    out[inside] = bitmap[seqs[inside]]
    return out


class _Allowed:
    """The paragraphs a recall may return: on the path and not excluded, as a bitmap indexed by seq.
    No sorting and no Python set: at 1M paragraphs each membership test is one numpy gather."""

    def __init__(self, path_seqs: np.ndarray, exclude_seqs: np.ndarray | None) -> None:
        path = np.asarray(path_seqs, dtype=np.int64)
        self.bitmap = np.zeros(int(path.max()) + 1 if len(path) else 0, dtype=bool)
        self.bitmap[path] = True
        excluded = np.asarray(exclude_seqs if exclude_seqs is not None else [], dtype=np.int64)
        self.excluded = np.unique(excluded[self.contains(excluded)]) if len(excluded) else excluded  # on the path
        self.bitmap[self.excluded] = False
        self.count = int(np.count_nonzero(self.bitmap))

    def contains(self, seqs: np.ndarray) -> np.ndarray:
        """For each of ``seqs`` (non-negative ints), whether it is allowed."""
        return _lookup(self.bitmap, seqs)

    def seqs(self) -> np.ndarray:
        return np.flatnonzero(self.bitmap)


class _Vectors:
    """A story's cached vectors in buffers that double when full: adding a step's vectors is
    amortised O(1), not a copy of the whole matrix (measured: 29 ms at 100k rows, 1.2 s at 1M)."""

    def __init__(self) -> None:
        self._seqs = np.empty(0, dtype=np.int64)
        self._chunks = np.empty(0, dtype=np.int64)
        self._matrix = np.empty((0, 0), dtype=np.float32)
        self.size = 0
        self.last_rowid = 0
        self._has = np.zeros(0, dtype=bool)  # _has[seq]: the paragraph has a row here (grows by doubling too)
        self.paragraphs = 0  # how many distinct paragraphs have rows

    @property
    def seqs(self) -> np.ndarray:
        return self._seqs[: self.size]

    @property
    def chunks(self) -> np.ndarray:
        return self._chunks[: self.size]

    @property
    def matrix(self) -> np.ndarray:
        return self._matrix[: self.size]

    def has(self, seqs: np.ndarray) -> np.ndarray:
        """For each of ``seqs`` (non-negative ints), whether it has a vector here."""
        return _lookup(self._has, seqs)

    def snapshot(self) -> "_Vectors":
        """The rows as they are now, which rows another thread appends later do not change: a recall reads
        the seqs, chunks, matrix and counts of one moment (taken under the cache's lock)."""
        view = _Vectors.__new__(_Vectors)
        view._seqs, view._chunks, view._matrix = self.seqs, self.chunks, self.matrix
        view.size, view.last_rowid, view.paragraphs = self.size, self.last_rowid, self.paragraphs
        view._has = self._has.copy()  # (appends set bits in place)
        return view

    def append(self, seqs: np.ndarray, chunks: np.ndarray, matrix: np.ndarray, last_rowid: int) -> None:
        self.last_rowid = last_rowid
        n = len(seqs)
        if n == 0:
            return
        if self.size + n > len(self._seqs) or self._matrix.shape[1] != matrix.shape[1]:
            capacity = max(2 * len(self._seqs), self.size + n, 64)
            grown_seqs = np.empty(capacity, dtype=np.int64)
            grown_chunks = np.empty(capacity, dtype=np.int64)
            grown = np.empty((capacity, matrix.shape[1]), dtype=np.float32)
            grown_seqs[: self.size] = self.seqs
            grown_chunks[: self.size] = self.chunks
            if self.size:
                grown[: self.size] = self.matrix
            # views handed out before stay valid
            self._seqs, self._chunks, self._matrix = grown_seqs, grown_chunks, grown
        self._seqs[self.size : self.size + n] = seqs
        self._chunks[self.size : self.size + n] = chunks
        self._matrix[self.size : self.size + n] = matrix
        self.size += n
        top = int(seqs.max()) + 1
        if top > len(self._has):
            grown_has = np.zeros(max(2 * len(self._has), top), dtype=bool)
            grown_has[: len(self._has)] = self._has
            self._has = grown_has
        self._has[seqs] = True
        self.paragraphs = int(np.count_nonzero(self._has))  # a chunk or synopsis of a known paragraph adds none


class LongTermMemory:
    def __init__(
        self, store: StoryStore, embedder: Embedder, mode: RetrievalMode = "weighted", chunk_words: int | None = None
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

    @property
    def vector_key(self) -> str:
        return vector_key(self.embedder, self.chunk_words)

    def embed(self, paragraphs: dict[str, str], on_progress: OnProgress | None = None) -> dict[str, np.ndarray]:
        """Vectors for new paragraphs (node id -> chunk matrix): one embedder call, or batches of
        EMBED_BATCH paragraphs with ``on_progress(done, total)`` after each."""
        if not paragraphs:
            return {}
        ids = list(paragraphs)
        step = EMBED_BATCH if on_progress else len(ids)
        out: dict[str, np.ndarray] = {}
        for start in range(0, len(ids), step):
            batch = ids[start : start + step]
            out.update(self._embed_chunks({node_id: paragraphs[node_id] for node_id in batch}, paragraphs=True))
            if on_progress:
                on_progress(start + len(batch), len(ids))
        return out

    def _embed_chunks(self, texts: dict[str, str], paragraphs: bool) -> dict[str, np.ndarray]:
        """Node id -> the matrix of its text's chunks, in one embedder call (``paragraphs``: count them)."""
        chunks, owners = [], []
        for i, node_id in enumerate(texts):
            for chunk in chunk_paragraph(texts[node_id], self.chunk_words):
                chunks.append(chunk)
                owners.append(i)
        with self._embed_lock:  # local embedders are not safe to call from several threads at once
            matrix = self.embedder.embed(chunks)
            if paragraphs:
                self.embedded_paragraphs += len(texts)
        owners_arr = np.asarray(owners)
        return {node_id: matrix[owners_arr == i] for i, node_id in enumerate(texts)}

    def backfill(self, seqs: np.ndarray, on_progress: OnProgress | None = None) -> int:
        """Embed, once, any of these paragraphs that has no vector under ``vector_key`` yet (an imported
        tree, a story written with another embedder or chunk size). Returns how many were embedded."""
        missing = self.store.missing_vectors(seqs, self.vector_key)
        if missing:
            self.store.add_vectors(self.embed(dict(missing), on_progress), self.vector_key)
        self.backfill_synopses(seqs)  # after the paragraphs': a node in the cache has its paragraph's vectors
        return len(missing)

    # -- synopses: "who does what, where", indexed beside the paragraph (plans are written like them) --------

    def embed_synopses(self, synopses: dict[str, str]) -> dict[str, np.ndarray]:
        """Vectors of paragraphs' synopses (node id -> matrix), stored at the paragraph's negative chunks."""
        written = {node_id: text for node_id, text in synopses.items() if text.strip()}
        return self._embed_chunks(written, paragraphs=False) if written else {}

    def backfill_synopses(self, seqs: np.ndarray) -> int:
        """Embed the synopses of these nodes that have none under ``vector_key`` yet; returns how many."""
        missing = self.store.missing_synopsis_vectors(seqs, self.vector_key)
        if missing:
            self.store.add_vectors(self.embed_synopses(dict(missing)), self.vector_key, synopsis=True)
        return len(missing)

    def recall(
        self, story_id: str, path_seqs: np.ndarray, query: str, k: int, exclude_seqs: np.ndarray | None = None,
        passage_words: int | None = None,
    ) -> list[Retrieved]:
        """The ``k`` paragraphs on the path that are most related to ``query`` (usually the plan), each with the
        passage a prompt shows of it: all of it, or with ``passage_words`` the part that matched best."""
        if k <= 0 or not query.strip() or len(path_seqs) == 0:
            return []
        allowed = _Allowed(path_seqs, exclude_seqs)
        if allowed.count == 0:
            return []
        limit = max(k * 4, 20)
        best_chunks: Callable[[list[int]], dict[int, int]] = lambda seqs: {}  # keywords alone do not say which chunk
        if self.mode == "weighted" and self.store.keyword_scores_are_bm25:
            fused, dense_scores, best_chunks = self._weighted(story_id, allowed, query, limit)
        else:
            rankings: list[list[int]] = []
            dense_scores = {}
            if self.mode in ("hybrid", "weighted", "dense"):
                ranked, dense_scores, _, best_chunks = self._dense(story_id, allowed, query, limit)
                rankings.append(ranked)
            if self.mode in ("hybrid", "weighted", "bm25"):
                rankings.append([seq for seq, _ in self._keyword(story_id, allowed, query, limit)])
            fused = {}
            for ranked in rankings:
                for rank, seq in enumerate(ranked):
                    fused[seq] = fused.get(seq, 0.0) + 1.0 / (RRF_K + rank + 1)
        best = sorted(fused, key=lambda s: (-fused[s], -dense_scores.get(s, 0.0)))[:k]
        rows = self.store.seq_to_node(best)
        score = dense_scores if self.mode == "dense" else fused
        chunks = best_chunks(best) if passage_words else {}
        return [Retrieved(rows[s][0], rows[s][1], rows[s][2], round(float(score[s]), 4),
                          passage(rows[s][2], self.chunk_words, chunks.get(s), passage_words, query))
                for s in best if s in rows]

    def _weighted(
        self, story_id: str, allowed: _Allowed, query: str, limit: int
    ) -> tuple[dict[int, float], dict[int, float], Callable[[list[int]], dict[int, int]]]:
        """Dense similarity plus BM25 scaled by a constant, not fused by rank: BM25 sums its terms' IDF, so a
        name found in 3 paragraphs moves a paragraph up a lot and a name found in 300 barely at all.
        (Reciprocal-rank fusion gave both the same vote, and on real prose common names outvoted dense.)"""
        ranked, dense_scores, score_of, best_chunks = self._dense(story_id, allowed, query, limit)
        hits = dict(self._keyword(story_id, allowed, query, limit))
        scale = BM25_WEIGHT / np.log(max(allowed.count, 2))  # BM25 of a term in one paragraph ~ log(paragraphs)
        dense_scores.update(score_of([s for s in hits if s not in dense_scores]))
        fused = {s: dense_scores.get(s, 0.0) + scale * hits.get(s, 0.0) for s in set(ranked) | set(hits)}
        return fused, dense_scores, best_chunks

    # -- dense ------------------------------------------------------------------------------

    def _dense(
        self, story_id: str, allowed: _Allowed, query: str, limit: int
    ) -> tuple[
        list[int], dict[int, float], Callable[[list[int]], dict[int, float]], Callable[[list[int]], dict[int, int]]
    ]:
        """The ``limit`` best paragraphs by their best vector, their scores, a scorer for any others, and which
        of their chunks matched best."""
        nothing: Callable[[list[int]], dict[int, float]] = lambda seqs: {}
        no_chunk: Callable[[list[int]], dict[int, int]] = lambda seqs: {}
        vectors = self._vectors(story_id)
        allowed_seqs = allowed.seqs()
        has = vectors.has(allowed_seqs)
        if not has.all():
            self.backfill(allowed_seqs[~has])  # not in this process's cache; the store knows which truly lack one
            vectors = self._vectors(story_id)
            has = vectors.has(allowed_seqs)
        if len(vectors.seqs) == 0:
            return [], {}, nothing, no_chunk
        # every cached paragraph is on the path (a story of one branch): no mask over all rows (a gather and a
        # masked write per row), only the rows of the few excluded paragraphs are dropped
        on_path = int(np.count_nonzero(has)) + int(np.count_nonzero(vectors.has(allowed.excluded)))
        if on_path == vectors.paragraphs:
            mask = None
            dropped = np.flatnonzero(np.isin(vectors.seqs, allowed.excluded)) if len(allowed.excluded) else []
            rows = len(vectors.seqs) - len(dropped)
        else:
            mask = allowed.contains(vectors.seqs)
            rows = int(np.count_nonzero(mask))
        if rows == 0:
            return [], {}, nothing, no_chunk
        with self._embed_lock:
            q = self.embedder.embed_query(query)
        # score every row (one matmul, no copy of the matrix), then drop the rows not allowed
        scores = vectors.matrix @ q
        if mask is None:
            scores[dropped] = -np.inf
        else:
            scores[~mask] = -np.inf
        n = min(limit * 4, rows)
        top = np.argpartition(scores, len(scores) - n)[len(scores) - n :] if n < len(scores) else np.arange(len(scores))
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

        def best_rows(seqs: list[int], paragraph_only: bool) -> dict[int, int]:
            """Each allowed one of ``seqs`` -> its best-scoring row, in one pass over the rows (``paragraph_only``:
            among its paragraph's chunks, leaving out its synopsis's vectors)."""
            wanted = np.zeros(len(allowed.bitmap), dtype=bool)
            chosen = np.asarray(seqs, dtype=np.int64)
            wanted[chosen[allowed.contains(chosen)]] = True
            rows = _lookup(wanted, vectors.seqs)
            if paragraph_only:
                rows &= vectors.chunks >= 0
            out: dict[int, int] = {}
            for i in np.flatnonzero(rows):
                seq = int(vectors.seqs[i])
                if seq not in out or scores[i] > scores[out[seq]]:
                    out[seq] = int(i)
            return out

        def score_of(seqs: list[int]) -> dict[int, float]:
            return {seq: float(scores[i]) for seq, i in best_rows(seqs, paragraph_only=False).items()}

        def best_chunks(seqs: list[int]) -> dict[int, int]:
            """Each paragraph's chunk that matched best (a synopsis's vectors hold no passage)."""
            return {seq: int(vectors.chunks[i]) for seq, i in best_rows(seqs, paragraph_only=True).items()}

        return ranked, best, score_of, best_chunks

    def _vectors(self, story_id: str) -> _Vectors:
        """This story's vectors, loaded once and then topped up with rows added since (by any process): a
        snapshot, so a recall's reads agree with each other while other threads recall and add."""
        with self._lock:
            cached = self._cache.setdefault(story_id, _Vectors())
            batch = self.store.load_vectors(story_id, self.vector_key, cached.last_rowid)
            cached.append(batch.seqs, batch.chunks, batch.matrix, batch.last_rowid)
            return cached.snapshot()

    # -- keywords ---------------------------------------------------------------------------

    def _keyword(self, story_id: str, allowed: _Allowed, query: str, limit: int) -> list[tuple[int, float]]:
        """(seq, BM25 score, larger is better) of the best keyword matches on the path."""
        terms = keyword_terms(query)
        if not terms:
            return []
        hits = self.store.keyword_search(story_id, terms, limit=limit * 10)
        if not hits:
            return []
        on_path = allowed.contains(np.fromiter((seq for seq, _ in hits), dtype=np.int64, count=len(hits)))
        # SQLite's bm25() is negative (smaller is better); PostgreSQL's ts_rank is positive
        return [(seq, abs(float(score))) for (seq, score), ok in zip(hits, on_path) if ok][:limit]
