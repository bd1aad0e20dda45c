"""Pure data: a story is a tree of immutable nodes, one paragraph each.

A node holds the whole recurrent state *after* its paragraph, so
checking out any node restores exactly what the next step will see:

    plan          x_t   the instruction that produced this paragraph
    paragraph     o_t   the text written at this step
    short_memory  h_t   the summary rewritten at this step (with its rationale)
    plans               the 3 candidate plans proposed for the next step
    synopsis            one or two sentences on the paragraph, indexed beside it in the long-term memory
                        (derived: "" until a step or a backfill writes it, then never changed)
    (long-term memory c_t is implicit: the paragraphs of this node's ancestors)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from .errors import InputError

WORDS_PER_SENTENCE = 20  # what lengths asked for in sentences come to in words, for budgets
MAX_TEXT_CHARS = 20_000  # a plan, paragraph or memory longer than this is a mistake, not a story
Mode = Literal["writer", "fiction"]
MEMORY_UPDATES = ("edit", "rewrite")
BIBLE_MODES = ("manual", "review", "auto", "off")
MEMORY_OVERFLOWS = ("oldest", "model")
NodeKind = Literal["opening", "step", "edit", "import"]


@dataclass(frozen=True)
class Sampling:
    """How tokens are drawn besides the temperature (``Settings.sampling``). Each
    backend sends the ones its server accepts, under the server's own names (``presets.Preset.samplers``)."""

    top_p: float = 0.95
    min_p: float = 0.05
    top_k: int = 40
    repeat_penalty: float = 1.1
    presence_penalty: float = 0.0


