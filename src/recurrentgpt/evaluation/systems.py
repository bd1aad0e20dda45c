"""The systems under comparison, and how each continues an opening to a length counted beyond it.

Every system continues the *same* opening (a copy of one `Loom.new_story`) until the words it wrote after
the opening reach the target, so two finished systems differ in length by less than one paragraph.

RecurrentGPT and its ablations run through the loom's public methods (`auto`, `choose`, `step`, `edit`, `export`,
`import_tree`), each in its own copy of the opening's story so that per-story settings (``top_k``) can differ.
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Literal

from .. import prompts
from ..errors import InputError, ModelError, OutputFormatError
from ..models.base import Model, Request
from ..shape import word_count
from ..story import Settings, Usage

OnProgress = Callable[[str], None]

# The rolling baseline's system message: the writer's role without the memories it does not have.
ROLLING_SYSTEM = "You are a skilled novelist continuing a long story one paragraph at a time."
# What a step sees instead of its short-term memory in the "no-short-term" ablation (the loom refuses an empty one).
NO_SHORT_MEMORY = "(none)"
# The plan every step of the "no-plans" ablation follows: no plan, so the step writes on from its memories
# (recalled by the previous paragraph, since a fixed text would recall the same paragraphs at every step).
NO_PLAN = "(none: continue the story from the memory and the previous paragraph)"
DEFAULT_CONTEXT = 8192  # tokens, for a backend that does not say: override with --context


@dataclass(frozen=True)
class System:
    name: str
    description: str
    kind: Literal["recurrent", "rolling"]
    long_term: bool = True  # False: top_k = 0, no paragraph is recalled
    short_term: bool = True  # False: every step and simulator call sees NO_SHORT_MEMORY instead of the summary
    revision: bool = True  # False: the simulator's chosen candidate plan is followed as it was proposed
    plans: bool = True  # False: no simulator call; every step follows NO_PLAN
    bible: bool = True  # False: the story bible stays out of the steps (bible "off")
    context: Literal["same", "whole"] = "same"  # rolling: RecurrentGPT's step-prompt size, or the model's context


SYSTEMS: dict[str, System] = {s.name: s for s in [
    System("recurrentgpt", "RecurrentGPT in auto mode: long- and short-term memory, the simulator revises its "
           "chosen plan", "recurrent"),
    System("no-long-term", "RecurrentGPT without long-term memory (top-k = 0: no recalled paragraph)", "recurrent",
           long_term=False),
    System("no-short-term", f"RecurrentGPT without short-term memory (every step sees '{NO_SHORT_MEMORY}')",
           "recurrent", short_term=False),
    System("no-revision", "RecurrentGPT whose simulator picks a plan but does not revise it", "recurrent",
           revision=False),
    System("no-plans", f"RecurrentGPT without plans: no simulator, every step follows the plan '{NO_PLAN}' "
           "and recalls by the previous paragraph", "recurrent", plans=False),
    System("no-bible", "RecurrentGPT with the story bible off (differs from recurrentgpt only under --bible "
           "review or auto: under manual an evaluated story has no entries)", "recurrent", bible=False),
    System("rolling", "the model continuing the most recent text that fits RecurrentGPT's step-prompt size",
           "rolling"),
    System("rolling-full", "the model continuing the most recent text that fits its whole context window",
           "rolling", context="whole"),
]}


def system(name: str) -> System:
    try:
        return SYSTEMS[name]
    except KeyError:
        raise InputError(f"unknown system '{name}' (have: {', '.join(SYSTEMS)})") from None


@dataclass
class Written:
    """One system's continuation of an opening."""

    system: str
    paragraphs: list[str]  # after the opening
    plans: list[str]  # the plan each paragraph followed ("" for the rolling baseline)
    complete: bool  # reached the target length
    seconds: float
    usage: Usage  # every model call, the simulator's included
    step_prompt_tokens: list[int] = field(default_factory=list)  # per step call (recurrent), for the rolling budget
    budget: int | None = None  # rolling: the tokens of recent text its prompt keeps
    note: str = ""  # why it stopped short
    failed: str = ""  # the model call that failed (after the client's retries), when that is why


    @property
    def words(self) -> int:
        return words(self.paragraphs)

    def to_dict(self) -> dict[str, Any]:
        return {"system": self.system, "paragraphs": self.paragraphs, "plans": self.plans, "words": self.words,
                "complete": self.complete, "seconds": round(self.seconds, 1), "usage": self.usage.to_dict(),
                "budget": self.budget, "note": self.note, "failed": self.failed}


