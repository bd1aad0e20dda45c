import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recurrentgpt.errors import OutputFormatError
from recurrentgpt.structured import Field, FieldStreamer, parse_answer, schema_for, sentences

FIELDS = [
    Field("paragraph", "Paragraph"),
    Field("rationale", "Rationale"),
    Field("short_memory", "Short-term memory"),
    Field("plans", "Plan", items=3),
]
GOOD = {"paragraph": "P.", "rationale": "R.", "short_memory": "M.", "plans": ["a", "b", "c"]}


def test_schema_requires_every_field_and_exactly_three_plans():
    schema = schema_for(FIELDS)
    assert schema["required"] == ["paragraph", "rationale", "short_memory", "plans"]
    assert schema["properties"]["plans"]["minItems"] == schema["properties"]["plans"]["maxItems"] == 3


def test_json_anywhere_in_the_text():
    text = "Sure! Here it is:\n```json\n" + json.dumps(GOOD) + "\n```"
    assert parse_answer(text, FIELDS) == GOOD


def test_raw_newlines_inside_json_strings_are_accepted():
    text = '{"paragraph": "line one\nline two", "rationale": "r", "short_memory": "m", "plans": ["a","b","c"]}'
    assert parse_answer(text, FIELDS)["paragraph"] == "line one\nline two"


def test_labelled_sections_with_markdown_decoration():
    text = """**Paragraph:** The rain fell.
It kept falling.

## Rationale: drop the weather
Short-term memory: It rains.
Plan 1: Go out.
**Plan 2:** Stay in.
- Plan 3: Sleep."""
    out = parse_answer(text, FIELDS)
    assert out["paragraph"] == "The rain fell.\nIt kept falling."
    assert out["rationale"] == "drop the weather"
    assert out["plans"] == ["Go out.", "Stay in.", "Sleep."]


def test_numbered_fields_are_read_from_numbered_labels():
    fields = [Field("paragraph_1", "Paragraph 1"), Field("paragraph_2", "Paragraph 2")]
    assert parse_answer("Paragraph 1: one\nParagraph 2: two", fields) == {"paragraph_1": "one", "paragraph_2": "two"}


def test_extra_plans_are_trimmed_and_missing_ones_rejected():
    assert parse_answer(json.dumps({**GOOD, "plans": ["a", "b", "c", "d"]}), FIELDS)["plans"] == ["a", "b", "c"]
    with pytest.raises(OutputFormatError, match="2 of the 3"):
        parse_answer(json.dumps({**GOOD, "plans": ["a", " ", "c"]}), FIELDS)


