"""The paper-style evaluation: win-rate arithmetic, judging in both orders, the rolling baseline, the command."""

from __future__ import annotations

import json

from click.testing import CliRunner

from recurrentgpt import ScriptedModel, Settings
from recurrentgpt.cli import cli
from recurrentgpt.evaluate import (
    EvalConfig,
    Judgement,
    StoryPair,
    format_table,
    judge_pair,
    rolling_prompt,
    run_eval,
    score,
    win_rates,
)

from .conftest import SMALL


def pair(genre: str = "horror") -> StoryPair:
    return StoryPair(
        genre=genre,
        topic="a farmhouse",
        title="The Clocks",
        opening=["The clocks stopped at midnight."],
        recurrentgpt=["RECURRENT-MARKER the family searched the cellar."],
        rolling=["ROLLING-MARKER the family went to sleep."],
    )


def answer(interesting: int, coherent: int) -> dict:
    return {"reason": "Story one keeps its promises better.", "interesting": interesting, "coherent": coherent}


def story_1_is_recurrent(request) -> bool:
    story_1 = request.prompt.split("Story 1:")[1].split("Story 2:")[0]
    return "RECURRENT-MARKER" in story_1


def test_win_rates_count_valid_votes_and_position():
    js = [
        Judgement("g", 0, "recurrentgpt", "recurrentgpt", "rolling", ""),
        Judgement("g", 0, "rolling", "recurrentgpt", "rolling", ""),  # same winners in the other order
        Judgement("g", 1, "recurrentgpt", "recurrentgpt", None, ""),  # no valid coherence answer
        Judgement("g", 1, "rolling", "rolling", "recurrentgpt", ""),
    ]
    rates = win_rates(js)
    assert rates["interesting"]["recurrentgpt"] == 75.0
    assert rates["interesting"]["rolling"] == 25.0
    assert rates["interesting"]["votes"] == 4 and rates["interesting"]["invalid"] == 0
    # Story 1 won in judgements 0, 2 and 3
    assert rates["interesting"]["first_position"] == 75.0
    # pair 0 agrees across orders, pair 1 does not
    assert rates["interesting"]["consistent"] == 50.0
    assert rates["coherent"]["rolling"] == 66.7 and rates["coherent"]["recurrentgpt"] == 33.3
    assert rates["coherent"]["invalid"] == 1
    assert rates["coherent"]["consistent"] == 100.0  # only pair 0 has two valid votes, and they agree


def test_each_pair_is_judged_in_both_orders_and_position_bias_cancels():
    judge = ScriptedModel([answer(1, 1), answer(1, 1)])  # a judge that always prefers Story 1
    config = EvalConfig(genres=["horror"], settings=SMALL)
    js = judge_pair(judge, pair(), 0, config)
    assert [j.first for j in js] == ["recurrentgpt", "rolling"]
    assert story_1_is_recurrent(judge.requests[0]) and not story_1_is_recurrent(judge.requests[1])
    assert "ROLLING-MARKER" in judge.requests[0].prompt.split("Story 2:")[1]
    rates = win_rates(js)
    for criterion in ("interesting", "coherent"):
        assert rates[criterion]["recurrentgpt"] == 50.0 and rates[criterion]["rolling"] == 50.0
        assert rates[criterion]["first_position"] == 100.0
        assert rates[criterion]["consistent"] == 0.0


