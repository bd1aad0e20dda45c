"""Long-term memory cost per step as the story grows, ours vs the reference design.

Ours (what `Loom.step` does besides calling the model): reconstruct the node's path, recall the top-k
paragraphs for the plan (hybrid dense + BM25 over the path), embed the new paragraph once, write it.
Reference design (RecurrentGPT's demo): at every step, re-embed the *entire* long-term memory and the
plan, then take the top-k by cosine similarity.

Both use the real bundled embedder (all-MiniLM-L6-v2). The reference is measured where it finishes
in reasonable time and fitted (linear in n) beyond. Stories of 10k-100k paragraphs get word-bank text
and, for their stored vectors, a few hundred real MiniLM vectors reused with small perturbations
(see `_common.fill_vectors`); the new paragraph and the plan of each measured step are embedded for real.

    nice -n 10 .venv/bin/python bench/memory_cost.py            # ~6 min
    nice -n 10 .venv/bin/python bench/memory_cost.py --quick    # ~2 min
"""

from __future__ import annotations

import argparse
import shutil
import time

import numpy as np
import wordbank
from _common import (
    PLOTS,
    WORK,
    Probe,
    build_chain,
    fill_vectors,
    median,
    ms,
    plt,
    real_base_vectors,
    table,
    timed,
    wait_for_quiet,
    write_results,
)

SENTENCES = 8  # ~110 words: one MiniLM chunk, so both designs embed exactly one text per paragraph
TOP_K = 2  # the paper's


def paragraph(i: int) -> str:
    return wordbank.paragraph(i, SENTENCES, seed=1)


def ours(embedder, base: np.ndarray, n: int, steps: int) -> dict:
    from recurrentgpt.memory import LongTermMemory
    from recurrentgpt.store import SQLiteStore
    from recurrentgpt.story import Node

    folder = WORK / f"memory-cost-{n}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    store = SQLiteStore(folder / "library.db")
    build_s, ids = timed(lambda: build_chain(store, "s", n, paragraph, fill_vectors(base, n), embedder.name))
    memory = LongTermMemory(store, embedder, "hybrid")
    probe = Probe()
    for method in ("missing_vectors", "load_vectors", "keyword_search", "seq_to_node", "path_seqs", "add_nodes"):
        probe.wrap(store, method, method)
    probe.wrap(embedder, "embed", "embed")

    head = ids[-1]
    # one-time cost: the first recall loads the story's vectors into memory (cached afterwards)
    path = store.path_seqs(head)
    load_s, _ = timed(lambda: memory.recall("s", path, wordbank.plan(0), TOP_K, exclude_seqs=path[:1]))
    probe.take()

    rows = []
    for s in range(steps):
        plan = wordbank.plan(s + 1)
        text = paragraph(n + s)
        started = time.perf_counter()
        path = store.path_seqs(head)
        memory.recall("s", path, plan, TOP_K, exclude_seqs=path[:1])
        recall_parts = probe.take()
        vectors = memory.embed({f"new-{s}": text})
        node = Node(
            id=f"new-{s}", story_id="s", parent_id=head, depth=n + s, kind="step", plan=plan, paragraph=text,
            rationale="", short_memory="", plans=(), meta={}, created_at=time.time(),
        )
        commit_parts = probe.take()
        store.add_nodes("s", [node], vectors, embedder.name, move_head_from=head)
        total = time.perf_counter() - started
        commit_parts.update(probe.take())
        head = node.id
        store_in_recall = sum(recall_parts.get(k, 0.0)
                              for k in ("missing_vectors", "load_vectors", "keyword_search", "seq_to_node"))
        rows.append(
            {
                "total": total,
                "path": recall_parts.get("path_seqs", 0.0),
                "embed_query": recall_parts.get("embed", 0.0),
                "backfill_check": recall_parts.get("missing_vectors", 0.0),
                "keyword": recall_parts.get("keyword_search", 0.0),
                "store_other": recall_parts.get("load_vectors", 0.0) + recall_parts.get("seq_to_node", 0.0),
                "dense_numpy": 0.0,  # filled below
                "embed_paragraph": commit_parts.get("embed", 0.0),
                "write": commit_parts.get("add_nodes", 0.0),
                "_store_in_recall": store_in_recall,
            }
        )
    # dense numpy time = the rest of the step (recall minus the store and embedder calls inside it)
    for r in rows:
        accounted = r["path"] + r["embed_query"] + r["_store_in_recall"] + r["embed_paragraph"] + r["write"]
        r["dense_numpy"] = max(0.0, r["total"] - accounted)
        del r["_store_in_recall"]
    store.close()
    shutil.rmtree(folder, ignore_errors=True)
    summary = {k: ms(median(r[k] for r in rows)) for k in rows[0]}
    return {"n": n, "steps": steps, "build_s": round(build_s, 1), "first_recall_load_ms": ms(load_s),
            "median_ms": summary, "all_total_ms": [ms(r["total"]) for r in rows]}


