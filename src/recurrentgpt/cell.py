"""The recurrent cell (paper, Section 2): an LSTM whose vectors are language.

At step t the cell reads

    x_t   the plan for the next paragraph (chosen, edited or written by a person)
    o_t-1 the previous paragraph
    h_t-1 the short-term memory, a summary rewritten every step
    c_t-1 the long-term memory: past paragraphs (and chapter summaries) related to the plan, recalled
          by the caller
          and the outline: the book's arc and the current chapter's beats

and one prompt ("the gates") asks one LLM call for

    o_t   the next paragraph
    h_t   a rationale (what is kept, dropped and added: the forget gate) and the updated short-term memory
    x_t+1 three candidate plans, from which a person (or the simulator) picks the next input.

``init`` starts the recurrence from a genre and a topic; ``end_chapter`` summarises a finished chapter
(a second level of long-term memory) and plans the next one; ``refresh`` re-derives a node's memory and
plans after a writer edits its paragraph. An answer that parses but cannot be a step (plans that are
the same, a repeated paragraph, JSON or prompt text in the prose) is asked again (``shape.py``).
The cell is pure: it never touches the store; the loom gives it its inputs and persists what it returns.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field, replace
from typing import Any, Callable

from . import prompts, shape
from .errors import Cancelled, InputError, ModelError, OutputFormatError
from .models.base import Model, OnText, Request
from .models.context import estimate_tokens
from .story import WORDS_PER_SENTENCE, Mode, Settings, Usage
from .structured import Field, ask, line_ceiling, sentences, wants_json, weak_if

Trace = dict[str, str]  # the exact system prompt, prompt and raw answer of the call that was kept

OnRetry = Callable[[int, OutputFormatError], None]
Cancel = Callable[[], bool]  # checked on every chunk the model streams; True stops the call

_PLAN_MARK = "\x00plan\x00"  # where the plan goes in a prompt rendered ahead of it (``prefill``)

# the paragraph's own synopsis ("who does what, where") is indexed beside it: plans are written like synopses,
# so a plan finds the paragraph it needs through it. Optional: a missing or bad one never costs the step.
SYNOPSIS_FIELD = Field("synopsis", "Synopsis", min_chars=10, optional=True, line=True,
                       max_sentences=line_ceiling(2))  # "one or two sentences"
PLANS_FIELD = Field("plans", "Plan", items=3, min_chars=15, line=True)  # x_t+1, its ceiling set by ``plans_field``
STEP_FIELDS = [
    Field("paragraph", "Paragraph", min_chars=80),
    SYNOPSIS_FIELD,
    Field("rationale", "Rationale", min_chars=10),
    Field("short_memory", "Short-term memory", min_chars=40),
    PLANS_FIELD,
]
# the two-phase step's memory update as edits (``Settings.memory_update == "edit"``): the forget gate names the
# memory's numbered sentences to drop, the input gate writes the new ones; the rest stays word for word
ADDED_SENTENCES = 3  # what the input gate is asked for ("one to three" in step_state.j2): the token ceiling's share
EDIT_FIELDS = [Field("forget", "Forget", kind="numbers"),
               Field("add", "Add", min_chars=10, line=True, max_sentences=line_ceiling(ADDED_SENTENCES))]
# the model's proposal to end the chapter with the paragraph just written (auto mode): "yes, because …" or "no";
# optional, and a malformed one is a warning on the node, never a failed step
CHAPTER_END_FIELD = Field("chapter_end", "Chapter end", optional=True)
LEAST_FIELD = Field("least", "Least", kind="numbers")  # the memory's overflow: the sentences that matter least


# how a problem names a field ("the memory holds …")
_FIELD_WORDS = {"short_memory": "memory", "beats": "chapter's beats", "add": "memory's new sentences"}
_FIELD_KINDS = {"outline": "outline", "beats": "outline", "rationale": "rationale"}  # (else "note": a memory)


def edit_fields(lines: list[str]) -> list[Field]:
    """The gates' fields for a memory of ``lines``: at most one number a sentence to forget ("5, 5, 5, …" ends
    there under a grammar, or at its budget without one)."""
    return [replace(EDIT_FIELDS[0], max_numbers=max(1, len(lines))), *EDIT_FIELDS[1:]]


def plans_field(settings: Settings) -> Field:
    """The candidate plans: lines of at most twice the story's plan length in sentences."""
    return replace(PLANS_FIELD, max_sentences=line_ceiling(settings.plan_sentences))


BIBLE_FIELD = Field("bible", "Bible", min_chars=2)  # proposed changes to the story bible, one entry a line


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
    outline: str  # the book's arc
    paragraphs: list[str]
    short_memory: str
    plans: list[str]
    usage: Usage
    beats: str = ""  # what the first chapter covers
    synopses: list[str] = field(default_factory=list)  # one sentence per opening paragraph
    trace: Trace | None = None


@dataclass(frozen=True)
class CellInput:
    genre: str
    title: str
    outline: str  # the book's arc
    plan: str  # x_t
    previous_paragraph: str  # o_t-1
    short_memory: str  # h_t-1
    long_term: list[str]  # c_t-1, already recalled for this plan
    mode: Mode = "writer"
    profile: dict[str, Any] | None = None
    chapter: int = 1
    beats: str = ""  # the current chapter's beats
    chapter_summaries: list[str] = field(default_factory=list)  # earlier chapters, recalled for this plan
    canon: list[str] = field(default_factory=list)  # the story bible's entries chosen for this step, one line each
    canon_used: list[str] = field(default_factory=list)  # their names, recorded on the node
    canon_why: list[str] = field(default_factory=list)  # why each was chosen ("named in the plan" …)
    constraints: list[str] = field(default_factory=list)  # conflicts a first attempt had with the canon
    propose_bible: bool = False  # ask for the bible's changes in the step's own answer (measured, not the default)
    pinned: list[str] = field(default_factory=list)  # memory sentences the writer pinned: never forgotten
    paragraphs_in_chapter: int = 0  # the chapter's paragraphs with the one this step writes (0: not told)
    propose_chapter_end: bool = False  # ask whether the chapter should end with this paragraph (auto mode)
    seed: int | None = None  # the paragraph call's sampling seed (a regeneration's own, so it does not copy)
    unlike: list[str] = field(default_factory=list)  # paragraphs it must not repeat (what a regeneration replaces)


