import json
import random
from dataclasses import replace

import pytest

from recurrentgpt import CellInput, OutputFormatError, Premise, RecurrentCell, ScriptedModel
from recurrentgpt import story
from recurrentgpt.errors import InputError, ModelError
from recurrentgpt.models.base import Completion, Model, Request
from recurrentgpt.story import Usage

ANSWER = {"paragraph": "Mara opened the gate.", "rationale": "Drop the storm; add the gate.",
          "short_memory": "Mara is at the gate.", "plans": ["Go in.", "Turn back.", "Call out."]}


def Settings(**kw) -> story.Settings:
    """The cell's one-call step: these tests script its one answer (tests/loom/test_recurrence.py checks that the
    default two-phase step stores exactly what it stores)."""
    return story.Settings(**{"two_phase": False, **kw})


def cell_input(**kw):
    base = dict(genre="mystery", title="The Gate", outline="Mara seeks her brother.", plan="Mara reaches the gate.",
                previous_paragraph="The storm broke over the valley.", short_memory="Mara walks north.",
                long_term=["Long ago, Mara's brother left through the northern gate."])
    return CellInput(**{**base, **kw})


def test_step_returns_paragraph_memory_rationale_and_three_plans():
    model = ScriptedModel([ANSWER])
    out = RecurrentCell(model, Settings()).step(cell_input())
    assert out.paragraph == ANSWER["paragraph"]
    assert out.short_memory == ANSWER["short_memory"]
    assert out.rationale == ANSWER["rationale"]
    assert out.plans == ANSWER["plans"]
    assert out.usage.calls == 1


def test_step_prompt_carries_every_input_of_the_recurrence():
    model = ScriptedModel([ANSWER])
    RecurrentCell(model, Settings(paragraph_sentences=7)).step(cell_input())
    prompt = model.requests[0].prompt
    for part in ["Mara reaches the gate.", "The storm broke over the valley.", "Mara walks north.",
                 "northern gate", "Mara seeks her brother.", "about 7 sentences"]:
        assert part in prompt
    # static parts first, then what is known before the plan (read ahead while the writer chooses: prefill),
    # then what the plan recalls, then the plan
    order = ["Mara seeks her brother.", "Mara walks north.", "The storm broke over the valley.", "northern gate",
             "Mara reaches the gate."]
    assert [prompt.index(part) for part in order] == sorted(prompt.index(part) for part in order)
    assert model.requests[0].schema["properties"]["plans"]["minItems"] == 3


def test_text_mode_asks_for_labelled_sections_and_parses_them():
    text = "Paragraph: It rained.\nRationale: r\nShort-term memory: m\nPlan 1: a\nPlan 2: b\nPlan 3: c"
    model = ScriptedModel([text], supports_schema=False)
    out = RecurrentCell(model, Settings()).step(cell_input())
    assert out.paragraph == "It rained." and out.plans == ["a", "b", "c"]
    assert model.requests[0].schema is None
    assert "Plan 1:" in model.requests[0].prompt and "JSON" not in model.requests[0].prompt


def test_bad_output_is_retried_a_bounded_number_of_times():
    model = ScriptedModel(["not json", "{}", json.dumps({**ANSWER, "plans": ["x"]}), ANSWER])
    retries = []
    out = RecurrentCell(model, Settings(retries=3)).step(cell_input(), on_retry=lambda n, e: retries.append(n))
    assert out.paragraph == ANSWER["paragraph"] and retries == [1, 2, 3] and len(model.requests) == 4


def test_persistent_garbage_ends_in_output_format_error():
    model = ScriptedModel(["garbage"] * 10)
    with pytest.raises(OutputFormatError, match="3 times"):
        RecurrentCell(model, Settings(retries=2)).step(cell_input())
    assert len(model.requests) == 3


class EndlessModel(Model):
    """A model that never stops on its own: it writes until the request's max_tokens and is cut off there,
    as a server reports it (finish_reason "length")."""

    supports_schema = True
    name = "endless"

    def __init__(self) -> None:
        self.requests: list[Request] = []

    def complete(self, request: Request, on_text=None) -> Completion:
        self.requests.append(request)
        text = '{"paragraph": "' + "and on " * request.max_tokens  # about one token a word
        return Completion(text, Usage(completion_tokens=request.max_tokens, calls=1), finish_reason="length")