def test_a_judge_that_prefers_one_system_gives_it_every_vote():
    def prefers_recurrent(request):
        choice = 1 if story_1_is_recurrent(request) else 2
        return answer(choice, choice)

    def prefers_rolling_for_coherence(request):
        good = 1 if story_1_is_recurrent(request) else 2
        return answer(good, 3 - good)

    judge = ScriptedModel([prefers_recurrent] * 2 + [prefers_rolling_for_coherence] * 2)
    config = EvalConfig(genres=["horror", "mystery"], settings=SMALL)
    js = judge_pair(judge, pair("horror"), 0, config) + judge_pair(judge, pair("mystery"), 0, config)
    report = score(js)
    assert report["horror"]["interesting"]["recurrentgpt"] == 100.0
    assert report["horror"]["coherent"]["recurrentgpt"] == 100.0
    assert report["mystery"]["coherent"]["rolling"] == 100.0
    assert report["overall"]["interesting"]["recurrentgpt"] == 100.0
    assert report["overall"]["coherent"]["recurrentgpt"] == 50.0
    assert report["overall"]["interesting"]["first_position"] == 50.0
    assert report["overall"]["interesting"]["consistent"] == 100.0
    table = format_table({"table": report})
    assert "| horror | 100.0% | 0.0% | 100.0% | 0.0% |" in table
    assert "| **overall** | 100.0% | 0.0% | 50.0% | 50.0% |" in table


def test_an_answer_that_is_neither_story_is_not_a_vote():
    judge = ScriptedModel([answer(3, 1), answer(0, 2)])
    js = judge_pair(judge, pair(), 0, EvalConfig(settings=SMALL))
    rates = win_rates(js)
    assert rates["interesting"]["votes"] == 0 and rates["interesting"]["invalid"] == 2
    assert rates["interesting"]["recurrentgpt"] is None
    assert rates["coherent"]["recurrentgpt"] == 100.0  # Story 1 then Story 2: recurrentgpt both times


def test_a_judge_that_never_answers_in_shape_is_recorded_not_fatal():
    judge = ScriptedModel(["no idea"] * 20)
    js = judge_pair(judge, pair(), 0, EvalConfig(settings=Settings(retries=1)))
    assert all(j.interesting is None and j.coherent is None for j in js)
    assert len(judge.requests) == 4  # 1 + 1 retry, in each order


def test_rolling_prompt_keeps_the_most_recent_text_that_fits():
    model = ScriptedModel()  # no tokenizer: about 4 tokens per 3 words
    paragraphs = [f"para{i} " + "word " * 29 for i in range(5)]  # 30 words = 40 tokens each
    prompt = rolling_prompt(model, SMALL, "horror", "The Clocks", paragraphs, budget=90)
    assert "para4" in prompt and "para3" in prompt
    assert "para2" not in prompt
    # a budget smaller than one paragraph still keeps the last one
    assert "para4" in rolling_prompt(model, SMALL, "horror", "The Clocks", paragraphs, budget=5)


def test_run_eval_writes_both_systems_to_the_target_length(loom):
    judge = ScriptedModel()  # invents answers: always Story 1
    config = EvalConfig(genres=["sci-fi", "romance"], words=150, settings=SMALL)
    report = run_eval(loom, judge, config)
    assert list(report["table"]) == ["sci-fi", "romance", "overall"]
    assert len(report["stories"]) == 2 and len(report["judgements"]) == 4
    for story in report["stories"]:
        for system in ("recurrentgpt", "rolling"):
            assert story["stats"][system]["words"] >= 150
            assert story[system], system
        assert story["stats"]["recurrentgpt"]["complete"]
    # the simulator's calls are counted with the steps' in auto mode
    stats = report["stories"][0]["stats"]["recurrentgpt"]
    assert stats["usage"]["calls"] == 2 * stats["paragraphs"]
    assert report["table"]["overall"]["interesting"]["recurrentgpt"] == 50.0


def test_eval_command_prints_the_table_and_writes_json(tmp_path):
    out = tmp_path / "eval.json"
    result = CliRunner().invoke(
        cli,
        ["--model", "scripted", "--embedder", "hash", "eval", "--genres", "sci-fi,horror", "--words", "120",
         "--paragraph-sentences", "3", "--memory-words", "60", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert "| **overall** | 50.0% | 50.0% | 50.0% | 50.0% | 8/8 |" in result.output
    data = json.loads(out.read_text())
    assert data["judge"] == "scripted" and len(data["judgements"]) == 4
    assert data["config"]["genres"] == ["sci-fi", "horror"]