@dataclass(frozen=True)
class StepOutput:
    paragraph: str  # o_t
    rationale: str
    short_memory: str  # h_t
    plans: list[str]  # candidates for x_t+1
    usage: Usage
    prompt: str  # exactly what the model was asked, for inspection
    trace: Trace | None = None
    memory_kept: float | None = None  # share of the old memory's words the new one keeps (the forget gate)
    new_character: bool = False  # whether the paper's new-character nudge was in the prompt
    canon_used: list[str] = field(default_factory=list)  # the bible entries the prompt showed
    canon_why: list[str] = field(default_factory=list)
    conflicts: list[dict[str, Any]] | None = None  # with the canon, filled in by the loom's continuity check
    redrafted: list[dict[str, Any]] | None = None  # the conflicts of a first draft that was written again
    bible: str = ""  # the bible's changes as the model proposed them (in this answer or a second call)
    bible_trace: Trace | None = None  # the second call's prompt and answer
    bible_warnings: list[str] = field(default_factory=list)
    check_trace: Trace | None = None  # the model checker's prompt and answer (bible_check="model")
    synopsis: str = ""  # one or two sentences on the paragraph, for the long-term memory's index ("" if none)
    synopsis_warning: str = ""  # why the model's synopsis was dropped
    pinned: list[str] = field(default_factory=list)  # the writer's pinned memory sentences, all kept
    chapter_proposal: dict[str, Any] | None = None  # the model proposed ending the chapter here: {"reason": …}
    chapter_warning: str = ""  # why a malformed proposal was dropped
    # the call that chose what an overflowing memory forgets (memory_overflow="model")
    forget_trace: Trace | None = None
    drafts: list[dict[str, Any]] = field(default_factory=list)  # rejected drafts: their trace and why


@dataclass(frozen=True)
class Proposal:
    """The story bible's changes as a model wrote them (``bible.parse_proposals`` reads them)."""

    text: str
    usage: Usage
    trace: Trace | None = None


@dataclass(frozen=True)
class ChapterEnd:
    summary: str  # the finished chapter, told in a few sentences: recalled by later steps
    rationale: str
    outline: str  # the book's arc, revised if the story has moved past it
    beats: str  # what the next chapter covers
    usage: Usage
    trace: Trace | None = None


@dataclass(frozen=True)
class Refresh:
    rationale: str
    short_memory: str
    plans: list[str]
    usage: Usage
    trace: Trace | None = None
    synopsis: str = ""  # of the rewritten paragraph
    synopsis_warning: str = ""
    forget_trace: Trace | None = None


