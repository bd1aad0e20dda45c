"""The whole evaluation: openings, every system's continuation, judge-free measures, judgements, scores."""

from __future__ import annotations

import os
import platform
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import InputError, RecurrentGPTError
from ..models.base import Model
from ..story import Settings
from .judging import Judge, Judgement
from .measures import measure, plan_adherence
from .stats import score
from .systems import (
    OnProgress,
    Written,
    context_window,
    rolling_budget,
    system,
    words,
    write_recurrent,
    write_rolling,
)

#: The paper's genres, each with a topic to write about (any genre name works; unknown ones get a generic topic).
GENRE_TOPICS = {
    "sci-fi": "a lighthouse keeper on Mars finds a message from Earth that should not exist",
    "romance": "two rival bakers on the same street are forced to share one oven for a winter",
    "fantasy": "a young cartographer discovers that her maps change the land they describe",
    "horror": "a family moves into a farmhouse where every clock stops at the same minute",
    "mystery": "a retired detective is asked to find a violin stolen during a concert",
    "thriller": "an air-traffic controller hears a voice on the radio from a flight that landed years ago",
}


@dataclass(frozen=True)
class EvalConfig:
    genres: list[str] = field(default_factory=lambda: list(GENRE_TOPICS))
    stories_per_genre: int = 1
    words: int = 3000  # each system writes this many words *after* the opening
    system: str = "recurrentgpt"  # compared with each of `against`
    against: list[str] = field(default_factory=lambda: ["rolling"])
    rolling_budget: int | None = None  # tokens of recent text; None: RecurrentGPT's mean step-prompt size
    context: int | None = None  # the generation model's context window; None: its n_ctx, else 8192
    judge_context: int | None = None  # the judge's; None: its n_ctx, else 8192
    max_steps: int = 200  # paragraphs per continuation, at most
    plan_check: bool = True  # a judge call per planned paragraph: did it follow its plan?
    settings: Settings = field(default_factory=Settings)

    @property
    def systems(self) -> list[str]:
        return [self.system, *self.against]

    def check(self) -> None:
        if not self.genres:
            raise InputError("name at least one genre")
        if self.stories_per_genre < 1:
            raise InputError("write at least one story per genre")
        if self.words < 1:
            raise InputError("the target length must be at least one word")
        if not self.against:
            raise InputError("name at least one system to compare with")
        for name in self.systems:
            system(name)
        if len(set(self.systems)) != len(self.systems):
            raise InputError("a system cannot be compared with itself")


@dataclass
class Pair:
    """One opening and every system's continuation of it."""

    genre: str
    index: int
    topic: str
    title: str
    story_id: str
    opening: list[str]
    written: dict[str, Written]
    measures: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"genre": self.genre, "index": self.index, "topic": self.topic, "title": self.title,
                "story_id": self.story_id, "opening": self.opening, "opening_words": words(self.opening),
                "written": {k: w.to_dict() for k, w in self.written.items()}, "measures": self.measures}


def write_pair(loom: Any, genre: str, index: int, config: EvalConfig, on_progress: OnProgress | None) -> Pair:
    """An opening, then each system's continuation of it (RecurrentGPT's family first: the rolling baseline's
    budget is the size of its step prompt)."""
    topic = GENRE_TOPICS.get(genre, f"an unexpected event changes an ordinary life ({genre})")
    model: Model = loom.model
    started = time.perf_counter()
    info = loom.new_story(genre, topic, settings=config.settings)
    opening = [n.paragraph for n in loom.path(info.id)]
    if on_progress:
        on_progress(f"  opening: {info.title!r}, {words(opening)} words, {time.perf_counter() - started:.0f} s")
    pair = Pair(genre, index, topic, info.title, info.id, opening, {})
    order = sorted(config.systems, key=lambda name: system(name).kind != "recurrent")
    for name in order:
        s = system(name)
        if s.kind == "recurrent":
            w = write_recurrent(loom, info.id, s, config.settings, config.words, config.max_steps, on_progress)
        else:
            reference = pair.written.get("recurrentgpt") or next(
                (w for w in pair.written.values() if w.step_prompt_tokens), None)
            budget = rolling_budget(model, config.settings, s, genre, info.title,
                                    context=context_window(model, config.context),
                                    recurrent_prompt_tokens=reference.step_prompt_tokens if reference else [],
                                    fixed=config.rolling_budget)
            w = write_rolling(model, config.settings, genre, info.title, opening, config.words, budget,
                              config.max_steps, name=name)
        pair.written[name] = w
        if on_progress:
            budget_note = f", budget {w.budget} tokens" if w.budget else ""
            on_progress(f"  {name}: {len(w.paragraphs)} paragraph(s), {w.words} words after the opening, "
                        f"{w.seconds:.0f} s{budget_note}{'' if w.complete else ' — SHORT: ' + w.note}")
    return pair


