"""BM25 in a library of many stories: does a story's keyword search pay for the other stories' rows?

Builds two SQLite libraries of S stories x N word-bank paragraphs each: one at schema 2 (the story id an
unindexed FTS5 column, filtered after MATCH) and one at the current schema (the story id named inside
MATCH), then times store.keyword_search for the same plans in one story. No embedder is involved.

    flock /tmp/heavy.lock nice -n 10 .venv/bin/python bench/bm25_by_story.py            # 20 x 10k (~3 min)
    flock /tmp/heavy.lock nice -n 10 .venv/bin/python bench/bm25_by_story.py --stories 5 --paragraphs 2000
"""

from __future__ import annotations

import argparse
import shutil
import time

import wordbank
from _common import WORK, build_chain, median, ms, pct, table, wait_for_quiet, write_results

SENTENCES = 8


def build(folder, schema: int | None, stories: int, paragraphs: int):
    from recurrentgpt.store import sql as sql_store
    from recurrentgpt.store.sqlite import SQLiteStore

    shutil.rmtree(folder, ignore_errors=True)
    every = sql_store.MIGRATIONS  # the list the store's _migrate runs
    if schema is not None:
        sql_store.MIGRATIONS = every[:schema]
    try:
        store = SQLiteStore(folder / "library.db")
    finally:
        sql_store.MIGRATIONS = every
    for s in range(stories):
        build_chain(store, f"s{s:03d}", paragraphs,
                    lambda i, s=s: wordbank.paragraph(s * paragraphs + i, SENTENCES, seed=3), None, "none")
    return store


def rarest(store, terms: list[str], keep: int = 8) -> list[str]:
    """The terms' rarest 8 by the FTS5 vocabulary's library-wide counts, as keyword search chose them from
    ad16a3a to 62e3405."""
    if len(terms) <= keep:
        return terms
    marks = ",".join("?" * len(terms))
    counts = dict(store._query(f"SELECT term, doc FROM paragraphs_vocab WHERE term IN ({marks})", terms))
    return sorted((t for t in terms if counts.get(t)), key=lambda t: counts[t])[:keep]


def search(store, story_id: str, terms: list[str], limit: int) -> list:
    """store.keyword_search as it was at schema 2 (commit 070ef56): MATCH every story, then filter."""
    from recurrentgpt.store.sqlite import fts5_query

    terms = rarest(store, terms)
    return store._query(
        "SELECT rowid, bm25(paragraphs_fts) AS score FROM paragraphs_fts "
        "WHERE paragraphs_fts MATCH ? AND story_id = ? ORDER BY score LIMIT ?",
        (fts5_query(terms), story_id, limit),
    )


def search_rarest_in_story(store, story_id: str, terms: list[str], limit: int) -> list:
    """store.keyword_search as it was at schema 3 before the row budget (62e3405): the story inside MATCH,
    the rarest 8 terms by library-wide vocabulary counts."""
    from recurrentgpt.store.sqlite import fts5_story_query

    return store._query(
        "SELECT rowid, bm25(paragraphs_fts, 1.0, 0.0) AS score FROM paragraphs_fts "
        "WHERE paragraphs_fts MATCH ? ORDER BY score LIMIT ?",
        (fts5_story_query(story_id, rarest(store, terms)), limit),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stories", type=int, default=20)
    parser.add_argument("--paragraphs", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=30)
    args = parser.parse_args()
    from recurrentgpt.memory import keyword_terms

    load_before = wait_for_quiet()
    plans = [wordbank.paragraph(10_000_000 + q, 2, seed=5) for q in range(args.queries)]
    results, rows = {}, []
    ways = (
        ("schema 2: story filtered after MATCH", 2, search),
        ("schema 3: story inside MATCH, rarest 8 by vocabulary (62e3405)", None, search_rarest_in_story),
        ("now: story inside MATCH, rarest terms within 20k of its rows", None, None),
    )
    for label, schema, way in ways:
        started = time.perf_counter()
        store = build(WORK / "bm25_by_story", schema, args.stories, args.paragraphs)
        built_s = time.perf_counter() - started
        story = f"s{args.stories // 2:03d}"
        times, found = [], []
        for plan in plans + plans:  # the first pass warms the page cache
            t = time.perf_counter()
            terms = keyword_terms(plan)
            hits = way(store, story, terms, 40) if way else store.keyword_search(story, terms, 40)
            times.append(time.perf_counter() - t)
            found.append(len(hits))
        times = times[len(plans):]
        results[label] = {"p50_ms": ms(median(times)), "p99_ms": ms(pct(times, 99)), "build_s": round(built_s, 1),
                          "hits_median": median(found)}
        rows.append([label, results[label]["p50_ms"], results[label]["p99_ms"]])
        store.close()
    total = args.stories * args.paragraphs
    print(f"{args.stories} stories x {args.paragraphs:,} paragraphs = {total:,} rows; keyword_search in one story")
    print(table(["FTS5", "p50 ms", "p99 ms"], rows))
    print("median hits per query:", [r["hits_median"] for r in results.values()])
    write_results("bm25_by_story", {"load_average_before": load_before, "stories": args.stories,
                                    "paragraphs_per_story": args.paragraphs, "queries": args.queries,
                                    "results": results})


if __name__ == "__main__":
    main()