@dataclass(frozen=True)
class Settings:
    """Per-story knobs. Defaults follow the paper (Section 2 and its appendix)."""

    paragraph_sentences: int = 20  # length of one paragraph
    memory_sentences: int = 20  # short-term memory: at most this many sentences …
    memory_words: int = 500  # … and this many words
    plan_sentences: int = 5  # length of each candidate plan
    opening_paragraphs: int = 3  # paragraphs written by init
    top_k: int = 2  # long-term paragraphs retrieved per step
    new_character_probability: float = 0.1  # the paper's nudge to introduce (and remember) a new character
    language: str = "en"  # prompt language: a folder under prompts/
    person: str = "second"  # fiction mode narration: "second" or "third" person
    temperature: float = 0.8  # the authors' code samples at 0.5 (the paper names none); the benchmarks were
    # measured at 0.8, so it stays the default: --temperature 0.5 gives the reference's
    retries: int = 3  # re-asks when the model's output has the wrong shape
    simulator: str = "paper"  # auto mode: "paper" (pick and revise a plan) or "reference" (the authors' code:
    # first expand the paragraph, then revise the plan)
    chapter_paragraphs: int = 0  # the most paragraphs a chapter has in auto mode: it ends there; 0: no limit
    chapter_min_paragraphs: int = 0  # the fewest: until then auto mode does not ask the model whether to end it
    chapter_proposals: bool = True  # auto mode: the step's plan call may propose ending the chapter (with a reason),
    # and the human simulator accepts or refuses
    two_phase: bool = True  # write the paragraph as free text first, then the memory and plans in a second
    # call that continues the same conversation (no JSON grammar on the prose; the KV cache serves the prefix)
    memory_update: str = "edit"  # how the two-phase step updates the short-term memory. "edit": the model names the
    # memory's sentences to forget and writes the ones to add (the paper's forget and input gates as edits: the
    # kept sentences stay word for word, and the model writes a few sentences instead of the whole memory);
    # "rewrite": the paper's rationale and whole new memory. The one-call step is the paper's: always "rewrite"
    memory_overflow: str = "oldest"  # an edited memory over its limits: "oldest" sentences go first (no call), or
    # "model": one more call of the step's conversation names the sentences that matter least. Pins always stay
    synopsis: bool = True  # each step also writes a one- or two-sentence synopsis of its paragraph, indexed beside
    # it in the long-term memory (~43 generated tokens a step on the bundled model, whose synopses did not help)
    bible: str = "manual"  # the story bible (canon). "manual": the writer's entries feed every step and each
    # paragraph is checked against them (no model call); "review": the model also proposes changes after each
    # step, kept on the node until the writer accepts them; "auto": applied at once, and a paragraph with a
    # severe conflict is written once more; "off": the bible stays out of the steps
    bible_check: str = "rules"  # continuity check after each step: "rules" (no model call) or "model" (rules, then
    # one more call asking the model for conflicts that need reading: a rule broken, a secret known too soon)
    bible_budget: int = 300  # most prompt tokens the bible's entries may add to a step
    # how tokens are drawn besides the temperature, sent to every backend that takes them (models/presets.py); the
    # defaults are llama.cpp's, which the embedded engine always used, so a story samples alike everywhere
    top_p: float = 0.95  # nucleus sampling: the most likely tokens that together hold this much probability
    min_p: float = 0.05  # drop tokens less likely than this share of the most likely one
    top_k_tokens: int = 40  # draw from this many most likely tokens (0: all); `top_k` is the recall count
    repeat_penalty: float = 1.1  # >1 makes tokens just written less likely (llama.cpp's; vLLM's repetition_penalty)
    presence_penalty: float = 0.0  # the OpenAI API's: >0 favours tokens not yet in the text

    @property
    def sampling(self) -> Sampling:
        """The samplers a request carries."""
        return Sampling(top_p=self.top_p, min_p=self.min_p, top_k=self.top_k_tokens,
                        repeat_penalty=self.repeat_penalty, presence_penalty=self.presence_penalty)

    @property
    def paragraph_words(self) -> int:
        """About how many words a paragraph asked for holds (~20 words a sentence)."""
        return self.paragraph_sentences * WORDS_PER_SENTENCE

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "Settings":
        """Settings from names and values (a request, a tree file, a stored story); the rest keep their
        defaults. An unknown name or a value of the wrong type is an ``InputError``; ranges are the
        loom's to check (``validate_settings``)."""
        defaults = cls()
        values: dict[str, Any] = {}
        for name, value in (data or {}).items():
            if name not in _SETTING_NAMES:
                raise InputError(f"unknown setting '{name}' (known: {', '.join(_SETTING_NAMES)})")
            kind = type(getattr(defaults, name))
            try:
                if kind is bool:  # a switch is true or false, never "yes" or 1
                    if not isinstance(value, bool):
                        raise TypeError
                elif isinstance(value, (bool, list, dict)) or value is None:
                    raise TypeError
                values[name] = kind(value)
            except (TypeError, ValueError):
                raise InputError(f"setting '{name}' must be {_KIND_NAMES[kind]}") from None
        return dataclasses.replace(defaults, **values)


_SETTING_NAMES = tuple(f.name for f in dataclasses.fields(Settings))
_KIND_NAMES = {int: "a whole number", float: "a number", str: "text", bool: "true or false"}


def sampling_problems(s: Settings) -> list[str]:
    """What is wrong with a story's samplers (each a value a server would refuse or that stops sampling)."""
    checks = [
        (0.0 < s.top_p <= 1.0, "top-p must be above 0 and at most 1"),
        (0.0 <= s.min_p < 1.0, "min-p must be at least 0 and below 1"),
        (0 <= s.top_k_tokens <= 1000, "top-k tokens must be between 0 and 1000"),
        (0.5 <= s.repeat_penalty <= 2.0, "the repeat penalty must be between 0.5 and 2"),
        (-2.0 <= s.presence_penalty <= 2.0, "the presence penalty must be between -2 and 2"),
    ]
    return [message for ok, message in checks if not ok]


def check_length(what: str, text: str) -> None:
    """Refuse a text longer than ``MAX_TEXT_CHARS``."""
    if len(text) > MAX_TEXT_CHARS:
        raise InputError(f"the {what} is {len(text):,} characters long; the limit is {MAX_TEXT_CHARS:,}")


# the arc and a chapter's beats go into every step's prompt: a writer's own are held to what a model's would be
MAX_OUTLINE_WORDS = 400
MAX_BEATS_WORDS = 250


