"""Writing commands: new, step, write (auto or interactive), demo."""

from __future__ import annotations

import secrets
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from ..errors import InputError, RecurrentGPTError
from ..export import safe_filename
from ..library import Library
from ..simulator import Choice
from ..story import Node, Settings
from . import progress
from .app import (
    BIBLE_CHOICE,
    cli,
    describe_usage,
    pass_library,
    pop_settings,
    read_file_arg,
    settings_options,
    show_kept,
    show_plans,
    stream_to_stdout,
    warn_retry,
    write_atomically,
)
from .bible import show_conflicts


@cli.command()
@click.argument("genre")
@click.argument("topic")
@click.option("--premise", default="", help="Your premise for the story.")
@click.option("--outline-file", type=click.Path(dir_okay=False), help="A file with your outline of the opening.")
@click.option("--fiction", is_flag=True, help="Interactive fiction: the reader chooses what happens next.")
@settings_options
@pass_library
def new(library: Library, genre: str, topic: str, premise: str, outline_file: str | None, fiction: bool,
        **options: Any) -> None:
    """Start a story: title, outline, opening paragraphs, first memory and 3 plans."""
    settings = pop_settings(options)
    outline = read_file_arg(outline_file, "outline file").decode("utf-8", "replace") if outline_file else ""
    click.echo("Writing the opening…\n", err=True)
    info = library.loom.new_story(
        genre, topic, premise=premise, outline=outline, settings=settings,
        mode="fiction" if fiction else "writer", on_text=stream_to_stdout, on_retry=warn_retry,
    )
    show_kept([n.paragraph for n in library.loom.path(info.id)])
    click.echo(f"\n\n# {info.title}   (story {info.id})\n")
    click.echo("Next, choose a plan:")
    show_plans(library.loom.node(info.id))


@cli.command()
@click.argument("story")
@click.option("--plan", "-p", "plan_number", type=click.IntRange(1, 3), help="Follow candidate plan 1, 2 or 3.")
@click.option("--text", "-t", "plan_text", help="Follow your own plan.")
@click.option("--from", "from_node", default="head", show_default=True, help="Continue from this node.")
@click.option("--new-chapter", is_flag=True,
              help="End the chapter first (its summary is remembered) and open the next one with this paragraph.")
@click.option("--bible", "bible_mode", type=BIBLE_CHOICE,
              help="The story bible's mode for this step (default: the story's).")
@pass_library
def step(library: Library, story: str, plan_number: int | None, plan_text: str | None, from_node: str,
         new_chapter: bool, bible_mode: str | None) -> None:
    """Write one paragraph following a candidate plan or your own."""
    if (plan_number is None) == (plan_text is None):
        raise InputError("give either --plan N or --text PLAN")
    plan: str | int = plan_text if plan_text is not None else plan_number - 1  # type: ignore[operator]
    if new_chapter:
        click.echo("Ending the chapter…", err=True)
    node = library.loom.step(story, plan, node=from_node, on_text=stream_to_stdout, on_retry=warn_retry,
                             new_chapter=new_chapter, bible=bible_mode)
    show_kept([node.paragraph])
    click.echo("")
    show_conflicts(node)
    if new_chapter:
        click.echo(f"\n\n(chapter {node.meta['chapter']} begins; the last one in brief: "
                   f"{node.meta['chapter_end']['summary']})", err=True)
    if node.meta.get("warning"):
        calls = node.meta["usage"].get("calls", 1)
        click.echo(f"\nwarning: kept after {calls} tries: {node.meta['warning']}", err=True)
    click.echo(f"\n\n(node {node.id}, {describe_usage(node)})\nNext plans:")
    show_plans(node)


@cli.command()
@click.argument("story")
@click.option("--steps", "-n", type=click.IntRange(1, 10_000), default=None,
              help="How many paragraphs (default: 3; with -i: until you quit).")
@click.option("--interactive", "-i", is_flag=True, help="Choose, edit or write each plan yourself, until you quit.")
@click.option("--bible", "bible_mode", type=BIBLE_CHOICE,
              help="The story bible's mode for these steps (default: the story's).")
