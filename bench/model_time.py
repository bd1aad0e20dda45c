"""Where the model's time goes, with the bundled SmolLM2-135M (`LlamaCppModel()`).

A short story in auto mode (small settings: 6-sentence paragraphs, memory of 8 sentences / 150 words,
2-sentence plans, as `recurrentgpt demo`), then the same model simply writing free text
(`free_text`, no template, no JSON grammar) until it has 1,000 words: the speed limit.

Per model call: prompt tokens, how many the KV-cache prefix reuse saved (Usage.cached_tokens), tokens
generated, and — from llama.cpp's own performance counters — the milliseconds spent evaluating the
prompt vs generating. Per step: the tokens of each field of the answer (paragraph, rationale +
memory, plans; the rest is JSON syntax), and the simulator's call (`loom.choose`, auto mode).

The headline is the median over steps of (seconds per 1,000 story words of that step) / (seconds per
1,000 words of free text): each step is one sample, none is picked by hand.

    nice -n 10 .venv/bin/python bench/model_time.py             # opening + 5 steps (~3 min quiet)
    nice -n 10 .venv/bin/python bench/model_time.py --quick     # opening + 2 steps (or --steps N)
"""

from __future__ import annotations

import argparse
import shutil
import time

import numpy as np
from _common import WORK, median, plt, save_plot, table, wait_for_quiet, write_results

TOPIC = "a lighthouse keeper on Mars finds a message from Earth"


