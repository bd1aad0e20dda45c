"""The human simulator (auto mode): a second prompt that plays the person choosing the next plan.

As in the paper, it picks the most interesting of the three candidate plans and revises it into an
outline of the next paragraph. In fiction mode it plays the reader choosing an action.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from . import prompts
from .models.base import Model
from .story import Mode, Settings, Usage
from .structured import Field, ask

FIELDS = [Field("choice", "Choice", kind="integer"), Field("reason", "Reason"), Field("plan", "Plan")]


@dataclass(frozen=True)
class Choice:
    index: int  # 0-based index of the chosen candidate
    plan: str  # the revised plan that becomes the next input
    reason: str
    usage: Usage


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
        cancel: Callable[[], bool] | None = None,
    ) -> Choice:
        s = self.settings
        template = "fiction_simulator" if mode == "fiction" else "simulator"

        def render(json_output: bool) -> str:
            return prompts.render(
                s.language,
                template,
                json_output=json_output,
                fields=FIELDS,
                genre=genre,
                title=title,
                short_memory=short_memory,
                previous_paragraph=previous_paragraph,
                plans=plans,
                plan_sentences=s.plan_sentences,
            )

        answer, usage = ask(
            self.model,
            prompts.render(s.language, "system", mode=mode),
            render,
            FIELDS,
            max_tokens=int(s.plan_sentences * 40 + 120),
            temperature=s.temperature,
            retries=s.retries,
            cancel=cancel,
        )
        # Small models sometimes answer 0 or 4: keep the revision, clamp the index to a real candidate.
        index = min(max(answer["choice"], 1), len(plans)) - 1
        return Choice(index=index, plan=answer["plan"], reason=answer["reason"], usage=usage)
