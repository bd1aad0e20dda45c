"""A paper-style quality evaluation (RecurrentGPT, Section 3): pairwise preferences against a baseline.

For each genre, one model writes stories of a target length twice from the same opening:

    recurrentgpt  the recurrent cell in auto mode (`Loom.auto`: the human simulator picks the plans)
    rolling       the same model continuing the text with as much recent text as fits a token budget
                  (prompts/<language>/rolling.j2): no memory, no plans

A judge model (any backend; by default the same model) then says which story is more interesting and
which is more coherent. Each pair is judged twice, once in each order, so a judge that always prefers
the first (or second) story counts as no preference at all. The table gives each system's share of
the valid votes per genre and overall, as the paper's Table 1 does for human raters.

    from recurrentgpt.evaluate import EvalConfig, run_eval
    report = run_eval(loom, judge=loom.model, config=EvalConfig(genres=["sci-fi", "horror"], words=600))
    print(format_table(report))
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from . import prompts
from .errors import InputError, OutputFormatError, RecurrentGPTError
from .models.base import Model, Request
from .story import Settings, Usage
from .structured import Field, ask

SYSTEMS = ("recurrentgpt", "rolling")
CRITERIA = ("interesting", "coherent")

#: The paper's genres, each with a topic to write about (any genre name works; unknown ones get a generic topic).
GENRE_TOPICS = {
    "sci-fi": "a lighthouse keeper on Mars finds a message from Earth that should not exist",
    "romance": "two rival bakers on the same street are forced to share one oven for a winter",
    "fantasy": "a young cartographer discovers that her maps change the land they describe",
    "horror": "a family moves into a farmhouse where every clock stops at the same minute",
    "mystery": "a retired detective is asked to find a violin stolen during a concert",
    "thriller": "an air-traffic controller hears a voice on the radio from a flight that landed years ago",
}

# The verdicts come first: a small judge that rambles in its reason is cut off after them, not before.
JUDGE_FIELDS = [
    Field("interesting", "More interesting", kind="integer"),
    Field("coherent", "More coherent", kind="integer"),
    Field("reason", "Reason", min_chars=10),
]
JUDGE_TEMPERATURE = 0.2  # near-greedy, but a retry after a malformed answer is not the same answer again

# The rolling baseline's system message: the writer's role without the memories it does not have.
ROLLING_SYSTEM = "You are a skilled novelist continuing a long story one paragraph at a time."

OnProgress = Callable[[str], None]


@dataclass(frozen=True)
class EvalConfig:
    genres: list[str] = field(default_factory=lambda: list(GENRE_TOPICS))
    stories_per_genre: int = 1
    words: int = 1000  # target length of each story, opening included
    rolling_budget: int = 2048  # tokens of the most recent text the rolling baseline keeps in its prompt
    judge_words: int = 1500  # longer stories are shown to the judge with their middle cut out
    max_steps: int = 60  # a story that stops growing ends here
    settings: Settings = field(default_factory=Settings)


@dataclass
class StoryPair:
    genre: str
    topic: str
    title: str
    opening: list[str]
    recurrentgpt: list[str]  # paragraphs after the opening
    rolling: list[str]
    stats: dict[str, Any] = field(default_factory=dict)

    def text(self, system: str) -> str:
        return "\n\n".join(self.opening + getattr(self, system))


@dataclass
class Judgement:
    genre: str
    pair: int
    first: str  # the system shown as Story 1
    interesting: str | None  # the system preferred, or None when the judge gave no valid answer
    coherent: str | None
    reason: str
    raw: dict[str, Any] = field(default_factory=dict)


# -- generation ---------------------------------------------------------------------------------------


def _words(paragraphs: list[str]) -> int:
    return sum(len(p.split()) for p in paragraphs)


def count_tokens(model: Model, text: str) -> int:
    """The model's own tokenizer where it has one (the embedded engine); else about 4 tokens per 3 words."""
    counter = getattr(model, "count_tokens", None)
    if callable(counter):
        return int(counter(text))
    return math.ceil(len(text.split()) * 4 / 3)


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


def write_rolling(model: Model, settings: Settings, genre: str, title: str, opening: list[str], target_words: int,
                  budget: int, max_steps: int) -> tuple[list[str], Usage]:
    """The baseline: continue the text paragraph by paragraph until the story has ``target_words``."""
    written: list[str] = []
    usage = Usage()
    max_tokens = int(settings.paragraph_sentences * 22 * 1.6) + 100
    while _words(opening + written) < target_words and len(written) < max_steps:
        prompt = rolling_prompt(model, settings, genre, title, opening + written, budget)
        text = ""
        for _ in range(1 + settings.retries):
            completion = model.complete(Request(ROLLING_SYSTEM, prompt, None, max_tokens, settings.temperature))
            usage = usage + completion.usage
            text = " ".join(completion.text.split())
            if len(text) >= 40:
                break
        if len(text) < 40:
            raise OutputFormatError(f"the rolling baseline got no paragraph {1 + settings.retries} times")
        written.append(text)
    return written, usage


