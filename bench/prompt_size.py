"""Prompt size stays flat. Prompt tokens per step at steps 10, 100 and 1,000.

Ours: a 1,000-step story is written in auto mode by the real Loom and RecurrentCell with the paper's
settings (20-sentence paragraphs, memory of at most 20 sentences / 500 words, 5-sentence plans, top-2
long-term paragraphs), driven by a scripted model that records every request and answers with
word-bank text of the requested lengths (paragraph: 20 sentences ≈ 270 words; short-term memory at
its cap, the worst case: exactly 500 words in 20 sentences; plans: 5 sentences each). The memory's
words and sentences are counted from the stored story and reported. The embedder is the toy hashing one (which
paragraphs are recalled does not change how long the prompt is). The recorded prompts (system +
user message) are counted with the bundled SmolLM2 tokenizer (`LlamaCppModel().count_tokens`; the
chat template adds a few more tokens per call, not counted).

Rolling baseline: the model continues the story from prompts/en/rolling.j2 holding as much of the most
recent text as fits SmolLM2's 8,192-token context, less room for the answer. "Full history" is what the
rolling prompt would need to keep the whole story.

    nice -n 10 .venv/bin/python bench/prompt_size.py            # 1,000 steps (~1-2 min)
    nice -n 10 .venv/bin/python bench/prompt_size.py --quick    # 300 steps
"""

from __future__ import annotations

import argparse
import re
import shutil

import numpy as np
import wordbank
from _common import WORK, plt, save_plot, table, write_results

CONTEXT = 8192


def sentence_count(text: str) -> int:
    return len(re.findall(r"[.!?](?=\s|$)", text))


def memory_at_cap(n: int, words: int, sentences: int) -> str:
    """Short-term memory at its worst case: exactly ``words`` words in ``sentences`` sentences (word-bank
    sentences run together, their own full stops turned into semicolons, so the sentence cap holds too)."""
    bank: list[str] = []
    i = 0
    while len(bank) < words:
        bank += re.sub(r"[.!?](?=\s|$)", ";", wordbank.paragraph(n * 100 + i, 4, seed=4)).split()
        i += 1
    bank = bank[:words]
    cuts = np.linspace(0, words, sentences + 1).astype(int)
    out = []
    for a, b in zip(cuts[:-1], cuts[1:]):
        part = " ".join(bank[a:b]).rstrip(";,")
        out.append(part[0].upper() + part[1:] + ".")
    return " ".join(out)