def words(paragraphs: list[str]) -> int:
    """Words as the export counts them: spaced words, and two CJK characters a word."""
    return sum(word_count(p) for p in paragraphs)


CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")


def estimate_tokens(text: str) -> int:
    """About 4 tokens per 3 spaced words, and one per CJK character (its tokenizers give one or two)."""
    cjk = len(CJK.findall(text))
    return math.ceil(len(CJK.sub(" ", text).split()) * 4 / 3) + cjk


def count_tokens(model: Model, text: str) -> int:
    """The model's own tokenizer where it has one (the embedded engine); else an estimate (``estimate_tokens``)."""
    counter = getattr(model, "count_tokens", None)
    if callable(counter):
        return int(counter(text))
    return estimate_tokens(text)


def context_window(model: Model, override: int | None) -> int:
    """``override``, else what the backend tells (a server's documented endpoint, the engine's n_ctx), else 8192."""
    return override or int(model.context_window() or getattr(model, "n_ctx", 0) or DEFAULT_CONTEXT)


# -- RecurrentGPT and its ablations -------------------------------------------------------------------


def copy_story(loom: Any, story_id: str, settings: Settings) -> str:
    """A copy of a story (its tree as exported) with other settings: the same opening, node for node."""
    tree = json.loads(loom.export(story_id, "tree"))
    tree["story"]["settings"] = settings.to_dict()
    return loom.import_tree(json.dumps(tree).encode("utf-8")).id


def settings_for(s: System, settings: Settings) -> Settings:
    if not s.long_term:
        settings = replace(settings, top_k=0)
    if not s.bible:
        settings = replace(settings, bible="off")
    return settings


def write_recurrent(loom: Any, opening_story: str, s: System, settings: Settings, target_words: int, max_steps: int,
                    on_progress: OnProgress | None = None) -> Written:
    """Auto mode (`Loom.auto`, one step at a time so the switches can act between steps) until the paragraphs
    after the opening have ``target_words``; without revision, the simulator's choice is followed through
    `Loom.choose` and `Loom.step`; without plans, `Loom.step` follows ``NO_PLAN``, recalling by the previous
    paragraph. A step whose answer keeps
    the wrong shape is tried again; after three failures in a row the story ends where it is (incomplete).
    A call that fails outright (the server, after the client's retries) ends it too, with the reason."""
    started = time.perf_counter()
    story = copy_story(loom, opening_story, settings_for(s, settings))
    opening_nodes = len(loom.path(story))
    if not s.short_term:
        loom.edit(story, "head", short_memory=NO_SHORT_MEMORY)
    out = Written(s.name, [], [], complete=False, seconds=0.0, usage=Usage())
    failures = 0
    while True:
        line = loom.path(story)[opening_nodes:]  # edits replace nodes on the line; the text is what is on it
        out.paragraphs = [n.paragraph for n in line]
        out.plans = [n.plan if s.plans else "" for n in line]
        if out.words >= target_words:
            break
        if len(line) >= max_steps:
            out.note = f"stopped at --max-steps {max_steps}"
            break
        try:
            if not s.plans:
                node = loom.step(story, NO_PLAN, recall_by=loom.path(story)[-1].paragraph)
            elif s.revision:
                node = loom.auto(story, 1)[0]
            else:
                choice = loom.choose(story)
                simulator = {"choice": choice.index + 1, "reason": choice.reason, "usage": choice.usage.to_dict()}
                node = loom.step(story, choice.index, meta={"simulator": simulator})
        except OutputFormatError as e:
            failures += 1
            if on_progress:
                on_progress(f"    ({s.name}: a step failed: {e})")
            if failures >= 3:
                out.note = f"3 failed steps in a row: {e}"
                break
            continue
        except ModelError as e:
            out.failed = out.note = f"a call failed: {e}"
            if on_progress:
                on_progress(f"    ({s.name}: {out.failed})")
            break
        failures = 0
        step_usage = Usage(**node.meta.get("usage", {}))
        out.usage = out.usage + loom.usage([node])  # the step's and the simulator's
        if step_usage.calls:
            out.step_prompt_tokens.append(round(step_usage.prompt_tokens / step_usage.calls))
        if not s.short_term:
            loom.edit(story, node.id, short_memory=NO_SHORT_MEMORY)
    out.complete = out.words >= target_words
    out.seconds = time.perf_counter() - started
    return out


