"""How many threads the embedded engine should use on a small, shared machine.

The same bundled model generates free text (tokens per second, time to first token) with 1 thread and with
every core, first on a quiet machine, then with a CPU-bound process at low priority (nice 10) on every core
but one — what a compiler, a test run or a second program does to a writer's laptop. Medians of ``--runs``
generations of ``--tokens`` tokens each. The engine's default thread count is chosen from this table.

    .venv/bin/python bench/threads.py            # 3 runs x 128 tokens per configuration (~3 min)
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import time

from _common import median, table, wait_for_quiet, write_results

PROMPT = "The lighthouse keeper on Mars had not spoken to anyone in three years. That night the receiver"


def _burn(stop) -> None:  # a low-priority CPU hog, like a background compiler
    os.nice(10)
    x = 0
    while not stop.is_set():
        x = (x * 1103515245 + 12345) % 2**31


def measure(threads: int, runs: int, tokens: int) -> dict:
    from recurrentgpt.models.llamacpp import LlamaCppModel

    model = LlamaCppModel(seed=7, n_threads=threads)
    llm = model._load()
    rates, firsts = [], []
    for _ in range(runs):
        started = time.perf_counter()
        first = None
        n = 0
        for _chunk in llm.create_completion(PROMPT, max_tokens=tokens, temperature=0.8, top_k=40, stream=True):
            if first is None:
                first = time.perf_counter() - started
            n += 1
        wall = time.perf_counter() - started
        rates.append(n / wall)
        firsts.append(first or wall)
        llm.reset()  # each run evaluates the prompt again
    model.close()
    return {"tokens_per_s": round(median(rates), 1), "first_token_s": round(median(firsts), 3), "runs": runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--quick", action="store_true", help="1 run per configuration")
    args = parser.parse_args()
    if args.quick:
        args.runs = 1
    cores = os.cpu_count() or 1
    load_before = wait_for_quiet()
    rows, results = [], {}
    for background in (False, True):
        stop = multiprocessing.Event()
        hogs = ([multiprocessing.Process(target=_burn, args=(stop,)) for _ in range(max(1, cores - 1))]
                if background else [])
        for h in hogs:
            h.start()
        try:
            for threads in sorted({1, max(1, cores - 1), cores}):
                r = measure(threads, args.runs, args.tokens)
                key = f"{threads} thread(s), {'busy' if background else 'quiet'}"
                results[key] = r
                rows.append([key, r["tokens_per_s"], r["first_token_s"]])
                print(rows[-1], flush=True)
        finally:
            stop.set()
            for h in hogs:
                h.join()
    print()
    print(table(["configuration", "tokens/s (median)", "first token s"], rows))
    write_results("threads", {"cores": cores, "load_average_before": load_before, "results": results,
                              "runs": args.runs, "tokens": args.tokens})


if __name__ == "__main__":
    main()
