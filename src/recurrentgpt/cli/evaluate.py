"""`recurrentgpt eval`: the paper-style pairwise evaluation (RecurrentGPT vs a rolling baseline)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ..errors import InputError
from ..library import Library
from .app import cli, pass_library, pop_settings, settings_options


@cli.command("eval")
@click.option("--genres", default="sci-fi,romance,fantasy,horror,mystery,thriller", show_default=True,
              help="Comma-separated genres (the paper's six by default).")
@click.option("--stories", "stories_per_genre", type=click.IntRange(1, 100), default=1, show_default=True,
              help="Story pairs per genre.")
@click.option("--words", type=click.IntRange(50, 200_000), default=1000, show_default=True,
              help="Target length of each story, opening included.")
@click.option("--rolling-budget", type=click.IntRange(64, 1_000_000), default=2048, show_default=True,
              help="Tokens of recent text the rolling baseline keeps in its prompt.")
@click.option("--judge", "judge_spec", default=None,
              help="Judge model (smollm2, a .gguf path, openai:MODEL, scripted). Default: the --model.")
@click.option("--judge-base-url", default=None, help="OpenAI-compatible server for the judge (default: --base-url).")
@click.option("--judge-api-key", default=None, help="API key for the judge's server (default: --api-key).")
@click.option("--judge-words", type=click.IntRange(100, 100_000), default=1500, show_default=True,
              help="Longer stories are shown to the judge with their middle cut out.")
@click.option("--library", default=":memory:", show_default=True,
              help="Where to keep the RecurrentGPT stories (an SQLite file or a postgresql:// URL); "
                   "not your main library.")
@click.option("--out", "-o", type=click.Path(dir_okay=False), default="eval-results.json", show_default=True,
              help="Where to write the JSON results (stories, judgements, table).")
@settings_options
@pass_library
def evaluate(user_library: Library, genres: str, stories_per_genre: int, words: int, rolling_budget: int,
             judge_spec: str | None, judge_base_url: str | None, judge_api_key: str | None, judge_words: int,
             library: str, out: str,
             **options: Any) -> None:
    """Compare RecurrentGPT (auto mode) with a rolling-context baseline on the same model.

    For each genre both systems write a story from the same opening; a judge model then picks the more
    interesting and the more coherent story, in both orders to cancel position bias. Prints each
    system's win % per genre and overall, and writes everything to --out.

    Example (bundled model, short stories: meaningless judgements, proves the pipeline):

    \b
    recurrentgpt eval --genres sci-fi,horror --words 300 --paragraph-sentences 5 --memory-words 100
    """
    from ..evaluate import EvalConfig, format_table, run_eval
    from ..loom import validate_settings
    from ..models import get_model

    settings = pop_settings(options)
    validate_settings(settings)
    names = [g.strip() for g in genres.split(",") if g.strip()]
    if not names:
        raise InputError("name at least one genre")
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
    config = EvalConfig(genres=names, stories_per_genre=stories_per_genre, words=words, rolling_budget=rolling_budget,
                        judge_words=judge_words, settings=settings)
    try:
        report = run_eval(loom, judge, config, on_progress=lambda line: click.echo(line, err=True))
    finally:
        loom.close()
        if judge is not model:
            judge.close()
    click.echo(f"\nModel {report['model']}, judge {report['judge']}; each pair judged in both orders.\n")
    click.echo(format_table(report))
    target = Path(out)
    try:
        target.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    except OSError as e:
        raise InputError(f"cannot write {target}: {e.strerror}") from None
    click.echo(f"\nWrote {target} ({len(report['stories'])} story pairs, {len(report['judgements'])} judgements, "
               f"{report['seconds']:.0f} s)")
