"""Which KV cache serves a call (``models.kv_slots``): the rule, with stand-in contexts."""

import itertools

from recurrentgpt.models.kv_slots import Slots, as_text

SYSTEM = {"role": "system", "content": "You are a novelist."}


def user(text):
    return [SYSTEM, {"role": "user", "content": text}]


def stand_ins(size):
    """Slots whose contexts are numbers, made in turn."""
    slots, made = Slots(size), itertools.count()
    slots.make = lambda: next(made)
    return slots


def served(slots, messages, answer="", make=None):
    """The call's context, as the engine records it: the messages before, then the messages and the answer."""
    slot = slots.pick(as_text(messages), make or slots.make)
    slot.serve(as_text(messages, answer))
    return slot.llm


def test_a_writer_s_step_read_ahead_regeneration_and_next_step_each_find_their_cache():
    slots = stand_ins(2)
    step = user("arc, memory 1, paragraph 1, recalled, plan 1")
    first = served(slots, step, "paragraph 2")
    # the second call of a two-phase step continues the first: the same cache
    state = [*step, {"role": "assistant", "content": "paragraph 2"},
             {"role": "user", "content": "now the memory and plans"}]
    assert served(slots, state, "plans") == first
    # the read ahead would throw away the whole step for a shared "arc": it gets a cache of its own
    second = served(slots, user("arc, memory 2, paragraph 2"))
    assert second != first
    assert served(slots, step, "paragraph 2 again") == first  # regenerate: the step's cache
    assert served(slots, user("arc, memory 2, paragraph 2, recalled, plan 2"), "paragraph 3") == second
    # the next read ahead shares only "arc" with both: the least recently used one is replaced, the last step kept
    assert served(slots, user("arc, memory 3, paragraph 3")) == first
    assert len(slots.slots) == 2


def test_one_slot_serves_everything_and_none_is_made_before_it_is_needed():
    made = []
    slots = Slots(1)
    slots.make = lambda: made.append(1) or len(made)
    assert made == []
    assert served(slots, user("one")) == served(slots, user("two")) == 1 and len(made) == 1


def test_a_conversation_s_text_grows_as_its_turns_do():
    """A second call that continues the first (its prompt and answer, then a new prompt) starts with the text the
    first call's cache holds: that is what the rule compares."""
    first = as_text(user("P"), "A")
    followed = [*user("P"), {"role": "assistant", "content": "A"}, {"role": "user", "content": "Q"}]
    assert as_text(followed).startswith(first)
    assert not as_text(user("P2")).startswith(as_text(user("P")))


def test_a_read_ahead_that_shares_more_with_the_step_just_written_still_leaves_it_cached():
    """The read ahead shares the step's instructions and arc, and nothing with the older cache: it still goes to
    the older one (seen failing with the longest shared start alone deciding: the regeneration then evaluated its
    whole prompt again)."""
    slots = stand_ins(2)
    opening = served(slots, user("write the title, the outline and the opening"), "the opening")
    step = user("arc, beats, memory 1, paragraph 1, recalled, plan 1")
    written = served(slots, step, "paragraph 2")
    assert served(slots, user("arc, beats, memory 2, paragraph 2")) == opening
    assert served(slots, step, "paragraph 2 again") == written


def test_the_step_after_a_read_ahead_continues_it():
    """The read ahead's cache ends where its prompt ends (the template's closing tokens after it); the step's
    prompt goes on from there, and is served by that cache, not by the other one (seen failing when any
    difference from what a cache holds counted as breaking into it)."""
    slots = stand_ins(2)
    written = served(slots, user("arc, memory 1, paragraph 1, recalled, plan 1"), "paragraph 2")
    ahead = served(slots, user("arc, memory 2, paragraph 2"))
    assert ahead != written
    longer = user("arc, memory 2, paragraph 2, recalled, plan 2 and more words than it held")
    assert served(slots, longer, "p3") == ahead


def test_a_call_that_failed_before_its_answer_claims_no_more_than_the_cache_can_hold():
    """A call refused before anything was evaluated (a prompt too long for the context) leaves the cache as it was,
    or less: the slot then claims only what it held and the call shared."""
    slots = stand_ins(1)
    [slot] = [slots.pick(as_text(user("arc, memory 1")), slots.make)]
    slot.serve(as_text(user("arc, memory 1"), "paragraph"))
    slot.failed(as_text(user("arc, memory 2, a prompt too long")))
    assert as_text(user("arc, memory 1")).startswith(slot.holds) and slot.holds.endswith("arc, memory ")
