"""Which KV cache serves a call (``models.kv_slots``): the rule, with stand-in contexts."""

import itertools

from recurrentgpt.models.kv_slots import Slots, as_text

SYSTEM = {"role": "system", "content": "You are a novelist."}


def user(text):
    return [SYSTEM, {"role": "user", "content": text}]


def served(slots, text, answer=""):
    slot = slots.pick(text)
    slot.serve(text + answer)
    return slot.llm


def test_a_writer_s_step_read_ahead_regeneration_and_next_step_each_find_their_cache():
    made = itertools.count()
    slots = Slots(lambda: next(made), size=2)
    step = as_text(user("arc, memory 1, paragraph 1, recalled, plan 1"))
    first = served(slots, step, "paragraph 2")
    # the second call of a two-phase step continues the first: the same cache
    state = as_text([*user("arc, memory 1, paragraph 1, recalled, plan 1"), {"role": "assistant", "content": "paragraph 2"},
                     {"role": "user", "content": "now the memory and plans"}])
    assert served(slots, state, "plans") == first
    # the read ahead would throw away the whole step for a shared "arc": it gets a cache of its own
    ahead = as_text(user("arc, memory 2, paragraph 2"))
    second = served(slots, ahead)
    assert second != first
    assert served(slots, step, "paragraph 2 again") == first  # regenerate: the step's cache
    assert served(slots, as_text(user("arc, memory 2, paragraph 2, recalled, plan 2")), "paragraph 3") == second
    # the next read ahead shares only "arc" with both: the least recently used one is replaced, the last step kept
    assert served(slots, as_text(user("arc, memory 3, paragraph 3"))) == first
    assert len(slots.slots) == 2


def test_one_slot_serves_everything_and_none_is_made_before_it_is_needed():
    made = []
    slots = Slots(lambda: made.append(1) or len(made), size=1)
    assert made == []
    assert served(slots, as_text(user("one"))) == served(slots, as_text(user("two"))) == 1 and len(made) == 1


def test_a_conversation_s_text_grows_as_its_turns_do():
    """A second call that continues the first (its prompt and answer, then a new prompt) starts with the text the
    first call's cache holds: that is what the rule compares."""
    first = as_text(user("P"), "A")
    assert as_text([*user("P"), {"role": "assistant", "content": "A"}, {"role": "user", "content": "Q"}]).startswith(first)
    assert not as_text(user("P2")).startswith(as_text(user("P")))