def check_outline(what: str, text: str, max_words: int) -> str:
    """A writer's arc or beats, stripped; empty or over ``max_words`` (a Chinese character counts half a word,
    as in ``shape.word_count``) is an ``InputError``."""
    import re

    text = text.strip()
    if not text:
        raise InputError(f"the {what} is empty")
    words = len(re.findall(r"[^\W\u3400-\u9fff]+", text)) + len(re.findall(r"[\u3400-\u9fff]", text)) // 2
    if words > max_words:
        raise InputError(f"the {what} is {words:,} words long; the limit is {max_words:,} "
                         "(it goes into every step's prompt)")
    return text


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0  # prompt tokens served from a reused KV-cache prefix
    seconds: float = 0.0
    calls: int = 0

    def __add__(self, other: "Usage") -> "Usage":
        return Usage(*(a + b for a, b in zip(dataclasses.astuple(self), dataclasses.astuple(other))))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# node meta that holds recorded prompts and answers (kilobytes each): left out of light views
TRACE_KEYS = ("trace", "bible_trace", "check_trace", "forget_trace")
WRITTEN_BY = {"opening": "opening", "import": "resume", "edit": "refresh", "step": "step"}  # the call that wrote a node


@dataclass(frozen=True)
class Node:
    id: str
    story_id: str
    parent_id: str | None
    depth: int  # 0 for the first paragraph
    kind: NodeKind
    plan: str
    paragraph: str
    rationale: str
    short_memory: str
    plans: tuple[str, ...]
    meta: dict[str, Any] = field(default_factory=dict)  # model, usage, retrieved ids …
    created_at: float = 0.0
    pruned: bool = False
    synopsis: str = ""

    def to_dict(self, *, trace: bool = True) -> dict[str, Any]:
        """``trace=False`` leaves out the recorded prompts and answers (kilobytes a node) for light views."""
        d = dataclasses.asdict(self)
        d["plans"] = list(self.plans)
        if not trace:
            d["meta"] = {k: v for k, v in d["meta"].items() if k not in TRACE_KEYS}
            for key in ("chapter_end", "ends_chapter", "simulator"):
                if isinstance(d["meta"].get(key), dict):
                    d["meta"][key] = {k: v for k, v in d["meta"][key].items() if k != "trace"}
            if d["meta"].get("drafts"):
                d["meta"]["drafts"] = [{k: v for k, v in draft.items() if k != "trace"}
                                       for draft in d["meta"]["drafts"]]
        return d

    def calls(self) -> list[tuple[str, dict[str, Any]]]:
        """Every model call recorded on this node, named, in the order they were made: the simulator's choice,
        the chapter end it opens with, drafts rejected for contradicting the canon, the call(s) that wrote the node
        (a two-phase step's two: "paragraph", then "memory and plans"), the forget call, the checker, the bible's
        upkeep, and the end of a chapter ended at it.
        Each is a trace: ``system``, ``prompt``, ``answer`` (and ``history``, the earlier turns it continued)."""
        m = self.meta
        out: list[tuple[str, dict[str, Any]]] = []

        def add(name: str, trace: Any) -> None:
            if not isinstance(trace, dict) or "prompt" not in trace:
                return
            if trace.get("prompt_2"):  # a two-phase call: two turns of one conversation
                out.append((f"{name}: paragraph", {k: trace[k] for k in ("system", "prompt", "answer") if k in trace}))
                out.append((f"{name}: memory and plans", {"system": trace.get("system", ""),
                                                          "prompt": trace["prompt_2"],
                                                          "answer": trace.get("answer_2", ""),
                                                          "history": [[trace["prompt"], trace.get("answer", "")]]}))
            else:
                out.append((name, trace))

        add("simulator", (m.get("simulator") or {}).get("trace") if isinstance(m.get("simulator"), dict) else None)
        opened = m.get("chapter_end")
        add("chapter end", opened.get("trace") if isinstance(opened, dict) else None)
        for i, draft in enumerate(m.get("drafts") or [], 1):
            add(f"rejected draft {i}", draft.get("trace") if isinstance(draft, dict) else None)
        add(WRITTEN_BY.get(self.kind, "step"), m.get("trace"))
        add("forget", m.get("forget_trace"))
        add("checker", m.get("check_trace"))
        add("bible", m.get("bible_trace"))
        if isinstance(m.get("ends_chapter"), dict):  # the chapter ended at this node, once its paragraph was written
            add("chapter end", m["ends_chapter"].get("trace"))
        return out