class PerfCounters:
    """Wraps a LlamaCppModel's calls and reads llama.cpp's context counters around each one."""

    def __init__(self, model):
        self.model = model
        self.calls: list[dict] = []
        for name in ("complete", "free_text"):
            self._wrap(name)

    def _wrap(self, name: str) -> None:
        original = getattr(self.model, name)

        def wrapper(*args, **kwargs):
            import llama_cpp

            llm = self.model._load()
            llama_cpp.llama_perf_context_reset(llm.ctx)
            started, cpu = time.perf_counter(), time.process_time()
            completion = original(*args, **kwargs)
            wall, cpu = time.perf_counter() - started, time.process_time() - cpu
            perf = llama_cpp.llama_perf_context(llm.ctx)
            request = args[0] if args else None
            props = (getattr(request, "schema", None) or {}).get("properties", {})
            kind = "free text" if name == "free_text" else (
                "simulator" if "choice" in props else "init" if "title" in props else "step")
            u = completion.usage
            self.calls.append({
                "kind": kind, "wall_s": wall, "cpu_s": cpu, "prompt_tokens": u.prompt_tokens,
                "cached_tokens": u.cached_tokens, "completion_tokens": u.completion_tokens,
                "prompt_eval_ms": perf.t_p_eval_ms, "prompt_evaluated": perf.n_p_eval,
                "generate_ms": perf.t_eval_ms, "generated": perf.n_eval,
            })
            return completion

        setattr(self.model, name, wrapper)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2 steps instead of 5")
    parser.add_argument("--steps", type=int, default=0)
    args = parser.parse_args()
    steps = args.steps or (2 if args.quick else 5)
    short = args.quick or steps < 5  # a short run is written beside the full one, never over it

    from recurrentgpt.embeddings import get_embedder
    from recurrentgpt.loom import Loom
    from recurrentgpt.models.llamacpp import LlamaCppModel
    from recurrentgpt.story import Settings

    load_before = wait_for_quiet()
    settings = Settings(paragraph_sentences=6, memory_sentences=8, memory_words=150, plan_sentences=2)
    model = LlamaCppModel(seed=7, contexts=1)  # (one context: the counters read below are its)
    perf = PerfCounters(model)
    embedder = get_embedder("minilm")
    embedder.embed(["warm up"])
    model.count_tokens("warm up")  # loads the model outside the timings
    folder = WORK / "model-time"
    shutil.rmtree(folder, ignore_errors=True)
    loom = Loom.open(folder / "library.db", model, embedder, seed=7)

    started = time.perf_counter()
    story = loom.new_story("science fiction", TOPIC, settings=settings)
    init_wall = time.perf_counter() - started
    opening_words = sum(len(n.paragraph.split()) for n in loom.path(story.id))
    print(f"opening: {opening_words} words in {init_wall:.1f} s", flush=True)

    step_walls: list[float] = []
    last = [time.perf_counter()]

    def on_step(i, node, choice):
        now = time.perf_counter()
        step_walls.append(now - last[0])
        last[0] = now
        print(f"step {i}: {len(node.paragraph.split())} words, {step_walls[-1]:.1f} s", flush=True)

    last[0] = time.perf_counter()
    nodes = loom.auto(story.id, steps, on_step=on_step)
    step_words = [len(n.paragraph.split()) for n in nodes]

    fields = []
    for n in nodes:
        u = n.meta["usage"]
        parts = {
            "paragraph": model.count_tokens(n.paragraph),
            "rationale + memory": model.count_tokens(n.rationale) + model.count_tokens(n.short_memory),
            "plans": sum(model.count_tokens(p) for p in n.plans),
        }
        parts["JSON syntax, keys, retries"] = u["completion_tokens"] - sum(parts.values())
        fields.append(parts)

    # the limit: the same model writing 1,000 words of plain continuation
    text = "The lighthouse keeper on Mars had not spoken to anyone in three years. "
    free_started = time.perf_counter()
    free_words = 0
    free_calls = 0
    while free_words < 1000 and free_calls < 150:  # the small model often stops after a sentence or two
        tail = " ".join(text.split()[-150:])
        out = model.free_text(tail, max_tokens=400, temperature=0.8)
        text += out.text if out.text.startswith((" ", "\n")) else " " + out.text
        free_words = len(text.split())
        free_calls += 1
    free_wall = time.perf_counter() - free_started

    calls = perf.calls
    kinds = ["init", "simulator", "step", "free text"]
    call_rows, call_summary = [], {}
    for kind in kinds:
        cs = [c for c in calls if c["kind"] == kind]
        if not cs:
            continue
        prompt = sum(c["prompt_tokens"] for c in cs)
        cached = sum(c["cached_tokens"] for c in cs)
        gen = sum(c["generated"] for c in cs)
        gen_ms = sum(c["generate_ms"] for c in cs)
        pe_ms = sum(c["prompt_eval_ms"] for c in cs)
        call_summary[kind] = {
            "calls": len(cs), "prompt_tokens": prompt, "cached_tokens": cached,
            "cache_saved_share": round(cached / prompt, 3) if prompt else 0.0,
            "prompt_evaluated": sum(c["prompt_evaluated"] for c in cs), "prompt_eval_s": round(pe_ms / 1000, 1),
            "generated": gen, "generate_s": round(gen_ms / 1000, 1),
            "generate_tok_per_s": round(gen / (gen_ms / 1000), 1) if gen_ms else 0.0,
            "prompt_eval_tok_per_s": (round(sum(c["prompt_evaluated"] for c in cs) / (pe_ms / 1000), 1)
                                      if pe_ms else 0.0),
            "wall_s": round(sum(c["wall_s"] for c in cs), 1),
            "cpu_s": round(sum(c["cpu_s"] for c in cs), 1),
        }
        s = call_summary[kind]
        call_rows.append([kind, s["calls"], s["prompt_tokens"], s["cached_tokens"],
                          f"{100 * s['cache_saved_share']:.0f}%", s["prompt_eval_s"], s["generated"], s["generate_s"],
                          s["generate_tok_per_s"], s["wall_s"]])
    print()
    print(table(["call", "calls", "prompt tokens", "cached (prefix reuse)", "saved", "prompt eval s",
                 "generated tokens", "generate s", "tok/s generating", "wall s"], call_rows))

    field_rows = [[i + 1, *f.values(), nodes[i].meta["usage"]["completion_tokens"]] for i, f in enumerate(fields)]
    print()
    print(table(["step", *fields[0].keys(), "total generated"], field_rows))

    story_s_per_kw = sum(step_walls) / sum(step_words) * 1000
    with_init = (sum(step_walls) + init_wall) / (sum(step_words) + opening_words) * 1000
    free_s_per_kw = free_wall / free_words * 1000
    # one sample per step: how much slower than free text per word of story; the headline is their median
    step_s_per_kw = [wall / max(words, 1) * 1000 for wall, words in zip(step_walls, step_words)]
    step_vs_free = [x / free_s_per_kw for x in step_s_per_kw]
    headline = median(step_vs_free)
    print()
    print(table(["what", "words", "wall s", "s per 1,000 words", "vs free text"], [
        ["RecurrentGPT auto mode, steps only", sum(step_words), round(sum(step_walls), 1), story_s_per_kw,
         f"{story_s_per_kw / free_s_per_kw:.1f}x"],
        ["RecurrentGPT auto mode, opening included", sum(step_words) + opening_words,
         round(sum(step_walls) + init_wall, 1), with_init, f"{with_init / free_s_per_kw:.1f}x"],
        ["free text (the limit)", free_words, round(free_wall, 1), free_s_per_kw, "1.0x"],
    ]))
    print()
    print(table(["step", "words", "wall s", "s per 1,000 words", "vs free text"], [
        [i + 1, step_words[i], round(step_walls[i], 1), step_s_per_kw[i], f"{step_vs_free[i]:.1f}x"]
        for i in range(len(step_walls))]))
    print(f"\nheadline: a step is {headline:.1f}x slower than free text per word of story "
          f"(median over {len(step_vs_free)} steps; range {min(step_vs_free):.1f}-{max(step_vs_free):.1f}x)")
    write_results("model_time", {
        "quick": short, "steps": steps, "settings": settings.to_dict(), "model": model.name,
        "load_average_before": load_before,
        "calls": call_summary,
        "per_call": [{k: (round(v, 2) if isinstance(v, float) else v) for k, v in c.items()}
                     for c in calls if c["kind"] != "free text"],
        "fields_per_step": fields, "step_wall_s": [round(x, 2) for x in step_walls],
        "step_words": step_words, "init_wall_s": round(init_wall, 1), "opening_words": opening_words,
        "s_per_1000_words": {"recurrentgpt_steps": round(story_s_per_kw, 1),
                             "recurrentgpt_with_opening": round(with_init, 1),
                             "free_text": round(free_s_per_kw, 1)},
        "step_s_per_1000_words": [round(x, 1) for x in step_s_per_kw],
        "step_vs_free_text": [round(x, 2) for x in step_vs_free],
        "headline_step_vs_free_text_median": round(headline, 1),
        "free_text": {"words": free_words, "wall_s": round(free_wall, 1), "calls": free_calls},
        "median_step_wall_s": round(median(step_walls), 1),
        "sample_paragraph": nodes[-1].paragraph,
    })

    pyplot = plt()
    fig, ax = pyplot.subplots(figsize=(6.4, 3.6))
    labels = [k for k in kinds if k in call_summary and k != "free text"]
    pe = [call_summary[k]["prompt_eval_s"] for k in labels]
    ge = [call_summary[k]["generate_s"] for k in labels]
    other = [max(0.0, call_summary[k]["wall_s"] - pe[i] - ge[i]) for i, k in enumerate(labels)]
    y = np.arange(len(labels))
    ax.barh(y, pe, label="prompt evaluation")
    ax.barh(y, ge, left=pe, label="generation")
    ax.barh(y, other, left=np.add(pe, ge), label="other (grammar, sampling, Python)")
    ax.set_yticks(y, labels)
    ax.set_xlabel(f"seconds in total (opening + {steps} auto steps)")
    ax.set_title("Where SmolLM2-135M's time goes (2 cores)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_plot(fig, "model_time", short)
    loom.close()


if __name__ == "__main__":
    main()