@pass_library
def write(library: Library, story: str, steps: int | None, interactive: bool, bible_mode: str | None = None) -> None:
    """Write several paragraphs: the human simulator picks the plans (auto mode), or you do (-i).

    Every paragraph is saved as soon as it is written: interrupting loses at most the one in progress.
    """
    loom = library.loom
    info = loom.story(story)
    if interactive:
        _interactive(library, info.id, steps, bible_mode)
        return
    steps = steps or 3
    started = time.perf_counter()

    def show_progress(done: int) -> None:
        if steps > 1 and progress.is_terminal():
            click.echo(progress.meter(done, steps, time.perf_counter() - started, "paragraph"), err=True)

    def on_choice(i: int, choice: Choice) -> None:
        show_progress(i - 1)
        if choice.end_chapter is not None:
            verdict = "agreed" if choice.end_chapter else "went on"
            click.echo(f"(the model proposed ending the chapter; the simulator {verdict})",
                       err=True)
        click.echo(click.style(f"plan (simulator picked {choice.index + 1}): ", bold=True) + choice.plan + "\n")

    def on_step(i: int, node: Node, choice: Choice | None) -> None:
        show_kept([node.paragraph])
        click.echo(f"\n\n(node {node.id}, {describe_usage(node)})\n")
        if node.meta.get("chapter_end"):
            click.echo(f"(this paragraph opens chapter {node.meta['chapter']})\n", err=True)
        if node.meta.get("chapter_warning"):
            click.echo(f"warning: {node.meta['chapter_warning']}", err=True)
        show_conflicts(node)

    loom.auto(info.id, steps, on_step=on_step, on_choice=on_choice, on_text=stream_to_stdout, on_retry=warn_retry,
              bible=bible_mode)
    show_progress(steps)


def _interactive(library: Library, story_id: str, steps: int | None, bible_mode: str | None = None) -> None:
    loom = library.loom
    written = 0
    ahead: threading.Thread | None = None  # reads the next step's prompt while the writer chooses (Loom.prefill)
    ahead_of = ""  # the node whose next step it reads
    loom.model.load()  # here, not in the thread: loading silences the process's output while it lasts

    def read_ahead(node_id: str) -> None:
        try:
            loom.prefill(story_id, node_id)
        except RecurrentGPTError:  # (the story deleted meanwhile, a locked library): the step will say so itself
            pass

    try:
        while True:
            if steps is not None and written >= steps:
                click.echo(f"\n(wrote {written} paragraph{'s' * (written != 1)}, the {steps} asked for with -n; "
                           f"`recurrentgpt write {story_id} -i` goes on)")
                return
            head = loom.node(story_id)
            if head.id != ahead_of:
                if ahead:
                    ahead.join()
                ahead, ahead_of = threading.Thread(target=read_ahead, args=(head.id,)), head.id
                ahead.start()
            ending = head.meta.get("ends_chapter")
            if ending:
                click.echo(f"\n(chapter {ending['chapter']} ends here: the next paragraph opens chapter "
                           f"{ending['chapter'] + 1})")
            elif head.meta.get("chapter_proposal"):
                click.echo(f"\n(the model proposes ending the chapter here: "
                           f"{head.meta['chapter_proposal'].get('reason') or 'no reason given'}; c ends it)")
            click.echo("\nCandidate plans:")
            show_plans(head)
            action = click.prompt(
                "[1-3] follow a plan · e N edit plan N · w write your own · m edit memory · s show memory · "
                "c end the chapter here · q quit",
                default="1",
            ).strip()
            if action in ("q", "quit"):
                return
            if action == "c":
                try:
                    click.echo("Ending the chapter…", err=True)
                    ended = loom.end_chapter(story_id, head.id, on_retry=warn_retry)
                except InputError as e:  # (at the opening, or ended already): say so and ask again
                    click.echo(f"error: {e}", err=True)
                    continue
                end = ended.meta["ends_chapter"]
                click.echo(f"\nChapter {end['chapter']} in brief: {end['summary']}\n"
                           f"Chapter {end['chapter'] + 1} will cover: {end['beats']}")
                continue
            if action == "s":
                click.echo(f"\nShort-term memory:\n{head.short_memory}\n")
                continue
            if action == "m":
                memory = _edit_long_text(head.short_memory, "New short-term memory")
                if memory is None or memory.strip() == head.short_memory.strip():
                    click.echo("(memory unchanged)")
                    continue
                loom.edit(story_id, head.id, short_memory=memory)
                click.echo("(memory saved as a new version of this step)")
                continue
            if action == "w":
                plan: str | int = click.prompt("Your plan")
            elif action.startswith("e"):
                number = action[1:].strip() or click.prompt("Which plan", default="1")
                index = _plan_index(number, head.plans)
                plan = _edit_long_text(head.plans[index], "Edit the plan") or head.plans[index]
            else:
                plan = _plan_index(action, head.plans)
            node = loom.step(story_id, plan, on_text=stream_to_stdout, on_retry=warn_retry, bible=bible_mode)
            show_kept([node.paragraph])
            click.echo(f"\n\n(node {node.id}, {describe_usage(node)})")
            show_conflicts(node)
            written += 1
    finally:
        if ahead:
            ahead.join()  # before the library closes under it (one prompt's reading: seconds on the bundled model)


