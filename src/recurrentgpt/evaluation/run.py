"""The whole evaluation: openings, every system's continuation, judge-free measures, judgements, scores."""

from __future__ import annotations

import math
import os
import platform
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from ..errors import InputError, ModelError, OutputFormatError, RecurrentGPTError
from ..models.base import Model
from ..story import Settings, Usage
from .journal import Journal
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
    # (genre, premise) pairs to write instead of the genres' built-in topics (--premises FILE)
    premises: list[tuple[str, str]] | None = None

    @property
    def systems(self) -> list[str]:
        return [self.system, *self.against]

    def openings(self) -> list[tuple[str, int, str]]:
        """(genre, index within the genre, premise) of every opening, in the order they are written."""
        if self.premises is None:
            return [(g, k, GENRE_TOPICS.get(g, f"an unexpected event changes an ordinary life ({g})"))
                    for g in self.genres for k in range(self.stories_per_genre)]
        out: list[tuple[str, int, str]] = []
        seen: dict[str, int] = {}
        for genre, premise in self.premises:
            for _ in range(self.stories_per_genre):
                out.append((genre, seen.get(genre, 0), premise))
                seen[genre] = seen.get(genre, 0) + 1
        return out

    def check(self) -> None:
        if self.premises is not None and not self.premises:
            raise InputError("the premises file holds no premise")
        if not self.genres and self.premises is None:
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


def write_pair(loom: Any, genre: str, index: int, topic: str, config: EvalConfig, on_progress: OnProgress | None,
               journal: Journal | None = None) -> Pair:
    """An opening, then each system's continuation of it (RecurrentGPT's family first: the rolling baseline's
    budget is the size of its step prompt). A failure of the opening's calls raises; a continuation's failure
    is recorded in it (``Written.failed``) and the next system goes on."""
    model: Model = loom.model
    started = time.perf_counter()
    info = loom.new_story(genre, topic, settings=config.settings)
    opening = [n.paragraph for n in loom.path(info.id)]
    if on_progress:
        on_progress(f"  opening: {info.title!r}, {words(opening)} words, {time.perf_counter() - started:.0f} s")
    if journal:
        journal.unit("opening", {"genre": genre, "pair": index},
                     {"topic": topic, "title": info.title, "opening": opening})
    pair = Pair(genre, index, topic, info.title, info.id, opening, {})
    order = sorted(config.systems, key=lambda name: system(name).kind != "recurrent")
    for name in order:
        s = system(name)
        try:
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
        except ModelError as e:  # outside a step (copying the opening's story …): this continuation only
            w = Written(name, [], [], complete=False, seconds=0.0, usage=Usage(), note=f"a call failed: {e}",
                        failed=f"a call failed: {e}")
        except RecurrentGPTError as e:
            w = Written(name, [], [], complete=False, seconds=0.0, usage=Usage(), note=str(e))
        pair.written[name] = w
        if journal:
            journal.unit("continuation", {"genre": genre, "pair": index, "system": name},
                         {"ok": w.complete, **w.to_dict()})
        if on_progress:
            budget_note = f", budget {w.budget} tokens" if w.budget else ""
            on_progress(f"  {name}: {len(w.paragraphs)} paragraph(s), {w.words} words after the opening, "
                        f"{w.seconds:.0f} s{budget_note}{'' if w.complete else ' — SHORT: ' + w.note}")
    return pair


