"""How should dense and BM25 be combined? A sweep on the real-prose set of bench/retrieval_prose.py.

Offline: the passage vectors come from retrieval_prose's cache (run it first), the 84 plans are embedded once,
and BM25 is computed here over every term of the plan (FTS5's formula: k1=1.2, b=0.75, unicode61-like words),
so each variant is scored over all 1,093 paragraphs. R@5 over the same targets.

    flock /tmp/heavy.lock nice -n 10 .venv/bin/python bench/fusion_sweep.py [EMBEDDER_SPEC]
"""

from __future__ import annotations

import hashlib
import math
import re
import sys
from collections import Counter

import numpy as np
import retrieval_prose as rp


def main() -> None:
    from recurrentgpt.embeddings import get_embedder
    from recurrentgpt.memory import chunk_paragraph, keyword_terms

    spec = sys.argv[1] if len(sys.argv) > 1 else "minilm"
    paras = rp.cut_paragraphs(rp.load_novel(rp.NOVELS["emma"]))
    targets = rp.load_targets(paras)
    n = len(paras)
    cached = rp.CachedEmbedder(get_embedder(spec))
    rows, owner = [], []
    for i, p in enumerate(paras[:-1]):  # the last paragraph is the one a step would follow: never recalled
        for c in chunk_paragraph(p, cached.max_words):
            key = hashlib.sha1(c.encode()).hexdigest()
            if key not in cached.cache:
                sys.exit("error: run bench/retrieval_prose.py first (its passage cache is missing)")
            rows.append(cached.cache[key])
            owner.append(i)
    matrix, owner = np.stack(rows), np.array(owner)
    queries = [(t["paragraph"], kind, t[kind]) for t in targets for kind in ("paraphrase", "by_name")]
    qvecs = np.stack([cached.embed_query(q) for _, _, q in queries])

    tfs = [Counter(re.findall(r"\w+", p.lower())) for p in paras]
    lengths = np.array([sum(t.values()) for t in tfs])
    df = Counter(w for t in tfs for w in t)

    def bm25(q: str) -> np.ndarray:
        s = np.zeros(n)
        for w in keyword_terms(q):
            if w in df:
                idf = max(math.log((n - df[w] + 0.5) / (df[w] + 0.5)), 1e-6)
                for d in range(n):
                    f = tfs[d].get(w)
                    if f:
                        s[d] += idf * f * 2.2 / (f + 1.2 * (0.25 + 0.75 * lengths[d] / lengths.mean()))
        return s

    def dense(qv: np.ndarray) -> np.ndarray:
        best = np.full(n, -1.0)
        np.maximum.at(best, owner, matrix @ qv)
        return best

    D = {q: dense(v) for (_, _, q), v in zip(queries, qvecs)}
    B = {q: bm25(q) for _, _, q in queries}

    def rrf(q: str) -> np.ndarray:
        s = np.zeros(n)
        for sc, keep in ((D[q], lambda d: True), (B[q], lambda d: B[q][d] > 0)):
            for r, d in enumerate(np.argsort(-sc)[:20]):
                if keep(d):
                    s[d] += 1 / (61 + r)
        return s

    variants = {"dense": lambda q: D[q], "bm25": lambda q: B[q], "rank fusion (rrf)": rrf}
    for w in (0.02, 0.05, 0.1, 0.2, 0.3):
        variants[f"cosine + {w} x bm25 / log N"] = lambda q, w=w: D[q] + w * B[q] / math.log(n)
    print(f"{spec}: R@5 over {len(targets)} targets (±1: a neighbour counts)")
    for label, fn in variants.items():
        got = {"paraphrase": [], "by_name": []}
        near = []
        for tgt, kind, q in queries:
            s = fn(q).copy()
            s[n - 1] = -1e9
            top = np.argsort(-s)[:5]
            got[kind].append(tgt in top)
            near.append(any(abs(int(t) - tgt) <= 1 for t in top))
        every = got["paraphrase"] + got["by_name"]
        print(f"  {label:30s} paraphrase {np.mean(got['paraphrase']):.2f}  by name {np.mean(got['by_name']):.2f}  "
              f"all {np.mean(every):.2f} (±1 {np.mean(near):.2f})")


if __name__ == "__main__":
    main()
