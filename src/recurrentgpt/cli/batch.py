"""`recurrentgpt batch`: many stories from a JSONL file, resumable."""

from __future__ import annotations

import json
from typing import Any

import click

from ..batch import read_jobs, run_batch, summary_dict
from ..importing import read_text
from ..library import Library
from . import progress
from .app import cli, pass_library, pop_settings, read_file_arg, settings_options


@cli.command()
@click.argument("premises", type=click.Path(dir_okay=False))
@click.option("--concurrency", "-c", type=click.IntRange(1, 256), default=8, show_default=True,
              help="Stories in flight at once (1 with the embedded model).")
@click.option("--steps", type=click.IntRange(0, 10_000), default=5, show_default=True,
              help="Paragraphs per story after the opening, unless a line says otherwise.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@settings_options
@pass_library
def batch(library: Library, premises: str, concurrency: int, steps: int, as_json: bool, **options: Any) -> None:
    """Write one story per line of PREMISES (JSONL: genre, topic, premise, steps, mode).

    Run it again to resume: finished stories are skipped, half-written ones continue.
    """
    jobs = read_jobs(read_text(read_file_arg(premises, "premises file"), premises), default_steps=steps)
    settings = pop_settings(options)

    meter = progress.bar(len(jobs), "story")

    def on_progress(summary, job, status) -> None:
        if progress.is_terminal():  # a live bar, with the last story's status beside it
            meter.update(1)
            meter.set_postfix_str(f"line {job.line}: {status}"[:60])
        else:  # a log: one line per story
            done = summary.finished + summary.skipped + len(summary.failures)
            click.echo(f"{done}/{summary.stories}  line {job.line} ({job.story_id}): {status}", err=True)

    try:
        summary = run_batch(library.loom, jobs, concurrency=concurrency, settings=settings, on_progress=on_progress)
    finally:
        meter.close()
    data = summary_dict(summary)
    if as_json:
        click.echo(json.dumps(data, indent=2))
    else:
        click.echo(f"{data['finished']} written, {data['skipped']} already done, {data['failed']} failed; "
                   f"{data['steps']} paragraphs, {data['calls']} model calls, "
                   f"{data['completion_tokens']} tokens generated, in {data['seconds']} s")
        for f in data["failures"]:
            click.echo(f"  line {f['line']}: {f['reason']}")
    if summary.failures:
        raise click.exceptions.Exit(summary.exit_code)  # a model that failed: 3; a story the library refused: 5 …