def run_eval(loom: Any, judge: Model, config: EvalConfig, on_progress: OnProgress | None = None) -> dict[str, Any]:
    """Write, measure, judge and score. ``loom`` writes every system's stories with its model; its library
    keeps RecurrentGPT's (use a scratch library). A comparison is judged only when both systems reached the
    length; the others are listed under ``incomplete``."""
    config.check()
    machine = {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
               "load_at_start": [round(x, 2) for x in os.getloadavg()]}
    started = time.perf_counter()
    the_judge = Judge(judge, config.settings, context_window(judge, config.judge_context))
    pairs: list[Pair] = []
    judgements: list[Judgement] = []
    incomplete: list[str] = []
    for genre in config.genres:
        for k in range(config.stories_per_genre):
            if on_progress:
                on_progress(f"{genre} {k + 1}/{config.stories_per_genre}: writing {', '.join(config.systems)}…")
            try:
                pair = write_pair(loom, genre, k, config, on_progress)
            except RecurrentGPTError as e:
                incomplete.append(f"{genre} {k + 1}: no opening ({e})")
                if on_progress:
                    on_progress(f"  skipped: {e}")
                continue
            pairs.append(pair)
            for name, w in pair.written.items():
                if not w.complete:
                    incomplete.append(f"{genre} {k + 1}: {name} wrote {w.words} of {config.words} words ({w.note})")
                pair.measures[name] = measure(pair.opening, w.paragraphs)
                if config.plan_check and any(w.plans):
                    pair.measures[name]["plan_adherence"] = plan_adherence(
                        judge, config.settings, genre, w.plans, w.paragraphs)
            texts = {name: w.paragraphs for name, w in pair.written.items()}
            for other in config.against:
                if not (pair.written[config.system].complete and pair.written[other].complete):
                    continue
                if on_progress:
                    on_progress(f"  judging {config.system} vs {other} in both orders…")
                judgements += the_judge.judge_pair(genre, k, pair.opening, texts, config.system, other)
    return {
        "config": {**asdict(config), "settings": config.settings.to_dict()},
        "model": getattr(loom.model, "name", "model"),
        "judge": getattr(judge, "name", "model"),
        "judge_context": the_judge.context,
        "machine": machine,
        "table": score(judgements),
        "measures": summarise_measures(pairs, config.systems),
        "incomplete": incomplete,
        "judgements": [asdict(j) for j in judgements],
        "stories": [p.to_dict() for p in pairs],
        "seconds": round(time.perf_counter() - started, 1),
    }


def summarise_measures(pairs: list[Pair], systems: list[str]) -> dict[str, dict[str, Any]]:
    """Each system's measures averaged over the pairs (None where a measure had nothing to measure)."""
    keys = ["distinct_1", "distinct_2", "distinct_3", "repeated_4grams", "entity_changes_per_1000_words"]
    out: dict[str, dict[str, Any]] = {}
    for name in systems:
        rows = [p.measures[name] for p in pairs if name in p.measures]
        written = [p.written[name] for p in pairs if name in p.written]
        summary: dict[str, Any] = {
            "stories": len(written),
            "complete": sum(w.complete for w in written),
            "words_after_opening": round(sum(w.words for w in written) / len(written)) if written else None,
            "paragraphs": round(sum(len(w.paragraphs) for w in written) / len(written), 1) if written else None,
        }
        for key in keys:
            values = [r[key] for r in rows if r.get(key) is not None]
            summary[key] = round(sum(values) / len(values), 3) if values else None
        plans = [r["plan_adherence"]["score"] for r in rows if r.get("plan_adherence", {}).get("score") is not None]
        summary["plan_adherence"] = round(sum(plans) / len(plans), 3) if plans else None
        out[name] = summary
    return out