def run_eval(loom: Any, judge: Model, config: EvalConfig, on_progress: OnProgress | None = None,
             journal: Journal | None = None) -> dict[str, Any]:
    """Write, measure, judge and score. ``loom`` writes every system's stories with its model; its library
    keeps RecurrentGPT's (use a scratch library). A comparison is judged only when both systems reached the
    length; the others are listed under ``incomplete``, and the units whose model calls failed (after the
    client's retries) under ``failed``. With a ``journal``, every finished unit is written to it as it ends
    (the models should be `JournaledModel`s on it, so that every call is too)."""
    config.check()
    # the context windows, as a server tells them, fixed for the run: a resume must lay out its prompts alike
    known = journal.contexts() if journal else None
    if known:
        config = replace(config, context=known["context"], judge_context=known["judge_context"])
    else:
        config = replace(config, context=context_window(loom.model, config.context),
                         judge_context=context_window(judge, config.judge_context))
        if journal:
            journal.append({"kind": "contexts", "context": config.context, "judge_context": config.judge_context})
    notes = []
    if "no-bible" in config.systems and config.settings.bible not in ("review", "auto"):
        notes.append(f"no-bible is RecurrentGPT itself under --bible {config.settings.bible}: an evaluated story "
                     "has no bible entries unless the model writes them (--bible review or auto)")
    for note in notes:
        if on_progress:
            on_progress(f"note: {note}")
    machine = {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
               "load_at_start": [round(x, 2) for x in os.getloadavg()]}
    started = time.perf_counter()
    the_judge = Judge(judge, config.settings, context_window(judge, config.judge_context))
    pairs: list[Pair] = []
    judgements: list[Judgement] = []
    incomplete: list[str] = []
    failed: list[str] = []
    openings = config.openings()
    for number, (genre, k, topic) in enumerate(openings, 1):
        label = f"{genre} {k + 1}"
        if on_progress:
            on_progress(f"{label} ({number}/{len(openings)}): writing {', '.join(config.systems)}…")
        try:
            pair = write_pair(loom, genre, k, topic, config, on_progress, journal)
        except RecurrentGPTError as e:
            incomplete.append(f"{label}: no opening ({e})")
            if isinstance(e, ModelError) and not isinstance(e, OutputFormatError):
                failed.append(f"{label}: the opening: {e}")
            if on_progress:
                on_progress(f"  skipped: {e}")
            continue
        pairs.append(pair)
        for name, w in pair.written.items():
            if not w.complete:
                incomplete.append(f"{label}: {name} wrote {w.words} of {config.words} words ({w.note})")
            if w.failed:
                failed.append(f"{label}: {name}: {w.failed}")
            pair.measures[name] = measure(pair.opening, w.paragraphs)
            if config.plan_check and any(w.plans):
                checked = plan_adherence(judge, config.settings, genre, w.plans, w.paragraphs)
                pair.measures[name]["plan_adherence"] = checked
                if checked["failed"]:
                    failed.append(f"{label}: checking {name}'s plans: {checked['failed']} call(s) failed")
        texts = {name: w.paragraphs for name, w in pair.written.items()}
        for other in config.against:
            if not (pair.written[config.system].complete and pair.written[other].complete):
                continue
            if on_progress:
                on_progress(f"  judging {config.system} vs {other} in both orders…")
            judged = the_judge.judge_pair(genre, k, pair.opening, texts, config.system, other)
            for j in judged:
                if j.failed:
                    failed.append(f"{label}: judging {j.a} vs {j.b}, {j.first} first: {j.failed}")
                if journal:
                    journal.unit("judgement", {"genre": genre, "pair": k, "a": j.a, "b": j.b, "first": j.first},
                                 {"ok": not j.failed, **asdict(j)})
            judgements += judged
    report = {
        "config": {**asdict(config), "settings": config.settings.to_dict()},
        "model": getattr(loom.model, "name", "model"),
        "judge": getattr(judge, "name", "model"),
        "judge_context": the_judge.context,
        "machine": machine,
        "table": score(judgements),
        "measures": summarise_measures(pairs, config.systems),
        "incomplete": incomplete,
        "failed": failed,
        "judgements": [asdict(j) for j in judgements],
        "stories": [p.to_dict() for p in pairs],
        "notes": notes,
        "seconds": round(time.perf_counter() - started, 1),
    }
    if journal:
        report["calls"] = journal.calls
        report["failed_calls"] = journal.failed
    return report


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


def expected_calls(config: EvalConfig, words_per_paragraph: int | None = None, judge_parts: int = 1) -> dict[str, int]:
    """The model calls a run makes when every answer comes in shape the first time (each retry adds one):
    ``generator`` and ``judge`` calls, from the same rules the run follows. ``words_per_paragraph``: what
    the model writes per paragraph (default: what the settings ask, ~20 words a sentence); ``judge_parts``:
    1 when every pair fits the judge's context whole, else the windowed protocol's parts per story.

    Per opening: 1 call (the cell's init), +1 for the first bible entries under bible review or auto.
    Per continuation of P = ceil(words / words_per_paragraph) paragraphs: a RecurrentGPT system makes per
    paragraph 1 step call (2 with --two-phase), +1 simulator call (not "no-plans"), +1 continuity call
    under --bible-check model with the bible on; a rolling baseline 1. The plan check asks the judge once per
    planned paragraph. Judging a comparison asks 2 calls whole; windowed, 2 x (parts + 1) verdicts plus
    summaries: 1 of the opening and 1 per part of each story (each text summarised once per pair).
    """
    s = config.settings
    paragraphs = math.ceil(config.words / (words_per_paragraph or s.paragraph_words))
    openings = len(config.openings())
    generator = judge = 0
    per_opening = 1 + (1 if s.bible in ("review", "auto") else 0)
    planned = 0
    for name in config.systems:
        sy = system(name)
        if sy.kind == "rolling":
            generator += paragraphs
            continue
        bible_on = sy.bible and s.bible != "off"
        per_paragraph = (2 if s.two_phase else 1) + (1 if sy.plans else 0) + (
            1 if bible_on and s.bible_check == "model" else 0)
        generator += paragraphs * per_paragraph
        if sy.plans:
            planned += paragraphs
    if config.plan_check:
        judge += planned
    comparisons = len(config.against)
    if judge_parts <= 1:
        judge += 2 * comparisons
    else:
        texts = 1 + len(config.systems)  # each system's continuation is summarised once per pair
        judge += 1 + texts * judge_parts + 2 * (judge_parts + 1) * comparisons
    return {"generator": openings * (per_opening + generator), "judge": openings * judge}
