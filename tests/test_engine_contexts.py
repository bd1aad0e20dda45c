"""The embedded engine's second context, for a conversation that alternates with the cell's (the human
simulator's in auto mode), on the real bundled model."""

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
