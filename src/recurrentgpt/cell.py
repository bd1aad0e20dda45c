"""The recurrent cell (paper, Section 2): an LSTM whose vectors are language.

At step t the cell reads

    x_t   the plan for the next paragraph (chosen, edited or written by a person)
    o_t-1 the previous paragraph
    h_t-1 the short-term memory, a summary rewritten every step
    c_t-1 the long-term memory: past paragraphs related to the plan, recalled by the caller

and one prompt ("the gates") asks one LLM call for

    o_t   the next paragraph
    h_t   a rationale (what to drop, what to add) and the updated short-term memory
    x_t+1 three candidate plans, from which a person (or the simulator) picks the next input.

``init`` starts the recurrence from a genre and a topic. The cell is pure: it never touches the
store; the loom gives it its inputs and persists what it returns.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Callable

from . import prompts
from .errors import InputError, OutputFormatError
from .models.base import Model, OnText
from .story import Mode, Settings, Usage
from .structured import Field, ask

OnRetry = Callable[[int, OutputFormatError], None]
Cancel = Callable[[], bool]  # checked on every chunk the model streams; True stops the call

STEP_FIELDS = [
    Field("paragraph", "Paragraph", min_chars=80),
    Field("rationale", "Rationale", min_chars=10),
    Field("short_memory", "Short-term memory", min_chars=40),
    Field("plans", "Plan", items=3, min_chars=15),
]


@dataclass(frozen=True)
class Premise:
    genre: str
    topic: str
    premise: str = ""  # optional: the author's premise
    outline: str = ""  # optional: the author's outline of the opening
    mode: Mode = "writer"
    profile: dict[str, Any] | None = None  # fiction mode: the reader


@dataclass(frozen=True)
class Opening:
    title: str
    outline: str
    paragraphs: list[str]
    short_memory: str
    plans: list[str]
    usage: Usage


@dataclass(frozen=True)
class CellInput:
    genre: str
    title: str
    outline: str
    plan: str  # x_t
    previous_paragraph: str  # o_t-1
    short_memory: str  # h_t-1
    long_term: list[str]  # c_t-1, already recalled for this plan
    mode: Mode = "writer"
    profile: dict[str, Any] | None = None


@dataclass(frozen=True)
class StepOutput:
    paragraph: str  # o_t
    rationale: str
    short_memory: str  # h_t
    plans: list[str]  # candidates for x_t+1
    usage: Usage
    prompt: str  # exactly what the model was asked, for inspection


class RecurrentCell:
    def __init__(self, model: Model, settings: Settings | None = None, rng: random.Random | None = None):
        self.model = model
        self.settings = settings or Settings()
        self.rng = rng or random.Random()

    def init(
        self, premise: Premise, on_text: OnText | None = None, on_retry: OnRetry | None = None,
        cancel: Cancel | None = None,
    ) -> Opening:
        if not premise.genre.strip() or not premise.topic.strip():
            raise InputError("a story needs a genre and a topic")
        s = self.settings
        # one key per paragraph: small models keep a flat object far better than a list of long texts
        paragraph_fields = [
            Field(f"paragraph_{i}", f"Paragraph {i}", min_chars=80, about="paragraph") for i in range(1, s.opening_paragraphs + 1)
        ]
        fields = [
            Field("title", "Title", min_chars=2),
            Field("outline", "Outline", min_chars=40),
            *paragraph_fields,
            Field("short_memory", "Summary", min_chars=40),
            Field("plans", "Plan", items=3, min_chars=15),
        ]
        template = "fiction_init" if premise.mode == "fiction" else "init"
        answer, usage = self._ask(
            template,
            fields,
            dict(
                genre=premise.genre,
                topic=premise.topic,
                premise=premise.premise,
                outline=premise.outline,
                profile=premise.profile or {},
                n_paragraphs=s.opening_paragraphs,
            ),
            mode=premise.mode,
            max_tokens=self._budget(paragraphs=s.opening_paragraphs) + 200,
            on_text=on_text,
            on_retry=on_retry,
            stream_field=[f.name for f in paragraph_fields],
            cancel=cancel,
        )
        return Opening(
            title=answer["title"],
            outline=answer["outline"],
            paragraphs=[answer[f.name] for f in paragraph_fields],
            short_memory=answer["short_memory"],
            plans=answer["plans"],
            usage=usage,
        )

    def step(
        self, x: CellInput, on_text: OnText | None = None, on_retry: OnRetry | None = None,
        cancel: Cancel | None = None,
    ) -> StepOutput:
        if not x.plan.strip():
            raise InputError("the plan for the next paragraph is empty")
        new_character = self.rng.random() < self.settings.new_character_probability
        template = "fiction_step" if x.mode == "fiction" else "step"
        variables = dict(
            genre=x.genre,
            title=x.title,
            outline=x.outline,
            retrieved=x.long_term,
            short_memory=x.short_memory,
            previous_paragraph=x.previous_paragraph,
            plan=x.plan,
            new_character=new_character,
            profile=x.profile or {},
        )
        prompt_seen: list[str] = []
        answer, usage = self._ask(
            template,
            STEP_FIELDS,
            variables,
            mode=x.mode,
            max_tokens=self._budget(paragraphs=1),
            on_text=on_text,
            on_retry=on_retry,
            stream_field="paragraph",
            prompt_seen=prompt_seen,
            cancel=cancel,
        )
        return StepOutput(
            paragraph=answer["paragraph"],
            rationale=answer["rationale"],
            short_memory=answer["short_memory"],
            plans=answer["plans"],
            usage=usage,
            prompt=prompt_seen[-1],
        )

    def resume(self, genre: str, title: str, paragraphs: list[str], on_retry: OnRetry | None = None) -> Opening:
        """Start the recurrence from an existing manuscript: read its last paragraphs and produce the
        title, outline, first short-term memory and plans, so a writer can continue their own book."""
        fields = [
            Field("title", "Title", min_chars=2),
            Field("outline", "Outline", min_chars=40),
            Field("short_memory", "Short-term memory", min_chars=40),
            Field("plans", "Plan", items=3, min_chars=15),
        ]
        answer, usage = self._ask(
            "resume",
            fields,
            dict(genre=genre, title=title, paragraphs=paragraphs),
            mode="writer",
            max_tokens=self._budget(paragraphs=0),
            on_text=None,
            on_retry=on_retry,
            stream_field=None,
        )
        return Opening(answer["title"], answer["outline"], [], answer["short_memory"], answer["plans"], usage)

    # -- plumbing -------------------------------------------------------------------------

    def _budget(self, paragraphs: int) -> int:
        """A token ceiling generous enough for the requested lengths, so runaway output ends."""
        s = self.settings
        # ~20 words a sentence, ~1.35 tokens a word (SmolLM2's and GPT tokenizers on English prose), plus
        # room for keys, the rationale and the title: a runaway answer stops here instead of at the context
        words = paragraphs * s.paragraph_sentences * 20 + s.memory_words + 3 * s.plan_sentences * 20 + 150
        return int(words * 1.35) + 100

    def _ask(
        self,
        template: str,
        fields: list[Field],
        variables: dict[str, Any],
        *,
        mode: Mode,
        max_tokens: int,
        on_text: OnText | None,
        on_retry: OnRetry | None,
        stream_field: str | list[str] | None,
        prompt_seen: list[str] | None = None,
        cancel: Cancel | None = None,
    ) -> tuple[dict[str, Any], Usage]:
        s = self.settings
        common = dict(
            paragraph_sentences=s.paragraph_sentences,
            memory_sentences=s.memory_sentences,
            memory_words=s.memory_words,
            plan_sentences=s.plan_sentences,
            person=s.person,
            fields=fields,
        )

        def render(json_output: bool) -> str:
            text = prompts.render(s.language, template, json_output=json_output, **common, **variables)
            if prompt_seen is not None:
                prompt_seen.append(text)
            return text

        return ask(
            self.model,
            prompts.render(s.language, "system", mode=mode),
            render,
            fields,
            max_tokens=max_tokens,
            temperature=s.temperature,
            retries=s.retries,
            on_text=on_text,
            on_retry=on_retry,
            stream_field=stream_field,
            cancel=cancel,
        )
