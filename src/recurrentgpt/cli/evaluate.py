"""`recurrentgpt eval`: pairwise evaluation of RecurrentGPT against baselines and its own ablations."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ..errors import ModelError
from ..library import Library
from .app import cli, pass_library, pop_settings, settings_options
from .write import write_atomically


def _names(value: str) -> list[str]:
    return [x.strip() for x in value.split(",") if x.strip()]


@cli.command("eval")
@click.option("--genres", default="sci-fi,romance,fantasy,horror,mystery,thriller", show_default=True,
              help="Comma-separated genres (the paper's six by default).")
@click.option("--stories", "stories_per_genre", type=click.IntRange(1, 1000), default=1, show_default=True,
              help="Story pairs per genre (the statistics need many: about 10+ pairs before a clear preference "
                   "can be significant).")
@click.option("--words", type=click.IntRange(1, 200_000), default=3000, show_default=True,
              help="Words each system writes after the shared opening (the opening is not counted).")
@click.option("--system", "system_name", default="recurrentgpt", show_default=True,
              help="The system under test.")
@click.option("--against", default="rolling", show_default=True,
              help="Comma-separated systems to compare it with: rolling, rolling-full, no-long-term, "
                   "no-short-term, no-revision, recurrentgpt.")
@click.option("--rolling-budget", type=click.IntRange(64, 1_000_000), default=None,
              help="Tokens of recent text the 'rolling' baseline keeps (default: its prompt as large as "
                   "RecurrentGPT's mean step prompt in the same pair).")
@click.option("--context", type=click.IntRange(512, 10_000_000), default=None,
              help="The generation model's context window, for 'rolling-full' (default: the embedded engine's, "
                   "else 8192).")
@click.option("--max-steps", type=click.IntRange(1, 100_000), default=200, show_default=True,
              help="A continuation that has not reached --words after this many paragraphs is incomplete.")
@click.option("--judge", "judge_spec", default=None,
              help="Judge model (smollm2, a .gguf path, openai:MODEL, scripted). Default: the --model.")
@click.option("--judge-base-url", default=None, help="OpenAI-compatible server for the judge (default: --base-url).")
@click.option("--judge-api-key", default=None, help="API key for the judge's server (default: --api-key).")
@click.option("--judge-context", type=click.IntRange(512, 10_000_000), default=None,
              help="The judge's context window: longer pairs are judged by the windowed protocol "
                   "(default: the embedded engine's, else 8192).")
@click.option("--plan-check/--no-plan-check", default=True, show_default=True,
              help="Ask the judge, per planned paragraph, whether it did what its plan said.")
@click.option("--library", default=":memory:", show_default=True,
              help="Where to keep the RecurrentGPT stories (an SQLite file or a postgresql:// URL); "
                   "not your main library.")
@click.option("--out", "-o", type=click.Path(dir_okay=False), default="eval-results.json", show_default=True,
              help="Where to write the JSON results (stories, judgements, measures, table).")
@click.option("--report", "report_path", type=click.Path(dir_okay=False), default="eval-report.md",
              show_default=True, help="Where to write the Markdown report.")
@click.option("--title", default="recurrentgpt eval", show_default=True, help="The report's heading.")
@settings_options
@pass_library
def evaluate(user_library: Library, genres: str, stories_per_genre: int, words: int, system_name: str, against: str,
             rolling_budget: int | None, context: int | None, max_steps: int, judge_spec: str | None,
             judge_base_url: str | None, judge_api_key: str | None, judge_context: int | None, plan_check: bool,
             library: str, out: str, report_path: str, title: str, **options: Any) -> None:
    """Compare a system with baselines or ablations, judged pairwise by a model.

    For each genre and story, one opening is written; every system continues it by --words words. A judge
    picks the more interesting and the more coherent continuation, in both orders; whole texts when they fit
    its context, else part by part plus summaries of the whole. Prints win rates with 95% intervals and
    writes the JSON (--out) and a Markdown report (--report). Exits non-zero (3) when a system could not
    reach the length.

    Example (bundled model: a pipeline check, its verdicts mean nothing):

    \b
    recurrentgpt eval --genres horror --stories 2 --words 150 --against rolling,no-long-term \\
      --paragraph-sentences 4 --memory-words 80 --opening-paragraphs 2
    """
    from ..evaluation import EvalConfig, run_eval, to_markdown
    from ..evaluation.report import verdict_table
    from ..story import validate_settings
    from ..models import get_model

    settings = pop_settings(options)
    validate_settings(settings)
    config = EvalConfig(genres=_names(genres), stories_per_genre=stories_per_genre, words=words,
                        system=system_name.strip(), against=_names(against), rolling_budget=rolling_budget,
                        context=context, judge_context=judge_context, max_steps=max_steps, plan_check=plan_check,
                        settings=settings)
    config.check()  # before any model loads
    o = user_library.options  # the model and embedder of the global options; the stories go to --library
    model = get_model(o.model, **o.model_options())
    judge = model
    if judge_spec is not None or judge_base_url is not None or judge_api_key is not None:
        judge = get_model(judge_spec or o.model, **{
            **o.model_options(),
            "base_url": judge_base_url or o.base_url,
            "api_key": judge_api_key or o.api_key,
        })
    loom = o.open_loom(db=library, model=model)
    try:
        report = run_eval(loom, judge, config, on_progress=lambda line: click.echo(line, err=True))
    finally:
        loom.close()
        if judge is not model:
            judge.close()
    click.echo(f"\nModel {report['model']}, judge {report['judge']}; each pair judged in both orders.\n")
    click.echo(verdict_table(report["table"]) or "No comparison was judged.")
    write_atomically(Path(out), json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    write_atomically(Path(report_path), to_markdown(report, title))
    click.echo(f"\nWrote {out} and {report_path} ({len(report['stories'])} openings, "
               f"{len(report['judgements'])} judgements, {report['seconds']:.0f} s)")
    if report["incomplete"]:
        for line in report["incomplete"]:
            click.echo(f"warning: {line}", err=True)
        raise ModelError(f"{len(report['incomplete'])} continuation(s) did not reach {words} words; "
                         "they were not judged (see the report)")
