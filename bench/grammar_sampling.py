"""What does a JSON schema cost the embedded engine per generated token? (issue 13)

A two-phase step writes its paragraph as free text, then the memory's edits, the synopsis and three plans under
the schema's grammar. llama-cpp-python applies a grammar to the whole vocabulary before sampling each token;
``recurrentgpt.models.grammar_sampling`` samples first and asks the grammar about the sampled token only, as
llama.cpp's own tools do. This measures, in one run on the bundled SmolLM2-135M, tokens per second generated

  - free: the same prompt without a schema (the speed limit),
  - grammar first: llama-cpp-python's own sampler with the step's state schema,
  - grammar after sampling: the engine's sampler with the same schema,

at the demo's and the paper's settings (their schemas differ in the plans' sentence ceiling). Every call reuses
the prompt's KV cache (the same prompt each time), so the time is generation. Each answer under a grammar is
checked for every key the schema requires; the share of tokens the grammar refused and that were sampled again is
reported too.

    flock /tmp/heavy.lock nice -n 5 .venv/bin/python bench/grammar_sampling.py      # ~4 min
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace

from _common import median, table, wait_for_quiet, write_results
from step_speed import DEMO, PAPER

from recurrentgpt.story import Settings

PROMPT = (
    "The colony kept its records on paper after the servers failed. Mara read them at night in the archive, "
    "looking for the name of the ship that had brought her grandmother to the station. One ledger was missing.\n\n"
    "Now update the short-term memory for the paragraph above, write its synopsis and propose three different "
    "plans for the paragraph after it. Answer with one JSON object with the keys synopsis, forget, add and plans."
)


def state_schema(settings: Settings) -> dict:
    """The schema of the default step's second call (memory edits, synopsis, plans), as the cell asks for it: a
    scripted model answers one step and keeps its requests."""
    from recurrentgpt.cell import CellInput, RecurrentCell
    from recurrentgpt.models.scripted import ScriptedModel

    asked = ScriptedModel()
    RecurrentCell(asked, replace(settings, two_phase=True, memory_update="edit")).step(CellInput(
        genre="sf", title="T", outline="O", plan="Mara climbs the tower.", previous_paragraph="P.",
        short_memory="Mara keeps the light. The pulse repeats.", long_term=[]))
    return asked.requests[-1].schema


def parses(text: str, schema: dict) -> bool:
    """A whole JSON object with every key the schema requires (an answer cut at max_tokens is not)."""
    try:
        answer = json.loads(text)
    except ValueError:
        return False
    return isinstance(answer, dict) and set(schema["required"]) <= set(answer)


def one_call(llm, schema: dict | None, seed: int, max_tokens: int) -> tuple[float, int, str]:
    kwargs: dict = dict(messages=[{"role": "user", "content": PROMPT}], max_tokens=max_tokens, temperature=0.8,
                        top_k=40, top_p=0.95, min_p=0.05, repeat_penalty=1.1, seed=seed)
    if schema is not None:
        kwargs["response_format"] = {"type": "json_object", "schema": schema}
    started = time.perf_counter()
    out = llm.create_chat_completion(**kwargs)
    seconds = time.perf_counter() - started
    return seconds, out["usage"]["completion_tokens"], out["choices"][0]["message"]["content"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=600)
    parser.add_argument("--threads", type=int, default=0, help="llama.cpp threads (default: the engine's default)")
    args = parser.parse_args()

    import llama_cpp

    from recurrentgpt.models import grammar_sampling
    from recurrentgpt.models.llamacpp import bundled_model_path, default_threads
    from recurrentgpt.models.q8_copy import q8_copy

    load_before = wait_for_quiet()
    threads = args.threads or default_threads()
    weights = q8_copy(bundled_model_path())  # the file the engine runs: the bundled model's Q8_0 copy
    engines = {name: cls(model_path=str(weights), n_ctx=2048, n_threads=threads, seed=7, verbose=False)
               for name, cls in (("grammar first", llama_cpp.Llama),
                                 ("grammar after sampling", grammar_sampling.Llama))}
    settings = {"demo": DEMO, "paper": PAPER}
    results: dict = {"weights": weights.name, "threads": threads, "repeats": args.repeats,
                     "max_tokens": args.max_tokens, "load_average_before": load_before, "settings": {}}
    for llm in engines.values():  # the prompt into each engine's KV cache, outside the timings
        one_call(llm, None, 0, 1)
    rows = []
    for name, s in settings.items():
        schema = state_schema(s)
        runs: dict = {"free": [], "grammar first": [], "grammar after sampling": []}
        valid = {k: 0 for k in runs if k != "free"}
        refused = []
        for r in range(args.repeats):
            seed = 100 + r
            for label, llm, with_schema in (("free", engines["grammar first"], False),
                                            ("grammar first", engines["grammar first"], True),
                                            ("grammar after sampling", engines["grammar after sampling"], True)):
                seconds, tokens, text = one_call(llm, schema if with_schema else None, seed, args.max_tokens)
                runs[label].append({"seconds": round(seconds, 3), "tokens": tokens,
                                    "tokens_per_s": round(tokens / seconds, 1)})
                if with_schema:
                    valid[label] += parses(text, schema)
                if label == "grammar after sampling":
                    sampler = llm._sampler
                    refused.append(sampler.resampled / max(1, sampler.sampled))
            print(f"{name} repeat {r + 1}: " + ", ".join(f"{k} {v[-1]['tokens_per_s']} tok/s" for k, v in runs.items()),
                  flush=True)
        free = median(x["tokens_per_s"] for x in runs["free"])
        summary = {label: {"median_tokens_per_s": median(x["tokens_per_s"] for x in xs), "calls": xs}
                   for label, xs in runs.items()}
        for label in ("grammar first", "grammar after sampling"):
            summary[label]["answers_parsed"] = valid[label]
            summary[label]["vs_free"] = round(summary[label]["median_tokens_per_s"] / free, 3)
        summary["grammar after sampling"]["median_share_resampled"] = round(median(refused), 3)
        summary["speedup_after_vs_first"] = round(summary["grammar after sampling"]["median_tokens_per_s"]
                                                  / summary["grammar first"]["median_tokens_per_s"], 3)
        results["settings"][name] = summary
        for label in runs:
            rows.append([name, label, summary[label]["median_tokens_per_s"], summary[label].get("vs_free", 1),
                         f"{summary[label]['answers_parsed']}/{args.repeats}" if label != "free" else "—",
                         summary[label].get("median_share_resampled", "—")])
    print()
    print(table(["setting", "sampling", "tokens/s (median)", "vs free", "answers parsed", "tokens sampled again"],
                rows))
    for name in settings:
        speedup = results["settings"][name]["speedup_after_vs_first"]
        print(f"{name}: grammar after sampling vs grammar first: {speedup}x")
    write_results("grammar_sampling", results)


if __name__ == "__main__":
    main()