def write_recurrent(loom: Any, story_id: str, target_words: int, max_steps: int,
                    on_progress: OnProgress | None = None) -> tuple[list[str], bool]:
    """Auto mode until the story has ``target_words``. A step whose answer keeps the wrong shape is tried
    again; after three failures in a row the story ends where it is (returned as incomplete)."""
    failures = 0
    steps = 0
    while steps < max_steps:
        path = loom.path(story_id)
        if _words([n.paragraph for n in path]) >= target_words:
            break
        try:
            loom.auto(story_id, 1)
            steps += 1
            failures = 0
        except OutputFormatError as e:
            failures += 1
            if on_progress:
                on_progress(f"  (a step failed: {e})")
            if failures >= 3:
                return [n.paragraph for n in loom.path(story_id) if n.kind != "opening"], False
    return [n.paragraph for n in loom.path(story_id) if n.kind != "opening"], True


def generate_pair(loom: Any, genre: str, topic: str, config: EvalConfig, on_progress: OnProgress | None = None) -> StoryPair:
    model = loom.model
    started = time.perf_counter()
    info = loom.new_story(genre, topic, settings=config.settings)
    opening = [n.paragraph for n in loom.path(info.id)]
    opening_s = time.perf_counter() - started
    if on_progress:
        on_progress(f"  opening: {info.title!r}, {_words(opening)} words, {opening_s:.0f} s")

    started = time.perf_counter()
    recurrent, complete = write_recurrent(loom, info.id, config.words, config.max_steps, on_progress)
    recurrent_s = time.perf_counter() - started
    recurrent_usage = loom.usage(loom.path(info.id)[len(opening):])  # the cell's calls and the simulator's
    if on_progress:
        on_progress(f"  recurrentgpt: {len(recurrent)} paragraphs, {_words(opening + recurrent)} words, {recurrent_s:.0f} s")

    started = time.perf_counter()
    rolling, rolling_usage = write_rolling(model, config.settings, genre, info.title, opening, config.words,
                                           config.rolling_budget, config.max_steps)
    rolling_s = time.perf_counter() - started
    if on_progress:
        on_progress(f"  rolling: {len(rolling)} paragraphs, {_words(opening + rolling)} words, {rolling_s:.0f} s")
    return StoryPair(
        genre=genre, topic=topic, title=info.title, opening=opening, recurrentgpt=recurrent, rolling=rolling,
        stats={
            "story_id": info.id,
            "opening_s": round(opening_s, 1),
            "recurrentgpt": {"paragraphs": len(recurrent), "words": _words(opening + recurrent),
                             "seconds": round(recurrent_s, 1), "complete": complete, "usage": recurrent_usage.to_dict()},
            "rolling": {"paragraphs": len(rolling), "words": _words(opening + rolling), "seconds": round(rolling_s, 1),
                        "usage": rolling_usage.to_dict()},
        },
    )


# -- judging ------------------------------------------------------------------------------------------


def for_judge(text: str, max_words: int) -> str:
    """The whole story, or its beginning and end with the middle cut out if it is too long."""
    words = text.split(" ")
    if len(words) <= max_words:
        return text
    half = max_words // 2
    return " ".join(words[:half]) + f"\n\n[… {len(words) - 2 * half} words omitted …]\n\n" + " ".join(words[-half:])


def judge_once(judge: Model, pair: StoryPair, index: int, first: str, config: EvalConfig) -> Judgement:
    second = SYSTEMS[1] if first == SYSTEMS[0] else SYSTEMS[0]
    s = config.settings

    def render(json_output: bool) -> str:
        return prompts.render(s.language, "judge", json_output=json_output, fields=JUDGE_FIELDS, genre=pair.genre,
                              story_1=for_judge(pair.text(first), config.judge_words),
                              story_2=for_judge(pair.text(second), config.judge_words))

    try:
        answer, usage = ask(judge, "You are a careful, impartial literary critic.", render, JUDGE_FIELDS,
                            max_tokens=400, temperature=JUDGE_TEMPERATURE, retries=s.retries)
    except OutputFormatError as e:
        return Judgement(pair.genre, index, first, None, None, f"(no valid answer: {e})")

    def system(choice: int) -> str | None:
        return {1: first, 2: second}.get(choice)

    return Judgement(pair.genre, index, first, system(answer["interesting"]), system(answer["coherent"]),
                     answer["reason"], {"interesting": answer["interesting"], "coherent": answer["coherent"],
                                        "usage": usage.to_dict()})


