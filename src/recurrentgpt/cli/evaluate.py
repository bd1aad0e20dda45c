"""`recurrentgpt eval`: pairwise evaluation of RecurrentGPT against baselines and its own ablations."""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from ..errors import InputError, ModelError
from ..library import Library
from ..story import Settings
from .app import cli, pass_library, pop_settings, settings_options, write_atomically

# What a run's journal records of its configuration: what changes the stories or verdicts. A resumed run must
# match it; API keys and timeouts may change between runs (a timeout is often why a run is resumed).
GLOBAL_KEYS = ("model", "base_url", "response_format", "embedder", "retrieval", "chunk_words", "seed", "num_ctx")
EVAL_KEYS = ("genres", "stories_per_genre", "words", "system_name", "against", "rolling_budget", "context",
             "max_steps", "judge_spec", "judge_base_url", "judge_response_format", "judge_context", "plan_check",
             "premises")
SETTING_KEYS = tuple(f.name for f in dataclasses.fields(Settings))
FORMATS = click.Choice(["auto", "json_schema", "json_object", "text"])


def _names(value: str) -> list[str]:
    return [x.strip() for x in value.split(",") if x.strip()]


def _explicit(ctx: click.Context, name: str) -> bool:
    source = ctx.get_parameter_source(name)
    return source not in (None, ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP)


@cli.command("eval")
@click.option("--genres", default="sci-fi,romance,fantasy,horror,mystery,thriller", show_default=True,
              help="Comma-separated genres (the paper's six by default), each with its built-in premise.")
@click.option("--premises", "premises_path", type=click.Path(dir_okay=False), default=None,
              help="Your own premises instead of the genres' built-in ones: one per line (genre 'fiction'), or "
                   "JSON Lines with \"genre\" and \"premise\" (at most 1 MB).")
@click.option("--stories", "stories_per_genre", type=click.IntRange(1, 1000), default=1, show_default=True,
              help="Story pairs per genre, or per premise with --premises (the statistics need many: about 10+ "
                   "pairs before a clear preference can be significant).")
@click.option("--words", type=click.IntRange(1, 200_000), default=3000, show_default=True,
              help="Words each system writes after the shared opening (the opening is not counted).")
@click.option("--system", "system_name", default="recurrentgpt", show_default=True,
              help="The system under test.")
@click.option("--against", default="rolling", show_default=True,
              help="Comma-separated systems to compare it with: rolling, rolling-full, no-long-term, "
                   "no-short-term, no-revision, no-plans, no-bible, recurrentgpt.")
@click.option("--rolling-budget", type=click.IntRange(64, 1_000_000), default=None,
              help="Tokens of recent text the 'rolling' baseline keeps (default: its prompt as large as "
                   "RecurrentGPT's mean step prompt in the same pair).")
@click.option("--context", type=click.IntRange(512, 10_000_000), default=None,
              help="The generation model's context window, for 'rolling-full' (default: the embedded engine's, "
                   "else 8192).")
@click.option("--max-steps", type=click.IntRange(1, 100_000), default=200, show_default=True,
              help="A continuation that has not reached --words after this many paragraphs is incomplete.")
@click.option("--judge", "judge_spec", default=None,
              help="The judge model, like --model (smollm2, a .gguf path, openai:MODEL, ollama:NAME …), with its "
                   "own server: --judge-base-url, --judge-api-key, --judge-response-format. Default: the --model "
                   "itself.")
@click.option("--judge-base-url", default=None,
              help="The judge's OpenAI-compatible server (default: its preset's address, else $OPENAI_BASE_URL; "
                   "never --base-url).")
@click.option("--judge-api-key", default=None, help="API key for the judge's server (default: its provider's own "
              "key, as for --model; never --api-key).")
@click.option("--judge-response-format", type=FORMATS, default=None,
              help="How to ask the judge's server for structured answers (default: auto, or its preset's).")
@click.option("--judge-timeout", type=float, default=None, help="Seconds to wait for the judge's server "
              "(default: --timeout).")
@click.option("--judge-context", type=click.IntRange(512, 10_000_000), default=None,
              help="The judge's context window: longer pairs are judged by the windowed protocol; asked of "
                   "the judge's server where that is ours to set (Ollama, the embedded engine). Default: what its "
                   "server tells, else 8192.")
@click.option("--plan-check/--no-plan-check", default=True, show_default=True,
              help="Ask the judge, per planned paragraph, whether it did what its plan said.")
@click.option("--library", default=":memory:", show_default=True,
              help="Where to keep the RecurrentGPT stories (an SQLite file or a postgresql:// URL); "
                   "not your main library.")