@dataclass(frozen=True)
class Synopses:
    """Synopses of several paragraphs written in one call (a backfill): "" where the model's was dropped."""

    texts: list[str]
    warnings: list[str]  # one per paragraph, "" when its synopsis was kept
    usage: Usage
    trace: Trace | None = None


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
        n = s.opening_paragraphs
        # one key per paragraph: small models keep a flat object far better than a list of long texts;
        # each paragraph's synopsis gives its node an honest memory and the plan that led to it
        paragraph_fields = [Field(f"paragraph_{i}", f"Paragraph {i}", min_chars=80, about="paragraph")
                            for i in range(1, n + 1)]
        synopsis_fields = [replace(SYNOPSIS_FIELD, name=f"synopsis_{i}", label=f"Synopsis {i}", about="synopsis",
                                   optional=False) for i in range(1, n + 1)]
        fields = [
            Field("title", "Title", min_chars=2),
            Field("outline", "Outline", min_chars=40),
            Field("beats", "Chapter", min_chars=20),
            *[f for pair in zip(paragraph_fields, synopsis_fields) for f in pair],
            Field("short_memory", "Summary", min_chars=40),
            plans_field(self.settings),
        ]

        def check(answer: dict[str, Any]) -> dict[str, Any]:
            answer, problems = self._clean(answer, [f.name for f in paragraph_fields],
                                           ["outline", "beats", "short_memory", *[f.name for f in synopsis_fields]])
            return weak_if(answer, problems + shape.note_problems("summary", answer["short_memory"])
                           + shape.paragraph_problems([answer[f.name] for f in paragraph_fields])
                           + shape.plan_problems(answer["plans"], paragraph=answer[paragraph_fields[-1].name],
                                                 title=answer["title"]))

        template = "fiction_init" if premise.mode == "fiction" else "init"
        trace: list[Trace] = []
        answer, usage = self._ask(
            template,
            fields,
            dict(
                genre=premise.genre,
                topic=premise.topic,
                premise=premise.premise,
                outline=premise.outline,
                profile=premise.profile or {},
                n_paragraphs=n,
            ),
            mode=premise.mode,
            max_tokens=self._budget(paragraphs=n, extra_words=n * 30 + 120),
            on_text=on_text,
            on_retry=on_retry,
            stream_field=[f.name for f in paragraph_fields],
            cancel=cancel,
            check=check,
            trace=trace,
        )
        return Opening(
            title=shape.tidy(answer["title"]).strip('"*# '),
            outline=answer["outline"],
            paragraphs=[answer[f.name] for f in paragraph_fields],
            short_memory=answer["short_memory"],
            plans=answer["plans"],
            usage=usage,
            beats=answer["beats"],
            synopses=[answer[f.name] for f in synopsis_fields],
            trace=trace[-1],
        )

    def step(
        self, x: CellInput, on_text: OnText | None = None, on_retry: OnRetry | None = None,
        cancel: Cancel | None = None,
    ) -> StepOutput:
        if not x.plan.strip():
            raise InputError("the plan for the next paragraph is empty")
        new_character = self.rng.random() < self.settings.new_character_probability
        template, fields, variables = self._paragraph_call(x, new_character)

        def check(answer: dict[str, Any]) -> dict[str, Any]:
            answer, problems = self._clean(answer, ["paragraph"], ["rationale", "short_memory"])
            _refuse_copies(answer["paragraph"], x.unlike)
            if "bible" in answer:  # one entry a line: keep the lines
                answer["bible"] = "\n".join(shape.tidy(line) for line in answer["bible"].splitlines())
            return weak_if(answer, problems + shape.note_problems("memory", answer["short_memory"])
                           + shape.paragraph_problems([answer["paragraph"]], previous=x.previous_paragraph,
                                                      recalled=x.long_term)
                           + shape.plan_problems(answer["plans"], paragraph=answer["paragraph"], title=x.title))

        forget_trace: Trace | None = None
        if self.settings.two_phase:
            answer, usage, step_trace, forget_trace = self._step_in_two_phases(template, fields, variables, x, on_text,
                                                                               on_retry, cancel)
        else:
            trace: list[Trace] = []
            answer, usage = self._ask(
                template,
                fields,
                variables,
                mode=x.mode,
                max_tokens=self._budget(paragraphs=1, extra_words=(120 if x.propose_bible else 0)
                                        + (40 if x.propose_chapter_end else 0)),
                on_text=on_text,
                on_retry=on_retry,
                stream_field="paragraph",
                cancel=cancel,
                check=check,
                trace=trace,
                seed=x.seed,
            )
            step_trace = trace[-1]
            answer = {**answer, **keep_pins(answer["short_memory"], answer["rationale"], x.pinned)}
        synopsis, synopsis_warning = self._synopsis(answer, answer["paragraph"])
        proposal, chapter_warning = (shape.chapter_proposal(answer.get("chapter_end", ""))
                                     if x.propose_chapter_end else (None, ""))
        return StepOutput(
            paragraph=answer["paragraph"],
            rationale=answer["rationale"],
            short_memory=answer["short_memory"],
            plans=answer["plans"],
            usage=usage,
            prompt=step_trace["prompt"],
            trace=step_trace,
            memory_kept=memory_kept(x.short_memory, answer["short_memory"]),
            new_character=new_character,
            canon_used=list(x.canon_used),
            canon_why=list(x.canon_why),
            bible=answer.get("bible", ""),  # a two-phase step leaves the bible to a later call
            synopsis=synopsis,
            synopsis_warning=synopsis_warning,
            pinned=list(x.pinned),
            chapter_proposal=proposal,
            chapter_warning=chapter_warning,
            forget_trace=forget_trace,
        )

    def prefill(self, x: CellInput) -> Usage:
        """Read the next step's prompt as far as it is known without the plan into the model's cache: the
        instructions, the short-term memory and the previous paragraph (the prompt puts what the plan recalls,
        and the plan, after them). Called while the writer reads the plans; the step then reads only what the
        plan brings. ``x``'s plan and recalls are ignored, and nothing is drawn from the story's randomness."""
        template, fields, variables = self._paragraph_call(
            replace(x, plan=_PLAN_MARK, long_term=[], chapter_summaries=[], canon=[], constraints=[]), False)
        # (a two-phase step's paragraph call is plain text)
        prompt = self._render(template, fields, variables,
                              json_output=wants_json(self.model, plain=self.settings.two_phase))
        known = prompt[: prompt.index(_PLAN_MARK)]
        end = known.rfind(x.previous_paragraph)  # what follows it (the next section's heading) depends on the plan
        if x.previous_paragraph and end >= 0:
            known = known[: end + len(x.previous_paragraph)]
        return self.model.prefill(Request(prompts.render(self.settings.language, "system", mode=x.mode), known))

    def _paragraph_call(self, x: CellInput, new_character: bool) -> tuple[str, list[Field], dict[str, Any]]:
        """The template, fields and variables of the call that writes a step's paragraph (a two-phase step's
        first call, which is plain text): one rule for ``step`` and ``prefill``, so the prefilled prompt is
        the step's own."""
        variables = dict(
            genre=x.genre,
            title=x.title,
            outline=x.outline,
            chapter=x.chapter,
            beats=x.beats,
            chapter_summaries=x.chapter_summaries,
            retrieved=x.long_term,
            short_memory=x.short_memory,
            previous_paragraph=x.previous_paragraph,
            plan=x.plan,
            new_character=new_character,
            profile=x.profile or {},
            canon=x.canon,
            constraints=x.constraints,
            propose_bible=x.propose_bible,
            pinned=x.pinned,
            propose_chapter_end=x.propose_chapter_end,
            paragraphs_in_chapter=x.paragraphs_in_chapter,
        )
        template = "fiction_step" if x.mode == "fiction" else "step"
        if not self.settings.two_phase:
            fields = self._step_fields() + [CHAPTER_END_FIELD] * x.propose_chapter_end + [BIBLE_FIELD] * x.propose_bible
            return template, fields, variables
        variables["two_phase"] = True
        if self.settings.memory_update == "edit":  # numbered, so the second call can name what to forget
            variables["memory_lines"] = sentences(x.short_memory)
        return template, self._step_fields()[:1], variables

    def _step_in_two_phases(
        self, template: str, fields: list[Field], variables: dict[str, Any], x: CellInput, on_text: OnText | None,
        on_retry: OnRetry | None, cancel: Cancel | None,
    ) -> tuple[dict[str, Any], Usage, Trace, Trace | None]:
        """The same step in two calls of one conversation: the paragraph as free text (no grammar: as fast
        as the model writes prose, streamed as it comes), then the memory and plans, with the schema, in a
        call whose prompt starts with the first call's prompt and answer, so the KV cache serves it and the
        memory update reads the exact paragraph. Same inputs and the same state as the one-call step; with
        ``memory_update == "edit"`` (the default) the memory comes as the gates' edits (``_edit_memory``)
        instead of rewritten whole, and the rationale is that edit. The call that writes the plans carries the
        pacing guard and, when asked, the proposal to end the chapter. Returns the answer, the usage, the step's
        trace and the trace of the call that chose what an overflowing memory forgets (or None)."""
        paragraph_trace: list[Trace] = []

        def check_paragraph(answer: dict[str, Any]) -> dict[str, Any]:
            answer, problems = self._clean(answer, ["paragraph"], [])
            _refuse_copies(answer["paragraph"], x.unlike)
            return weak_if(answer, problems + shape.paragraph_problems(
                [answer["paragraph"]], previous=x.previous_paragraph, recalled=x.long_term))

        edits = self.settings.memory_update == "edit"
        lines = variables.get("memory_lines", [])
        state_fields = self._step_fields()[1:]
        if edits:  # the rationale and the whole memory give way to the two gates
            state_fields = [f for f in state_fields if f.name not in ("rationale", "short_memory")]
            state_fields[-1:-1] = edit_fields(lines)
        if x.propose_chapter_end:
            state_fields.append(CHAPTER_END_FIELD)
        state_variables = dict(mode=x.mode, memory_lines=lines, pinned=x.pinned,
                               pinned_numbers=pinned_numbers(lines, x.pinned),
                               propose_chapter_end=x.propose_chapter_end, chapter=x.chapter,
                               paragraphs_in_chapter=x.paragraphs_in_chapter)
        state_budget = self._budget(paragraphs=0, edits=edits, extra_words=40 if x.propose_chapter_end else 0)
        # the second call's own instructions and answer ceiling: a server whose context cannot hold the whole
        # conversation refuses the step before its first call (models/context.py)
        reserve = estimate_tokens(self._render("step_state", state_fields, state_variables, True)) + state_budget
        written, usage = self._ask(
            template, fields, variables, mode=x.mode,
            max_tokens=self._budget(paragraphs=1, state=False), on_text=on_text, on_retry=on_retry,
            stream_field=None, cancel=cancel, check=check_paragraph, trace=paragraph_trace, plain=True, seed=x.seed,
            reserve=reserve,
        )
        paragraph = written["paragraph"]

        def check_state(answer: dict[str, Any]) -> dict[str, Any]:
            answer, problems = self._clean(answer, [], ["add"] if edits else ["rationale", "short_memory"])
            if edits:  # only what this answer wrote is judged: a kept sentence was judged when it was added
                problems += shape.note_problems("memory", answer["add"])
                answer["gates"] = self._gates(lines, answer.pop("forget"), answer.pop("add"), x.pinned)
            else:
                problems += shape.note_problems("memory", answer["short_memory"])
            return weak_if(answer, problems + shape.plan_problems(answer["plans"], paragraph=paragraph, title=x.title))

        first = paragraph_trace[-1]
        state_trace: list[Trace] = []
        history = ((first["prompt"], first["answer"]),)
        state, more = self._ask(
            "step_state", state_fields, state_variables, mode=x.mode, max_tokens=state_budget,
            on_text=None, on_retry=on_retry, stream_field=None, cancel=cancel, check=check_state,
            trace=state_trace, history=history,
        )
        second = state_trace[-1]
        usage = usage + more
        forget_trace: Trace | None = None
        if edits:
            turns = (*history, (second["prompt"], second["answer"]))
            edited, more, forget_trace = self._apply_gates(state.pop("gates"), x.pinned, x.mode, turns, on_retry,
                                                           cancel)
            state, usage = {**state, **edited}, usage + more
        else:
            state = {**state, **keep_pins(state["short_memory"], state["rationale"], x.pinned)}
        trace = {"system": first["system"], "prompt": first["prompt"], "answer": first["answer"],
                 "prompt_2": second["prompt"], "answer_2": second["answer"]}
        warnings = [t["warning"] for t in (first, second) if t.get("warning")]
        if warnings:
            trace["warning"] = "; ".join(warnings)
        return {"paragraph": paragraph, **state}, usage, trace, forget_trace

    def propose_bible(
        self, step: Trace, *, mode: Mode = "writer", on_retry: OnRetry | None = None, cancel: Cancel | None = None,
    ) -> Proposal:
        """The bible's changes after a step, in a second call that continues the step's conversation
        (``step``: its trace), so an engine that keeps its KV cache reads only the new instruction. The
        step's answer is already written when this runs: its failure costs no paragraph. In interactive
        fiction (``mode``) it also asks what the reader now carries, has met and has learned."""
        history = [(step["prompt"], step["answer"])]
        if step.get("prompt_2"):  # a two-phase step: the memory and plans were a second turn
            history.append((step["prompt_2"], step["answer_2"]))
        trace: list[Trace] = []
        answer, usage = self._ask(
            "bible_update", [BIBLE_FIELD], {"mode": mode}, mode=mode, max_tokens=400, on_text=None, on_retry=on_retry,
            stream_field=None, cancel=cancel, check=None, trace=trace, history=tuple(history),
        )
        return Proposal(answer["bible"], usage, trace[-1])

    def check_continuity(
        self, *, genre: str, paragraph: str, canon: list[str], retrieved: list[str],
        on_retry: OnRetry | None = None, cancel: Cancel | None = None,
    ) -> tuple[str, Usage, Trace]:
        """The model checker: the paragraph's conflicts with the canon and the recalled paragraphs, one a
        line (``continuity.parse_model_conflicts`` keeps only those that quote the paragraph)."""
        trace: list[Trace] = []
        answer, usage = self._ask(
            "bible_check", [Field("conflicts", "Conflicts", min_chars=2)],
            dict(genre=genre, paragraph=paragraph, canon=canon, retrieved=retrieved),
            mode="writer", max_tokens=400, on_text=None, on_retry=on_retry, stream_field=None, cancel=cancel,
            check=None, trace=trace,
        )
        return answer["conflicts"], usage, trace[-1]

    def first_bible(
        self, *, genre: str, title: str, outline: str, paragraphs: list[str], max_entries: int = 12,
        on_retry: OnRetry | None = None, cancel: Cancel | None = None,
    ) -> Proposal:
        """The first entries of the bible, read from the opening (``new``) or a manuscript (``import``)."""
        trace: list[Trace] = []
        answer, usage = self._ask(
            "bible_init", [BIBLE_FIELD],
            dict(genre=genre, title=title, outline=outline, paragraphs=paragraphs, max_entries=max_entries),
            mode="writer", max_tokens=60 * max_entries + 100, on_text=None, on_retry=on_retry, stream_field=None,
            cancel=cancel, check=None, trace=trace,
        )
        return Proposal(answer["bible"], usage, trace[-1])

    def end_chapter(
        self, *, genre: str, title: str, outline: str, chapter: int, beats: str, short_memory: str,
        paragraphs: list[str], synopses: list[str] | None = None, on_retry: OnRetry | None = None,
        cancel: Cancel | None = None,
    ) -> ChapterEnd:
        """Close chapter ``chapter``: its summary (a second level of long-term memory), the book's arc
        revised if the story has moved past it, and the next chapter's beats. The summary is made from what
        happened: the chapter's ``paragraphs`` while they fit (``CHAPTER_TEXT_WORDS``), else their ``synopses``
        (a paragraph without one by its opening words), with the last paragraph in full."""
        fields = [
            Field("summary", "Summary", min_chars=40),
            Field("rationale", "Rationale", min_chars=10),
            Field("outline", "Outline", min_chars=40),
            Field("beats", "Chapter", min_chars=20),
        ]
        texts, whole, left_out = chapter_texts(paragraphs, synopses or [])
        trace: list[Trace] = []
        answer, usage = self._ask(
            "chapter",
            fields,
            dict(genre=genre, title=title, outline=outline, chapter=chapter, beats=beats,
                 short_memory=short_memory, texts=texts, whole=whole, left_out=left_out,
                 last_paragraph=paragraphs[-1] if paragraphs else ""),
            mode="writer",
            max_tokens=self._budget(paragraphs=0),
            on_text=None,
            on_retry=on_retry,
            stream_field=None,
            cancel=cancel,
            check=lambda a: weak_if(*self._clean(a, [], [f.name for f in fields])),
            trace=trace,
        )
        return ChapterEnd(answer["summary"], answer["rationale"], answer["outline"], answer["beats"], usage, trace[-1])

    def refresh(
        self, *, genre: str, title: str, outline: str, previous_memory: str, previous_paragraph: str,
        paragraph: str, mode: Mode = "writer", pinned: list[str] | tuple[str, ...] = (),
        on_retry: OnRetry | None = None, cancel: Cancel | None = None,
    ) -> Refresh:
        """A writer rewrote ``paragraph``: the memory and plans written for the old text no longer hold.
        One call updates the memory the paragraph's parent had, as a step would (with ``memory_update ==
        "edit"``, the default, in the same edit form: the numbers to forget and the sentences to add, within
        the memory's limits, ``pinned`` sentences kept), and proposes new plans."""
        edits = self.settings.two_phase and self.settings.memory_update == "edit"  # the step's own form
        fields = self._step_fields()[1:]
        lines = sentences(previous_memory) if edits else []
        if edits:  # the rationale and the whole memory give way to the two gates, as in the step
            fields = [f for f in fields if f.name not in ("rationale", "short_memory")]
            fields[-1:-1] = edit_fields(lines)

        def check(answer: dict[str, Any]) -> dict[str, Any]:
            answer, problems = self._clean(answer, [], ["add"] if edits else ["rationale", "short_memory"])
            if edits:
                problems += shape.note_problems("memory", answer["add"])
                answer["gates"] = self._gates(lines, answer.pop("forget"), answer.pop("add"), pinned)
            return weak_if(answer, problems + shape.plan_problems(answer["plans"], paragraph=paragraph, title=title))

        trace: list[Trace] = []
        answer, usage = self._ask(
            "refresh",
            fields,
            dict(genre=genre, title=title, outline=outline, short_memory=previous_memory,
                 previous_paragraph=previous_paragraph, paragraph=paragraph, mode=mode, memory_lines=lines,
                 pinned=list(pinned), pinned_numbers=pinned_numbers(lines, pinned)),
            mode=mode,
            max_tokens=self._budget(paragraphs=0, edits=edits),
            on_text=None,
            on_retry=on_retry,
            stream_field=None,
            cancel=cancel,
            check=check,
            trace=trace,
        )
        forget_trace: Trace | None = None
        if edits:
            turns = ((trace[-1]["prompt"], trace[-1]["answer"]),)
            edited, more, forget_trace = self._apply_gates(answer.pop("gates"), list(pinned), mode, turns, on_retry,
                                                           cancel)
            answer, usage = {**answer, **edited}, usage + more
        else:
            answer = {**answer, **keep_pins(answer["short_memory"], answer["rationale"], pinned)}
        synopsis, synopsis_warning = self._synopsis(answer, paragraph)
        return Refresh(answer["rationale"], answer["short_memory"], answer["plans"], usage, trace[-1],
                       synopsis, synopsis_warning, forget_trace)

    def synopses(
        self, *, genre: str, title: str, paragraphs: list[str], on_retry: OnRetry | None = None,
        cancel: Cancel | None = None,
    ) -> Synopses:
        """One call for the synopses of several consecutive paragraphs (a story written before steps wrote
        them, or an imported manuscript). Each is checked like a step's; a bad one (or a copy of another in
        the batch) is dropped with its reason."""
        fields = [replace(SYNOPSIS_FIELD, name=f"synopsis_{i}", label=f"Synopsis {i}", about="synopsis")
                  for i in range(1, len(paragraphs) + 1)]
        trace: list[Trace] = []
        answer, usage = self._ask(
            "synopses", fields, dict(genre=genre, title=title, paragraphs=paragraphs), mode="writer",
            max_tokens=60 * len(paragraphs) + 100, on_text=None, on_retry=on_retry, stream_field=None,
            cancel=cancel, check=None, trace=trace,
        )
        texts, warnings = [], []
        for f, paragraph in zip(fields, paragraphs):
            text, warning = shape.clean_synopsis(answer[f.name], paragraph)
            if text and any(shape.same(text, earlier) for earlier in texts):
                text, warning = "", "the synopsis repeats another paragraph's"
            texts.append(text)
            warnings.append(warning)
        return Synopses(texts, warnings, usage, trace[-1])

    def resume(self, genre: str, title: str, paragraphs: list[str], on_retry: OnRetry | None = None) -> Opening:
        """Start the recurrence from an existing manuscript: read its last paragraphs and produce the
        title, outline, first short-term memory and plans, so a writer can continue their own book."""
        fields = [
            Field("title", "Title", min_chars=2),
            Field("outline", "Outline", min_chars=40),
            Field("short_memory", "Short-term memory", min_chars=40),
            plans_field(self.settings),
        ]

        def check(answer: dict[str, Any]) -> dict[str, Any]:
            answer, problems = self._clean(answer, [], ["outline", "short_memory"])
            return weak_if(answer, problems + shape.plan_problems(
                answer["plans"], paragraph=paragraphs[-1] if paragraphs else "", title=title))

        trace: list[Trace] = []
        answer, usage = self._ask(
            "resume",
            fields,
            dict(genre=genre, title=title, paragraphs=paragraphs),
            mode="writer",
            max_tokens=self._budget(paragraphs=0),
            on_text=None,
            on_retry=on_retry,
            stream_field=None,
            check=check,
            trace=trace,
        )
        return Opening(shape.tidy(answer["title"]).strip('"*# '), answer["outline"], [], answer["short_memory"],
                       answer["plans"], usage, trace=trace[-1])

    # -- plumbing -------------------------------------------------------------------------

    @staticmethod
    def _clean(answer: dict[str, Any], prose: list[str], notes: list[str]) -> tuple[dict[str, Any], list[str]]:
        """Story text and plans must be story: tidied (one paragraph, no echoed label or JSON debris at
        the ends), and whatever prompt or JSON is left inside them is a problem that makes the answer weak
        (asked again). Memories and rationales are the model's notes: tidied, never refused for wording."""
        out, problems = dict(answer), []
        for name in prose:
            problem = shape.leak(answer[name])
            problems += [f"the paragraph holds {problem}"] if problem else []
            problems += shape.field_problems("paragraph", answer[name], "prose")
            out[name] = shape.tidy(answer[name])
        for name in notes:
            # (a synopsis is checked on its own, and dropped, never asked again for: ``shape.clean_synopsis``)
            if not name.startswith("synopsis"):
                problems += shape.field_problems(_FIELD_WORDS.get(name, name), answer[name],
                                                 _FIELD_KINDS.get(name, "note"))
            out[name] = shape.tidy(answer[name])
        if "title" in answer:
            problems += shape.field_problems("title", answer["title"], "title")
        if "plans" in answer:
            for i, plan in enumerate(answer["plans"], 1):
                problem = shape.leak(plan)
                problems += [f"plan {i} holds {problem}"] if problem else []
                problems += shape.field_problems(f"plan {i}", plan, "plan")
            out["plans"] = [shape.tidy(p) for p in answer["plans"]]
        return out, problems

    def _step_fields(self) -> list[Field]:
        """A step's answer: the paragraph first, and its synopsis only when the story asks for one."""
        return [plans_field(self.settings) if f is PLANS_FIELD else f for f in STEP_FIELDS
                if f is not SYNOPSIS_FIELD or self.settings.synopsis]

    def _synopsis(self, answer: dict[str, Any], paragraph: str) -> tuple[str, str]:
        """The answer's synopsis and why it was dropped; nothing (and no warning) when none was asked for."""
        if not self.settings.synopsis:
            return "", ""
        return shape.clean_synopsis(answer["synopsis"], paragraph)

    def _budget(self, paragraphs: int, extra_words: int = 0, state: bool = True, edits: bool = False) -> int:
        """A token ceiling generous enough for the requested lengths, so runaway output ends. ``state``:
        the answer also holds the memory, the plans and the rationale (not so for a paragraph alone);
        ``edits``: the memory comes as edits (a few sentences), not whole."""
        s = self.settings
        # ~20 words a sentence, ~1.35 tokens a word (SmolLM2's and GPT tokenizers on English prose), plus
        # room for the rationale and the title where asked for, and 100 tokens for a JSON answer's keys (a
        # paragraph alone is plain text: none); then half again, because a capable model that writes a little
        # long must not be cut off and asked again: the ceiling is for runaways, not for style (and a runaway
        # costs the whole ceiling before it is asked again)
        words = paragraphs * s.paragraph_words + extra_words
        if state:  # (+60 words of room for the synopsis, about twice what a small model writes there)
            memory = ADDED_SENTENCES * WORDS_PER_SENTENCE if edits else s.memory_words + 150  # edits: no rationale
            words += memory + 3 * s.plan_sentences * WORDS_PER_SENTENCE + (60 if s.synopsis else 0)
        return int(words * 1.35 * 1.5) + (100 if state else 0)

    def _edit_memory(self, lines: list[str], forget: list[int], add: str, pinned: list[str] | tuple[str, ...] = (),
                     least: list[int] | tuple[int, ...] = ()) -> dict[str, str]:
        """The new memory from the gates' edits: the numbered ``lines`` the model did not ``forget``, then
        the sentences it added; over the story's limits, first the sentences the model named as mattering
        ``least`` (numbers of that combined memory), then the oldest go. A ``pinned`` sentence stays whatever
        the model answers. The rationale the node keeps is the edit itself, one line a sentence: "- "
        forgotten, "+ " added."""
        return self._finish_gates(self._gates(lines, forget, add, pinned), pinned, least)

    def _gates(self, lines: list[str], forget: list[int], add: str,
               pinned: list[str] | tuple[str, ...]) -> dict[str, list[str]]:
        """What the forget and input gates answered, before the memory's limits apply."""
        pins = set(pinned)
        dropped = {i for i in forget if 1 <= i <= len(lines) and lines[i - 1] not in pins}  # a pin is never forgotten
        kept = [line for i, line in enumerate(lines, 1) if i not in dropped]
        added: list[str] = []
        for new in sentences(add):
            if not any(shape.same(new, old) for old in kept + added):
                added.append(new)
        return {"kept": kept, "added": added, "forgotten": [line for i, line in enumerate(lines, 1) if i in dropped]}

    def _over(self, memory: list[str]) -> bool:
        s = self.settings
        return len(memory) > s.memory_sentences or shape.word_count(" ".join(memory)) > s.memory_words

    def _cut(self, memory: list[str], pinned: list[str] | tuple[str, ...],
             least: list[int] | tuple[int, ...] = ()) -> set[int]:
        """Which of ``memory``'s sentences (0-based) go to bring it within the limits: those named in ``least``
        (1-based, in the order given) while it is over, then the oldest; never a pinned one, never the last."""
        pins = set(pinned)
        cut: set[int] = set()

        def over() -> bool:
            left = [line for i, line in enumerate(memory) if i not in cut]
            return len(left) > 1 and self._over(left)

        for n in [*least, *range(1, len(memory) + 1)]:
            if not over():
                break
            if 1 <= n <= len(memory) and memory[n - 1] not in pins:
                cut.add(n - 1)
        return cut

    def _finish_gates(self, gates: dict[str, list[str]], pinned: list[str] | tuple[str, ...],
                      least: list[int] | tuple[int, ...] = ()) -> dict[str, str]:
        kept, added = gates["kept"], gates["added"]
        memory = kept + added
        cut = self._cut(memory, pinned, least)
        gone = gates["forgotten"] + [line for i, line in enumerate(kept) if i in cut]
        new = [line for i, line in enumerate(added, len(kept)) if i not in cut]
        rationale = "\n".join([f"- {line}" for line in gone] + [f"+ {line}" for line in new])
        return {"short_memory": " ".join(line for i, line in enumerate(memory) if i not in cut),
                "rationale": rationale or "(the memory is unchanged)"}

    def _apply_gates(
        self, gates: dict[str, list[str]], pinned: list[str], mode: Mode, history: tuple[tuple[str, str], ...],
        on_retry: OnRetry | None, cancel: Cancel | None,
    ) -> tuple[dict[str, str], Usage, Trace | None]:
        """The gates' edits within the memory's limits. Over them, with ``memory_overflow == "model"`` one more
        call of the same conversation asks which sentences matter least (the oldest go where its answer falls
        short, or if it fails); by default the oldest go, at no cost."""
        memory = gates["kept"] + gates["added"]
        if self.settings.memory_overflow != "model" or not self._cut(memory, pinned):
            return self._finish_gates(gates, pinned), Usage(), None
        trace: list[Trace] = []
        try:
            answer, usage = self._ask(
                "forget", [LEAST_FIELD],
                dict(memory_lines=memory, words=shape.word_count(" ".join(memory)),
                     excess=len(self._cut(memory, pinned)),
                     pinned_numbers=pinned_numbers(memory, pinned)),
                mode=mode, max_tokens=60, on_text=None, on_retry=on_retry, stream_field=None, cancel=cancel,
                check=None, trace=trace, history=history,
            )
        except Cancelled:
            raise
        except ModelError as e:  # the paragraph stands: the oldest go, as by default
            warning = {"warning": f"the model was not asked what to forget: {e}"}
            return self._finish_gates(gates, pinned), Usage(), warning
        return self._finish_gates(gates, pinned, answer["least"]), usage, trace[-1]

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
        cancel: Cancel | None = None,
        check: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        trace: list[Trace] | None = None,
        plain: bool = False,
        history: tuple[tuple[str, str], ...] = (),
        reserve: int = 0,
        seed: int | None = None,
    ) -> tuple[dict[str, Any], Usage]:
        s = self.settings
        return ask(
            self.model,
            prompts.render(s.language, "system", mode=mode),
            lambda json_output: self._render(template, fields, variables, json_output),
            prompts.localize(s.language, [self._with_budget(f) for f in fields]),
            max_tokens=max_tokens,
            temperature=s.temperature,
            retries=s.retries,
            on_text=on_text,
            on_retry=on_retry,
            stream_field=stream_field,
            cancel=cancel,
            check=check,
            trace=trace,
            plain=plain,
            history=history,
            sampling=s.sampling,
            reserve=reserve,
            seed=seed,
        )

    def _with_budget(self, f: Field) -> Field:
        """``f`` with the characters its text may take before it is a runaway (``structured.FieldWatch``): about
        twice what the prompt asks for, at ~6 characters a word, so a verbose answer is never cut; a line's
        from its sentence ceiling (itself twice what is asked), each sentence up to three times the usual length.
        Lists of entries (the bible's, conflicts) have none: their length is the model's to choose, and their
        calls' own ceilings are small."""
        if f.max_chars or f.kind != "string":
            return f
        s, chars = self.settings, 2 * 6
        words = {"paragraph": s.paragraph_words, "short_memory": s.memory_words, "summary": s.memory_words,
                 "outline": 10 * WORDS_PER_SENTENCE, "beats": 10 * WORDS_PER_SENTENCE,
                 "rationale": 10 * WORDS_PER_SENTENCE, "title": 30}.get(f.about or f.name, 0)
        if f.line and f.max_sentences:
            words = f.max_sentences * 3 * WORDS_PER_SENTENCE // 2  # (x 2 below: three times a sentence's words)
        return replace(f, max_chars=words * chars) if words else f

    def _render(self, template: str, fields: list[Field], variables: dict[str, Any], json_output: bool) -> str:
        """A prompt: ``template`` in the story's language, with the story's lengths and ``variables``."""
        s = self.settings
        common = dict(
            paragraph_sentences=s.paragraph_sentences,
            memory_sentences=s.memory_sentences,
            memory_words=s.memory_words,
            plan_sentences=s.plan_sentences,
            person=s.person,
            fields=prompts.localize(s.language, fields),
            two_phase=False,
            memory_update=s.memory_update,
            memory_lines=[],  # the short-term memory numbered sentence by sentence (the edit update's prompts)
            chapter_min_paragraphs=s.chapter_min_paragraphs,
            pinned=[],
            pinned_numbers=[],
            propose_chapter_end=False,
        )
        return prompts.render(s.language, template, json_output=json_output, **{**common, **variables})