def realistic_model(settings):
    from recurrentgpt.models import ScriptedModel

    class WordBankModel(ScriptedModel):
        """Answers every schema with word-bank text of the lengths the prompt asks for."""

        def _invent(self, request, n):
            import json

            s = settings
            answer = {}
            for key, spec in (request.schema or {}).get("properties", {}).items():
                if spec.get("type") == "integer":
                    answer[key] = 1 + n % 3
                elif key == "plans":
                    answer[key] = [wordbank.paragraph(n * 10 + i, s.plan_sentences, seed=3) for i in range(3)]
                elif key.startswith("paragraph"):
                    part = int(key.rpartition("_")[2]) if "_" in key else 0  # init asks for paragraph_1..3
                    answer[key] = wordbank.paragraph(n * 10 + part, s.paragraph_sentences, seed=3)
                elif key == "short_memory":
                    answer[key] = memory_at_cap(n, s.memory_words, s.memory_sentences)
                elif key == "plan":
                    answer[key] = wordbank.paragraph(n, s.plan_sentences, seed=5)
                elif key in ("outline",):
                    answer[key] = wordbank.paragraph(n, 4, seed=6)
                else:  # title, rationale, reason
                    answer[key] = wordbank.paragraph(n, 2, seed=6)
            return json.dumps(answer)

    return WordBankModel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="300 steps instead of 1,000")
    args = parser.parse_args()
    steps = 300 if args.quick else 1000

    from recurrentgpt import prompts
    from recurrentgpt.embeddings import HashingEmbedder
    from recurrentgpt.loom import Loom
    from recurrentgpt.models.llamacpp import LlamaCppModel
    from recurrentgpt.story import Settings

    settings = Settings()  # the paper's
    model = realistic_model(settings)
    folder = WORK / "prompt-size"
    shutil.rmtree(folder, ignore_errors=True)
    loom = Loom.open(folder / "library.db", model, HashingEmbedder(), seed=1)
    story = loom.new_story("science fiction", "a lighthouse keeper on Mars", settings=settings)
    loom.auto(story.id, steps)
    info = loom.story(story.id)
    path = loom.path(story.id)
    tok = LlamaCppModel()

    step_tokens, simulator_tokens = [], []
    for request in model.requests[1:]:  # [0] is init
        n = tok.count_tokens(request.system) + tok.count_tokens(request.prompt)
        is_simulator = "choice" in (request.schema or {}).get("properties", {})
        (simulator_tokens if is_simulator else step_tokens).append(n)
    assert len(step_tokens) == steps

    # rolling: most recent whole paragraphs that fit, and the whole story
    para_tokens = np.array([tok.count_tokens(nd.paragraph + "\n\n") for nd in path])
    opening = len(path) - steps  # paragraphs written by init
    empty = prompts.render("en", "rolling", genre=info.genre, title=info.title,
                           paragraph_sentences=settings.paragraph_sentences, text="")
    overhead = tok.count_tokens(empty)
    answer_room = settings.paragraph_sentences * 22 * 2  # room kept free for the answer (~880 tokens)
    window = CONTEXT - answer_room - overhead
    rolling, full = [], []
    for t in range(1, steps + 1):
        story_so_far = para_tokens[: opening + t - 1]  # the text before step t
        total = int(story_so_far.sum())
        kept = 0
        for x in story_so_far[::-1]:
            if kept + x > window:
                break
            kept += x
        rolling.append(overhead + kept)
        full.append(overhead + total)

    cut = [t for t in range(steps) if rolling[t] < full[t]]  # steps whose rolling prompt had to drop text
    first_cut = cut[0] + 1 if cut else None
    memory_words = [len(nd.short_memory.split()) for nd in path[opening:]]
    memory_sentences = [sentence_count(nd.short_memory) for nd in path[opening:]]

    marks = [m for m in (1, 10, 100, 1000) if m <= steps]
    rows = []
    for m in marks:
        rows.append([m, step_tokens[m - 1], simulator_tokens[m - 1], rolling[m - 1], full[m - 1]])
    print(table(["step", "ours: step prompt", "ours: simulator prompt", f"rolling ({CONTEXT:,} context)",
                 "rolling, full history"], rows))
    print(f"ours: min {min(step_tokens)}, median {int(np.median(step_tokens))}, max {max(step_tokens)} tokens "
          f"over {steps} steps; paragraphs are {int(np.median(para_tokens))} tokens (median)")
    print(f"short-term memory per step: {min(memory_words)}-{max(memory_words)} words, "
          f"{min(memory_sentences)}-{max(memory_sentences)} sentences (cap: {settings.memory_words} words, "
          f"{settings.memory_sentences} sentences)")
    print(f"rolling: {window:,} tokens of text fit; it first drops text at step {first_cut}")
    write_results("prompt_size", {
        "quick": args.quick, "steps": steps, "settings": settings.to_dict(),
        "counting": "SmolLM2 tokenizer (LlamaCppModel.count_tokens) on system + user message; "
                    "chat template not counted",
        "at": {str(m): {"ours_step": step_tokens[m - 1], "ours_simulator": simulator_tokens[m - 1],
                        "rolling": rolling[m - 1], "rolling_full_history": full[m - 1]} for m in marks},
        "ours_step_min_median_max": [min(step_tokens), int(np.median(step_tokens)), max(step_tokens)],
        "paragraph_tokens_median": int(np.median(para_tokens)),
        "memory_words_min_median_max": [min(memory_words), int(np.median(memory_words)), max(memory_words)],
        "memory_sentences_min_median_max": [min(memory_sentences), int(np.median(memory_sentences)),
                                            max(memory_sentences)],
        "rolling_window_tokens": window,
        "rolling_answer_room_tokens": answer_room,
        "rolling_first_step_dropping_text": first_cut,
    })

    pyplot = plt()
    fig, ax = pyplot.subplots(figsize=(6.4, 4.2))
    xs = np.arange(1, steps + 1)
    ax.plot(xs, full, label="rolling, full history (what keeping everything costs)", color="C3", ls="--")
    ax.plot(xs, rolling, label=f"rolling, cut to SmolLM2's {CONTEXT:,}-token context", color="C3")
    ax.plot(xs, step_tokens, label="ours: step prompt (RecurrentGPT cell)", color="C0")
    ax.plot(xs, simulator_tokens, label="ours: simulator prompt (auto mode)", color="C2", lw=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("prompt tokens")
    ax.set_title("Prompt size per step (paper settings, SmolLM2 tokenizer)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_plot(fig, "prompt_size", args.quick)
    loom.close()


if __name__ == "__main__":
    main()