def test_endless_output_is_cut_at_a_budget_from_the_requested_lengths_and_is_a_wrong_shape_answer():
    """RELIABILITY §2 "endless output": every request carries a max_tokens computed from the requested lengths
    (longer paragraphs, memory or plans give a larger budget; the paper's defaults stay far below the 8k
    context), and an answer cut off there is a wrong-shape answer: asked again (bounded), then
    OutputFormatError saying it was cut off.

    Checked failing against a broken build: with the cut-off answer's `finish_reason` ignored the message
    lacks "cut off"; with a fixed max_tokens of 1024 the budgets do not grow with the lengths."""
    budgets = {}
    for sentences in (3, 20, 40):
        model = ScriptedModel([ANSWER])
        RecurrentCell(model, Settings(paragraph_sentences=sentences)).step(cell_input())
        budgets[sentences] = model.requests[0].max_tokens
    assert budgets[3] < budgets[20] < budgets[40]
    # enough for the requested words (~20 a sentence, > 1 token a word) and bounded well inside the context
    assert 20 * 20 < budgets[20] < 4096
    bigger_memory = ScriptedModel([ANSWER])
    RecurrentCell(bigger_memory, Settings(memory_words=1000)).step(cell_input())
    assert bigger_memory.requests[0].max_tokens > budgets[20]

    endless = EndlessModel()
    with pytest.raises(OutputFormatError, match=r"wrong shape 4 times.*cut off at \d+ tokens"):
        RecurrentCell(endless, Settings(retries=3)).step(cell_input())
    assert len(endless.requests) == 4 and {r.max_tokens for r in endless.requests} == {budgets[20]}


def test_new_character_nudge_follows_its_probability():
    always = ScriptedModel([ANSWER])
    RecurrentCell(always, Settings(new_character_probability=1.0)).step(cell_input())
    never = ScriptedModel([ANSWER])
    RecurrentCell(never, Settings(new_character_probability=0.0)).step(cell_input())
    assert "new character" in always.requests[0].prompt
    assert "new character" not in never.requests[0].prompt


def test_empty_plan_is_refused_before_calling_the_model():
    model = ScriptedModel()
    with pytest.raises(InputError):
        RecurrentCell(model, Settings()).step(cell_input(plan="   "))
    assert model.requests == []


def test_init_writes_the_requested_number_of_opening_paragraphs():
    model = ScriptedModel()
    opening = RecurrentCell(model, Settings(opening_paragraphs=3)).init(Premise("horror", "a house that hums",
                                                                               premise="It hums at night."))
    assert len(opening.paragraphs) == 3 and len(opening.plans) == 3 and opening.title
    assert "It hums at night." in model.requests[0].prompt


def test_streaming_sends_only_the_paragraph_text():
    model = ScriptedModel([ANSWER], chunk_size=3)
    seen = []
    RecurrentCell(model, Settings()).step(cell_input(), on_text=seen.append)
    assert "".join(seen) == ANSWER["paragraph"]


def test_fiction_mode_uses_its_own_prompt():
    model = ScriptedModel([ANSWER])
    RecurrentCell(model, Settings(person="second")).step(cell_input(mode="fiction", profile={"name": "Ada", "avoid": "gore"}))
    prompt = model.requests[0].prompt
    assert "reader" in prompt and "Ada" in prompt and "gore" in prompt and "second person" in prompt


@pytest.mark.parametrize("settings", [story.Settings(), story.Settings(memory_update="rewrite"),
                                      story.Settings(two_phase=False)],
                         ids=["two phases, edits", "two phases, rewrite", "one call"])
@pytest.mark.parametrize("mode", ["writer", "fiction"])
@pytest.mark.parametrize("schema", [True, False], ids=["json", "text"])
@pytest.mark.parametrize("language", ["en", "zh"])
def test_prefill_reads_the_start_of_the_steps_own_prompt(settings, mode, schema, language):
    """What ``prefill`` reads ahead is the step's own prompt as far as it is known before the plan (the memory
    and the previous paragraph included, nothing the plan recalls), under the same system prompt, whatever the
    step recalls and whatever the plan; and it draws nothing from the story's randomness."""
    model = ScriptedModel([ModelError("only the step's first call matters here")], supports_schema=schema)
    cell = RecurrentCell(model, replace(settings, language=language), random.Random(3))
    known = cell_input(plan="", long_term=[], mode=mode, short_memory="Mara walks north. She is tired.")
    state = cell.rng.getstate()
    cell.prefill(known)
    assert cell.rng.getstate() == state
    [ahead] = model.prefilled
    assert "Mara walks north." in ahead.prompt and ahead.prompt.endswith("The storm broke over the valley.")
    with pytest.raises(ModelError):
        cell.step(replace(known, plan="Mara reaches the gate.", long_term=["Long ago, Mara's brother left."],
                          chapter_summaries=["Chapter 1: Mara left home."], canon=["Mara (character): a guide."]))
    step = model.requests[0]
    assert step.system == ahead.system and step.prompt.startswith(ahead.prompt)
    assert not any(part in ahead.prompt for part in ["Mara reaches the gate.", "brother left", "left home", "a guide"])