def reference(embedder, n: int, repeats: int) -> dict:
    """The reference design's memory work for one step: embed all n paragraphs and the plan, cosine top-k."""
    texts = [paragraph(i) for i in range(n)]
    times = []
    for r in range(repeats):
        plan = wordbank.plan(100 + r)
        started = time.perf_counter()
        matrix = embedder.embed(texts)  # the whole long-term memory, again
        q = embedder.embed([plan])[0]
        top = np.argsort(-(matrix @ q))[:TOP_K]
        times.append(time.perf_counter() - started)
        assert len(top) == TOP_K
    return {"n": n, "repeats": repeats, "median_s": round(median(times), 3), "all_s": [round(t, 3) for t in times]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer repeats (~2 min)")
    args = parser.parse_args()
    sizes = [100, 1_000, 10_000] if args.quick else [100, 1_000, 10_000, 100_000]
    ref_plan = [(100, 3), (300, 1)] if args.quick else [(100, 3), (300, 2), (1_000, 2)]
    steps = 5 if args.quick else 10

    load_before = wait_for_quiet()
    from recurrentgpt.embeddings import get_embedder

    embedder = get_embedder("minilm")
    load_s, _ = timed(lambda: embedder.embed(["warm up"]))
    print(f"MiniLM loaded in {load_s:.1f} s")
    base = real_base_vectors(embedder, 300, paragraph)

    ours_rows = []
    for n in sizes:
        r = ours(embedder, base, n, steps)
        ours_rows.append(r)
        print(f"ours n={n:>7,}: {r['median_ms']['total']:8.1f} ms/step  (built in {r['build_s']} s) {r['median_ms']}")

    ref_rows = []
    for n, repeats in ref_plan:
        r = reference(embedder, n, repeats)
        ref_rows.append(r)
        print(f"reference n={n:>6,}: {r['median_s']:8.2f} s/step  {r['all_s']}")

    # least-squares fit t = a + b n over the measured reference points
    xs = np.array([r["n"] for r in ref_rows], float)
    ys = np.array([r["median_s"] for r in ref_rows], float)
    b, a = np.polyfit(xs, ys, 1)
    per_paragraph_ms = b * 1000

    def ref_at(n: int) -> tuple[float, str]:
        for r in ref_rows:
            if r["n"] == n:
                return r["median_s"], "measured"
        return a + b * n, "fitted"

    rows, summary = [], []
    for r in ours_rows:
        n = r["n"]
        ref_s, how = ref_at(n)
        ours_s = r["median_ms"]["total"] / 1000
        ratio = ref_s / ours_s
        summary.append({"n": n, "ours_ms": r["median_ms"]["total"], "reference_s": round(ref_s, 3),
                        "reference": how, "ratio": round(ratio, 1)})
        rows.append([f"{n:,}", r["median_ms"]["total"],
                     r["median_ms"]["embed_paragraph"] + r["median_ms"]["embed_query"], r["median_ms"]["path"],
                     r["median_ms"]["backfill_check"], r["median_ms"]["keyword"], r["median_ms"]["dense_numpy"],
                     r["median_ms"]["write"], f"{ref_s:,.2f} ({how})", f"{ratio:,.0f}x"])
    print()
    print(table(["paragraphs n", "ours ms/step", "embed ms", "path ms", "backfill check ms", "bm25 ms",
                 "dense+fusion ms", "write ms", "reference s/step", "reference / ours"], rows))
    print(f"\nreference fit: {a:.3f} s + {per_paragraph_ms:.1f} ms x n")

    write_results("memory_cost", {
        "quick": args.quick,
        "load_average_before": load_before,
        "settings": {"sentences_per_paragraph": SENTENCES, "top_k": TOP_K, "retrieval": "hybrid",
                     "embedder": embedder.name, "steps_per_size": steps},
        "ours": ours_rows,
        "reference": ref_rows,
        "reference_fit": {"intercept_s": round(a, 4), "per_paragraph_ms": round(per_paragraph_ms, 3)},
        "summary": summary,
        "notes": "stored vectors for n > 300 are real MiniLM vectors reused with noise; the new paragraph and "
                 "plan of each measured step are embedded for real. Reference beyond the measured sizes is the "
                 "linear fit.",
    })

    pyplot = plt()
    fig, ax = pyplot.subplots(figsize=(6.4, 4.2))
    ns = [r["n"] for r in ours_rows]
    ax.loglog(ns, [r["median_ms"]["total"] / 1000 for r in ours_rows], "o-", label="ours: embed once + hybrid recall")
    ax.loglog(xs, ys, "s", color="C3", label="reference: re-embed all (measured)")
    grid = np.logspace(2, np.log10(max(ns)), 50)
    ax.loglog(grid, a + b * grid, "--", color="C3", label="reference (linear fit)")
    ax.set_xlabel("paragraphs already in the story")
    ax.set_ylabel("long-term memory seconds per step")
    ax.set_title("Memory cost per step (all-MiniLM-L6-v2, 2 CPU cores)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(PLOTS / "memory_cost.png", dpi=110)
    print(f"wrote {PLOTS / 'memory_cost.png'}")


if __name__ == "__main__":
    main()