@dataclass(frozen=True)
class StoryInfo:
    id: str
    title: str
    genre: str
    topic: str
    premise: str
    outline: str
    mode: Mode
    settings: Settings
    profile: dict[str, Any]  # fiction mode: the reader's name and preferences
    head_id: str | None
    created_at: float
    updated_at: float

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["settings"] = self.settings.to_dict()
        return d


@dataclass(frozen=True)
class Retrieved:
    """A long-term memory hit: a past paragraph and why it was recalled."""

    node_id: str
    depth: int
    paragraph: str
    score: float
    passage: str = ""  # what a step's prompt shows of it: the part that matched best (``memory.passage``), or all of it

    def __post_init__(self) -> None:
        if not self.passage:
            object.__setattr__(self, "passage", self.paragraph)


@dataclass(frozen=True)
class TreeRow:
    """A light view of one node for tree rendering: no full texts."""

    id: str
    parent_id: str | None
    depth: int
    kind: str
    preview: str
    pruned: bool
    created_at: float
    before_edit: bool = False  # reattached: written before an edit above it (``Loom.edit(reattach=True)``)
    chapter: int = 0  # the chapter this node opens (0: it opens none)


def validate_settings(s: Settings) -> None:
    """Refuse settings out of range before any model call, naming the first one wrong."""
    checks = [
        (1 <= s.paragraph_sentences <= 60, "paragraph sentences must be between 1 and 60"),
        (1 <= s.memory_sentences <= 60, "memory sentences must be between 1 and 60"),
        (20 <= s.memory_words <= 2000, "memory words must be between 20 and 2000"),
        (1 <= s.plan_sentences <= 20, "plan sentences must be between 1 and 20"),
        (1 <= s.opening_paragraphs <= 10, "opening paragraphs must be between 1 and 10"),
        (0 <= s.top_k <= 20, "top-k must be between 0 and 20"),
        (0.0 <= s.new_character_probability <= 1.0, "the new-character probability must be between 0 and 1"),
        (0.0 <= s.temperature <= 2.0, "temperature must be between 0 and 2"),
        (0 <= s.retries <= 10, "retries must be between 0 and 10"),
        (s.person in ("first", "second", "third"), "person must be first, second or third"),
        (s.bible in BIBLE_MODES, f"the bible mode must be one of {', '.join(BIBLE_MODES)}"),
        (0 <= s.bible_budget <= 4000, "the bible's token budget must be between 0 and 4000"),
        (s.bible_check in ("rules", "model"), "the bible check must be rules or model"),
        (s.memory_update in MEMORY_UPDATES, f"the memory update must be one of {', '.join(MEMORY_UPDATES)}"),
        (s.memory_overflow in MEMORY_OVERFLOWS, f"the memory overflow must be one of {', '.join(MEMORY_OVERFLOWS)}"),
        (0 <= s.chapter_paragraphs <= 10_000, "chapter paragraphs must be between 0 and 10000"),
        (0 <= s.chapter_min_paragraphs <= 10_000, "the fewest chapter paragraphs must be between 0 and 10000"),
        (not s.chapter_paragraphs or s.chapter_min_paragraphs <= s.chapter_paragraphs,
         "the fewest paragraphs of a chapter cannot be more than the most (chapter paragraphs)"),
    ]
    for ok, message in checks:
        if not ok:
            raise InputError(message)
    for message in sampling_problems(s):
        raise InputError(message)
    from . import prompts  # the template folders say which languages exist

    if s.language not in prompts.languages():
        raise InputError(f"no prompts for language '{s.language}' (have: {', '.join(prompts.languages())})")