@click.option("--out", "-o", type=click.Path(dir_okay=False), default="eval-results.json", show_default=True,
              help="Where to write the JSON results (stories, judgements, measures, table). The journal "
                   "(OUT's name .journal.jsonl), the report (.md) and its plots (.png) go beside it.")
@click.option("--resume", "resume_path", type=click.Path(dir_okay=False), default=None,
              help="Continue the run whose --out was this file, from its journal: what it finished is not asked "
                   "again. Options not given take the journal's values; one given differently is refused.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False), default=None,
              help="Where to write the Markdown report (default: beside --out, OUT's name with .md).")
@click.option("--title", default="recurrentgpt eval", show_default=True, help="The report's heading.")
@click.option("--estimate", is_flag=True,
              help="Print the calls this run would make (by the formula docs/evaluation.md gives) and exit: no "
                   "model is loaded or asked, no file written.")
@settings_options
@pass_library
def evaluate(user_library: Library, genres: str, premises_path: str | None, stories_per_genre: int, words: int,
             system_name: str, against: str, rolling_budget: int | None, context: int | None, max_steps: int,
             judge_spec: str | None, judge_base_url: str | None, judge_api_key: str | None,
             judge_response_format: str | None, judge_timeout: float | None, judge_context: int | None,
             plan_check: bool, library: str, out: str, resume_path: str | None, report_path: str | None,
             title: str, estimate: bool, **options: Any) -> None:
    """Compare a system with baselines or ablations, judged pairwise by a model.

    For each genre (or premise) and story, one opening is written; every system continues it by --words words.
    A judge picks the more interesting and the more coherent continuation, in both orders; whole texts when
    they fit its context, else part by part plus summaries of the whole. Every model call is saved to a
    journal beside --out as it finishes: a run that stops is continued with --resume OUT. Prints win rates
    with 95% intervals and writes the JSON (--out), a Markdown report and its plots beside it. Exits
    non-zero (3) when a system could not reach the length or a call failed.

    Example (bundled model: a pipeline check, its verdicts mean nothing):

    \b
    recurrentgpt eval --genres horror --stories 2 --words 150 --against rolling,no-long-term \\
      --paragraph-sentences 4 --memory-words 80 --opening-paragraphs 2
    """
    from ..evaluation import EvalConfig, run_eval
    from ..evaluation.journal import Journal, JournaledModel, journal_path
    from ..evaluation.premises import read_premises
    from ..evaluation.report import verdict_table, write_report
    from ..models import get_model
    from ..story import validate_settings

    ctx = click.get_current_context()
    o = user_library.options
    settings = pop_settings(options)
    current: dict[str, Any] = {k: getattr(o, k) for k in GLOBAL_KEYS}
    current.update(genres=_names(genres), stories_per_genre=stories_per_genre, words=words,
                   system_name=system_name.strip(), against=_names(against), rolling_budget=rolling_budget,
                   context=context, max_steps=max_steps, judge_spec=judge_spec, judge_base_url=judge_base_url,
                   judge_response_format=judge_response_format, judge_context=judge_context, plan_check=plan_check,
                   premises=[list(p) for p in read_premises(Path(premises_path))] if premises_path else None)
    current.update(settings.to_dict())
    explicit = {k for k in GLOBAL_KEYS if _explicit(ctx.parent, k)} if ctx.parent else set()
    explicit |= {k for k in (*EVAL_KEYS, *SETTING_KEYS) if k != "premises" and _explicit(ctx, k)}
    if premises_path:
        explicit.add("premises")

    if resume_path:
        if _explicit(ctx, "out") and Path(out) != Path(resume_path):
            raise InputError(f"--resume continues the run whose results go to {resume_path}; leave out --out")
        out = resume_path
    out_path = Path(out)
    journal_file = journal_path(out_path)
    if resume_path:
        saved, _ = Journal.read(journal_file)
        differ = [k for k in saved if saved[k] != current.get(k) and k in explicit]
        if differ:
            from ..evaluation.journal import describe_difference

            raise InputError(describe_difference({k: saved[k] for k in differ}, {k: current.get(k) for k in differ}))
        current.update(saved)
    elif current["seed"] is None:
        current["seed"] = random.randrange(2**31)  # a resume replays the run, so it needs the same seed

    settings = Settings.from_dict({k: current[k] for k in SETTING_KEYS})
    validate_settings(settings)
    premises = [(g, p) for g, p in current["premises"]] if current["premises"] is not None else None
    config = EvalConfig(genres=current["genres"], stories_per_genre=current["stories_per_genre"],
                        words=current["words"], system=current["system_name"], against=current["against"],
                        rolling_budget=current["rolling_budget"], context=current["context"],
                        judge_context=current["judge_context"], max_steps=current["max_steps"],
                        plan_check=current["plan_check"], settings=settings, premises=premises)
    config.check()  # before any model loads or file is written
    if estimate:
        click.echo(describe_cost(config))
        return
    md_path = Path(report_path) if report_path else out_path.with_name(
        out_path.stem + (".report.md" if out_path.suffix == ".md" else ".md"))
    judge_named = current["judge_spec"] is not None or current["judge_base_url"] is not None
    if not judge_named and any(x is not None for x in (judge_api_key, current["judge_response_format"],
                                                        judge_timeout)):
        raise InputError("--judge-api-key, --judge-response-format and --judge-timeout are for a judge of its own: "
                         "name it with --judge (and --judge-base-url); without one the --model judges")

    o = dataclasses.replace(o, **{k: current[k] for k in GLOBAL_KEYS})
    model = get_model(o.model, **o.model_options())
    judge_inner = model
    if judge_named:  # its own server: nothing of --base-url, --api-key or --response-format
        judge_inner = get_model(current["judge_spec"] or o.model, base_url=current["judge_base_url"],
                                api_key=judge_api_key, response_format=current["judge_response_format"],
                                timeout=judge_timeout if judge_timeout is not None else o.timeout, seed=o.seed,
                                n_threads=o.threads, num_ctx=current["judge_context"])
    # the journal only once the models are built: a misnamed model must not leave one that blocks the next try
    journal = Journal.resume(journal_file, current) if resume_path else Journal.create(journal_file, current)
    generator = JournaledModel(model, journal, "generator")
    judge = JournaledModel(judge_inner, journal, "judge")
    loom = o.open_loom(db=library, model=generator)
    if resume_path:
        click.echo(f"Resuming {out}: {sum(r.get('kind') == 'call' for r in journal.records)} answers in its "
                   "journal are not asked again.", err=True)
    try:
        report = run_eval(loom, judge, config, on_progress=lambda line: click.echo(line, err=True), journal=journal)
    except KeyboardInterrupt:
        click.echo(f"\ninterrupted: every finished call is in {journal_file}; continue with --resume {out}", err=True)
        raise
    finally:
        loom.close()
        if judge_inner is not model:
            judge_inner.close()
    report["servers"] = {"model": _server(model), "judge": _server(judge_inner)}
    report["seed"] = o.seed
    report["journal"] = str(journal_file)
    click.echo(f"\nModel {report['model']}, judge {report['judge']}; each pair judged in both orders.\n")
    click.echo(verdict_table(report["table"]) or "No comparison was judged.")
    write_atomically(out_path, json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    written = write_report(report, md_path, title)
    click.echo(f"\nWrote {out} and {', '.join(str(p) for p in written)} ({len(report['stories'])} openings, "
               f"{len(report['judgements'])} judgements, {report['seconds']:.0f} s)")
    problems = []
    if report["incomplete"]:
        for line in report["incomplete"]:
            click.echo(f"warning: {line}", err=True)
        problems.append(f"{len(report['incomplete'])} continuation(s) did not reach {config.words} words; "
                        "they were not judged (see the report)")
    if report["failed"]:
        for line in report["failed"]:
            click.echo(f"failed: {line}", err=True)
        problems.append(f"{len(report['failed'])} unit(s) failed on a model call; run the same command with "
                        f"--resume {out} to ask again only what failed")
    if problems:
        raise ModelError("; ".join(problems))


def describe_cost(config: Any) -> str:
    """The run's calls by `expected_calls`: judged whole, and by the windowed protocol if the pairs do not fit."""
    from ..evaluation.run import expected_calls
    from ..evaluation.systems import DEFAULT_CONTEXT

    s = config.settings
    paragraph = s.paragraph_words
    whole = expected_calls(config)
    judge_context = config.judge_context or DEFAULT_CONTEXT
    per_part = max(200, (judge_context * 3 // 4 - 600) // 2)  # the layout's budget, less the prompt (about)
    parts = max(2, -(-config.words * 4 // 3 // per_part))
    windowed = expected_calls(config, judge_parts=parts)
    openings = len(config.openings())
    return "\n".join([
        f"{openings} opening(s), {len(config.systems)} systems, {config.words} words each after the opening: "
        f"{-(-config.words // paragraph)} paragraph(s) of the {paragraph} words the settings ask for",
        f"generation model: {whole['generator']:,} calls",
        f"judge: {whole['judge']:,} calls when every pair fits its context whole; {windowed['judge']:,} in "
        f"{parts} windowed parts (judge context {judge_context:,} tokens, ~4/3 tokens a word)",
        "Each answer out of shape adds a call; a model that writes shorter paragraphs needs more. Tokens: run a "
        "pilot and read its report's Calls and tokens."])


def _server(model: Any) -> str:
    client = getattr(model, "client", None)
    return getattr(client, "base_url", None) or "in this process"