# -- the rolling baseline -----------------------------------------------------------------------------


def rolling_prompt(model: Model, settings: Settings, genre: str, title: str, paragraphs: list[str], budget: int) -> str:
    """rolling.j2 with the most recent whole paragraphs that fit ``budget`` tokens (at least the last one)."""
    kept: list[str] = []
    used = 0
    for paragraph in reversed(paragraphs):
        cost = count_tokens(model, paragraph) + 1
        if kept and used + cost > budget:
            break
        kept.insert(0, paragraph)
        used += cost
    return prompts.render(settings.language, "rolling", genre=genre, title=title,
                          paragraph_sentences=settings.paragraph_sentences, text="\n\n".join(kept))


def rolling_answer_tokens(settings: Settings) -> int:
    return int(settings.paragraph_sentences * 22 * 1.6) + 100


def rolling_budget(model: Model, settings: Settings, s: System, genre: str, title: str, *, context: int,
                   recurrent_prompt_tokens: list[int], fixed: int | None) -> int:
    """Tokens of recent text the baseline keeps: its whole prompt as large as RecurrentGPT's mean step prompt
    (``same``), or as much as the context holds beside the answer (``whole``); ``fixed`` overrides ``same``."""
    overhead = (count_tokens(model, ROLLING_SYSTEM)
                + count_tokens(model, rolling_prompt(model, settings, genre, title, [""], 0)))
    if s.context == "whole":
        return max(64, context - rolling_answer_tokens(settings) - overhead - 16)
    if fixed:
        return fixed
    if not recurrent_prompt_tokens:
        raise InputError("the rolling baseline's budget is RecurrentGPT's step-prompt size, but no RecurrentGPT "
                         "step was written in this pair; give --rolling-budget")
    return max(64, round(sum(recurrent_prompt_tokens) / len(recurrent_prompt_tokens)) - overhead)


def write_rolling(model: Model, settings: Settings, genre: str, title: str, opening: list[str], target_words: int,
                  budget: int, max_steps: int, name: str = "rolling") -> Written:
    """The baseline: continue the text paragraph by paragraph until the paragraphs after the opening have
    ``target_words``. A call that returns no paragraph is retried; after ``retries`` the story ends short."""
    started = time.perf_counter()
    out = Written(name, [], [], complete=False, seconds=0.0, usage=Usage(), budget=budget)
    while out.words < target_words and len(out.paragraphs) < max_steps:
        prompt = rolling_prompt(model, settings, genre, title, opening + out.paragraphs, budget)
        text = ""
        try:
            for _ in range(1 + settings.retries):
                completion = model.complete(Request(ROLLING_SYSTEM, prompt, None, rolling_answer_tokens(settings),
                                                    settings.temperature))
                out.usage = out.usage + completion.usage
                text = " ".join(completion.text.split())
                if len(text) >= 40:
                    break
        except ModelError as e:
            out.failed = out.note = f"a call failed: {e}"
            break
        if len(text) < 40:
            out.note = f"no paragraph in {1 + settings.retries} calls"
            break
        out.paragraphs.append(text)
        out.plans.append("")
    if out.words < target_words and not out.note:
        out.note = f"stopped at --max-steps {max_steps}"
    out.complete = out.words >= target_words
    out.seconds = time.perf_counter() - started
    return out
