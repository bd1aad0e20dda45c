"""The human simulator (auto mode): a second prompt that plays the person choosing the next plan.

As in the paper, it picks the most interesting of the three candidate plans and revises it into an
outline of the next paragraph. With ``Settings.simulator == "reference"`` it behaves like the authors'
code instead, approximately: their code makes two calls (select a plan with a reason, then extend the latest
paragraph to about twice its length and revise the plan); here one call does both, and the extended paragraph
then replaces that paragraph in the story. In fiction mode it plays the reader, who sees their own profile,
choosing an action. When the step proposed ending the chapter, the simulator also accepts or refuses that.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable

from . import prompts, shape
from .models.base import Model
from .story import Mode, Settings, Usage
from .structured import Field, ask, line_ceiling, weak_if

FIELDS = [
    Field("choice", "Choice", kind="integer"),
    Field("reason", "Reason"),
    Field("plan", "Plan", min_chars=15, line=True),
]
EXTENDED = Field("paragraph", "Paragraph", min_chars=80)
END_CHAPTER = Field("end_chapter", "End chapter", optional=True)  # accept or refuse the step's proposal


@dataclass(frozen=True)
class Choice:
    index: int  # 0-based index of the chosen candidate
    plan: str  # the revised plan that becomes the next input
    reason: str
    usage: Usage
    extended_paragraph: str = ""  # reference simulator: the latest paragraph, rewritten longer
    end_chapter: bool | None = None  # the step's proposal to end the chapter: accepted, refused, or not asked
    trace: dict[str, Any] | None = None  # the call's exact prompt and answer
    warning: str = ""  # an answer on the chapter that was neither yes nor no (taken as no)


class HumanSimulator:
    def __init__(self, model: Model, settings: Settings | None = None):
        self.model = model
        self.settings = settings or Settings()

    def choose(
        self,
        *,
        genre: str,
        title: str,
        short_memory: str,
        previous_paragraph: str,
        plans: list[str],
        mode: Mode = "writer",
        profile: dict[str, Any] | None = None,
        cancel: Callable[[], bool] | None = None,
        chapter: int = 1,
        chapter_proposal: str | None = None,
    ) -> Choice:
        """``chapter_proposal``: the step proposed ending ``chapter`` with the latest paragraph, for this reason
        ("" for none given); the simulator accepts or refuses it (``Choice.end_chapter``). None: not asked."""
        s = self.settings
        expand = s.simulator == "reference" and mode == "writer"
        ask_chapter = chapter_proposal is not None and mode == "writer"
        # the revised plan is a line, its ceiling from the story's plan length like the candidates'
        fields = [replace(f, max_sentences=line_ceiling(s.plan_sentences)) if f.line else f for f in FIELDS]
        fields = [EXTENDED, *fields] if expand else fields
        fields = prompts.localize(s.language, [*fields, END_CHAPTER] if ask_chapter else fields)
        template = "fiction_simulator" if mode == "fiction" else "simulator"

        def render(json_output: bool) -> str:
            return prompts.render(
                s.language,
                template,
                json_output=json_output,
                fields=fields,
                genre=genre,
                title=title,
                short_memory=short_memory,
                previous_paragraph=previous_paragraph,
                plans=plans,
                plan_sentences=s.plan_sentences,
                profile=profile or {},
                expand=expand,
                chapter=chapter,
                chapter_proposal=chapter_proposal if ask_chapter else None,
            )

        def check(answer: dict[str, Any]) -> dict[str, Any]:
            texts = {"plan": answer["plan"], **({"paragraph": answer["paragraph"]} if expand else {})}
            problems = [f"the {name} holds {p}" for name, p in ((n, shape.leak(t)) for n, t in texts.items()) if p]
            answer = {
                **answer,
                **{name: shape.tidy(t) for name, t in texts.items()},
                "reason": shape.tidy(answer["reason"]),
            }
            return weak_if(answer, problems)

        extended_words = len(previous_paragraph.split()) * 2 if expand else 0
        trace: list[dict[str, Any]] = []
        answer, usage = ask(
            self.model,
            prompts.render(s.language, "system", mode=mode),
            render,
            fields,
            # the answer's own lengths plus half again: a verbose model is not cut off and asked again
            max_tokens=int((s.plan_sentences * 40 + 120 + extended_words * 1.35) * 1.5),
            temperature=s.temperature,
            retries=s.retries,
            cancel=cancel,
            check=check,
            sampling=s.sampling,
            trace=trace,
        )
        # Small models sometimes answer 0 or 4: keep the revision, clamp the index to a real candidate.
        index = min(max(answer["choice"], 1), len(plans)) - 1
        end_chapter, warning = None, ""
        if ask_chapter:
            said, warning = shape.chapter_proposal(answer.get("end_chapter", ""))
            end_chapter = said is not None  # no answer, or one that is neither yes nor no: the chapter goes on
        return Choice(index=index, plan=answer["plan"], reason=answer["reason"], usage=usage,
                      extended_paragraph=answer.get("paragraph", ""), end_chapter=end_chapter, trace=trace[-1],
                      warning=warning)
