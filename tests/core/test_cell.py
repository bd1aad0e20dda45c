import json
import random
from dataclasses import replace

import pytest

from recurrentgpt import CellInput, OutputFormatError, Premise, RecurrentCell, ScriptedModel, story
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
    RecurrentCell(model, Settings(person="second")).step(
        cell_input(mode="fiction", profile={"name": "Ada", "avoid": "gore"})
    )
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


class RunawayModel(Model):
    """A model double that streams, a few characters a token, each queued answer; a ``(start, again)`` answer
    is a runaway seen on a real server: ``start``, then ``again`` over and over until the call's max_tokens, cut
    off there ("length"). ``written`` records the tokens each call wrote before it ended or was stopped."""

    supports_schema = True
    name = "runaway"

    def __init__(self, *answers) -> None:
        self.answers = list(answers)
        self.requests: list[Request] = []
        self.written: list[int] = []

    def complete(self, request: Request, on_text=None) -> Completion:
        self.requests.append(request)
        answer = self.answers.pop(0)
        endless = isinstance(answer, tuple)
        text = answer[0] + answer[1] * (4 * request.max_tokens // len(answer[1]) + 1) if endless else (
            answer if isinstance(answer, str) else json.dumps(answer))
        text = text[: 4 * request.max_tokens]
        self.written.append(0)
        for i in range(0, len(text), 4):
            self.written[-1] += 1
            if on_text:
                on_text(text[i:i + 4])
        return Completion(text, Usage(completion_tokens=self.written[-1], calls=1),
                          finish_reason="length" if endless else "stop")


HERO = "a tale of a hero's journey, "
STATE = {"synopsis": "Mara reaches the gate at dusk.", "forget": [1], "add": "Mara stands at the gate.",
         "plans": ["Mara opens the gate.", "Mara turns back home.", "Mara calls out to her brother."]}
RUNAWAYS = {
    "a synopsis sentence that never ends": ('{"synopsis": "a story of a hero\'s journey, ', HERO),
    "a synopsis that echoes the instructions": (
        '{"synopsis": "The story\'s working memory, so it stays as it is except for what you deliberately forget',
        " and what you add, so it stays as it is except for what you deliberately forget"),
    "forget as 5, 5, 5 until the ceiling": ('{"synopsis": "Mara reaches the gate at dusk.", "forget": [5', ", 5"),
}


@pytest.mark.parametrize("seen", RUNAWAYS)
def test_a_runaway_in_the_state_call_stops_at_its_fields_budget_not_at_the_calls_ceiling(seen):
    """Two steps in a row failed after 4 tries each of the state call, every try a runaway that wrote until its
    max_tokens. Each runaway now stops at its field's budget (a small share of the ceiling) and is asked again."""
    model = RunawayModel("Mara reached the gate at dusk and found it open.", RUNAWAYS[seen], STATE)
    retries = []
    out = RecurrentCell(model, Settings(two_phase=True, retries=3)).step(
        cell_input(short_memory="Mara walks north. The storm follows her."),
        on_retry=lambda n, e: retries.append(str(e)),
    )
    assert out.plans == STATE["plans"] and len(retries) == 1 and "ran past" in retries[0], retries
    assert model.written[1] < model.requests[1].max_tokens / 2, (model.written, model.requests[1].max_tokens)


def test_a_runaway_outline_in_the_opening_stops_at_its_budget():
    """`new` needed 4 tries in each of 3 runs: an outline whose sentence never ends, until 3,056 tokens."""
    opening = {"title": "The Gate", "outline": "Mara looks for her brother beyond the northern gate and finds a war.",
               "beats": "Mara leaves home; the storm; the gate.",
               "paragraph_1": "Mara left home before dawn, the storm at her back, and walked north for a day. " * 2,
               "synopsis_1": "Mara leaves home and walks north.",
               "paragraph_2": "At dusk the gate rose out of the rain, older than the valley, and it stood open. " * 2,
               "synopsis_2": "Mara reaches the open gate at dusk.",
               "short_memory": "Mara walks north to find her brother. The gate stands open.",
               "plans": ["Mara goes through the gate.", "Mara waits for the storm to pass.", "Mara calls out."]}
    model = RunawayModel(('{"title": "The Hero", "outline": "a story of a hero\'s journey, ', HERO), opening)
    retries = []
    got = RecurrentCell(model, Settings(opening_paragraphs=2)).init(
        Premise("fantasy", "a hero's journey"), on_retry=lambda n, e: retries.append(str(e)))
    assert got.title == "The Gate" and len(retries) == 1 and "'outline' ran past" in retries[0]
    assert model.written[0] < model.requests[0].max_tokens / 3


def test_a_plan_that_runs_on_is_cut_at_its_last_whole_sentence_when_the_rest_of_the_answer_is_whole():
    plans = STATE["plans"][:2]
    last = '"Mara climbs the wall. She sees the camp below, and the fires, and the ' + "and the fires, " * 400
    model = RunawayModel("Mara reached the gate at dusk and found it open.",
                         json.dumps({**STATE, "plans": plans})[:-2] + ", " + last)
    out = RecurrentCell(model, Settings(two_phase=True, retries=0)).step(cell_input(short_memory="Mara walks north."))
    assert out.plans == [*plans, "Mara climbs the wall."]


def test_forget_allows_at_most_the_memorys_sentence_count_of_numbers():
    model = ScriptedModel(["Mara reached the gate at dusk and found it open.", STATE])
    RecurrentCell(model, Settings(two_phase=True)).step(cell_input(short_memory="Mara walks north. The storm follows."))
    assert model.requests[1].schema["properties"]["forget"]["maxItems"] == 2


@pytest.mark.parametrize("two_phase", [False, True])
def test_a_regeneration_that_copies_what_it_replaces_is_asked_again_with_the_next_seed(two_phase):
    """`regenerate -n 2` gave an alternative word for word the same as the head."""
    head = "Mara opened the gate and stepped through into the cold, where the road ran north into the hills."
    other = "Mara stood at the gate a long time, listening, before she turned back towards the farm."
    if two_phase:
        model = ScriptedModel([head, other, STATE])
    else:
        model = ScriptedModel([{**ANSWER, "paragraph": head}, {**ANSWER, "paragraph": other}])
    retries = []
    out = RecurrentCell(model, Settings(two_phase=two_phase)).step(
        cell_input(seed=41, unlike=[head]), on_retry=lambda n, e: retries.append(str(e)))
    assert out.paragraph == other and retries == ["the paragraph repeats the one it is to replace"]
    assert [r.seed for r in model.requests[:2]] == [41, 42]


def test_a_regeneration_that_only_copies_is_never_kept():
    head = "Mara opened the gate and stepped through into the cold, where the road ran north into the hills."
    model = ScriptedModel([{**ANSWER, "paragraph": head}] * 4)
    with pytest.raises(OutputFormatError, match="repeats the one it is to replace"):
        RecurrentCell(model, Settings(retries=3)).step(cell_input(seed=1, unlike=[head]))