def _edit_long_text(text: str, prompt: str) -> str | None:
    """A long field in the writer's editor ($VISUAL, $EDITOR; click finds one), one sentence a line; without a
    terminal (input piped in), or when no editor runs, a prompt. None: left as it was."""
    if sys.stdin.isatty():
        from ..structured import sentences

        try:
            edited = click.edit("\n".join(sentences(text)) + "\n", extension=".txt")
        except click.ClickException as e:
            click.echo(f"(no editor: {e.format_message()}; set $EDITOR)", err=True)
        else:
            return None if edited is None else " ".join(line.strip() for line in edited.splitlines() if line.strip())
    return click.prompt(prompt, default=text)


def _plan_index(text: str, plans: tuple[str, ...]) -> int:
    if not text.isdigit() or not 1 <= int(text) <= len(plans):
        raise click.BadParameter(f"choose a plan between 1 and {len(plans)}")
    return int(text) - 1


@cli.command()
@click.option("--genre", default="science fiction", show_default=True)
@click.option("--topic", default="a lighthouse keeper on Mars finds a message from Earth", show_default=True)
@click.option("--steps", "-n", type=click.IntRange(1, 100), default=3, show_default=True,
              help="Paragraphs after the opening.")
@click.option("--out", "-o", type=click.Path(dir_okay=False),
              help="Where to write the Markdown (default: a file named after the title, in this folder).")
@pass_library
def demo(library: Library, genre: str, topic: str, steps: int, out: str | None) -> None:
    """Write a short story end to end in auto mode and export it to Markdown.

    Uses short paragraphs so the bundled model finishes in a few minutes on a laptop CPU. Each run
    picks a new random seed and prints it: the global --seed writes the same story again, and
    --topic/--genre change it.
    """
    if library.options.seed is None:  # read when the loom (and so the model) is built, just below
        library.options = replace(library.options, seed=secrets.randbelow(2**31))
    seed = library.options.seed
    settings = Settings(paragraph_sentences=6, memory_sentences=8, memory_words=150, plan_sentences=2)
    click.echo(f"Writing the opening of a {genre} story about {topic!r} with {library.options.model} "
               f"(seed {seed}; `recurrentgpt --seed {seed} demo` writes it again)…\n", err=True)
    info = library.loom.new_story(genre, topic, settings=settings, on_text=stream_to_stdout, on_retry=warn_retry)
    show_kept([n.paragraph for n in library.loom.path(info.id)])
    click.echo(f"\n\n# {info.title}   (story {info.id})\n")
    click.get_current_context().invoke(write, story=info.id, steps=steps, interactive=False)
    target = Path(out) if out else Path(safe_filename(info.title, "md"))
    text = library.loom.export(info.id, "md")
    write_atomically(target, text)
    click.echo(f"Wrote {len(library.loom.path(info.id))} paragraphs to {target.resolve()} "
               f"(story {info.id} in the library {library.loom.describe().location})")
