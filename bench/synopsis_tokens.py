"""What a paragraph's synopsis adds to a step, in tokens (issue 12, item 2), counted with the bundled model's
own tokenizer (SmolLM2-135M, vocabulary only: no weights are run).

Prompt: the step's prompt rendered with and without the synopsis field, at the paper's settings and at the
tests' small ones, one call (JSON and labelled text) and the two-phase step's second call. Completion: the
synopsis the model writes, estimated from the synopses the same model wrote for Emma (bench/data/emma_synopses.json)
plus the JSON key around one.

    .venv/bin/python bench/synopsis_tokens.py
"""

from __future__ import annotations

import json
import statistics

from _common import HERE, table, write_results


def tokenizer():
    import llama_cpp

    from recurrentgpt.models import get_model

    model = get_model("smollm2")
    llm = llama_cpp.Llama(model_path=str(model.path), vocab_only=True, verbose=False)
    return lambda text: len(llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))


def prompts_for(settings, fields, *, two_phase: bool, json_output: bool) -> str:
    from recurrentgpt import prompts

    common = dict(paragraph_sentences=settings.paragraph_sentences, memory_sentences=settings.memory_sentences,
                  memory_words=settings.memory_words, plan_sentences=settings.plan_sentences, person=settings.person,
                  json_output=json_output, two_phase=False)
    variables = dict(genre="fantasy", title="T", outline="O", chapter=1, beats="B", chapter_summaries=[], retrieved=[],
                     short_memory="M", previous_paragraph="P", plan="X", new_character=False, profile={}, canon=[],
                     constraints=[], propose_bible=False, mode="writer")
    if two_phase:
        return prompts.render("en", "step_state", fields=prompts.localize("en", fields[1:]), **common, **variables)
    return prompts.render("en", "step", fields=prompts.localize("en", fields), **common, **variables)


def main() -> None:
    from recurrentgpt.cell import STEP_FIELDS, SYNOPSIS_FIELD
    from recurrentgpt.story import Settings

    count = tokenizer()
    without = [f for f in STEP_FIELDS if f is not SYNOPSIS_FIELD]
    rows, results = [], {}
    small = Settings(paragraph_sentences=4, memory_sentences=4, memory_words=80, plan_sentences=2)
    for label, settings in (("paper's settings", Settings()), ("small (tests)", small)):
        for call, two_phase, json_output in (("one call, JSON", False, True), ("one call, labelled text", False, False),
                                            ("two phases: 2nd call, JSON", True, True)):
            a = count(prompts_for(settings, without, two_phase=two_phase, json_output=json_output))
            b = count(prompts_for(settings, STEP_FIELDS, two_phase=two_phase, json_output=json_output))
            rows.append([label, call, str(a), str(b), f"+{b - a}"])
            results[f"{label} / {call}"] = {"without": a, "with": b, "added": b - a}
    synopses = list(json.loads((HERE / "data" / "emma_synopses.json").read_text())["synopses"].values())
    completion = [count(f', "synopsis": {json.dumps(s)}') for s in synopses]
    words = [len(s.split()) for s in synopses]
    print(table(["settings", "call", "prompt without", "prompt with", "added"], rows))
    print(f"\ncompletion: a synopsis by SmolLM2-135M (Emma, n={len(synopses)}): median {statistics.median(completion)} "
          f"tokens with its JSON key (p90 {sorted(completion)[int(0.9 * len(completion))]}), "
          f"median {statistics.median(words)} words")
    write_results("synopsis_tokens", {"prompt": results, "completion_tokens": {
        "n": len(completion), "median": statistics.median(completion),
        "p90": sorted(completion)[int(0.9 * len(completion))], "median_words": statistics.median(words)}})


if __name__ == "__main__":
    main()
