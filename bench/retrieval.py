"""Retrieval latency (p50/p99) and memory over a story path of 10k, 100k and 1M paragraphs.

The default store and memory: SQLiteStore + LongTermMemory (hybrid: numpy dense search + FTS5 BM25,
fused by reciprocal rank), top-2 as in the paper, the query embedded by the real all-MiniLM-L6-v2.
Each size runs in its own process so its RSS is its own. One query is split into:

    path        store.path_seqs: the node's ancestors (a lineage cached by the store since 38e35f5;
                a recursive CTE before; recent paths are cached too, so a repeated recall from
                the same head finds it: the first walk is recorded apart, as path_cold_ms)
    backfill    store.missing_vectors: the check for path paragraphs without a vector
    embed       embedding the query (plan) with MiniLM
    bm25        store.keyword_search (FTS5)
    dense       the rest of LongTermMemory.recall: numpy masks, matmul, top-k, fusion

plus, for scale, a bare numpy matmul + argpartition over the same matrix ("floor").
The stored vectors are a few hundred real MiniLM vectors reused with small perturbations.

    nice -n 10 .venv/bin/python bench/retrieval.py            # 10k, 100k, 1M (~15 min the first time)
    nice -n 10 .venv/bin/python bench/retrieval.py --quick    # 10k, 100k (~2 min)
    ... bench/retrieval.py --embedder embeddinggemma --sizes 10000 --out retrieval_embeddinggemma_10k
                                                         # another embedder (its own cached story; ~4 min)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np
import wordbank
from _common import (
    PLOTS,
    RESULTS,
    WORK,
    Probe,
    build_chain,
    fill_vectors,
    ms,
    pct,
    peak_rss_mib,
    plt,
    real_base_vectors,
    rss_mib,
    table,
    timed,
    wait_for_quiet,
    write_results,
)

SENTENCES = 8
TOP_K = 2


def paragraph(i: int) -> str:
    return wordbank.paragraph(i, SENTENCES, seed=1)


def schema_fingerprint() -> str:
    import hashlib

    from recurrentgpt.store.schema import MIGRATIONS

    # a Migration's repr holds every statement it runs, for every dialect
    return hashlib.sha1(repr(MIGRATIONS).encode()).hexdigest()[:8]


def child(n: int, queries: int, spec: str) -> dict:
    from recurrentgpt.embeddings import get_embedder
    from recurrentgpt.memory import LongTermMemory, vector_key
    from recurrentgpt.store import SQLiteStore

    embedder = get_embedder(spec)
    embedder.embed(["warm up"])
    embedder.embed_query("warm up")  # (an int8 query model is made on the first query)
    key = vector_key(embedder)  # what the memory files vectors under (the embedder and its chunk size)
    # a cached story, rebuilt when the schema changes; another embedder's vectors have another file
    suffix = "" if spec == "minilm" else "-" + key.replace(":", "_").replace("/", "_")
    db = WORK / f"retrieval-{n}-{schema_fingerprint()}{suffix}.db"
    build_s = 0.0
    if not db.exists():
        base = real_base_vectors(embedder, 300, paragraph)
        tmp = db.with_suffix(".building")
        for suffix in ("", "-wal", "-shm"):
            tmp.with_name(tmp.name + suffix).unlink(missing_ok=True)
        store = SQLiteStore(tmp)
        build_s, _ = timed(lambda: build_chain(store, "s", n, paragraph, fill_vectors(base, n), key))
        store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        store.close()
        tmp.rename(db)
    store = SQLiteStore(db)
    head = store.get_story("s").head_id
    memory = LongTermMemory(store, embedder, "hybrid")
    assert memory.vector_key == key
    rss_before = rss_mib()

    probe = Probe()
    for method in ("missing_vectors", "load_vectors", "keyword_search", "seq_to_node", "path_seqs"):
        probe.wrap(store, method, method)
    probe.wrap(embedder, "embed", "embed")
    probe.wrap(embedder, "embed_query", "embed")  # (the model's own embed_query does not call embed)

    path_cold_s, path = timed(lambda: store.path_seqs(head))  # the first walk from the head: nothing cached yet
    first_s, _ = timed(lambda: memory.recall("s", path, wordbank.plan(0), TOP_K, exclude_seqs=path[:1]))
    first = probe.take()
    rss_loaded = rss_mib()

    rows = []
    for q in range(queries):
        plan = wordbank.plan(q + 1)
        row = {}
        for mode in ("hybrid", "dense"):
            memory.mode = mode
            started = time.perf_counter()
            path = store.path_seqs(head)
            hits = memory.recall("s", path, plan, TOP_K, exclude_seqs=path[:1])
            total = time.perf_counter() - started
            parts = probe.take()
            assert len(hits) == TOP_K
            accounted = sum(parts.values())
            row[mode] = {
                "total": total,
                "path": parts.get("path_seqs", 0.0),
                "backfill": parts.get("missing_vectors", 0.0),
                "embed": parts.get("embed", 0.0),
                "bm25": parts.get("keyword_search", 0.0),
                "store_other": parts.get("load_vectors", 0.0) + parts.get("seq_to_node", 0.0),
                "dense": max(0.0, total - accounted),
            }
        rows.append(row)
    memory.mode = "hybrid"

    # the floor: exact top-k by one matmul over the whole matrix (no path mask, no copy)
    batch = store.load_vectors("s", key)
    matrix = batch.matrix
    matrix_dim = matrix.shape[1]
    floor = []
    for q in range(queries):
        v = embedder.embed_query(wordbank.plan(q + 1))
        t, _ = timed(lambda matrix=matrix, v=v: np.argpartition(-(matrix @ v), TOP_K)[:TOP_K])
        floor.append(t)
    del batch, matrix

    def stats(mode: str) -> dict:
        out = {}
        for key in rows[0][mode]:
            xs = [r[mode][key] for r in rows]
            out[key] = {"p50_ms": ms(pct(xs, 50)), "p99_ms": ms(pct(xs, 99))}
        return out

    return {
        "n": n,
        "queries": queries,
        "build_s": round(build_s, 1),
        "db_mib": round(sum(p.stat().st_size for p in WORK.glob(db.name + "*")) / 2**20, 1),
        "path_cold_ms": ms(path_cold_s),
        "first_recall_ms": ms(first_s),
        "first_recall_parts_ms": {k: ms(v) for k, v in first.items()},
        "embedder": embedder.name,
        "query_precision": getattr(embedder, "query_precision", "float32"),
        "matrix_mib": round(n * matrix_dim * 4 / 2**20, 1),
        "rss_mib_before_load": round(rss_before, 1),
        "rss_mib_after_load": round(rss_loaded, 1),
        "peak_rss_mib": round(peak_rss_mib(), 1),
        "hybrid": stats("hybrid"),
        "dense": stats("dense"),
        "floor_matmul": {"p50_ms": ms(pct(floor, 50)), "p99_ms": ms(pct(floor, 99))},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10k and 100k only")
    parser.add_argument("--plot-only", action="store_true", help="redraw the plot from bench/results/retrieval.json")
    parser.add_argument("--embedder", default="minilm", help="embedder spec (default: minilm)")
    parser.add_argument("--sizes", help="comma-separated story sizes (default: 10000,100000,1000000)")
    parser.add_argument("--out", default="retrieval", help="results file name in bench/results")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--queries", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.plot_only:
        plot(json.loads((RESULTS / "retrieval.json").read_text())["sizes"])
        return
    if args.child:
        print("RESULT " + json.dumps(child(args.child, args.queries, args.embedder)))
        return

    plan = [(10_000, 30), (100_000, 10)] if args.quick else [(10_000, 50), (100_000, 20), (1_000_000, 5)]
    if args.sizes:
        queries = {10_000: 50, 100_000: 20, 1_000_000: 5}
        plan = [(int(n), queries.get(int(n), 20)) for n in args.sizes.split(",")]
    results = []
    for n, queries in plan:
        load_before = wait_for_quiet()
        print(f"n={n:,}: building (first time) and querying {queries}x in a fresh process…", flush=True)
        started = time.perf_counter()
        proc = subprocess.run([sys.executable, __file__, "--child", str(n), "--queries", str(queries),
                               "--embedder", args.embedder],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            print(proc.stderr[-3000:])
            raise SystemExit(f"the n={n} run failed")
        line = next(out for out in proc.stdout.splitlines() if out.startswith("RESULT "))
        r = json.loads(line[7:])
        r["wall_s"] = round(time.perf_counter() - started, 1)
        r["load_average_before"] = load_before
        results.append(r)
        h = r["hybrid"]
        print(f"  hybrid p50 {h['total']['p50_ms']:.1f} ms p99 {h['total']['p99_ms']:.1f} ms; "
              f"dense p50 {r['dense']['total']['p50_ms']:.1f} ms; RSS {r['rss_mib_after_load']:.0f} MiB "
              f"(matrix {r['matrix_mib']:.0f} MiB); {r['wall_s']} s", flush=True)

    rows = []
    for r in results:
        h, d = r["hybrid"], r["dense"]
        rows.append([f"{r['n']:,}", h["total"]["p50_ms"], h["total"]["p99_ms"], d["total"]["p50_ms"],
                     d["total"]["p99_ms"], h["path"]["p50_ms"], h["backfill"]["p50_ms"], h["embed"]["p50_ms"],
                     h["bm25"]["p50_ms"], h["dense"]["p50_ms"], r["floor_matmul"]["p50_ms"], r["matrix_mib"],
                     r["rss_mib_after_load"], r["first_recall_ms"]])
    print()
    print(table(["paragraphs on path", "hybrid p50 ms", "hybrid p99 ms", "dense p50 ms", "dense p99 ms",
                 "path p50", "backfill check p50", "query embed p50", "bm25 p50", "dense+fusion p50",
                 "bare matmul p50", "matrix MiB", "RSS MiB", "first recall ms (loads vectors)"], rows))
    write_results(args.out, {"quick": args.quick, "top_k": TOP_K, "sentences_per_paragraph": SENTENCES,
                             "embedder": args.embedder, "sizes": results})

    if args.out == "retrieval":
        plot(results)


def plot(results: list[dict]) -> None:
    pyplot = plt()
    fig, ax = pyplot.subplots(figsize=(7.5, 4.2))
    parts = ["path", "backfill", "embed", "bm25", "dense", "total"]
    labels = ["path\n(store.path_seqs)", "backfill\ncheck", "query\nembed", "BM25\n(FTS5)", "dense+fusion\n(numpy)",
              "whole\nrecall"]
    x = np.arange(len(parts))
    width = 0.8 / len(results)
    for i, r in enumerate(results):
        vals = [max(r["hybrid"][p]["p50_ms"], 0.01) for p in parts]
        ax.bar(x + (i - (len(results) - 1) / 2) * width, vals, width, label=f"{r['n']:,} paragraphs")
    ax.set_xticks(x, labels, fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("ms (p50)")
    ax.set_title("One hybrid recall (top-2), split by part")
    ax.grid(True, axis="y", which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(PLOTS / "retrieval.png", dpi=110)
    print(f"wrote {PLOTS / 'retrieval.png'}")


if __name__ == "__main__":
    main()