def _refuse_copies(paragraph: str, unlike: list[str]) -> None:
    """A regeneration that comes back as the paragraph it replaces (or an alternative already written) is no
    alternative: asked again with the next seed, and never kept."""
    if any(shape.same(paragraph, other) for other in unlike):
        raise OutputFormatError("the paragraph repeats the one it is to replace")


def memory_kept(old: str, new: str) -> float | None:
    """The forget gate, measured: the share of the old memory's content words that the new memory still
    has. The prompt asks to keep the memory except what is deliberately dropped; a value near 0 means
    the model rewrote it wholesale, and the writer should see that. None when there was no old memory."""
    old_words = _content_words(old)
    if len(old_words) < 8:
        return None
    return round(len(old_words & _content_words(new)) / len(old_words), 3)


def _content_words(text: str) -> set[str]:
    """Words of 4+ letters; for scripts written without spaces (Chinese), character pairs."""
    out: set[str] = set()
    for w in re.findall(r"\w+", text.lower()):
        if w.isascii():
            if len(w) > 3:
                out.add(w)
        else:
            out |= {w[i : i + 2] for i in range(len(w) - 1)}
    return out


CHAPTER_TEXT_WORDS = 2500  # most words of a chapter's text the chapter call reads whole (~3,400 tokens)
SYNOPSIS_STANDIN_WORDS = 40  # a paragraph without a synopsis stands in its summary by its opening words


