"""The embedded engine's KV cache across calls, on the real bundled model: a second context for a conversation
that alternates with the cell's (the human simulator's in auto mode), and a prompt read ahead (``prefill``: the
next step's, while the writer chooses a plan)."""

import threading

import pytest

from recurrentgpt.models.base import Request
from recurrentgpt.models.llamacpp import LlamaCppModel

pytestmark = pytest.mark.slow


def test_a_second_context_keeps_an_alternating_conversation_s_prefix_cached():
    """Auto mode alternates the cell's prompt and the human simulator's. On one KV cache each call evicts the
    other's prefix; the simulator's own context (``second_context``) keeps both. Broken build seen failing:
    ``second_context`` returning the engine itself (the cell's second call served ~nothing from the cache)."""
    cell_prompt = "You write a novel about a lighthouse keeper. " * 40 + "Write the next paragraph."
    simulator_prompt = "You are a reader choosing what happens next in a novel. " * 40 + "Pick plan 1, 2 or 3."

    def cached_on_second_asking(model: LlamaCppModel) -> int:
        simulator = model.second_context()
        for prompt in (cell_prompt, simulator_prompt):  # a step, then the simulator
            (model if prompt is cell_prompt else simulator).complete(Request("s", prompt, max_tokens=4))
        return model.complete(Request("s", cell_prompt + " Go on.", max_tokens=4)).usage.cached_tokens

    model = LlamaCppModel(seed=1)
    assert model.second_context() is model.second_context() and model.second_context() is not model
    assert model.second_context()._lock is model._lock  # the two never compute at once
    assert cached_on_second_asking(model) > 0.8 * model.count_tokens(cell_prompt)


def test_a_prefilled_prompt_is_served_from_the_cache():
    """``prefill`` reads a prompt's start ahead (the next step's, while the writer chooses a plan): the call that
    follows with the whole prompt evaluates only the rest, and with one KV cache what a seeded engine writes next does
    not depend on it (the cache's seed is where it was; with two, each cache draws from its own). Broken builds seen
    failing: ``prefill`` doing nothing (the call after it served
    only the system prompt from the cache); the seed not passed (moved on)."""
    known = "The short-term memory and the previous paragraph of a novel about a lighthouse keeper. " * 30
    rest = "\n\nPlan for the next paragraph:\nThe keeper finds a radio.\n\nNow write the next paragraph."
    model = LlamaCppModel(seed=1, contexts=1)  # (one KV cache: the read ahead replaces what it held)
    model.complete(Request("s", "Something else entirely: a poem about the sea.", max_tokens=4))
    seed = model._load()._seed  # a completion moves the engine's seed on; a read ahead must not
    read = model.prefill(Request("s", known))
    assert model._load()._seed == seed
    assert read.prompt_tokens > model.count_tokens(known) and read.completion_tokens == 0
    after = model.complete(Request("s", known + rest, max_tokens=4)).usage
    assert after.cached_tokens >= model.count_tokens(known)  # the system prompt's tokens make up the boundary's


def test_a_read_ahead_and_a_call_at_once_take_turns_on_the_engine():
    """The web studio reads ahead in a finished step's thread, and the writer may ask for the next step before
    it ends: the two take turns on the engine (its lock), and both are served. Broken build seen failing:
    ``prefill`` without the lock."""
    known = "The short-term memory and the previous paragraph of a novel about a lighthouse keeper. " * 30
    model = LlamaCppModel(seed=1)
    model.count_tokens("load")
    read = []
    ahead = threading.Thread(target=lambda: read.append(model.prefill(Request("s", known))))
    ahead.start()
    answer = model.complete(Request("s", known + "\n\nWrite the next paragraph.", max_tokens=8))
    ahead.join()
    # (the answer itself may be empty: the model may end it at once; what is checked is that the call was served)
    assert answer.finish_reason in ("stop", "length") and answer.usage.prompt_tokens > model.count_tokens(known)
    assert read and read[0].prompt_tokens > model.count_tokens(known)


def test_a_read_ahead_keeps_the_last_step_cached_for_a_regeneration():
    """After a step, the next step's start is read ahead; the writer may still ask for the step again
    (regenerate). The bundled model keeps two KV caches and each call goes to the one holding the longest start of
    it (``kv_slots``): the regeneration and the next step are both served from a cache, and no third cache is
    made. Broken build seen failing: one KV cache (the regeneration evaluated its prompt anew)."""
    step = "The arc of a novel about a lighthouse keeper, and the step's recalled paragraphs. " * 30
    known = "The short-term memory after that step, and the paragraph it wrote. " * 30
    model = LlamaCppModel(seed=1)
    model.complete(Request("s", step, max_tokens=8))
    model.prefill(Request("s", known))
    again = model.complete(Request("s", step, max_tokens=8)).usage
    assert again.cached_tokens >= model.count_tokens(step) - 2  # (the last token is evaluated again to sample)
    onwards = model.complete(Request("s", known + " The plan: the keeper finds a radio.", max_tokens=8)).usage
    assert onwards.cached_tokens >= model.count_tokens(known)
    model.complete(Request("s", "A third conversation, about something else entirely. " * 20, max_tokens=4))
    assert len(model._slots.slots) == 2


def test_closing_the_engine_frees_its_caches_and_a_later_call_makes_them_again():
    """``Loom.close`` closes the model: its KV caches (and the simulator's) are freed then, not whenever the garbage
    collector gets to them; an engine used again after that (a benchmark's next row) works."""
    model = LlamaCppModel(seed=1)
    model.load()
    model.second_context().complete(Request("s", "Pick a plan.", max_tokens=2))
    assert len(model._slots.slots) == 2 and len(model.second_context()._slots.slots) == 1
    model.close()
    assert model._slots.slots == [] and model.second_context()._slots.slots == []
    again = model.complete(Request("s", "Write one word.", max_tokens=2))  # (its answer may be empty: any is fine)
    assert again.usage.prompt_tokens > 0 and len(model._slots.slots) >= 1