def judge_pair(judge: Model, pair: StoryPair, index: int, config: EvalConfig) -> list[Judgement]:
    """Both orders, so position bias cancels."""
    return [judge_once(judge, pair, index, first, config) for first in SYSTEMS]


# -- scoring ------------------------------------------------------------------------------------------


def win_rates(judgements: list[Judgement]) -> dict[str, Any]:
    """Each system's share (%) of the valid votes per criterion, plus how much the judge's choices depended
    on position: ``first_position`` is the share of valid votes that went to Story 1, ``consistent`` the
    share of pairs whose two orders agreed."""
    out: dict[str, Any] = {}
    for criterion in CRITERIA:
        votes = [getattr(j, criterion) for j in judgements]
        valid = [v for v in votes if v is not None]
        firsts = [getattr(j, criterion) == j.first for j in judgements if getattr(j, criterion) is not None]
        pairs: dict[tuple[str, int], list[str | None]] = {}
        for j in judgements:
            pairs.setdefault((j.genre, j.pair), []).append(getattr(j, criterion))
        both = [v for v in pairs.values() if len(v) == 2 and None not in v]
        out[criterion] = {
            **{s: (round(100 * valid.count(s) / len(valid), 1) if valid else None) for s in SYSTEMS},
            "votes": len(valid),
            "invalid": len(votes) - len(valid),
            "first_position": round(100 * sum(firsts) / len(firsts), 1) if firsts else None,
            "consistent": round(100 * sum(v[0] == v[1] for v in both) / len(both), 1) if both else None,
        }
    return out


def score(judgements: list[Judgement]) -> dict[str, Any]:
    genres = list(dict.fromkeys(j.genre for j in judgements))
    table = {g: win_rates([j for j in judgements if j.genre == g]) for g in genres}
    table["overall"] = win_rates(judgements)
    return table


def format_table(report: dict[str, Any]) -> str:
    """A Markdown table like the paper's: each system's win % per genre and overall, both criteria."""
    rows = ["| genre | interesting: RecurrentGPT | interesting: rolling | coherent: RecurrentGPT | coherent: rolling "
            "| votes (valid/all) | chose Story 1 | orders agree |",
            "|---|---|---|---|---|---|---|---|"]

    def pct(v: float | None) -> str:
        return "–" if v is None else f"{v:.1f}%"

    for genre, rates in report["table"].items():
        i, c = rates["interesting"], rates["coherent"]
        votes = f"{i['votes'] + c['votes']}/{i['votes'] + c['votes'] + i['invalid'] + c['invalid']}"
        first = [x for x in (i["first_position"], c["first_position"]) if x is not None]
        agree = [x for x in (i["consistent"], c["consistent"]) if x is not None]
        name = f"**{genre}**" if genre == "overall" else genre
        rows.append(f"| {name} | {pct(i['recurrentgpt'])} | {pct(i['rolling'])} | {pct(c['recurrentgpt'])} | "
                    f"{pct(c['rolling'])} | {votes} | {pct(sum(first) / len(first) if first else None)} | "
                    f"{pct(sum(agree) / len(agree) if agree else None)} |")
    return "\n".join(rows)


# -- the whole run ------------------------------------------------------------------------------------


def run_eval(loom: Any, judge: Model, config: EvalConfig, on_progress: OnProgress | None = None) -> dict[str, Any]:
    """Generate, judge and score. ``loom`` writes both systems' stories with its model; its library keeps
    the RecurrentGPT stories (use a scratch library)."""
    if not config.genres:
        raise InputError("name at least one genre")
    if config.stories_per_genre < 1:
        raise InputError("write at least one story per genre")
    started = time.perf_counter()
    pairs: list[StoryPair] = []
    judgements: list[Judgement] = []
    for genre in config.genres:
        topic = GENRE_TOPICS.get(genre, f"an unexpected event changes an ordinary life ({genre})")
        for k in range(config.stories_per_genre):
            if on_progress:
                on_progress(f"{genre} {k + 1}/{config.stories_per_genre}: writing both stories…")
            try:
                pair = generate_pair(loom, genre, topic, config, on_progress)
            except RecurrentGPTError as e:
                if on_progress:
                    on_progress(f"  skipped: {e}")
                continue
            pairs.append(pair)
            if on_progress:
                on_progress("  judging in both orders…")
            judgements += judge_pair(judge, pair, k, config)
    return {
        "config": {**asdict(config), "settings": config.settings.to_dict()},
        "model": getattr(loom.model, "name", "model"),
        "judge": getattr(judge, "name", "model"),
        "table": score(judgements),
        "judgements": [asdict(j) for j in judgements],
        "stories": [asdict(p) for p in pairs],
        "seconds": round(time.perf_counter() - started, 1),
    }