def chapter_texts(paragraphs: list[str], synopses: list[str],
                  max_words: int = CHAPTER_TEXT_WORDS) -> tuple[list[str], bool, int]:
    """What the chapter call reads of a chapter: its paragraphs when they fit ``max_words``, else a synopsis of
    each but the last (its opening words where it has none), the earliest left out if even those do not fit.
    Returns the texts, whether they are the whole paragraphs, and how many paragraphs were left out."""
    if shape.word_count(" ".join(paragraphs)) <= max_words:
        return list(paragraphs), True, 0
    short = []
    for i, paragraph in enumerate(paragraphs[:-1]):
        synopsis = synopses[i] if i < len(synopses) else ""
        short.append(synopsis or " ".join(paragraph.split()[:SYNOPSIS_STANDIN_WORDS]) + " …")
    room = max_words - shape.word_count(paragraphs[-1]) if paragraphs else max_words
    kept: list[str] = []
    for text in reversed(short):  # the chapter's end matters most to what follows
        room -= shape.word_count(text)
        if room < 0:
            break
        kept.insert(0, text)
    return kept, False, len(short) - len(kept)


def pinned_numbers(lines: list[str], pinned: list[str] | tuple[str, ...]) -> list[int]:
    """The numbers (1-based) of ``lines`` that are pinned."""
    pins = set(pinned)
    return [i for i, line in enumerate(lines, 1) if line in pins]


def keep_pins(memory: str, rationale: str, pinned: list[str] | tuple[str, ...]) -> dict[str, str]:
    """A memory rewritten whole (the paper's update) that lost a pinned sentence gets it back, at the front,
    and its rationale says so; {} when every pin is there."""
    have = set(sentences(memory))
    missing = [p for p in pinned if p not in have]
    if not missing:
        return {}
    return {"short_memory": " ".join([*missing, memory]).strip(),
            "rationale": "\n".join([rationale, *(f"(pinned, kept: {p})" for p in missing)]).strip()}