def test_missing_or_empty_field_is_an_output_format_error():
    with pytest.raises(OutputFormatError, match="short_memory"):
        parse_answer(json.dumps({**GOOD, "short_memory": "  "}), FIELDS)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_any_text_either_parses_or_raises_output_format_error(text):
    try:
        out = parse_answer(text, FIELDS)
    except OutputFormatError:
        return
    assert set(out) == {"paragraph", "rationale", "short_memory", "plans"}
    assert all(isinstance(v, str) and v for v in out.values() if not isinstance(v, list))


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1), st.lists(st.integers(min_value=1, max_value=7), min_size=1, max_size=50))
def test_streamer_emits_exactly_the_decoded_field_whatever_the_chunking(paragraph, cuts):
    answer = json.dumps({"paragraph": paragraph, "rationale": "r"}, ensure_ascii=bool(len(paragraph) % 2))
    seen: list[str] = []
    streamer = FieldStreamer("paragraph", seen.append, json_mode=True)
    i = 0
    for cut in cuts * (len(answer) // sum(cuts) + 1):
        streamer.feed(answer[i : i + cut])
        i += cut
        if i >= len(answer):
            break
    assert "".join(seen) == paragraph


def test_text_mode_streamer_stops_at_the_next_heading():
    seen: list[str] = []
    streamer = FieldStreamer("paragraph", seen.append, json_mode=False, labels=["Rationale", "Plan"])
    for chunk in ["PARAGR", "APH: The sea", " was calm.\nHe said: go.\n", "Rationale: x\n"]:
        streamer.feed(chunk)
    assert "".join(seen) == "The sea was calm.\nHe said: go.\n"


def test_a_memory_is_cut_into_sentences_by_lines_and_full_stops_but_not_at_titles_or_initials():
    """The edit update numbers the memory's sentences: a title's full stop ("Mr. Knightley") or an initial
    ("J. Smith") does not end one, a list's bullet or number is not part of one, and Chinese full stops end one."""
    text = "Mr. Knightley scolds Emma. J. Smith left!\n- The ball is on Friday.\n2. Harriet waits\n她走了。他留下。"
    assert sentences(text) == [
        "Mr. Knightley scolds Emma.",
        "J. Smith left!",
        "The ball is on Friday.",
        "Harriet waits",
        "她走了。",
        "他留下。",
    ]
    assert sentences("") == [] and sentences("  \n ") == []


def test_a_line_of_story_text_cannot_hold_json_debris_under_the_grammar():
    """Plans, synopses and a memory's new sentences are ``line`` fields: the schema's pattern (turned into a
    grammar by llama.cpp and enforced by servers that take JSON schemas) admits story text, curly quotes and
    any script, and no bracket, straight quote, backslash or line break: the debris ("] {", '"}, {"') a small
    model left in most of its plans, each one a step asked again."""
    [plan] = schema_for([Field("plan", "Plan", min_chars=15, line=True)])["properties"].values()
    pattern = re.compile(plan["pattern"])
    for story in [
        "Mara opens the hatch and finds the keeper's log, half burned.",
        "She says \u201cno\u201d, and means it: 3 times.",
        "\u6797\u628a\u706f\u5854\u7684\u65e5\u5fd7\u4ea4\u7ed9\u4e86\u8239\u957f\uff0c\u7136\u540e\u79bb\u5f00\u4e86\u3002",
    ]:
        assert pattern.match(story), story
    for debris in [
        "] The keeper climbs the tower",
        'The keeper climbs", "plans": [',
        "The keeper climbs {the tower}",
        "The keeper climbs\nthe tower",
        "The keeper climbs \\n the tower",
        "<b>The keeper climbs</b>",
        "Too short.",
        "The keeper climbs the removed_list_of_strings.",
    ]:
        assert not pattern.match(debris), debris
    llama_grammar = pytest.importorskip("llama_cpp.llama_grammar")  # the embedded engine's converter keeps the class
    gbnf = llama_grammar.json_schema_to_gbnf(
        json.dumps(schema_for([Field("plans", "Plan", items=3, min_chars=15, line=True)]))
    )
    assert r'[^"\\{}\[\]<>_\x00-\x1F\x7F]' in gbnf  # (that llama.cpp compiles it: tests/real/test_e2e_real.py)


def test_the_steps_plans_synopses_and_additions_are_lines_and_its_prose_keeps_its_quotes():
    from recurrentgpt.cell import EDIT_FIELDS, STEP_FIELDS
    from recurrentgpt.simulator import FIELDS as SIMULATOR_FIELDS

    lines = {f.name for f in [*STEP_FIELDS, *EDIT_FIELDS, *SIMULATOR_FIELDS] if f.line}
    # dialogue needs its quotes: paragraphs and memories are no lines
    assert lines == {"plans", "synopsis", "add", "plan"}


def test_a_line_ends_after_twice_the_sentences_asked_for():
    """A line's ceiling counts sentences (a runaway, prose that never closes its string, ends there), and plans and
    the simulator's revised plan take theirs from the story's plan length. Counted in sentences, not characters:
    a ``maxLength`` ceiling made llama.cpp refuse the grammar (tests/real/test_e2e_real.py compiles them all). Broken
    builds seen failing: no sentence ceiling in the pattern; the plans' ceiling not following ``plan_sentences``."""
    from recurrentgpt.cell import plans_field
    from recurrentgpt.models.scripted import ScriptedModel
    from recurrentgpt.simulator import HumanSimulator
    from recurrentgpt.story import Settings

    field = Field("plans", "Plan", items=3, min_chars=15, line=True, max_sentences=2)
    pattern = re.compile(schema_for([field])["properties"]["plans"]["items"]["pattern"])
    for plan in [
        "Mara climbs the tower. She finds the log!",
        "The keeper says \u201cwe stay.\u201d",
        "Mara climbs the tower\u2026",
        "\u6797\u628a\u706f\u5854\u7684\u65e5\u5fd7\u4ea4\u7ed9\u4e86\u8239\u957f\uff0c\u7136\u540e\u79bb\u5f00\u4e86\u3002",
    ]:
        assert pattern.match(plan), plan
    for runaway in [
        "Mara climbs the tower. She finds the log. She reads it aloud.",
        "Mara climbs the tower and never stops",
        "Short. Then a long second sentence.",
    ]:
        assert not pattern.match(runaway), runaway
    assert plans_field(Settings(plan_sentences=2)).max_sentences == 4 and plans_field(Settings()).max_sentences == 10
    model = ScriptedModel()
    HumanSimulator(model, Settings(plan_sentences=3)).choose(
        genre="sf", title="T", short_memory="M.", previous_paragraph="P.", plans=["a", "b", "c"]
    )
    assert "{0,5}" in model.requests[-1].schema["properties"]["plan"]["pattern"]  # 6 sentences at most
